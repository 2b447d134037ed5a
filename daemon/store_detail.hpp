#pragma once
// Internals shared by the store's source files (store.cpp, store_schema.cpp,
// store_outbox.cpp): time conversions, errors, the prepared-statement helpers, transactions,
// and the statements a Store prepares at open. Not part of the Store's interface: only the
// store's own .cpp files include it.
#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/store.hpp"

namespace stanzad {
namespace store_detail {

using xmpp::make_error;

inline std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

inline std::int64_t now_ms() { return unix_ms(std::chrono::system_clock::now()); }

inline std::chrono::system_clock::time_point from_ms(std::int64_t ms) {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

inline xmpp::Error db_error(sqlite3* db, std::string_view what) {
    std::string message(what);
    message += ": ";
    message += db ? sqlite3_errmsg(db) : "out of memory";
    return make_error("store", std::move(message));
}

inline xmpp::Error sys_error(std::string_view what, const std::string& path, int err) {
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
        // An empty view may have no data: bound as '' (a null pointer would bind NULL).
        if (rc_ == SQLITE_OK)
            rc_ = sqlite3_bind_text(s_, i, v.data() ? v.data() : "", static_cast<int>(v.size()), SQLITE_STATIC);
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

inline bool exec(sqlite3* db, const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK; }

// Runs a one-row, one-column query (PRAGMAs, counters).
inline bool query_int64(sqlite3* db, const char* sql, std::int64_t& out) {
    Stmt s;
    if (!s.prepare(db, sql)) return false;
    Use u(s.get());
    if (u.step() != SQLITE_ROW) return false;
    out = u.column_int64(0);
    return true;
}

inline bool query_text(sqlite3* db, const char* sql, std::string& out) {
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
    Stmt begin, commit, rollback;

    bool prepare(sqlite3* db) {
        return begin.prepare(db, "BEGIN IMMEDIATE") && commit.prepare(db, "COMMIT") && rollback.prepare(db, "ROLLBACK");
    }
};

// The event of a stored row: its json decoded, its seq set. A row whose format (the codec
// version that wrote it) is newer than model::codec::format_version is an error naming both.
xmpp::Result<model::Event> decode_row(model::Seq seq, std::int64_t format, std::string_view json);

// account_meta reads and writes (meta; set_meta, set_metas, append_once), prepared once: the
// IM core reads a few values per message sent (OMEMO's setting and marker for the peer).
struct MetaStmts {
    Stmt select, upsert, remove;

    bool prepare(sqlite3* db) {
        return select.prepare(db, "SELECT value FROM account_meta WHERE account = ?1 AND key = ?2") &&
               upsert.prepare(db, "INSERT INTO account_meta (account, key, value) VALUES (?1, ?2, ?3) "
                                  "ON CONFLICT (account, key) DO UPDATE SET value = excluded.value") &&
               remove.prepare(db, "DELETE FROM account_meta WHERE account = ?1 AND key = ?2");
    }
};

// Runs a prepared statement that returns no rows; true on SQLITE_DONE.
inline bool run(const Stmt& s) {
    Use u(s.get());
    return u.step() == SQLITE_DONE;
}

// The open transaction, rolled back on scope exit unless committed. ROLLBACK also runs when
// a failed COMMIT left the transaction open (SQLite keeps it open on SQLITE_BUSY, for one).
// Inside a batch (Store::begin_batch) it joins the batch's transaction instead, without a
// savepoint of its own: a savepoint copies every page it touches into a statement journal,
// a fifth of a relayed message's instructions (docs/performance.md). So a call that fails
// after writing part of its work cannot be undone alone: it marks the batch failed, and
// end_batch() rolls the whole batch back and fails (GroupCommit then acknowledges none of
// it and the daemon starts over from the store). A call that fails before it changed a row
// leaves the batch as it was, unless SQLite rolled the transaction back itself (it may, on a
// full disk or an I/O error): that fails the batch too. No call joins a failed batch.
class Transaction {
public:
    explicit Transaction(sqlite3* db) : db_(db) {}
    Transaction(sqlite3* db, bool in_batch, bool& batch_failed, std::int64_t& commits, const TxStmts& stmts)
        : db_(db), nested_(in_batch), batch_failed_(&batch_failed), commits_(&commits), stmts_(&stmts) {}
    ~Transaction() {
        if (!open_) return;
        if (nested_) {
            if (sqlite3_total_changes64(db_) != changes_at_begin_ || sqlite3_get_autocommit(db_))
                *batch_failed_ = true;
        } else if (!sqlite3_get_autocommit(db_)) {
            run_or_exec(&TxStmts::rollback, "ROLLBACK");
        }
    }
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;

    // IMMEDIATE takes the write lock now, so nothing inside can fail on a lock upgrade.
    bool begin() {
        if (nested_) {
            if (sqlite3_get_autocommit(db_)) *batch_failed_ = true;  // the batch's transaction is gone
            if (*batch_failed_) return false;
            changes_at_begin_ = sqlite3_total_changes64(db_);
            return open_ = true;
        }
        return open_ = run_or_exec(&TxStmts::begin, "BEGIN IMMEDIATE");
    }
    bool commit() {
        if (!nested_) {
            if (!run_or_exec(&TxStmts::commit, "COMMIT")) return false;
            if (commits_) ++*commits_;
        }
        open_ = false;
        return true;
    }

private:
    // The prepared statement when the store has them (after open), else the SQL text.
    bool run_or_exec(Stmt TxStmts::*which, const char* sql) { return stmts_ ? run(stmts_->*which) : exec(db_, sql); }

    sqlite3* db_;
    bool nested_ = false;
    bool* batch_failed_ = nullptr;
    std::int64_t* commits_ = nullptr;
    const TxStmts* stmts_ = nullptr;
    bool open_ = false;
    sqlite3_int64 changes_at_begin_ = 0;  // rows changed on the connection before this call
};

// The rows of `conversations` (schema 6) that stored messages move forward: each message's
// (account, peer) gets its last seq and latest stamp (kUpsertConversation takes the max of
// each, so one upsert of the max over several messages leaves the same row as one upsert
// per message). Inside a batch the upserts wait for its end, one per conversation instead of
// one per message (issue 15: each moved the row's entry in conversations_last, about 12,500
// instructions of every stored message); Store writes them before anything reads the table.
class HeldConversations {
public:
    void hold(std::string_view account, std::string_view peer, model::Seq seq, std::string_view stamp);
    bool full() const { return rows_.size() >= kMax; }
    bool empty() const { return rows_.empty(); }
    // Inside the caller's transaction; empty after, whatever the outcome.
    xmpp::Status write(sqlite3* db, sqlite3_stmt* upsert);
    void drop() { rows_.clear(); }

private:
    static constexpr std::size_t kMax = 64;  // then written at once: bounds the memory and the search
    struct Row {
        std::string account, peer;
        model::Seq seq = 0;
        std::string stamp;
    };
    std::vector<Row> rows_;
};

// Inserts `event` as seq `seq`, with its format version and its columns (msg_id, direction)
// beside the JSON, and for a message moves its conversation's row forward (`upsert`, now
// or, given `held`, when the batch ends). Two statements: the caller's transaction (or the
// batch's) makes them one. The seq is given here (last_seq_ + 1) so the stored JSON can
// carry it in the same statement; the lock makes last_seq_ authoritative, events_floor keeps it above
// every pruned seq, and the PRIMARY KEY turns any disagreement into an error instead of a
// reused number. On failure `event` is as it was (the caller's Transaction rolls back, or
// fails the batch, what was written).
// `json`, when given, gets the row's JSON (Store::stored_json, once the caller committed).
xmpp::Status insert_event(sqlite3* db, sqlite3_stmt* stmt, sqlite3_stmt* upsert, HeldConversations* held,
                          model::Event& event, model::Seq seq, std::int64_t created_ms, std::string* json = nullptr);

// Store::prune's statements (named here for the tests of their query plans). ?1 is the
// cutoff (unix ms), ?2 a day after now.
// The events prune deletes: the front of the log up to the first event that is not older
// than the cutoff (nor stamped more than a day ahead, by a clock that was wrong), and of that
// what every client still in use confirmed. A range of seqs: the first such event is found
// by reading from the front (as many rows as go, and one), so the log needs no index by age.
inline const std::string kPrunable =
    "seq < coalesce((SELECT seq FROM events WHERE created_ms >= ?1 AND created_ms <= ?2 ORDER BY seq LIMIT 1), "
    "9223372036854775807) AND seq <= coalesce((SELECT min(seq) FROM cursors WHERE updated_ms >= ?1), "
    "9223372036854775807)";
inline const std::string kPruneEvents = "DELETE FROM events WHERE " + kPrunable;
// The conversations that have messages among them. NOT INDEXED: the range of seqs is what
// gets deleted (nothing, at most starts); left to itself the planner walks events_msgid for
// `peer != ''`, a read of every message (4 s at 1,000,000, before the first request of each
// start is served).
inline const std::string kPrunableConversations =
    "SELECT DISTINCT account, peer FROM events NOT INDEXED WHERE peer != '' AND " + kPrunable;
// De-duplication ids go with the events they stand for: older than the cutoff and than the
// first event still kept (a message the server hands over again after that long is stored
// again, as history). After the clock went back, an event kept behind a younger one may be
// older than that first one, and its ids go before it: the stanza-id of a message is found
// in its row anyway (events_msgid), these are the ids of its other copies.
inline constexpr const char* kPruneInboundIds =
    "DELETE FROM inbound_ids WHERE created_ms < ?1 AND "
    "created_ms < coalesce((SELECT created_ms FROM events ORDER BY seq LIMIT 1), ?1)";

// account_meta writes, inside the caller's transaction.
xmpp::Status write_metas(sqlite3* db, const MetaStmts& stmts, const std::string& account,
                         const std::vector<MetaWrite>& writes);

// The outbox row that a SELECT of kOutboxColumns is on.
OutboxEntry read_outbox(const Use& u);

}  // namespace store_detail

struct Store::Statements {
    using Stmt = store_detail::Stmt;
    Stmt select_events, insert_event, upsert_conversation, insert_outbox, update_outbox, select_pending, select_outbox,
        select_cursor, upsert_cursor, insert_inbound, select_inbound, select_msg_seq;
    store_detail::MetaStmts meta;  // the SM checkpoint is written for every inbound stanza
    store_detail::TxStmts tx;

    bool prepare(sqlite3* db);  // store_schema.cpp
};

}  // namespace stanzad
