// The commands of a registered IRC client (modern-irc messages-*.md), looked up by name in
// one table: messages, channels (rooms), user queries, away, typing. Part of irc::Session.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>

#include "frontends/irc/session.hpp"
#include "frontends/irc/session_util.hpp"
#include "protocol/base/jid.hpp"
#include "protocol/base/rfc3339.hpp"

namespace irc {
using namespace detail;
namespace {

// IRC formatting (modern-irc "Formatting" appendix: bold, italics, underline,
// strikethrough, monospace, reverse, reset, colours with their digits) has no place in an
// XMPP body: it is dropped.
std::string strip_formatting(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    auto is_hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '\x02' || c == '\x1d' || c == '\x1f' || c == '\x1e' || c == '\x11' || c == '\x16' || c == '\x0f') continue;
        if (c == '\x03' || c == '\x04') {
            auto digits = [&](auto pred, std::size_t max) {
                std::size_t n = 0;
                while (n < max && i + 1 < text.size() && pred(text[i + 1])) ++i, ++n;
                return n;
            };
            std::size_t width = c == '\x03' ? 2 : 6;
            bool hex = c == '\x04';
            std::size_t fg = hex ? digits(is_hex, width) : digits(is_digit, width);
            if (fg > 0 && i + 2 < text.size() && text[i + 1] == ',' &&
                (hex ? is_hex(text[i + 2]) : is_digit(text[i + 2]))) {
                ++i;
                if (hex) digits(is_hex, width);
                else digits(is_digit, width);
            }
            continue;
        }
        out += c;
    }
    return out;
}

// "[HH:MM] " from an RFC 3339 stamp, for clients without server-time.

// A command of a registered client: how many parameters it needs (ERR_NEEDMOREPARAMS
// below that) and what runs it.
struct Verb {
    std::size_t min_params;
    void (*run)(Session&, const Message&);
};

}  // namespace

void Session::command(const Message& m) {
    using S = Session;
    using M = Message;
    static const std::map<std::string, Verb, std::less<>> verbs = {
        {"PRIVMSG", {0, [](S& s, const M& x) { s.privmsg(x); }}},
        {"NOTICE", {0, [](S& s, const M& x) { s.privmsg(x); }}},
        {"JOIN", {1, [](S& s, const M& x) { s.join(x); }}},
        {"PART", {1, [](S& s, const M& x) { s.part(x); }}},
        {"TOPIC", {1, [](S& s, const M& x) { s.topic(x); }}},
        {"NAMES", {0, [](S& s, const M& x) {
             if (x.params.empty()) return s.numeric("366", {"*", "End of /NAMES list"});
             s.names(x.params[0]);
         }}},
        {"WHO", {1, [](S& s, const M& x) { s.who(x); }}},
        {"WHOIS", {1, [](S& s, const M& x) { s.whois(x); }}},
        {"MODE", {1, [](S& s, const M& x) { s.mode(x); }}},
        {"KICK", {2, [](S& s, const M& x) { s.kick(x); }}},
        {"INVITE", {2, [](S& s, const M& x) { s.invite(x); }}},
        {"AWAY", {0, [](S& s, const M& x) { s.away(x); }}},
        {"CHATHISTORY", {0, [](S& s, const M& x) { s.chathistory(x); }}},
        {"MARKREAD", {0, [](S& s, const M& x) { s.markread(x); }}},
        {"TAGMSG", {1, [](S& s, const M& x) { s.tagmsg(x); }}},
        {"NICK", {0, [](S& s, const M& x) { s.nick_change(x); }}},
        {"USER", {0, [](S& s, const M&) { s.numeric("462", {"You may not reregister"}); }}},
        {"PASS", {0, [](S& s, const M&) { s.numeric("462", {"You may not reregister"}); }}},
        {"AUTHENTICATE", {0, [](S& s, const M&) { s.numeric("907", {"You have already authenticated using SASL"}); }}},
        {"MOTD", {0, [](S& s, const M&) { s.numeric("422", {"No MOTD"}); }}},
        {"VERSION", {0, [](S& s, const M&) {
             s.numeric("351", {"stanzad-" + s.options_.version, s.options_.server, "XMPP to IRC"});
         }}},
        {"LUSERS", {0, [](S& s, const M&) {
             s.numeric("251", {"There are " + std::to_string(s.contacts_.size()) + " contacts and 1 user"});
         }}},
        {"ISON", {0, [](S& s, const M& x) { s.ison(x); }}},
        {"USERHOST", {0, [](S& s, const M& x) { s.userhost(x); }}},
        // queries.cpp and monitor.cpp
        {"TIME", {0, [](S& s, const M&) { s.time_query(); }}},
        {"HELP", {0, [](S& s, const M& x) { s.help(x); }}},
        {"HELPOP", {0, [](S& s, const M& x) { s.help(x); }}},
        {"LIST", {0, [](S& s, const M& x) { s.list(x); }}},
        {"MONITOR", {0, [](S& s, const M& x) { s.monitor(x); }}},
        {"SETNAME", {0, [](S& s, const M& x) { s.setname(x); }}},
    };
    auto it = verbs.find(m.command);
    if (it == verbs.end()) return numeric("421", {m.command, "Unknown command"});
    if (m.params.size() < it->second.min_params) return numeric("461", {m.command, "Not enough parameters"});
    it->second.run(*this, m);
}

void Session::nick_change(const Message& m) {
    if (m.params.empty()) return numeric("431", {"No nickname given"});
    const std::string& n = m.params[0];
    if (!valid_nick(n)) return numeric("432", {n, "Erroneous nickname"});
    if (fold(n) == fold(nick_)) return;
    if (nicks_.taken(n)) return numeric("433", {n, "Nickname is already in use"});
    nicks_.reserve(n);  // the old one stays reserved: another client may be using it
    send(make(own_mask(), "NICK", {n}));
    nick_ = n;
}

void Session::ison(const Message& m) {
    std::string on;
    for (const auto& param : m.params)
        for (const auto& n : words(param))
            if (Contact* ct = contact_by_nick(n); ct && online(*ct)) on += (on.empty() ? "" : " ") + n;
    numeric("303", {on});
}

void Session::userhost(const Message& m) {
    std::string out;
    for (const auto& n : m.params)
        if (Contact* ct = contact_by_nick(n))
            out += (out.empty() ? "" : " ") + n + "=+" + local_part(ct->jid) + "@" + domain_part(ct->jid);
    numeric("302", {out});
}

void Session::privmsg(const Message& m) {
    // modern-irc NOTICE: no automatic reply, errors included (PRIVMSG gets them).
    bool notice = m.command == "NOTICE";
    auto refuse = [&](std::string_view code, std::vector<std::string> params) {
        if (!notice) numeric(code, std::move(params));
    };
    if (m.params.empty()) return refuse("411", {"No recipient given (" + m.command + ")"});
    if (m.params.size() < 2 || m.params[1].empty()) return refuse("412", {"No text to send"});
    std::string text = strip_formatting(m.params[1]);
    if (text.empty()) return refuse("412", {"No text to send"});
    // CTCP (modern-irc appendix): ACTION is XEP-0245's /me; other CTCP is not for XMPP.
    if (text.size() >= 2 && text[0] == '\x01') {
        std::string inner = text.substr(1, text.find('\x01', 1) == std::string::npos ? std::string::npos : text.find('\x01', 1) - 1);
        if (!inner.starts_with("ACTION")) return;
        text = "/me " + (inner.size() > 7 ? inner.substr(7) : "");
    }
    for (const auto& target : comma_list(m.params[0])) {
        if (fold(target) == fold(control_channel) || fold(target) == fold(service_nick)) {
            if (!notice) control(text, fold(target) == fold(service_nick) ? std::string(service_nick) : std::string(control_channel));
            continue;
        }
        if (fold(target) == fold(nick_)) {
            message_to_self(text, m.command);
            continue;
        }
        std::optional<model::Send> s = send_to(target);
        if (!s) {
            if (!target.empty() && (target[0] == '#' || target[0] == '&'))
                refuse("403", {target, "No such channel (join it first)"});
            else refuse("401", {target, "No such nick (not on any roster; add it in &stanzad: add JID)"});
            continue;
        }
        s->body = text;
        send_message(std::move(*s), target, m.command);
    }
}

void Session::message_to_self(const std::string& text, const std::string& command) {
    // Our own nick is no XMPP address: the message comes straight back (modern-irc PRIVMSG).
    // With echo-message the client also gets the echo, and the echo is the labeled
    // response (IRCv3 labeled-response); the delivery carries no label.
    std::string shown = text.starts_with("/me ") ? "\x01" "ACTION " + text.substr(4) + "\x01" : text;
    Message m = make(own_mask(), command, {nick_, shown});
    if (options_.clock) {
        std::chrono::system_clock::time_point now(std::chrono::seconds(options_.clock()));
        m.tags.emplace_back("time", xmpp::rfc3339(now));
    }
    if (has("echo-message")) send(m);
    auto label = std::exchange(label_, has("echo-message") ? std::nullopt : label_);
    send(std::move(m));
    label_ = std::move(label);
}

std::optional<model::Send> Session::send_to(const std::string& target) {
    model::Send s;
    if (Channel* ch = channel(target)) {
        s.account = ch->account;
        s.to = ch->room;
        s.type = "groupchat";
        return s;
    }
    auto who = nicks_.lookup(target);
    if (who && std::any_of(accounts_.begin(), accounts_.end(), [&](const auto& a) { return a.account == who->first; })) {
        // A contact, or anyone who wrote to us (not on the roster): the nick map knows.
        s.account = who->first;
        s.to = who->second;
        s.type = "chat";
        return s;
    }
    // A private message to a room occupant (XEP-0045 §7.5).
    for (auto& [name, chan] : channels_)
        for (const auto& [room_nick, o] : chan.occupants)
            if (room_nick != chan.our_nick && fold(occupant_irc_nick(chan, room_nick)) == fold(target)) {
                s.account = chan.account;
                s.to = chan.room + "/" + room_nick;
                s.type = "chat";
                return s;
            }
    return std::nullopt;
}

void Session::send_message(model::Send s, const std::string& shown, const std::string& command) {
    s.client_id = next_client_id();
    own_sends_.insert(s.client_id);
    if (label_ && has("echo-message")) {
        echo_labels_[s.client_id] = *label_;
        label_.reset();  // the echo carries the label, later (labeled-response)
    }
    std::string client_id = s.client_id;
    std::optional<std::string> echo_label;
    if (auto it = echo_labels_.find(client_id); it != echo_labels_.end()) echo_label = it->second;
    ask(std::move(s), [this, shown, client_id, echo_label, command](const model::Reply& r) {
        if (r.ok()) return;
        // No echo will come: forget it, and answer the label with the failure.
        own_sends_.erase(client_id);
        echo_labels_.erase(client_id);
        labeled(echo_label, [&] { fail(command, "CANNOT_SEND", {shown}, r.error_code + ": " + r.error_message); });
    });
}


void Session::join(const Message& m) {
    std::vector<std::string> targets = comma_list(m.params[0]);
    std::vector<std::string> keys = m.params.size() > 1 ? comma_list(m.params[1]) : std::vector<std::string>{};
    for (std::size_t i = 0; i < targets.size(); ++i) {
        const std::string& t = targets[i];
        if (fold(t) == fold(control_channel)) {
            show_control_channel();
            continue;
        }
        auto room_jid = t.size() > 1 && t[0] == '#' ? xmpp::Jid::parse(t.substr(1)) : xmpp::make_error("bad-jid", "");
        if (!room_jid || !room_jid.value().is_bare() || room_jid.value().local().empty()) {
            numeric("403", {t, "No such channel: rooms are #room@service (the room's JID)"});
            continue;
        }
        if (Channel* ch = channel(t)) {
            show_channel(*ch, true);
            continue;
        }
        std::string room = room_jid.value().bare();
        std::string account = default_account();
        if (account.empty()) {
            numeric("403", {t, "No account configured"});
            continue;
        }
        ask(model::Join{account, room, "", i < keys.size() ? keys[i] : ""},
            [this, t, room, account](const model::Reply& r) { joined(r, t, room, account); }, true);
    }
}

void Session::joined(const model::Reply& r, const std::string& target, const std::string& room, const std::string& account) {
    if (!r.ok()) {
        const std::string& why = r.error_message;
        std::string code = why.starts_with("not-authorized")          ? "475"
                           : why.starts_with("forbidden")             ? "474"
                           : why.starts_with("registration-required") ? "473"
                                                                      : "403";
        return numeric(code, {target, "Cannot join " + room + ": " + r.error_code + " " + why});
    }
    if (channel(target) || r.rooms.empty()) return;
    open_channel(account, room, r.rooms.front(), true);
}

void Session::part(const Message& m) {
    std::string reason = m.params.size() > 1 ? m.params[1] : "";
    for (const auto& t : comma_list(m.params[0])) {
        if (fold(t) == fold(control_channel)) {
            send(make(own_mask(), "PART", {t, reason}));
            continue;
        }
        Channel* ch = channel(t);
        if (!ch) {
            numeric("442", {t, "You're not on that channel"});
            continue;
        }
        ask(model::Part{ch->account, ch->room, reason}, [](const model::Reply&) {});
        // The room event "left" closes the channel in every attached client.
    }
}

void Session::topic(const Message& m) {
    Channel* ch = channel(m.params[0]);
    if (fold(m.params[0]) == fold(control_channel)) {
        return numeric("332", {std::string(control_channel), "stanzad: contacts and commands ('help')"});
    }
    if (!ch) return numeric("442", {m.params[0], "You're not on that channel"});
    if (m.params.size() < 2) {
        if (ch->topic.empty()) return numeric("331", {m.params[0], "No topic is set"});
        return numeric("332", {m.params[0], ch->topic});
    }
    ask(model::SetSubject{ch->account, ch->room, m.params[1]}, [this, t = m.params[0]](const model::Reply& r) {
        if (!r.ok()) numeric("482", {t, "Cannot set the topic: " + r.error_message});
    }, true);
}

void Session::names(const std::string& name) {
    // modern-irc NAMES; IRCv3 multi-prefix (prefix_of) and userhost-in-names (name_entry).
    std::vector<std::string> entries;
    if (fold(name) == fold(control_channel)) {
        entries.push_back("@" + name_entry(std::string(service_nick), "stanzad@" + options_.server));
        entries.push_back(name_entry(nick_, user_ + "@stanzad"));
        for (const auto& [key, c] : contacts_) {
            std::string n = contact_nick(c.account, c.jid);
            std::string mask = hostmask(n, c.jid);
            entries.push_back((online(c) ? "+" : "") + name_entry(n, mask.substr(mask.find('!') + 1)));
        }
    } else if (Channel* ch = channel(name)) {
        for (const auto& [room_nick, o] : ch->occupants) {
            std::string n = occupant_irc_nick(*ch, room_nick);
            std::string user_host = room_nick == ch->our_nick ? user_ + "@stanzad"
                                                              : sanitize_nick(local_part(ch->room)) + "@" + domain_part(ch->room);
            entries.push_back(prefix_of(o) + name_entry(n, user_host));
        }
    }
    std::string list;
    for (const auto& n : entries) {
        if (!list.empty() && list.size() + n.size() > 400) numeric("353", {"=", name, std::exchange(list, {})});
        list += (list.empty() ? "" : " ") + n;
    }
    if (!list.empty()) numeric("353", {"=", name, list});
    numeric("366", {name, "End of /NAMES list"});
}

std::string Session::name_entry(const std::string& nick, const std::string& user_host) const {
    return has("userhost-in-names") ? nick + "!" + user_host : nick;
}

void Session::who(const Message& m) {
    const std::string& mask = m.params[0];
    auto row = [&](const std::string& chan, const std::string& nick, const std::string& jid, bool here,
                   const std::string& prefix, const std::string& real) {
        numeric("352", {chan, local_part(jid), domain_part(jid), options_.server, nick,
                        std::string(here ? "H" : "G") + prefix, "0 " + real});
    };
    if (fold(mask) == fold(control_channel)) {
        for (const auto& [key, c] : contacts_)
            row(mask, contact_nick(c.account, c.jid), c.jid, online(c) && away_text(c).empty(), online(c) ? "+" : "", c.jid);
    } else if (Channel* ch = channel(mask)) {
        for (const auto& [room_nick, o] : ch->occupants)
            row(mask, occupant_irc_nick(*ch, room_nick), o.jid.empty() ? ch->room + "/" + room_nick : o.jid,
                o.show.empty() || o.show == "chat", prefix_of(o), o.jid.empty() ? ch->room + "/" + room_nick : o.jid);
    } else if (Contact* c = contact_by_nick(mask)) {
        row("*", mask, c->jid, online(*c) && away_text(*c).empty(), "", c->jid);
    }
    numeric("315", {mask, "End of /WHO list"});
}

void Session::whois(const Message& m) {
    const std::string& n = m.params.back();
    if (fold(n) == fold(service_nick)) {
        numeric("311", {n, "stanzad", options_.server, "*", "the stanzad control service"});
    } else if (Contact* c = contact_by_nick(n)) {
        numeric("311", {n, local_part(c->jid), domain_part(c->jid), "*", c->item.name.empty() ? c->jid : c->item.name + " <" + c->jid + ">"});
        numeric("312", {n, options_.server, "account " + c->account + ", subscription " + c->item.subscription});
        if (!online(*c)) numeric("301", {n, "offline"});
        else if (!away_text(*c).empty()) numeric("301", {n, away_text(*c)});
        for (const auto& [full, p] : c->resources)
            numeric("320", {n, "is on " + resource(full) + (p.show.empty() ? "" : " (" + p.show + ")") +
                                   (p.status.empty() ? "" : ": " + p.status)});
    } else {
        numeric("401", {n, "No such nick"});
    }
    numeric("318", {n, "End of /WHOIS list"});
}

void Session::mode(const Message& m) {
    const std::string& t = m.params[0];
    if (fold(t) == fold(nick_)) return numeric("221", {"+i"});
    if (fold(t) == fold(control_channel) || channel(t)) {
        if (m.params.size() == 1) return numeric("324", {t, "+nt"});
        if (m.params[1] == "b" || m.params[1] == "+b") return numeric("368", {t, "End of channel ban list"});
        return numeric("472", {m.params[1], "Modes are the room's: use KICK, TOPIC, or the room's own configuration"});
    }
    if (!t.empty() && (t[0] == '#' || t[0] == '&')) return numeric("403", {t, "No such channel"});
    numeric("502", {"Can't change mode for other users"});
}

void Session::kick(const Message& m) {
    Channel* ch = channel(m.params[0]);
    if (!ch) return numeric("442", {m.params[0], "You're not on that channel"});
    std::string room_nick;
    for (const auto& [rn, o] : ch->occupants)
        if (fold(occupant_irc_nick(*ch, rn)) == fold(m.params[1])) room_nick = rn;
    if (room_nick.empty()) return numeric("441", {m.params[1], m.params[0], "They aren't on that channel"});
    ask(model::Kick{ch->account, ch->room, room_nick, m.params.size() > 2 ? m.params[2] : ""},
        [this, t = m.params[0]](const model::Reply& r) {
            if (!r.ok()) numeric("482", {t, "Cannot kick: " + r.error_message});
        }, true);
}

void Session::invite(const Message& m) {
    Contact* c = contact_by_nick(m.params[0]);
    Channel* ch = channel(m.params[1]);
    if (!c) return numeric("401", {m.params[0], "No such nick"});
    if (!ch) return numeric("442", {m.params[1], "You're not on that channel"});
    ask(model::SendInvite{ch->account, ch->room, c->jid, ""}, [this, n = m.params[0], t = m.params[1]](const model::Reply& r) {
        if (r.ok()) numeric("341", {n, t});
        else numeric("482", {t, "Cannot invite: " + r.error_message});
    }, true);
}

void Session::away(const Message& m) {
    bool away = !m.params.empty() && !m.params[0].empty();
    for (const auto& a : accounts_)
        ask(model::SetPresence{a.account, away ? "away" : "", away ? m.params[0] : "", std::nullopt}, [](const model::Reply&) {});
    numeric(away ? "306" : "305", {away ? "You have been marked as being away" : "You are no longer marked as being away"});
}

void Session::tagmsg(const Message& m) {
    // IRCv3 client-tags typing -> XEP-0085.
    const std::string* typing = m.tag("+typing");
    if (!typing) return;
    std::string state = *typing == "active" ? "composing" : *typing == "paused" ? "paused" : "active";
    Contact* c = contact_by_nick(m.params[0]);
    Channel* ch = channel(m.params[0]);
    if (c) ask(model::SendChatState{c->account, c->jid, state}, [](const model::Reply&) {});
    else if (ch) ask(model::SendChatState{ch->account, ch->room, state}, [](const model::Reply&) {});
}

}  // namespace irc
