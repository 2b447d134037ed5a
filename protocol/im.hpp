#pragma once
// Instant-messaging stanza codecs (RFC 6121, XEP-0359 ids, XEP-0203 delay): typed values
// out of received stanzas, serialized stanzas out of typed values. Sans-I/O, no state.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pugixml.hpp>

#include "protocol/base/jid.hpp"
#include "protocol/base/result.hpp"
#include "protocol/omemo/stanza.hpp"

namespace xmpp {

inline constexpr std::string_view ns_sid = "urn:xmpp:sid:0";
inline constexpr std::string_view ns_delay = "urn:xmpp:delay";
inline constexpr std::string_view ns_roster = "jabber:iq:roster";
inline constexpr std::string_view ns_receipts = "urn:xmpp:receipts";
inline constexpr std::string_view ns_mam = "urn:xmpp:mam:2";
inline constexpr std::string_view ns_forward = "urn:xmpp:forward:0";
inline constexpr std::string_view ns_rsm = "http://jabber.org/protocol/rsm";
inline constexpr std::string_view ns_carbons = "urn:xmpp:carbons:2";
inline constexpr std::string_view ns_chatstates = "http://jabber.org/protocol/chatstates";
inline constexpr std::string_view ns_correct = "urn:xmpp:message-correct:0";
inline constexpr std::string_view ns_markers = "urn:xmpp:chat-markers:0";
inline constexpr std::string_view ns_hints = "urn:xmpp:hints";
inline constexpr std::string_view ns_blocking = "urn:xmpp:blocking";
inline constexpr std::string_view ns_caps = "http://jabber.org/protocol/caps";
inline constexpr std::string_view ns_vcard = "vcard-temp";
inline constexpr std::string_view ns_nick = "http://jabber.org/protocol/nick";

struct ReceivedMessage {
    std::string from, to, type, id, body;
    std::string stanza_id;     // XEP-0359 §3: only when stamped by our own account
    std::string origin_id;     // XEP-0359 §5
    std::string delay_stamp;   // XEP-0203: when it was first sent (RFC 3339 / XEP-0082)
    std::string error;         // type='error': "condition (text)"
    std::string receipt_for;   // XEP-0184 <received id=.../>: the id of our message
    bool receipt_requested = false;  // XEP-0184 <request/>
    std::string chat_state;    // XEP-0085: active | composing | paused | inactive | gone
    std::string replace_id;    // XEP-0308 <replace id=.../>: the id of the message corrected
    std::string displayed_id;  // XEP-0333 <displayed id=.../>: read up to this message
    bool markable = false;     // XEP-0333 <markable/>
    bool has_subject = false;  // a <subject/> child (XEP-0045 §8.1: may be empty)
    std::string subject;
    std::string nick;          // XEP-0172 <nick/>
    // XEP-0384: an OMEMO <encrypted/> (either namespace), parsed and bounded; or, when it
    // does not parse, why (then `omemo` is empty). Either way the <body/> is only the
    // fallback text (§4.5 / 0.3 §4.5) and must not be shown as the message.
    std::optional<omemo::Encrypted> omemo;
    std::string omemo_error;
    bool encrypted() const { return omemo || !omemo_error.empty(); }
    // Something to store: a body, or an OMEMO payload (a key transport without one is not).
    bool has_content() const { return omemo ? omemo->payload.has_value() : !body.empty(); }
};
// A <message/> in jabber:client; nullopt for anything else. The stanza-id (XEP-0359 §3)
// is kept only when 'by' is our own bare JID, or, for type groupchat, the bare JID of the
// room it comes from.
std::optional<ReceivedMessage> parse_message(pugi::xml_node stanza, const Jid& own);

// A stanza's <error/> (RFC 6120 §8.3.2): the defined condition ("undefined-condition" when it
// names none) and the text for people, which may be empty.
struct StanzaError {
    std::string condition, text;
    std::string describe() const { return text.empty() ? condition : condition + " (" + text + ")"; }
};
std::optional<StanzaError> parse_stanza_error(pugi::xml_node stanza);
// "condition (text)" of a stanza's <error/>; "" when the stanza has no <error/>.
std::string stanza_error(pugi::xml_node stanza);

// XEP-0280 §7, §8: a <sent/> or <received/> carbon wrapper. `forged` when the wrapper does not
// come from our own bare JID (§11: such a carbon must be ignored). `message` points into
// the same document as the wrapper.
struct Carbon {
    std::string direction;     // sent | received
    pugi::xml_node message;    // the forwarded <message/>, null when missing
    bool forged = false;
};
std::optional<Carbon> parse_carbon(pugi::xml_node stanza, const Jid& own);
std::string make_carbons_enable(std::string_view id);

struct ReceivedPresence {
    std::string from, type;    // type "" means available
    std::string show, status;
};
std::optional<ReceivedPresence> parse_presence(pugi::xml_node stanza);

struct RosterEntry {
    std::string jid, name, subscription;
    std::vector<std::string> groups;
    bool ask = false;          // RFC 6121 §2.1.2.2 ask='subscribe': our request awaits an answer
};
// The items of a roster result or push (RFC 6121 §2.1.4, §2.1.6). Items with a bad JID
// are skipped.
std::vector<RosterEntry> parse_roster(pugi::xml_node query);
// The query's 'ver' attribute (RFC 6121 §2.6), nullopt when it has none.
std::optional<std::string> roster_version(pugi::xml_node query);

// A message from an archive (XEP-0313 §4.2): the forwarded message, the archive id (which
// is its stanza-id) and when it was archived.
struct ArchivedMessage {
    std::string query_id;
    ReceivedMessage message;
};
// Only results that come from `archive` are trusted: our own bare JID (then also a result
// without 'from'), or a room's JID when we queried the room (XEP-0313 §4.2, §5).
std::optional<ArchivedMessage> parse_mam_result(pugi::xml_node stanza, const Jid& own);
std::optional<ArchivedMessage> parse_mam_result(pugi::xml_node stanza, const Jid& own, std::string_view archive);
// The end of one page of results (XEP-0313 §4.3, XEP-0059): complete or not, first and
// last id of the page.
struct MamFin {
    bool complete = false;
    std::string first, last;
};
std::optional<MamFin> parse_mam_fin(pugi::xml_node iq);
// A query of our own archive for what came after the archive id `after`, or else since
// `start` (XEP-0082 DateTime), one page of `max`.
std::string make_mam_query(std::string_view id, std::string_view query_id, std::string_view after,
                           std::string_view start, int max);
// Any archive query (XEP-0313 §4.1, paged with XEP-0059 §2).
struct MamQuery {
    std::string to;            // "" for our own archive, or a room's bare JID
    std::string query_id;
    std::string with;          // only messages with this JID (own archive only)
    std::string start;         // XEP-0082 DateTime
    std::string after;         // RSM <after>: the page after this archive id
    std::optional<std::string> before;  // RSM <before>: the page before this id; "" = the last page
    int max = 50;
};
std::string make_mam_query(std::string_view id, const MamQuery& query);

// An outgoing message (RFC 6121 §5) with the ids and hints a modern client puts on it.
struct OutgoingMessage {
    std::string to, type = "chat", body, id;  // id also becomes the XEP-0359 origin-id
    std::string replace_id;          // XEP-0308 §3: corrects the message with this id
    bool request_receipt = true;     // XEP-0184 <request/>, only for type chat
    bool markable = true;            // XEP-0333 <markable/>, only for type chat
    std::string chat_state = "active";  // XEP-0085 §5.1, only for type chat; "" for none
};
std::string make_message(const OutgoingMessage& message);
// <message/> with a body and a XEP-0359 origin-id equal to its id; chat messages also
// ask for a XEP-0184 receipt and say we are active.
std::string make_message(std::string_view to, std::string_view type, std::string_view body, std::string_view id);
// XEP-0184 §7: <received id=.../> for the message `for_id`, to the full JID it came from.
std::string make_receipt(std::string_view to, std::string_view for_id, std::string_view id);
// XEP-0085 §5: a standalone chat state notification (no body), with a no-store hint.
std::string make_chat_state(std::string_view to, std::string_view type, std::string_view state);
// XEP-0333 §4.2: the user has displayed messages up to `for_id`.
std::string make_displayed(std::string_view to, std::string_view type, std::string_view for_id,
                           std::string_view id);
// XEP-0249 §2: a direct invitation to `room`.
std::string make_direct_invite(std::string_view to, std::string_view room, std::string_view reason,
                               std::string_view password);
// Our presence (RFC 6121 §4.2): show "" | away | chat | dnd | xa; `priority` -128..127
// (§4.7.2.3; 0 is left out, as absent means 0); `extra` (serialized XML, e.g. a XEP-0115
// <c/>) is put inside as is.
std::string make_presence(std::string_view show, std::string_view status, int priority = 0,
                          std::string_view extra = {});
// subscribe | subscribed | unsubscribe | unsubscribed to `to` (RFC 6121 §3).
std::string make_subscription(std::string_view to, std::string_view type);
// RFC 6121 §2.1.3; with `ver` (§2.6.3, "" for the first versioned fetch) when the server
// announced roster versioning.
std::string make_roster_get(std::string_view id, std::optional<std::string_view> ver = std::nullopt);
// §2.3 add or update an item (name "" for none), §2.5 remove it.
std::string make_roster_set(std::string_view id, std::string_view jid, std::string_view name,
                            const std::vector<std::string>& groups);
std::string make_roster_remove(std::string_view id, std::string_view jid);

// XEP-0191: the block list (§3.2), block (§3.3) and unblock (§3.4; no JIDs: all).
std::string make_blocklist_get(std::string_view id);
std::string make_block(std::string_view id, const std::vector<std::string>& jids);
std::string make_unblock(std::string_view id, const std::vector<std::string>& jids);
// The JIDs of the <item/> children of a <blocklist/>, <block/> or <unblock/>.
std::vector<std::string> parse_block_items(pugi::xml_node element);

// XEP-0115 §5.1: the verification string of one identity and a set of features.
std::string caps_verification(std::string_view category, std::string_view type, std::string_view name,
                              const std::vector<std::string>& features);
// XEP-0115 §4: the <c/> element of our presence.
std::string make_caps(std::string_view node, std::string_view ver);

// XEP-0054: ask `to` for its vCard; its NICKNAME and FN from the answer.
std::string make_vcard_get(std::string_view id, std::string_view to);
struct VcardNames {
    std::string nick, full_name;
};
VcardNames parse_vcard_names(pugi::xml_node iq);

// Checks a stanza a front end wants to send as is: one well-formed <message/>,
// <presence/> or <iq/> in jabber:client, within the framer's XMPP restrictions.
Status check_raw_stanza(std::string_view xml);

}  // namespace xmpp
