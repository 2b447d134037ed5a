// The IM core's identification of received messages (protocol/im/inbound): which keys make a
// message that arrives twice (a carbon and the archive, offline storage and a resumption,
// two catch-ups) one event, and which ids are not to be trusted.
#include <catch2/catch.hpp>

#include <algorithm>

#include "protocol/im/inbound.hpp"

using namespace xmpp;
using namespace xmpp::im;

namespace {

constexpr const char* kOwn = "alice@example.org";

ReceivedMessage chat(std::string from, std::string id, std::string origin_id = {}, std::string stanza_id = {}) {
    ReceivedMessage m;
    m.from = std::move(from);
    m.to = kOwn;
    m.type = "chat";
    m.body = "hi";
    m.id = std::move(id);
    m.origin_id = std::move(origin_id);
    m.stanza_id = std::move(stanza_id);
    return m;
}

InboundContext live() { return {kOwn, "", "", false, true}; }

using Keys = std::vector<std::string>;

}  // namespace

TEST_CASE("inbound: the archive id comes first, then the sender's origin-id; a plain id only as a last resort") {
    auto id = identify(chat("bob@example.org/phone", "m1", "o1", "S1"), live());
    CHECK_FALSE(id.outgoing);
    CHECK(id.sender == "bob@example.org");
    CHECK(id.msg_id == "S1");
    // The stanza-id is the msg_id, looked up among the conversation's messages: no key of its own.
    CHECK(id.by_msg_id);
    CHECK(id.conversation == "bob@example.org");
    CHECK(id.keys == Keys{"oid:bob@example.org:o1"});
    // The id is kept beside it, for corrections (XEP-0308) and markers (XEP-0333).
    CHECK(id.aliases ==
          std::vector<std::pair<std::string, std::string>>{{"id:bob@example.org:m1", ""}, {"rid:S1", "m1"}});
    // Only a stanza-id: nothing to keep beside the event, which its msg_id finds.
    auto bare = identify(chat("bob@example.org/phone", "", "", "S2"), live());
    CHECK(bare.by_msg_id);
    CHECK(bare.keys.empty());
    CHECK(bare.aliases.empty());

    // Other clients reuse plain ids: without a stanza-id or origin-id the id is all there is.
    auto plain = identify(chat("bob@example.org/phone", "m1"), live());
    CHECK(plain.keys == Keys{"id:bob@example.org:m1"});
    CHECK(plain.msg_id == "m1");
    CHECK(identify(chat("bob@example.org/phone", ""), live()).keys.empty());
}

TEST_CASE("inbound: the id a marker needs is kept only where a marker will need it") {
    using Aliases = std::vector<std::pair<std::string, std::string>>;
    // Markers off (chat_markers = false, the default): no "rid:" row for any message.
    InboundContext quiet = live();
    quiet.markers = false;
    CHECK(identify(chat("bob@example.org/phone", "m1", "o1", "S1"), quiet).aliases ==
          Aliases{{"id:bob@example.org:m1", ""}});
    // The msg_id is the id itself (no stanza-id, no origin-id): a marker names it anyway.
    CHECK(identify(chat("bob@example.org/phone", "m1"), live()).aliases.empty());
    // A stanza-id but no origin-id: the id differs from the msg_id, so it is kept.
    CHECK(identify(chat("bob@example.org/phone", "m1", "", "S1"), live()).aliases ==
          Aliases{{"id:bob@example.org:m1", ""}, {"rid:S1", "m1"}});
    // In a room a marker names the room's stanza-id (XEP-0333 §3), which is the msg_id.
    ReceivedMessage g = chat("room@conference.example.org/bob", "m1", "o1", "R1");
    g.type = "groupchat";
    auto in_room = identify(g, {kOwn, "room@conference.example.org", "", false, true});
    CHECK(in_room.msg_id == "R1");
    for (const auto& [key, value] : in_room.aliases) CHECK(key.rfind("rid:", 0) != 0);
}

TEST_CASE("inbound: an id equal to the origin-id is not a key or a row of its own") {
    using Aliases = std::vector<std::pair<std::string, std::string>>;
    InboundContext quiet = live();
    quiet.markers = false;
    // From a contact: the stanza-id is found by msg_id, the origin-id is the one row.
    auto in = identify(chat("bob@example.org/phone", "c1", "c1", "S1"), quiet);
    CHECK(in.keys == Keys{"oid:bob@example.org:c1"});
    CHECK(in.aliases.empty());
    // Without a stanza-id (offline storage): the origin-id is the key and nothing is beside it.
    auto offline = identify(chat("bob@example.org/phone", "c1", "c1"), quiet);
    CHECK(offline.keys == Keys{"oid:bob@example.org:c1"});
    CHECK(offline.aliases.empty());
    // Our own, from another client (a carbon): the id is not looked up a second time.
    InboundContext carbon = quiet;
    carbon.carbon = "sent";
    CHECK(identify(chat(std::string(kOwn) + "/laptop", "c1", "c1"), carbon).keys ==
          Keys{"oid:alice@example.org:c1"});
    // A different id still has its row (corrections and markers may name it).
    CHECK(identify(chat("bob@example.org/phone", "m1", "c1", "S1"), quiet).aliases ==
          Aliases{{"id:bob@example.org:m1", ""}});
    // With markers on, the marker's id (which differs from the stanza-id) is still kept.
    CHECK(identify(chat("bob@example.org/phone", "c1", "c1", "S1"), live()).aliases == Aliases{{"rid:S1", "c1"}});
}

TEST_CASE("inbound: the same message by every path gets the same key") {
    // Live with an archive id, then the same from the archive page after a reconnection.
    auto live_copy = identify(chat("bob@example.org/phone", "m1", "o1", "S1"), live());
    auto archived = identify(chat("bob@example.org/phone", "m1", "o1", "S1"), {kOwn, "", "", true, true});
    CHECK(archived.keys.front() == live_copy.keys.front());
    CHECK((archived.by_msg_id && live_copy.by_msg_id));
    CHECK(archived.conversation == live_copy.conversation);
    CHECK(archived.msg_id == live_copy.msg_id);
    // From offline storage without a stanza-id: its origin-id matches the live copy's alias.
    auto offline = identify(chat("bob@example.org/other", "m1", "o1"), live());
    CHECK(offline.keys.front() == "oid:bob@example.org:o1");
    CHECK(std::find(live_copy.keys.begin(), live_copy.keys.end(), offline.keys.front()) != live_copy.keys.end());
}

TEST_CASE("inbound: a sent carbon and our own archived message are ours, keyed by our JID") {
    auto carbon = identify(chat("alice@example.org/phone", "m7", "o7", "S7"), {kOwn, "", "sent", false, true});
    CHECK(carbon.outgoing);
    CHECK(carbon.sender == kOwn);
    // Our own ids are ours to trust: the plain id is looked up too.
    CHECK(carbon.keys == Keys{"oid:alice@example.org:o7", "id:alice@example.org:m7"});
    CHECK(carbon.by_msg_id);
    auto archived = identify(chat("alice@example.org/phone", "m7", "o7", "S7"), {kOwn, "", "", true, true});
    CHECK(archived.outgoing);
    CHECK(archived.keys == carbon.keys);
    // A received carbon is someone else's message, and a live message from our own JID (a
    // message to ourselves from another client) is not outgoing either.
    CHECK_FALSE(identify(chat("bob@example.org/x", "m8"), {kOwn, "", "received", false, true}).outgoing);
    CHECK_FALSE(identify(chat("alice@example.org/phone", "m9"), live()).outgoing);
}

TEST_CASE("inbound: in a room ids are per occupant and the archive id is the room's") {
    ReceivedMessage m = chat("room@conference.example.org/bob", "m1", "o1", "R1");
    m.type = "groupchat";
    auto id = identify(m, {kOwn, "room@conference.example.org", "", false, true});
    CHECK(id.sender == "room@conference.example.org/bob");
    CHECK(id.by_msg_id);
    CHECK(id.conversation == "room@conference.example.org");
    CHECK(id.keys == Keys{"oid:room@conference.example.org/bob:o1"});
}

TEST_CASE("inbound: a message with no conversation keeps its stanza-id as a key") {
    // Our own message from the archive with no 'to': the store files it under no
    // conversation, so its index of msg_ids cannot find it again.
    ReceivedMessage m = chat("alice@example.org/phone", "m1", "", "S1");
    m.to.clear();
    auto id = identify(m, {kOwn, "", "", true, true});
    CHECK(id.outgoing);
    CHECK(id.conversation.empty());
    CHECK_FALSE(id.by_msg_id);
    CHECK(id.keys == Keys{"sid:S1", "id:alice@example.org:m1"});
    // Without a 'from' the live copy is not outgoing and the archive's is: different
    // conversations. Both keep the stanza-id as their key, so they are one message.
    ReceivedMessage no_from = chat("", "m3", "", "S3");
    auto live_copy = identify(no_from, live());
    auto archived = identify(no_from, {kOwn, "", "", true, true});
    CHECK_FALSE(live_copy.by_msg_id);
    CHECK_FALSE(archived.by_msg_id);
    CHECK(live_copy.keys.front() == "sid:S3");
    CHECK(archived.keys.front() == "sid:S3");
    // A room's: its archive id, per room.
    ReceivedMessage g = chat("/nobody", "m2", "", "R2");
    g.type = "groupchat";
    auto in_room = identify(g, {kOwn, "room@conference.example.org", "", false, true});
    CHECK_FALSE(in_room.by_msg_id);
    CHECK(in_room.keys.front() == "rsid:room@conference.example.org:R2");
}

TEST_CASE("inbound: a groupchat stanza-id from a room we are not in is never trusted") {
    // XEP-0359 §3.2: anyone can claim a stanza-id "by" a room; outside a joined room it could
    // be made to collide with a real archive id and hide a message, or move our archive
    // position.
    ReceivedMessage m = chat("evil@example.org/x", "m1", "", "S1");
    m.type = "groupchat";
    auto id = identify(m, live());
    CHECK(id.stanza_id.empty());
    CHECK(id.msg_id == "m1");
    CHECK(id.keys == Keys{"id:evil@example.org:m1"});
}
