#pragma once
// Instant-messaging stanza codecs (RFC 6121, XEP-0359 ids, XEP-0203 delay): typed values
// out of received stanzas, serialized stanzas out of typed values. Sans-I/O, no state.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pugixml.hpp>

#include "protocol/jid.hpp"
#include "protocol/result.hpp"

namespace xmpp {

inline constexpr std::string_view ns_sid = "urn:xmpp:sid:0";
inline constexpr std::string_view ns_delay = "urn:xmpp:delay";
inline constexpr std::string_view ns_roster = "jabber:iq:roster";
inline constexpr std::string_view ns_receipts = "urn:xmpp:receipts";
inline constexpr std::string_view ns_mam = "urn:xmpp:mam:2";
inline constexpr std::string_view ns_forward = "urn:xmpp:forward:0";
inline constexpr std::string_view ns_rsm = "http://jabber.org/protocol/rsm";

struct ReceivedMessage {
    std::string from, to, type, id, body;
    std::string stanza_id;     // XEP-0359 §3: only when stamped by our own account
    std::string origin_id;     // XEP-0359 §5
    std::string delay_stamp;   // XEP-0203: when it was first sent (RFC 3339 / XEP-0082)
    std::string error;         // type='error': "condition (text)"
    std::string receipt_for;   // XEP-0184 <received id=.../>: the id of our message
    bool receipt_requested = false;  // XEP-0184 <request/>
};
// A <message/> in jabber:client; nullopt for anything else.
std::optional<ReceivedMessage> parse_message(pugi::xml_node stanza, const Jid& own);

struct ReceivedPresence {
    std::string from, type;    // type "" means available
    std::string show, status;
};
std::optional<ReceivedPresence> parse_presence(pugi::xml_node stanza);

struct RosterEntry {
    std::string jid, name, subscription;
    std::vector<std::string> groups;
};
// The items of a roster result or push (RFC 6121 §2.1.4, §2.1.6). Items with a bad JID
// are skipped.
std::vector<RosterEntry> parse_roster(pugi::xml_node query);

// A message from our own account's archive (XEP-0313 §4.2): the forwarded message, the
// archive id (which is its stanza-id) and when it was archived.
struct ArchivedMessage {
    std::string query_id;
    ReceivedMessage message;
};
// Only results that come from our own bare JID (or without 'from') are trusted.
std::optional<ArchivedMessage> parse_mam_result(pugi::xml_node stanza, const Jid& own);
// The end of one page of results (XEP-0313 §4.3, XEP-0059): complete or not, last id.
struct MamFin {
    bool complete = false;
    std::string last;
};
std::optional<MamFin> parse_mam_fin(pugi::xml_node iq);
// A query of our own archive for what came after the archive id `after`, or else since
// `start` (XEP-0082 DateTime), one page of `max`.
std::string make_mam_query(std::string_view id, std::string_view query_id, std::string_view after,
                           std::string_view start, int max);

// <message/> with a body and a XEP-0359 origin-id equal to its id; chat messages also
// ask for a XEP-0184 receipt.
std::string make_message(std::string_view to, std::string_view type, std::string_view body, std::string_view id);
// Our presence (RFC 6121 §4.2): show "" | away | chat | dnd | xa.
std::string make_presence(std::string_view show, std::string_view status);
// subscribe | subscribed | unsubscribed to `to` (RFC 6121 §3).
std::string make_subscription(std::string_view to, std::string_view type);
std::string make_roster_get(std::string_view id);

// A XEP-0082 DateTime (CCYY-MM-DDThh:mm:ss[.sss]TZD) as milliseconds since the Unix
// epoch, UTC; nullopt when malformed.
std::optional<std::int64_t> parse_datetime(std::string_view text);

// Checks a stanza a front end wants to send as is: one well-formed <message/>,
// <presence/> or <iq/> in jabber:client, within the framer's XMPP restrictions.
Status check_raw_stanza(std::string_view xml);

}  // namespace xmpp
