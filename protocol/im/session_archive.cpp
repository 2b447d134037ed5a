// AccountSession's archive side (XEP-0313, paged with XEP-0059): the catch-up with our own
// archive after a gap (im/catchup.hpp), `history` requests, and archived messages as they
// come, whoever asked for them.
#include "protocol/im/session.hpp"
#include "protocol/stream.hpp"
#include "protocol/xml_framer.hpp"

namespace xmpp::im {

// --- Catching up with our own archive ---

void AccountSession::catch_up(const std::string& now) {
    auto last = store_.kept("mam_last");
    if (!last) return log(SessionPort::Level::Error, "cannot read the archive position: " + last.error().message);
    send_page(archive_.pager.begin(last.value()), now);  // the gap is open until a page says complete
}

void AccountSession::send_page(const CatchUp::Page& page, const std::string& now) {
    archive_.query_id = "catchup" + std::to_string(++archive_.queries);
    // Without a position yet: from when this account first came online here (the first
    // time, that is now, and the archive has nothing newer).
    std::string start;
    if (page.since) {
        auto since = store_.kept("mam_since");
        start = since && !since.value().empty() ? since.value() : now;
        if (since && since.value().empty()) (void)store_.keep("mam_since", start);
    }
    port_.send(make_mam_query(archive_.query_id, archive_.query_id, page.after, start, page.max), {});
}

void AccountSession::keep_position(const std::string& id) {
    // Catch-up starts after it next time; losing it only means fetching more (de-duplicated).
    if (auto st = store_.keep("mam_last", id); !st)
        log(SessionPort::Level::Warn, "cannot remember archive id: " + st.error().message);
}

bool AccountSession::catch_up_result(pugi::xml_node stanza) {
    auto archived = parse_mam_result(stanza, own_);
    if (!archived || archive_.query_id.empty() || archived->query_id != archive_.query_id) return false;
    const auto& m = archived->message;
    archive_.pager.counted(m.has_content() && m.type != "error" && incoming(m, true));
    return true;
}

bool AccountSession::catch_up_answer(pugi::xml_node iq) {
    std::string_view id = iq.attribute("id").value();
    std::string_view type = iq.attribute("type").value();
    std::string_view from = iq.attribute("from").value();
    // RFC 6120 §10.3.3: an answer to our query comes from our own account.
    bool from_own_account = from.empty() || from == own_.bare() || from == port_.bound_jid();
    if (archive_.query_id.empty() || id != archive_.query_id || !from_own_account) return false;
    archive_.query_id.clear();
    auto fin = parse_mam_fin(iq);
    if (type != "result" || !fin) {
        // The gap stays open: the next login tries again from the same position.
        log(SessionPort::Level::Warn, "archive catch-up failed (the server answered " + std::string(type) + ")");
        auto error = parse_stanza_error(iq);
        archive_.pager.failed(error ? error->condition : "", true);
        return true;
    }
    auto next = archive_.pager.fin(fin->complete, fin->last);
    if (!next.keep.empty()) keep_position(next.keep);
    if (next.next) {
        send_page(*next.next, {});  // XEP-0059: the next page (never a first page: no start)
        return true;
    }
    log(SessionPort::Level::Info, "archive catch-up: " + std::to_string(archive_.pager.count()) +
                                      " message(s), " + std::to_string(archive_.pager.fresh()) + " of them new");
    return true;
}


// --- History requests ---

void AccountSession::history(const model::History& h, Respond respond) {
    // XEP-0313 §4: our archive, filtered by contact, or the room's own archive.
    bool room = find_room(h.with) != nullptr;
    MamQuery q;
    q.query_id = "history" + std::to_string(++history_queries_);
    if (room) q.to = h.with;
    else q.with = h.with;
    q.after = h.after;
    q.before = h.before ? h.before : (h.after.empty() ? std::optional<std::string>("") : std::nullopt);
    q.max = h.max;
    histories_[q.query_id] = HistoryQuery{room ? h.with : own_.bare(), {}};
    port_.request(q.to, [&](const std::string& id) { return make_mam_query(id, q); },
                  [this, alive = std::weak_ptr<int>(alive_), query_id = q.query_id,
                   respond = std::move(respond)](const IqReply& r) {
                      if (!alive.lock()) return respond(failure_reply(r, account_));
                      auto node = histories_.extract(query_id);
                      if (!r.ok()) return respond(failure_reply(r, account_));
                      model::Reply reply;
                      reply.source = "archive";
                      if (auto fin = parse_mam_fin(r.iq)) {
                          reply.complete = fin->complete;
                          reply.first = fin->first;
                          reply.last = fin->last;
                      }
                      if (!node.empty()) reply.messages = std::move(node.mapped().messages);
                      respond(std::move(reply));
                  });
}

void AccountSession::archive_result(pugi::xml_node stanza) {
    auto result = child(stanza, ns_mam, "result");
    auto h = histories_.find(result.attribute("queryid").value());
    if (h == histories_.end()) {
        if (room_archive_result(stanza)) return;
        catch_up_result(stanza);  // ours, or not asked for
        return;
    }
    // XEP-0313 §4.2: one archived message for a history request.
    auto archived = parse_mam_result(stanza, own_, h->second.archive);
    if (!archived || !archived->message.has_content() || archived->message.type == "error") return;
    const std::string room = h->second.archive == own_.bare() ? "" : h->second.archive;
    // While a catch-up still has to bring what came while we were away, a message new to us
    // here is one of those: stored and shown as new, not as history.
    const Room* r = room.empty() ? nullptr : find_room(room);
    bool gap = room.empty() ? gap_open() : r && r->catch_up.gap_open();
    if (gap) incoming(archived->message, true, {}, room);
    model::Event event;
    incoming(archived->message, true, {}, room, &event);
    if (auto* msg = std::get_if<model::Message>(&event.body); msg && !msg->msg_id.empty()) {
        msg->history = true;  // in the reply: what the request brought (the stored copy may be live)
        h->second.messages.push_back(std::move(event));
    }
}

}  // namespace xmpp::im
