// The store's schema and its migrations, and opening a store: the directory, the lock, the
// file's mode, the connection's settings, the migrations and the prepared statements.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <iterator>

#include "daemon/store.hpp"
#include "daemon/store_checkpoint.hpp"
#include "daemon/store_detail.hpp"
#include "daemon/store_vfs.hpp"

namespace stanzad {

using namespace store_detail;

namespace {


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
    // 5 -> 6 (issue 13): rows independent of the JSON wire. A row carries the version of the
    // codec that wrote its json (format: model::codec::format_version; every row before this
    // schema was written in format 1), and what the store's queries ask of it is in columns:
    // msg_id (of a message or a message-state; '' for anything else) and direction ('in' or
    // 'out' for a message, '' for anything else). Filled here from the JSON, the last use of
    // json_extract; the msgid lookup (message_seq) reads the column through a plain index.
    // And for a big store (issue 15): conversations, one row per (account, peer) with its
    // last seq and its latest stamp, kept by every insert of a message (in the insert's
    // transaction) and by prune, so that the conversation list (CHATHISTORY TARGETS) reads a
    // row per conversation instead of an index entry per message. Built here from the events.
    // inbound_ids_created: prune, which runs at every start before the first request is
    // served, finds old de-duplication ids by it instead of reading all of them (one per
    // incoming message: 50 ms at 500,000; docs/performance.md).
    R"sql(
ALTER TABLE events ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
ALTER TABLE events ADD COLUMN msg_id TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN direction TEXT NOT NULL DEFAULT '';
UPDATE events SET
    msg_id = coalesce(json_extract(json, '$.msg_id'), ''),
    direction = CASE WHEN kind != 'message' THEN ''
                     WHEN json_extract(json, '$.outgoing') THEN 'out' ELSE 'in' END
WHERE kind IN ('message', 'message-state');
DROP INDEX events_msgid;
CREATE INDEX events_msgid ON events (account, peer, msg_id) WHERE peer != '';
CREATE TABLE conversations (
    account TEXT NOT NULL,
    peer TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    last_stamp TEXT NOT NULL,  -- the latest stamp of its messages (a delayed one may come later)
    PRIMARY KEY (account, peer)
) WITHOUT ROWID;
CREATE INDEX conversations_last ON conversations (last_stamp);
INSERT INTO conversations (account, peer, last_seq, last_stamp)
SELECT account, peer, max(seq), max(stamp) FROM events WHERE peer != '' GROUP BY account, peer;
CREATE INDEX inbound_ids_created ON inbound_ids (created_ms);
)sql",
    // 6 -> 7 (issue 15): no change to the tables. An incoming message's stanza-id is no
    // longer kept as a "sid:"/"rsid:" row of inbound_ids: it is found as the msg_id of its
    // conversation's messages (events_msgid; im::identify, by_msg_id). The rows written
    // before stay, and go with their events at prune. The version moves so that an older
    // stanzad, which would look for such rows and store copies again, refuses the store
    // ("use a newer stanzad").
    "SELECT 1;",
    // 7 -> 8 (issue 15): events and outbox without AUTOINCREMENT, and no events_created.
    // AUTOINCREMENT read and wrote sqlite_sequence at every insert (about 4,200 instructions
    // each; a sent message inserts five rows), and events_created, which only prune read, was
    // one more index entry per event (as much again). An event's seq was already given by
    // the store (last seq + 1); what AUTOINCREMENT kept besides, the highest seq ever given
    // even after prune emptied the log, is now events_floor's one row, which prune raises
    // when it deletes. Prune finds old events from the log's front, by seq (Store::prune).
    // outbox_pending holds only the messages still to acknowledge, in queue order: the
    // server's ack takes a message out of it instead of moving it within (about 4,600
    // instructions less), and the outbox at start-up reads it without sorting.
    // SQLite cannot drop AUTOINCREMENT in place: both tables are copied, once.
    R"sql(
CREATE TABLE events_floor (seq INTEGER NOT NULL);
INSERT INTO events_floor (seq) SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0);
CREATE TABLE events_v8 (
    seq INTEGER PRIMARY KEY,  -- given by the store: above every seq in events and events_floor
    account TEXT NOT NULL,
    kind TEXT NOT NULL,
    stamp TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    json TEXT NOT NULL,
    peer TEXT NOT NULL DEFAULT '',
    format INTEGER NOT NULL DEFAULT 1,
    msg_id TEXT NOT NULL DEFAULT '',
    direction TEXT NOT NULL DEFAULT ''
);
INSERT INTO events_v8 (seq, account, kind, stamp, created_ms, json, peer, format, msg_id, direction)
SELECT seq, account, kind, stamp, created_ms, json, peer, format, msg_id, direction FROM events ORDER BY seq;
DROP TABLE events;
ALTER TABLE events_v8 RENAME TO events;
CREATE INDEX events_peer ON events (account, peer, seq, stamp) WHERE peer != '';
CREATE INDEX events_msgid ON events (account, peer, msg_id) WHERE peer != '';
CREATE TABLE outbox_v8 (
    id INTEGER PRIMARY KEY,  -- the order of sending; an id freed by prune may come again
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
    replace_id TEXT NOT NULL DEFAULT '',
    UNIQUE (account, msg_id)
);
INSERT INTO outbox_v8 (id, account, msg_id, to_jid, type, body, state, error, created, created_ms, updated_ms,
                       replace_id)
SELECT id, account, msg_id, to_jid, type, body, state, error, created, created_ms, updated_ms, replace_id
FROM outbox ORDER BY id;
DROP TABLE outbox;
ALTER TABLE outbox_v8 RENAME TO outbox;
CREATE INDEX outbox_pending ON outbox (account, id) WHERE state IN ('accepted', 'sent');
)sql",
};
static_assert(std::size(migrations) == Store::schema_version, "one migration per schema version");

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

// ?3: one kind only, or '' for all (the IRC replay reads messages only).
const char* kSelectEvents =
    "SELECT seq, json, format FROM events WHERE seq > ?1 AND (?3 = '' OR kind = ?3) ORDER BY seq LIMIT ?2";
const char* kInsertEvent =
    "INSERT INTO events (seq, account, kind, stamp, created_ms, json, peer, format, msg_id, direction) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
const char* kInsertOutbox =
    "INSERT INTO outbox (account, msg_id, to_jid, type, body, state, error, created, created_ms, updated_ms, "
    "replace_id) VALUES (?1, ?2, ?3, ?4, ?5, ?9, '', ?6, ?7, ?7, ?8) ON CONFLICT (account, msg_id) DO NOTHING";
const char* kUpdateOutbox =
    "UPDATE outbox SET state = ?3, error = ?4, updated_ms = ?5 WHERE account = ?1 AND msg_id = ?2";
// The stamp kept is the latest, not the last inserted one: the conversation list orders by
// the time of the newest message, and archive catch-up stores older messages after newer.
const char* kUpsertConversation =
    "INSERT INTO conversations (account, peer, last_seq, last_stamp) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (account, peer) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq), "
    "last_stamp = max(last_stamp, excluded.last_stamp)";
const char* kOutboxColumns = "id, account, msg_id, to_jid, type, body, state, error, created, replace_id";
const char* kSelectCursor = "SELECT seq FROM cursors WHERE client = ?1";
// Forward only: the WHERE of the upsert leaves a cursor that is already further alone.
const char* kUpsertCursor =
    "INSERT INTO cursors (client, seq, updated_ms) VALUES (?1, ?2, ?3) ON CONFLICT (client) DO UPDATE "
    "SET seq = excluded.seq, updated_ms = excluded.updated_ms WHERE excluded.seq > cursors.seq";

// Takes the advisory lock on PATH.lock and writes our pid into it; `lock_fd` is set once the
// lock is held (the Store's destructor releases it).
xmpp::Status take_lock(const std::string& path, int& lock_fd_out) {
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
    lock_fd_out = lock_fd;  // from here on, set means held
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(lock_fd, 0) != 0) return sys_error("cannot write", lock_path, errno);
    errno = ENOSPC;  // what a short write means
    if (::pwrite(lock_fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
        return sys_error("cannot write", lock_path, errno);
    return xmpp::Ok{};
}

// Create the file ourselves so it is 0600 from the start (SQLite gives its -wal and -shm
// files the mode of the database file), and tighten one that exists. By path, not by an
// fd: closing any fd of the database file would drop SQLite's POSIX locks on it.
xmpp::Status make_private_file(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST) return sys_error("cannot create", path, errno);
        if (fd >= 0) ::close(fd);
    }
    if (::chmod(path.c_str(), 0600) != 0) return sys_error("cannot chmod", path, errno);
    for (const char* suffix : {"-wal", "-shm"}) ::chmod((path + suffix).c_str(), 0600);  // may not exist
    return xmpp::Ok{};
}

// The connection's settings: WAL, synchronous, the cache. Refuses a newer schema first.
xmpp::Status configure(sqlite3* db, const std::string& path) {
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, 5000);

    // Refuse a newer schema before changing anything (journal_mode is persistent).
    std::int64_t version = 0;
    if (!query_int64(db, "PRAGMA user_version", version)) return db_error(db, "cannot read " + path);
    if (version > Store::schema_version) return newer_schema(path, version);

    std::string mode;
    if (!query_text(db, "PRAGMA journal_mode = WAL", mode)) return db_error(db, "cannot set journal_mode on " + path);
    if (mode != "wal")
        return make_error("store", "cannot use WAL on " + path + " (journal_mode is " + mode + ")");
    // FULL: in WAL mode each commit is fsynced, so "accepted" means on disk.
    // cache_size: 1 MiB of page cache (SQLite's default is 2,000 KiB); it fills up with the
    // pages a burst touches and stays full: docs/performance.md "Memory".
    // temp_store: a statement that may fail part way keeps the pages as they were before it
    // in a statement journal, which SQLite spills to a temporary file past 64 KiB (when
    // every store call was a savepoint: 29-39 pwrite64 per relayed message in a burst). In
    // memory it costs no syscall, and is freed when the transaction ends
    // (docs/performance.md).
    // wal_autocheckpoint: what SQLite does only when the checkpoint worker could not start
    // (Store::open, daemon/store_checkpoint.hpp, which checkpoints at the same size).
    // 4,000 pages (16 MiB of WAL; SQLite's default is 1,000). A checkpoint
    // copies each page the WAL holds once, however often it was committed since the last one,
    // and every commit rewrites the same few pages (the ends of the events and their indexes,
    // the conversation, the cursor, the stream's state): four times fewer checkpoints write
    // those four times less. Inbound, that halved the pages written to the database
    // (docs/performance.md).
    if (!exec(db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -1024; "
                  "PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 4000"))
        return db_error(db, "cannot configure " + path);
    return xmpp::Ok{};
}

// Runs the migrations from the file's user_version to schema_version, in one transaction;
// `from` gets the version it started from.
xmpp::Status migrate(sqlite3* db, const std::string& path, int& from) {
    Transaction tx(db);
    if (!tx.begin()) return db_error(db, "cannot migrate " + path);
    // Read again under the write lock: this is the version the migrations start from.
    std::int64_t version = 0;
    if (!query_int64(db, "PRAGMA user_version", version)) return db_error(db, "cannot read " + path);
    if (version > Store::schema_version) return newer_schema(path, version);
    for (auto v = version; v < Store::schema_version; ++v) {
        if (!exec(db, migrations[v]))
            return db_error(db, "cannot migrate " + path + " to version " + std::to_string(v + 1));
    }
    if (version < Store::schema_version) {
        std::string set = "PRAGMA user_version = " + std::to_string(Store::schema_version);
        if (!exec(db, set.c_str())) return db_error(db, "cannot migrate " + path);
    }
    if (!tx.commit()) return db_error(db, "cannot migrate " + path);
    from = static_cast<int>(version);
    return xmpp::Ok{};
}

// After a migration that copied tables (7 -> 8), the old copies' pages are free inside the
// file (as much again as the log); VACUUM gives them back to the disk. It needs room for one
// more copy while it runs; without it the store works as it is, and reuses those pages.
// Either way the WAL, which held the copies, is emptied and cut back to nothing, first
// before the VACUUM, which goes through the WAL again.
std::string compact_after(sqlite3* db, int from) {
    if (from == 0 || from >= 8) return "";
    static_cast<void>(exec(db, "PRAGMA wal_checkpoint(TRUNCATE)"));
    std::string error = exec(db, "VACUUM") ? "" : sqlite3_errmsg(db);
    static_cast<void>(exec(db, "PRAGMA wal_checkpoint(TRUNCATE)"));
    return error;
}

// Migrating and compacting keep their temporary pages in files, not in memory (configure's
// temp_store = MEMORY), and do not overwrite the pages a dropped copy frees (Debian builds
// SQLite with SECURE_DELETE): those pages went through the WAL once more (a WAL twice the
// store's size) and, with the statement journal in memory, through memory. What they hold
// is still in the new copy, and VACUUM rewrites the file without them.
xmpp::Status migrate_and_compact(sqlite3* db, const std::string& path, int& from, std::string& compact_error) {
    std::int64_t secure_delete = 1;
    if (!query_int64(db, "PRAGMA secure_delete", secure_delete) || !exec(db, "PRAGMA temp_store = FILE") ||
        !exec(db, "PRAGMA secure_delete = OFF"))
        return db_error(db, "cannot configure " + path);
    auto st = migrate(db, path, from);
    if (st) compact_error = compact_after(db, from);
    const std::string restore =
        "PRAGMA secure_delete = " + std::to_string(secure_delete) + "; PRAGMA temp_store = MEMORY";
    if (!exec(db, restore.c_str())) return db_error(db, "cannot configure " + path);
    return st;
}

}  // namespace

bool Store::Statements::prepare(sqlite3* db) {
    Statements& s = *this;
    const std::string columns = kOutboxColumns;
    const std::string select_pending = "SELECT " + columns +
                                       " FROM outbox WHERE account = ?1 AND state IN ('accepted', 'sent') ORDER BY id";
    const std::string select_outbox = "SELECT " + columns + " FROM outbox WHERE account = ?1 AND msg_id = ?2";
    return s.select_events.prepare(db, kSelectEvents) && s.insert_event.prepare(db, kInsertEvent) &&
           s.upsert_conversation.prepare(db, kUpsertConversation) &&
           s.insert_outbox.prepare(db, kInsertOutbox) && s.update_outbox.prepare(db, kUpdateOutbox) &&
           s.select_pending.prepare(db, select_pending.c_str()) &&
           s.select_outbox.prepare(db, select_outbox.c_str()) && s.select_cursor.prepare(db, kSelectCursor) &&
           s.upsert_cursor.prepare(db, kUpsertCursor) &&
           s.insert_inbound.prepare(db, "INSERT INTO inbound_ids (account, id, created_ms, value) "
                                        "VALUES (?1, ?2, ?4, ?3) ON CONFLICT DO NOTHING") &&
           s.select_inbound.prepare(db, "SELECT value FROM inbound_ids WHERE account = ?1 AND id = ?2") &&
           // Every incoming message with a stanza-id looks it up (im::identify, by_msg_id).
           s.select_msg_seq.prepare(db, "SELECT seq FROM events WHERE account = ?1 AND peer = ?2 AND peer != '' AND "
                                        "msg_id = ?3 ORDER BY seq LIMIT 1") &&
           s.meta.prepare(db) && s.tx.prepare(db);
}

xmpp::Result<std::unique_ptr<Store>> Store::open(const std::string& path) {
    // Filled as resources are taken, so the destructor releases them on any early return.
    std::unique_ptr<Store> store(new Store());

    int err = 0;
    if (!make_dirs(parent_dir(path), err)) return sys_error("cannot create the directory of", path, err);
    if (auto st = take_lock(path, store->lock_fd_); !st) return st.error();
    if (auto st = make_private_file(path); !st) return st.error();

    // The system's VFS, with each commit's WAL frames sent as one write (daemon/store_vfs.hpp).
    if (sqlite3_open_v2(path.c_str(), &store->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        store_detail::buffered_wal_vfs()) != SQLITE_OK)
        return db_error(store->db_, "cannot open " + path);
    sqlite3* db = store->db_;
    if (auto st = configure(db, path); !st) return st.error();
    if (auto st = migrate_and_compact(db, path, store->migrated_from_, store->compact_error_); !st)
        return st.error();

    // events_floor remembers the highest seq ever given, also when pruning emptied the log.
    if (!query_int64(db,
                     "SELECT max(coalesce((SELECT max(seq) FROM events), 0), "
                     "coalesce((SELECT max(seq) FROM events_floor), 0))",
                     store->last_seq_))
        return db_error(db, "cannot read the last seq of " + path);

    store->stmts_ = std::make_unique<Statements>();
    store->held_conversations_ = std::make_unique<store_detail::HeldConversations>();
    if (!store->stmts_->prepare(db)) return db_error(db, "cannot prepare statements for " + path);
    // Checkpoints beside the loop; without the worker, SQLite's own inside commits (configure).
    store->checkpointer_ = Checkpointer::start(path);
    if (store->checkpointer_) sqlite3_wal_hook(db, &Checkpointer::on_commit, store->checkpointer_.get());
    return store;
}

Store::~Store() {
    // Best effort: a cursor not written only replays events again.
    if (db_ && stmts_ && batch_depth_ == 0) static_cast<void>(write_later());
    if (db_) sqlite3_wal_hook(db_, nullptr, nullptr);
    checkpointer_.reset();  // its worker stops before the store's connection closes
    stmts_.reset();  // statements first: sqlite3_close refuses a connection with live ones
    if (db_) sqlite3_close(db_);
    if (lock_fd_ >= 0) {
        // Empty the pid, so a reader racing the next holder's write sees "unknown", not us.
        if (::ftruncate(lock_fd_, 0) != 0) {
        }
        ::close(lock_fd_);  // releases the flock
    }
}

}  // namespace stanzad
