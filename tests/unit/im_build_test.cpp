// protocol/im codecs, issue 5, what is built: archive queries, outgoing messages, receipts,
// chat states, markers and invitations, presence, blocking, caps (XEP-0115), vCard, any text
// made well-formed, and OMEMO messages (XEP-0384).
#include "im_fixture.hpp"
#include "protocol/base/utf8.hpp"

using namespace im_test;

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

// xml_escape copies runs of plain ASCII at once (issue 15): the same text as escaping one
// character at a time, whatever comes before and after a run.
TEST_CASE("im: xml_escape gives what escaping a character at a time gives") {
    auto one_at_a_time = [](std::string_view text) {
        std::string out;
        for (std::size_t i = 0; i < text.size();) {
            std::uint32_t cp;
            std::size_t n = xmpp::utf8_sequence(text, i, cp);
            if (n == 0 || !xmpp::is_xml_char(cp)) {
                out += "\xEF\xBF\xBD";
                ++i;
                continue;
            }
            switch (cp) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default: out.append(text.substr(i, n));
            }
            i += n;
        }
        return out;
    };
    std::uint32_t seed = 12345;
    auto next = [&] { return seed = seed * 1664525u + 1013904223u; };
    const std::string pieces[] = {"a", "Z", " ", "~", "&", "<", ">", "\"", "'", "\t", "\n", "\x7f", std::string(1, '\0'),
                                  "\x01", "\xc3\xa9", "\xc3", "\xf0\x9f\x98\x80", "\xed\xa0\x80", "\xef\xbf\xbe", "\xff"};
    for (int round = 0; round < 2000; ++round) {
        std::string text;
        const int length = static_cast<int>(next() % 40);
        for (int k = 0; k < length; ++k) text += pieces[(next() >> 8) % std::size(pieces)];
        INFO(round);
        CHECK(xml_escape(text) == one_at_a_time(text));
    }
    CHECK(xml_escape("plain text, no escapes at all") == "plain text, no escapes at all");
    CHECK(xml_escape("a<b>&'\"c") == "a&lt;b&gt;&amp;&apos;&quot;c");
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
