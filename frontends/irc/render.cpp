// Events as IRC lines (docs/irc.md): messages as PRIVMSG, presence as voice and AWAY,
// roster changes as JOIN/PART in &stanzad, rooms as channels (XEP-0045 occupants as JOIN,
// PART, KICK, NICK, MODE), subjects as TOPIC, invitations as INVITE, typing as TAGMSG
// (IRCv3 client-tags), read markers as MARKREAD. Part of irc::Session.
#include <algorithm>

#include "frontends/irc/session.hpp"
#include "frontends/irc/session_util.hpp"

namespace irc {
using namespace detail;
namespace {

// "[HH:MM] " from an RFC 3339 stamp, for clients without server-time.
std::string clock_prefix(std::string_view stamp) {
    if (stamp.size() < 16) return "";
    return "[" + std::string(stamp.substr(11, 5)) + "] ";
}

std::string with_reason(const std::string& what, const std::string& reason) {
    return what + (reason.empty() ? "" : ": " + reason);
}

// An encrypted message's sending device, when it is not one used as usual (blind or
// trusted): "undecided" or "changed" (docs/encryption.md "Trust"); else "".
std::string unusual_trust(const model::Message& m) {
    return m.trust.empty() || m.trust == "blind" || m.trust == "trusted" ? "" : m.trust;
}

// XEP-0384 (issue 14 §6), for every client: an encrypted message that decrypted starts with
// the configured prefix ([irc] encrypted_prefix), and with a warning when its device is
// not one used as usual. One that did not decrypt already says so in its text.
std::string encryption_marker(const model::Message& m, const std::string& prefix) {
    if (m.encryption.empty() || !m.error.empty()) return "";
    std::string trust = unusual_trust(m);
    return prefix + (trust.empty() ? "" : "[device " + trust + "] ");
}

// For clients with message-tags: the encryption as a client-only tag with a vendor prefix,
// as message-tags "Client-only tags" and "Rules for naming message tags" (Vendor-Specific)
// require for a tag the IRCv3 registry does not define.
void encryption_tags(const model::Message& m, std::vector<std::pair<std::string, std::string>>& tags) {
    if (m.encryption.empty()) return;
    tags.emplace_back(std::string(encryption_tag), m.encryption);
    if (std::string trust = unusual_trust(m); !trust.empty()) tags.emplace_back(std::string(trust_tag), trust);
}

}  // namespace

// One overload per event type; the state the session keeps is updated on the way.
struct Session::Renderer {
    Session& s;
    const model::Event& e;

    void operator()(const model::Message& m) const {
        if (m.history) return;
        if (s.replaying_ && e.seq != 0) return;  // the replay brings it, in order
        if (m.outgoing && s.own_sends_.count(m.msg_id)) {
            s.own_sends_.erase(m.msg_id);
            s.last_live_ = std::max(s.last_live_, e.seq);
            if (s.has("echo-message")) {
                // The echo is the labeled response of that PRIVMSG (a batch when it is several lines).
                std::optional<std::string> label;
                if (auto it = s.echo_labels_.find(m.msg_id); it != s.echo_labels_.end()) {
                    label = it->second;
                    s.echo_labels_.erase(it);
                }
                s.labeled(label, [&] { s.render_message(e, "", false); });
            }
            s.ping_acks();
            return;
        }
        s.render_message(e, "", false);
        s.last_live_ = std::max(s.last_live_, e.seq);
        s.ping_acks();
    }

    void operator()(const model::MessageState& state) const {
        if (state.state == model::Delivery::Failed) s.notice_control("message " + state.msg_id + " failed: " + state.error);
    }

    void operator()(const model::Presence& p) const { s.render_presence(e.account, p); }

    void part_control(const std::string& jid) const {
        s.send(make(s.hostmask(s.contact_nick(e.account, jid), jid), "PART",
                    {std::string(control_channel), "removed from the roster"}));
    }

    void operator()(const model::Roster& r) const {
        const std::string& account = e.account;
        std::set<std::string> seen;
        for (const auto& item : r.items) {
            auto key = std::make_pair(account, item.jid);
            if (item.subscription == "remove") {
                if (auto it = s.contacts_.find(key); it != s.contacts_.end()) {
                    part_control(item.jid);
                    s.contacts_.erase(it);
                }
                continue;
            }
            seen.insert(item.jid);
            auto [it, fresh] = s.contacts_.try_emplace(key);
            it->second.account = account;
            it->second.jid = item.jid;
            it->second.item = item;
            if (fresh) s.send(make(s.hostmask(s.contact_nick(account, item.jid), item.jid), "JOIN", {std::string(control_channel)}));
        }
        if (r.push) return;
        // A whole roster: who is not in it is gone.
        for (auto it = s.contacts_.begin(); it != s.contacts_.end();) {
            if (it->first.first == account && !seen.count(it->second.jid)) {
                part_control(it->second.jid);
                it = s.contacts_.erase(it);
            } else {
                ++it;
            }
        }
    }

    void operator()(const model::Subscription& sub) const {
        std::string who = sub.from;
        if (auto n = s.nicks_.find_nick(e.account, sub.from)) who = *n + " (" + sub.from + ")";
        if (sub.kind == "subscribe")
            s.notice_control(who + " on " + e.account + " asks to see your presence: 'allow " + sub.from + "' or 'deny " +
                             sub.from + "'");
        else s.notice_control(who + " on " + e.account + ": " + sub.kind);
    }

    void operator()(const model::AccountState& a) const {
        for (auto& info : s.accounts_)
            if (info.account == e.account) {
                info.state = a.state;
                info.reason = a.reason;
            }
        s.notice_control("account " + e.account + ": " + a.state + (a.jid.empty() ? "" : " as " + a.jid) +
                         (a.reason.empty() ? "" : " (" + a.reason + ")"));
    }

    void operator()(const model::RoomState& r) const {
        std::string name = s.channel_name(r.room);
        Channel* ch = s.channel(name);
        if (r.state == "joined") {
            if (ch) {
                ch->our_nick = r.nick;
                return;
            }
            s.ask(model::ListRooms{e.account}, [s = &s, account = e.account, room = r.room](const model::Reply& reply) {
                for (const auto& info : reply.rooms)
                    if (info.room == room && info.state == "joined" && !s->channel(s->channel_name(room)))
                        s->open_channel(account, room, info, true);
            });
            return;
        }
        if (r.state == "joining" || !ch) return;
        if (r.state == "kicked" || r.state == "banned")
            s.send(make(r.actor.empty() ? s.options_.server : s.occupant_irc_nick(*ch, r.actor), "KICK",
                        {name, s.nick_, with_reason(r.state, r.reason)}));
        else s.send(make(s.own_mask(), "PART", {name, with_reason(r.state, r.reason)}));
        s.channels_.erase(fold(name));
    }

    void operator()(const model::Occupant& o) const {
        std::string name = s.channel_name(o.room);
        Channel* ch = s.channel(name);
        if (!ch) return;
        const std::string& rn = o.who.nick;
        std::string irc_nick = s.occupant_irc_nick(*ch, rn);
        std::string mask = irc_nick + "!" + sanitize_nick(local_part(o.room)) + "@" + domain_part(o.room);
        auto op = [&](const char* mode) { s.send(make(s.options_.server, "MODE", {name, mode, irc_nick})); };
        if (o.change == model::OccupantChange::Join) {
            ch->occupants[rn] = o.who;
            s.send(make(mask, "JOIN", {name}));
            if (o.who.role == "moderator") op("+o");
        } else if (o.change == model::OccupantChange::Leave) {
            ch->occupants.erase(rn);
            s.send(make(mask, "PART", {name, o.who.status}));
        } else if (o.change == model::OccupantChange::Kick || o.change == model::OccupantChange::Ban) {
            ch->occupants.erase(rn);
            s.send(make(o.actor.empty() ? s.options_.server : s.occupant_irc_nick(*ch, o.actor), "KICK",
                        {name, irc_nick, with_reason(std::string(model::to_string(o.change)), o.reason)}));
        } else if (o.change == model::OccupantChange::Nick) {
            auto info = o.who;
            ch->occupants.erase(rn);
            info.nick = o.new_nick;
            ch->occupants[o.new_nick] = info;
            s.send(make(mask, "NICK", {s.occupant_irc_nick(*ch, o.new_nick)}));
        } else {  // OccupantChange::Update
            auto old = ch->occupants[rn];
            ch->occupants[rn] = o.who;
            if (old.role != o.who.role) {
                if (old.role == "moderator") op("-o");
                if (o.who.role == "moderator") op("+o");
            }
        }
    }

    void operator()(const model::Subject& subject) const {
        std::string name = s.channel_name(subject.room);
        Channel* ch = s.channel(name);
        if (!ch || ch->topic == subject.subject) return;
        ch->topic = subject.subject;
        std::string who = subject.nick.empty() ? s.options_.server : s.occupant_irc_nick(*ch, subject.nick);
        s.send(make(who, "TOPIC", {name, subject.subject}));
    }

    void operator()(const model::Invite& i) const {
        std::string from = s.not_ours(sanitize_nick(nick_base(i.from)));
        s.send(make(from + "!" + local_part(i.from) + "@" + domain_part(i.from), "INVITE", {s.nick_, "#" + i.room}));
        s.notice_control(i.from + " invites you (" + e.account + ") to #" + i.room + (i.reason.empty() ? "" : ": " + i.reason) +
                         " ('join " + i.room + "' or /join #" + i.room + ")");
    }

    void operator()(const model::ChatState& c) const {
        if (!s.has("message-tags")) return;
        auto it = s.contacts_.find({e.account, bare(c.from)});
        if (it == s.contacts_.end()) return;
        std::string typing = c.state == "composing" ? "active" : c.state == "paused" ? "paused" : "done";
        Message t = make(s.hostmask(s.contact_nick(e.account, it->second.jid), it->second.jid), "TAGMSG", {s.nick_});
        t.tags.emplace_back("+typing", typing);
        s.send(std::move(t));
    }

    void operator()(const model::Blocklist& b) const {
        std::string blocked, unblocked;
        for (const auto& j : b.blocked) blocked += " " + j;
        for (const auto& j : b.unblocked) unblocked += " " + j;
        if (!blocked.empty()) s.notice_control("account " + e.account + ": blocked" + blocked);
        else s.notice_control("account " + e.account + ": unblocked" + (unblocked.empty() ? " everyone" : unblocked));
    }

    void operator()(const model::ReadMarker& r) const {
        if (!s.has("draft/read-marker")) return;
        std::string target = s.channel(s.channel_name(r.peer)) ? s.channel_name(r.peer) : s.contact_nick(e.account, r.peer);
        s.send(make(s.options_.server, "MARKREAD", {target, "timestamp=" + r.stamp}));
    }
};

void Session::event(const model::Event& e) {
    if (!ready_) return;  // the setup's snapshot covers what happened before
    render_event(e);
}

void Session::render_event(const model::Event& e) { std::visit(Renderer{*this, e}, e.body); }

void Session::open_channel(const std::string& account, const std::string& room, const model::RoomInfo& info, bool show) {
    Channel c{account, info.room, info.nick, info.subject, "", {}};
    for (const auto& o : info.occupants) c.occupants[o.nick] = o;
    auto [it, fresh] = channels_.emplace(fold(channel_name(room)), std::move(c));
    if (fresh && show) show_channel(it->second, true);
}

void Session::render_presence(const std::string& account, const model::Presence& p) {
    auto it = contacts_.find({account, bare(p.from)});
    if (it == contacts_.end()) return;
    Contact& c = it->second;
    bool was_online = online(c);
    std::string was_away = away_text(c);
    if (p.available) c.resources[p.from] = p;
    else c.resources.erase(p.from);
    std::string nick = contact_nick(account, c.jid);
    if (was_online != online(c)) {
        send(make(options_.server, "MODE", {std::string(control_channel), online(c) ? "+v" : "-v", nick}));
        monitor_changed(nick, c);
    }
    // IRCv3 away-notify (and extended-monitor: every contact shares &stanzad with us).
    std::string now_away = away_text(c);
    if (has("away-notify") && online(c) && now_away != was_away) {
        if (now_away.empty()) send(make(hostmask(nick, c.jid), "AWAY", {}));
        else send(make(hostmask(nick, c.jid), "AWAY", {now_away}));
    }
}

std::string Session::target_of(const model::Event& e, const model::Message& m) {
    if (m.type == "groupchat") return channel_name(bare(m.outgoing ? m.to : m.from));
    std::string other = m.outgoing ? m.to : m.from;
    if (Channel* ch = channel(channel_name(bare(other)))) return occupant_irc_nick(*ch, resource(other));
    return contact_nick(e.account, bare(other));
}

void Session::render_message(const model::Event& e, const std::string& batch, bool replay) {
    const auto& m = std::get<model::Message>(e.body);
    std::string source, target;
    if (m.type == "groupchat") {
        std::string room = bare(m.outgoing ? m.to : m.from);
        target = channel_name(room);
        Channel* ch = channel(target);
        if (m.outgoing) source = nick_ + "!" + user_ + "@stanzad";
        else {
            std::string rn = resource(m.from);
            std::string n = ch ? occupant_irc_nick(*ch, rn) : sanitize_nick(rn.empty() ? room : rn);
            source = n + "!" + sanitize_nick(local_part(room)) + "@" + domain_part(room);
        }
    } else if (m.outgoing) {
        source = nick_ + "!" + user_ + "@stanzad";
        target = target_of(e, m);
    } else {
        std::string other = m.from;
        Channel* ch = channel(channel_name(bare(other)));
        std::string n = ch ? occupant_irc_nick(*ch, resource(other)) : contact_nick(e.account, bare(other));
        source = ch ? n + "!" + sanitize_nick(local_part(other)) + "@" + domain_part(other) : hostmask(n, other);
        target = nick_;
    }
    std::string body = m.body;
    // An encrypted message that did not decrypt (XEP-0384): say so, never an empty line.
    if (!m.error.empty() && body.empty()) body = "[" + (m.encryption.empty() ? std::string("message") : "OMEMO message") +
                                                 " not decrypted: " + m.error + "]";
    bool action = body.starts_with("/me ");
    if (action) body = body.substr(4);
    if (!m.replaces.empty()) body += " (corrected)";
    bool prefix_time = replay && !has("server-time");
    std::string marker = encryption_marker(m, options_.encrypted_prefix);
    auto pieces = split_text(body, text_bytes - std::min(marker.size(), text_bytes / 2));
    bool first_piece = true;
    for (auto& piece : pieces) {
        piece = marker + piece;
        if (prefix_time) piece = clock_prefix(e.stamp) + piece;
        if (action) piece = "\x01" "ACTION " + piece + "\x01";
        Message l = make(source, "PRIVMSG", {target, piece});
        if (has("server-time")) l.tags.emplace_back("time", e.stamp);
        if (has("message-tags") && first_piece && !m.msg_id.empty()) l.tags.emplace_back("msgid", m.msg_id);
        if (has("message-tags")) encryption_tags(m, l.tags);
        if (!batch.empty()) l.tags.emplace_back("batch", batch);
        send(std::move(l));
        first_piece = false;
    }
}


void Session::show_control_channel() {
    send(make(nick_ + "!" + user_ + "@stanzad", "JOIN", {std::string(control_channel)}));
    numeric("332", {std::string(control_channel), "stanzad: your contacts; type 'help' here for the commands"});
    names(std::string(control_channel));
}

void Session::show_channel(Channel& c, bool with_join) {
    std::string name = channel_name(c.room);
    auto show = [this, name, with_join](const std::string& marker) {
        Channel* ch = channel(name);
        if (!ch) return;
        if (with_join) send(make(nick_ + "!" + user_ + "@stanzad", "JOIN", {name}));
        if (!ch->topic.empty()) numeric("332", {name, ch->topic});
        // IRCv3 read-marker: the channel's marker before RPL_ENDOFNAMES.
        if (has("draft/read-marker"))
            send(make(options_.server, "MARKREAD", {name, marker.empty() ? "*" : "timestamp=" + marker}));
        names(name);
    };
    if (!has("draft/read-marker")) return show("");
    ask(model::SetReadMarker{c.account, c.room, ""}, [show](const model::Reply& r) { show(r.stamp); }, true);
}

}  // namespace irc
