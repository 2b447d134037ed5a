// The durable outbound queue: a message is "accepted" once its row is committed, and its
// row follows it (sent, acked, delivered, failed) until prune removes finished ones.
#include <sqlite3.h>

#include "daemon/store.hpp"
#include "daemon/store_detail.hpp"
#include "protocol/base/rfc3339.hpp"

namespace stanzad {

using namespace store_detail;

OutboxEntry store_detail::read_outbox(const Use& u) {
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

xmpp::Result<bool> Store::enqueue(const OutboxEntry& entry, std::vector<model::Event>& events) {
    // A new row is accepted, or already sent when its stanza goes in the same batch.
    const std::string_view state = entry.state.empty() ? std::string_view("accepted") : std::string_view(entry.state);
    if (state != "accepted" && state != "sent")
        return make_error("store", "cannot enqueue '" + entry.msg_id + "' as " + entry.state +
                                       ": a new message is accepted or sent");
    const std::int64_t now = now_ms();
    const std::string created = entry.created.empty() ? xmpp::rfc3339(from_ms(now)) : entry.created;
    Transaction tx(db_, join_batch(), batch_failed_, commits_, stmts_->tx);
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
            .text(8, entry.replace_id)
            .text(9, state);
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
    std::vector<std::string> jsons(events.size());
    for (std::size_t i = 0; i < events.size(); ++i) {
        auto& event = events[i];
        before.emplace_back(event.seq, event.stamp);
        auto st = insert_event(db_, stmts_->insert_event.get(), stmts_->upsert_conversation.get(), held(), event,
                               ++seq, now, &jsons[i]);
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
    for (std::size_t i = 0; i < events.size(); ++i) remember_json(events[i].seq, std::move(jsons[i]));
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
    Transaction tx(db_, join_batch(), batch_failed_, commits_, stmts_->tx);
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
    std::string json;
    auto st = insert_event(db_, stmts_->insert_event.get(), stmts_->upsert_conversation.get(), held(), event,
                           last_seq_ + 1, now, &json);
    if (!st) return st;
    if (!tx.commit()) {
        event.seq = old_seq;
        event.stamp = old_stamp;
        return db_error(db_, "cannot update '" + msg_id + "'");
    }
    last_seq_ = event.seq;
    remember_json(event.seq, std::move(json));
    return xmpp::Ok{};
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
}  // namespace stanzad
