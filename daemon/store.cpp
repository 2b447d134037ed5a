#include "daemon/store.hpp"

#include <algorithm>
#include <sqlite3.h>

#include <limits>
#include <string_view>

#include "daemon/store_detail.hpp"
#include "frontends/model/codec.hpp"
#include "protocol/base/rfc3339.hpp"

namespace stanzad {

using namespace store_detail;

std::string conversation_of(const model::Event& event) {
    const auto* m = std::get_if<model::Message>(&event.body);
    return m ? std::string(model::conversation_of(*m)) : std::string();
}

namespace {

// The columns of a row beside its JSON (schema 6): what queries select by, so that no query
// reads inside the JSON. The views point into the event.
// Never a null view: bound as text, a null pointer would be SQL NULL, not ''.
struct Columns {
    std::string_view msg_id = "";     // a message's or a message-state's; "" for anything else
    std::string_view direction = "";  // "in" | "out" for a message; "" for anything else
};

Columns columns_of(const model::Event& event) {
    if (const auto* m = std::get_if<model::Message>(&event.body))
        return {m->msg_id, m->outgoing ? std::string_view("out") : std::string_view("in")};
    if (const auto* s = std::get_if<model::MessageState>(&event.body)) return {s->msg_id, ""};
    return {};
}

}  // namespace

xmpp::Result<model::Event> store_detail::decode_row(model::Seq seq, std::int64_t format, std::string_view json) {
    // Like a schema newer than ours (newer_schema), a row written by a newer stanzad is not
    // guessed at: the error names the row and both versions.
    if (format > model::codec::format_version)
        return make_error("store", "stored event " + std::to_string(seq) + " has format " + std::to_string(format) +
                                       ", newer than the format " + std::to_string(model::codec::format_version) +
                                       " this stanzad knows; use a newer stanzad");
    auto event = model::codec::decode(json);
    if (!event)
        return make_error("store", "stored event " + std::to_string(seq) + " does not decode: " + event.error().message);
    event.value().seq = seq;
    return event;
}

namespace {

// kUpsertConversation for one conversation: SQLITE_DONE when written.
int upsert_conversation(sqlite3_stmt* upsert, std::string_view account, std::string_view peer, model::Seq seq,
                        std::string_view stamp) {
    Use u(upsert);
    u.text(1, account).text(2, peer).int64(3, seq).text(4, stamp);
    return u.step();
}

}  // namespace

void store_detail::HeldConversations::hold(std::string_view account, std::string_view peer, model::Seq seq,
                                          std::string_view stamp) {
    for (auto& r : rows_)
        if (r.peer == peer && r.account == account) {
            r.seq = std::max(r.seq, seq);
            if (stamp > r.stamp) r.stamp = stamp;
            return;
        }
    rows_.push_back({std::string(account), std::string(peer), seq, std::string(stamp)});
}

xmpp::Status store_detail::HeldConversations::write(sqlite3* db, sqlite3_stmt* upsert) {
    auto rows = std::exchange(rows_, {});
    for (const auto& r : rows)
        if (upsert_conversation(upsert, r.account, r.peer, r.seq, r.stamp) != SQLITE_DONE)
            return db_error(db, "cannot store the conversation with " + r.peer);
    return xmpp::Ok{};
}

xmpp::Status store_detail::insert_event(sqlite3* db, sqlite3_stmt* stmt, sqlite3_stmt* upsert,
                                        HeldConversations* held, model::Event& event, model::Seq seq,
                                        std::int64_t created_ms, std::string* json_out) {
    const model::Seq old_seq = event.seq;
    const bool stamped = event.stamp.empty();
    if (stamped) event.stamp = xmpp::rfc3339(from_ms(created_ms));
    event.seq = seq;
    std::string json = model::codec::encode(event);
    const std::string peer = conversation_of(event);  // bound without a copy: must outlive the step
    const Columns columns = columns_of(event);
    Use u(stmt);
    u.int64(1, seq)
        .text(2, event.account)
        .text(3, model::event_name(event.body))
        .text(4, event.stamp)
        .int64(5, created_ms)
        .text(6, json)
        .text(7, peer)
        .int64(8, model::codec::format_version)
        .text(9, columns.msg_id)
        .text(10, columns.direction);
    int rc = u.step();
    const bool stored = rc == SQLITE_DONE && sqlite3_last_insert_rowid(db) == seq;
    if (stored && !peer.empty()) {
        if (!held) {
            rc = upsert_conversation(upsert, event.account, peer, seq, event.stamp);
        } else if (held->full() && !held->write(db, upsert)) {
            rc = SQLITE_ERROR;
        } else {
            held->hold(event.account, peer, seq, event.stamp);
        }
    }
    if (stored && rc == SQLITE_DONE) {
        if (json_out) *json_out = std::move(json);
        return xmpp::Ok{};
    }
    event.seq = old_seq;
    if (stamped) event.stamp.clear();
    if (rc == SQLITE_DONE) return make_error("store", "event stored under an unexpected seq");
    return db_error(db, "cannot store event " + std::to_string(seq));
}

xmpp::Status Store::append(model::Event& event) {
    // A transaction of its own (or the batch's): the event and its conversation's row are
    // stored together or not at all.
    Transaction tx(db_, join_batch(), batch_failed_, commits_, stmts_->tx);
    if (!tx.begin()) return db_error(db_, "cannot store an event");
    const model::Seq old_seq = event.seq;
    const std::string old_stamp = event.stamp;
    std::string json;
    auto st = insert_event(db_, stmts_->insert_event.get(), stmts_->upsert_conversation.get(), held(), event,
                           last_seq_ + 1, now_ms(), &json);
    if (!st) return st;
    if (!tx.commit()) {
        event.seq = old_seq;
        event.stamp = old_stamp;
        return db_error(db_, "cannot store an event");
    }
    last_seq_ = event.seq;
    remember_json(event.seq, std::move(json));
    return xmpp::Ok{};
}

bool Store::join_batch() {
    if (batch_depth_ == 0) return false;
    // A failed BEGIN leaves the calls to run on their own (autocommit): durable at once,
    // which only costs the batching; end_batch() then has nothing to commit.
    if (!batch_open_) batch_open_ = run(stmts_->tx.begin);
    return batch_open_;
}

void Store::begin_batch() { ++batch_depth_; }

void Store::release_memory() {
    if (batch_depth_ > 0) return;
    sqlite3_db_release_memory(db_);
    recent_json_ = {};
}

void Store::remember_json(model::Seq seq, std::string json) {
    // The events of one batch are delivered before it ends (end_batch forgets them);
    // outside a batch the last few are kept. A ring: the oldest gives way.
    if (json.size() > kRecentJsonMax) return;
    auto& slot = recent_json_[recent_next_++ % recent_json_.size()];
    slot.first = seq;
    slot.second = std::move(json);
}

const std::string* Store::stored_json(model::Seq seq) const {
    if (seq == 0) return nullptr;
    for (const auto& [s, json] : recent_json_)
        if (s == seq) return &json;
    return nullptr;
}

std::int64_t Store::cache_bytes() const {
    int current = 0, highwater = 0;
    sqlite3_db_status(db_, SQLITE_DBSTATUS_CACHE_USED, &current, &highwater, 0);
    return current;
}

xmpp::Status Store::end_batch() {
    if (batch_depth_ == 0) return make_error("store", "end_batch without begin_batch");
    if (batch_depth_ == 1) {
        if (!batch_failed_ && !write_deferred_meta()) batch_failed_ = true;  // rolled back below
        deferred_meta_.clear();
        if (!batch_failed_ && !write_held_conversations()) batch_failed_ = true;
        held_conversations_->drop();  // written, or rolled back with the messages that moved them
        // Cursors to write later ride in a commit that happens anyway (none of their own).
        if (batch_open_ && !batch_failed_ && !write_later()) batch_failed_ = true;
    }
    if (--batch_depth_ > 0) return xmpp::Ok{};
    for (auto& slot : recent_json_) slot.first = 0;  // their events were delivered (held until the commit below)
    const bool failed = std::exchange(batch_failed_, false);
    if (!batch_open_) return xmpp::Ok{};
    batch_open_ = false;
    if (failed) {
        if (!sqlite3_get_autocommit(db_)) run(stmts_->tx.rollback);
        return make_error("store", "a write failed part way; nothing of this batch was kept");
    }
    if (!run(stmts_->tx.commit)) {
        auto error = db_error(db_, "cannot commit");
        if (!sqlite3_get_autocommit(db_)) run(stmts_->tx.rollback);
        return error;
    }
    ++commits_;
    return xmpp::Ok{};
}

xmpp::Result<std::vector<StoredRow>> Store::rows_after(model::Seq after, std::size_t limit, std::string_view kind,
                                                      std::size_t max_bytes) {
    std::vector<StoredRow> out;
    std::size_t bytes = 0;
    const auto max = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    Use u(stmts_->select_events.get());
    u.int64(1, after).int64(2, static_cast<std::int64_t>(limit > max ? max : limit)).text(3, kind);
    int rc = SQLITE_DONE;
    while (bytes < max_bytes && (rc = u.step()) == SQLITE_ROW) {
        StoredRow& row = out.emplace_back();
        row.seq = u.column_int64(0);
        row.json = u.column_text(1);
        row.format = u.column_int64(2);
        bytes += row.json.size();
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_error(db_, "cannot read events");
    return out;
}

xmpp::Result<std::vector<model::Event>> Store::events_after(model::Seq after, std::size_t limit,
                                                           std::string_view kind, std::size_t max_bytes) {
    auto rows = rows_after(after, limit, kind, max_bytes);
    if (!rows) return rows.error();
    std::vector<model::Event> out;
    out.reserve(rows.value().size());
    for (const auto& row : rows.value()) {
        auto event = decode(row);
        // Our own encode() wrote it; failing to read it back is a bug to surface, not skip.
        if (!event) return event.error();
        out.push_back(std::move(event).value());
    }
    return out;
}

xmpp::Result<model::Event> decode(const StoredRow& row) { return decode_row(row.seq, row.format, row.json); }

xmpp::Result<model::Seq> Store::cursor(const std::string& client) {
    model::Seq later = 0;
    for (const auto& c : later_cursors_)
        if (c.client == client) later = c.seq;
    Use u(stmts_->select_cursor.get());
    u.text(1, client);
    int rc = u.step();
    if (rc == SQLITE_ROW) return std::max(later, model::Seq{u.column_int64(0)});
    if (rc == SQLITE_DONE) return later;
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

xmpp::Status Store::set_cursor_later(const std::string& client, model::Seq seq,
                                     std::chrono::system_clock::time_point now) {
    if (seq < 0 || seq > last_seq_)
        return make_error("bad-seq", "seq " + std::to_string(seq) + " is not a stored event (last seq is " +
                                         std::to_string(last_seq_) + ")");
    for (auto& c : later_cursors_)
        if (c.client == client) {
            if (seq > c.seq) c = {client, seq, now};
            return xmpp::Ok{};
        }
    later_cursors_.push_back({client, seq, now});
    return xmpp::Ok{};
}

xmpp::Status Store::write_later() {
    // Outside a batch: a commit of its own. Inside one: joins it (end_batch commits).
    if (later_cursors_.empty()) return xmpp::Ok{};
    auto later = std::exchange(later_cursors_, {});
    Transaction tx(db_, join_batch(), batch_failed_, commits_, stmts_->tx);
    if (!tx.begin()) return db_error(db_, "cannot move the cursors");
    for (const auto& c : later) {
        Use u(stmts_->upsert_cursor.get());
        u.text(1, c.client).int64(2, c.seq).int64(3, unix_ms(c.when));
        if (u.step() != SQLITE_DONE) return db_error(db_, "cannot set the cursor of '" + c.client + "'");
    }
    if (!tx.commit()) return db_error(db_, "cannot move the cursors");
    return xmpp::Ok{};
}

xmpp::Status store_detail::write_metas(sqlite3* db, const MetaStmts& stmts, const std::string& account,
                                       const std::vector<MetaWrite>& writes) {
    for (const auto& w : writes) {
        Use u(w.value ? stmts.upsert.get() : stmts.remove.get());
        u.text(1, account).text(2, w.key);
        if (w.value) u.text(3, *w.value);
        if (u.step() != SQLITE_DONE) return db_error(db, "cannot write " + w.key);
    }
    return xmpp::Ok{};
}

xmpp::Result<bool> Store::append_once(model::Event& event, const std::string& key,
                                      const std::vector<std::pair<std::string, std::string>>& aliases,
                                      const std::vector<MetaWrite>& meta) {
    const std::int64_t now = now_ms();
    Transaction tx(db_, join_batch(), batch_failed_, commits_, stmts_->tx);
    if (!tx.begin()) return db_error(db_, "cannot store an event");
    // The key points at the event, which gets the next seq (insert_event fails otherwise, and
    // the rollback keeps nothing); aliases point where the caller says, or with an empty
    // value at the event too (the first one recorded wins).
    const std::string seq_text = std::to_string(last_seq_ + 1);
    if (!key.empty()) {
        Use u(stmts_->insert_inbound.get());
        u.text(1, event.account).text(2, key).text(3, seq_text).int64(4, now);
        if (u.step() != SQLITE_DONE) return db_error(db_, "cannot store an event");
        if (sqlite3_changes(db_) == 0) return false;  // seen before: the rollback keeps nothing
    }
    const model::Seq old_seq = event.seq;
    const std::string old_stamp = event.stamp;
    std::string json;
    if (auto st = insert_event(db_, stmts_->insert_event.get(), stmts_->upsert_conversation.get(), held(), event,
                               last_seq_ + 1, now, &json);
        !st)
        return st.error();
    for (const auto& [alias, value] : aliases) {
        Use u(stmts_->insert_inbound.get());
        u.text(1, event.account).text(2, alias).text(3, value.empty() ? seq_text : value).int64(4, now);
        if (u.step() != SQLITE_DONE) {
            event.seq = old_seq;  // rolled back: that seq is given again to the next event
            event.stamp = old_stamp;
            return db_error(db_, "cannot store an event");
        }
    }
    if (auto st = meta.empty() || deferred_meta_.empty() ? xmpp::Status(xmpp::Ok{}) : write_deferred_rows(); !st) {
        event.seq = old_seq;
        event.stamp = old_stamp;
        return st.error();
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
    remember_json(event.seq, std::move(json));
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
    std::string sql = "SELECT seq, json, format FROM events WHERE account = ?1 AND peer = ?2 AND peer != ''";
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
        const model::Seq seq = u.column_int64(0);
        const std::int64_t format = u.column_int64(2);
        auto event = decode_row(seq, format, u.column_text(1));
        if (!event && format > model::codec::format_version) return event.error();
        if (!event) continue;
        out.push_back(std::move(event).value());
    }
    if (rc != SQLITE_DONE) return db_error(db_, "cannot read messages");
    if (range.newest) std::reverse(out.begin(), out.end());
    return out;
}

xmpp::Result<std::optional<model::Seq>> Store::message_seq(const std::string& account, const std::string& peer,
                                                          const std::string& msg_id) {
    Use u(stmts_->select_msg_seq.get());
    u.text(1, account).text(2, peer).text(3, msg_id);
    int rc = u.step();
    if (rc == SQLITE_ROW) return std::optional<model::Seq>(u.column_int64(0));
    if (rc == SQLITE_DONE) return std::optional<model::Seq>();
    return db_error(db_, "cannot read messages");
}

xmpp::Result<std::vector<Conversation>> Store::conversations(const std::string& after_stamp,
                                                            const std::string& before_stamp, std::size_t limit) {
    if (auto st = write_held_conversations(); !st) return st.error();  // this batch's messages count
    Stmt s;
    // One row per conversation (schema 6), kept by insert_event and prune.
    if (!s.prepare(db_, "SELECT account, peer, last_stamp FROM conversations WHERE last_stamp > ?1 AND "
                        "last_stamp < ?2 ORDER BY last_stamp DESC LIMIT ?3"))
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
    for (const auto& d : deferred_meta_)
        if (d.account == account && d.key == key) return d.value;
    Use u(stmts_->meta.select.get());
    u.text(1, account).text(2, key);
    int rc = u.step();
    if (rc == SQLITE_ROW) return u.column_text(0);
    if (rc == SQLITE_DONE) return std::string();
    return db_error(db_, "cannot read " + key);
}

xmpp::Status Store::set_meta(const std::string& account, const std::string& key, const std::string& value) {
    // Inside a batch only the last value of a key is written, when the batch ends: the
    // archive position moves with every incoming message (issue 15: an upsert per message,
    // 5 % of its instructions), and is as durable written once at the commit. The batch's
    // transaction begins now all the same: reads after this one are then inside it, without
    // a read lock each (two fcntl calls per read outside it). A batch whose BEGIN failed
    // runs its calls on their own (join_batch): then this one is written at once too.
    if (batch_depth_ > 0 && join_batch()) {
        for (auto& d : deferred_meta_)
            if (d.account == account && d.key == key) {
                d.value = value;
                return xmpp::Ok{};
            }
        deferred_meta_.push_back({account, key, value});
        return xmpp::Ok{};
    }
    Use u(stmts_->meta.upsert.get());
    u.text(1, account).text(2, key).text(3, value);
    if (u.step() != SQLITE_DONE) return db_error(db_, "cannot write " + key);
    ++commits_;
    return xmpp::Ok{};
}

xmpp::Status Store::write_held_conversations() {
    // Only a batch holds rows, and they are written inside its open transaction: a failure
    // fails the batch, whose messages are rolled back with them.
    if (held_conversations_->empty()) return xmpp::Ok{};
    if (batch_failed_ || !batch_open_ || sqlite3_get_autocommit(db_)) {
        // The batch failed, or SQLite rolled its transaction back by itself (an I/O error, a
        // full disk): the messages that moved these rows are gone, so are the rows. Written
        // now they would be committed on their own (autocommit), naming events that are not
        // there. The batch is failed: end_batch says so.
        batch_failed_ = true;
        held_conversations_->drop();
        return xmpp::Ok{};
    }
    auto st = held_conversations_->write(db_, stmts_->upsert_conversation.get());
    if (!st) batch_failed_ = true;
    return st;
}

xmpp::Status Store::write_deferred_rows() {
    // set_meta said Ok for these: one that cannot be written fails the batch (end_batch rolls
    // it back and fails), whether or not it changed a row.
    auto deferred = std::exchange(deferred_meta_, {});
    for (const auto& d : deferred) {
        Use u(stmts_->meta.upsert.get());
        u.text(1, d.account).text(2, d.key).text(3, d.value);
        if (u.step() != SQLITE_DONE) {
            batch_failed_ = true;
            return db_error(db_, "cannot write " + d.key);
        }
    }
    return xmpp::Ok{};
}

xmpp::Status Store::write_deferred_meta() {
    if (deferred_meta_.empty()) return xmpp::Ok{};
    Transaction tx(db_, join_batch(), batch_failed_, commits_, stmts_->tx);
    if (!tx.begin()) {
        batch_failed_ = true;
        return db_error(db_, "cannot write account values");
    }
    if (auto st = write_deferred_rows(); !st) return st;
    if (!tx.commit()) return db_error(db_, "cannot write account values");
    return xmpp::Ok{};
}

xmpp::Status Store::set_metas(const std::string& account, const std::vector<MetaWrite>& writes) {
    if (writes.empty()) return xmpp::Ok{};
    Transaction tx(db_, join_batch(), batch_failed_, commits_, stmts_->tx);
    if (!tx.begin()) return db_error(db_, "cannot write account values");
    if (!deferred_meta_.empty()) {  // first, in order: an earlier set_meta of the same key
        if (auto st = write_deferred_rows(); !st) return st;
    }
    if (auto st = write_metas(db_, stmts_->meta, account, writes); !st) return st;
    if (!tx.commit()) return db_error(db_, "cannot write account values");
    return xmpp::Ok{};
}

xmpp::Result<std::vector<std::pair<std::string, std::string>>> Store::metas(const std::string& account,
                                                                             const std::string& prefix,
                                                                             std::size_t limit) {
    if (auto st = write_deferred_meta(); !st) return st.error();  // read in SQL below
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
namespace {

// Inside prune's transaction: the conversations that have messages among the events about to
// be deleted.
xmpp::Result<std::vector<std::pair<std::string, std::string>>> prunable_conversations(sqlite3* db,
                                                                                       std::int64_t cutoff,
                                                                                       std::int64_t ahead) {
    Stmt s;
    if (!s.prepare(db, kPrunableConversations.c_str())) return db_error(db, "cannot prune");
    Use u(s.get());
    u.int64(1, cutoff).int64(2, ahead);
    std::vector<std::pair<std::string, std::string>> out;
    int rc;
    while ((rc = u.step()) == SQLITE_ROW) out.emplace_back(u.column_text(0), u.column_text(1));
    if (rc != SQLITE_DONE) return db_error(db, "cannot prune");
    return out;
}

// Inside prune's transaction, after the events went: each of these conversations' rows
// computed again from the messages left (one index range each), or removed with the last one.
xmpp::Status refresh_conversations(sqlite3* db, const std::vector<std::pair<std::string, std::string>>& peers) {
    if (peers.empty()) return xmpp::Ok{};
    Stmt remove, insert;
    if (!remove.prepare(db, "DELETE FROM conversations WHERE account = ?1 AND peer = ?2") ||
        !insert.prepare(db, "INSERT INTO conversations (account, peer, last_seq, last_stamp) "
                            "SELECT ?1, ?2, max(seq), max(stamp) FROM events WHERE account = ?1 AND peer = ?2 "
                            "AND peer != '' HAVING count(*) > 0"))
        return db_error(db, "cannot prune conversations");
    for (const auto& [account, peer] : peers) {
        for (const Stmt* s : {&remove, &insert}) {
            Use u(s->get());
            u.text(1, account).text(2, peer);
            if (u.step() != SQLITE_DONE) return db_error(db, "cannot prune conversations");
        }
    }
    return xmpp::Ok{};
}

}  // namespace

xmpp::Result<std::int64_t> Store::prune(std::chrono::system_clock::time_point now, int history_days) {
    if (history_days < 0)
        return make_error("store", "history_days must not be negative (" + std::to_string(history_days) + ")");
    const std::int64_t cutoff = unix_ms(now) - std::int64_t{history_days} * 86'400'000;
    Transaction tx(db_, join_batch(), batch_failed_, commits_, stmts_->tx);
    if (!tx.begin()) return db_error(db_, "cannot prune");
    if (auto st = write_held_conversations(); !st) return st.error();  // the rows it recomputes are complete
    std::int64_t deleted = 0;
    // An event stamped more than a day ahead of `now` (a clock that was wrong) does not
    // hold back the events after it until that day.
    const std::int64_t ahead = unix_ms(now) + 86'400'000;
    auto touched = prunable_conversations(db_, cutoff, ahead);
    if (!touched) return touched.error();
    {
        // Events a client has not confirmed stay, however old, unless that client has not
        // confirmed anything for history_days: a front end used once must not keep the
        // store growing for ever (it gets what is left when it comes back).
        Stmt s;
        if (!s.prepare(db_, kPruneEvents.c_str())) return db_error(db_, "cannot prune");
        Use u(s.get());
        u.int64(1, cutoff).int64(2, ahead);
        if (u.step() != SQLITE_DONE) return db_error(db_, "cannot prune events");
        deleted = sqlite3_changes64(db_);
    }
    if (deleted > 0) {
        // The seqs that went are never given again (what AUTOINCREMENT kept before schema 8),
        // also when the log is now empty and the daemon starts again.
        Stmt s;
        if (!s.prepare(db_, "UPDATE events_floor SET seq = ?1 WHERE seq < ?1")) return db_error(db_, "cannot prune");
        Use u(s.get());
        u.int64(1, last_seq_);
        if (u.step() != SQLITE_DONE) return db_error(db_, "cannot prune");
    }
    if (auto st = refresh_conversations(db_, touched.value()); !st) return st.error();
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
        Stmt s;  // de-duplication ids go with the events they stand for (kPruneInboundIds)
        if (!s.prepare(db_, kPruneInboundIds)) return db_error(db_, "cannot prune");
        Use u(s.get());
        u.int64(1, cutoff);
        if (u.step() != SQLITE_DONE) return db_error(db_, "cannot prune the de-duplication ids");
    }
    if (!tx.commit()) return db_error(db_, "cannot prune");
    return deleted;
}

}  // namespace stanzad
