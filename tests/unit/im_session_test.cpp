// protocol/im/session: one account's messages both ways and the front-end commands, fed typed
// stanzas and commands over an in-memory store and port; what it stores, shows and sends is
// read back.
#include "im_session_fixture.hpp"

using namespace im_session_test;
using xmpp::test::frame;

TEST_CASE("session: a send is on disk before its reply, then goes out with its origin-id") {
    Fixture f;
    auto reply = f.send("bob@example.org", "hello", "c1");
    REQUIRE(reply.ok());
    CHECK(reply.msg_id == "c1");
    REQUIRE(f.store.outbox.size() == 1);
    CHECK(f.store.outbox[0].state == "sent");
    // The outgoing message and its states, in order.
    CHECK(f.port.states("c1") == std::vector<std::string>{"accepted", "sent"});
    REQUIRE(f.port.messages().size() == 1);
    CHECK(f.port.messages()[0].outgoing);
    CHECK(f.port.messages()[0].from == "alice@example.org");
    REQUIRE(f.port.sent.size() == 1);
    CHECK(f.port.sent[0].second == "c1");  // acknowledged by XEP-0198 under its msg_id
    CHECK(f.port.sent[0].first.find("<origin-id xmlns='urn:xmpp:sid:0' id='c1'/>") != std::string::npos);
    CHECK(f.port.sent[0].first.find("<active xmlns='http://jabber.org/protocol/chatstates'/>") != std::string::npos);

    // The same client_id again: the same message, nothing stored or sent twice.
    auto again = f.send("bob@example.org", "hello", "c1");
    CHECK(again.duplicate);
    CHECK(f.store.outbox.size() == 1);
    CHECK(f.port.sent.size() == 1);

    // Without a client_id the session makes one.
    CHECK(f.send("bob@example.org", "x").msg_id == "id1");
}

// Issue 15: a message that goes out at once has its outbox row written once, already
// "sent", with the events of both states; a later state is a write of its own.
TEST_CASE("session: online, a send writes its row once, as sent; a refused stanza goes with the next session") {
    Fixture f;
    REQUIRE(f.send("bob@example.org", "hi", "m1").ok());
    CHECK(f.store.state_writes == 0);
    REQUIRE(f.store.outbox.size() == 1);
    CHECK(f.store.outbox[0].state == "sent");
    REQUIRE(f.store.events.size() == 3);  // message, accepted, sent: in one enqueue, seqs in order
    CHECK(std::holds_alternative<model::Message>(f.store.events[0].body));
    CHECK(f.port.states("m1") == std::vector<std::string>{"accepted", "sent"});
    REQUIRE(f.port.sent.size() == 1);
    f.session.acked({"m1"});
    CHECK(f.store.state_writes == 1);
    CHECK(f.store.find("m1")->state == "acked");

    // Offline: accepted, and nothing else.
    f.port.is_online = false;
    REQUIRE(f.send("bob@example.org", "later", "m2").ok());
    CHECK(f.store.find("m2")->state == "accepted");
    CHECK(f.port.states("m2") == std::vector<std::string>{"accepted"});

    // A stream that refuses the stanza although the account says it is online: the states
    // do not move back, and the next session, even a resumed one (which sends nothing else
    // that is "sent"), sends it.
    f.port.is_online = true;
    f.port.refuse_sends = true;
    REQUIRE(f.send("bob@example.org", "refused", "m3").ok());
    CHECK(f.store.find("m3")->state == "sent");
    CHECK(f.port.states("m3") == std::vector<std::string>{"accepted", "sent"});
    REQUIRE(!f.port.logs.empty());
    CHECK(f.port.logs.back().find("message m3 was stored as sent but no stream took it") != std::string::npos);
    REQUIRE(f.send("bob@example.org", "taken", "m4").ok());  // refused too
    f.port.refuse_sends = false;
    REQUIRE(f.send("bob@example.org", "went", "m5").ok());
    REQUIRE(f.port.sent.size() == 2);
    f.port.sessions = 2;
    f.session.online(true, false);
    REQUIRE(f.port.sent.size() == 5);  // m1 and m5 went; now m2, m3 and m4 in queue order, not m5
    CHECK(f.port.sent[2].second == "m2");
    CHECK(f.port.sent[3].second == "m3");
    CHECK(f.port.sent[4].second == "m4");
    CHECK(f.store.find("m3")->state == "sent");
}

TEST_CASE("session: what cannot be sent is refused before anything is stored") {
    Fixture f;
    CHECK(f.send("bob@example.org", std::string(AccountSession::kMaxBodyXml / 4 + 1, '<')).error_code == "bad-request");
    model::Send s{"work", "bob@example.org", "fixed", "", "", "nothing"};
    CHECK(f.session.send(s).error_code == "bad-request");  // XEP-0308: no such message of ours
    f.store.fail = true;
    CHECK(f.send("bob@example.org", "hi").error_code == "internal");
    CHECK(f.store.outbox.empty());
    CHECK(f.port.sent.empty());
    CHECK(f.port.delivered.empty());
}

TEST_CASE("session: offline, a send waits in the outbox; the next session takes it") {
    Fixture f;
    f.port.is_online = false;
    REQUIRE(f.send("bob@example.org", "queued", "q1").ok());
    CHECK(f.port.sent.empty());
    CHECK(f.port.states("q1") == std::vector<std::string>{"accepted"});
    // cancel works only while nothing has left.
    REQUIRE(f.send("bob@example.org", "dropped", "q2").ok());
    CHECK(f.session.cancel("q2").ok());
    CHECK(f.port.states("q2") == std::vector<std::string>{"accepted", "failed"});
    CHECK(f.session.cancel("nope").error_code == "item-not-found");

    f.port.is_online = true;
    f.session.online(false, false);
    REQUIRE(f.port.sent.size() == 1);
    CHECK(f.port.sent[0].second == "q1");
    CHECK(f.session.cancel("q1").error_code == "too-late");
    f.session.acked({"q1"});
    CHECK(f.port.states("q1") == std::vector<std::string>{"accepted", "sent", "acked"});
    CHECK(f.encryption.finished_ids == std::vector<std::string>{"q2", "q1"});
}

TEST_CASE("session: sent but never acknowledged goes again on a new session, not on a resumed one") {
    Fixture f;
    REQUIRE(f.send("bob@example.org", "one", "m1").ok());
    REQUIRE(f.port.sent.size() == 1);
    // Sent on the current session while it was starting: not again when the start completes.
    f.session.online(false, false);
    CHECK(f.port.sent.size() == 1);
    // A resumed session: the stream resent it itself.
    f.port.sessions = 2;
    f.session.online(true, false);
    CHECK(f.port.sent.size() == 1);
    // A new session: again, with the same origin-id.
    f.port.sessions = 3;
    f.session.online(false, false);
    REQUIRE(f.port.sent.size() == 2);
    CHECK(f.port.sent[1].first == f.port.sent[0].first);
    // A restarted daemon's resumption does not know what the server has: again too.
    f.port.sessions = 4;
    f.session.online(true, true);
    CHECK(f.port.sent.size() == 3);
}

TEST_CASE("session: a message the server never takes fails after kMaxAttempts sessions") {
    Fixture f;
    REQUIRE(f.send("bob@example.org", "too big for this server", "big").ok());
    for (unsigned long s = 2; s <= AccountSession::kMaxAttempts + 1; ++s) {
        f.port.sessions = s;
        f.session.online(false, false);
    }
    CHECK(f.port.sent.size() == AccountSession::kMaxAttempts);
    CHECK(f.store.outbox[0].state == "failed");
    REQUIRE(f.port.states("big").back() == "failed");
    f.port.sessions = 99;
    f.session.online(false, false);
    CHECK(f.port.sent.size() == AccountSession::kMaxAttempts);  // failed is final
}

TEST_CASE("session: states move forward only, and only the recipient may move them") {
    Fixture f;
    REQUIRE(f.send("bob@example.org", "hi", "m1").ok());
    // A receipt from someone else (anyone in a room can learn our ids).
    f.receive("<message from='mallory@evil.example/x' to='alice@example.org/s' id='r0'>"
              "<received xmlns='urn:xmpp:receipts' id='m1'/></message>");
    CHECK(f.port.states("m1") == std::vector<std::string>{"accepted", "sent"});
    REQUIRE(!f.port.logs.empty());
    CHECK(f.port.logs.back().find("ignored a delivered for message m1 from mallory@evil.example/x") !=
          std::string::npos);
    f.receive("<message from='bob@example.org/phone' to='alice@example.org/s' id='r1'>"
              "<received xmlns='urn:xmpp:receipts' id='m1'/></message>");
    f.session.acked({"m1"});  // a late ack does not move it back
    f.receive("<message from='bob@example.org/phone' to='alice@example.org/s' id='r2'>"
              "<displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/></message>");
    CHECK(f.port.states("m1") == std::vector<std::string>{"accepted", "sent", "delivered", "displayed"});

    // An error from the recipient fails a message; a receipt after that changes nothing.
    REQUIRE(f.send("bob@example.org", "again", "m2").ok());
    f.receive("<message type='error' id='m2' from='bob@example.org'><error type='cancel'>"
              "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
    f.receive("<message from='bob@example.org/phone' id='r3'><received xmlns='urn:xmpp:receipts' id='m2'/></message>");
    CHECK(f.port.states("m2") == std::vector<std::string>{"accepted", "sent", "failed"});
    CHECK(f.store.find("m2")->state == "failed");
}

// Issue 15: the server acknowledges every message we send; the state of one in flight is
// known without reading the outbox, and must be the outbox's.
TEST_CASE("session: the server's ack of a message in flight reads no outbox, and agrees with it") {
    Fixture f;
    REQUIRE(f.send("bob@example.org", "hi", "m1").ok());
    int reads = f.store.outbox_reads;
    f.session.acked({"m1"});
    CHECK(f.store.outbox_reads == reads);
    CHECK(f.port.states("m1") == std::vector<std::string>{"accepted", "sent", "acked"});
    CHECK(f.store.find("m1")->state == "acked");
    f.session.acked({"m1"});  // twice: no longer in flight, the outbox says acked
    CHECK(f.port.states("m1") == std::vector<std::string>{"accepted", "sent", "acked"});

    // A receipt that came first: the message is no longer in flight; the late ack reads the
    // outbox (delivered) and changes nothing.
    REQUIRE(f.send("bob@example.org", "again", "m2").ok());
    f.receive("<message from='bob@example.org/phone' to='alice@example.org/s' id='r1'>"
              "<received xmlns='urn:xmpp:receipts' id='m2'/></message>");
    reads = f.store.outbox_reads;
    f.session.acked({"m2"});
    CHECK(f.store.outbox_reads == reads + 1);
    CHECK(f.port.states("m2") == std::vector<std::string>{"accepted", "sent", "delivered"});

    // A "sent" that could not be stored: in flight as accepted, as the outbox has it; the ack
    // then moves it on from there.
    f.port.is_online = false;
    REQUIRE(f.send("bob@example.org", "third", "m3").ok());
    f.port.is_online = true;
    f.store.fail = true;
    f.session.online(false, false);
    f.store.fail = false;
    CHECK(f.store.find("m3")->state == "accepted");
    f.session.acked({"m3"});
    CHECK(f.port.states("m3") == std::vector<std::string>{"accepted", "acked"});
    CHECK(f.store.find("m3")->state == "acked");
}

TEST_CASE("session: a state that cannot be stored is not shown") {
    Fixture f;
    REQUIRE(f.send("bob@example.org", "hi", "m1").ok());
    f.store.fail = true;
    f.session.acked({"m1"});
    CHECK(f.port.states("m1") == std::vector<std::string>{"accepted", "sent"});
    CHECK(f.port.logs.back().find("cannot record message m1 as acked") != std::string::npos);
}

TEST_CASE("session: one event per message, live or from the archive, by stanza-id and origin-id") {
    Fixture f;
    const std::string live = "<message from='bob@example.org/phone' to='alice@example.org/s' type='chat' id='b1'>"
                             "<body>hi</body><origin-id xmlns='urn:xmpp:sid:0' id='o1'/>"
                             "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='s1'/></message>";
    f.receive(live);
    REQUIRE(f.port.messages().size() == 1);
    CHECK(f.port.messages()[0].msg_id == "s1");
    CHECK(f.store.values["mam_last"] == "s1");  // live, no gap open: the position to keep
    f.receive(live);  // offline storage or a resumption hands it over again
    CHECK_FALSE(f.archived(live));  // and the archive
    CHECK(f.port.messages().size() == 1);
    CHECK(f.store.events.size() == 1);

    // Without a stanza-id, the sender's origin-id still recognises it.
    const std::string plain = "<message from='bob@example.org/laptop' type='chat' id='b2'>"
                              "<body>again?</body><origin-id xmlns='urn:xmpp:sid:0' id='o2'/></message>";
    f.receive(plain);
    f.receive(plain);
    CHECK(f.port.messages().size() == 2);
    // With no id at all a message cannot be recognised: each copy is one event.
    f.receive("<message from='bob@example.org/x' type='chat'><body>anon</body></message>");
    f.receive("<message from='bob@example.org/x' type='chat'><body>anon</body></message>");
    CHECK(f.port.messages().size() == 4);
}

TEST_CASE("session: carbons are ours, forged ones are dropped") {
    Fixture f;
    // XEP-0280 §6: a message another of our clients sent.
    f.receive("<message from='alice@example.org' to='alice@example.org/s' type='chat'>"
              "<sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
              "<message xmlns='jabber:client' from='alice@example.org/phone' to='bob@example.org' type='chat' id='p1'>"
              "<body>from my phone</body></message></forwarded></sent></message>");
    REQUIRE(f.port.messages().size() == 1);
    auto sent = f.port.messages()[0];
    CHECK(sent.outgoing);
    CHECK(sent.carbon == "sent");
    CHECK(sent.from == "alice@example.org/phone");
    CHECK(sent.to == "bob@example.org");
    // §11: a carbon wrapper not from our own account is a forgery.
    f.receive("<message from='mallory@evil.example' to='alice@example.org/s' type='chat'>"
              "<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
              "<message xmlns='jabber:client' from='bob@example.org/x' to='alice@example.org' type='chat' id='f1'>"
              "<body>trust me</body></message></forwarded></received></message>");
    CHECK(f.port.messages().size() == 1);
    CHECK(f.port.logs.back() == "account work: dropped a forged carbon from mallory@evil.example");
    // Our own message echoed back by the archive: the outgoing event we stored, not a new one.
    REQUIRE(f.send("bob@example.org", "mine", "own1").ok());
    CHECK_FALSE(f.archived("<message from='alice@example.org/s' to='bob@example.org' type='chat' id='own1'>"
                           "<body>mine</body><origin-id xmlns='urn:xmpp:sid:0' id='own1'/></message>"));
    CHECK(f.port.messages().size() == 2);
}

TEST_CASE("session: receipts only to those who see our presence, never to rooms") {
    Fixture f;
    f.session.roster({{"bob@example.org", "", "from", {}, false}, {"stranger@example.org", "", "to", {}, false}}, false,
                     std::nullopt);
    f.session.join("room@muc.example.org", "alice", "", [](model::Reply) {});
    f.port.sent.clear();
    const auto request = [&](const std::string& from, const std::string& id) {
        f.receive("<message from='" + from + "' type='chat' id='" + id + "'><body>x</body>"
                  "<request xmlns='urn:xmpp:receipts'/></message>");
    };
    request("bob@example.org/phone", "q1");
    request("stranger@example.org/x", "q2");       // XEP-0184 §8: no presence leak
    request("room@muc.example.org/nick", "q3");    // a room's occupant
    REQUIRE(f.port.sent.size() == 1);
    CHECK(f.port.sent[0].first.find("<received xmlns='urn:xmpp:receipts' id='q1'/>") != std::string::npos);
    CHECK(f.port.sent[0].first.find("to='bob@example.org/phone'") != std::string::npos);
}

TEST_CASE("session: chat states stop after a reply without them (XEP-0085 5.1)") {
    Fixture f;
    f.receive("<message from='bob@example.org/x' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    REQUIRE(f.port.transients.size() == 1);  // for live front ends only
    CHECK(std::get<model::ChatState>(f.port.transients[0]).state == "composing");
    CHECK(f.store.events.empty());
    CHECK(f.session.chat_states().wanted("bob@example.org"));
    f.receive("<message from='bob@example.org/x' type='chat' id='b1'><body>plain reply</body></message>");
    CHECK_FALSE(f.session.chat_states().wanted("bob@example.org"));
    REQUIRE(f.send("bob@example.org", "next", "n1").ok());
    CHECK(f.port.sent.back().first.find("chatstates") == std::string::npos);
}

TEST_CASE("session: our chat messages are markable only when we send markers ourselves (XEP-0333 4.1)") {
    Fixture f;
    const std::string markable = "<markable xmlns='urn:xmpp:chat-markers:0'/>";
    f.port.markers = false;
    REQUIRE(f.send("bob@example.org", "unmarked", "u1").ok());
    CHECK(f.port.sent.back().first.find(markable) == std::string::npos);
    // The contact's marker for it counts all the same.
    f.receive("<message from='bob@example.org/x' type='chat' id='d1'>"
              "<displayed xmlns='urn:xmpp:chat-markers:0' id='u1'/></message>");
    CHECK(f.port.states("u1").back() == "displayed");
    f.port.markers = true;
    REQUIRE(f.send("bob@example.org", "marked", "m1").ok());
    CHECK(f.port.sent.back().first.find(markable) != std::string::npos);
}

TEST_CASE("session: a correction points at the message it corrects, by its msg_id") {
    Fixture f;
    f.receive("<message from='bob@example.org/x' type='chat' id='b1'><body>teh</body>"
              "<origin-id xmlns='urn:xmpp:sid:0' id='o1'/>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='s1'/></message>");
    f.receive("<message from='bob@example.org/x' type='chat' id='b2'><body>the</body>"
              "<replace xmlns='urn:xmpp:message-correct:0' id='o1'/></message>");
    auto msgs = f.port.messages();
    REQUIRE(msgs.size() == 2);
    CHECK(msgs[1].replaces == "s1");  // the stanza-id front ends know it by
    // Nobody's message: the id stays as it came.
    f.receive("<message from='bob@example.org/x' type='chat' id='b3'><body>?</body>"
              "<replace xmlns='urn:xmpp:message-correct:0' id='unknown'/></message>");
    CHECK(f.port.messages().back().replaces == "unknown");
}

TEST_CASE("session: a message whose id is its origin-id is one event, and corrections by that id find it") {
    // What Conversations, Dino and Gajim send: the same value as id and origin-id. Its
    // stanza-id is its msg_id, found among bob's messages; the origin-id is its one row
    // (markers off: no marker will need the id).
    Fixture f;
    f.port.markers = false;
    f.receive("<message from='bob@example.org/x' type='chat' id='c1'><body>teh</body>"
              "<origin-id xmlns='urn:xmpp:sid:0' id='c1'/>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='s1'/></message>");
    std::string keys;
    for (const auto& [k, v] : f.store.keys) keys += k + " ";
    CHECK(keys == "oid:bob@example.org:c1 ");
    CHECK(f.store.inbound("oid:bob@example.org:c1").has_value());
    // The same again (a resend after resumption) is found by its stanza-id.
    f.receive("<message from='bob@example.org/x' type='chat' id='c1'><body>teh</body>"
              "<origin-id xmlns='urn:xmpp:sid:0' id='c1'/>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='s1'/></message>");
    REQUIRE(f.port.messages().size() == 1);
    // The same message again from offline storage (no stanza-id) is not shown twice.
    f.receive("<message from='bob@example.org/y' type='chat' id='c1'><body>teh</body>"
              "<origin-id xmlns='urn:xmpp:sid:0' id='c1'/></message>");
    REQUIRE(f.port.messages().size() == 1);
    // A correction names the id (XEP-0308 §4): it points at the stanza-id front ends know.
    f.receive("<message from='bob@example.org/x' type='chat' id='c2'><body>the</body>"
              "<origin-id xmlns='urn:xmpp:sid:0' id='c2'/>"
              "<replace xmlns='urn:xmpp:message-correct:0' id='c1'/></message>");
    auto msgs = f.port.messages();
    REQUIRE(msgs.size() == 2);
    CHECK(msgs[1].replaces == "s1");
}

TEST_CASE("session: a stanza-id finds the copies of its message, and only them") {
    Fixture f;
    f.port.markers = false;
    // Only a stanza-id: no row of its own; the resent copy is found by it all the same.
    const std::string only_sid = "<message from='bob@example.org/x' type='chat'><body>one</body>"
                                 "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='s1'/></message>";
    f.receive(only_sid);
    CHECK(f.store.keys.empty());
    f.receive(only_sid);
    REQUIRE(f.port.messages().size() == 1);
    // A stanza-id that is another message's msg_id in the same conversation is no copy:
    // ours (a front end chose the client_id), or bob's own id where no stanza-id came.
    REQUIRE(f.send("bob@example.org", "mine", "s2").ok());
    f.receive("<message from='bob@example.org/x' type='chat'><body>two</body>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='s2'/></message>");
    f.receive("<message from='bob@example.org/x' type='chat' id='s3'><body>three</body></message>");
    f.receive("<message from='bob@example.org/x' type='chat'><body>four</body>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='s3'/></message>");
    std::vector<std::string> bodies;
    for (const auto& m : f.port.messages()) bodies.push_back(m.body);
    CHECK(bodies == std::vector<std::string>{"one", "mine", "two", "three", "four"});
}

TEST_CASE("session: an encrypted message is decrypted once, stored with the session state it moved") {
    Fixture f;
    const std::string xml = "<message from='bob@example.org/x' type='chat' id='e1'>"
                            "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='7'><key rid='1'>AAAA</key><iv>AAAAAAAAAAAAAAAA</iv></header><payload>AAAA</payload>"
                            "</encrypted><body>fallback</body><origin-id xmlns='urn:xmpp:sid:0' id='eo1'/></message>";
    f.receive(xml);
    f.receive(xml);  // seen before: not decrypted again (its message key is spent)
    REQUIRE(f.port.messages().size() == 1);
    CHECK(f.port.messages()[0].body == "decrypted");
    CHECK(f.port.messages()[0].encryption == "omemo");
    CHECK(f.encryption.decrypted_stored == std::vector<bool>{true});
    CHECK(f.store.values["omemo:session"] == "moved");
    // When the store fails, the device hears it was not stored (its changes are dropped).
    f.store.fail = true;
    f.receive("<message from='bob@example.org/x' type='chat' id='e2'>"
              "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='7'><key rid='1'>AAAA</key><iv>AAAAAAAAAAAAAAAA</iv></header><payload>AAAA</payload>"
              "</encrypted><origin-id xmlns='urn:xmpp:sid:0' id='eo2'/></message>");
    CHECK(f.encryption.decrypted_stored == std::vector<bool>{true, false});
}

TEST_CASE("session: before encryption is set, an encrypted message shows no fallback and sends go in clear") {
    MemoryStore store;
    RecordingPort port;
    AccountSession session{"work", alice, store, port};  // no set_encryption()
    auto stanza = frame("<message from='bob@example.org/x' type='chat' id='e1'>"
                        "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='7'><key rid='1'>AAAA</key>"
                        "<iv>AAAAAAAAAAAAAAAA</iv></header><payload>AAAA</payload></encrypted>"
                        "<body>fallback</body></message>");
    auto m = parse_message(stanza.root(), alice);
    REQUIRE(m);
    session.message(*m);
    REQUIRE(port.messages().size() == 1);
    CHECK(port.messages()[0].body.empty());  // XEP-0384 §4.5: the fallback is never shown
    CHECK(port.messages()[0].encryption == "omemo");
    CHECK_FALSE(port.messages()[0].error.empty());

    model::Send s;
    s.account = "work";
    s.to = "bob@example.org";
    s.body = "hello";
    REQUIRE(session.send(s).ok());
    REQUIRE(port.sent.size() == 1);
    CHECK(port.sent[0].first.find("<body>hello</body>") != std::string::npos);
}


TEST_CASE("session: front-end commands answer once, with what the account can do now") {
    Fixture f;
    std::vector<model::Reply> replies;
    auto respond = [&](model::Reply r) { replies.push_back(std::move(r)); };
    // XEP-0333: the displayed marker carries the id the sender gave its message (the "rid:" alias).
    f.receive("<message from='bob@example.org/x' type='chat' id='b-own-id'><body>read me</body>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='s1'/></message>");
    f.session.handle(model::Displayed{"work", "bob@example.org", "s1"}, respond);
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].sent);
    CHECK(f.port.sent.back().first.find("<displayed xmlns='urn:xmpp:chat-markers:0' id='b-own-id'/>") !=
          std::string::npos);
    // Without the user's consent, nothing is sent.
    f.port.markers = false;
    auto sent = f.port.sent.size();
    f.session.handle(model::Displayed{"work", "bob@example.org", "s1"}, respond);
    CHECK_FALSE(replies.back().sent);
    CHECK(f.port.sent.size() == sent);

    // Read markers move forward only, and never past now.
    f.session.handle(model::SetReadMarker{"work", "bob@example.org", "2026-12-06T10:00:00Z"}, respond);
    CHECK(replies.back().stamp == "2026-12-06T10:00:00.000Z");
    f.session.handle(model::SetReadMarker{"work", "bob@example.org", "2026-12-06T09:00:00Z"}, respond);
    CHECK(replies.back().stamp == "2026-12-06T10:00:00.000Z");
    f.session.handle(model::SetReadMarker{"work", "bob@example.org", "2030-01-01T00:00:00Z"}, respond);
    CHECK(replies.back().stamp == "2026-12-06T12:00:00.000Z");
    f.session.handle(model::SetReadMarker{"work", "bob@example.org", "yesterday"}, respond);
    CHECK(replies.back().error_code == "bad-request");

    // The stored conversation, around a message.
    model::StoredMessages stored;
    stored.account = "work";
    stored.peer = "bob@example.org";
    stored.around_msg_id = "s1";
    stored.limit = 10;
    f.session.handle(stored, respond);
    REQUIRE(replies.back().ok());
    CHECK(replies.back().cursor == 1);
    REQUIRE(replies.back().messages.size() == 1);

    // Offline: what needs the server says so, with the account's state.
    f.port.is_online = false;
    f.session.handle(model::Join{"work", "room@muc.example.org", "", ""}, respond);
    CHECK(replies.back().error_code == "not-online");
    CHECK(replies.back().error_message == "account work is disconnected");
    f.session.handle(model::SendChatState{"work", "bob@example.org", "composing"}, respond);
    CHECK(replies.back().error_code == "not-online");
    f.session.handle(model::Kick{"work", "room@muc.example.org", "bob", ""}, respond);
    CHECK(replies.back().error_code == "not-joined");
    // Without an archive on the server, history comes from the store ("local").
    f.port.caps.known = true;
    f.port.caps.archive = false;
    model::History h;
    h.account = "work";
    h.with = "bob@example.org";
    h.max = 5;
    f.session.handle(h, respond);
    CHECK(replies.back().source == "local");
    CHECK(replies.back().complete);
    REQUIRE(replies.back().messages.size() == 1);
    CHECK(std::get<model::Message>(replies.back().messages[0].body).history);
    // Our presence is kept for the next session even offline.
    f.session.handle(model::SetPresence{"work", "away", "lunch", std::nullopt}, respond);
    CHECK(replies.back().ok());
    CHECK(f.port.presence_show == "away");
    CHECK(replies.size() == 12);  // one answer per command
}

