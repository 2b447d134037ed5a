// ClientStream: the roster features (RFC 6121 §2.6.1, §3.4) and XEP-0115 entity capabilities.
#include "stream_fixture.hpp"

using namespace stream_test;

// ---------------------------------------------------------------------------------------
// Roster features (RFC 6121 §2.6.1, §3.4) and XEP-0115 entity capabilities

namespace {

// Direct TLS and PLAIN, then `features` after authentication; the Online event after bind.
Online online_with(Session& s, std::string_view sasl_extra, std::string_view features) {
    s.stream.start(s.now);
    s.feed(header(1));
    auto mechanisms = sasl_features("PLAIN");
    mechanisms.insert(mechanisms.find("</stream:features>"), sasl_extra);
    s.feed(mechanisms);
    s.feed("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    s.feed(header(2));
    s.feed(features);
    REQUIRE(s.take().find("id='bind'") != std::string::npos);
    s.feed("<iq type='result' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
           "<jid>user@example.org/r</jid></bind></iq>");
    auto ev = s.events();
    REQUIRE(ev.size() == 1);
    REQUIRE(std::holds_alternative<Online>(ev[0]));
    return std::get<Online>(ev[0]);
}

StreamOptions tls_options() {
    auto o = Session::options();
    o.direct_tls = true;
    return o;
}

// The disco#info answer to a query with `node` (none when empty), as the server would see it.
std::string disco(Session& s, std::string_view node) {
    s.take();
    s.feed("<iq type='get' id='d' from='bob@example.org/x'><query xmlns='http://jabber.org/protocol/disco#info'" +
           (node.empty() ? std::string() : " node='" + xml_escape(node) + "'") + "/></iq>");
    return s.take();
}

// XEP-0115 §5.1 computed here from a disco#info answer, independently of protocol/im.cpp:
// one identity without xml:lang, the features sorted by octets.
std::string ver_of(const std::string& answer) {
    XmlFramer f;
    f.feed("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
    f.feed(answer);
    f.next();
    auto e = f.next();
    REQUIRE(e);
    auto query = std::get<Stanza>(*e).root().child("query");
    auto identity = query.child("identity");
    std::string s = std::string(identity.attribute("category").value()) + "/" + identity.attribute("type").value() + "//" +
                    identity.attribute("name").value() + "<";
    std::vector<std::string> features;
    for (auto feature : query.children("feature")) features.emplace_back(feature.attribute("var").value());
    REQUIRE(std::is_sorted(features.begin(), features.end()));  // a std::set, already in octet order
    for (const auto& feature : features) s += feature + "<";
    unsigned char digest[20];
    REQUIRE(EVP_Digest(s.data(), s.size(), digest, nullptr, EVP_sha1(), nullptr) == 1);
    return base64_encode(std::string_view(reinterpret_cast<char*>(digest), 20));
}

}  // namespace

TEST_CASE("stream: roster versioning and pre-approval offered after authentication are reported") {
    Session plain(tls_options());
    auto online = online_with(plain, "", bind_features);
    CHECK_FALSE(online.roster_versioning);
    CHECK_FALSE(online.pre_approval);

    // RFC 6121 §2.6.1 and §3.4 stream features, next to bind.
    Session both(tls_options());
    online = online_with(both, "",
                         "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                         "<ver xmlns='urn:xmpp:features:rosterver'/><sub xmlns='urn:xmpp:features:pre-approval'/>"
                         "</stream:features>");
    CHECK(online.roster_versioning);
    CHECK(online.pre_approval);

    Session ver_only(tls_options());
    online = online_with(ver_only, "",
                         "<stream:features><ver xmlns='urn:xmpp:features:rosterver'/>"
                         "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>");
    CHECK(online.roster_versioning);
    CHECK_FALSE(online.pre_approval);

    // Only the features after authentication count; the wrong namespace does not.
    Session before(tls_options());
    online = online_with(before,
                         "<ver xmlns='urn:xmpp:features:rosterver'/><sub xmlns='urn:xmpp:features:pre-approval'/>",
                         "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                         "<ver xmlns='urn:xmpp:features:rosterver:x'/><sub/></stream:features>");
    CHECK_FALSE(online.roster_versioning);
    CHECK_FALSE(online.pre_approval);
}

TEST_CASE("stream: a resumed session reports the roster features of the new stream") {
    Session first(sm_options());
    enable(first);
    first.stream.transport_closed("connection reset");
    auto session = first.stream.take_resumable();
    REQUIRE(session);

    Session second(sm_options(std::move(session)));
    second.stream.start(second.now);
    second.feed(header(1));
    second.feed(sasl_features("PLAIN"));
    second.feed("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    second.feed(header(2));
    second.take();
    second.feed("<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:3'/>"
                "<ver xmlns='urn:xmpp:features:rosterver'/></stream:features>");
    CHECK(second.take() == "<resume xmlns='urn:xmpp:sm:3' h='0' previd='sm-1'/>");
    second.feed("<resumed xmlns='urn:xmpp:sm:3' h='0' previd='sm-1'/>");
    auto ev = second.events();
    REQUIRE(ev.size() == 1);
    auto online = std::get<Online>(ev[0]);
    CHECK(online.resumed);
    CHECK(online.roster_versioning);
    CHECK_FALSE(online.pre_approval);
}

TEST_CASE("stream: caps of what disco#info announces, and disco#info for the caps node") {
    auto o = Session::options();
    o.software_name = "stanzad <test> & 'co'";
    o.caps_node = "https://stanzad.org/it's";
    Session s(o);
    ScramServer server;
    s.login(server);

    auto plain = disco(s, "");
    const std::string ver = s.stream.caps_ver();
    CHECK(ver.size() == 28);
    CHECK(ver == ver_of(plain));  // the same identity and features as announced
    CHECK(plain.find("<feature var='http://jabber.org/protocol/caps'/>") != std::string::npos);  // XEP-0115 §7
    CHECK(s.stream.caps_element() ==
          "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://stanzad.org/it&apos;s' ver='" + ver + "'/>");
    CHECK(check_raw_stanza("<presence>" + s.stream.caps_element() + "</presence>").ok());

    // XEP-0115 §6.2: the caps node answers as the plain query does, with the node echoed.
    const std::string node = o.caps_node + "#" + ver;
    auto answer = disco(s, node);
    CHECK(answer.starts_with("<iq id='d' to='bob@example.org/x' type='result'><query "
                             "xmlns='http://jabber.org/protocol/disco#info' node='" + xml_escape(node) + "'>"));
    CHECK(answer.substr(answer.find("><identity")) == plain.substr(plain.find("><identity")));
    CHECK(ver_of(answer) == ver);
    // Another node, our node without the ver, or a ver we no longer have: item-not-found.
    for (auto other : {std::string("x"), o.caps_node, o.caps_node + "#", node + "x"}) {
        INFO(other);
        CHECK(disco(s, other).find("<item-not-found") != std::string::npos);
    }

    // A new feature changes the verification string (§6.1); the old node is forgotten.
    s.stream.add_feature("urn:xmpp:bookmarks:1+notify");
    const std::string ver2 = s.stream.caps_ver();
    CHECK(ver2 != ver);
    CHECK(ver2 == ver_of(disco(s, "")));
    CHECK(disco(s, node).find("<item-not-found") != std::string::npos);
    CHECK(disco(s, o.caps_node + "#" + ver2).find("node='" + xml_escape(o.caps_node + "#" + ver2) + "'") != std::string::npos);
    // An iq handler is a feature too.
    s.stream.on_iq("urn:example:x", "query", [](pugi::xml_node, pugi::xml_node) { return IqAnswer{}; });
    CHECK(s.stream.caps_ver() != ver2);
}

TEST_CASE("stream: the default caps are those of client/pc 'stanzad' and the stream's own features") {
    Session s;
    std::vector<std::string> features = {std::string(ns_disco_info), std::string(ns_ping), std::string(ns_version),
                                         "http://jabber.org/protocol/caps"};
    CHECK(s.stream.caps_ver() == caps_verification("client", "pc", "stanzad", features));
    CHECK(s.stream.caps_element() == make_caps("https://stanzad.org", s.stream.caps_ver()));
}
