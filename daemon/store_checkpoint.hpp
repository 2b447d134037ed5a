#pragma once
// Checkpointer: copies the store's WAL into the database on a thread of its own, so that a
// commit on the loop never waits for it (issue 15, docs/performance.md "Where the echo's
// tail is"). SQLite's automatic checkpoint runs inside the commit that crosses its
// threshold: 260 pages copied and an fsync of the database, 10-30 ms under tracing, about
// once per 100 one-at-a-time round trips, which set their maximum.
//
// The loop's connection reports the WAL's size after each commit (sqlite3_wal_hook, below);
// each time the WAL has grown by kWanted frames the worker, with its own connection, runs a
// PASSIVE checkpoint, which never blocks the writer
// (https://sqlite.org/c3ref/wal_checkpoint_v2.html). A WAL starts over only at a write that
// begins after a checkpoint copied all of it, so under a long burst the worker may never
// catch up; past kBound frames the loop runs one itself, as SQLite would have (copying only
// what the worker has not), which bounds the WAL at about 64 MiB. Waking the worker at every
// commit past kWanted instead made it checkpoint (and fsync) after nearly every commit of a
// burst until the WAL started over.
//
// The worker touches nothing of the Store but its own connection; the wish to run and the
// count of checkpoints are under a mutex.
#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace stanzad {

class Checkpointer {
public:
    static constexpr int kWanted = 4000;   // frames: the worker's turn (SQLite's default is 1,000)
    static constexpr int kBound = 16000;   // frames: the loop's own checkpoint

    // Opens a second connection to the store at `path` (already in WAL mode) and starts the
    // worker; nullptr when that fails (the caller keeps SQLite's automatic checkpoint).
    static std::unique_ptr<Checkpointer> start(const std::string& path);
    ~Checkpointer();  // stops the worker (a checkpoint under way finishes first) and closes
    Checkpointer(const Checkpointer&) = delete;
    Checkpointer& operator=(const Checkpointer&) = delete;

    // The hook for the loop's connection: sqlite3_wal_hook(db, Checkpointer::on_commit, this).
    static int on_commit(void* self, sqlite3* db, const char* schema, int frames);

    // Checkpoints the worker completed; and a wait for the n-th, for tests and benchmarks.
    std::uint64_t done() const;
    bool wait_done(std::uint64_t n, std::chrono::milliseconds timeout) const;

private:
    explicit Checkpointer(sqlite3* db) : db_(db) {}
    void run();

    sqlite3* db_;  // the worker's own connection
    mutable std::mutex mu_;
    mutable std::condition_variable wake_, finished_;
    int woken_at_ = 0;  // the WAL's frames when the worker was last woken (loop thread only)
    bool wanted_ = false;
    bool stop_ = false;
    std::uint64_t done_ = 0;
    std::thread worker_;
};

}  // namespace stanzad
