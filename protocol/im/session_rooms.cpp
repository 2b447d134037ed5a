// AccountSession's multi-user chat side (XEP-0045): joining and rejoining rooms, occupants as
// events (after a rejoin only what changed, im/room.hpp), the room's archive (XEP-0313 at
// the room) instead of the join history, self-ping (XEP-0410), bookmarks (XEP-0402,
// XEP-0048), and the list of rooms to rejoin kept across restarts.
#include <nlohmann/json.hpp>

#include "protocol/im/session.hpp"
#include "protocol/stream.hpp"

namespace xmpp::im {
namespace {

constexpr auto join_timeout = std::chrono::seconds(30);

}  // namespace

std::string AccountSession::default_nick() const {
    return own_.local().empty() ? own_.domain() : own_.local();
}

AccountSession::Room* AccountSession::find_room(const std::string& jid) {
    auto it = rooms_.find(jid);
    return it == rooms_.end() ? nullptr : &it->second;
}

void AccountSession::publish(model::EventBody body) {
    model::Event event{0, account_, {}, std::move(body)};
    if (auto st = store_.append(event); !st)
        // Front ends still hear of it; only a later replay will miss it.
        log(SessionPort::Level::Error,
            "cannot store a " + std::string(model::event_name(event.body)) + " event: " + st.error().message);
    port_.deliver(event);
}

void AccountSession::remember_rooms() {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& [jid, room] : rooms_)
        if (room.remembered) j.push_back({{"room", jid}, {"nick", room.nick}, {"password", room.password}});
    if (auto st = store_.keep("rooms", j.dump()); !st)
        log(SessionPort::Level::Warn, "cannot remember the rooms: " + st.error().message);
}

void AccountSession::rooms_online(bool resumed) {
    for (const auto& leave : std::exchange(pending_leaves_, {})) port_.send(leave, {});
    if (resumed) {
        // XEP-0198: the session, with its room presences, went on; a catch-up that the
        // lost link cut off starts again.
        for (auto& [jid, room] : rooms_)
            if (room.phase() == im::Room::Phase::Joined && room.catch_up.gap_open() && room.catch_up_query.empty()) {
                auto last = store_.kept("mam_last:" + jid);
                send_room_page(room, room.catch_up.begin(last ? last.value() : ""));
            }
        return;
    }
    // The rooms to be in: those we were in, the config's, the ones remembered from `join`.
    for (const auto& r : port_.configured_rooms()) {
        auto [it, fresh] = rooms_.try_emplace(r.jid, r.jid, r.nick.empty() ? default_nick() : r.nick);
        it->second.remembered = true;
    }
    if (auto saved = store_.kept("rooms"); saved && !saved.value().empty()) {
        auto j = nlohmann::json::parse(saved.value(), nullptr, false);
        if (j.is_array())
            for (const auto& r : j) {
                if (!r.is_object() || !r.value("room", std::string()).size()) continue;
                auto [it, fresh] =
                    rooms_.try_emplace(r.value("room", ""), r.value("room", ""), r.value("nick", default_nick()));
                if (!fresh) continue;
                it->second.password = r.value("password", "");
                it->second.remembered = true;
            }
    }
    for (auto it = rooms_.begin(); it != rooms_.end();) {
        if (!it->second.remembered) {
            // A join asked on an earlier session never completed; one asked on this session
            // while its start waited for disco#info is already on its way.
            if (it->second.asked < port_.online_at()) {
                for (auto& w : it->second.waiters) w(model::Reply::error("not-online", "the connection ended"));
                it = rooms_.erase(it);
            } else {
                ++it;
            }
            continue;
        }
        send_join(it->second);
        ++it;
    }
    // XEP-0402 §3.4 (else XEP-0048 §3.3 through private storage): bookmarked rooms marked
    // autojoin. XEP-0402 needs PEP (XEP-0163): without it, private storage only.
    std::weak_ptr<int> alive = alive_;
    auto legacy = [this, alive] {
        port_.request({}, [](const std::string& id) { return make_legacy_bookmarks_get(id); },
                      [this, alive](const IqReply& r) {
                          if (alive.lock() && r.ok()) autojoin(parse_legacy_bookmarks(r.iq));
                      });
    };
    if (port_.capabilities().known && !port_.capabilities().pep) return legacy();
    port_.request({}, [](const std::string& id) { return make_bookmarks_get(id); },
                  [this, alive, legacy](const IqReply& r) {
                      if (!alive.lock()) return;
                      if (r.ok()) return autojoin(parse_bookmarks(r.iq));
                      if (r.outcome == IqReply::Outcome::Disconnected || r.outcome == IqReply::Outcome::NotOnline)
                          return;
                      legacy();
                  });
}

void AccountSession::autojoin(const std::vector<Bookmark>& marks) {
    for (const auto& b : marks) {
        if (!b.autojoin || find_room(b.room)) continue;
        join(b.room, b.nick, b.password, [this, alive = std::weak_ptr<int>(alive_), room = b.room](const model::Reply& r) {
            if (alive.lock() && !r.ok())
                log(SessionPort::Level::Warn, "could not join bookmarked room " + room + ": " + r.error_message);
        });
    }
}

void AccountSession::send_join(Room& room) {
    publish(room.begin_join(port_.now()));
    port_.send(make_muc_join(room.jid, room.nick, room.password, port_.presence_payload()), {});
}

void AccountSession::join(std::string jid, std::string nick, std::string password, Respond respond) {
    if (auto e = need_online()) return respond(*e);
    Room* existing = find_room(jid);
    if (nick.empty()) nick = existing ? existing->nick : default_nick();
    if (existing && existing->phase() == im::Room::Phase::Joined) {
        if (existing->nick == nick) {
            model::Reply reply;
            reply.rooms.push_back(existing->info());
            return respond(std::move(reply));
        }
        // §7.6: a nick change is a presence to the new occupant JID; the room answers.
        existing->waiters.push_back(std::move(respond));
        existing->asked = port_.now();
        port_.send("<presence to='" + xml_escape(jid + "/" + nick) + "'>" + port_.presence_payload() + "</presence>",
                   {});
        return;
    }
    Room& room = rooms_.try_emplace(jid, jid, nick).first->second;
    room.nick = nick;
    if (!password.empty() || !existing) room.password = password;
    room.waiters.push_back(std::move(respond));
    send_join(room);
}

model::Reply AccountSession::part(const std::string& jid, const std::string& reason) {
    Room* room = find_room(jid);
    if (!room) return model::Reply::error("not-joined", "not in " + jid);
    for (auto& w : room->waiters) w(model::Reply::error("not-joined", "left " + jid + " before it answered"));
    // §7.14. Offline, the server may still hold us in the room (a resumable session):
    // the leave goes out at the next login.
    std::string leave = make_muc_leave(jid, room->nick, reason);
    if (!port_.send(leave, {})) pending_leaves_.push_back(std::move(leave));
    std::string nick = room->nick;
    rooms_.erase(jid);
    remember_rooms();
    publish(model::RoomState{jid, "left", nick, reason, ""});
    return {};
}

void AccountSession::room_gone(const std::string& jid, const std::string& state, const std::string& reason,
                               const std::string& actor) {
    Room* room = find_room(jid);
    if (!room) return;
    std::string nick = room->nick;
    for (auto& w : room->waiters) w(model::Reply::error("refused", state + (reason.empty() ? "" : " (" + reason + ")")));
    rooms_.erase(jid);
    remember_rooms();
    publish(model::RoomState{jid, state, nick, reason, actor});
}

void AccountSession::joined(Room& room) {
    log(SessionPort::Level::Info, "joined " + room.jid + " as " + room.nick + " (" +
                                      std::to_string(room.occupant_count()) + " occupant(s))");
    // The room's archive brings what was said while we were not there (§7.2.13 asked for
    // no join history): after the last message we have, or the last page the first time.
    auto last = store_.kept("mam_last:" + room.jid);
    send_room_page(room, room.catch_up.begin(last ? last.value() : ""));
}

void AccountSession::send_room_page(Room& room, const CatchUp::Page& page) {
    MamQuery q;
    q.to = room.jid;
    q.query_id = "room" + std::to_string(++room_queries_);
    q.max = page.max;
    if (page.newest) q.before = "";  // the newest page
    else q.after = page.after;
    room.catch_up_query = q.query_id;
    port_.request(room.jid, [&](const std::string& id) { return make_mam_query(id, q); },
                  [this, alive = std::weak_ptr<int>(alive_), jid = room.jid, query_id = q.query_id](const IqReply& r) {
                      if (alive.lock()) room_page_answer(jid, query_id, r);
                  });
}

void AccountSession::room_page_answer(const std::string& jid, const std::string& query_id, const IqReply& r) {
    Room* room = find_room(jid);
    if (!room || room->catch_up_query != query_id) return;
    room->catch_up_query.clear();
    auto fin = r.ok() ? parse_mam_fin(r.iq) : std::nullopt;
    if (!fin) {
        // The gap stays open (tried again after the next resumption or rejoin), unless the
        // room has no archive (im::CatchUp::failed).
        log(SessionPort::Level::Info,
            jid + ": no archive catch-up (" + (r.ok() ? std::string("no <fin/>") : r.describe()) + ")");
        room->catch_up.failed(r.error.condition, r.ok() || r.outcome == IqReply::Outcome::Remote);
        return;
    }
    auto next = room->catch_up.fin(fin->complete, fin->last);
    if (!next.keep.empty())
        if (auto st = store_.keep("mam_last:" + jid, next.keep); !st)
            log(SessionPort::Level::Warn, "cannot remember archive id: " + st.error().message);
    if (next.next) return send_room_page(*room, *next.next);  // XEP-0059
    log(SessionPort::Level::Info, jid + ": archive catch-up: " + std::to_string(room->catch_up.count()) +
                                      " message(s), " + std::to_string(room->catch_up.fresh()) + " of them new");
}

bool AccountSession::room_archive_result(pugi::xml_node stanza) {
    Room* room = find_room(stanza.attribute("from").value());
    if (!room || room->catch_up_query.empty()) return false;
    auto archived = parse_mam_result(stanza, own_, room->jid);
    if (!archived || archived->query_id != room->catch_up_query) return false;
    const auto& m = archived->message;
    // Our own messages come back from the archive too: known by their origin-id.
    bool skip = !m.has_content() || m.type == "error" || (!m.origin_id.empty() && store_.outgoing(m.origin_id));
    room->catch_up.counted(!skip && incoming(m, true, {}, room->jid));
    return true;
}

bool AccountSession::room_message(const ReceivedMessage& m) {
    auto from = Jid::parse(m.from);
    if (!from) return false;
    Room* room = find_room(from.value().bare());
    if (!room) return false;
    const std::string nick = from.value().resource();
    if (m.has_subject && m.body.empty()) {
        // §8.1 / §7.2.15: the subject, at join and when it changes.
        if (auto changed = room->subject_changed(m.subject, nick)) publish(std::move(*changed));
        return true;
    }
    if (m.body.empty()) {
        if (!m.chat_state.empty() && nick != room->nick) port_.transient(model::ChatState{m.from, m.to, m.chat_state});
        return true;
    }
    // Our own message, echoed by the room (§7.4): it has reached the room.
    const bool ours = !m.origin_id.empty() && store_.outgoing(m.origin_id);
    if (ours) advance(m.origin_id, Delivery::Delivered);
    else incoming(m, false, {}, room->jid);
    // The archive position moves with live messages only while no gap is open.
    if (!m.stanza_id.empty() && !room->catch_up.gap_open())
        if (auto st = store_.keep("mam_last:" + room->jid, m.stanza_id); !st && !ours)
            log(SessionPort::Level::Warn, "cannot remember archive id: " + st.error().message);
    return true;
}

bool AccountSession::room_presence(const MucPresence& p) {
    Room* room = find_room(p.room);
    if (!room) return false;
    if (p.type == "error" && room->phase() != im::Room::Phase::Joined)
        log(SessionPort::Level::Warn, "cannot join " + room->jid + ": " + p.error);
    auto out = room->presence(p, port_.now());
    if (out.gone) {
        room_gone(p.room, out.gone->state, out.gone->reason, out.gone->actor);
        return true;
    }
    for (auto& e : out.events) publish(std::move(e));
    if (out.remember) remember_rooms();
    if (out.answer == im::Room::Outcome::Answer::Refused) {
        for (auto& w : std::exchange(room->waiters, {})) w(model::Reply::error("refused", out.error));
    } else if (out.answer == im::Room::Outcome::Answer::Joined) {
        model::Reply reply;
        reply.rooms.push_back(room->info());
        for (auto& w : std::exchange(room->waiters, {})) w(reply);
    }
    if (out.joined) joined(*room);
    return true;
}

void AccountSession::tick(std::chrono::seconds self_ping) {
    const auto now = port_.now();
    // Every join or nick change is answered within 30 s, online or not: a front end's later
    // replies wait behind it.
    for (auto& [jid, room] : rooms_)
        if (!room.waiters.empty() && now - room.asked > join_timeout)
            for (auto& w : std::exchange(room.waiters, {}))
                w(model::Reply::error("timeout", jid + " did not answer within 30 seconds"));
    if (!port_.online()) return;
    for (auto& [jid, room] : rooms_) {
        auto due = room.tick(now, self_ping);
        if (due == im::Room::Due::Rejoin) send_join(room);
        if (due != im::Room::Due::SelfPing) continue;
        const std::string room_jid = jid, nick = room.nick;  // (clang 14: no captured bindings)
        port_.request(room_jid + "/" + nick, [&](const std::string& id) { return make_muc_self_ping(id, room_jid, nick); },
                      [this, alive = std::weak_ptr<int>(alive_), room_jid](const IqReply& r) {
                          if (!alive.lock()) return;
                          Room* room = find_room(room_jid);
                          if (!room) return;
                          bool not_joined = r.iq && classify_self_ping(r.iq) == SelfPing::NotJoined;
                          if (!room->self_ping_answered(not_joined, port_.now())) return;
                          log(SessionPort::Level::Info,
                              "no longer in " + room_jid + " (" + r.describe() + "); joining again");
                          send_join(*room);
                      });
    }
}

}  // namespace xmpp::im
