// The hub's multi-user chat side (XEP-0045): joining and rejoining rooms, occupants as
// events (after a rejoin only what changed), the room's archive (XEP-0313 at the room)
// instead of the join history, self-ping (XEP-0410), bookmarks (XEP-0402, XEP-0048).
#include <nlohmann/json.hpp>

#include "daemon/account.hpp"
#include "daemon/hub.hpp"
#include "daemon/log.hpp"

namespace stanzad {
namespace {

constexpr auto join_timeout = std::chrono::seconds(30);

std::string default_nick(const Account& a) {
    std::string local = a.config().jid.local();
    return local.empty() ? a.config().jid.domain() : local;
}

}  // namespace

Hub::Room* Hub::find_room(const std::string& account, const std::string& room) {
    auto a = rooms_.find(account);
    if (a == rooms_.end()) return nullptr;
    auto r = a->second.find(room);
    return r == a->second.end() ? nullptr : &r->second;
}

void Hub::remember_rooms(Account& account) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& [jid, room] : rooms_[account.name()])
        if (room.remembered) j.push_back({{"room", jid}, {"nick", room.nick}, {"password", room.password}});
    if (auto st = store_.set_meta(account.name(), "rooms", j.dump()); !st)
        logs::daemon().warn("account {}: cannot remember the rooms: {}", account.name(), st.error().message);
}

void Hub::rooms_online(Account& account, bool resumed) {
    for (const auto& leave : std::exchange(pending_leaves_[account.name()], {})) account.send(leave);
    if (resumed) {
        // XEP-0198: the session, with its room presences, went on; a catch-up that the
        // lost link cut off starts again.
        for (auto& [jid, room] : rooms_[account.name()])
            if (room.phase() == xmpp::im::Room::Phase::Joined && room.catch_up.gap_open() &&
                room.catch_up_query.empty()) {
                auto last = store_.meta(account.name(), "mam_last:" + jid);
                room_catch_up(account, room, last ? last.value() : "");
            }
        return;
    }
    auto& rooms = rooms_[account.name()];
    // The rooms to be in: those we were in, the config's, the ones remembered from `join`.
    for (const auto& r : account.config().rooms) {
        auto [it, fresh] = rooms.try_emplace(r.jid, r.jid, r.nick.empty() ? default_nick(account) : r.nick);
        it->second.remembered = true;
    }
    if (auto saved = store_.meta(account.name(), "rooms"); saved && !saved.value().empty()) {
        auto j = nlohmann::json::parse(saved.value(), nullptr, false);
        if (j.is_array())
            for (const auto& r : j) {
                if (!r.is_object() || !r.value("room", std::string()).size()) continue;
                auto [it, fresh] = rooms.try_emplace(r.value("room", ""), r.value("room", ""),
                                                     r.value("nick", default_nick(account)));
                if (!fresh) continue;
                it->second.password = r.value("password", "");
                it->second.remembered = true;
            }
    }
    for (auto it = rooms.begin(); it != rooms.end();) {
        if (!it->second.remembered) {
            // A join asked on an earlier session never completed; one asked on this session
            // while its start waited for disco#info is already on its way.
            if (it->second.asked < account.online_at()) {
                for (auto& w : it->second.waiters) w(model::Reply::error("not-online", "the connection ended"));
                it = rooms.erase(it);
            } else {
                ++it;
            }
            continue;
        }
        send_join(account, it->second);
        ++it;
    }
    // XEP-0402 §3.4 (else XEP-0048 §3.3 through private storage): bookmarked rooms marked
    // autojoin.
    std::string name = account.name();
    auto autojoin = [this, name](std::vector<xmpp::Bookmark> marks) {
        Account* a = find_(name);
        if (!a) return;
        for (const auto& b : marks) {
            if (!b.autojoin || find_room(name, b.room)) continue;
            join(*a, b.room, b.nick, b.password, [name, room = b.room](const model::Reply& r) {
                if (!r.ok())
                    logs::daemon().warn("account {}: could not join bookmarked room {}: {}", name, room,
                                        r.error_message);
            });
        }
    };
    auto legacy = [autojoin](Account& a) {
        a.request({}, [](const std::string& id) { return xmpp::make_legacy_bookmarks_get(id); },
                  [autojoin](const IqReply& r) {
                      if (r.ok()) autojoin(xmpp::parse_legacy_bookmarks(r.iq));
                  });
    };
    // XEP-0402 needs PEP (XEP-0163): without it, private storage only.
    if (account.capabilities().known && !account.capabilities().pep) return legacy(account);
    account.request({}, [](const std::string& id) { return xmpp::make_bookmarks_get(id); },
                    [this, name, autojoin, legacy](const IqReply& r) {
                        Account* a = find_(name);
                        if (r.ok()) return autojoin(xmpp::parse_bookmarks(r.iq));
                        if (!a || r.outcome == IqReply::Outcome::Disconnected ||
                            r.outcome == IqReply::Outcome::NotOnline)
                            return;
                        legacy(*a);
                    });
}

void Hub::send_join(Account& account, Room& room) {
    publish(account.name(), room.begin_join(std::chrono::steady_clock::now()));
    account.send(xmpp::make_muc_join(room.jid, room.nick, room.password, account.presence_payload()));
}

void Hub::join(Account& account, std::string jid, std::string nick, std::string password, Respond respond) {
    if (account.state() != Account::State::Online)
        return respond(model::Reply::error("not-online", "account " + account.name() + " is " + to_string(account.state())));
    Room* existing = find_room(account.name(), jid);
    if (nick.empty()) nick = existing ? existing->nick : default_nick(account);
    if (existing && existing->phase() == xmpp::im::Room::Phase::Joined) {
        if (existing->nick == nick) {
            model::Reply reply;
            reply.rooms.push_back(existing->info());
            return respond(std::move(reply));
        }
        // §7.6: a nick change is a presence to the new occupant JID; the room answers.
        existing->waiters.push_back(std::move(respond));
        existing->asked = std::chrono::steady_clock::now();
        account.send("<presence to='" + xmpp::xml_escape(jid + "/" + nick) + "'>" + account.presence_payload() +
                     "</presence>");
        return;
    }
    Room& room = rooms_[account.name()].try_emplace(jid, jid, nick).first->second;
    room.nick = nick;
    if (!password.empty() || !existing) room.password = password;
    room.waiters.push_back(std::move(respond));
    send_join(account, room);
}

model::Reply Hub::part(Account& account, const std::string& jid, const std::string& reason) {
    Room* room = find_room(account.name(), jid);
    if (!room) return model::Reply::error("not-joined", "not in " + jid);
    for (auto& w : room->waiters) w(model::Reply::error("not-joined", "left " + jid + " before it answered"));
    // §7.14. Offline, the server may still hold us in the room (a resumable session):
    // the leave goes out at the next login.
    if (!account.send(xmpp::make_muc_leave(jid, room->nick, reason)))
        pending_leaves_[account.name()].push_back(xmpp::make_muc_leave(jid, room->nick, reason));
    std::string nick = room->nick;
    rooms_[account.name()].erase(jid);
    remember_rooms(account);
    publish(account.name(), model::RoomState{jid, "left", nick, reason, ""});
    return {};
}

void Hub::room_gone(Account& account, const std::string& jid, const std::string& state, const std::string& reason,
                    const std::string& actor) {
    Room* room = find_room(account.name(), jid);
    if (!room) return;
    std::string nick = room->nick;
    for (auto& w : room->waiters) w(model::Reply::error("refused", state + (reason.empty() ? "" : " (" + reason + ")")));
    rooms_[account.name()].erase(jid);
    remember_rooms(account);
    publish(account.name(), model::RoomState{jid, state, nick, reason, actor});
}

void Hub::joined(Account& account, Room& room) {
    logs::daemon().info("account {}: joined {} as {} ({} occupant(s))", account.name(), room.jid, room.nick,
                        room.occupant_count());
    // The room's archive brings what was said while we were not there (§7.2.13 asked for
    // no join history): after the last message we have, or the last page the first time.
    auto last = store_.meta(account.name(), "mam_last:" + room.jid);
    room_catch_up(account, room, last ? last.value() : "");
}

void Hub::room_catch_up(Account& account, Room& room, const std::string& after) {
    send_room_page(account, room, room.catch_up.begin(after));
}

void Hub::send_room_page(Account& account, Room& room, const xmpp::im::CatchUp::Page& page) {
    xmpp::MamQuery q;
    q.to = room.jid;
    q.query_id = "room" + std::to_string(next_query_++);
    q.max = page.max;
    if (page.newest) q.before = "";  // the newest page
    else q.after = page.after;
    room.catch_up_query = q.query_id;
    std::string name = account.name(), jid = room.jid, query_id = q.query_id;
    account.request(room.jid, [&](const std::string& id) { return xmpp::make_mam_query(id, q); },
                    [this, name, jid, query_id](const IqReply& r) {
                        Account* a = find_(name);
                        Room* room = find_room(name, jid);
                        if (!a || !room || room->catch_up_query != query_id) return;
                        room->catch_up_query.clear();
                        auto fin = r.ok() ? xmpp::parse_mam_fin(r.iq) : std::nullopt;
                        if (!fin) {
                            // The gap stays open (tried again after the next resumption or
                            // rejoin), unless the room has no archive (im::CatchUp::failed).
                            logs::daemon().info("account {}: {}: no archive catch-up ({})", name, jid,
                                                r.ok() ? "no <fin/>" : r.describe());
                            room->catch_up.failed(r.error.condition,
                                                  r.ok() || r.outcome == IqReply::Outcome::Remote);
                            return;
                        }
                        auto next = room->catch_up.fin(fin->complete, fin->last);
                        if (!next.keep.empty()) {
                            if (auto st = store_.set_meta(name, "mam_last:" + jid, next.keep); !st)
                                logs::daemon().warn("account {}: cannot remember archive id: {}", name,
                                                    st.error().message);
                        }
                        if (next.next) return send_room_page(*a, *room, *next.next);  // XEP-0059
                        logs::daemon().info("account {}: {}: archive catch-up: {} message(s), {} of them new", name,
                                            jid, room->catch_up.count(), room->catch_up.fresh());
                    });
}

bool Hub::room_archive_result(Account& account, pugi::xml_node stanza) {
    std::string from = stanza.attribute("from").value();
    Room* room = find_room(account.name(), from);
    if (!room || room->catch_up_query.empty()) return false;
    auto archived = xmpp::parse_mam_result(stanza, account.config().jid, room->jid);
    if (!archived || archived->query_id != room->catch_up_query) return false;
    const auto& m = archived->message;
    // Our own messages come back from the archive too: known by their origin-id.
    bool skip = !m.has_content() || m.type == "error" || (!m.origin_id.empty() && store_.find(account.name(), m.origin_id));
    room->catch_up.counted(!skip && session(account).incoming(m, true, {}, room->jid));
    return true;
}

bool Hub::room_message(Account& account, const xmpp::ReceivedMessage& m) {
    auto from = xmpp::Jid::parse(m.from);
    if (!from) return false;
    Room* room = find_room(account.name(), from.value().bare());
    if (!room) return false;
    const std::string nick = from.value().resource();
    if (m.has_subject && m.body.empty()) {
        // §8.1 / §7.2.15: the subject, at join and when it changes.
        if (auto changed = room->subject_changed(m.subject, nick)) publish(account.name(), std::move(*changed));
        return true;
    }
    if (m.body.empty()) {
        if (!m.chat_state.empty() && nick != room->nick)
            transient(account.name(), model::ChatState{m.from, m.to, m.chat_state});
        return true;
    }
    // Our own message, echoed by the room (§7.4): it has reached the room.
    if (!m.origin_id.empty() && store_.find(account.name(), m.origin_id)) {
        session(account).advance(m.origin_id, xmpp::im::Delivery::Delivered);
        if (!m.stanza_id.empty() && !room->catch_up.gap_open())
            (void)store_.set_meta(account.name(), "mam_last:" + room->jid, m.stanza_id);
        return true;
    }
    session(account).incoming(m, false, {}, room->jid);
    // The archive position moves with live messages only while no gap is open.
    if (!m.stanza_id.empty() && !room->catch_up.gap_open())
        if (auto st = store_.set_meta(account.name(), "mam_last:" + room->jid, m.stanza_id); !st)
            logs::daemon().warn("account {}: cannot remember archive id: {}", account.name(), st.error().message);
    return true;
}

bool Hub::room_presence(Account& account, const xmpp::MucPresence& p) {
    Room* room = find_room(account.name(), p.room);
    if (!room) return false;
    if (p.type == "error" && room->phase() != xmpp::im::Room::Phase::Joined)
        logs::daemon().warn("account {}: cannot join {}: {}", account.name(), room->jid, p.error);
    auto out = room->presence(p, std::chrono::steady_clock::now());
    if (out.gone) {
        room_gone(account, p.room, out.gone->state, out.gone->reason, out.gone->actor);
        return true;
    }
    for (auto& e : out.events) publish(account.name(), std::move(e));
    if (out.remember) remember_rooms(account);
    if (out.answer == Room::Outcome::Answer::Refused) {
        for (auto& w : std::exchange(room->waiters, {})) w(model::Reply::error("refused", out.error));
    } else if (out.answer == Room::Outcome::Answer::Joined) {
        model::Reply reply;
        reply.rooms.push_back(room->info());
        for (auto& w : std::exchange(room->waiters, {})) w(reply);
    }
    if (out.joined) joined(account, *room);
    return true;
}

void Hub::tick() {
    auto now = std::chrono::steady_clock::now();
    for (auto& [name, rooms] : rooms_) {
        Account* account = find_(name);
        // Every join or nick change is answered within 30 s, online or not: a front end's
        // later replies wait behind it.
        for (auto& [jid, room] : rooms)
            if (!room.waiters.empty() && now - room.asked > join_timeout)
                for (auto& w : std::exchange(room.waiters, {}))
                    w(model::Reply::error("timeout", jid + " did not answer within 30 seconds"));
        if (!account || account->state() != Account::State::Online) continue;
        for (auto& [jid, room] : rooms) {
            auto due = room.tick(now, self_ping_);
            if (due == Room::Due::Rejoin) send_join(*account, room);
            if (due != Room::Due::SelfPing) continue;
            const std::string room_jid = jid, nick = room.nick;  // (clang 14: no captured bindings)
            account->request(room_jid + "/" + nick,
                             [&](const std::string& id) { return xmpp::make_muc_self_ping(id, room_jid, nick); },
                             [this, name = name, jid = jid](const IqReply& r) {
                                 Account* a = find_(name);
                                 Room* room = find_room(name, jid);
                                 if (!a || !room) return;
                                 bool not_joined =
                                     r.iq && xmpp::classify_self_ping(r.iq) == xmpp::SelfPing::NotJoined;
                                 if (!room->self_ping_answered(not_joined, std::chrono::steady_clock::now())) return;
                                 logs::daemon().info("account {}: no longer in {} ({}); joining again", name, jid,
                                                     r.describe());
                                 send_join(*a, *room);
                             });
        }
    }
}

}  // namespace stanzad
