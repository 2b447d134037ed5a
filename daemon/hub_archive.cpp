// The hub's archive side (XEP-0313): the `history` op, and archived messages as they come,
// whoever asked for them (the catch-up with our own archive is the AccountSession's).
#include <charconv>

#include "daemon/account.hpp"
#include "daemon/hub.hpp"
#include "daemon/hub_detail.hpp"
#include "daemon/log.hpp"
#include "protocol/base/rfc3339.hpp"

namespace stanzad {

// XEP-0313 §4.2: one archived message, for a history request, a room's catch-up or ours.
void Hub::archive_result(Account& account, pugi::xml_node root, pugi::xml_node result) {
    const xmpp::Jid& own = account.config().jid;
    std::string query_id = result.attribute("queryid").value();
    if (auto h = histories_.find(query_id); h != histories_.end()) {
        if (h->second.account != account.name()) return;
        auto archived = xmpp::parse_mam_result(root, own, h->second.archive);
        if (!archived || !archived->message.has_content() || archived->message.type == "error") return;
        std::string room = h->second.archive == own.bare() ? "" : h->second.archive;
        // While a catch-up still has to bring what came while we were away, a message
        // new to us here is one of those: stored and shown as new, not as history.
        const auto* r = room.empty() ? nullptr : session(account).find_room(room);
        bool gap = room.empty() ? session(account).gap_open() : r && r->catch_up.gap_open();
        if (gap) session(account).incoming(archived->message, true, {}, room);
        model::Event event;
        session(account).incoming(archived->message, true, {}, room, &event);
        if (auto* msg = std::get_if<model::Message>(&event.body); msg && !msg->msg_id.empty()) {
            msg->history = true;  // in the reply: what the request brought (the stored copy may be live)
            h->second.messages.push_back(std::move(event));
        }
        return;
    }
    if (session(account).room_archive_result(root)) return;
    session(account).catch_up_result(root);  // ours (protocol/im/session), or not asked for
}

void Hub::history(Account& account, const model::History& h, Respond respond) {
    // XEP-0313 §4: our archive, filtered by contact, or the room's own archive.
    const std::string own = account.config().jid.bare();
    bool room = session(account).find_room(h.with) != nullptr;
    xmpp::MamQuery q;
    q.query_id = "history" + std::to_string(next_query_++);
    if (room) q.to = h.with;
    else q.with = h.with;
    q.after = h.after;
    q.before = h.before ? h.before : (h.after.empty() ? std::optional<std::string>("") : std::nullopt);
    q.max = h.max;
    histories_[q.query_id] = HistoryQuery{account.name(), room ? h.with : own, {}};
    std::string query_id = q.query_id;
    account.request(q.to, [&](const std::string& id) { return xmpp::make_mam_query(id, q); },
                    [this, query_id, account_name = account.name(), respond = std::move(respond)](const IqReply& r) {
                        auto node = histories_.extract(query_id);
                        if (!r.ok()) {
                            respond(failure_reply(r, account_name));
                            return;
                        }
                        model::Reply reply;
                        reply.source = "archive";
                        if (auto fin = xmpp::parse_mam_fin(r.iq)) {
                            reply.complete = fin->complete;
                            reply.first = fin->first;
                            reply.last = fin->last;
                        }
                        if (!node.empty()) reply.messages = std::move(node.mapped().messages);
                        respond(std::move(reply));
                    });
}

model::Reply Hub::local_history(Account& account, const model::History& h) {
    // Without an archive (XEP-0313 not offered): the same page from the store, with seqs
    // as the page ids (`first`/`last`, `before`/`after`). One more than asked tells
    // whether there is anything further in that direction.
    auto seq = [](const std::string& text) -> std::optional<model::Seq> {
        model::Seq v = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
        return v;
    };
    MessageRange range;
    bool backwards = h.after.empty();
    if (!h.after.empty()) {
        range.after = seq(h.after);
        if (!range.after) return model::Reply::error("bad-request", "'after': not a page id of the local store");
    }
    if (h.before && !h.before->empty()) {
        range.before = seq(*h.before);
        if (!range.before) return model::Reply::error("bad-request", "'before': not a page id of the local store");
    }
    range.newest = backwards;
    std::size_t max = static_cast<std::size_t>(std::max(1, h.max));
    auto page = store_.messages(account.name(), h.with, range, max + 1);
    if (!page) return model::Reply::error("internal", page.error().message);
    auto messages = std::move(page).value();
    model::Reply reply;
    reply.source = "local";
    reply.complete = messages.size() <= max;
    if (!reply.complete) {
        if (backwards) messages.erase(messages.begin());
        else messages.pop_back();
    }
    for (auto& e : messages)
        if (auto* m = std::get_if<model::Message>(&e.body)) m->history = true;
    if (!messages.empty()) {
        reply.first = std::to_string(messages.front().seq);
        reply.last = std::to_string(messages.back().seq);
    }
    reply.messages = std::move(messages);
    return reply;
}

}  // namespace stanzad
