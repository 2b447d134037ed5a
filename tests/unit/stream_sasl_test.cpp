// ClientStream logins with SASL EXTERNAL (XEP-0178), channel binding (RFC 5802 §6, XEP-0440)
// and XEP-0474, against the scripted server.
#include "stream_fixture.hpp"

using namespace stream_test;

// ---------------------------------------------------------------------------------------
// SASL EXTERNAL (XEP-0178), channel binding (RFC 5802 §6, XEP-0440), XEP-0474

namespace {

std::string challenge(std::string_view data) {
    return "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + base64_encode(data) + "</challenge>";
}
std::string success(std::string_view data = {}) {
    return data.empty() ? "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
                        : "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + base64_encode(data) +
                              "</success>";
}
std::string failure(std::string_view condition, std::string_view text) {
    return "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><" + std::string(condition) + "/><text xml:lang='en'>" +
           std::string(text) + "</text></failure>";
}
std::string cb_list(std::initializer_list<std::string_view> types) {
    std::string out = "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>";
    for (auto t : types) out += "<channel-binding type='" + std::string(t) + "'/>";
    return out + "</sasl-channel-binding>";
}

// Binding data as the TLS layer would hand it over: binary, with NULs.
TlsChannel tls_channel(std::string version) {
    TlsChannel c;
    c.version = std::move(version);
    for (int k = 0; k < 32; ++k) c.tls_exporter.push_back(static_cast<char>(k * 11));
    for (int k = 0; k < 32; ++k) c.tls_server_end_point.push_back(static_cast<char>(200 + k));
    c.tls_unique = std::string("\x00\x01\xfe\xff\x10\x20\x30\x40\x50\x60\x70\x80", 12);
    return c;
}

// Direct TLS with `channel`, up to the SASL features (with `extra` inside them); returns what
// the client answered.
std::string to_auth(Session& s, std::string_view mechanisms, std::string_view extra = {},
                    std::optional<TlsChannel> channel = std::nullopt) {
    if (channel) s.stream.set_tls_channel(*channel);
    s.stream.start(s.now);
    s.feed(header(1));
    s.take();
    auto features = sasl_features(mechanisms);
    features.insert(features.find("</stream:features>"), extra);
    s.feed(features);
    return s.take();
}

StreamOptions direct(bool certificate = false, std::string password = "pencil") {
    auto o = Session::options();
    o.direct_tls = true;
    o.client_certificate = certificate;
    o.password = std::move(password);
    return o;
}

// From the client's <auth/> through the SCRAM exchange to <success/>.
void scram(Session& s, ScramServer& server, const std::string& auth) {
    auto client_first = base64_decode(between(auth, "'>", "</auth>")).value();
    s.feed(challenge(server.first(client_first)));
    auto client_final = base64_decode(between(s.take(), "'>", "</response>")).value();
    auto server_final = server.final(client_final);
    REQUIRE_FALSE(server_final.empty());
    s.feed(success(server_final));
}

// After <success/>: the restarted stream, bind, and the Online event.
Online bound(Session& s) {
    REQUIRE(s.take().find("<stream:stream") != std::string::npos);  // RFC 6120 §6.4.6
    s.feed(header(2));
    s.feed(bind_features);
    REQUIRE(s.take().find("id='bind'") != std::string::npos);
    s.feed("<iq type='result' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
           "<jid>user@example.org/r</jid></bind></iq>");
    auto ev = s.events();
    REQUIRE(ev.size() == 1);
    REQUIRE(std::holds_alternative<Online>(ev[0]));
    return std::get<Online>(ev[0]);
}

// XEP-0474 §5.1 written out, for the server's h=.
std::string ssdp(const EVP_MD* md, std::string_view text) { return base64_encode(hash(md, text)); }

}  // namespace

TEST_CASE("sasl: EXTERNAL with a certificate sends '=' and nothing else (XEP-0178 section 3)") {
    Session s(direct(true, ""));
    CHECK(to_auth(s, "SCRAM-SHA-1 EXTERNAL PLAIN") ==
          "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>");
    s.feed(success());
    CHECK(bound(s).mechanism == "EXTERNAL");
}

TEST_CASE("sasl: EXTERNAL offered to a client without a certificate (ejabberd) is not used") {
    Session s(direct(false));
    ScramServer server;
    auto auth = to_auth(s, "EXTERNAL SCRAM-SHA-1");
    CHECK(auth.find("mechanism='SCRAM-SHA-1'") != std::string::npos);
    scram(s, server, auth);
    CHECK(bound(s).mechanism == "SCRAM-SHA-1");
}

TEST_CASE("sasl: a refused certificate falls back to SCRAM on the same stream (RFC 6120 6.4.5)") {
    Session s(direct(true));
    ScramServer server;
    CHECK(to_auth(s, "EXTERNAL SCRAM-SHA-1").find("mechanism='EXTERNAL'>=</auth>") != std::string::npos);
    s.feed(failure("not-authorized", "Certificate not trusted"));
    CHECK(s.events().empty());
    auto auth = s.take();
    REQUIRE(auth.starts_with("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>"));
    scram(s, server, auth);
    CHECK(bound(s).mechanism == "SCRAM-SHA-1; EXTERNAL refused: not-authorized (Certificate not trusted)");
}

TEST_CASE("sasl: a refused certificate without a password to fall back on fails with the server's words") {
    Session s(direct(true, ""));
    to_auth(s, "EXTERNAL SCRAM-SHA-1");
    s.feed(failure("not-authorized", "Certificate not trusted"));
    auto closed = closed_event(s);
    CHECK(closed.kind == Closed::Kind::AuthFailed);
    CHECK(closed.reason == "EXTERNAL: not-authorized (Certificate not trusted)");
    CHECK(s.take() == "</stream:stream>");

    SECTION("nor when the order ends with EXTERNAL") {
        auto o = direct(true);
        o.sasl_order = {"EXTERNAL"};
        Session only(o);
        to_auth(only, "EXTERNAL SCRAM-SHA-1");
        only.feed(failure("not-authorized", "Certificate not trusted"));
        CHECK(closed_event(only).reason == "EXTERNAL: not-authorized (Certificate not trusted)");
    }
}

TEST_CASE("sasl: a server that closes the stream after refusing the certificate is not retried") {
    Session s(direct(true));
    to_auth(s, "EXTERNAL SCRAM-SHA-256");
    s.feed(failure("not-authorized", "Certificate not trusted") + "</stream:stream>");
    auto closed = closed_event(s);
    CHECK(closed.kind == Closed::Kind::AuthFailed);
    CHECK(closed.reason == "EXTERNAL: not-authorized (Certificate not trusted); then the server closed the stream, "
                           "so SCRAM-SHA-256 could not be tried (sasl = [\"SCRAM\"] skips EXTERNAL)");
}

TEST_CASE("sasl: a connection lost during the SCRAM fallback is retried, not taken for a refusal") {
    Session s(direct(true));
    to_auth(s, "EXTERNAL SCRAM-SHA-256");
    s.feed(failure("not-authorized", "Certificate not trusted"));
    REQUIRE(s.take().find("mechanism='SCRAM-SHA-256'") != std::string::npos);
    s.stream.transport_closed("connection lost: connection reset by peer");
    auto closed = closed_event(s);
    CHECK(closed.kind == Closed::Kind::ByPeer);
    CHECK(closed.retry());
}

TEST_CASE("sasl: SCRAM-*-PLUS with each channel-binding type, verified by the server") {
    struct Case {
        const char* version;
        const char* mechanisms;
        std::string extra;
        const EVP_MD* md;
        std::string type;
        std::string description;
    };
    for (const auto& c : {
             Case{"TLSv1.3", "SCRAM-SHA-256 SCRAM-SHA-256-PLUS PLAIN", cb_list({"tls-server-end-point", "tls-exporter"}),
                  EVP_sha256(), "tls-exporter", "SCRAM-SHA-256-PLUS, tls-exporter"},
             Case{"TLSv1.3", "SCRAM-SHA-512-PLUS SCRAM-SHA-512", cb_list({"tls-server-end-point"}), EVP_sha512(),
                  "tls-server-end-point", "SCRAM-SHA-512-PLUS, tls-server-end-point"},
             Case{"TLSv1.2", "SCRAM-SHA-1 SCRAM-SHA-1-PLUS", "", EVP_sha1(), "tls-unique",
                  "SCRAM-SHA-1-PLUS, tls-unique"},
         }) {
        INFO(c.description);
        auto channel = tls_channel(c.version);
        Session s(direct());
        ScramServer server;
        server.md = c.md;
        server.binding_data = c.type == "tls-exporter"           ? channel.tls_exporter
                              : c.type == "tls-server-end-point" ? channel.tls_server_end_point
                                                                 : channel.tls_unique;
        auto auth = to_auth(s, c.mechanisms, c.extra, channel);
        std::string mechanism = c.description.substr(0, c.description.find(','));
        REQUIRE(auth.find("mechanism='" + mechanism + "'") != std::string::npos);
        auto client_first = base64_decode(between(auth, "'>", "</auth>")).value();
        CHECK(client_first.starts_with("p=" + c.type + ",,n=user,r="));
        s.feed(challenge(server.first(client_first)));
        auto client_final = base64_decode(between(s.take(), "'>", "</response>")).value();
        // RFC 5802 §7: c= is base64(gs2-header + binding data).
        CHECK(client_final.starts_with("c=" + base64_encode("p=" + c.type + ",," + server.binding_data) + ",r="));
        auto server_final = server.final(client_final);
        REQUIRE_FALSE(server_final.empty());
        s.feed(success(server_final));
        CHECK(bound(s).mechanism == c.description);
    }
}

TEST_CASE("sasl: the channel of a STARTTLS handshake is the one bound") {
    auto channel = tls_channel("TLSv1.2");
    Session s;
    ScramServer server;
    server.binding_data = channel.tls_unique;
    s.stream.start(s.now);
    s.feed(header(1));
    s.feed(starttls_features);
    s.feed("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    s.events();
    s.stream.set_tls_channel(channel);
    s.stream.tls_established(s.now);
    s.feed(header(2));
    s.take();
    s.feed(sasl_features("SCRAM-SHA-1-PLUS SCRAM-SHA-1"));
    scram(s, server, s.take());
    CHECK(bound(s).mechanism == "SCRAM-SHA-1-PLUS, tls-unique");
}

TEST_CASE("sasl: the server's XEP-0440 list steers the binding type") {
    auto type_for = [](std::string extra) {
        Session s(direct());
        auto auth = to_auth(s, "SCRAM-SHA-256-PLUS SCRAM-SHA-256", extra, tls_channel("TLSv1.2"));
        auto first = base64_decode(between(auth, "'>", "</auth>")).value();
        return first.substr(0, first.find(','));
    };
    CHECK(type_for("") == "p=tls-unique");  // TLS 1.2 without a list: RFC 5802 §6
    CHECK(type_for(cb_list({"tls-unique", "tls-server-end-point"})) == "p=tls-server-end-point");
    CHECK(type_for(cb_list({"tls-server-end-point", "tls-exporter", "tls-unique"})) == "p=tls-exporter");
    CHECK(type_for(cb_list({"tls-unique"})) == "p=tls-unique");
    CHECK(type_for(cb_list({"x-unknown", "tls-server-end-point"})) == "p=tls-server-end-point");
}

TEST_CASE("sasl: binding data but no -PLUS offered: the 'y' flag (RFC 5802 section 6)") {
    Session s(direct());
    ScramServer server;
    auto auth = to_auth(s, "SCRAM-SHA-1 PLAIN", "", tls_channel("TLSv1.3"));
    CHECK(base64_decode(between(auth, "'>", "</auth>")).value().starts_with("y,,n=user,r="));
    scram(s, server, auth);  // the server checks c=eSws, base64("y,,")
    CHECK(bound(s).mechanism == "SCRAM-SHA-1");

    SECTION("a server that did offer -PLUS refuses it; the reason says what that may mean") {
        Session refused(direct());
        to_auth(refused, "SCRAM-SHA-1", "", tls_channel("TLSv1.3"));
        refused.feed(failure("malformed-request", ""));
        auto closed = closed_event(refused);
        CHECK(closed.kind == Closed::Kind::AuthFailed);
        CHECK(closed.reason.starts_with("SCRAM-SHA-1: malformed-request (if the password is right"));
        CHECK(closed.reason.find("removed") != std::string::npos);
    }
}

TEST_CASE("sasl: channel_binding = required without -PLUS fails before anything is sent") {
    auto o = direct();
    o.channel_binding = ChannelBindingPolicy::Required;
    Session s(o);
    CHECK(to_auth(s, "SCRAM-SHA-256 SCRAM-SHA-1 PLAIN", "", tls_channel("TLSv1.3")) == "</stream:stream>");
    auto closed = closed_event(s);
    CHECK(closed.kind == Closed::Kind::AuthFailed);
    CHECK_FALSE(closed.retry());
    CHECK(closed.reason == "channel binding is required but the server offers no SCRAM-*-PLUS");

    SECTION("nor with -PLUS but no channel data") {
        Session no_data(o);
        CHECK(to_auth(no_data, "SCRAM-SHA-256-PLUS SCRAM-SHA-256") == "</stream:stream>");
        CHECK(closed_event(no_data).reason ==
              "channel binding is required but this TLS connection has no channel-binding data");
    }
    SECTION("and with -PLUS it binds") {
        Session plus(o);
        auto channel = tls_channel("TLSv1.3");
        ScramServer server;
        server.md = EVP_sha256();
        server.binding_data = channel.tls_exporter;
        scram(plus, server, to_auth(plus, "SCRAM-SHA-256-PLUS PLAIN", "", channel));
        CHECK(bound(plus).mechanism == "SCRAM-SHA-256-PLUS, tls-exporter");
    }
}

TEST_CASE("sasl: under TLS 1.3 a server with -PLUS but no XEP-0440 list gets no guessed binding type") {
    // As Debian 12's ejabberd 23.01 offers it: -PLUS under TLS 1.3, but only tls-unique known.
    const char* mechanisms = "SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1 PLAIN";
    auto channel = tls_channel("TLSv1.3");
    ScramServer server;
    server.md = EVP_sha256();

    SECTION("auto: plain SCRAM with 'n' logs in") {
        Session s(direct());
        auto auth = to_auth(s, mechanisms, "", channel);
        CHECK(auth.find("mechanism='SCRAM-SHA-256'") != std::string::npos);
        CHECK(base64_decode(between(auth, "'>", "</auth>")).value().starts_with("n,,n=user,r="));
        scram(s, server, auth);  // the server checks c=biws, base64("n,,")
        CHECK(bound(s).mechanism == "SCRAM-SHA-256");
    }
    SECTION("required: tls-exporter, and a refusal names the likely reason") {
        auto o = direct();
        o.channel_binding = ChannelBindingPolicy::Required;
        Session s(o);
        auto auth = to_auth(s, mechanisms, "", channel);
        CHECK(auth.find("mechanism='SCRAM-SHA-256-PLUS'") != std::string::npos);
        CHECK(base64_decode(between(auth, "'>", "</auth>")).value().starts_with("p=tls-exporter,,n=user,r="));
        s.feed(failure("not-authorized", "Invalid channel binding"));
        auto closed = closed_event(s);
        CHECK(closed.kind == Closed::Kind::AuthFailed);
        CHECK(closed.reason.find("tls-unique (ejabberd before 23.10)") != std::string::npos);
    }
    SECTION("auto with tls-exporter on the list: -PLUS binds") {
        Session s(direct());
        server.binding_data = channel.tls_exporter;
        auto auth = to_auth(s, mechanisms, cb_list({"tls-exporter"}), channel);
        scram(s, server, auth);
        CHECK(bound(s).mechanism == "SCRAM-SHA-256-PLUS, tls-exporter");
    }
}

TEST_CASE("sasl: XEP-0474, a signed offer that matches what we saw") {
    auto channel = tls_channel("TLSv1.3");
    Session s(direct());
    ScramServer server;
    server.binding_data = channel.tls_exporter;
    server.extensions =
        ",h=" + ssdp(EVP_sha1(), "PLAIN\x1eSCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS\x1ftls-exporter\x1etls-server-end-point");
    scram(s, server,
          to_auth(s, "SCRAM-SHA-1-PLUS SCRAM-SHA-1 PLAIN", cb_list({"tls-server-end-point", "tls-exporter"}), channel));
    CHECK(bound(s).mechanism == "SCRAM-SHA-1-PLUS, tls-exporter");
}

TEST_CASE("sasl: XEP-0474, -PLUS stripped from the features while the signed list has it") {
    auto channel = tls_channel("TLSv1.3");
    Session s(direct());
    ScramServer server;
    server.extensions = ",h=" + ssdp(EVP_sha1(), "PLAIN\x1eSCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS\x1ftls-exporter");
    auto auth = to_auth(s, "SCRAM-SHA-1 PLAIN", cb_list({"tls-exporter"}), channel);
    s.feed(challenge(server.first(base64_decode(between(auth, "'>", "</auth>")).value())));
    CHECK(s.take() == "</stream:stream>");  // no proof goes out
    auto closed = closed_event(s);
    CHECK(closed.kind == Closed::Kind::Fatal);
    CHECK_FALSE(closed.retry());
    CHECK(closed.reason == "downgrade detected: the server signed mechanisms PLAIN, SCRAM-SHA-1, SCRAM-SHA-1-PLUS "
                           "with channel bindings tls-exporter but offered PLAIN, SCRAM-SHA-1 with channel "
                           "bindings tls-exporter (XEP-0474)");
}

TEST_CASE("sasl: too few or too many PBKDF2 iterations end the login") {
    for (auto [iterations, reason] :
         {std::pair{1000, "SCRAM-SHA-1: the server asks for only 1000 PBKDF2 iterations (at least 4096 required, "
                          "RFC 5802 §5.1)"},
          std::pair{20'000'000, "SCRAM-SHA-1: the server asks for 20000000 PBKDF2 iterations (at most 1000000 "
                                "accepted: more would stall the daemon at every login)"}}) {
        Session s(direct());
        ScramServer server;
        server.iterations = iterations;
        auto auth = to_auth(s, "SCRAM-SHA-1");
        s.feed(challenge(server.first(base64_decode(between(auth, "'>", "</auth>")).value())));
        CHECK(s.take() == "</stream:stream>");
        auto closed = closed_event(s);
        CHECK(closed.kind == Closed::Kind::AuthFailed);
        CHECK(closed.reason == reason);
    }
}

TEST_CASE("sasl: a channel-binding mismatch reported by the server is explained") {
    auto channel = tls_channel("TLSv1.3");
    Session s(direct());
    ScramServer server;
    server.md = EVP_sha256();
    auto auth = to_auth(s, "SCRAM-SHA-256-PLUS", cb_list({"tls-exporter"}), channel);
    s.feed(challenge(server.first(base64_decode(between(auth, "'>", "</auth>")).value())));
    s.take();
    s.feed(challenge("e=channel-bindings-dont-match"));
    auto closed = closed_event(s);
    CHECK(closed.kind == Closed::Kind::AuthFailed);
    CHECK(closed.reason.starts_with(
        "SCRAM-SHA-256-PLUS: the server rejected the SCRAM exchange: channel-bindings-dont-match (the TLS channel "
        "the server sees is not the one we see"));

    SECTION("a failure after -PLUS without a XEP-0440 list hints at the binding type") {
        auto o = direct();
        o.channel_binding = ChannelBindingPolicy::Required;  // under TLS 1.3 auto would not guess
        Session unlisted(o);
        to_auth(unlisted, "SCRAM-SHA-256-PLUS", "", channel);
        unlisted.feed(failure("not-authorized", "Invalid channel binding"));
        auto why = closed_event(unlisted).reason;
        CHECK(why.starts_with("SCRAM-SHA-256-PLUS: not-authorized (Invalid channel binding) (if the password is "
                              "right, the server may not know tls-exporter"));
        CHECK(why.find("ejabberd") != std::string::npos);
    }
}

TEST_CASE("sasl: the login line says PLAIN, and the trace hides every SASL payload") {
    Session plain(direct());
    to_auth(plain, "PLAIN");
    plain.feed(success());
    CHECK(bound(plain).mechanism == "PLAIN");

    auto channel = tls_channel("TLSv1.3");
    Session s(direct(true));
    std::string trace;
    s.stream.set_wire_trace([&](bool out, std::string_view xml) { trace += (out ? "C: " : "S: ") + std::string(xml) + "\n"; });
    ScramServer server;
    server.binding_data = channel.tls_exporter;
    to_auth(s, "EXTERNAL SCRAM-SHA-1-PLUS", cb_list({"tls-exporter"}), channel);
    s.feed(failure("not-authorized", "Certificate not trusted"));
    scram(s, server, s.take());
    bound(s);
    CHECK(trace.find("C: <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>[redacted]</auth>") !=
          std::string::npos);
    CHECK(trace.find("C: <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1-PLUS'>[redacted]</auth>") !=
          std::string::npos);
    CHECK(trace.find(base64_encode("p=tls-exporter").substr(0, 12)) == std::string::npos);
    CHECK(trace.find(base64_encode(channel.tls_exporter).substr(0, 12)) == std::string::npos);
    CHECK(trace.find("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>[redacted]</response>") != std::string::npos);
    CHECK(trace.find("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>[redacted]</success>") != std::string::npos);
}
