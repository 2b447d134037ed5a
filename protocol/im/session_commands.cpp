// AccountSession's side of front-end commands: the message, contact and room commands of one
// account (the owner keeps the daemon's own, the account's and end-to-end encryption's). Each
// answers through `respond` exactly once, at once or when the server has answered.
#include <charconv>

#include "protocol/base/rfc3339.hpp"
#include "protocol/im/session.hpp"
#include "protocol/stream.hpp"
#include "protocol/xml_framer.hpp"

namespace xmpp::im {

bool normalize_stamp(std::string& stamp) {
    if (stamp.empty()) return true;
    auto ms = parse_datetime(stamp);
    if (!ms) return false;
    stamp = rfc3339(std::chrono::system_clock::time_point(std::chrono::milliseconds(*ms)));
    return true;
}

std::optional<model::Reply> AccountSession::need_online() {
    if (port_.online()) return std::nullopt;
    return model::Reply::error("not-online", "account " + account_ + " is " + port_.state_name());
}

void AccountSession::ask(const std::string& to, const IqMaker& make, Respond respond,
                         std::function<void(model::Reply&, pugi::xml_node)> fill) {
    port_.request(to, make, [name = account_, respond = std::move(respond), fill = std::move(fill)](const IqReply& r) {
        if (!r.ok()) return respond(failure_reply(r, name));
        model::Reply reply;
        if (fill) fill(reply, r.iq);
        respond(std::move(reply));
    });
}

void AccountSession::handle(const model::Command& cmd, Respond respond) {
    std::visit(
        [&](const auto& c) {
            using C = std::decay_t<decltype(c)>;
            if constexpr (handles<C>) command(c, std::move(respond));
            else respond(model::Reply::error("internal", "not a command of the account's session"));
        },
        cmd);
}

// --- Messages ---

void AccountSession::command(const model::Send& c, Respond respond) { respond(send(c)); }
void AccountSession::command(const model::CancelSend& c, Respond respond) { respond(cancel(c.msg_id)); }

void AccountSession::command(const model::SendChatState& c, Respond respond) {
    if (auto e = need_online()) return respond(*e);
    auto to = Jid::parse(c.to);
    bool room = to && to.value().is_bare() && find_room(c.to);
    // XEP-0085 §5.1: not to a contact who replied without chat states.
    if (room || (to && chat_states_.wanted(to.value().bare())))
        port_.send(make_chat_state(c.to, room ? "groupchat" : "chat", c.state), {});
    respond({});
}

void AccountSession::command(const model::Displayed& c, Respond respond) {
    model::Reply reply;
    // XEP-0333 reveals when the user reads: only when the user turned it on.
    if (port_.chat_markers()) {
        if (auto e = need_online()) return respond(*e);
        bool room = find_room(c.to) != nullptr;
        std::string id = c.msg_id;  // in a room: the room's stanza-id (§3)
        if (!room)
            if (auto rid = store_.inbound("rid:" + c.msg_id)) id = *rid;
        port_.send(make_displayed(c.to, room ? "groupchat" : "chat", id, port_.new_id()), {});
        reply.sent = true;
    }
    respond(std::move(reply));
}

void AccountSession::command(const model::History& c, Respond respond) {
    if (port_.capabilities().known && !port_.capabilities().archive) return respond(local_history(c));
    if (auto e = need_online()) return respond(*e);
    history(c, std::move(respond));
}

model::Reply AccountSession::local_history(const model::History& h) {
    // Without an archive (XEP-0313 not offered): the same page from the store, with seqs as
    // the page ids (`first`/`last`, `before`/`after`). One more than asked tells whether
    // there is anything further in that direction.
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
    auto page = store_.messages(h.with, range, max + 1);
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

void AccountSession::command(const model::StoredMessages& c, Respond respond) {
    model::Reply reply;
    MessageRange range;
    range.after = c.after;
    range.before = c.before;
    range.after_stamp = c.after_stamp;
    range.before_stamp = c.before_stamp;
    if (!normalize_stamp(range.after_stamp) || !normalize_stamp(range.before_stamp))
        return respond(model::Reply::error("bad-request", "not a time"));
    range.newest = c.newest;
    if (!c.around_msg_id.empty()) {
        auto seq = store_.message_seq(c.peer, c.around_msg_id);
        if (!seq) return respond(model::Reply::error("internal", seq.error().message));
        if (!seq.value()) return respond(model::Reply::error("not-found", "no message " + c.around_msg_id));
        reply.cursor = *seq.value();
    }
    auto messages = store_.messages(c.peer, range, static_cast<std::size_t>(c.limit));
    if (!messages) return respond(model::Reply::error("internal", messages.error().message));
    reply.messages = std::move(messages).value();
    respond(std::move(reply));
}

void AccountSession::command(const model::SetReadMarker& c, Respond respond) {
    model::Reply reply;
    auto current = store_.kept("read:" + c.peer);
    if (!current) return respond(model::Reply::error("internal", current.error().message));
    reply.stamp = current.value();
    std::string stamp = c.stamp;
    if (!normalize_stamp(stamp)) return respond(model::Reply::error("bad-request", "not a time"));
    // Never in the future: a marker past now would be stuck there for good.
    if (std::string now = port_.wall_clock(); stamp > now) stamp = now;
    // Only forward (IRCv3 read-marker): an older stamp leaves it where it is.
    if (!stamp.empty() && stamp > reply.stamp) {
        if (auto st = store_.keep("read:" + c.peer, stamp); !st)
            return respond(model::Reply::error("internal", st.error().message));
        reply.stamp = stamp;
        publish(model::ReadMarker{c.peer, stamp});
    }
    respond(std::move(reply));
}

// --- Contacts ---

void AccountSession::command(const model::GetRoster&, Respond respond) {
    model::Reply reply;
    reply.items = roster_items();
    respond(std::move(reply));
}

void AccountSession::command(const model::SetPresence& c, Respond respond) {
    port_.set_presence(c.show, c.status, c.priority);  // kept for reconnections
    for (auto& [jid, room] : rooms_)                   // RFC 6121 §4.2: rooms see it too
        if (room.phase() == im::Room::Phase::Joined)
            port_.send("<presence to='" + xml_escape(jid + "/" + room.nick) + "'>" + port_.presence_payload() +
                           "</presence>",
                       {});
    respond({});
}

void AccountSession::command(const model::ChangeSubscription& c, Respond respond) {
    if (auto e = need_online()) return respond(*e);
    const char* type = c.kind == "subscribe"     ? "subscribe"
                       : c.kind == "unsubscribe" ? "unsubscribe"
                       : c.kind == "approve"     ? "subscribed"
                                                 : "unsubscribed";
    port_.send(make_subscription(c.jid, type), {});
    respond({});
}

void AccountSession::command(const model::RosterSet& c, Respond respond) {
    ask({}, [&](const std::string& id) { return make_roster_set(id, c.jid, c.name, c.groups); }, std::move(respond));
}

void AccountSession::command(const model::RosterRemove& c, Respond respond) {
    ask({}, [&](const std::string& id) { return make_roster_remove(id, c.jid); }, std::move(respond));
}

void AccountSession::command(const model::Block& c, Respond respond) {
    ask({}, [&](const std::string& id) { return c.block ? make_block(id, c.jids) : make_unblock(id, c.jids); },
        std::move(respond));
}

void AccountSession::command(const model::GetBlocklist&, Respond respond) {
    ask({}, [](const std::string& id) { return make_blocklist_get(id); }, std::move(respond),
        [](model::Reply& r, pugi::xml_node iq) { r.jids = parse_block_items(child(iq, ns_blocking, "blocklist")); });
}

void AccountSession::command(const model::ListPresences&, Respond respond) {
    model::Reply reply;
    reply.presences = presences();
    respond(std::move(reply));
}

// --- Rooms ---

bool AccountSession::in_room(const std::string& jid) {
    const Room* room = find_room(jid);
    return room && room->phase() == im::Room::Phase::Joined;
}

void AccountSession::command(const model::Join& c, Respond respond) {
    join(c.room, c.nick, c.password, std::move(respond));
}

void AccountSession::command(const model::Part& c, Respond respond) { respond(part(c.room, c.reason)); }

void AccountSession::command(const model::ListRooms&, Respond respond) {
    model::Reply reply;
    for (const auto& [jid, room] : rooms_) reply.rooms.push_back(room.info());
    respond(std::move(reply));
}

void AccountSession::command(const model::SetSubject& c, Respond respond) {
    if (!in_room(c.room)) return respond(model::Reply::error("not-joined", "not in " + c.room));
    if (auto e = need_online()) return respond(*e);
    port_.send(make_muc_subject(c.room, c.subject, port_.new_id()), {});
    respond({});
}

void AccountSession::command(const model::Kick& c, Respond respond) {
    if (!in_room(c.room)) return respond(model::Reply::error("not-joined", "not in " + c.room));
    ask(c.room, [&](const std::string& id) { return make_muc_kick(id, c.room, c.nick, c.reason); }, std::move(respond));
}

void AccountSession::command(const model::SendInvite& c, Respond respond) {
    if (auto e = need_online()) return respond(*e);
    const Room* room = find_room(c.room);
    port_.send(make_direct_invite(c.jid, c.room, c.reason, room ? room->password : ""), {});
    respond({});
}

}  // namespace xmpp::im
