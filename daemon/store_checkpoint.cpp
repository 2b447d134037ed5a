#include "daemon/store_checkpoint.hpp"

#include "daemon/store_vfs.hpp"

namespace stanzad {

std::unique_ptr<Checkpointer> Checkpointer::start(const std::string& path) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, store_detail::buffered_wal_vfs()) != SQLITE_OK) {
        sqlite3_close(db);
        return nullptr;
    }
    // FULL: the checkpoint syncs the database before the WAL may start over. A small cache:
    // a checkpoint copies from the WAL file to the database file without it.
    if (sqlite3_exec(db, "PRAGMA synchronous = FULL; PRAGMA cache_size = 16", nullptr, nullptr, nullptr) !=
        SQLITE_OK) {
        sqlite3_close(db);
        return nullptr;
    }
    std::unique_ptr<Checkpointer> c(new Checkpointer(db));
    c->worker_ = std::thread([raw = c.get()] { raw->run(); });
    return c;
}

Checkpointer::~Checkpointer() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    wake_.notify_one();
    if (worker_.joinable()) worker_.join();
    sqlite3_close(db_);
}

int Checkpointer::on_commit(void* self, sqlite3* db, const char* schema, int frames) {
    auto* c = static_cast<Checkpointer*>(self);
    if (frames < c->woken_at_) c->woken_at_ = 0;  // the WAL started over
    if (frames >= kBound) {
        // The worker has not caught up for a long time: copy on the loop, as SQLite's own
        // checkpoint would (SQLITE_BUSY while the worker is at it: the next commit tries again).
        sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    } else if (frames - c->woken_at_ >= kWanted) {
        c->woken_at_ = frames;
        {
            std::lock_guard lock(c->mu_);
            c->wanted_ = true;
        }
        c->wake_.notify_one();
    }
    return SQLITE_OK;
}

void Checkpointer::run() {
    std::unique_lock lock(mu_);
    for (;;) {
        wake_.wait(lock, [this] { return wanted_ || stop_; });
        if (stop_) return;
        wanted_ = false;
        lock.unlock();
        // PASSIVE: copies what no reader still needs, waits for nobody. An error (the disk)
        // shows again at the loop's next commit, which is where the store reports it.
        int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        lock.lock();
        if (rc == SQLITE_OK) {
            ++done_;
            finished_.notify_all();
        }
    }
}

std::uint64_t Checkpointer::done() const {
    std::lock_guard lock(mu_);
    return done_;
}

bool Checkpointer::wait_done(std::uint64_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mu_);
    return finished_.wait_for(lock, timeout, [&] { return done_ >= n; });
}

}  // namespace stanzad
