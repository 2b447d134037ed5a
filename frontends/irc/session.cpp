#include "frontends/irc/session.hpp"

#include <algorithm>
#include <chrono>
#include <sstream>

#include "frontends/irc/session_util.hpp"
#include "protocol/base/base64.hpp"
#include "protocol/base/jid.hpp"
#include "protocol/base/rfc3339.hpp"

namespace irc {
using namespace detail;
namespace {

constexpr std::size_t text_bytes = 400;  // a PRIVMSG body piece: room for the prefix and tags

// The caps we offer (IRCv3 capability-negotiation), in CAP LS order.
const std::vector<std::string_view> offered_caps = {
    "away-notify",  "batch",        "cap-notify",  "draft/chathistory", "draft/read-marker", "echo-message",
    "extended-monitor", "labeled-response", "message-tags", "multi-prefix", "sasl", "server-time",
    "setname",      "userhost-in-names"};

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
std::string clock_prefix(std::string_view stamp) {
    if (stamp.size() < 16) return "";
    return "[" + std::string(stamp.substr(11, 5)) + "] ";
}

// A client name from "user@client" (soju's convention): letters, digits, . _ -.
std::string client_of(std::string_view user) {
    auto at = user.rfind('@');
    if (at == std::string_view::npos) return "irc";
    std::string out;
    for (char c : user.substr(at + 1))
        if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') out += c;
    if (out.empty()) return "irc";
    return out.substr(0, 48);
}

// A reference of CHATHISTORY / MARKREAD: timestamp=... or msgid=... or *.
struct Ref {
    std::string stamp, msgid;
    bool star = false;
    bool ok = false;
};
Ref parse_ref(std::string_view text) {
    Ref r;
    if (text == "*") {
        r.star = r.ok = true;
    } else if (text.starts_with("timestamp=")) {
        r.stamp = std::string(text.substr(10));
        r.ok = r.stamp.size() >= 20 && r.stamp[4] == '-' && r.stamp[10] == 'T';
    } else if (text.starts_with("msgid=")) {
        r.msgid = std::string(text.substr(6));
        r.ok = !r.msgid.empty();
    }
    return r;
}

}  // namespace

Session::Session(SessionOptions options, NickMap& nicks, std::string id_prefix)
    : options_(std::move(options)), nicks_(nicks), id_prefix_(std::move(id_prefix)) {}

// ---- input ------------------------------------------------------------------------------

void Session::receive(std::string_view bytes) {
    splitter_.feed(bytes);
    while (!closing_) {
        auto next = splitter_.next();
        if (!next) break;
        heard_ = true;
        if (!*next) {  // longer than any line may be (modern-irc ERR_INPUTTOOLONG)
            numeric("417", {"Input line was too long"});
            continue;
        }
        auto parsed = parse(next->value());
        if (!parsed) {
            // IRCv3 labeled-response: the error answers a labeled line too.
            labeled(raw_label(next->value()), [&] { unparsed(next->value(), parsed.error().code, parsed.error().message); });
            continue;
        }
        const Message& m = parsed.value();
        // IRCv3 labeled-response: what this command makes goes out with its label.
        std::optional<std::string> label;
        if (const std::string* l = m.tag("label"); l && has("labeled-response") && !l->empty()) label = *l;
        labeled(label, [&] { line(m); });
    }
}

std::optional<std::string> Session::raw_label(std::string_view raw) const {
    // The label tag of a line that did not parse, when its tag section can still be read.
    if (!has("labeled-response") || !raw.starts_with('@')) return std::nullopt;
    std::string_view section = raw.substr(1, raw.find(' ') == std::string_view::npos ? 0 : raw.find(' ') - 1);
    if (section.size() > max_tag_bytes) return std::nullopt;
    while (!section.empty()) {
        std::string_view tag = section.substr(0, section.find(';'));
        section = tag.size() < section.size() ? section.substr(tag.size() + 1) : std::string_view{};
        if (!tag.starts_with("label=")) continue;
        std::string value = unescape_tag_value(tag.substr(6));
        if (value.empty() || !valid_utf8(value)) return std::nullopt;
        return value;
    }
    return std::nullopt;
}

void Session::unparsed(std::string_view raw, const std::string& code, const std::string& message) {
    if (code == "empty") return;
    if (code == "tags-too-long" || code == "line-too-long") return numeric("417", {"Input line was too long"});
    if (code != "invalid-utf8") return numeric("421", {"*", "Unknown command (" + message + ")"});
    // IRCv3 utf8-only: FAIL names the command when it can be read.
    std::string_view rest = raw;
    if (rest.starts_with('@')) rest.remove_prefix(std::min(rest.size(), rest.find(' ') + 1));
    while (rest.starts_with(' ')) rest.remove_prefix(1);
    if (rest.starts_with(':')) rest.remove_prefix(std::min(rest.size(), rest.find(' ') + 1));
    while (rest.starts_with(' ')) rest.remove_prefix(1);
    std::string command = upper(rest.substr(0, rest.find(' ')));
    bool word = !command.empty() && command.size() <= 32 &&
                std::all_of(command.begin(), command.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
    fail(word ? command : "*", "INVALID_UTF8", {}, "Message rejected, your IRC software MUST use UTF-8 encoding on this network");
}

void Session::labeled(const std::optional<std::string>& label, const std::function<void()>& work) {
    auto saved_label = std::exchange(label_, label);
    auto saved_lines = std::exchange(labeled_, {});
    bool saved_deferred = std::exchange(label_deferred_, false);
    work();
    std::optional<std::string> done = std::exchange(label_, saved_label);
    auto lines = std::exchange(labeled_, std::move(saved_lines));
    bool deferred = std::exchange(label_deferred_, saved_deferred);
    // The response comes later (an answer from the daemon, an echo): it carries the label.
    if (!done || (deferred && lines.empty())) {
        for (auto& l : lines) send(std::move(l));
        return;
    }
    if (lines.empty()) {
        Message ack = make(options_.server, "ACK", {});
        ack.tags.emplace_back("label", *done);
        send(std::move(ack));
    } else if (lines.size() == 1) {
        lines[0].tags.insert(lines[0].tags.begin(), {"label", *done});
        send(std::move(lines[0]));
    } else {
        std::string id = "l" + std::to_string(next_batch_++);
        Message open = make(options_.server, "BATCH", {"+" + id, "labeled-response"});
        open.tags.emplace_back("label", *done);
        send(std::move(open));
        for (auto& l : lines) {
            l.tags.emplace_back("batch", id);
            send(std::move(l));
        }
        send(make(options_.server, "BATCH", {"-" + id}));
    }
}

void Session::line(const Message& m) {
    if (m.command == "PING") {
        // modern-irc PING: the token is required (ERR_NEEDMOREPARAMS); an empty one is echoed.
        if (m.params.empty()) return numeric("461", {"PING", "Not enough parameters"});
        send(make(options_.server, "PONG", {options_.server, m.params.empty() ? "" : m.params[0]}));
        return;
    }
    if (m.command == "PONG") {
        ping_out_ = false;
        if (!replay_ping_.empty() && !m.params.empty() && m.params.back() == replay_ping_) {
            // The client has everything sent before this PING: its name's cursor moves.
            replay_ping_.clear();
            ask(model::Ack{replay_last_}, [](const model::Reply&) {});
            ping_acks();  // what came live during the replay
        }
        if (!m.params.empty() && m.params.back().starts_with("ack-")) {
            model::Seq seq = std::strtoll(m.params.back().c_str() + 4, nullptr, 10);
            if (seq == ack_pinged_) {
                ack_pinged_ = 0;
                ask(model::Ack{seq}, [](const model::Reply&) {});
                ping_acks();  // more may have come meanwhile
            }
        }
        return;
    }
    if (m.command == "QUIT") {
        send(make("", "ERROR", {"Closing link: " + (m.params.empty() ? std::string("quit") : m.params[0])}));
        closing_ = true;
        return;
    }
    if (m.command == "CAP") return cap(m);
    if (!registered_) return registration(m);
    command(m);
}

void Session::registration(const Message& m) {
    if (m.command == "PASS") {
        if (m.params.empty()) return numeric("461", {"PASS", "Not enough parameters"});
        pass_ = m.params[0];
        return;
    }
    if (m.command == "NICK") {
        if (m.params.empty() || m.params[0].empty()) return numeric("431", {"No nickname given"});
        if (!valid_nick(m.params[0])) return numeric("432", {m.params[0], "Erroneous nickname"});
        // Whether a contact has the nick is told only once the password is known
        // (try_finish_registration): nothing about the roster before authentication.
        if (fold(m.params[0]) == fold(service_nick) || fold(m.params[0]) == fold(options_.server))
            return numeric("433", {m.params[0], "Nickname is already in use"});
        nick_ = m.params[0];
        return try_finish_registration();
    }
    if (m.command == "USER") {
        // modern-irc USER: four parameters, and the username and realname not empty.
        if (m.params.size() < 4 || m.params[0].empty() || m.params[3].empty())
            return numeric("461", {"USER", "Not enough parameters"});
        // soju's convention: "user@client" names the client (for its replay cursor).
        if (client_name_ == "irc") client_name_ = client_of(m.params[0]);
        user_ = sanitize_nick(m.params[0].substr(0, m.params[0].find('@')));
        realname_ = m.params[3];
        return try_finish_registration();
    }
    if (m.command == "AUTHENTICATE") return authenticate(m);
    numeric("451", {m.command, "You have not registered"});
}

void Session::cap(const Message& m) {
    std::string sub = m.params.empty() ? "" : upper(m.params[0]);
    std::string who = nick_.empty() ? "*" : nick_;
    if (sub == "LS") {
        if (!registered_) cap_negotiating_ = true;
        bool v302 = m.params.size() > 1 && std::atoi(m.params[1].c_str()) >= 302;
        std::string list;
        for (auto c : offered_caps) {
            if (!list.empty()) list += ' ';
            list += c;
            if (v302 && c == "sasl") list += "=PLAIN";
        }
        if (v302) caps_.insert("cap-notify");  // implied by 302 (cap-notify spec)
        send(make(options_.server, "CAP", {who, "LS", list}));
    } else if (sub == "LIST") {
        std::string list;
        for (const auto& c : caps_) list += (list.empty() ? "" : " ") + c;
        send(make(options_.server, "CAP", {who, "LIST", list}));
    } else if (sub == "REQ") {
        if (!registered_) cap_negotiating_ = true;
        std::string requested = m.params.size() > 1 ? m.params[1] : "";
        auto wanted = words(requested);
        bool ok = !wanted.empty();
        for (const auto& w : wanted) {
            std::string name = w.starts_with('-') ? w.substr(1) : w;
            ok = ok && std::find(offered_caps.begin(), offered_caps.end(), name) != offered_caps.end();
        }
        if (!ok) return send(make(options_.server, "CAP", {who, "NAK", requested}));
        for (const auto& w : wanted) {
            if (w.starts_with('-')) caps_.erase(w.substr(1));
            else caps_.insert(w);
        }
        send(make(options_.server, "CAP", {who, "ACK", requested}));
    } else if (sub == "END") {
        if (registered_) return;
        cap_negotiating_ = false;
        try_finish_registration();
    } else {
        numeric("410", {m.params.empty() ? "*" : m.params[0], "Invalid CAP command"});
    }
}

void Session::authenticate(const Message& m) {
    // IRCv3 sasl-3.1: PLAIN only; the password is the [irc] password.
    if (!has("sasl")) return numeric("904", {"SASL authentication failed (request the sasl capability first)"});
    if (m.params.empty()) return numeric("461", {"AUTHENTICATE", "Not enough parameters"});
    const std::string& p = m.params[0];
    if (!sasl_in_progress_) {
        if (upper(p) != "PLAIN") return numeric("908", {"PLAIN", "are available SASL mechanisms"});
        sasl_in_progress_ = true;
        sasl_buffer_.clear();
        return send(make("", "AUTHENTICATE", {"+"}));
    }
    if (p == "*") {
        sasl_in_progress_ = false;
        return numeric("906", {"SASL authentication aborted"});
    }
    if (p != "+") sasl_buffer_ += p;
    if (p.size() == 400 && sasl_buffer_.size() < 4096) return;  // more chunks follow
    sasl_in_progress_ = false;
    auto decoded = xmpp::base64_decode(std::exchange(sasl_buffer_, {}));
    std::string authcid, password;
    if (decoded) {
        const std::string& d = decoded.value();
        auto first = d.find('\0');
        auto second = first == std::string::npos ? std::string::npos : d.find('\0', first + 1);
        if (second != std::string::npos) {
            authcid = d.substr(first + 1, second - first - 1);
            password = d.substr(second + 1);
        }
    }
    if (!decoded || (!options_.password.empty() && password != options_.password)) {
        password_ok_ = false;
        numeric("904", {"SASL authentication failed"});
        if (++auth_failures_ >= max_auth_failures) {
            send(make("", "ERROR", {"Closing link: too many failed logins"}));
            closing_ = true;
        }
        return;
    }
    password_ok_ = true;
    if (!authcid.empty()) client_name_ = client_of(authcid);
    std::string who = nick_.empty() ? "*" : nick_;
    numeric("900", {who + "!" + (user_.empty() ? "user" : user_) + "@stanzad", authcid.empty() ? "user" : authcid,
                    "You are now logged in as " + (authcid.empty() ? std::string("user") : authcid)});
    numeric("903", {"SASL authentication successful"});
}

void Session::try_finish_registration() {
    if (registered_ || nick_.empty() || user_.empty() || cap_negotiating_ || sasl_in_progress_) return;
    if (!options_.password.empty() && !password_ok_ && pass_ != options_.password) {
        numeric("464", {"Password incorrect"});
        send(make("", "ERROR", {"Closing link: password incorrect (see [irc] password in the config)"}));
        closing_ = true;
        ++auth_failures_;
        return;
    }
    if (nicks_.lookup(nick_)) {
        std::string taken = std::exchange(nick_, {});
        return numeric("433", {taken, "Nickname is already in use (by a contact; rename it with: rename NICK NEWNICK)"});
    }
    if (options_.may_register && !options_.may_register()) {
        send(make("", "ERROR", {"Closing link: too many IRC clients (see [irc] max_clients in the config)"}));
        closing_ = true;
        return;
    }
    registered_ = true;
    nicks_.reserve(nick_);
    welcome();
    ask(model::Hello{"irc-" + client_name_, std::nullopt, true}, [this](const model::Reply& r) { setup(r); });
}

void Session::welcome() {
    // modern-irc "Connection Registration": 001 to 005, then the MOTD (none).
    numeric("001", {"Welcome to stanzad, " + nick_ + ": your XMPP accounts as an IRC network"});
    numeric("002", {"Your host is " + options_.server + ", running version stanzad " + options_.version});
    numeric("003", {"This server was created when stanzad started"});
    numeric("004", {options_.server, "stanzad-" + options_.version, "i", "nt"});
    // modern-irc RPL_ISUPPORT tokens (appendix "RPL_ISUPPORT Parameters"), IRCv3 MONITOR=,
    // CHATHISTORY=, MSGREFTYPES=, UTF8ONLY, and NAMELEN= (setname). Two lines: at most 13
    // tokens and 512 bytes each.
    numeric("005", {"CASEMAPPING=ascii", "CHANTYPES=#&", "CHANMODES=,,,nt", "NICKLEN=" + std::to_string(nick_len),
                    "NETWORK=stanzad", "PREFIX=(qaov)~&@+", "UTF8ONLY", "NAMELEN=200",
                    "are supported by this server"});
    numeric("005", {"CHATHISTORY=" + std::to_string(chathistory_limit), "MSGREFTYPES=timestamp,msgid",
                    "MONITOR=" + std::to_string(max_monitor),
                    "TARGMAX=JOIN:,PART:,PRIVMSG:,NOTICE:,LIST:,MONITOR:,NAMES:1,WHOIS:1,KICK:1",
                    "are supported by this server"});
    numeric("422", {"No MOTD: talk to 'stanzad' in &stanzad ('help' lists the commands)"});
}

void Session::setup(const model::Reply& hello) {
    if (!hello.ok()) {
        notice_control("cannot attach to the daemon: " + hello.error_message);
        return;
    }
    accounts_ = hello.accounts;
    // soju: a client that can ask for history gets none pushed at it. A client name seen
    // for the first time starts from now (its name is recorded at once); older messages
    // are a CHATHISTORY or `history` away.
    if (hello.cursor == 0) ask(model::Ack{hello.last_seq}, [](const model::Reply&) {});
    else if (!has("draft/chathistory")) replay_after_ = hello.cursor;
    setup_pending_ = static_cast<int>(accounts_.size()) * 3;
    if (setup_pending_ == 0) return setup_done();
    auto done = [this] {
        if (--setup_pending_ == 0) setup_done();
    };
    for (const auto& a : accounts_) {
        std::string account = a.account;
        ask(model::GetRoster{account}, [this, account, done](const model::Reply& r) {
            for (const auto& item : r.items) {
                Contact& c = contacts_[{account, item.jid}];
                c.account = account;
                c.jid = item.jid;
                c.item = item;
                contact_nick(account, item.jid);
            }
            done();
        });
        ask(model::ListPresences{account}, [this, account, done](const model::Reply& r) {
            for (const auto& p : r.presences)
                if (auto it = contacts_.find({account, bare(p.from)}); it != contacts_.end())
                    it->second.resources[p.from] = p;
            done();
        });
        ask(model::ListRooms{account}, [this, account, done](const model::Reply& r) {
            for (const auto& room : r.rooms) {
                if (room.state != "joined") continue;
                Channel c{account, room.room, room.nick, room.subject, "", {}};
                for (const auto& o : room.occupants) c.occupants[o.nick] = o;
                channels_.emplace(fold(channel_name(room.room)), std::move(c));
            }
            done();
        });
    }
}

void Session::setup_done() {
    ready_ = true;
    show_control_channel();
    for (auto& [name, c] : channels_) show_channel(c, true);
    for (const auto& a : accounts_)
        notice_control("account " + a.account + " (" + a.jid + "): " + a.state +
                       (a.reason.empty() ? "" : " (" + a.reason + ")"));
    if (replay_after_) replaying_ = true;
}

// ---- commands after registration --------------------------------------------------------

void Session::command(const Message& m) {
    const std::string& c = m.command;
    auto need = [&](std::size_t n) {
        if (m.params.size() >= n) return true;
        numeric("461", {c, "Not enough parameters"});
        return false;
    };
    if (c == "PRIVMSG" || c == "NOTICE") return privmsg(m, c == "NOTICE");
    if (query(m)) return;
    if (c == "JOIN") return need(1) ? join(m) : void();
    if (c == "PART") return need(1) ? part(m) : void();
    if (c == "TOPIC") return need(1) ? topic(m) : void();
    if (c == "NAMES") {
        if (m.params.empty()) return numeric("366", {"*", "End of /NAMES list"});
        return names(m.params[0]);
    }
    if (c == "WHO") return need(1) ? who(m) : void();
    if (c == "WHOIS") return need(1) ? whois(m) : void();
    if (c == "MODE") return need(1) ? mode(m) : void();
    if (c == "KICK") return need(2) ? kick(m) : void();
    if (c == "INVITE") return need(2) ? invite(m) : void();
    if (c == "AWAY") return away(m);
    if (c == "CHATHISTORY") return chathistory(m);
    if (c == "MARKREAD") return markread(m);
    if (c == "TAGMSG") return need(1) ? tagmsg(m) : void();
    if (c == "NICK") {
        if (m.params.empty()) return numeric("431", {"No nickname given"});
        const std::string& n = m.params[0];
        if (!valid_nick(n)) return numeric("432", {n, "Erroneous nickname"});
        if (fold(n) == fold(nick_)) return;
        if (nicks_.taken(n)) return numeric("433", {n, "Nickname is already in use"});
        nicks_.reserve(n);  // the old one stays reserved: another client may be using it
        send(make(nick_ + "!" + user_ + "@stanzad", "NICK", {n}));
        nick_ = n;
        return;
    }
    if (c == "USER" || c == "PASS") return numeric("462", {"You may not reregister"});
    if (c == "AUTHENTICATE") return numeric("907", {"You have already authenticated using SASL"});
    if (c == "MOTD") return numeric("422", {"No MOTD"});
    if (c == "VERSION") return numeric("351", {"stanzad-" + options_.version, options_.server, "XMPP to IRC"});
    if (c == "LUSERS") return numeric("251", {"There are " + std::to_string(contacts_.size()) + " contacts and 1 user"});
    if (c == "ISON") {
        std::string on;
        for (std::size_t i = 0; i < m.params.size(); ++i)
            for (const auto& n : words(m.params[i]))
                if (Contact* ct = contact_by_nick(n); ct && online(*ct)) on += (on.empty() ? "" : " ") + n;
        return numeric("303", {on});
    }
    if (c == "USERHOST") {
        std::string out;
        for (const auto& n : m.params)
            if (Contact* ct = contact_by_nick(n)) out += (out.empty() ? "" : " ") + n + "=+" + local_part(ct->jid) + "@" + domain_part(ct->jid);
        return numeric("302", {out});
    }
    numeric("421", {c, "Unknown command"});
}

void Session::privmsg(const Message& m, bool notice) {
    // modern-irc NOTICE: no automatic reply, errors included (PRIVMSG gets them).
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
    Message m = make(nick_ + "!" + user_ + "@stanzad", command, {nick_, shown});
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

void Session::control(const std::string& text, const std::string& reply_to) {
    auto w = words(text);
    if (w.empty()) return;
    std::string cmd = w[0];
    for (char& ch : cmd) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    auto say = [this, reply_to](const std::string& t) { reply_service(reply_to, t); };
    auto account_named = [this](const std::string& name) {
        return std::any_of(accounts_.begin(), accounts_.end(), [&](const auto& a) { return a.account == name; });
    };
    // An optional leading account name, else the first account.
    auto take_account = [&](std::size_t at) -> std::string {
        if (w.size() > at && account_named(w[at])) {
            std::string a = w[at];
            w.erase(w.begin() + static_cast<long>(at));
            return a;
        }
        return default_account();
    };
    auto result = [say](const std::string& what) {
        return [say, what](const model::Reply& r) { say(r.ok() ? what : what + " failed: " + r.error_message); };
    };
    auto contact_arg = [&](const std::string& arg, std::string& account, std::string& jid) {
        if (Contact* c = contact_by_nick(arg)) {
            account = c->account;
            jid = c->jid;
            return true;
        }
        auto parsed = xmpp::Jid::parse(arg);
        if (!parsed) return false;
        jid = parsed.value().bare();
        return true;
    };
    if (cmd == "help") {
        for (const char* l : {"commands (in &stanzad, or /msg stanzad):",
                              "  account list | account on NAME | account off NAME",
                              "  roster [ACCOUNT]            contacts with their nick and presence",
                              "  add [ACCOUNT] JID [NICK]    add a contact and ask for its presence",
                              "  remove NICK                 remove a contact",
                              "  rename NICK NEWNICK         give a contact another nick (kept)",
                              "  allow NICK|JID / deny NICK|JID   answer a subscription request",
                              "  join [ACCOUNT] ROOM [NICK]  join a room (or: /join #ROOM [password])",
                              "  history NICK|#CHANNEL [N]   the last N messages (default 20)",
                              "  status                      accounts and rooms"})
            say(l);
        return;
    }
    if (cmd == "account") {
        std::string sub = w.size() > 1 ? w[1] : "list";
        if (sub == "list") {
            ask(model::ListAccounts{}, [say](const model::Reply& r) {
                for (const auto& a : r.accounts)
                    say(a.account + " " + a.jid + ": " + a.state + (a.reason.empty() ? "" : " (" + a.reason + ")"));
            });
        } else if ((sub == "on" || sub == "off") && w.size() > 2) {
            ask(model::SetAccountEnabled{w[2], sub == "on"}, result("account " + w[2] + " " + sub));
        } else {
            say("usage: account list | account on NAME | account off NAME");
        }
        return;
    }
    if (cmd == "roster") {
        std::string only = w.size() > 1 ? w[1] : "";
        int n = 0;
        for (const auto& [key, c] : contacts_) {
            if (!only.empty() && c.account != only) continue;
            ++n;
            say(contact_nick(c.account, c.jid) + "  " + c.jid + " (" + c.account + ", " + c.item.subscription + ")" +
                (online(c) ? "  online" + (away_text(c).empty() ? "" : ": " + away_text(c)) : "  offline"));
        }
        say(std::to_string(n) + " contact(s)");
        return;
    }
    if (cmd == "add") {
        std::string account = take_account(1);
        if (w.size() < 2) return say("usage: add [ACCOUNT] JID [NICK]");
        auto jid = xmpp::Jid::parse(w[1]);
        if (!jid || !jid.value().is_bare()) return say("'" + w[1] + "' is not a bare JID");
        std::string j = jid.value().bare();
        if (w.size() > 2) {
            if (auto st = nicks_.rename(account, j, w[2]); !st) return say("cannot use nick " + w[2] + ": " + st.error().message);
        }
        ask(model::RosterSet{account, j, "", {}}, result("add " + j));
        ask(model::ChangeSubscription{account, j, "subscribe"}, [](const model::Reply&) {});
        return;
    }
    if (cmd == "remove") {
        if (w.size() < 2) return say("usage: remove NICK");
        Contact* c = contact_by_nick(w[1]);
        if (!c) return say("no contact with the nick " + w[1]);
        ask(model::RosterRemove{c->account, c->jid}, result("remove " + c->jid));
        return;
    }
    if (cmd == "rename") {
        if (w.size() < 3) return say("usage: rename NICK NEWNICK");
        Contact* c = contact_by_nick(w[1]);
        if (!c) return say("no contact with the nick " + w[1]);
        std::string old = contact_nick(c->account, c->jid);
        if (auto st = nicks_.rename(c->account, c->jid, w[2]); !st) return say("cannot rename: " + st.error().message);
        send(make(hostmask(old, c->jid), "NICK", {w[2]}));
        return;
    }
    if (cmd == "allow" || cmd == "deny") {
        if (w.size() < 2) return say("usage: " + cmd + " NICK|JID");
        std::string account = default_account(), jid;
        if (!contact_arg(w[1], account, jid)) return say("'" + w[1] + "' is neither a nick nor a JID");
        ask(model::ChangeSubscription{account, jid, cmd == "allow" ? "approve" : "deny"}, result(cmd + " " + jid));
        return;
    }
    if (cmd == "join") {
        std::string account = take_account(1);
        if (w.size() < 2) return say("usage: join [ACCOUNT] ROOM [NICK]");
        std::string room = w[1].starts_with('#') ? w[1].substr(1) : w[1];
        ask(model::Join{account, room, w.size() > 2 ? w[2] : "", ""}, [this, say, room, account](const model::Reply& r) {
            if (!r.ok()) return say("join " + room + " failed: " + r.error_message);
            if (!r.rooms.empty() && !channel(channel_name(room))) {
                const auto& info = r.rooms.front();
                Channel c{account, info.room, info.nick, info.subject, "", {}};
                for (const auto& o : info.occupants) c.occupants[o.nick] = o;
                auto [it, fresh] = channels_.emplace(fold(channel_name(room)), std::move(c));
                if (fresh) show_channel(it->second, true);
            }
        });
        return;
    }
    if (cmd == "history") {
        if (w.size() < 2) return say("usage: history NICK|#CHANNEL [N]");
        int n = w.size() > 2 ? std::clamp(std::atoi(w[2].c_str()), 1, chathistory_limit) : 20;
        Message q = make(nick_, "CHATHISTORY", {"LATEST", w[1], "*", std::to_string(n)});
        chathistory(q);
        return;
    }
    if (cmd == "status") {
        for (const auto& a : accounts_) say("account " + a.account + " (" + a.jid + "): " + a.state);
        for (const auto& [name, ch] : channels_)
            say(channel_name(ch.room) + " as " + ch.our_nick + " (" + std::to_string(ch.occupants.size()) + " occupants)");
        say(std::to_string(contacts_.size()) + " contact(s)");
        return;
    }
    say("unknown command '" + w[0] + "'; 'help' lists them");
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
            [this, t, room, account](const model::Reply& r) {
                if (!r.ok()) {
                    std::string why = r.error_message;
                    std::string code = why.starts_with("not-authorized")   ? "475"
                                       : why.starts_with("forbidden")      ? "474"
                                       : why.starts_with("registration-required") ? "473"
                                                                                   : "403";
                    return numeric(code, {t, "Cannot join " + room + ": " + r.error_code + " " + why});
                }
                if (channel(t) || r.rooms.empty()) return;
                const auto& info = r.rooms.front();
                Channel c{account, info.room, info.nick, info.subject, "", {}};
                for (const auto& o : info.occupants) c.occupants[o.nick] = o;
                auto [it, fresh] = channels_.emplace(fold(channel_name(room)), std::move(c));
                if (fresh) show_channel(it->second, true);
            }, true);
    }
}

void Session::part(const Message& m) {
    std::string reason = m.params.size() > 1 ? m.params[1] : "";
    for (const auto& t : comma_list(m.params[0])) {
        if (fold(t) == fold(control_channel)) {
            send(make(nick_ + "!" + user_ + "@stanzad", "PART", {t, reason}));
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

void Session::markread(const Message& m) {
    // IRCv3 read-marker "Errors and Warnings".
    if (m.params.empty() || m.params[0].empty()) return fail("MARKREAD", "NEED_MORE_PARAMS", {}, "Missing parameters");
    const std::string& t = m.params[0];
    std::string stamp;
    if (m.params.size() > 1) {
        Ref r = parse_ref(m.params[1]);
        if (!r.ok || r.stamp.empty()) return fail("MARKREAD", "INVALID_PARAMS", {m.params[1]}, "Invalid timestamp");
        stamp = r.stamp;
    }
    std::string account, peer;
    if (Channel* ch = channel(t)) {
        account = ch->account;
        peer = ch->room;
    } else if (auto who = nicks_.lookup(t)) {  // a contact, or someone who wrote
        account = who->first;
        peer = who->second;
    } else if (stamp.empty() && (valid_nick(t) || t.starts_with('#'))) {
        // "MARKREAD client get": a conversation we know nothing of has no marker.
        return send(make(options_.server, "MARKREAD", {t, "*"}));
    } else {
        return fail("MARKREAD", "INVALID_PARAMS", {t}, "Unknown target");
    }
    ask(model::SetReadMarker{account, peer, stamp}, [this, t](const model::Reply& r) {
        if (!r.ok()) return fail("MARKREAD", "INTERNAL_ERROR", {t}, r.error_message);
        send(make(options_.server, "MARKREAD", {t, r.stamp.empty() ? "*" : "timestamp=" + r.stamp}));
    }, true);
}

void Session::chathistory(const Message& m) {
    // IRCv3 chathistory: LATEST, BEFORE, AFTER, BETWEEN, AROUND, TARGETS.
    if (m.params.size() < 2) return fail("CHATHISTORY", "INVALID_PARAMS", {}, "Insufficient parameters");
    std::string sub = upper(m.params[0]);
    auto limit_at = [&](std::size_t i) {
        int n = i < m.params.size() ? std::atoi(m.params[i].c_str()) : 0;
        return std::clamp(n <= 0 ? chathistory_limit : n, 1, chathistory_limit);
    };
    if (sub == "TARGETS") {
        if (m.params.size() < 4) return fail("CHATHISTORY", "INVALID_PARAMS", {sub}, "Insufficient parameters");
        Ref a = parse_ref(m.params[1]), b = parse_ref(m.params[2]);
        if (!a.ok || !b.ok || a.stamp.empty() || b.stamp.empty())
            return fail("CHATHISTORY", "INVALID_PARAMS", {sub}, "Invalid timestamp");
        std::string lo = std::min(a.stamp, b.stamp), hi = std::max(a.stamp, b.stamp);
        ask(model::Conversations{lo, hi, limit_at(3)}, [this](const model::Reply& r) {
            std::string id = "t" + std::to_string(next_batch_++);
            if (has("batch")) send(make(options_.server, "BATCH", {"+" + id, "draft/chathistory-targets"}));
            for (const auto& c : r.conversations) {
                std::string target = channel(channel_name(c.peer)) ? channel_name(c.peer) : contact_nick(c.account, c.peer);
                Message t = make(options_.server, "CHATHISTORY", {"TARGETS", target, c.last_stamp});
                if (has("batch")) t.tags.emplace_back("batch", id);
                send(std::move(t));
            }
            if (has("batch")) send(make(options_.server, "BATCH", {"-" + id}));
        }, true);
        return;
    }
    if (m.params.size() < 4) return fail("CHATHISTORY", "INVALID_PARAMS", {sub}, "Insufficient parameters");
    const std::string& target = m.params[1];
    std::string account, peer;
    if (Channel* ch = channel(target)) {
        account = ch->account;
        peer = ch->room;
    } else if (Contact* c = contact_by_nick(target)) {
        account = c->account;
        peer = c->jid;
    } else if (target.size() > 1 && target[0] == '#' && !default_account().empty()) {
        account = default_account();  // a room we left: its stored history is still ours
        peer = target.substr(1);
    } else {
        return fail("CHATHISTORY", "INVALID_TARGET", {sub, target}, "Messages could not be retrieved");
    }
    Ref a = parse_ref(m.params[2]);
    Ref b = sub == "BETWEEN" ? parse_ref(m.params[3]) : Ref{"", "", false, true};
    if (!a.ok || !b.ok || (sub != "LATEST" && a.star))
        return fail("CHATHISTORY", "INVALID_PARAMS", {sub, target}, "Invalid message reference");
    int limit = limit_at(sub == "BETWEEN" ? 4 : 3);
    if (sub != "LATEST" && sub != "BEFORE" && sub != "AFTER" && sub != "BETWEEN" && sub != "AROUND")
        return fail("CHATHISTORY", "INVALID_PARAMS", {sub}, "Unknown command");

    // The answer: a chathistory batch (empty when there is nothing).
    auto render = [this, target](const std::vector<model::Event>& events) {
        std::string id = "h" + std::to_string(next_batch_++);
        if (has("batch")) send(make(options_.server, "BATCH", {"+" + id, "chathistory", target}));
        for (const auto& e : events) render_message(e, has("batch") ? id : "", true);
        if (has("batch")) send(make(options_.server, "BATCH", {"-" + id}));
    };
    // Runs the query once the references are seqs or stamps.
    auto run = [this, sub, target, account, peer, limit, render](std::optional<model::Seq> sa, std::string ta,
                                                         std::optional<model::Seq> sb, std::string tb) {
        model::StoredMessages q;
        q.account = account;
        q.peer = peer;
        q.limit = limit;
        if (sub == "LATEST") {
            q.after = sa;
            q.after_stamp = ta;
            q.newest = true;
        } else if (sub == "BEFORE") {
            q.before = sa;
            q.before_stamp = ta;
            q.newest = true;
        } else if (sub == "AFTER") {
            q.after = sa;
            q.after_stamp = ta;
        } else if (sub == "AROUND") {
            q.before = sa ? std::optional<model::Seq>(*sa + 1) : std::nullopt;
            q.before_stamp = ta;
            q.newest = true;
        } else {  // BETWEEN: from the first reference towards the second
            bool forward = sa && sb ? *sa < *sb : ta < tb;
            q.after = forward ? sa : sb;
            q.before = forward ? sb : sa;
            q.after_stamp = forward ? ta : tb;
            q.before_stamp = forward ? tb : ta;
            q.newest = !forward;
        }
        ask(std::move(q), [this, render, sub, target](const model::Reply& r) {
            if (!r.ok()) return fail("CHATHISTORY", "MESSAGE_ERROR", {sub, target}, "Messages could not be retrieved");
            render(r.messages);
        }, true);
    };
    // msgid references become seqs first.
    auto resolve = [this, account, peer, sub, target](const Ref& ref, std::function<void(std::optional<model::Seq>, std::string)> then) {
        if (ref.msgid.empty()) return then(std::nullopt, ref.stamp);
        model::StoredMessages q;
        q.account = account;
        q.peer = peer;
        q.limit = 0;
        q.around_msg_id = ref.msgid;
        ask(std::move(q), [this, then, sub, target](const model::Reply& r) {
            if (!r.ok()) return fail("CHATHISTORY", "INVALID_MSGREFTYPE", {sub, target}, "Unknown msgid");
            then(r.cursor, "");
        }, true);
    };
    resolve(a, [resolve, b, run](std::optional<model::Seq> sa, std::string ta) {
        resolve(b, [run, sa, ta](std::optional<model::Seq> sb, std::string tb) { run(sa, ta, sb, tb); });
    });
}

// ---- events -----------------------------------------------------------------------------

void Session::event(const model::Event& e) {
    if (!ready_) return;  // the setup's snapshot covers what happened before
    render_event(e);
}

void Session::render_event(const model::Event& e) {
    const std::string& account = e.account;
    if (auto* m = std::get_if<model::Message>(&e.body)) {
        if (m->history) return;
        if (replaying_ && e.seq != 0) return;  // the replay brings it, in order
        if (m->outgoing && own_sends_.count(m->msg_id)) {
            own_sends_.erase(m->msg_id);
            last_live_ = std::max(last_live_, e.seq);
            if (has("echo-message")) {
                // The echo is the labeled response of that PRIVMSG (a batch when it is several lines).
                std::optional<std::string> label;
                if (auto it = echo_labels_.find(m->msg_id); it != echo_labels_.end()) {
                    label = it->second;
                    echo_labels_.erase(it);
                }
                labeled(label, [&] { render_message(e, "", false); });
            }
            ping_acks();
            return;
        }
        render_message(e, "", false);
        last_live_ = std::max(last_live_, e.seq);
        ping_acks();
        return;
    }
    if (auto* s = std::get_if<model::MessageState>(&e.body)) {
        if (s->state == "failed") notice_control("message " + s->msg_id + " failed: " + s->error);
        return;
    }
    if (auto* p = std::get_if<model::Presence>(&e.body)) return render_presence(account, *p);
    if (auto* r = std::get_if<model::Roster>(&e.body)) {
        std::set<std::string> seen;
        for (const auto& item : r->items) {
            auto key = std::make_pair(account, item.jid);
            if (item.subscription == "remove") {
                if (auto it = contacts_.find(key); it != contacts_.end()) {
                    send(make(hostmask(contact_nick(account, item.jid), item.jid), "PART", {std::string(control_channel), "removed from the roster"}));
                    contacts_.erase(it);
                }
                continue;
            }
            seen.insert(item.jid);
            auto [it, fresh] = contacts_.try_emplace(key);
            it->second.account = account;
            it->second.jid = item.jid;
            it->second.item = item;
            if (fresh) send(make(hostmask(contact_nick(account, item.jid), item.jid), "JOIN", {std::string(control_channel)}));
        }
        if (!r->push)
            for (auto it = contacts_.begin(); it != contacts_.end();) {
                if (it->first.first == account && !seen.count(it->second.jid)) {
                    send(make(hostmask(contact_nick(account, it->second.jid), it->second.jid), "PART",
                              {std::string(control_channel), "removed from the roster"}));
                    it = contacts_.erase(it);
                } else {
                    ++it;
                }
            }
        return;
    }
    if (auto* s = std::get_if<model::Subscription>(&e.body)) {
        std::string who = s->from;
        if (auto n = nicks_.find_nick(account, s->from)) who = *n + " (" + s->from + ")";
        if (s->kind == "subscribe")
            notice_control(who + " on " + account + " asks to see your presence: 'allow " + s->from + "' or 'deny " + s->from + "'");
        else notice_control(who + " on " + account + ": " + s->kind);
        return;
    }
    if (auto* a = std::get_if<model::AccountState>(&e.body)) {
        for (auto& info : accounts_)
            if (info.account == account) {
                info.state = a->state;
                info.reason = a->reason;
            }
        notice_control("account " + account + ": " + a->state + (a->jid.empty() ? "" : " as " + a->jid) +
                       (a->reason.empty() ? "" : " (" + a->reason + ")"));
        return;
    }
    if (auto* r = std::get_if<model::RoomState>(&e.body)) {
        std::string name = channel_name(r->room);
        Channel* ch = channel(name);
        if (r->state == "joined") {
            if (ch) {
                ch->our_nick = r->nick;
                return;
            }
            ask(model::ListRooms{account}, [this, account, room = r->room](const model::Reply& reply) {
                for (const auto& info : reply.rooms) {
                    if (info.room != room || info.state != "joined" || channel(channel_name(room))) continue;
                    Channel c{account, info.room, info.nick, info.subject, "", {}};
                    for (const auto& o : info.occupants) c.occupants[o.nick] = o;
                    auto [it, fresh] = channels_.emplace(fold(channel_name(room)), std::move(c));
                    if (fresh) show_channel(it->second, true);
                }
            });
            return;
        }
        if (r->state == "joining" || !ch) return;
        std::string me = nick_ + "!" + user_ + "@stanzad";
        if (r->state == "kicked" || r->state == "banned")
            send(make(r->actor.empty() ? options_.server : occupant_irc_nick(*ch, r->actor), "KICK",
                      {name, nick_, r->state + (r->reason.empty() ? "" : ": " + r->reason)}));
        else send(make(me, "PART", {name, r->state + (r->reason.empty() ? "" : ": " + r->reason)}));
        channels_.erase(fold(name));
        return;
    }
    if (auto* o = std::get_if<model::Occupant>(&e.body)) {
        std::string name = channel_name(o->room);
        Channel* ch = channel(name);
        if (!ch) return;
        const std::string& rn = o->who.nick;
        std::string irc_nick = occupant_irc_nick(*ch, rn);
        std::string mask = irc_nick + "!" + sanitize_nick(local_part(o->room)) + "@" + domain_part(o->room);
        if (o->change == "join") {
            ch->occupants[rn] = o->who;
            send(make(mask, "JOIN", {name}));
            if (o->who.role == "moderator") send(make(options_.server, "MODE", {name, "+o", irc_nick}));
        } else if (o->change == "leave") {
            ch->occupants.erase(rn);
            send(make(mask, "PART", {name, o->who.status}));
        } else if (o->change == "kick" || o->change == "ban") {
            ch->occupants.erase(rn);
            send(make(o->actor.empty() ? options_.server : occupant_irc_nick(*ch, o->actor), "KICK",
                      {name, irc_nick, o->change + (o->reason.empty() ? "" : ": " + o->reason)}));
        } else if (o->change == "nick") {
            auto info = o->who;
            ch->occupants.erase(rn);
            info.nick = o->new_nick;
            ch->occupants[o->new_nick] = info;
            send(make(mask, "NICK", {occupant_irc_nick(*ch, o->new_nick)}));
        } else {  // update
            auto old = ch->occupants[rn];
            ch->occupants[rn] = o->who;
            if (old.role != o->who.role) {
                if (old.role == "moderator") send(make(options_.server, "MODE", {name, "-o", irc_nick}));
                if (o->who.role == "moderator") send(make(options_.server, "MODE", {name, "+o", irc_nick}));
            }
        }
        return;
    }
    if (auto* s = std::get_if<model::Subject>(&e.body)) {
        std::string name = channel_name(s->room);
        Channel* ch = channel(name);
        if (!ch || ch->topic == s->subject) return;
        ch->topic = s->subject;
        std::string who = s->nick.empty() ? options_.server : occupant_irc_nick(*ch, s->nick);
        send(make(who, "TOPIC", {name, s->subject}));
        return;
    }
    if (auto* i = std::get_if<model::Invite>(&e.body)) {
        std::string from = not_ours(sanitize_nick(nick_base(i->from)));
        send(make(from + "!" + local_part(i->from) + "@" + domain_part(i->from), "INVITE", {nick_, "#" + i->room}));
        notice_control(i->from + " invites you (" + account + ") to #" + i->room + (i->reason.empty() ? "" : ": " + i->reason) +
                       " ('join " + i->room + "' or /join #" + i->room + ")");
        return;
    }
    if (auto* c = std::get_if<model::ChatState>(&e.body)) {
        if (!has("message-tags")) return;
        auto it = contacts_.find({account, bare(c->from)});
        if (it == contacts_.end()) return;
        std::string typing = c->state == "composing" ? "active" : c->state == "paused" ? "paused" : "done";
        Message t = make(hostmask(contact_nick(account, it->second.jid), it->second.jid), "TAGMSG", {nick_});
        t.tags.emplace_back("+typing", typing);
        send(std::move(t));
        return;
    }
    if (auto* b = std::get_if<model::Blocklist>(&e.body)) {
        std::string blocked, unblocked;
        for (const auto& j : b->blocked) blocked += " " + j;
        for (const auto& j : b->unblocked) unblocked += " " + j;
        if (!blocked.empty()) notice_control("account " + account + ": blocked" + blocked);
        else notice_control("account " + account + ": unblocked" + (unblocked.empty() ? " everyone" : unblocked));
        return;
    }
    if (auto* r = std::get_if<model::ReadMarker>(&e.body)) {
        if (!has("draft/read-marker")) return;
        std::string target = channel(channel_name(r->peer)) ? channel_name(r->peer) : contact_nick(account, r->peer);
        send(make(options_.server, "MARKREAD", {target, "timestamp=" + r->stamp}));
        return;
    }
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
    auto pieces = split_text(body, text_bytes);
    bool first_piece = true;
    for (auto& piece : pieces) {
        if (prefix_time) piece = clock_prefix(e.stamp) + piece;
        if (action) piece = "\x01" "ACTION " + piece + "\x01";
        Message l = make(source, "PRIVMSG", {target, piece});
        if (has("server-time")) l.tags.emplace_back("time", e.stamp);
        if (has("message-tags") && first_piece && !m.msg_id.empty()) l.tags.emplace_back("msgid", m.msg_id);
        if (!batch.empty()) l.tags.emplace_back("batch", batch);
        send(std::move(l));
        first_piece = false;
    }
}

// ---- replay -----------------------------------------------------------------------------

void Session::replay_event(const model::Event& e) {
    replay_last_ = std::max(replay_last_, e.seq);
    const auto* m = std::get_if<model::Message>(&e.body);
    if (!m || m->history) return;
    // The client's own name sent it: it has it (a message from another front end it has not).
    if (m->outgoing && m->msg_id.starts_with(name_prefix())) return;
    std::string target = target_of(e, *m);
    replay_[target].push_back(e);
    if (++replay_count_ > max_replay) {
        // Keep the newest: drop the oldest message of all conversations.
        auto oldest = replay_.end();
        for (auto it = replay_.begin(); it != replay_.end(); ++it)
            if (!it->second.empty() && (oldest == replay_.end() || it->second.front().seq < oldest->second.front().seq))
                oldest = it;
        oldest->second.erase(oldest->second.begin());
        --replay_count_;
        ++replay_dropped_;
    }
}

void Session::replay_end() {
    replaying_ = false;
    replay_after_.reset();
    if (replay_dropped_ > 0)
        notice_control(std::to_string(replay_dropped_) + " older message(s) not replayed; 'history NICK|#CHANNEL N' shows them");
    for (auto& [target, events] : replay_) {
        if (events.empty()) continue;
        std::string id = "r" + std::to_string(next_batch_++);
        bool batched = has("batch");
        if (batched) send(make(options_.server, "BATCH", {"+" + id, "chathistory", target}));
        for (const auto& e : events) render_message(e, batched ? id : "", true);
        if (batched) send(make(options_.server, "BATCH", {"-" + id}));
    }
    replay_.clear();
    replay_count_ = replay_dropped_ = 0;
    if (replay_last_ > 0) {
        replay_ping_ = "replay-" + std::to_string(replay_last_);
        send(make(options_.server, "PING", {replay_ping_}));
    }
}

void Session::ping_acks() {
    // Live messages count as seen once the client answers a PING sent after them; one such
    // PING at a time (its PONG asks for the next).
    if (ack_pinged_ != 0 || last_live_ == 0 || last_live_ <= acked_live_ || replaying_ || !replay_ping_.empty()) return;
    ack_pinged_ = acked_live_ = last_live_;
    send(make(options_.server, "PING", {"ack-" + std::to_string(ack_pinged_)}));
}

bool Session::keepalive() {
    if (!registered_) return true;
    if (heard_) {
        heard_ = false;
        ping_out_ = false;
        return true;
    }
    if (ping_out_) return false;
    ping_out_ = true;
    send(make(options_.server, "PING", {options_.server}));
    return true;
}

// ---- output -----------------------------------------------------------------------------

void Session::send(Message m) {
    // Tags only for clients that asked (IRCv3 message-tags and the caps that add tags).
    std::erase_if(m.tags, [this](const auto& t) {
        const std::string& k = t.first;
        if (k == "time") return !has("server-time");
        if (k == "batch") return !has("batch");
        if (k == "label") return !has("labeled-response");
        return !has("message-tags");
    });
    if (label_) {
        labeled_.push_back(std::move(m));
        return;
    }
    // Message text always gets its ':' (clients that look for " :" find it).
    static const std::set<std::string, std::less<>> text_last = {"PRIVMSG", "NOTICE", "PART", "KICK", "TOPIC",
                                                                 "QUIT", "AWAY", "ERROR", "FAIL"};
    // RPL_MYINFO (004) ends with mode letters, not text: "<client> <servername> <version>
    // <available user modes> <available channel modes>" (modern-irc appendix).
    bool colon = text_last.count(m.command) > 0 ||
                 (m.command.size() == 3 && std::isdigit(static_cast<unsigned char>(m.command[0])) && m.command != "004");
    fit_line(m, colon && m.params.size() > 1);
    output_ += wire(m, colon && m.params.size() > 1);
}

void Session::fit_line(Message& m, bool colon_last) const {
    // modern-irc "Message Format": 512 bytes with CR LF, tags aside. Text from elsewhere (a
    // topic, a kick or part reason) that does not fit is cut between code points.
    std::size_t rough = m.source.size() + m.command.size() + 4 + m.params.size();
    for (const auto& p : m.params) rough += p.size();
    if (rough <= max_body_bytes || m.params.empty()) return;
    auto tags = std::exchange(m.tags, {});
    std::size_t size = serialize(m, colon_last).size();
    m.tags = std::move(tags);
    if (size <= max_body_bytes) return;
    std::string& last = m.params.back();
    std::size_t keep = size - max_body_bytes >= last.size() ? 0 : last.size() - (size - max_body_bytes);
    while (keep > 0 && (static_cast<unsigned char>(last[keep]) & 0xC0) == 0x80) --keep;
    last.resize(keep);
}

void Session::numeric(std::string_view code, std::vector<std::string> params) {
    Message m;
    m.source = options_.server;
    m.command = std::string(code);
    m.params.push_back(nick_.empty() ? "*" : nick_);
    for (auto& p : params) m.params.push_back(std::move(p));
    send(std::move(m));
}

void Session::fail(std::string_view command, std::string_view code, std::vector<std::string> context, std::string text) {
    // IRCv3 standard-replies.
    Message m;
    m.source = options_.server;
    m.command = "FAIL";
    m.params = {std::string(command), std::string(code)};
    for (auto& c : context) m.params.push_back(std::move(c));
    m.params.push_back(std::move(text));
    send(std::move(m));
}

void Session::notice_control(const std::string& text) {
    if (!registered_) return;
    for (const auto& piece : split_text(text, text_bytes))
        send(make(std::string(service_nick) + "!stanzad@stanzad", "NOTICE", {std::string(control_channel), piece}));
}

void Session::reply_service(const std::string& reply_to, const std::string& text) {
    std::string to = reply_to == control_channel ? std::string(control_channel) : nick_;
    for (const auto& piece : split_text(text, text_bytes))
        send(make(std::string(service_nick) + "!stanzad@stanzad", "PRIVMSG", {to, piece}));
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

// ---- helpers ----------------------------------------------------------------------------

void Session::ask(model::Command command, Handler handler, bool response) {
    std::uint64_t id = next_id_++;
    if (response && label_) {
        // This answer is the command's response: it goes out labeled, when it comes.
        label_deferred_ = true;
        handler = [this, label = *label_, inner = std::move(handler)](const model::Reply& r) {
            labeled(label, [&] { inner(r); });
        };
    }
    handlers_[id] = std::move(handler);
    requests_.push_back({id, std::move(command), "irc-" + client_name_});
}

std::optional<Session::Request> Session::next_request() {
    if (requests_.empty()) return std::nullopt;
    Request r = std::move(requests_.front());
    requests_.pop_front();
    return r;
}

void Session::reply(std::uint64_t id, const model::Reply& reply) {
    auto it = handlers_.find(id);
    if (it == handlers_.end()) return;
    Handler h = std::move(it->second);
    handlers_.erase(it);
    h(reply);
}

std::string Session::take_output() { return std::exchange(output_, {}); }

std::string Session::contact_nick(const std::string& account, const std::string& jid) {
    // Contacts keep their nick for good; so do strangers who write, up to a bound (a
    // spammer writing from endless JIDs must not grow the stored map without end).
    if (auto known = nicks_.find_nick(account, jid)) return *known;
    if (nicks_.size() >= max_nicks && !contacts_.count({account, jid})) return sanitize_nick(nick_base(jid)) + "_";
    return nicks_.nick_for(account, jid);
}

std::string Session::hostmask(const std::string& nick, const std::string& jid) const {
    return nick + "!" + sanitize_nick(local_part(jid)) + "@" + domain_part(jid);
}

std::string Session::occupant_irc_nick(const Channel& c, const std::string& room_nick) const {
    if (room_nick == c.our_nick) return nick_;
    return not_ours(sanitize_nick(room_nick));
}

std::string Session::not_ours(std::string nick) const {
    // A nick made from remote text (a room nick, an inviter's JID) never looks like us, the
    // service or the server: it gets a '_'.
    if (fold(nick) == fold(nick_) || fold(nick) == fold(service_nick) || fold(nick) == fold(options_.server)) nick += "_";
    return nick;
}

Session::Channel* Session::channel(std::string_view name) {
    auto it = channels_.find(fold(name));
    return it == channels_.end() ? nullptr : &it->second;
}

Session::Contact* Session::contact_by_nick(std::string_view nick) {
    auto who = nicks_.lookup(nick);
    if (!who) return nullptr;
    auto it = contacts_.find(*who);
    return it == contacts_.end() ? nullptr : &it->second;
}

std::string Session::prefix_of(const model::OccupantInfo& o) const {
    // XEP-0045 affiliations and roles as IRC prefixes (PREFIX=(qaov)~&@+), multi-prefix when asked.
    std::string all;
    if (o.affiliation == "owner") all += '~';
    if (o.affiliation == "admin") all += '&';
    if (o.role == "moderator") all += '@';
    if (o.role == "participant" && o.affiliation == "member") all += '+';
    if (all.empty()) return "";
    return has("multi-prefix") ? all : all.substr(0, 1);
}

std::string Session::away_text(const Contact& c) const {
    // The most available resource decides (RFC 6121 §4.7.2.2 show values).
    bool any_available = false;
    std::string away;
    for (const auto& [full, p] : c.resources) {
        if (p.show.empty() || p.show == "chat") any_available = true;
        else if (away.empty()) away = p.show + (p.status.empty() ? "" : ": " + p.status);
    }
    return any_available ? "" : away;
}

std::string Session::default_account() const { return accounts_.empty() ? "" : accounts_.front().account; }

std::string Session::name_prefix() const { return "irc-" + client_name_ + "-"; }

// Our message ids say which client name sent them, so a replay to that name skips them.
std::string Session::next_client_id() { return name_prefix() + id_prefix_ + "-" + std::to_string(next_client_id_++); }

}  // namespace irc
