// OMEMO 2 (urn:xmpp:omemo:2) codecs fed bytes as they come from other clients: the
// <encrypted/> element, the device list and bundle in PEP results and notifications
// (XEP-0384 §5.3, §5.4), the whole encrypted <message/> we send, and the XEP-0420 envelope
// as other implementations write it (prefixed namespaces, attributes in any order).
#include <catch2/catch.hpp>

#include <string>

#include "protocol/base/base64.hpp"
#include "protocol/im.hpp"
#include "protocol/omemo/stanza.hpp"
#include "protocol/xml_framer.hpp"
#include "stanza_helpers.hpp"

using namespace xmpp;
using namespace xmpp::omemo;
using test::frame;

TEST_CASE("omemo 2 codec: the device list in a PEP notification and an items result") {
    // §5.3.1 Example: a notification of urn:xmpp:omemo:2:devices.
    auto n = frame(
        "<message from='juliet@capulet.lit' to='romeo@montague.lit'>"
        "<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:omemo:2:devices'>"
        "<item id='current'><devices xmlns='urn:xmpp:omemo:2'><device id='12345'/>"
        "<device id='4223' label='Gajim on Ubuntu Linux'/><device id='0'/><device id='12345'/>"
        "</devices></item></items></event></message>");
    auto item = parse_pep_item(n.root());
    REQUIRE(item);
    CHECK(item->node == node_v2_devices);
    auto list = parse_device_list(item->payload);
    REQUIRE(list);
    CHECK(list.value() == std::vector<std::uint32_t>{12345, 4223});  // 0 and the duplicate dropped
    // A 0.3 <list/> is not a :2 device list element, and the reverse.
    auto wrong = frame("<message><devices xmlns='eu.siacs.conversations.axolotl'><device id='1'/></devices></message>");
    CHECK_FALSE(parse_device_list(wrong.root().first_child()));

    auto r = frame(
        "<iq type='result' id='f1'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
        "<items node='urn:xmpp:omemo:2:bundles'><item id='4223'><bundle xmlns='urn:xmpp:omemo:2'>"
        "<spk id='7'>" +
        base64_encode(std::string(32, 's')) + "</spk><spks>" + base64_encode(std::string(64, 'g')) + "</spks><ik>" +
        base64_encode(std::string(32, 'i')) + "</ik><prekeys><pk id='1'>" + base64_encode(std::string(32, 'p')) +
        "</pk></prekeys></bundle></item></items></pubsub></iq>");
    auto bitem = parse_pep_item(r.root());
    REQUIRE(bitem);
    CHECK((bitem->node == node_v2_bundles && bitem->item_id == "4223"));
    auto b = parse_bundle(bitem->payload);
    REQUIRE(b);
    CHECK((b.value().spk_id == 7 && b.value().ik == std::string(32, 'i') && b.value().spks.size() == 64));
}

TEST_CASE("omemo 2 codec: publishing our device list and bundle (§5.3)") {
    auto devices = make_publish_devices("p1", Version::V2, {4223, 31415});
    CHECK(check_raw_stanza(devices).ok());
    CHECK(devices.find("<publish node='urn:xmpp:omemo:2:devices'><item id='current'><devices "
                       "xmlns='urn:xmpp:omemo:2'><device id='4223'/><device id='31415'/></devices>") !=
          std::string::npos);
    CHECK(devices.find("<field var='pubsub#access_model'><value>open</value></field>") != std::string::npos);
    CHECK(make_fetch_devices("f", "juliet@capulet.lit", Version::V2) ==
          "<iq type='get' to='juliet@capulet.lit' id='f'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
          "<items node='urn:xmpp:omemo:2:devices'/></pubsub></iq>");
}

TEST_CASE("omemo 2 codec: the encrypted message we send") {
    Encrypted e;
    e.version = Version::V2;
    e.sid = 27183;
    e.keys = {{"juliet@capulet.lit", 31415, true, "kex"},
              {"romeo@montague.lit", 1337, false, "msg"},
              {"juliet@capulet.lit", 4223, false, "two"}};
    e.payload = "ciphertext";
    OutgoingMessage m;
    m.to = "juliet@capulet.lit";
    m.id = "m1";
    m.body = "the secret";
    std::string xml = make_encrypted_message(m, e);
    CHECK(check_raw_stanza(xml).ok());
    CHECK(xml.find("the secret") == std::string::npos);
    auto s = frame(xml);
    CHECK(std::string(s.root().child("body").child_value()) == fallback_body(Version::V2));
    auto eme = s.root().child("encryption");
    CHECK(std::string(eme.attribute("namespace").value()) == "urn:xmpp:omemo:2");
    auto parsed = parse_encrypted(find_encrypted(s.root()));
    REQUIRE(parsed);
    // §4.5: one <keys/> per JID; a key keeps its JID, rid and kex.
    CHECK(xml.find("<keys jid='juliet@capulet.lit'><key rid='31415' kex='true'>") != std::string::npos);
    REQUIRE(parsed.value().keys.size() == 3);
    CHECK(key_for(parsed.value(), "juliet@capulet.lit", 4223)->data == "two");
    CHECK(key_for(parsed.value(), "romeo@montague.lit", 1337)->data == "msg");
    CHECK(key_for(parsed.value(), "juliet@capulet.lit", 31415)->prekey);
    CHECK(*parsed.value().payload == "ciphertext");
    CHECK(parsed.value().iv.empty());
}

TEST_CASE("omemo 2 codec: malformed :2 elements are refused with a reason") {
    auto check = [](const std::string& inner, std::string_view why) {
        auto s = frame("<message><encrypted xmlns='urn:xmpp:omemo:2'>" + inner + "</encrypted></message>");
        auto e = parse_encrypted(find_encrypted(s.root()));
        REQUIRE_FALSE(e);
        CHECK(e.error().code == "omemo-malformed");
        CHECK(e.error().message.find(why) != std::string::npos);
    };
    check("<payload>AAAA</payload>", "no <header/>");
    check("<header sid='0'><keys jid='a@b'><key rid='1'>AAAA</key></keys></header>", "sid");
    check("<header sid='1'><keys><key rid='1'>AAAA</key></keys></header>", "without a jid");
    check("<header sid='1'><keys jid='a@b'><key rid='x'>AAAA</key></keys></header>", "rid");
    check("<header sid='1'><keys jid='a@b'><key rid='1'>!!</key></keys></header>", "not base64");
    check("<header sid='1'><keys jid='a@b'></keys></header>", "no <key/>");
    // More keys than the limit, spread over <keys/> elements.
    std::string many = "<header sid='1'>";
    for (int j = 0; j < 3; ++j) {
        many += "<keys jid='u" + std::to_string(j) + "@b'>";
        for (int i = 1; i <= 100; ++i) many += "<key rid='" + std::to_string(i) + "'>AAAA</key>";
        many += "</keys>";
    }
    check(many + "</header>", "more than 256 keys");
}

TEST_CASE("omemo 2 codec: SCE envelopes as other implementations write them (XEP-0420 §4)") {
    // Prefixed namespaces (as ElementTree writes them), <from/> before <content/>, a time
    // stamp and an unknown affix: all allowed.
    auto e = parse_envelope(
        "<ns0:envelope xmlns:ns0='urn:xmpp:sce:1' xmlns:ns1='jabber:client'><ns0:from jid='juliet@capulet.lit/x'/>"
        "<ns0:rpad>abcd</ns0:rpad><ns0:time stamp='2004-01-25T05:05:00Z'/><ns0:other/><ns0:content>"
        "<ns1:body>Hi &amp; bye</ns1:body><x xmlns='urn:example'/></ns0:content></ns0:envelope>");
    REQUIRE(e);
    CHECK(e.value().body == "Hi & bye");
    CHECK(e.value().from == "juliet@capulet.lit/x");
    // No body: an empty one (a message with other content only).
    auto empty = parse_envelope("<envelope xmlns='urn:xmpp:sce:1'><content/><from jid='a@b'/></envelope>");
    REQUIRE(empty);
    CHECK(empty.value().body.empty());
    // A <body/> in another namespace (here urn:xmpp:sce:1, inherited) is not the body.
    auto other = parse_envelope("<envelope xmlns='urn:xmpp:sce:1'><content><body>x</body></content></envelope>");
    REQUIRE(other);
    CHECK(other.value().body.empty());
    // No DOCTYPE, no entities from outside: the XML of an envelope is plain.
    auto entity = parse_envelope(
        "<!DOCTYPE e [<!ENTITY x 'boom'>]><envelope xmlns='urn:xmpp:sce:1'><content>"
        "<body xmlns='jabber:client'>&x;</body></content></envelope>");
    CHECK((!entity || entity.value().body.find("boom") == std::string::npos));
}
