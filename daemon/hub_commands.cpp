// The hub's side of front-end commands (model::Command): one dispatch, and a handler per
// group: the daemon's own (hello, ack, accounts, conversations), messages, contacts, rooms,
// and the account itself. Every command answers through `respond` exactly once, at once or
// when the server has answered. A command kind without a handler does not compile.
#include <type_traits>

#include "daemon/account.hpp"
#include "daemon/hub.hpp"
#include "daemon/hub_detail.hpp"
#include "protocol/base/rfc3339.hpp"

namespace stanzad {
namespace {

template <class C, class... Kinds>
constexpr bool is_one_of = (std::is_same_v<C, Kinds> || ...);

template <class C>
constexpr bool daemon_kind = is_one_of<C, model::Hello, model::Ack, model::ListAccounts, model::Conversations>;
template <class C>
constexpr bool message_kind =
    is_one_of<C, model::Send, model::SetEncryption, model::OmemoDevices, model::OmemoTrust, model::CancelSend,
              model::SendChatState, model::Displayed, model::History, model::StoredMessages, model::SetReadMarker>;
template <class C>
constexpr bool contact_kind = is_one_of<C, model::GetRoster, model::SetPresence, model::ChangeSubscription,
                                        model::RosterSet, model::RosterRemove, model::Block, model::GetBlocklist,
                                        model::ListPresences>;
template <class C>
constexpr bool room_kind =
    is_one_of<C, model::Join, model::Part, model::ListRooms, model::SetSubject, model::Kick, model::SendInvite>;
template <class C>
constexpr bool account_kind = is_one_of<C, model::Raw, model::SetAccountEnabled, model::ProbeCertificate>;
template <class>
constexpr bool no_handler = false;

std::optional<model::Reply> need_online(Account& a) {
    if (a.state() == Account::State::Online) return std::nullopt;
    return model::Reply::error("not-online", "account " + a.name() + " is " + to_string(a.state()));
}

// An iq whose answer is the reply: ok (filled by `fill` from the result), or what the server
// said.
void ask(Account& a, const std::string& to, std::function<std::string(const std::string&)> make,
         Hub::Respond respond, std::function<void(model::Reply&, pugi::xml_node)> fill = {}) {
    a.request(to, make, [name = a.name(), respond = std::move(respond), fill = std::move(fill)](const IqReply& r) {
        if (!r.ok()) return respond(failure_reply(r, name));
        model::Reply reply;
        if (fill) fill(reply, r.iq);
        respond(std::move(reply));
    });
}

}  // namespace

void Hub::handle(const model::Command& command, const std::string& client, Respond respond) {
    std::visit(
        [&](const auto& c) {
            using C = std::decay_t<decltype(c)>;
            if constexpr (daemon_kind<C>) {
                respond(daemon_command(c, client));
            } else {
                Account* a = find_(c.account);
                if (!a) {
                    std::string known;
                    for (Account* each : list_()) known += (known.empty() ? "" : ", ") + each->name();
                    return respond(model::Reply::error("unknown-account", "no account named '" + c.account +
                                                                              "' (known: " +
                                                                              (known.empty() ? "none" : known) + ")"));
                }
                if constexpr (message_kind<C>) message_command(*a, c, std::move(respond));
                else if constexpr (contact_kind<C>) contact_command(*a, c, std::move(respond));
                else if constexpr (room_kind<C>) room_command(*a, c, std::move(respond));
                else if constexpr (account_kind<C>) account_command(*a, c, std::move(respond));
                else static_assert(no_handler<C>, "a command kind without a handler");
            }
        },
        command);
}

template <class C>
model::Reply Hub::daemon_command(const C& c, const std::string& client) {
    model::Reply reply;
    if constexpr (std::is_same_v<C, model::Hello>) {
        auto cursor = store_.cursor(c.client);
        if (!cursor) return model::Reply::error("internal", cursor.error().message);
        reply.cursor = cursor.value();
        reply.last_seq = store_.last_seq();
        reply.accounts = account_infos();
    } else if constexpr (std::is_same_v<C, model::Ack>) {
        if (c.seq > store_.last_seq())
            return model::Reply::error("bad-request", "seq " + std::to_string(c.seq) + " is past the last event (" +
                                                          std::to_string(store_.last_seq()) + ")");
        if (auto st = store_.set_cursor(client, c.seq); !st) return model::Reply::error("internal", st.error().message);
        auto cursor = store_.cursor(client);
        reply.cursor = cursor ? cursor.value() : c.seq;
    } else if constexpr (std::is_same_v<C, model::ListAccounts>) {
        reply.accounts = account_infos();
    } else if constexpr (std::is_same_v<C, model::Conversations>) {
        std::string after = c.after_stamp, before = c.before_stamp;
        if (!normalize_stamp(after) || !normalize_stamp(before)) return model::Reply::error("bad-request", "not a time");
        auto list = store_.conversations(after, before, static_cast<std::size_t>(c.limit));
        if (!list) return model::Reply::error("internal", list.error().message);
        for (const auto& conv : list.value()) reply.conversations.push_back({conv.account, conv.peer, conv.last_stamp});
    }
    return reply;
}

template <class C>
void Hub::message_command(Account& a, const C& c, Respond respond) {
    model::Reply reply;
    if constexpr (std::is_same_v<C, model::Send>) {
        // XEP-0384: encrypted when the contact's setting (or the account's) says so.
        auto wanted = omemo_wanted(a, c);
        if (!wanted) return respond(model::Reply::error(wanted.error().code, wanted.error().message));
        if (wanted.value()) return omemo_send(a, c, *wanted.value(), std::move(respond));
        return respond(session(a).send(c));
    } else if constexpr (std::is_same_v<C, model::SetEncryption>) {
        return respond(omemo_set_encryption(a, c));
    } else if constexpr (std::is_same_v<C, model::OmemoDevices>) {
        return omemo_devices(a, c, std::move(respond));
    } else if constexpr (std::is_same_v<C, model::OmemoTrust>) {
        return respond(omemo_trust(a, c));
    } else if constexpr (std::is_same_v<C, model::CancelSend>) {
        return respond(session(a).cancel(c.msg_id));
    } else if constexpr (std::is_same_v<C, model::SendChatState>) {
        if (auto e = need_online(a)) return respond(*e);
        auto to = xmpp::Jid::parse(c.to);
        bool room = to && to.value().is_bare() && session(a).find_room(c.to);
        // XEP-0085 §5.1: not to a contact who replied without chat states.
        if (room || (to && session(a).chat_states().wanted(to.value().bare())))
            a.send(xmpp::make_chat_state(c.to, room ? "groupchat" : "chat", c.state));
    } else if constexpr (std::is_same_v<C, model::Displayed>) {
        // XEP-0333 reveals when the user reads: only when the user turned it on.
        if (a.config().chat_markers) {
            if (auto e = need_online(a)) return respond(*e);
            bool room = session(a).find_room(c.to) != nullptr;
            std::string id = c.msg_id;  // in a room: the room's stanza-id (§3)
            if (!room)
                if (auto rid = store_.inbound(a.name(), "rid:" + c.msg_id); rid && rid.value()) id = *rid.value();
            a.send(xmpp::make_displayed(c.to, room ? "groupchat" : "chat", id, make_uuid()));
            reply.sent = true;
        }
    } else if constexpr (std::is_same_v<C, model::History>) {
        if (a.capabilities().known && !a.capabilities().archive) return respond(local_history(a, c));
        if (auto e = need_online(a)) return respond(*e);
        return session(a).history(c, std::move(respond));
    } else if constexpr (std::is_same_v<C, model::StoredMessages>) {
        return respond(stored_messages(a, c));
    } else if constexpr (std::is_same_v<C, model::SetReadMarker>) {
        return respond(set_read_marker(a, c));
    }
    respond(std::move(reply));
}

model::Reply Hub::stored_messages(Account& a, const model::StoredMessages& c) {
    model::Reply reply;
    MessageRange range;
    range.after = c.after;
    range.before = c.before;
    range.after_stamp = c.after_stamp;
    range.before_stamp = c.before_stamp;
    if (!normalize_stamp(range.after_stamp) || !normalize_stamp(range.before_stamp))
        return model::Reply::error("bad-request", "not a time");
    range.newest = c.newest;
    if (!c.around_msg_id.empty()) {
        auto seq = store_.message_seq(a.name(), c.peer, c.around_msg_id);
        if (!seq) return model::Reply::error("internal", seq.error().message);
        if (!seq.value()) return model::Reply::error("not-found", "no message " + c.around_msg_id);
        reply.cursor = *seq.value();
    }
    auto messages = store_.messages(a.name(), c.peer, range, static_cast<std::size_t>(c.limit));
    if (!messages) return model::Reply::error("internal", messages.error().message);
    reply.messages = std::move(messages).value();
    return reply;
}

model::Reply Hub::set_read_marker(Account& a, const model::SetReadMarker& c) {
    model::Reply reply;
    auto current = store_.meta(a.name(), "read:" + c.peer);
    if (!current) return model::Reply::error("internal", current.error().message);
    reply.stamp = current.value();
    std::string stamp = c.stamp;
    if (!normalize_stamp(stamp)) return model::Reply::error("bad-request", "not a time");
    // Never in the future: a marker past now would be stuck there for good.
    std::string now = xmpp::rfc3339(std::chrono::system_clock::now());
    if (stamp > now) stamp = now;
    // Only forward (IRCv3 read-marker): an older stamp leaves it where it is.
    if (!stamp.empty() && stamp > reply.stamp) {
        if (auto st = store_.set_meta(a.name(), "read:" + c.peer, stamp); !st)
            return model::Reply::error("internal", st.error().message);
        reply.stamp = stamp;
        publish(a.name(), model::ReadMarker{c.peer, stamp});
    }
    return reply;
}

template <class C>
void Hub::contact_command(Account& a, const C& c, Respond respond) {
    model::Reply reply;
    if constexpr (std::is_same_v<C, model::GetRoster>) {
        reply.items = session(a).roster_items();
    } else if constexpr (std::is_same_v<C, model::SetPresence>) {
        a.set_presence(c.show, c.status, c.priority);  // kept for reconnections
        for (auto& [jid, room] : session(a).rooms())   // RFC 6121 §4.2: rooms see it too
            if (room.phase() == xmpp::im::Room::Phase::Joined)
                a.send("<presence to='" + xmpp::xml_escape(jid + "/" + room.nick) + "'>" + a.presence_payload() +
                       "</presence>");
    } else if constexpr (std::is_same_v<C, model::ChangeSubscription>) {
        if (auto e = need_online(a)) return respond(*e);
        const char* type = c.kind == "subscribe"     ? "subscribe"
                           : c.kind == "unsubscribe" ? "unsubscribe"
                           : c.kind == "approve"     ? "subscribed"
                                                     : "unsubscribed";
        a.send(xmpp::make_subscription(c.jid, type));
    } else if constexpr (std::is_same_v<C, model::RosterSet>) {
        return ask(a, {}, [&](const std::string& id) { return xmpp::make_roster_set(id, c.jid, c.name, c.groups); },
                   std::move(respond));
    } else if constexpr (std::is_same_v<C, model::RosterRemove>) {
        return ask(a, {}, [&](const std::string& id) { return xmpp::make_roster_remove(id, c.jid); },
                   std::move(respond));
    } else if constexpr (std::is_same_v<C, model::Block>) {
        return ask(
            a, {},
            [&](const std::string& id) { return c.block ? xmpp::make_block(id, c.jids) : xmpp::make_unblock(id, c.jids); },
            std::move(respond));
    } else if constexpr (std::is_same_v<C, model::GetBlocklist>) {
        return ask(a, {}, [](const std::string& id) { return xmpp::make_blocklist_get(id); }, std::move(respond),
                   [](model::Reply& r, pugi::xml_node iq) {
                       r.jids = xmpp::parse_block_items(xmpp::child(iq, xmpp::ns_blocking, "blocklist"));
                   });
    } else if constexpr (std::is_same_v<C, model::ListPresences>) {
        reply.presences = session(a).presences();
    }
    respond(std::move(reply));
}

template <class C>
void Hub::room_command(Account& a, const C& c, Respond respond) {
    model::Reply reply;
    auto joined = [&](const std::string& jid) {
        auto* room = session(a).find_room(jid);
        return room && room->phase() == xmpp::im::Room::Phase::Joined;
    };
    if constexpr (std::is_same_v<C, model::Join>) {
        if (auto e = need_online(a)) return respond(*e);
        return session(a).join(c.room, c.nick, c.password, std::move(respond));
    } else if constexpr (std::is_same_v<C, model::Part>) {
        return respond(session(a).part(c.room, c.reason));
    } else if constexpr (std::is_same_v<C, model::ListRooms>) {
        for (const auto& [jid, room] : session(a).rooms()) reply.rooms.push_back(room.info());
    } else if constexpr (std::is_same_v<C, model::SetSubject>) {
        if (!joined(c.room)) return respond(model::Reply::error("not-joined", "not in " + c.room));
        if (auto e = need_online(a)) return respond(*e);
        a.send(xmpp::make_muc_subject(c.room, c.subject, make_uuid()));
    } else if constexpr (std::is_same_v<C, model::Kick>) {
        if (!joined(c.room)) return respond(model::Reply::error("not-joined", "not in " + c.room));
        return ask(a, c.room, [&](const std::string& id) { return xmpp::make_muc_kick(id, c.room, c.nick, c.reason); },
                   std::move(respond));
    } else if constexpr (std::is_same_v<C, model::SendInvite>) {
        if (auto e = need_online(a)) return respond(*e);
        const auto* room = session(a).find_room(c.room);
        a.send(xmpp::make_direct_invite(c.jid, c.room, c.reason, room ? room->password : ""));
    }
    respond(std::move(reply));
}

template <class C>
void Hub::account_command(Account& a, const C& c, Respond respond) {
    if constexpr (std::is_same_v<C, model::Raw>) {
        if (auto st = xmpp::check_raw_stanza(c.xml); !st) return respond(model::Reply::error("bad-xml", st.error().message));
        if (auto e = need_online(a)) return respond(*e);
        a.send(c.xml);
    } else if constexpr (std::is_same_v<C, model::SetAccountEnabled>) {
        if (c.enabled) a.enable();
        else a.disable();
    } else if constexpr (std::is_same_v<C, model::ProbeCertificate>) {
        return a.probe([respond = std::move(respond)](xmpp::Result<Account::Probe> r) {
            if (!r) return respond(model::Reply::error(r.error().code, r.error().message));
            const auto& p = r.value();
            model::Reply reply;
            reply.certificate = {p.server,
                                 p.certificate.pin,
                                 p.certificate.subject,
                                 p.certificate.issuer,
                                 p.certificate.not_before,
                                 p.certificate.not_after,
                                 p.certificate.names,
                                 p.certificate.verify_error};
            respond(std::move(reply));
        });
    }
    respond(model::Reply{});
}

}  // namespace stanzad
