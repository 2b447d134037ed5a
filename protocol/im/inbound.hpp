#pragma once
// The IM core's first piece (issue 13): how one received message is identified, whatever path
// brought it (live, a carbon, offline storage, a resumption, an archive page), so that it
// becomes one event however often the server hands it over. Pure: no store, no time, no I/O;
// the owner looks the keys up in its store.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/im.hpp"

namespace xmpp::im {

// Where the message came from.
struct InboundContext {
    std::string own;            // the account's bare JID
    std::string room;           // the bare JID of the joined room it came from, or ""
    std::string carbon;         // XEP-0280 direction: "sent", "received", or "" for none
    bool from_archive = false;  // a XEP-0313 result from our own archive
    bool markers = false;       // the user sends XEP-0333 markers (the account's chat_markers)
};

struct InboundIdentity {
    // Ours: a sent carbon, or a message from our own archive that we (or another of our
    // clients) sent.
    bool outgoing = false;
    // Who its ids are unique for: the occupant's full JID in a room, else the sender's bare
    // JID ("" when the 'from' is no JID); ours when outgoing.
    std::string sender;
    // The XEP-0359 stanza-id we may trust as an archive id: never one on a groupchat message
    // that is not from a room we are in, since anyone can write a stanza-id "by" us there.
    std::string stanza_id;
    // What front ends see as its id: the stanza-id, else the origin-id, else the id.
    std::string msg_id;
    // The conversation its event is filed under (model::conversation_of).
    std::string conversation;
    // Its stanza-id is its msg_id, found in the conversation's stored messages (the store's
    // index of msg_ids), so it needs no key of its own: looked up there before the keys.
    bool by_msg_id = false;
    // De-duplication keys, in the order to look them up; the first is the one it is stored
    // under. Empty when the message carries no other id than a stanza-id found by_msg_id, or
    // none at all (it cannot be recognised again). "sid:ID" (our archive) and "rsid:ROOM:ID"
    // (a room's archive) only for a message with no conversation, "oid:SENDER:ID" (origin-id,
    // unique per sender), and "id:SENDER:ID" only for our own messages or when nothing
    // better exists (other clients reuse plain ids), and never when the id is the origin-id.
    std::vector<std::string> keys;
    // Stored beside the event: the other keys, and "rid:MSG_ID" -> the id a XEP-0333 marker
    // for this message must carry, only where a marker will need it: with markers on, in a
    // chat (a room's marker carries the room's stanza-id, the msg_id), and when that id is not
    // the msg_id itself. Each alias is a row with a random key in the store.
    std::vector<std::pair<std::string, std::string>> aliases;
};

InboundIdentity identify(const ReceivedMessage& m, const InboundContext& context);

// The key of an id its sender chose, unique per sender: "oid:SENDER:ID" for an XEP-0359
// origin-id, "id:SENDER:ID" for the stanza's id. identify() keeps them; copies and
// corrections (XEP-0308) are found by them.
inline std::string sender_key(std::string_view kind, std::string_view sender, std::string_view id) {
    std::string key(kind);
    key.append(":").append(sender).append(":").append(id);
    return key;
}

}  // namespace xmpp::im
