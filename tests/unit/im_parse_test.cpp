// protocol/im codecs, issue 5, what is parsed: chat states, corrections, markers, subject and
// nick, stanza-ids, stanza errors, carbons, roster items and versions, rooms' archives.
#include "im_fixture.hpp"

using namespace im_test;

TEST_CASE("im: chat states, corrections, markers, subject and nick are parsed") {
    // XEP-0085 Example 3, with a XEP-0172 nick added.
    auto active = parse_message(frame("<message from='bernardo@shakespeare.lit/pda' to='francisco@shakespeare.lit' type='chat'>"
                                      "<body>Who's there?</body><active xmlns='http://jabber.org/protocol/chatstates'/>"
                                      "<nick xmlns='http://jabber.org/protocol/nick'>Bernardo</nick></message>").root(),
                                own);
    REQUIRE(active);
    CHECK(active->chat_state == "active");
    CHECK(active->nick == "Bernardo");
    CHECK_FALSE(active->has_subject);
    CHECK_FALSE(active->markable);
    // XEP-0085 Example 5: a standalone notification.
    auto composing = parse_message(frame("<message from='bernardo@shakespeare.lit/pda' to='francisco@shakespeare.lit/elsinore' type='chat'>"
                                         "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>").root(),
                                   own);
    CHECK(composing->chat_state == "composing");
    CHECK(composing->body.empty());
    // Only the five states of XEP-0085 §2; the first one counts (§5.6: only one allowed).
    auto odd = parse_message(frame("<message type='chat'><typing xmlns='http://jabber.org/protocol/chatstates'/>"
                                   "<paused xmlns='http://jabber.org/protocol/chatstates'/>"
                                   "<gone xmlns='http://jabber.org/protocol/chatstates'/>"
                                   "<composing xmlns='urn:other'/></message>").root(),
                             own);
    CHECK(odd->chat_state == "paused");

    // XEP-0308 Example 4.
    auto fix = parse_message(frame("<message to='juliet@capulet.net/balcony' id='good1'>"
                                   "<body>But soft, what light through yonder window breaks?</body>"
                                   "<replace id='bad1' xmlns='urn:xmpp:message-correct:0'/></message>").root(),
                             own);
    CHECK(fix->replace_id == "bad1");
    CHECK(fix->id == "good1");

    // XEP-0333 Examples 3 and 4.
    auto markable = parse_message(frame("<message to='juliet@capulet.lit' from='romeo@montegue.lit/orchard' id='the-msg-1'>"
                                        "<body>Hi. How are you?</body><markable xmlns='urn:xmpp:chat-markers:0'/>"
                                        "<request xmlns='urn:xmpp:receipts'/></message>").root(),
                                  own);
    CHECK(markable->markable);
    CHECK(markable->receipt_requested);
    auto displayed = parse_message(frame("<message to='romeo@montegue.lit' from='juliet@capulet.let/balcony'>"
                                         "<displayed xmlns='urn:xmpp:chat-markers:0' id='the-msg-1'/></message>").root(),
                                   own);
    CHECK(displayed->displayed_id == "the-msg-1");
    CHECK_FALSE(displayed->markable);
    // In the wrong namespace, nothing.
    auto wrong = parse_message(frame("<message><displayed xmlns='urn:xmpp:chat-markers:1' id='x'/>"
                                     "<replace xmlns='urn:xmpp:message-correct:1' id='y'/><nick>n</nick></message>").root(),
                               own);
    CHECK(wrong->displayed_id.empty());
    CHECK(wrong->replace_id.empty());
    CHECK(wrong->nick.empty());

    // XEP-0045 Examples 85 and 88: a subject, and an empty one (which clears it).
    auto subject = parse_message(frame("<message from='coven@chat.shakespeare.lit/secondwitch' id='5BCE07C5' "
                                       "to='crone1@shakespeare.lit/desktop' type='groupchat'>"
                                       "<subject>Fire Burn and Cauldron Bubble!</subject></message>").root(),
                                 own);
    CHECK(subject->has_subject);
    CHECK(subject->subject == "Fire Burn and Cauldron Bubble!");
    auto cleared = parse_message(frame("<message from='coven@chat.shakespeare.lit' type='groupchat'><subject></subject></message>").root(), own);
    CHECK(cleared->has_subject);
    CHECK(cleared->subject.empty());
    CHECK(parse_message(frame("<message type='groupchat'><subject/></message>").root(), own)->has_subject);
}

TEST_CASE("im: a stanza-id is kept from our account, or in a groupchat from the room it comes from") {
    auto sid = [](std::string_view type, std::string_view from, std::string_view ids) {
        auto m = parse_message(frame("<message type='" + std::string(type) + "' from='" + std::string(from) + "'>" +
                                     std::string(ids) + "<body>x</body></message>").root(),
                               own);
        REQUIRE(m);
        return m->stanza_id;
    };
    // XEP-0333 Example 5: the room's id on a groupchat message from the room.
    CHECK(sid("groupchat", "coven@chat.shakespeare.lit/firstwitch",
              "<stanza-id xmlns='urn:xmpp:sid:0' by='coven@chat.shakespeare.lit' id='39K7ZYIp'/>") == "39K7ZYIp");
    // ... even from the room itself (a subject, history).
    CHECK(sid("groupchat", "coven@chat.shakespeare.lit",
              "<stanza-id xmlns='urn:xmpp:sid:0' by='coven@chat.shakespeare.lit' id='r1'/>") == "r1");
    // Another room's, or one an occupant made up, is not the room's.
    CHECK(sid("groupchat", "coven@chat.shakespeare.lit/firstwitch",
              "<stanza-id xmlns='urn:xmpp:sid:0' by='other@chat.shakespeare.lit' id='x'/>").empty());
    CHECK(sid("groupchat", "coven@chat.shakespeare.lit/firstwitch",
              "<stanza-id xmlns='urn:xmpp:sid:0' by='coven@chat.shakespeare.lit/firstwitch' id='x'/>").empty());
    // Not a groupchat: the sender's own stanza-id is worth nothing (XEP-0359 §6).
    CHECK(sid("chat", "bob@example.org/phone", "<stanza-id xmlns='urn:xmpp:sid:0' by='bob@example.org' id='x'/>").empty());
    CHECK(sid("normal", "coven@chat.shakespeare.lit/firstwitch",
              "<stanza-id xmlns='urn:xmpp:sid:0' by='coven@chat.shakespeare.lit' id='x'/>").empty());
    // A groupchat from an unparseable address: nothing to match.
    CHECK(sid("groupchat", "@bad/x", "<stanza-id xmlns='urn:xmpp:sid:0' by='' id='x'/>").empty());
    // Our own account's id is always good; in a room the room's comes first, in any order.
    CHECK(sid("chat", "bob@example.org/phone", "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='own'/>") == "own");
    CHECK(sid("groupchat", "coven@chat.shakespeare.lit/firstwitch",
              "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='own'/>") == "own");
    CHECK(sid("groupchat", "coven@chat.shakespeare.lit/firstwitch",
              "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='own'/>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='coven@chat.shakespeare.lit' id='room'/>") == "room");
    CHECK(sid("groupchat", "coven@chat.shakespeare.lit/firstwitch",
              "<stanza-id xmlns='urn:xmpp:sid:0' by='coven@chat.shakespeare.lit' id='room'/>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='own'/>") == "room");
    // The first of two claiming the same 'by' (XEP-0359 §3 allows only one).
    CHECK(sid("chat", "bob@example.org/phone",
              "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='1'/>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='2'/>") == "1");
}

TEST_CASE("im: stanza errors as 'condition (text)'") {
    CHECK(stanza_error(frame("<message type='error'/>").root()).empty());
    CHECK(stanza_error(frame("<iq type='error' id='1'><error type='cancel'/></iq>").root()) == "undefined-condition");
    CHECK(stanza_error(frame("<presence type='error'><error type='auth'>"
                             "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>why</text>"
                             "<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                             "<blocked xmlns='urn:xmpp:blocking:errors'/></error></presence>").root()) == "forbidden (why)");
    // XEP-0191 Example 9: the application condition does not hide the defined one.
    CHECK(stanza_error(frame("<message type='error' from='romeo@montague.net' to='juliet@capulet.com'>"
                             "<body>Can you hear me now?</body><error type='cancel'>"
                             "<not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                             "<blocked xmlns='urn:xmpp:blocking:errors'/></error></message>").root()) == "not-acceptable");
    // A message of type error always has an error, even without <error/>.
    CHECK(parse_message(frame("<message type='error'/>").root(), own)->error == "undefined-condition");
    CHECK(parse_message(frame("<message type='chat'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                              "</error></message>").root(), own)->error.empty());
}

TEST_CASE("im: carbons are parsed, and forged ones are marked") {
    const Jid romeo = Jid::parse("romeo@montague.example").value();
    // XEP-0280 Example 10.
    auto received = frame("<message xmlns='jabber:client' from='romeo@montague.example' to='romeo@montague.example/home' type='chat'>"
                          "<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
                          "<message xmlns='jabber:client' from='juliet@capulet.example/balcony' to='romeo@montague.example/garden' type='chat'>"
                          "<body>What man art thou that, thus bescreen'd in night, so stumblest on my counsel?</body>"
                          "<thread>0e3141cd80894871a68e6fe6b1ec56fa</thread></message></forwarded></received></message>");
    auto c = parse_carbon(received.root(), romeo);
    REQUIRE(c);
    CHECK(c->direction == "received");
    CHECK_FALSE(c->forged);
    REQUIRE(c->message);
    auto inner = parse_message(c->message, romeo);
    REQUIRE(inner);
    CHECK(inner->from == "juliet@capulet.example/balcony");
    CHECK(inner->body.starts_with("What man art thou"));

    // XEP-0280 Example 13.
    auto sent = frame("<message xmlns='jabber:client' from='romeo@montague.example' to='romeo@montague.example/garden' type='chat'>"
                      "<sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
                      "<message xmlns='jabber:client' to='juliet@capulet.example/balcony' from='romeo@montague.example/home' type='chat'>"
                      "<body>Neither, fair saint, if either thee dislike.</body></message></forwarded></sent></message>");
    c = parse_carbon(sent.root(), romeo);
    REQUIRE(c);
    CHECK(c->direction == "sent");
    CHECK_FALSE(c->forged);
    CHECK(parse_message(c->message, romeo)->to == "juliet@capulet.example/balcony");

    // XEP-0280 Example 11: Tybalt's impersonation attack (§11).
    auto tybalt = frame("<message xmlns='jabber:client' from='tybalt@capulet.example/home' to='romeo@montague.example' type='chat'>"
                        "<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
                        "<message xmlns='jabber:client' from='juliet@capulet.example/balcony' to='romeo@montague.example/garden' type='chat'>"
                        "<body>Thou shall meet me tonite, at our house's hall!</body></message></forwarded></received></message>");
    c = parse_carbon(tybalt.root(), romeo);
    REQUIRE(c);
    CHECK(c->forged);
    // Our own full JID, another of our resources, no 'from' at all: not the bare JID the
    // server must stamp (§7, §8), so forged as well.
    for (auto from : {" from='romeo@montague.example/home'", " from='montague.example'", ""}) {
        INFO(from);
        auto s = frame(std::string("<message") + from + "><sent xmlns='urn:xmpp:carbons:2'/></message>");
        c = parse_carbon(s.root(), romeo);
        REQUIRE(c);
        CHECK(c->forged);
        CHECK_FALSE(c->message);  // no <forwarded/>
    }
    // Not a carbon.
    CHECK_FALSE(parse_carbon(frame("<message from='romeo@montague.example'><body>x</body></message>").root(), romeo));
    CHECK_FALSE(parse_carbon(frame("<message from='romeo@montague.example'><sent xmlns='urn:xmpp:carbons:1'/></message>").root(), romeo));
    CHECK_FALSE(parse_carbon(frame("<message from='romeo@montague.example'><private xmlns='urn:xmpp:carbons:2'/></message>").root(), romeo));
    CHECK_FALSE(parse_carbon(frame("<presence from='romeo@montague.example'><sent xmlns='urn:xmpp:carbons:2'/></presence>").root(), romeo));
    // A forwarded element that is not a jabber:client message.
    auto odd = frame("<message from='romeo@montague.example'><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
                     "<message><body>x</body></message></forwarded></sent></message>");
    c = parse_carbon(odd.root(), romeo);
    REQUIRE(c);
    CHECK_FALSE(c->message);

    // XEP-0280 Example 3.
    CHECK(make_carbons_enable("enable1") == "<iq type='set' id='enable1'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
}

TEST_CASE("im: roster items ask, and the roster has a version") {
    // RFC 6121 §2.1.4 and §2.6.3.
    auto iq = frame("<iq id='bv1bs71f' to='juliet@example.com/chamber' type='result'>"
                    "<query xmlns='jabber:iq:roster' ver='ver11'>"
                    "<item jid='romeo@example.net' name='Romeo' subscription='both'><group>Friends</group></item>"
                    "<item jid='mercutio@example.com' name='Mercutio' subscription='from'/>"
                    "<item jid='benvolio@example.net' name='Benvolio' subscription='none' ask='subscribe'/>"
                    "<item jid='nurse@example.com' ask='unsubscribe'/></query></iq>");
    auto query = iq.root().first_child();
    auto items = parse_roster(query);
    REQUIRE(items.size() == 4);
    CHECK_FALSE(items[0].ask);
    CHECK(items[2].ask);
    CHECK(items[2].subscription == "none");
    CHECK_FALSE(items[3].ask);  // 'subscribe' is the only value
    CHECK(roster_version(query) == std::optional<std::string>("ver11"));
    CHECK(roster_version(frame("<iq type='result' id='1'><query xmlns='jabber:iq:roster' ver=''/></iq>").root().first_child()) ==
          std::optional<std::string>(""));
    CHECK_FALSE(roster_version(frame("<iq type='result' id='1'><query xmlns='jabber:iq:roster'/></iq>").root().first_child()));

    CHECK(make_roster_get("r1") == "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
    CHECK(make_roster_get("r1", "") == "<iq type='get' id='r1'><query xmlns='jabber:iq:roster' ver=''/></iq>");
    CHECK(make_roster_get("r1", "ver11") == "<iq type='get' id='r1'><query xmlns='jabber:iq:roster' ver='ver11'/></iq>");
    // RFC 6121 §2.3.1, §2.5.1.
    CHECK(make_roster_set("ph1", "nurse@example.com", "Nurse", {"Servants"}) ==
          "<iq type='set' id='ph1'><query xmlns='jabber:iq:roster'><item jid='nurse@example.com' name='Nurse'>"
          "<group>Servants</group></item></query></iq>");
    CHECK(make_roster_set("ph2", "nurse@example.com", "", {}) ==
          "<iq type='set' id='ph2'><query xmlns='jabber:iq:roster'><item jid='nurse@example.com'/></query></iq>");
    CHECK(make_roster_remove("hm4", "nurse@example.com") ==
          "<iq type='set' id='hm4'><query xmlns='jabber:iq:roster'><item jid='nurse@example.com' subscription='remove'/>"
          "</query></iq>");
    // What we set, we read back.
    auto set = frame(make_roster_set("x", "a@b", "A & B", {"g<1>", "g'2"}));
    auto back = parse_roster(set.root().first_child());
    REQUIRE(back.size() == 1);
    CHECK(back[0].name == "A & B");
    CHECK(back[0].groups == std::vector<std::string>{"g<1>", "g'2"});
}

TEST_CASE("im: a room's archive is trusted only from the room; page ends have first and last") {
    // XEP-0313 Example 27.
    const char* room_result =
        "<message id='iasd207' from='%s' to='hag66@shakespeare.lit/pda'>"
        "<result xmlns='urn:xmpp:mam:2' queryid='g27' id='78527-06716-51603'>"
        "<forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2002-10-13T23:58:37Z'/>"
        "<message xmlns=\"jabber:client\" from='coven@chat.shakespeare.lit/firstwitch' "
        "id='162BEBB1-F6DB-4D9A-9BD8-CFDCC801A0B2' type='groupchat'><body>Thrice the brinded cat hath mew'd.</body>"
        "<stanza-id xmlns='urn:xmpp:sid:0' by='coven@chat.shakespeare.lit' id='other'/>"
        "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='owner' jid='crone1@shakespeare.lit' role='participant'/></x>"
        "</message></forwarded></result></message>";
    const Jid hag = Jid::parse("hag66@shakespeare.lit").value();
    char buf[2048];
    auto result = [&](const char* from) {
        std::snprintf(buf, sizeof buf, room_result, from);
        return frame(buf);
    };
    auto from_room = result("coven@chat.shakespeare.lit");
    auto a = parse_mam_result(from_room.root(), hag, "coven@chat.shakespeare.lit");
    REQUIRE(a);
    CHECK(a->query_id == "g27");
    CHECK(a->message.stanza_id == "78527-06716-51603");  // the result id, not the one inside
    CHECK(a->message.type == "groupchat");
    CHECK(a->message.from == "coven@chat.shakespeare.lit/firstwitch");
    CHECK(a->message.delay_stamp == "2002-10-13T23:58:37Z");
    // The same address, written differently, is the same archive.
    CHECK(parse_mam_result(result("Coven@Chat.Shakespeare.lit").root(), hag, "coven@chat.shakespeare.lit"));
    // Not the room we queried: another room, an occupant, our own account, or no 'from'.
    CHECK_FALSE(parse_mam_result(result("other@chat.shakespeare.lit").root(), hag, "coven@chat.shakespeare.lit"));
    CHECK_FALSE(parse_mam_result(result("coven@chat.shakespeare.lit/firstwitch").root(), hag, "coven@chat.shakespeare.lit"));
    CHECK_FALSE(parse_mam_result(result("hag66@shakespeare.lit").root(), hag, "coven@chat.shakespeare.lit"));
    CHECK_FALSE(parse_mam_result(result("").root(), hag, "coven@chat.shakespeare.lit"));
    // A room's result is not from our archive.
    CHECK_FALSE(parse_mam_result(from_room.root(), hag));
    // Our archive: our bare JID, or no 'from' (the server on our account's behalf).
    CHECK(parse_mam_result(result("hag66@shakespeare.lit").root(), hag));
    CHECK(parse_mam_result(result("").root(), hag));
    CHECK(parse_mam_result(result("").root(), hag, "hag66@shakespeare.lit"));
    CHECK_FALSE(parse_mam_result(result("hag66@shakespeare.lit/pda").root(), hag));
    // No result, or a result without a forwarded jabber:client message.
    CHECK_FALSE(parse_mam_result(frame("<message from='hag66@shakespeare.lit'><body>x</body></message>").root(), hag));
    CHECK_FALSE(parse_mam_result(frame("<message><result xmlns='urn:xmpp:mam:2' id='1'><forwarded xmlns='urn:xmpp:forward:0'>"
                                       "<message><body>x</body></message></forwarded></result></message>").root(),
                                 hag));

    // XEP-0313 Example 19.
    auto fin = parse_mam_fin(frame("<iq type='result' id='q29302'><fin xmlns='urn:xmpp:mam:2'>"
                                   "<set xmlns='http://jabber.org/protocol/rsm'><first index='0'>28482-98726-73623</first>"
                                   "<last>09af3-cc343-b409f</last><count>20</count></set></fin></iq>").root());
    REQUIRE(fin);
    CHECK_FALSE(fin->complete);
    CHECK(fin->first == "28482-98726-73623");
    CHECK(fin->last == "09af3-cc343-b409f");
    // An empty page.
    auto empty = parse_mam_fin(frame("<iq type='result' id='q'><fin xmlns='urn:xmpp:mam:2' complete='1'>"
                                     "<set xmlns='http://jabber.org/protocol/rsm'><count>0</count></set></fin></iq>").root());
    REQUIRE(empty);
    CHECK(empty->complete);
    CHECK(empty->first.empty());
    CHECK(empty->last.empty());
}
