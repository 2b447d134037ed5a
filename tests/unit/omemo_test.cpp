#include <catch2/catch.hpp>

#include <string>

#include "protocol/base/base64.hpp"
#include "protocol/im.hpp"
#include "protocol/omemo/payload.hpp"
#include "protocol/omemo/stanza.hpp"
#include "protocol/xml_framer.hpp"
#include "stanza_helpers.hpp"

using namespace xmpp;
using namespace xmpp::omemo;

namespace {

using test::frame;

std::string b64(std::string_view s) { return base64_encode(s); }

// The XEP's placeholder "b64/encoded/data" is valid base64 of these 12 bytes.
const std::string placeholder = base64_decode("b64/encoded/data").value();

}  // namespace

TEST_CASE("omemo: OMEMO 2 message from XEP-0384 §5.4.3 Example 'Sending a message'") {
    auto s = frame("<message to='juliet@capulet.lit' from='romeo@montague.lit' id='send1'>"
                   "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='27183'>"
                   "<keys jid='juliet@capulet.lit'><key rid='31415'>b64/encoded/data</key></keys>"
                   "<keys jid='romeo@montague.lit'><key rid='1337'>b64/encoded/data</key>"
                   "<key kex='true' rid='12321'>b64/encoded/data</key></keys></header>"
                   "<payload>\n      b64/encoded/data\n    </payload></encrypted>"
                   "<store xmlns='urn:xmpp:hints'/></message>");
    auto node = find_encrypted(s.root());
    REQUIRE(node);
    auto e = parse_encrypted(node);
    REQUIRE(e);
    CHECK(e.value().version == Version::V2);
    CHECK(e.value().sid == 27183);
    REQUIRE(e.value().keys.size() == 3);
    CHECK(e.value().keys[0].jid == "juliet@capulet.lit");
    CHECK(e.value().keys[2].prekey);
    CHECK_FALSE(e.value().keys[1].prekey);
    CHECK(e.value().keys[0].data == placeholder);
    REQUIRE(e.value().payload);
    CHECK(*e.value().payload == placeholder);  // whitespace around base64 is allowed
    CHECK(key_for(e.value(), "juliet@capulet.lit", 31415));
    CHECK_FALSE(key_for(e.value(), "romeo@montague.lit", 31415));  // 2: the JID counts too

    // Round trip through the builder.
    auto again = frame("<message>" + make_encrypted(e.value()) + "</message>");
    auto e2 = parse_encrypted(find_encrypted(again.root()));
    REQUIRE(e2);
    CHECK(e2.value().keys.size() == 3);
    CHECK(e2.value().keys[2].prekey);
    CHECK(e2.value().keys[1].jid == "romeo@montague.lit");
}

TEST_CASE("omemo: OMEMO 0.3 (axolotl) message, and an empty one (key transport)") {
    std::string key = "\x33\x0a\x21" + std::string(30, 'k');
    std::string xml = "<message to='juliet@capulet.lit' id='send1'><encrypted xmlns='eu.siacs.conversations.axolotl'>"
                      "<header sid='27183'><key rid='31415'>" + b64(key) + "</key>"
                      "<key prekey='true' rid='12321'>" + b64(key) + "</key><iv>" + b64("123456789012") +
                      "</iv></header><payload>" + b64("ciphertext") + "</payload></encrypted></message>";
    auto e = parse_encrypted(find_encrypted(frame(xml).root()));
    REQUIRE(e);
    CHECK(e.value().version == Version::Legacy);
    CHECK(e.value().iv == "123456789012");
    REQUIRE(e.value().keys.size() == 2);
    CHECK(e.value().keys[1].prekey);
    CHECK(e.value().keys[0].data == key);
    CHECK(key_for(e.value(), "anyone", 12321));
    CHECK(*e.value().payload == "ciphertext");
    auto round = parse_encrypted(find_encrypted(frame("<message>" + make_encrypted(e.value()) + "</message>").root()));
    REQUIRE(round);
    CHECK(round.value().keys[1].prekey);
    CHECK(round.value().iv == "123456789012");

    auto empty = parse_encrypted(find_encrypted(
        frame("<message><encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='2'>" + b64(key) +
              "</key><iv>" + b64("123456789012") + "</iv></header></encrypted></message>")
            .root()));
    REQUIRE(empty);
    CHECK_FALSE(empty.value().payload);
}

TEST_CASE("omemo: malformed and oversized <encrypted/> elements are errors, not crashes") {
    auto bad = [](std::string inner, std::string_view ns = "eu.siacs.conversations.axolotl") {
        auto s = frame("<message><encrypted xmlns='" + std::string(ns) + "'>" + inner + "</encrypted></message>");
        auto r = parse_encrypted(find_encrypted(s.root()));
        REQUIRE_FALSE(r);
        CHECK(r.error().code == "omemo-malformed");
        return r.error().message;
    };
    std::string iv = "<iv>" + b64("123456789012") + "</iv>";
    CHECK(bad("") == "no <header/>");
    CHECK(bad("<header><key rid='1'>AAAA</key>" + iv + "</header>").find("sid") != std::string::npos);
    CHECK(bad("<header sid='0'><key rid='1'>AAAA</key>" + iv + "</header>").find("sid") != std::string::npos);
    CHECK(bad("<header sid='2147483648'><key rid='1'>AAAA</key>" + iv + "</header>").find("sid") != std::string::npos);
    CHECK(bad("<header sid='1'><key rid='x'>AAAA</key>" + iv + "</header>") == "a <key/> without a valid rid");
    CHECK(bad("<header sid='1'><key rid='1'>!!!!</key>" + iv + "</header>") == "a <key/> is not base64");
    CHECK(bad("<header sid='1'>" + iv + "</header>") == "no <key/> in the header");
    CHECK(bad("<header sid='1'><key rid='1'>AAAA</key></header>") == "no <iv/>");
    CHECK(bad("<header sid='1'><key rid='1'>AAAA</key><iv>AAAA</iv></header>") == "the <iv/> is shorter than 12 bytes");
    CHECK(bad("<header sid='1'><key rid='1'>" + b64(std::string(600, 'x')) + "</key>" + iv + "</header>") ==
          "a <key/> is too long");
    std::string many;
    for (int i = 1; i <= 257; ++i) many += "<key rid='" + std::to_string(i) + "'>AAAA</key>";
    CHECK(bad("<header sid='1'>" + many + iv + "</header>") == "more than 256 keys");
    // OMEMO 2: the budget counts keys over all <keys/> elements.
    std::string split;
    for (int j = 0; j < 2; ++j) {
        split += "<keys jid='a" + std::to_string(j) + "@x'>";
        for (int i = 1; i <= 130; ++i) split += "<key rid='" + std::to_string(i) + "'>AAAA</key>";
        split += "</keys>";
    }
    CHECK(bad("<header sid='1'>" + split + "</header>", "urn:xmpp:omemo:2") == "more than 256 keys");
    CHECK(bad("<header sid='1'><keys><key rid='1'>AAAA</key></keys></header>", "urn:xmpp:omemo:2") ==
          "<keys/> without a jid");
    Limits small;
    small.max_payload_bytes = 4;
    auto s = frame("<message><encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='1'>AAAA</key>" + iv +
                   "</header><payload>" + b64("too long") + "</payload></encrypted></message>");
    auto r = parse_encrypted(find_encrypted(s.root()), small);
    REQUIRE_FALSE(r);
    CHECK(r.error().message == "the <payload/> is too long");
}

TEST_CASE("omemo: device lists (XEP-0384 §5.3.1) in both namespaces") {
    // Example 'Devicelist update received by subscribed clients'.
    auto s = frame("<message from='juliet@capulet.lit' to='romeo@montague.lit' type='headline' id='update_01'>"
                   "<event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:omemo:2:devices'>"
                   "<item id='current'><devices xmlns='urn:xmpp:omemo:2'><device id='12345' />"
                   "<device id='4223' label='Gajim on Ubuntu Linux' labelsig='b64/encoded/data' /></devices>"
                   "</item></items></event></message>");
    auto item = parse_pep_item(s.root());
    REQUIRE(item);
    CHECK(item->node == node_v2_devices);
    CHECK(item->item_id == "current");
    auto list = parse_device_list(item->payload);
    REQUIRE(list);
    CHECK(list.value() == std::vector<std::uint32_t>{12345, 4223});

    auto legacy = frame("<message><event xmlns='http://jabber.org/protocol/pubsub#event'>"
                        "<items node='eu.siacs.conversations.axolotl.devicelist'><item id='current'>"
                        "<list xmlns='eu.siacs.conversations.axolotl'><device id='1'/><device id='bad'/>"
                        "<device id='1'/><device id='7'/></list></item></items></event></message>");
    auto li = parse_pep_item(legacy.root());
    REQUIRE(li);
    CHECK(li->node == node_legacy_devices);
    auto ids = parse_device_list(li->payload);
    REQUIRE(ids);
    CHECK(ids.value() == std::vector<std::uint32_t>{1, 7});  // bad ids skipped, duplicates once

    for (auto v : {Version::Legacy, Version::V2}) {
        auto built = frame("<iq type='result'>" + make_publish_devices("p1", v, {5, 6}).substr(0, 0) +
                           "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='x'><item id='current'>" +
                           make_device_list(v, {5, 6}) + "</item></items></pubsub></iq>");
        auto parsed = parse_pep_item(built.root());
        REQUIRE(parsed);
        auto l = parse_device_list(parsed->payload);
        REQUIRE(l);
        CHECK(l.value() == std::vector<std::uint32_t>{5, 6});
    }
    std::string many = "<list xmlns='eu.siacs.conversations.axolotl'>";
    for (int i = 1; i <= 65; ++i) many += "<device id='" + std::to_string(i) + "'/>";
    auto too_many = frame("<message><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='n'><item>" +
                          many + "</list></item></items></event></message>");
    CHECK_FALSE(parse_device_list(parse_pep_item(too_many.root())->payload));
}

TEST_CASE("omemo: publishing uses publish-options with access_model open (XEP-0384 §5.3, XEP-0060 §7.1.5)") {
    auto devices = frame(make_publish_devices("a1", Version::Legacy, {42}));
    auto pubsub = child(devices.root(), ns_pubsub, "pubsub");
    REQUIRE(pubsub);
    CHECK(std::string(child(pubsub, ns_pubsub, "publish").attribute("node").value()) == node_legacy_devices);
    std::string text = make_publish_devices("a1", Version::Legacy, {42});
    CHECK(text.find("<field var='pubsub#access_model'><value>open</value></field>") != std::string::npos);
    CHECK(text.find("max_items") == std::string::npos);
    Bundle b{1, std::string(33, 's'), std::string(64, 'g'), std::string(33, 'i'), {{1, std::string(33, 'p')}}};
    std::string v2 = make_publish_bundle("a2", Version::V2, 31415, b);
    CHECK(v2.find("node='urn:xmpp:omemo:2:bundles'><item id='31415'>") != std::string::npos);
    CHECK(v2.find("<field var='pubsub#max_items'><value>max</value></field>") != std::string::npos);
    CHECK(v2.find("<value>open</value>") != std::string::npos);
    std::string legacy = make_publish_bundle("a3", Version::Legacy, 31415, b);
    CHECK(legacy.find("node='eu.siacs.conversations.axolotl.bundles:31415'><item id='current'>") != std::string::npos);
    CHECK(make_fetch_bundle("f", "juliet@capulet.lit", Version::V2, 31415) ==
          "<iq type='get' to='juliet@capulet.lit' id='f'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
          "<items node='urn:xmpp:omemo:2:bundles'><item id='31415'/></items></pubsub></iq>");
}

TEST_CASE("omemo: bundles (XEP-0384 §5.3.2) round trip in both namespaces; bad ones are errors") {
    Bundle b{7, std::string(33, 's'), std::string(64, 'g'), std::string(33, 'i'), {}};
    for (std::uint32_t i = 1; i <= 100; ++i) b.prekeys.push_back({i, std::string(33, static_cast<char>(i))});
    for (auto v : {Version::Legacy, Version::V2}) {
        auto s = frame("<message>" + make_bundle(v, b) + "</message>");
        auto parsed = parse_bundle(s.root().first_child());
        REQUIRE(parsed);
        CHECK(parsed.value().spk_id == 7);
        CHECK(parsed.value().spk == b.spk);
        CHECK(parsed.value().spks == b.spks);
        CHECK(parsed.value().ik == b.ik);
        REQUIRE(parsed.value().prekeys.size() == 100);
        CHECK(parsed.value().prekeys[99].id == 100);
        CHECK(parsed.value().prekeys[99].key == b.prekeys[99].key);
    }
    // The XEP's own example (placeholders for keys).
    auto ex = frame("<message><bundle xmlns='urn:xmpp:omemo:2'><spk id='1'>b64/encoded/data</spk>"
                    "<spks>b64/encoded/data</spks><ik>b64/encoded/data</ik><prekeys><pk id='1'>b64/encoded/data</pk>"
                    "<pk id='2'>b64/encoded/data</pk><pk id='100'>b64/encoded/data</pk></prekeys></bundle></message>");
    auto parsed = parse_bundle(ex.root().first_child());
    REQUIRE(parsed);
    CHECK(parsed.value().prekeys.size() == 3);
    auto no_ik = frame("<message><bundle xmlns='urn:xmpp:omemo:2'><spk id='1'>AAAA</spk><spks>AAAA</spks>"
                       "<prekeys><pk id='1'>AAAA</pk></prekeys></bundle></message>");
    CHECK_FALSE(parse_bundle(no_ik.root().first_child()));
    auto no_pk = frame("<message><bundle xmlns='urn:xmpp:omemo:2'><spk id='1'>AAAA</spk><spks>AAAA</spks><ik>AAAA</ik>"
                       "<prekeys><pk id='x'>AAAA</pk></prekeys></bundle></message>");
    auto r = parse_bundle(no_pk.root().first_child());
    REQUIRE_FALSE(r);
    CHECK(r.error().message == "the bundle has no usable pre-key");
}

TEST_CASE("omemo: SCE envelope (XEP-0420, XEP-0384 §5.4.1)") {
    std::string xml = make_envelope("Hello <World> & 'you'", "romeo@montague.lit", "xyz");
    auto e = parse_envelope(xml);
    REQUIRE(e);
    CHECK(e.value().body == "Hello <World> & 'you'");
    CHECK(e.value().from == "romeo@montague.lit");
    CHECK_FALSE(parse_envelope("<body>not an envelope</body>"));
    CHECK_FALSE(parse_envelope("<envelope xmlns='urn:xmpp:sce:1'"));
}

TEST_CASE("omemo: payload encryption, OMEMO 0.3 (AES-128-GCM) and 2 (AES-256-CBC + HMAC)") {
    for (auto v : {Version::Legacy, Version::V2}) {
        std::string key(key_size(v), 'K'), iv(12, 'I');
        auto sealed = seal(v, "secret text", key, iv);
        REQUIRE(sealed);
        CHECK(sealed.value().key_material.size() == key_size(v) + 16);
        CHECK(sealed.value().payload.find("secret") == std::string::npos);
        auto opened = open(v, sealed.value().key_material, iv, sealed.value().payload);
        REQUIRE(opened);
        CHECK(opened.value() == "secret text");
        std::string altered = sealed.value().payload;
        altered[0] ^= 1;
        auto bad = open(v, sealed.value().key_material, iv, altered);
        REQUIRE_FALSE(bad);
        CHECK(bad.error().code == "omemo-payload");
        CHECK_FALSE(open(v, sealed.value().key_material.substr(0, 10), iv, sealed.value().payload));
    }
    // 0.3: the old layout, tag appended to the payload and a 16-byte key.
    std::string key(16, 'K'), iv(12, 'I');
    auto sealed = seal(Version::Legacy, "old style", key, iv);
    REQUIRE(sealed);
    auto opened = open(Version::Legacy, key, iv, sealed.value().payload + sealed.value().key_material.substr(16));
    REQUIRE(opened);
    CHECK(opened.value() == "old style");
    CHECK_FALSE(seal(Version::Legacy, "x", "short", iv));
}

TEST_CASE("omemo: an encrypted chat message (0.3 §4.5): fallback body, <encrypted/>, hints, and the rest as usual") {
    Encrypted e;
    e.version = Version::Legacy;
    e.sid = 31415;
    e.keys.push_back({"", 27182, true, std::string("\x33\x08\x01", 3)});
    e.keys.push_back({"", 16180, false, std::string("\x33\x0a\x02", 3)});
    e.iv = std::string(12, '\x07');
    e.payload = std::string("\x01\x02\x03\x04", 4);
    xmpp::OutgoingMessage m;
    m.to = "bob@example.org";
    m.id = "c-1";
    m.body = "the secret text";
    m.replace_id = "c-0";
    const std::string xml = make_encrypted_message(m, e);
    CHECK(xml.find("the secret text") == std::string::npos);
    CHECK(xmpp::check_raw_stanza(xml).ok());
    auto f = frame(xml);
    auto root = f.root();
    CHECK(std::string(root.child("body").text().get()) == fallback_body(Version::Legacy));
    CHECK(std::string(root.child("origin-id").attribute("id").value()) == "c-1");
    CHECK(std::string(root.child("replace").attribute("id").value()) == "c-0");
    CHECK(root.child("request"));
    CHECK(std::string(root.child("encryption").attribute("namespace").value()) == ns_legacy);
    CHECK(root.child("store"));
    auto parsed = parse_encrypted(find_encrypted(root));
    REQUIRE(parsed);
    CHECK(parsed.value().sid == 31415);
    REQUIRE(parsed.value().keys.size() == 2);
    CHECK(parsed.value().keys[0].prekey);
    CHECK_FALSE(parsed.value().keys[1].prekey);
    CHECK(key_for(parsed.value(), {}, 16180)->data == e.keys[1].data);
    CHECK(parsed.value().iv == e.iv);
    CHECK(parsed.value().payload == e.payload);
}
