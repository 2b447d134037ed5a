// MONITOR (IRCv3 monitor.md) over XMPP presence, and SETNAME (IRCv3 setname.md). Part of
// irc::Session (session.hpp). A monitored nick is online while the contact it names has
// an available resource (RFC 6121 §4); a nick that names no contact is offline.
#include "frontends/irc/session.hpp"
#include "frontends/irc/session_util.hpp"

namespace irc {
using namespace detail;

void Session::monitor(const Message& m) {
    if (m.params.empty()) return numeric("461", {"MONITOR", "Not enough parameters"});
    std::string op = upper(m.params[0]);
    if (op == "+" || op == "-") {
        if (m.params.size() < 2) return numeric("461", {"MONITOR", "Not enough parameters"});
        std::vector<std::string> targets = comma_list(m.params[1]);
        if (op == "+") return monitor_add(targets);
        // monitor.md "MONITOR -": no output.
        for (const auto& t : targets) monitor_.erase(fold(t));
        return;
    }
    if (op == "C") return monitor_.clear();
    if (op == "L") {
        std::vector<std::string> all;
        for (const auto& [folded, nick] : monitor_) all.push_back(nick);
        numeric_lists("732", all);
        return numeric("733", {"End of MONITOR list"});
    }
    if (op == "S") {
        std::vector<std::string> all;
        for (const auto& [folded, nick] : monitor_) all.push_back(nick);
        return monitor_report(all);
    }
    numeric("461", {"MONITOR", "Unknown MONITOR modifier: use + - C L S"});
}

void Session::monitor_add(const std::vector<std::string>& targets) {
    // monitor.md "MONITOR +": what is added is reported (730 online, 731 offline); a full
    // list refuses the rest with ERR_MONLISTFULL (734). Targets must be nicks.
    std::vector<std::string> added, refused;
    for (const auto& t : targets) {
        if (!valid_nick(t)) continue;
        if (monitor_.count(fold(t))) {
            added.push_back(t);  // already there: not added again, but its status is news to the client
        } else if (monitor_.size() >= max_monitor) {
            refused.push_back(t);
        } else {
            monitor_.emplace(fold(t), t);
            added.push_back(t);
        }
    }
    if (!refused.empty()) {
        std::string list;
        for (const auto& r : refused) list += (list.empty() ? "" : ",") + r;
        numeric("734", {std::to_string(max_monitor), list, "Monitor list is full."});
    }
    monitor_report(added);
}

void Session::monitor_report(const std::vector<std::string>& nicks) {
    std::vector<std::string> on, off;
    for (const auto& n : nicks) {
        if (fold(n) == fold(nick_)) on.push_back(nick_ + "!" + user_ + "@stanzad");
        else if (Contact* c = contact_by_nick(n); c && online(*c)) on.push_back(hostmask(contact_nick(c->account, c->jid), c->jid));
        else off.push_back(n);
    }
    numeric_lists("730", on);  // RPL_MONONLINE: target!user@host
    numeric_lists("731", off);  // RPL_MONOFFLINE
}

void Session::monitor_changed(const std::string& nick, const Contact& c) {
    if (!monitor_.count(fold(nick))) return;
    if (online(c)) numeric("730", {hostmask(nick, c.jid)});
    else numeric("731", {nick});
}

void Session::numeric_lists(std::string_view code, const std::vector<std::string>& items) {
    // monitor.md: lists are cut to fit the 512-byte line.
    std::string list;
    for (const auto& item : items) {
        if (!list.empty() && list.size() + item.size() > 400) numeric(code, {std::exchange(list, {})});
        list += (list.empty() ? "" : ",") + item;
    }
    if (!list.empty()) numeric(code, {list});
}

void Session::setname(const Message& m) {
    // IRCv3 setname: the realname is the account's; nothing here can change it.
    if (m.params.empty() || m.params[0].empty()) return fail("SETNAME", "INVALID_REALNAME", {}, "Realname is not valid");
    fail("SETNAME", "CANNOT_CHANGE_REALNAME", {}, "The realname is your XMPP account's; stanzad does not change it");
}

}  // namespace irc
