#pragma once
// What the server and the account offer, from their XEP-0030 disco#info (§3.1), and what
// each missing feature means for the user. Pure: no I/O. Used at login, before the
// features are asked for: nothing is requested that the server did not announce.
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <pugixml.hpp>

namespace xmpp::im {

inline constexpr std::string_view ns_pubsub = "http://jabber.org/protocol/pubsub";

// The capabilities that decide how reliable a session is, and what the login asks for.
struct Capabilities {
    bool known = false;              // both disco#info answers (or errors) came
    bool stream_management = false;  // XEP-0198 v3 enabled on the stream
    bool archive = false;            // XEP-0313 §7: urn:xmpp:mam:2 on the account
    bool carbons = false;            // XEP-0280 §3: urn:xmpp:carbons:2 on the server
    bool pep = false;                // XEP-0163 §4: identity pubsub/pep on the account (bookmarks2)
    friend bool operator==(const Capabilities&, const Capabilities&) = default;
};

// The <feature var/> values and "category/type" identities of a disco#info result
// (XEP-0030 §3.1); empty for an error or anything else. Bounded by the stanza's size.
struct DiscoInfo {
    std::set<std::string> features;
    std::set<std::string> identities;  // "pubsub/pep", "server/im", ...
};
DiscoInfo parse_disco_info(pugi::xml_node iq);

// The capabilities from the server's (domain) and the account's (bare JID) disco#info.
// Some servers announce account features (MAM) on the domain as well: either counts.
Capabilities capabilities(const DiscoInfo& server, const DiscoInfo& account, bool stream_management);

// One line per missing capability, for the log at info level: what it means for the user.
std::vector<std::string> missing_notes(const Capabilities& caps);

// <iq type='get'><query xmlns='disco#info'/></iq> to `to` (XEP-0030 §3.1).
std::string make_disco_info_get(std::string_view id, std::string_view to);

}  // namespace xmpp::im
