#pragma once
// Multi-user chat (XEP-0045) and what goes with it: invitations (XEP-0045 §7.8, XEP-0249),
// self-ping (XEP-0410) and bookmarks (XEP-0402, XEP-0048). Typed values out of received
// stanzas, serialized stanzas out of typed values. Sans-I/O, no state: which rooms we are
// in is the daemon's business.
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <pugixml.hpp>

namespace xmpp {

inline constexpr std::string_view ns_muc = "http://jabber.org/protocol/muc";
inline constexpr std::string_view ns_muc_user = "http://jabber.org/protocol/muc#user";
inline constexpr std::string_view ns_muc_admin = "http://jabber.org/protocol/muc#admin";
inline constexpr std::string_view ns_conference = "jabber:x:conference";
inline constexpr std::string_view ns_pubsub = "http://jabber.org/protocol/pubsub";
inline constexpr std::string_view ns_bookmarks = "urn:xmpp:bookmarks:1";
inline constexpr std::string_view ns_private = "jabber:iq:private";
inline constexpr std::string_view ns_legacy_bookmarks = "storage:bookmarks";

// The status codes of XEP-0045 §16.6 that the daemon acts on.
namespace muc_status {
inline constexpr int real_jid_public = 100;
inline constexpr int self = 110;
inline constexpr int created = 201;
inline constexpr int nick_assigned = 210;  // the room changed the nick we asked for
inline constexpr int banned = 301;
inline constexpr int new_nick = 303;
inline constexpr int kicked = 307;
inline constexpr int removed_affiliation = 321;
inline constexpr int removed_members_only = 322;
inline constexpr int removed_shutdown = 332;
}  // namespace muc_status

// A presence from a room occupant (XEP-0045 §7.2), or an error presence from a room.
struct MucPresence {
    std::string room;          // the bare JID of the room
    std::string nick;          // the occupant's nick (the resource of 'from')
    std::string type;          // "" (available) | unavailable | error
    std::string show, status;
    std::string affiliation, role;  // from <item/>: owner admin member outcast none / moderator participant visitor none
    std::string jid;           // the occupant's real JID, when the room tells us
    std::string new_nick;      // with status 303 (§7.6): the nick the occupant now has
    std::string actor, reason; // with a kick or ban (§8.2, §9.1): who, and why
    std::set<int> codes;       // <status code=.../>
    std::string error;         // type error: "condition (text)"
    bool destroyed = false;    // §10.9: the room was destroyed
    bool self() const { return codes.count(muc_status::self) > 0; }
};
// nullopt unless the stanza is a <presence/> with a from JID that has a resource and either
// carries a muc#user <x/> or is of type error.
std::optional<MucPresence> parse_muc_presence(pugi::xml_node stanza);

// An invitation: mediated (XEP-0045 §7.8.2, <message from=room><x muc#user><invite from=...>)
// or direct (XEP-0249 §2, <x xmlns='jabber:x:conference' jid=room/>).
struct Invite {
    std::string room, from, reason, password;
    bool direct = false;
};
std::optional<Invite> parse_invite(pugi::xml_node message);

// §7.2.2: enter the room as `nick` (§7.2.5 with a password), asking for no discussion
// history (§7.2.13, maxstanzas='0': the room's archive fills it instead). `presence_extra`
// (serialized XML: show, status, caps) goes inside the presence as is.
std::string make_muc_join(std::string_view room, std::string_view nick, std::string_view password,
                          std::string_view presence_extra = {});
// §7.14: leave, with an optional reason as status.
std::string make_muc_leave(std::string_view room, std::string_view nick, std::string_view reason);
// §8.1: change the subject.
std::string make_muc_subject(std::string_view room, std::string_view subject, std::string_view id);
// §8.2: kick an occupant (role none), with an optional reason.
std::string make_muc_kick(std::string_view id, std::string_view room, std::string_view nick,
                          std::string_view reason);

// XEP-0410 §3: ping our own occupant JID.
std::string make_muc_self_ping(std::string_view id, std::string_view room, std::string_view nick);
// XEP-0410 §3.1: what the answer says about us.
enum class SelfPing {
    Joined,     // result, or an error that only the occupant's client can give
    NotJoined,  // not-acceptable, or item-not-found: rejoin
    Unknown,    // the room or its server did not answer usefully: try again later
};
SelfPing classify_self_ping(pugi::xml_node iq);

// A bookmarked room (XEP-0402 §3 <conference/>, or XEP-0048 §3.2).
struct Bookmark {
    std::string room, name, nick, password;
    bool autojoin = false;
};
// XEP-0402 §3.2: all items of the urn:xmpp:bookmarks:1 node.
std::string make_bookmarks_get(std::string_view id);
std::vector<Bookmark> parse_bookmarks(pugi::xml_node iq);
// XEP-0048 §3.3 via private XML storage (XEP-0049).
std::string make_legacy_bookmarks_get(std::string_view id);
std::vector<Bookmark> parse_legacy_bookmarks(pugi::xml_node iq);

}  // namespace xmpp
