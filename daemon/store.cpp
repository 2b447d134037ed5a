#include "daemon/store.hpp"

#include <algorithm>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iterator>
#include <limits>
#include <string_view>

#include "frontends/model/codec.hpp"
#include "protocol/base/rfc3339.hpp"

namespace stanzad {

namespace {

using xmpp::make_error;

// Forward migrations: entry i takes the schema from user_version i to i+1. Append only;
// a released entry is never edited, because databases in the field already ran it.
constexpr const char* migrations[] = {
    // 0 -> 1
    R"sql(
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: a pruned seq is never handed out again
    account TEXT NOT NULL,
    kind TEXT NOT NULL,
    stamp TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    json TEXT NOT NULL
);
CREATE INDEX events_created ON events (created_ms);
CREATE TABLE cursors (
    client TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    to_jid TEXT NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    UNIQUE (account, msg_id)
);
CREATE INDEX outbox_pending ON outbox (account, state);
)sql",
    // 1 -> 2: de-duplication of incoming messages, and small per-account values
    R"sql(
CREATE TABLE inbound_ids (
    account TEXT NOT NULL,
    id TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (account, id)
) WITHOUT ROWID;
CREATE TABLE account_meta (
    account TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (account, key)
) WITHOUT ROWID;
)sql",
    // 2 -> 3: corrections (XEP-0308) in the outbox; inbound ids remember what they point at
    // (the seq of the event, or for aliases the msg_id)
    R"sql(
ALTER TABLE outbox ADD COLUMN replace_id TEXT NOT NULL DEFAULT '';
ALTER TABLE inbound_ids ADD COLUMN value TEXT NOT NULL DEFAULT '';
)sql",
    // 3 -> 4: messages know their conversation (the other side's bare JID), for history
    // queries by conversation (IRC CHATHISTORY)
    R"sql(
ALTER TABLE events ADD COLUMN peer TEXT NOT NULL DEFAULT '';
UPDATE events SET peer = (
    SELECT CASE WHEN instr(j, '/') > 0 THEN substr(j, 1, instr(j, '/') - 1) ELSE j END
    FROM (SELECT CASE WHEN json_extract(json, '$.outgoing') THEN json_extract(json, '$.to')
                      ELSE json_extract(json, '$.from') END AS j))
WHERE kind = 'message';
CREATE INDEX events_peer ON events (account, peer, seq) WHERE peer != '';
)sql",
    // 4 -> 5: indexes for a big store (docs/performance.md "A store of 1,000,000 messages"):
    // CHATHISTORY msgid= references (message_seq) find the message in the index instead of
    // reading every message of the conversation, and the conversation list (CHATHISTORY
    // TARGETS) reads stamps from the index instead of from every row.
    R"sql(
CREATE INDEX events_msgid ON events (account, peer, json_extract(json, '$.msg_id')) WHERE peer != '';
DROP INDEX events_peer;
CREATE INDEX events_peer ON events (account, peer, seq, stamp) WHERE peer != '';
)sql",
};
static_assert(std::size(migrations) == Store::schema_version, "one migration per schema version");

std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::int64_t now_ms() { return unix_ms(std::chrono::system_clock::now()); }

std::chrono::system_clock::time_point from_ms(std::int64_t ms) {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

xmpp::Error db_error(sqlite3* db, std::string_view what) {
    std::string message(what);
    message += ": ";
    message += db ? sqlite3_errmsg(db) : "out of memory";
    return make_error("store", std::move(message));
}

xmpp::Error sys_error(std::string_view what, const std::string& path, int err) {
    std::string message(what);
    message += " ";
    message += path;
    message += ": ";
    message += std::strerror(err);
    return make_error("store", std::move(message));
}

// Owns one prepared statement.
class Stmt {
public:
    Stmt() = default;
    ~Stmt() { sqlite3_finalize(s_); }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    bool prepare(sqlite3* db, const char* sql) {
        return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s_, nullptr) == SQLITE_OK;
    }
    sqlite3_stmt* get() const { return s_; }

private:
    sqlite3_stmt* s_ = nullptr;
};

// Binds values to a statement for one use and resets it on scope exit, so a kept
// statement never holds a read snapshot or stale bindings between calls.
class Use {
public:
    explicit Use(sqlite3_stmt* s) : s_(s) {}
    ~Use() {
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
    }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;

    // Bound without a copy (SQLITE_STATIC): the text must outlive the statement's step.
    Use& text(int i, std::string_view v) {
        if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
        return *this;
    }
    Use& int64(int i, std::int64_t v) {
        if (rc_ == SQLITE_OK) rc_ = sqlite3_bind_int64(s_, i, v);
        return *this;
    }
    bool bound() const { return rc_ == SQLITE_OK; }
    // SQLITE_ROW, SQLITE_DONE, or an error code.
    int step() { return rc_ == SQLITE_OK ? sqlite3_step(s_) : rc_; }

    std::int64_t column_int64(int i) const { return sqlite3_column_int64(s_, i); }
    std::string column_text(int i) const {
        auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, i));
        return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, i))) : std::string();
    }

private:
    sqlite3_stmt* s_;
    int rc_ = SQLITE_OK;
};

bool exec(sqlite3* db, const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK; }

// Runs a one-row, one-column query (PRAGMAs, counters).
bool query_int64(sqlite3* db, const char* sql, std::int64_t& out) {
    Stmt s;
    if (!s.prepare(db, sql)) return false;
    Use u(s.get());
    if (u.step() != SQLITE_ROW) return false;
    out = u.column_int64(0);
    return true;
}

bool query_text(sqlite3* db, const char* sql, std::string& out) {
    Stmt s;
    if (!s.prepare(db, sql)) return false;
    Use u(s.get());
    if (u.step() != SQLITE_ROW) return false;
    out = u.column_text(0);
    return true;
}

// Transaction control, prepared once (sqlite3_exec parses its SQL on every call: about
// 20,000 instructions per relayed message before; docs/performance.md).
struct TxStmts {
    Stmt begin, commit, rollback, savepoint, release, rollback_to;

    bool prepare(sqlite3* db) {
        return begin.prepare(db, "BEGIN IMMEDIATE") && commit.prepare(db, "COMMIT") &&
               rollback.prepare(db, "ROLLBACK") && savepoint.prepare(db, "SAVEPOINT op") &&
               release.prepare(db, "RELEASE op") && rollback_to.prepare(db, "ROLLBACK TO op");
    }
};

// account_meta writes (set_meta, set_metas, append_once), prepared once.
struct MetaStmts {
    Stmt upsert, remove;

    bool prepare(sqlite3* db) {
        return upsert.prepare(db, "INSERT INTO account_meta (account, key, value) VALUES (?1, ?2, ?3) "
                                  "ON CONFLICT (account, key) DO UPDATE SET value = excluded.value") &&
               remove.prepare(db, "DELETE FROM account_meta WHERE account = ?1 AND key = ?2");
    }
};

// Runs a prepared statement that returns no rows; true on SQLITE_DONE.
bool run(const Stmt& s) {
    Use u(s.get());
    return u.step() == SQLITE_DONE;
}

// The open transaction, rolled back on scope exit unless committed. ROLLBACK also runs when
// a failed COMMIT left the transaction open (SQLite keeps it open on SQLITE_BUSY, for one).
// Inside a batch (Store::begin_batch) it is a savepoint of the batch's transaction instead:
// committed means released into the batch, and a failure undoes only this call's part.
class Transaction {
public:
    explicit Transaction(sqlite3* db) : db_(db) {}
    Transaction(sqlite3* db, bool in_batch, std::int64_t& commits, const TxStmts& stmts)
        : db_(db), nested_(in_batch), commits_(&commits), stmts_(&stmts) {}
    ~Transaction() {
        if (!open_) return;
        if (nested_) {
            run_or_exec(&TxStmts::rollback_to, "ROLLBACK TO op");
            run_or_exec(&TxStmts::release, "RELEASE op");
        } else if (!sqlite3_get_autocommit(db_)) {
            run_or_exec(&TxStmts::rollback, "ROLLBACK");
        }
    }
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    // IMMEDIATE takes the write lock now, so nothing inside can fail on a lock upgrade.
    bool begin() {
        return open_ = nested_ ? run_or_exec(&TxStmts::savepoint, "SAVEPOINT op") : run_or_exec(&TxStmts::begin, "BEGIN IMMEDIATE");
    }
    bool commit() {
        if (!(nested_ ? run_or_exec(&TxStmts::release, "RELEASE op") : run_or_exec(&TxStmts::commit, "COMMIT"))) return false;
        if (!nested_ && commits_) ++*commits_;
        open_ = false;
        return true;
    }

private:
    // The prepared statement when the store has them (after open), else the SQL text.
    bool run_or_exec(Stmt TxStmts::*which, const char* sql) { return stmts_ ? run(stmts_->*which) : exec(db_, sql); }

    sqlite3* db_;
    bool nested_ = false;
    std::int64_t* commits_ = nullptr;
    const TxStmts* stmts_ = nullptr;
    bool open_ = false;
};

// mkdir -p with mode 0700 for whatever it creates: the store holds private messages.
bool make_dirs(const std::string& dir, int& err) {
    if (dir.empty()) return true;
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) {
        if (S_ISDIR(st.st_mode)) return true;
        err = ENOTDIR;
        return false;
    }
    auto slash = dir.find_last_of('/');
    if (slash != std::string::npos && slash > 0 && !make_dirs(dir.substr(0, slash), err)) return false;
    if (::mkdir(dir.c_str(), 0700) != 0) {
        if (errno == EEXIST) return true;
        err = errno;
        return false;
    }
    ::chmod(dir.c_str(), 0700);  // whatever the umask took away from the owner
    return true;
}

std::string parent_dir(const std::string& path) {
    auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return "";
    std::string dir = path.substr(0, slash);
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    return dir;
}

std::string read_pid(int fd) {
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return "unknown";
    long long pid = 0;
    if (std::sscanf(buf, "%lld", &pid) != 1 || pid <= 0) return "unknown";
    return std::to_string(pid);
}

xmpp::Error newer_schema(const std::string& path, std::int64_t version) {
    return make_error("store", path + " has schema version " + std::to_string(version) + ", newer than the version " +
                                   std::to_string(Store::schema_version) + " this stanzad knows; use a newer stanzad");
}

const char* kSelectEvents = "SELECT seq, json FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2";
const char* kInsertEvent =
    "INSERT INTO events (seq, account, kind, stamp, created_ms, json, peer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const char* kInsertOutbox =
    "INSERT INTO outbox (account, msg_id, to_jid, type, body, state, error, created, created_ms, updated_ms, "
    "replace_id) VALUES (?1, ?2, ?3, ?4, ?5, 'accepted', '', ?6, ?7, ?7, ?8) ON CONFLICT (account, msg_id) DO NOTHING";
const char* kUpdateOutbox =
    "UPDATE outbox SET state = ?3, error = ?4, updated_ms = ?5 WHERE account = ?1 AND msg_id = ?2";
const char* kOutboxColumns = "id, account, msg_id, to_jid, type, body, state, error, created, replace_id";
const char* kSelectCursor = "SELECT seq FROM cursors WHERE client = ?1";
// Forward only: the WHERE of the upsert leaves a cursor that is already further alone.
const char* kUpsertCursor =
    "INSERT INTO cursors (client, seq, updated_ms) VALUES (?1, ?2, ?3) ON CONFLICT (client) DO UPDATE "
    "SET seq = excluded.seq, updated_ms = excluded.updated_ms WHERE excluded.seq > cursors.seq";

OutboxEntry read_outbox(const Use& u) {
    OutboxEntry e;
    e.id = u.column_int64(0);
    e.account = u.column_text(1);
    e.msg_id = u.column_text(2);
    e.to = u.column_text(3);
    e.type = u.column_text(4);
    e.body = u.column_text(5);
    e.state = u.column_text(6);
    e.error = u.column_text(7);
    e.created = u.column_text(8);
    e.replace_id = u.column_text(9);
    return e;
}

// Inserts `event` as seq `seq` inside the caller's transaction (or as its own, when none is
// open). The seq is explicit rather than left to AUTOINCREMENT so the stored JSON can carry it
// in the same statement; the lock makes last_seq_ authoritative, and the PRIMARY KEY turns any
// disagreement into an error instead of a reused number. On failure `event` is as it was.
}  // namespace

std::string conversation_of(const model::Event& event) {
    const auto* m = std::get_if<model::Message>(&event.body);
    if (!m) return {};
    std::string_view jid = m->outgoing ? m->to : m->from;
    return std::string(jid.substr(0, jid.find('/')));
}

namespace {

xmpp::Status insert_event(sqlite3* db, sqlite3_stmt* stmt, model::Event& event, model::Seq seq,
                          std::int64_t created_ms) {
    const model::Seq old_seq = event.seq;
    const bool stamped = event.stamp.empty();
    if (stamped) event.stamp = xmpp::rfc3339(from_ms(created_ms));
    event.seq = seq;
    const std::string json = model::codec::encode(event);
    const std::string peer = conversation_of(event);  // bound without a copy: must outlive the step
    Use u(stmt);
    u.int64(1, seq)
        .text(2, event.account)
        .text(3, model::event_name(event.body))
        .text(4, event.stamp)
        .int64(5, created_ms)
        .text(6, json)
        .text(7, peer);
    int rc = u.step();
    if (rc == SQLITE_DONE && sqlite3_last_insert_rowid(db) == seq) return xmpp::Ok{};
    event.seq = old_seq;
    if (stamped) event.stamp.clear();
    if (rc == SQLITE_DONE) return make_error("store", "event stored under an unexpected seq");
    return db_error(db, "cannot store event " + std::to_string(seq));
}

}  // namespace

struct Store::Statements {
    Stmt select_events, insert_event, insert_outbox, update_outbox, select_pending, select_outbox,
        select_cursor, upsert_cursor, insert_inbound, update_inbound, insert_alias, select_inbound;
    MetaStmts meta;  // the SM checkpoint is written for every inbound stanza
    TxStmts tx;
};

xmpp::Result<std::unique_ptr<Store>> Store::open(const std::string& path) {
    // Filled as resources are taken, so the destructor releases them on any early return.
    std::unique_ptr<Store> store(new Store());

    int err = 0;
    if (!make_dirs(parent_dir(path), err)) return sys_error("cannot create the directory of", path, err);

    // The lock comes first: nothing touches the database while another daemon owns it.
    const std::string lock_path = path + ".lock";
    int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) return sys_error("cannot open", lock_path, errno);
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int flock_errno = errno;
        auto error = flock_errno == EWOULDBLOCK
                         ? make_error("store", "another stanzad is using " + path + " (pid " + read_pid(lock_fd) + ")")
                         : sys_error("cannot lock", lock_path, flock_errno);
        ::close(lock_fd);
        return error;
    }
    store->lock_fd_ = lock_fd;  // from here on, set means held
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(store->lock_fd_, 0) != 0) return sys_error("cannot write", lock_path, errno);
    errno = ENOSPC;  // what a short write means
    if (::pwrite(store->lock_fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
        return sys_error("cannot write", lock_path, errno);

    // Create the file ourselves so it is 0600 from the start (SQLite gives its -wal and -shm
    // files the mode of the database file), and tighten one that exists. By path, not by an
    // fd: closing any fd of the database file would drop SQLite's POSIX locks on it.
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST) return sys_error("cannot create", path, errno);
        if (fd >= 0) ::close(fd);
    }
    if (::chmod(path.c_str(), 0600) != 0) return sys_error("cannot chmod", path, errno);
    for (const char* suffix : {"-wal", "-shm"}) ::chmod((path + suffix).c_str(), 0600);  // may not exist

    if (sqlite3_open_v2(path.c_str(), &store->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK)
        return db_error(store->db_, "cannot open " + path);
    sqlite3* db = store->db_;
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, 5000);

    // Refuse a newer schema before changing anything (journal_mode is persistent).
    std::int64_t version = 0;
    if (!query_int64(db, "PRAGMA user_version", version)) return db_error(db, "cannot read " + path);
    if (version > schema_version) return newer_schema(path, version);

    std::string mode;
    if (!query_text(db, "PRAGMA journal_mode = WAL", mode)) return db_error(db, "cannot set journal_mode on " + path);
    if (mode != "wal")
        return make_error("store", "cannot use WAL on " + path + " (journal_mode is " + mode + ")");
    // FULL: in WAL mode each commit is fsynced, so "accepted" means on disk.
    // cache_size: 1 MiB of page cache (SQLite's default is 2,000 KiB); it fills up with the
    // pages a burst touches and stays full: docs/performance.md "Memory".
    if (!exec(db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -1024"))
        return db_error(db, "cannot configure " + path);

    {
        Transaction tx(db);
        if (!tx.begin()) return db_error(db, "cannot migrate " + path);
        // Read again under the write lock: this is the version the migrations start from.
        if (!query_int64(db, "PRAGMA user_version", version)) return db_error(db, "cannot read " + path);
        if (version > schema_version) return newer_schema(path, version);
        for (auto v = version; v < schema_version; ++v) {
            if (!exec(db, migrations[v]))
                return db_error(db, "cannot migrate " + path + " to version " + std::to_string(v + 1));
        }
        if (version < schema_version) {
            std::string set = "PRAGMA user_version = " + std::to_string(schema_version);
            if (!exec(db, set.c_str())) return db_error(db, "cannot migrate " + path);
        }
        if (!tx.commit()) return db_error(db, "cannot migrate " + path);
    }

    // sqlite_sequence remembers the highest seq ever given, also when pruning emptied the log.
    if (!query_int64(db,
                     "SELECT max(coalesce((SELECT max(seq) FROM events), 0), "
                     "coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0))",
                     store->last_seq_))
        return db_error(db, "cannot read the last seq of " + path);

    store->stmts_ = std::make_unique<Statements>();
    Statements& s = *store->stmts_;
    const std::string columns = kOutboxColumns;
    const std::string select_pending = "SELECT " + columns +
                                       " FROM outbox WHERE account = ?1 AND state IN ('accepted', 'sent') ORDER BY id";
    const std::string select_outbox = "SELECT " + columns + " FROM outbox WHERE account = ?1 AND msg_id = ?2";
    if (!s.select_events.prepare(db, kSelectEvents) || !s.insert_event.prepare(db, kInsertEvent) ||
        !s.insert_outbox.prepare(db, kInsertOutbox) || !s.update_outbox.prepare(db, kUpdateOutbox) ||
        !s.select_pending.prepare(db, select_pending.c_str()) ||
        !s.select_outbox.prepare(db, select_outbox.c_str()) || !s.select_cursor.prepare(db, kSelectCursor) ||
        !s.upsert_cursor.prepare(db, kUpsertCursor) ||
        !s.insert_inbound.prepare(db, "INSERT INTO inbound_ids (account, id, created_ms) VALUES (?1, ?2, ?3) "
                                      "ON CONFLICT DO NOTHING") ||
        !s.update_inbound.prepare(db, "UPDATE inbound_ids SET value = ?3 WHERE account = ?1 AND id = ?2") ||
        !s.insert_alias.prepare(db, "INSERT INTO inbound_ids (account, id, created_ms, value) "
                                    "VALUES (?1, ?2, ?4, ?3) ON CONFLICT DO NOTHING") ||
        !s.select_inbound.prepare(db, "SELECT value FROM inbound_ids WHERE account = ?1 AND id = ?2") ||
        !s.meta.prepare(db) || !s.tx.prepare(db))
        return db_error(db, "cannot prepare statements for " + path);

    return store;
}

Store::~Store() {
    stmts_.reset();  // statements first: sqlite3_close refuses a connection with live ones
    if (db_) sqlite3_close(db_);
    if (lock_fd_ >= 0) {
        // Empty the pid, so a reader racing the next holder's write sees "unknown", not us.
        if (::ftruncate(lock_fd_, 0) != 0) {
        }
        ::close(lock_fd_);  // releases the flock
    }
}

xmpp::Status Store::append(model::Event& event) {
    const bool batched = join_batch();
    auto st = insert_event(db_, stmts_->insert_event.get(), event, last_seq_ + 1, now_ms());
    if (st) last_seq_ = event.seq;
    if (st && !batched) ++commits_;
    return st;
}

bool Store::join_batch() {
    if (batch_depth_ == 0) return false;
    // A failed BEGIN leaves the calls to run on their own (autocommit): durable at once,
    // which only costs the batching; end_batch() then has nothing to commit.
    if (!batch_open_) batch_open_ = run(stmts_->tx.begin);
    return batch_open_;
}

void Store::begin_batch() { ++batch_depth_; }

xmpp::Status Store::end_batch() {
    if (batch_depth_ == 0) return make_error("store", "end_batch without begin_batch");
    if (--batch_depth_ > 0 || !batch_open_) return xmpp::Ok{};
    batch_open_ = false;
    if (!run(stmts_->tx.commit)) {
        auto error = db_error(db_, "cannot commit");
        if (!sqlite3_get_autocommit(db_)) run(stmts_->tx.rollback);
        return error;
    }
    ++commits_;
    return xmpp::Ok{};
}

xmpp::Result<std::vector<model::Event>> Store::events_after(model::Seq after, std::size_t limit) {
    std::vector<model::Event> out;
    const auto max = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    Use u(stmts_->select_events.get());
    u.int64(1, after).int64(2, static_cast<std::int64_t>(limit > max ? max : limit));
    int rc;
    while ((rc = u.step()) == SQLITE_ROW) {
        const model::Seq seq = u.column_int64(0);
        auto event = model::codec::decode(u.column_text(1));
        // Our own encode() wrote it; failing to read it back is a bug to surface, not skip.
        if (!event)
            return make_error("store", "stored event " + std::to_string(seq) + " does not decode: " +
                                           event.error().message);
        event.value().seq = seq;
        out.push_back(std::move(event).value());
    }
    if (rc != SQLITE_DONE) return db_error(db_, "cannot read events");
    return out;
}

xmpp::Result<model::Seq> Store::cursor(const std::string& client) {
    Use u(stmts_->select_cursor.get());
    u.text(1, client);
    int rc = u.step();
    if (rc == SQLITE_ROW) return u.column_int64(0);
    if (rc == SQLITE_DONE) return model::Seq{0};
    return db_error(db_, "cannot read the cursor of '" + client + "'");
}

xmpp::Status Store::set_cursor(const std::string& client, model::Seq seq, std::chrono::system_clock::time_point now) {
    if (seq < 0 || seq > last_seq_)
        return make_error("bad-seq", "seq " + std::to_string(seq) + " is not a stored event (last seq is " +
                                         std::to_string(last_seq_) + ")");
    const bool batched = join_batch();
    Use u(stmts_->upsert_cursor.get());
    u.text(1, client).int64(2, seq).int64(3, unix_ms(now));
    if (u.step() != SQLITE_DONE) return db_error(db_, "cannot set the cursor of '" + client + "'");
    if (!batched) ++commits_;
    return xmpp::Ok{};
}

xmpp::Result<bool> Store::enqueue(const OutboxEntry& entry, std::vector<model::Event>& events) {
    const std::int64_t now = now_ms();
    const std::string created = entry.created.empty() ? xmpp::rfc3339(from_ms(now)) : entry.created;
    Transaction tx(db_, join_batch(), commits_, stmts_->tx);
    if (!tx.begin()) return db_error(db_, "cannot enqueue");
    {
        Use u(stmts_->insert_outbox.get());
        u.text(1, entry.account)
            .text(2, entry.msg_id)
            .text(3, entry.to)
            .text(4, entry.type)
            .text(5, entry.body)
            .text(6, created)
            .int64(7, now)
            .text(8, entry.replace_id);
        if (u.step() != SQLITE_DONE) return db_error(db_, "cannot enqueue '" + entry.msg_id + "'");
        if (sqlite3_changes(db_) == 0) return false;  // a retried send: the row is already there
    }

    // Seqs and stamps given so far, to undo if a later step fails and the transaction rolls back.
    std::vector<std::pair<model::Seq, std::string>> before;
    before.reserve(events.size());
    auto undo = [&] {
        for (std::size_t i = 0; i < before.size(); ++i) {
            events[i].seq = before[i].first;
            events[i].stamp = std::move(before[i].second);
        }
    };
    model::Seq seq = last_seq_;
    for (auto& event : events) {
        before.emplace_back(event.seq, event.stamp);
        auto st = insert_event(db_, stmts_->insert_event.get(), event, ++seq, now);
        if (!st) {
            undo();
            return st.error();
        }
    }
    if (!tx.commit()) {
        auto error = db_error(db_, "cannot enqueue '" + entry.msg_id + "'");
        undo();
        return error;
    }
    last_seq_ = seq;
    return true;
}

xmpp::Result<std::vector<OutboxEntry>> Store::pending(const std::string& account) {
    std::vector<OutboxEntry> out;
    Use u(stmts_->select_pending.get());
    u.text(1, account);
    int rc;
    while ((rc = u.step()) == SQLITE_ROW) out.push_back(read_outbox(u));
    if (rc != SQLITE_DONE) return db_error(db_, "cannot read the outbox");
    return out;
}

xmpp::Status Store::set_state(const std::string& account, const std::string& msg_id, const std::string& state,
                              const std::string& error, model::Event& event) {
    const std::int64_t now = now_ms();
    Transaction tx(db_, join_batch(), commits_, stmts_->tx);
    if (!tx.begin()) return db_error(db_, "cannot update '" + msg_id + "'");
    {
        Use u(stmts_->update_outbox.get());
        u.text(1, account).text(2, msg_id).text(3, state).text(4, error).int64(5, now);
        if (u.step() != SQLITE_DONE) return db_error(db_, "cannot update '" + msg_id + "'");
        if (sqlite3_changes(db_) == 0)
            return make_error("not-found", "no message '" + msg_id + "' in the outbox of '" + account + "'");
    }
    const model::Seq old_seq = event.seq;
    const std::string old_stamp = event.stamp;
    auto st = insert_event(db_, stmts_->insert_event.get(), event, last_seq_ + 1, now);
    if (!st) return st;
    if (!tx.commit()) {
        event.seq = old_seq;
        event.stamp = old_stamp;
        return db_error(db_, "cannot update '" + msg_id + "'");
    }
    last_seq_ = event.seq;
    return xmpp::Ok{};
}

namespace {

// Inside the caller's transaction.
xmpp::Status write_metas(sqlite3* db, const MetaStmts& stmts, const std::string& account,
                         const std::vector<MetaWrite>& writes) {
    for (const auto& w : writes) {
        Use u(w.value ? stmts.upsert.get() : stmts.remove.get());
        u.text(1, account).text(2, w.key);
        if (w.value) u.text(3, *w.value);
        if (u.step() != SQLITE_DONE) return db_error(db, "cannot write " + w.key);
    }
    return xmpp::Ok{};
}

}  // namespace

xmpp::Result<bool> Store::append_once(model::Event& event, const std::string& key,
                                      const std::vector<std::pair<std::string, std::string>>& aliases,
                                      const std::vector<MetaWrite>& meta) {
    const std::int64_t now = now_ms();
    Transaction tx(db_, join_batch(), commits_, stmts_->tx);
    if (!tx.begin()) return db_error(db_, "cannot store an event");
    {
        Use u(stmts_->insert_inbound.get());
        u.text(1, event.account).text(2, key).int64(3, now);
        if (u.step() != SQLITE_DONE) return db_error(db_, "cannot store an event");
        if (sqlite3_changes(db_) == 0) return false;  // seen before: the rollback keeps nothing
    }
    const model::Seq old_seq = event.seq;
    const std::string old_stamp = event.stamp;
    if (auto st = insert_event(db_, stmts_->insert_event.get(), event, last_seq_ + 1, now); !st) return st.error();
    // The key points at the event; aliases point where the caller says, or with an empty
    // value at the event too (the first one recorded wins).
    std::vector<std::pair<std::string, std::string>> rows{{key, std::to_string(event.seq)}};
    for (const auto& [alias, value] : aliases) rows.emplace_back(alias, value.empty() ? rows[0].second : value);
    for (std::size_t i = 0; i < rows.size(); ++i) {
        Use u(i == 0 ? stmts_->update_inbound.get() : stmts_->insert_alias.get());
        u.text(1, event.account).text(2, rows[i].first).text(3, rows[i].second);
        if (i > 0) u.int64(4, now);
        if (u.step() != SQLITE_DONE) {
            event.seq = old_seq;  // rolled back: that seq is given again to the next event
            event.stamp = old_stamp;
            return db_error(db_, "cannot store an event");
        }
    }
    if (auto st = write_metas(db_, stmts_->meta, event.account, meta); !st) {
        event.seq = old_seq;
        event.stamp = old_stamp;
        return st.error();
    }
    if (!tx.commit()) {
        event.seq = old_seq;
        event.stamp = old_stamp;
        return db_error(db_, "cannot store an event");
    }
    last_seq_ = event.seq;
    return true;
}

xmpp::Result<std::optional<std::string>> Store::inbound(const std::string& account, const std::string& key) {
    Use u(stmts_->select_inbound.get());
    u.text(1, account).text(2, key);
    int rc = u.step();
    if (rc == SQLITE_ROW) return std::optional<std::string>(u.column_text(0));
    if (rc == SQLITE_DONE) return std::optional<std::string>();
    return db_error(db_, "cannot read inbound ids");
}

xmpp::Result<std::vector<model::Event>> Store::messages(const std::string& account, const std::string& peer,
                                                       const MessageRange& range, std::size_t limit) {
    std::string sql = "SELECT seq, json FROM events WHERE account = ?1 AND peer = ?2 AND peer != ''";
    if (range.after) sql += " AND seq > ?3";
    if (range.before) sql += " AND seq < ?4";
    if (!range.after_stamp.empty()) sql += " AND stamp > ?5";
    if (!range.before_stamp.empty()) sql += " AND stamp < ?6";
    sql += range.newest ? " ORDER BY seq DESC LIMIT ?7" : " ORDER BY seq ASC LIMIT ?7";
    Stmt s;
    if (!s.prepare(db_, sql.c_str())) return db_error(db_, "cannot read messages");
    Use u(s.get());
    u.text(1, account).text(2, peer);
    if (range.after) u.int64(3, *range.after);
    if (range.before) u.int64(4, *range.before);
    if (!range.after_stamp.empty()) u.text(5, range.after_stamp);
    if (!range.before_stamp.empty()) u.text(6, range.before_stamp);
    u.int64(7, static_cast<std::int64_t>(std::min<std::size_t>(limit, 1 << 20)));
    std::vector<model::Event> out;
    int rc;
    while ((rc = u.step()) == SQLITE_ROW) {
        auto event = model::codec::decode(u.column_text(1));
        if (!event) continue;
        event.value().seq = u.column_int64(0);
        out.push_back(std::move(event).value());
    }
    if (rc != SQLITE_DONE) return db_error(db_, "cannot read messages");
    if (range.newest) std::reverse(out.begin(), out.end());
    return out;
}

xmpp::Result<std::optional<model::Seq>> Store::message_seq(const std::string& account, const std::string& peer,
                                                          const std::string& msg_id) {
    Stmt s;
    if (!s.prepare(db_, "SELECT seq FROM events WHERE account = ?1 AND peer = ?2 AND peer != '' AND "
                        "json_extract(json, '$.msg_id') = ?3 ORDER BY seq LIMIT 1"))
        return db_error(db_, "cannot read messages");
    Use u(s.get());
    u.text(1, account).text(2, peer).text(3, msg_id);
    int rc = u.step();
    if (rc == SQLITE_ROW) return std::optional<model::Seq>(u.column_int64(0));
    if (rc == SQLITE_DONE) return std::optional<model::Seq>();
    return db_error(db_, "cannot read messages");
}

xmpp::Result<std::vector<Conversation>> Store::conversations(const std::string& after_stamp,
                                                            const std::string& before_stamp, std::size_t limit) {
    Stmt s;
    if (!s.prepare(db_, "SELECT account, peer, max(stamp) AS last FROM events WHERE peer != '' "
                        "GROUP BY account, peer HAVING last > ?1 AND last < ?2 ORDER BY last DESC LIMIT ?3"))
        return db_error(db_, "cannot read conversations");
    const std::string before = before_stamp.empty() ? "~" : before_stamp;  // bound without a copy
    Use u(s.get());
    u.text(1, after_stamp).text(2, before).int64(3, static_cast<std::int64_t>(limit));
    std::vector<Conversation> out;
    int rc;
    while ((rc = u.step()) == SQLITE_ROW) out.push_back({u.column_text(0), u.column_text(1), u.column_text(2)});
    if (rc != SQLITE_DONE) return db_error(db_, "cannot read conversations");
    return out;
}

xmpp::Result<std::optional<model::Event>> Store::event(model::Seq seq) {
    auto batch = events_after(seq - 1, 1);
    if (!batch) return batch.error();
    if (batch.value().empty() || batch.value().front().seq != seq) return std::optional<model::Event>();
    return std::optional<model::Event>(std::move(batch.value().front()));
}

xmpp::Result<std::string> Store::meta(const std::string& account, const std::string& key) {
    Stmt s;
    if (!s.prepare(db_, "SELECT value FROM account_meta WHERE account = ?1 AND key = ?2"))
        return db_error(db_, "cannot read " + key);
    Use u(s.get());
    u.text(1, account).text(2, key);
    int rc = u.step();
    if (rc == SQLITE_ROW) return u.column_text(0);
    if (rc == SQLITE_DONE) return std::string();
    return db_error(db_, "cannot read " + key);
}

xmpp::Status Store::set_meta(const std::string& account, const std::string& key, const std::string& value) {
    const bool batched = join_batch();
    Use u(stmts_->meta.upsert.get());
    u.text(1, account).text(2, key).text(3, value);
    if (u.step() != SQLITE_DONE) return db_error(db_, "cannot write " + key);
    if (!batched) ++commits_;
    return xmpp::Ok{};
}

xmpp::Status Store::set_metas(const std::string& account, const std::vector<MetaWrite>& writes) {
    if (writes.empty()) return xmpp::Ok{};
    Transaction tx(db_, join_batch(), commits_, stmts_->tx);
    if (!tx.begin()) return db_error(db_, "cannot write account values");
    if (auto st = write_metas(db_, stmts_->meta, account, writes); !st) return st;
    if (!tx.commit()) return db_error(db_, "cannot write account values");
    return xmpp::Ok{};
}

xmpp::Result<std::vector<std::pair<std::string, std::string>>> Store::metas(const std::string& account,
                                                                             const std::string& prefix,
                                                                             std::size_t limit) {
    // A range on the primary key: every key that starts with `prefix` sorts in
    // [prefix, prefix + U+10FFFF) as UTF-8 text (BINARY collation).
    Stmt s;
    if (!s.prepare(db_, "SELECT key, value FROM account_meta WHERE account = ?1 AND key >= ?2 AND key < ?3 "
                        "ORDER BY key LIMIT ?4"))
        return db_error(db_, "cannot read " + prefix);
    const std::string end = prefix + "\xF4\x8F\xBF\xBF";
    Use u(s.get());
    u.text(1, account).text(2, prefix).text(3, end).int64(4, static_cast<std::int64_t>(std::min<std::size_t>(limit, 1 << 20)));
    std::vector<std::pair<std::string, std::string>> out;
    int rc;
    while ((rc = u.step()) == SQLITE_ROW) out.emplace_back(u.column_text(0), u.column_text(1));
    if (rc != SQLITE_DONE) return db_error(db_, "cannot read " + prefix);
    return out;
}

xmpp::Result<OutboxEntry> Store::find(const std::string& account, const std::string& msg_id) {
    Use u(stmts_->select_outbox.get());
    u.text(1, account).text(2, msg_id);
    int rc = u.step();
    if (rc == SQLITE_ROW) return read_outbox(u);
    if (rc == SQLITE_DONE)
        return make_error("not-found", "no message '" + msg_id + "' in the outbox of '" + account + "'");
    return db_error(db_, "cannot read the outbox");
}

xmpp::Result<std::int64_t> Store::prune(std::chrono::system_clock::time_point now, int history_days) {
    if (history_days < 0)
        return make_error("store", "history_days must not be negative (" + std::to_string(history_days) + ")");
    const std::int64_t cutoff = unix_ms(now) - std::int64_t{history_days} * 86'400'000;
    Transaction tx(db_, join_batch(), commits_, stmts_->tx);
    if (!tx.begin()) return db_error(db_, "cannot prune");
    std::int64_t deleted = 0;
    {
        // Events a client has not confirmed stay, however old, unless that client has not
        // confirmed anything for history_days: a front end used once must not keep the
        // store growing for ever (it gets what is left when it comes back).
        Stmt s;
        if (!s.prepare(db_,
                       "DELETE FROM events WHERE created_ms < ?1 AND "
                       "seq <= coalesce((SELECT min(seq) FROM cursors WHERE updated_ms >= ?1), 9223372036854775807)"))
            return db_error(db_, "cannot prune");
        Use u(s.get());
        u.int64(1, cutoff);
        if (u.step() != SQLITE_DONE) return db_error(db_, "cannot prune events");
        deleted = sqlite3_changes64(db_);
    }
    {
        Stmt s;
        if (!s.prepare(db_,
                       "DELETE FROM outbox WHERE state IN ('acked', 'delivered', 'failed') AND updated_ms < ?1"))
            return db_error(db_, "cannot prune");
        Use u(s.get());
        u.int64(1, cutoff);
        if (u.step() != SQLITE_DONE) return db_error(db_, "cannot prune the outbox");
    }
    {
        // De-duplication ids go with the events they stand for: older than the cutoff and
        // than every event still kept (a message the server hands over again after that
        // long is stored again, as history).
        Stmt s;
        if (!s.prepare(db_,
                       "DELETE FROM inbound_ids WHERE created_ms < ?1 AND "
                       "created_ms < coalesce((SELECT min(created_ms) FROM events), ?1)"))
            return db_error(db_, "cannot prune");
        Use u(s.get());
        u.int64(1, cutoff);
        if (u.step() != SQLITE_DONE) return db_error(db_, "cannot prune the de-duplication ids");
    }
    if (!tx.commit()) return db_error(db_, "cannot prune");
    return deleted;
}

}  // namespace stanzad
