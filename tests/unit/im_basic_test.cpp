// protocol/im codecs: received messages with ids and delay, error messages, presence and roster,
// outgoing stanzas and raw stanzas from front ends, receipts and our own archive results.
#include "im_fixture.hpp"

using namespace im_test;

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
