// Connection registration of irc::Session (modern-irc "Connection Registration"): PASS,
// NICK, USER, IRCv3 capability negotiation (CAP) and SASL PLAIN (AUTHENTICATE), then the
// welcome numerics and the setup that fetches the accounts, rosters and rooms.
#include <algorithm>
#include <cctype>
#include <map>

#include "frontends/irc/session.hpp"
#include "frontends/irc/session_util.hpp"
#include "protocol/base/base64.hpp"

namespace irc {
using namespace detail;
namespace {

// The caps we offer (IRCv3 capability-negotiation), in CAP LS order.
const std::vector<std::string_view> offered_caps = {
    "away-notify",  "batch",        "cap-notify",  "draft/chathistory", "draft/read-marker", "echo-message",
    "extended-monitor", "labeled-response", "message-tags", "multi-prefix", "sasl", "server-time",
    "setname",      "userhost-in-names"};

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


}  // namespace

void Session::registration(const Message& m) {
    using Verb = void (Session::*)(const Message&);
    static const std::map<std::string, Verb, std::less<>> verbs = {{"PASS", &Session::pass},
                                                                   {"NICK", &Session::nick_at_registration},
                                                                   {"USER", &Session::user},
                                                                   {"AUTHENTICATE", &Session::authenticate}};
    if (auto it = verbs.find(m.command); it != verbs.end()) return (this->*it->second)(m);
    numeric("451", {m.command, "You have not registered"});
}

void Session::pass(const Message& m) {
    if (m.params.empty()) return numeric("461", {"PASS", "Not enough parameters"});
    pass_ = m.params[0];
}

void Session::nick_at_registration(const Message& m) {
    if (m.params.empty() || m.params[0].empty()) return numeric("431", {"No nickname given"});
    if (!valid_nick(m.params[0])) return numeric("432", {m.params[0], "Erroneous nickname"});
    // Whether a contact has the nick is told only once the password is known
    // (try_finish_registration): nothing about the roster before authentication.
    if (fold(m.params[0]) == fold(service_nick) || fold(m.params[0]) == fold(options_.server))
        return numeric("433", {m.params[0], "Nickname is already in use"});
    nick_ = m.params[0];
    try_finish_registration();
}

void Session::user(const Message& m) {
    // modern-irc USER: four parameters, and the username and realname not empty.
    if (m.params.size() < 4 || m.params[0].empty() || m.params[3].empty())
        return numeric("461", {"USER", "Not enough parameters"});
    // soju's convention: "user@client" names the client (for its replay cursor).
    if (client_name_ == "irc") client_name_ = client_of(m.params[0]);
    user_ = sanitize_nick(m.params[0].substr(0, m.params[0].find('@')));
    realname_ = m.params[3];
    try_finish_registration();
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
            for (const auto& room : r.rooms)
                if (room.state == "joined") open_channel(account, room.room, room, false);
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


}  // namespace irc
