#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>

#include "protocol/im.hpp"
#include "protocol/stream.hpp"
#include "protocol/xml_framer.hpp"
#include "stanza_helpers.hpp"

using namespace xmpp;

namespace {

using test::frame;

const Jid own = Jid::parse("alice@example.org").value();

}  // namespace

TEST_CASE("im: a received message with ids and delay") {
    auto s = frame("<message from='bob@example.org/phone' to='alice@example.org/stanzad' type='chat' id='b1'>"
                   "<body>hi &amp; bye</body><origin-id xmlns='urn:xmpp:sid:0' id='o1'/>"
                   "<stanza-id xmlns='urn:xmpp:sid:0' by='mallory@example.org' id='fake'/>"
                   "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='s1'/>"
                   "<delay xmlns='urn:xmpp:delay' from='example.org' stamp='2026-11-25T10:00:00Z'/></message>");
    auto m = parse_message(s.root(), own);
    REQUIRE(m);
    CHECK(m->from == "bob@example.org/phone");
    CHECK(m->type == "chat");
    CHECK(m->body == "hi & bye");
    CHECK(m->id == "b1");
    CHECK(m->origin_id == "o1");
    CHECK(m->stanza_id == "s1");  // XEP-0359 section 3.2: only 'by' our own account
    CHECK(m->delay_stamp == "2026-11-25T10:00:00Z");
    CHECK(m->error.empty());
    CHECK(parse_message(frame("<message/>").root(), own)->type == "normal");
    CHECK_FALSE(parse_message(frame("<presence/>").root(), own));
    CHECK_FALSE(parse_message(frame("<message xmlns='urn:other'/>").root(), own));
}

TEST_CASE("im: an error message carries its condition and text") {
    auto m = parse_message(frame("<message type='error' id='x' from='bob@example.org'><error type='cancel'>"
                                 "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                                 "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>offline</text></error></message>")
                               .root(),
                           own);
    REQUIRE(m);
    CHECK(m->error == "service-unavailable (offline)");
}

TEST_CASE("im: presence and roster") {
    auto p = parse_presence(frame("<presence from='bob@example.org/phone'><show>away</show><status>lunch</status></presence>").root());
    REQUIRE(p);
    CHECK(p->type.empty());
    CHECK(p->show == "away");
    CHECK(p->status == "lunch");
    CHECK(parse_presence(frame("<presence type='subscribe' from='carol@example.org'/>").root())->type == "subscribe");

    auto iq = frame("<iq type='result' id='r1'><query xmlns='jabber:iq:roster' ver='1'>"
                    "<item jid='Bob@Example.org' name='Bob' subscription='both'><group>Friends</group><group>Work</group></item>"
                    "<item jid='@bad'/><item jid='carol@example.org'/></query></iq>");
    auto items = parse_roster(iq.root().first_child());
    REQUIRE(items.size() == 2);
    CHECK(items[0].jid == "bob@example.org");
    CHECK(items[0].groups == std::vector<std::string>{"Friends", "Work"});
    CHECK(items[1].subscription == "none");
}

TEST_CASE("im: outgoing stanzas are escaped and carry the origin-id") {
    // Chat messages also say they are markable (XEP-0333) and that we are active (XEP-0085).
    CHECK(make_message("bob@example.org", "chat", "a<b & 'c'", "id'1") ==
          "<message to='bob@example.org' type='chat' id='id&apos;1'><body>a&lt;b &amp; &apos;c&apos;</body>"
          "<origin-id xmlns='urn:xmpp:sid:0' id='id&apos;1'/><request xmlns='urn:xmpp:receipts'/>"
          "<markable xmlns='urn:xmpp:chat-markers:0'/><active xmlns='http://jabber.org/protocol/chatstates'/>"
          "</message>");
    CHECK(make_message("room@muc.example.org", "groupchat", "x", "i") ==
          "<message to='room@muc.example.org' type='groupchat' id='i'><body>x</body>"
          "<origin-id xmlns='urn:xmpp:sid:0' id='i'/></message>");
    CHECK(make_presence("", "") == "<presence/>");
    CHECK(make_presence("away", "x<y") == "<presence><show>away</show><status>x&lt;y</status></presence>");
    CHECK(make_subscription("carol@example.org", "subscribed") == "<presence to='carol@example.org' type='subscribed'/>");
    // What we build, the framer accepts.
    CHECK(check_raw_stanza(make_message("b@c", "chat", "<&>", "i")).ok());
}

TEST_CASE("im: raw stanzas from front ends are checked") {
    CHECK(check_raw_stanza("<message to='b@c'><body>x</body></message>").ok());
    CHECK(check_raw_stanza("  <iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>\n").ok());
    for (auto bad : {"", "text", "<message>", "<message/><message/>", "<foo/>", "<message xmlns='urn:x'/>",
                     "<message/></stream:stream>", "<message><!-- x --></message>", "<message>&nbsp;</message>",
                     "<stream:features/>", "<message/><"}) {
        INFO(bad);
        auto st = check_raw_stanza(bad);
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().code == "bad-xml");
    }
}

TEST_CASE("im: receipts, and archive results trusted only from our own archive") {
    auto r = parse_message(frame("<message from='bob@example.org/phone' id='r1'><received xmlns='urn:xmpp:receipts' id='m1'/></message>").root(), own);
    REQUIRE(r);
    CHECK(r->receipt_for == "m1");
    CHECK(r->body.empty());

    const char* result =
        "<message from='%s' to='alice@example.org/stanzad'><result xmlns='urn:xmpp:mam:2' queryid='q1' id='A7'>"
        "<forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2026-11-25T10:00:00Z'/>"
        "<message xmlns='jabber:client' from='bob@example.org/phone' to='alice@example.org' type='chat' id='b9'>"
        "<body>old</body></message></forwarded></result></message>";
    char buf[1024];
    std::snprintf(buf, sizeof buf, result, "alice@example.org");
    auto a = parse_mam_result(frame(buf).root(), own);
    REQUIRE(a);
    CHECK(a->query_id == "q1");
    CHECK(a->message.stanza_id == "A7");
    CHECK(a->message.body == "old");
    CHECK(a->message.from == "bob@example.org/phone");
    CHECK(a->message.delay_stamp == "2026-11-25T10:00:00Z");
    std::snprintf(buf, sizeof buf, result, "mallory@example.org");
    CHECK_FALSE(parse_mam_result(frame(buf).root(), own));

    auto fin = parse_mam_fin(frame("<iq type='result' id='q'><fin xmlns='urn:xmpp:mam:2' complete='true'>"
                                   "<set xmlns='http://jabber.org/protocol/rsm'><first>A1</first><last>A7</last></set>"
                                   "</fin></iq>").root());
    REQUIRE(fin);
    CHECK(fin->complete);
    CHECK(fin->last == "A7");
    CHECK_FALSE(parse_mam_fin(frame("<iq type='result' id='q'/>").root()));

    auto q = make_mam_query("mam1", "q1", "A7", "2026-01-01T00:00:00Z", 50);
    CHECK(check_raw_stanza(q).ok());
    CHECK(q.find("<after>A7</after>") != std::string::npos);
    CHECK(q.find("var='start'") == std::string::npos);  // after wins over start
    auto q2 = make_mam_query("mam2", "q2", "", "2026-01-01T00:00:00Z", 50);
    CHECK(q2.find("<field var='start'><value>2026-01-01T00:00:00Z</value></field>") != std::string::npos);
}

// ---------------------------------------------------------------------------------------
// Issue 5: states, corrections, markers, carbons, rooms' stanza-ids, roster versioning,
// archives of rooms, blocking, caps, vCard.

namespace {

// A string that needs every XML escape, for the builders.
constexpr std::string_view nasty = "a'b\"c<d>e&f";

}  // namespace

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

TEST_CASE("im: archive queries with 'to', 'with', start and both RSM directions") {
    // The old form is unchanged.
    CHECK(make_mam_query("mam1", "q1", "A7", "2026-01-01T00:00:00Z", 50) ==
          "<iq type='set' id='mam1'><query xmlns='urn:xmpp:mam:2' queryid='q1'><x xmlns='jabber:x:data' type='submit'>"
          "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field></x>"
          "<set xmlns='http://jabber.org/protocol/rsm'><max>50</max><after>A7</after></set></query></iq>");

    MamQuery q;
    q.query_id = "f27";
    q.with = "juliet@capulet.lit";
    q.start = "2010-08-07T00:00:00Z";
    q.max = 10;
    // XEP-0313 Examples 6 and 18, together.
    CHECK(make_mam_query("q29302", q) ==
          "<iq type='set' id='q29302'><query xmlns='urn:xmpp:mam:2' queryid='f27'><x xmlns='jabber:x:data' type='submit'>"
          "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
          "<field var='with'><value>juliet@capulet.lit</value></field>"
          "<field var='start'><value>2010-08-07T00:00:00Z</value></field></x>"
          "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max></set></query></iq>");
    // A room's archive, the last page (XEP-0313 Example 23: an empty <before/>).
    MamQuery room;
    room.to = "coven@chat.shakespeare.lit";
    room.before = "";
    auto last = make_mam_query("r1", room);
    CHECK(last ==
          "<iq type='set' to='coven@chat.shakespeare.lit' id='r1'><query xmlns='urn:xmpp:mam:2'>"
          "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
          "</x><set xmlns='http://jabber.org/protocol/rsm'><max>50</max><before/></set></query></iq>");
    CHECK(check_raw_stanza(last).ok());
    // The page before a known id, and the page after one.
    room.before = "09af3-cc343-b409f";
    CHECK(make_mam_query("r2", room).find("<max>50</max><before>09af3-cc343-b409f</before></set>") != std::string::npos);
    room.before.reset();
    room.after = "A1";
    auto after = make_mam_query("r3", room);
    CHECK(after.find("<after>A1</after></set>") != std::string::npos);
    CHECK(after.find("<before") == std::string::npos);
    CHECK(after.find("var='start'") == std::string::npos);
    CHECK(after.find("var='with'") == std::string::npos);
    // Everything escaped.
    MamQuery bad;
    bad.to = bad.query_id = bad.with = bad.start = bad.after = std::string(nasty);
    bad.before = std::string(nasty);
    auto escaped = make_mam_query(nasty, bad);
    CHECK(check_raw_stanza(escaped).ok());
    auto parsed = frame(escaped);
    CHECK(std::string(parsed.root().attribute("to").value()) == nasty);
    CHECK(std::string(parsed.root().attribute("id").value()) == nasty);
    CHECK(std::string(parsed.root().first_child().attribute("queryid").value()) == nasty);
}

TEST_CASE("im: outgoing messages with receipts, markers, states and corrections") {
    OutgoingMessage m;
    m.to = "juliet@capulet.net/balcony";
    m.body = "But soft, what light through yonder window breaks?";
    m.id = "good1";
    m.replace_id = "bad1";
    CHECK(make_message(m) ==
          "<message to='juliet@capulet.net/balcony' type='chat' id='good1'>"
          "<body>But soft, what light through yonder window breaks?</body><origin-id xmlns='urn:xmpp:sid:0' id='good1'/>"
          "<replace xmlns='urn:xmpp:message-correct:0' id='bad1'/><request xmlns='urn:xmpp:receipts'/>"
          "<markable xmlns='urn:xmpp:chat-markers:0'/><active xmlns='http://jabber.org/protocol/chatstates'/></message>");
    // What it says, parse_message reads.
    auto back = parse_message(frame(make_message(m)).root(), own);
    CHECK(back->replace_id == "bad1");
    CHECK(back->origin_id == "good1");
    CHECK(back->receipt_requested);
    CHECK(back->markable);
    CHECK(back->chat_state == "active");

    m.request_receipt = false;
    m.markable = false;
    m.chat_state = "";
    m.replace_id = "";
    CHECK(make_message(m) ==
          "<message to='juliet@capulet.net/balcony' type='chat' id='good1'>"
          "<body>But soft, what light through yonder window breaks?</body><origin-id xmlns='urn:xmpp:sid:0' id='good1'/>"
          "</message>");
    // Only a known chat state becomes an element.
    m.chat_state = "x/><evil";
    CHECK(make_message(m).find("evil") == std::string::npos);
    // A correction in a room: no receipt, marker or state; the <replace/> stays.
    OutgoingMessage g;
    g.to = "coven@chat.shakespeare.lit";
    g.type = "groupchat";
    g.body = "fixed";
    g.id = "g2";
    g.replace_id = "g1";
    CHECK(make_message(g) ==
          "<message to='coven@chat.shakespeare.lit' type='groupchat' id='g2'><body>fixed</body>"
          "<origin-id xmlns='urn:xmpp:sid:0' id='g2'/><replace xmlns='urn:xmpp:message-correct:0' id='g1'/></message>");
    // Without a type (normal), id or body, the attributes and elements are left out.
    OutgoingMessage bare;
    bare.to = "a@b";
    bare.type = "";
    CHECK(make_message(bare) == "<message to='a@b'></message>");
    // Escaped everywhere.
    OutgoingMessage e;
    e.to = e.body = e.id = e.replace_id = std::string(nasty);
    auto escaped = make_message(e);
    CHECK(check_raw_stanza(escaped).ok());
    auto p = parse_message(frame(escaped).root(), own);
    CHECK(p->to == nasty);
    CHECK(p->body == nasty);
    CHECK(p->id == nasty);
    CHECK(p->origin_id == nasty);
    CHECK(p->replace_id == nasty);
}

TEST_CASE("im: receipts, chat states, displayed markers and direct invitations") {
    // XEP-0184 Example 4: nothing but <received/>.
    CHECK(make_receipt("northumberland@shakespeare.lit/westminster", "richard2-4.1.247", "bi29sg183b4v") ==
          "<message to='northumberland@shakespeare.lit/westminster' id='bi29sg183b4v'>"
          "<received xmlns='urn:xmpp:receipts' id='richard2-4.1.247'/></message>");
    auto r = parse_message(frame(make_receipt(nasty, nasty, nasty)).root(), own);
    CHECK(r->receipt_for == nasty);
    CHECK_FALSE(r->receipt_requested);  // XEP-0184 §5.4

    // XEP-0085 Example 5, with the XEP-0334 no-store hint.
    CHECK(make_chat_state("francisco@shakespeare.lit/elsinore", "chat", "composing") ==
          "<message to='francisco@shakespeare.lit/elsinore' type='chat'>"
          "<composing xmlns='http://jabber.org/protocol/chatstates'/><no-store xmlns='urn:xmpp:hints'/></message>");
    for (auto state : {"active", "composing", "paused", "inactive", "gone"})
        CHECK(parse_message(frame(make_chat_state(nasty, "chat", state)).root(), own)->chat_state == state);
    CHECK(make_chat_state("a@b", "chat", "typing").empty());
    CHECK(make_chat_state("a@b", "chat", "").empty());
    CHECK(make_chat_state("a@b", "chat", "gone/><body>x</body><gone").empty());

    // XEP-0333 Example 4 (with an id and a type), and Example 6 in a room.
    CHECK(make_displayed("romeo@montegue.lit", "chat", "the-msg-1", "d1") ==
          "<message to='romeo@montegue.lit' type='chat' id='d1'><displayed xmlns='urn:xmpp:chat-markers:0' id='the-msg-1'/>"
          "<store xmlns='urn:xmpp:hints'/></message>");
    CHECK(make_displayed("coven@chat.shakespeare.lit", "groupchat", "39K7ZYIp", "") ==
          "<message to='coven@chat.shakespeare.lit' type='groupchat'><displayed xmlns='urn:xmpp:chat-markers:0' id='39K7ZYIp'/>"
          "<store xmlns='urn:xmpp:hints'/></message>");
    CHECK(parse_message(frame(make_displayed(nasty, "chat", nasty, nasty)).root(), own)->displayed_id == nasty);

    // XEP-0249 Example 1.
    CHECK(make_direct_invite("hecate@shakespeare.lit", "darkcave@macbeth.shakespeare.lit",
                             "Hey Hecate, this is the place for all good witches!", "cauldronburn") ==
          "<message to='hecate@shakespeare.lit'><x xmlns='jabber:x:conference' jid='darkcave@macbeth.shakespeare.lit' "
          "password='cauldronburn' reason='Hey Hecate, this is the place for all good witches!'/></message>");
    CHECK(make_direct_invite("hecate@shakespeare.lit", "darkcave@macbeth.shakespeare.lit", "", "") ==
          "<message to='hecate@shakespeare.lit'><x xmlns='jabber:x:conference' jid='darkcave@macbeth.shakespeare.lit'/></message>");

    for (const auto& xml : {make_receipt(nasty, nasty, nasty), make_chat_state(nasty, nasty, "paused"),
                            make_displayed(nasty, nasty, nasty, nasty), make_direct_invite(nasty, nasty, nasty, nasty)}) {
        INFO(xml);
        CHECK(check_raw_stanza(xml).ok());
    }
}

TEST_CASE("im: presence with extra payload, subscriptions") {
    CHECK(make_presence("", "", 0, "") == "<presence/>");
    CHECK(make_presence("", "", 0, "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/>") ==
          "<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>");
    CHECK(make_presence("dnd", "busy", 5) ==
          "<presence><show>dnd</show><status>busy</status><priority>5</priority></presence>");
    CHECK(make_presence("", "", -1) == "<presence><priority>-1</priority></presence>");  // 0 is left out (above)
    CHECK(check_raw_stanza(make_presence(nasty, nasty, -128, make_caps(nasty, nasty))).ok());
    CHECK(make_subscription("carol@example.org", "unsubscribe") == "<presence to='carol@example.org' type='unsubscribe'/>");
    CHECK(check_raw_stanza(make_subscription(nasty, nasty)).ok());
}

TEST_CASE("im: blocking commands and the items of a block list") {
    // XEP-0191 Examples 3, 6, 10 and 13.
    CHECK(make_blocklist_get("blocklist1") == "<iq type='get' id='blocklist1'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
    CHECK(make_block("block1", {"romeo@montague.net"}) ==
          "<iq type='set' id='block1'><block xmlns='urn:xmpp:blocking'><item jid='romeo@montague.net'/></block></iq>");
    CHECK(make_unblock("unblock1", {"romeo@montague.net"}) ==
          "<iq type='set' id='unblock1'><unblock xmlns='urn:xmpp:blocking'><item jid='romeo@montague.net'/></unblock></iq>");
    CHECK(make_unblock("unblock2", {}) == "<iq type='set' id='unblock2'><unblock xmlns='urn:xmpp:blocking'/></iq>");
    CHECK(make_block("b", {"a@b", "c@d/e"}).find("<item jid='a@b'/><item jid='c@d/e'/>") != std::string::npos);

    // XEP-0191 Example 4, plus items that are not JIDs and one in another namespace.
    auto list = frame("<iq type='result' id='blocklist1'><blocklist xmlns='urn:xmpp:blocking'>"
                      "<item jid='romeo@montague.net'/><item jid='Iago@Shakespeare.lit'/><item jid='@bad'/><item/>"
                      "<item xmlns='urn:other' jid='x@y'/><item jid='spammer.example/res'/></blocklist></iq>");
    CHECK(parse_block_items(list.root().first_child()) ==
          std::vector<std::string>{"romeo@montague.net", "iago@shakespeare.lit", "spammer.example/res"});
    // Examples 5 and 15: an empty list, and "unblock all".
    CHECK(parse_block_items(frame("<iq type='result' id='b'><blocklist xmlns='urn:xmpp:blocking'/></iq>").root().first_child()).empty());
    CHECK(parse_block_items(frame("<iq to='juliet@capulet.com/chamber' type='set' id='push5'>"
                                  "<unblock xmlns='urn:xmpp:blocking'/></iq>").root().first_child()).empty());
    // Example 8: a push.
    CHECK(parse_block_items(frame("<iq to='juliet@capulet.com/chamber' type='set' id='push1'><block xmlns='urn:xmpp:blocking'>"
                                  "<item jid='romeo@montague.net'/></block></iq>").root().first_child()) ==
          std::vector<std::string>{"romeo@montague.net"});
    // What we send, a push can say back.
    auto round = frame(make_block("x", {"a@b.c"}));
    CHECK(parse_block_items(round.root().first_child()) == std::vector<std::string>{"a@b.c"});
    for (const auto& xml : {make_blocklist_get(nasty), make_block(nasty, {std::string(nasty)}),
                            make_unblock(nasty, {std::string(nasty)}), make_unblock(nasty, {})}) {
        INFO(xml);
        CHECK(check_raw_stanza(xml).ok());
    }
}

TEST_CASE("im: XEP-0115 verification string, checked against the simple example of §5.2") {
    const std::vector<std::string> exodus = {"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items",
                                             "http://jabber.org/protocol/muc", "http://jabber.org/protocol/caps"};
    CHECK(caps_verification("client", "pc", "Exodus 0.9.1", exodus) == "QgayPKawpkPSDYmwT/WM94uAlu0=");
    // The order features come in does not matter; duplicates count once.
    auto shuffled = exodus;
    std::reverse(shuffled.begin(), shuffled.end());
    shuffled.push_back("http://jabber.org/protocol/muc");
    CHECK(caps_verification("client", "pc", "Exodus 0.9.1", shuffled) == "QgayPKawpkPSDYmwT/WM94uAlu0=");
    // Anything else changes it.
    CHECK(caps_verification("client", "pc", "Exodus 0.9.2", exodus) != "QgayPKawpkPSDYmwT/WM94uAlu0=");
    CHECK(caps_verification("client", "phone", "Exodus 0.9.1", exodus) != "QgayPKawpkPSDYmwT/WM94uAlu0=");
    CHECK(caps_verification("client", "pc", "Exodus 0.9.1", {exodus.begin(), exodus.end() - 1}) !=
          "QgayPKawpkPSDYmwT/WM94uAlu0=");
    CHECK(caps_verification("client", "pc", "", {}).size() == 28);  // 20 bytes in base64

    // XEP-0115 Example 1.
    CHECK(make_caps("http://code.google.com/p/exodus", "QgayPKawpkPSDYmwT/WM94uAlu0=") ==
          "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://code.google.com/p/exodus' "
          "ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>");
    auto c = frame("<presence>" + make_caps(nasty, nasty) + "</presence>");
    CHECK(std::string(c.root().first_child().attribute("node").value()) == nasty);
}

TEST_CASE("im: vCard names") {
    // XEP-0054 Example 8.
    CHECK(make_vcard_get("v3", "jer@jabber.org") == "<iq type='get' to='jer@jabber.org' id='v3'><vCard xmlns='vcard-temp'/></iq>");
    CHECK(make_vcard_get("v1", "") == "<iq type='get' id='v1'><vCard xmlns='vcard-temp'/></iq>");
    CHECK(check_raw_stanza(make_vcard_get(nasty, nasty)).ok());
    // XEP-0054 Example 9.
    auto names = parse_vcard_names(frame("<iq from='jer@jabber.org' to='stpeter@jabber.org/roundabout' type='result' id='v3'>"
                                         "<vCard xmlns='vcard-temp'><FN>JeremieMiller</FN><N><GIVEN>Jeremie</GIVEN>"
                                         "<FAMILY>Miller</FAMILY><MIDDLE/></N><NICKNAME>jer</NICKNAME>"
                                         "<JABBERID>jer@jabber.org</JABBERID></vCard></iq>").root());
    CHECK(names.nick == "jer");
    CHECK(names.full_name == "JeremieMiller");
    // Example 10: no vCard; and names outside the vCard namespace are not names.
    auto none = parse_vcard_names(frame("<iq id='v3' type='error'><vCard xmlns='vcard-temp'/><error type='cancel'>"
                                        "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>").root());
    CHECK(none.nick.empty());
    CHECK(none.full_name.empty());
    auto other = parse_vcard_names(frame("<iq type='result' id='v'><vCard xmlns='urn:other'><FN>x</FN></vCard></iq>").root());
    CHECK(other.full_name.empty());
    auto lower = parse_vcard_names(frame("<iq type='result' id='v'><vCard xmlns='vcard-temp'><fn>x</fn><nickname>y</nickname></vCard></iq>").root());
    CHECK(lower.full_name.empty());  // XEP-0054 §8: element names are upper case
    CHECK(lower.nick.empty());
}

TEST_CASE("im: any text a front end gives makes a well-formed stanza (XML 1.0 Char)") {
    // IRC formatting (bold, colours), a NUL, bytes that are not UTF-8, a lone surrogate,
    // U+FFFE: each becomes U+FFFD; tabs, newlines and real characters stay.
    const std::string body = std::string("\x02" "bold\x02 \x03" "04red\x0f ") + '\0' + "\xff\xfe \xed\xa0\x80 \xef\xbf\xbe" +
                             " tab\there\nline \xc3\xa9 \xf0\x9f\x98\x80";
    auto xml = make_message("bob@example.org", "chat", body, "id\x01");
    CHECK(check_raw_stanza(xml).ok());
    CHECK(xml.find("\xef\xbf\xbd" "bold") != std::string::npos);
    CHECK(xml.find("tab\there\nline \xc3\xa9 \xf0\x9f\x98\x80") != std::string::npos);
    CHECK(xml.find('\0') == std::string::npos);
    CHECK(xml_escape("a\xc3") == "a\xef\xbf\xbd");          // cut in the middle of a character
    CHECK(xml_escape("\xc0\xaf") == "\xef\xbf\xbd\xef\xbf\xbd");  // overlong '/'
    CHECK(xml_escape("\xf8\x88\x80\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // no such lead byte
    // Every byte sequence: what comes out is always good XML text.
    for (int a = 0; a < 256; ++a)
        for (int b : {0x00, 0x41, 0x80, 0xa5, 0xbf, 0xc0, 0xff}) {
            std::string text{static_cast<char>(a), static_cast<char>(b), static_cast<char>(0xa5)};
            INFO(a << " " << b);
            CHECK(check_raw_stanza("<message><body>" + xml_escape(text) + "</body></message>").ok());
        }
}

TEST_CASE("im: an OMEMO message keeps its <encrypted/>; its <body/> is only the fallback (XEP-0384 §4.5)") {
    const std::string enc = "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='27183'>"
                            "<key prekey='true' rid='31415'>MwohYWJj</key><iv>MTIzNDU2Nzg5MDEy</iv></header>";
    auto m = parse_message(frame("<message from='bob@example.org/phone' type='chat' id='e1'><body>I sent you an "
                                 "OMEMO encrypted message</body>" + enc + "<payload>Y2lwaGVy</payload></encrypted>"
                                 "<store xmlns='urn:xmpp:hints'/></message>")
                               .root(),
                           own);
    REQUIRE(m);
    REQUIRE(m->omemo);
    CHECK(m->encrypted());
    CHECK(m->has_content());
    CHECK(m->omemo->sid == 27183);
    REQUIRE(m->omemo->keys.size() == 1);
    CHECK(m->omemo->keys[0].rid == 31415);
    CHECK(m->omemo->keys[0].prekey);
    CHECK(*m->omemo->payload == "cipher");

    // Key transport (0.3 §4.6): no payload, nothing to show, even with a body.
    auto kt = parse_message(frame("<message from='bob@example.org/phone'><body>x</body>" + enc + "</encrypted></message>").root(), own);
    REQUIRE(kt);
    CHECK(kt->encrypted());
    CHECK_FALSE(kt->has_content());

    // A broken element: no keys parsed, the reason kept, still encrypted (never shown as clear).
    auto bad = parse_message(frame("<message from='bob@example.org/phone'><body>fallback</body>"
                                   "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='0'/></encrypted>"
                                   "</message>")
                                 .root(),
                             own);
    REQUIRE(bad);
    CHECK_FALSE(bad->omemo);
    CHECK_FALSE(bad->omemo_error.empty());
    CHECK(bad->encrypted());
    CHECK(bad->has_content());

    auto clear = parse_message(frame("<message from='bob@example.org/phone'><body>hi</body></message>").root(), own);
    REQUIRE(clear);
    CHECK_FALSE(clear->encrypted());
    CHECK(clear->has_content());
    CHECK_FALSE(parse_message(frame("<message from='bob@example.org/phone'/>").root(), own)->has_content());
}
