// Server queries of the IRC session that need nothing from the daemon: TIME, HELP/HELPOP,
// LIST (modern-irc messages-server_queries.md and messages-channel.md). Part of
// irc::Session (session.hpp); commands.cpp's table names them.
#include <ctime>

#include "frontends/irc/session.hpp"
#include "frontends/irc/session_util.hpp"

namespace irc {
using namespace detail;
namespace {

struct HelpTopic {
    std::string_view subject;
    std::vector<std::string_view> text;
};

// What each command means here, in XMPP terms (docs/irc.md has the same, longer).
const std::vector<HelpTopic>& help_topics() {
    static const std::vector<HelpTopic> topics = {
        {"*", {"stanzad: your XMPP accounts as an IRC network.",
               "Contacts are nicks, rooms are channels named #room@service, &stanzad holds the roster.",
               "Commands: PRIVMSG NOTICE JOIN PART TOPIC NAMES WHO WHOIS MODE KICK INVITE AWAY",
               "  CHATHISTORY MARKREAD TAGMSG MONITOR ISON USERHOST LIST TIME VERSION HELP",
               "HELP <command> explains one; 'help' in &stanzad lists the control commands."}},
        {"PRIVMSG", {"PRIVMSG <nick|#room> :text  sends an XMPP chat message to a contact, or a",
                     "groupchat message to a room; /me becomes XEP-0245 '/me'."}},
        {"NOTICE", {"NOTICE <nick|#room> :text  like PRIVMSG, but errors are never answered."}},
        {"JOIN", {"JOIN #room@service [password]  joins an XMPP multi-user chat (XEP-0045)."}},
        {"PART", {"PART #room@service [:reason]  leaves the room."}},
        {"TOPIC", {"TOPIC #room@service [:subject]  shows or sets the room's subject."}},
        {"KICK", {"KICK #room@service nick [:reason]  kicks an occupant (needs moderator)."}},
        {"INVITE", {"INVITE nick #room@service  sends a XEP-0249 invitation to a contact."}},
        {"AWAY", {"AWAY [:text]  sets every account's presence to away (show 'away'), or back."}},
        {"WHOIS", {"WHOIS nick  shows the contact's JID, subscription and online resources."}},
        {"MONITOR", {"MONITOR +|- nick[,nick]  follows contacts' XMPP presence (730 online, 731",
                     "offline); MONITOR C clears, L lists, S shows the status of all."}},
        {"CHATHISTORY", {"CHATHISTORY LATEST|BEFORE|AFTER|AROUND|BETWEEN|TARGETS  reads the stored",
                         "messages of a conversation (IRCv3 chathistory)."}},
        {"MARKREAD", {"MARKREAD target [timestamp=...]  gets or sets the read marker shared by all",
                      "front ends (IRCv3 read-marker)."}},
        {"TIME", {"TIME  the daemon's clock, UTC."}},
    };
    return topics;
}

}  // namespace

void Session::time_query() {
    // modern-irc RPL_TIME (391): "<client> <server> [<timestamp> [<TS offset>]] :<human-readable time>"
    std::int64_t now = options_.clock ? options_.clock() : 0;
    std::time_t t = static_cast<std::time_t>(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char human[64];
    std::strftime(human, sizeof human, "%A %B %d %Y -- %H:%M:%S +00:00", &tm);
    numeric("391", {options_.server, std::to_string(now), "0", human});
}

void Session::help(const Message& m) {
    // modern-irc HELP: RPL_HELPSTART (704), RPL_HELPTXT (705)..., RPL_ENDOFHELP (706), or
    // ERR_HELPNOTFOUND (524). The first 705 is empty, as most servers do.
    std::string subject = m.params.empty() || m.params[0].empty() ? "*" : upper(m.params[0]);
    for (const auto& topic : help_topics()) {
        if (topic.subject != subject) continue;
        numeric("704", {subject, std::string(topic.text.front())});
        numeric("705", {subject, ""});
        for (std::size_t i = 1; i < topic.text.size(); ++i) numeric("705", {subject, std::string(topic.text[i])});
        return numeric("706", {subject, "End of /HELP"});
    }
    numeric("524", {subject.size() > 32 ? "*" : subject, "No help available on this topic"});
}

void Session::list(const Message& m) {
    // modern-irc LIST: RPL_LIST (322) per channel, then RPL_LISTEND (323). With names, only
    // those that exist: a name that is not a channel here gets nothing.
    auto control_row = [this] {
        numeric("322", {std::string(control_channel), std::to_string(contacts_.size() + 2), "stanzad control channel"});
    };
    if (m.params.empty() || m.params[0].empty()) {
        numeric("321", {"Channel", "Users  Name"});
        control_row();
        for (const auto& [name, ch] : channels_)
            numeric("322", {channel_name(ch.room), std::to_string(ch.occupants.size()), ch.topic});
        return numeric("323", {"End of /LIST"});
    }
    for (const auto& name : comma_list(m.params[0])) {
        if (fold(name) == fold(control_channel)) control_row();
        else if (Channel* ch = channel(name))
            numeric("322", {channel_name(ch->room), std::to_string(ch->occupants.size()), ch->topic});
    }
    numeric("323", {"End of /LIST"});
}

}  // namespace irc
