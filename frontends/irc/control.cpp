// The control channel &stanzad (docs/irc.md "Commands"): lines said in it, or sent to the
// service nick "stanzad", are commands; the answer goes back where the command came from.
// One table holds every command with its arguments and one line of help; `help` prints
// that table. Part of irc::Session.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <optional>

#include "frontends/irc/session.hpp"
#include "frontends/irc/session_util.hpp"
#include "protocol/base/jid.hpp"

namespace irc {
using namespace detail;

struct Session::ControlCommand {
    std::string_view name, args, help;
    void (ControlCall::*run)();
};

// One control command being run: its words (w[0] the command) and where to answer.
struct Session::ControlCall {
    Session& s;
    std::vector<std::string> w;
    std::string reply_to;

    void say(const std::string& text) const { s.reply_service(reply_to, text); }
    void usage(const ControlCommand& c) const { say("usage: " + std::string(c.name) + " " + std::string(c.args)); }
    bool account_named(const std::string& name) const {
        return std::any_of(s.accounts_.begin(), s.accounts_.end(), [&](const auto& a) { return a.account == name; });
    }
    // An optional account name at w[at] (taken out of w), else the first account.
    std::string take_account(std::size_t at) {
        if (w.size() > at && account_named(w[at])) {
            std::string a = w[at];
            w.erase(w.begin() + static_cast<long>(at));
            return a;
        }
        return s.default_account();
    }
    // An answer that says `what`, or that it failed and why.
    Handler result(const std::string& what) const {
        return [s = &s, to = reply_to, what](const model::Reply& r) {
            s->reply_service(to, r.ok() ? what : what + " failed: " + r.error_message);
        };
    }
    // A contact's nick, or a JID (its bare form).
    bool contact_arg(const std::string& arg, std::string& account, std::string& jid) const {
        if (Contact* c = s.contact_by_nick(arg)) {
            account = c->account;
            jid = c->jid;
            return true;
        }
        auto parsed = xmpp::Jid::parse(arg);
        if (!parsed) return false;
        jid = parsed.value().bare();
        return true;
    }
    const ControlCommand& entry() const {
        const auto& table = control_commands();
        return *std::find_if(table.begin(), table.end(), [&](const auto& c) { return c.name == w[0]; });
    }

    void help() {
        say("commands (in &stanzad, or /msg stanzad):");
        for (const auto& c : control_commands()) {
            std::string left = "  " + std::string(c.name) + (c.args.empty() ? "" : " " + std::string(c.args));
            if (left.size() < 30) left.resize(30, ' ');
            else left += "  ";
            say(left + std::string(c.help));
        }
    }

    void account() {
        std::string sub = w.size() > 1 ? w[1] : "list";
        if (sub == "list") {
            s.ask(model::ListAccounts{}, [s = &s, to = reply_to](const model::Reply& r) {
                for (const auto& a : r.accounts)
                    s->reply_service(to, a.account + " " + a.jid + ": " + a.state + (a.reason.empty() ? "" : " (" + a.reason + ")"));
            });
        } else if ((sub == "on" || sub == "off") && w.size() > 2) {
            s.ask(model::SetAccountEnabled{w[2], sub == "on"}, result("account " + w[2] + " " + sub));
        } else {
            say("usage: account list | account on NAME | account off NAME");
        }
    }

    void roster() {
        std::string only = w.size() > 1 ? w[1] : "";
        int n = 0;
        for (const auto& [key, c] : s.contacts_) {
            if (!only.empty() && c.account != only) continue;
            ++n;
            std::string away = s.away_text(c);
            say(s.contact_nick(c.account, c.jid) + "  " + c.jid + " (" + c.account + ", " + c.item.subscription + ")" +
                (s.online(c) ? "  online" + (away.empty() ? "" : ": " + away) : "  offline"));
        }
        say(std::to_string(n) + " contact(s)");
    }

    void add() {
        std::string account = take_account(1);
        if (w.size() < 2) return usage(entry());
        auto jid = xmpp::Jid::parse(w[1]);
        if (!jid || !jid.value().is_bare()) return say("'" + w[1] + "' is not a bare JID");
        std::string j = jid.value().bare();
        if (w.size() > 2) {
            if (auto st = s.nicks_.rename(account, j, w[2]); !st)
                return say("cannot use nick " + w[2] + ": " + st.error().message);
        }
        s.ask(model::RosterSet{account, j, "", {}}, result("add " + j));
        s.ask(model::ChangeSubscription{account, j, "subscribe"}, [](const model::Reply&) {});
    }

    void remove() {
        if (w.size() < 2) return usage(entry());
        Contact* c = s.contact_by_nick(w[1]);
        if (!c) return say("no contact with the nick " + w[1]);
        s.ask(model::RosterRemove{c->account, c->jid}, result("remove " + c->jid));
    }

    void rename() {
        if (w.size() < 3) return usage(entry());
        Contact* c = s.contact_by_nick(w[1]);
        if (!c) return say("no contact with the nick " + w[1]);
        std::string old = s.contact_nick(c->account, c->jid);
        if (auto st = s.nicks_.rename(c->account, c->jid, w[2]); !st) return say("cannot rename: " + st.error().message);
        s.send(make(s.hostmask(old, c->jid), "NICK", {w[2]}));
    }

    void allow_or_deny() {
        if (w.size() < 2) return usage(entry());
        std::string account = s.default_account(), jid;
        if (!contact_arg(w[1], account, jid)) return say("'" + w[1] + "' is neither a nick nor a JID");
        s.ask(model::ChangeSubscription{account, jid, w[0] == "allow" ? "approve" : "deny"}, result(w[0] + " " + jid));
    }

    void join() {
        std::string account = take_account(1);
        if (w.size() < 2) return usage(entry());
        std::string room = w[1].starts_with('#') ? w[1].substr(1) : w[1];
        s.ask(model::Join{account, room, w.size() > 2 ? w[2] : "", ""},
              [s = &s, to = reply_to, room, account](const model::Reply& r) {
                  if (!r.ok()) return s->reply_service(to, "join " + room + " failed: " + r.error_message);
                  if (!r.rooms.empty() && !s->channel(s->channel_name(room))) s->open_channel(account, room, r.rooms.front(), true);
              });
    }

    void history() {
        if (w.size() < 2) return usage(entry());
        int n = w.size() > 2 ? std::clamp(std::atoi(w[2].c_str()), 1, chathistory_limit) : 20;
        s.chathistory(make(s.nick_, "CHATHISTORY", {"LATEST", w[1], "*", std::to_string(n)}));
    }

    // A contact (nick or JID) at w[at], and its account (a nick's own, else `account`):
    // false after saying why not.
    bool contact_at(std::size_t at, std::string& account, std::string& jid) const {
        if (contact_arg(w[at], account, jid)) return true;
        say("'" + w[at] + "' is neither a nick nor a JID");
        return false;
    }

    // XEP-0384 (issue 14 §4): outgoing encryption with one contact, shown or set.
    void encryption() {
        std::string account = take_account(1), jid;
        if (w.size() < 2 || w.size() > 3) return usage(entry());
        std::string mode = w.size() > 2 ? w[2] : "";
        if (!mode.empty() && mode != "omemo" && mode != "off" && mode != "default")
            return say("encryption: '" + mode + "' is not omemo, off or default");
        if (!contact_at(1, account, jid)) return;
        s.ask(model::SetEncryption{account, jid, mode}, [s = &s, to = reply_to, jid](const model::Reply& r) {
            if (!r.ok()) return s->reply_service(to, "encryption " + jid + " failed: " + r.error_message);
            s->reply_service(to, "encryption with " + jid + ": " + r.encryption +
                                     (r.encryption == "default" ? " (the account's: " + r.encryption_default + ")" : ""));
        });
    }

    // Issue 14 §5: `omemo devices [NICK|JID]`, `omemo trust|distrust NICK|JID DEVICE`.
    void omemo() {
        std::string account = take_account(2), jid;
        std::string sub = w.size() > 1 ? w[1] : "";
        if (sub == "devices" && w.size() <= 3) {
            if (w.size() == 3 && !contact_at(2, account, jid)) return;
            return s.ask(model::OmemoDevices{account, jid}, [s = &s, to = reply_to](const model::Reply& r) {
                if (!r.ok()) return s->reply_service(to, "omemo devices failed: " + r.error_message);
                for (const auto& d : r.omemo_devices)
                    s->reply_service(to, d.jid + "  " + std::to_string(d.device) + "  " + d.trust +
                                             (d.listed ? "" : " (not listed)") + "  " + d.fingerprint);
                s->reply_service(to, std::to_string(r.omemo_devices.size()) + " device(s)");
            });
        }
        if ((sub == "trust" || sub == "distrust") && w.size() == 4) {
            auto device = parse_device(w[3]);
            if (!device) return say("omemo " + sub + ": '" + w[3] + "' is not a device id (a number from 1 to 2147483647)");
            if (!contact_at(2, account, jid)) return;
            return s.ask(model::OmemoTrust{account, jid, *device, sub == "trust"},
                         result("omemo " + sub + " " + jid + " " + w[3]));
        }
        usage(entry());
    }

    // XEP-0384 device ids are 1 .. 2^31-1.
    static std::optional<std::uint32_t> parse_device(const std::string& text) {
        if (text.empty() || text.size() > 10 || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return std::nullopt;
        unsigned long long v = std::stoull(text);
        if (v == 0 || v > 0x7fffffffULL) return std::nullopt;
        return static_cast<std::uint32_t>(v);
    }

    void status() {
        for (const auto& a : s.accounts_) say("account " + a.account + " (" + a.jid + "): " + a.state);
        for (const auto& [name, ch] : s.channels_)
            say(s.channel_name(ch.room) + " as " + ch.our_nick + " (" + std::to_string(ch.occupants.size()) + " occupants)");
        say(std::to_string(s.contacts_.size()) + " contact(s)");
    }
};

const std::vector<Session::ControlCommand>& Session::control_commands() {
    using C = ControlCall;
    static const std::vector<ControlCommand> table = {
        {"help", "", "this list", &C::help},
        {"account", "list | on NAME | off NAME", "accounts and their state; turn one on or off", &C::account},
        {"roster", "[ACCOUNT]", "contacts with their nick and presence", &C::roster},
        {"add", "[ACCOUNT] JID [NICK]", "add a contact and ask for its presence", &C::add},
        {"remove", "NICK", "remove a contact", &C::remove},
        {"rename", "NICK NEWNICK", "give a contact another nick (kept)", &C::rename},
        {"allow", "NICK|JID", "let a contact see your presence (answers its request)", &C::allow_or_deny},
        {"deny", "NICK|JID", "refuse a contact's subscription request", &C::allow_or_deny},
        {"join", "[ACCOUNT] ROOM [NICK]", "join a room (or: /join #ROOM [password])", &C::join},
        {"history", "NICK|#CHANNEL [N]", "the last N messages (default 20)", &C::history},
        {"status", "", "accounts and rooms", &C::status},
        {"encryption", "[ACCOUNT] NICK|JID [omemo|off|default]", "OMEMO with a contact: show it, or always, never, the account's",
         &C::encryption},
        {"omemo", "devices [ACCOUNT] [NICK|JID] | trust|distrust [ACCOUNT] NICK|JID DEVICE",
         "OMEMO devices and fingerprints (ours first); trust or distrust one", &C::omemo},
    };
    return table;
}

void Session::control(const std::string& text, const std::string& reply_to) {
    auto w = words(text);
    if (w.empty()) return;
    std::string name = w[0];
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const auto& table = control_commands();
    auto it = std::find_if(table.begin(), table.end(), [&](const auto& c) { return c.name == name; });
    if (it == table.end()) return reply_service(reply_to, "unknown command '" + w[0] + "'; 'help' lists them");
    w[0] = name;
    ControlCall call{*this, std::move(w), reply_to};
    (call.*(it->run))();
}

}  // namespace irc
