#pragma once
// The fixture of the ClientStream tests (stream_*_test.cpp): a stream fed the scripted server
// of login_server.hpp at a fixed time, what it wrote and its events; the XEP-0198 helpers
// (also used by the roster-feature tests of a resumed session).
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <string>
#include <vector>

#include "protocol/base/base64.hpp"
#include "protocol/im.hpp"
#include "protocol/stream.hpp"
#include "login_server.hpp"

namespace stream_test {

using namespace xmpp;
using namespace std::chrono_literals;

using namespace test_server;

struct Session {
    TimePoint now = TimePoint{} + 1000s;
    ClientStream stream;
    std::string out;  // everything the client wrote since the last take()

    explicit Session(StreamOptions o = options()) : stream(std::move(o)) {}

    static StreamOptions options() {
        StreamOptions o;
        o.jid = Jid::parse("user@example.org").value();
        o.password = "pencil";
        o.software_version = "1.2.3";
        return o;
    }
    void feed(std::string_view bytes) { stream.receive(bytes, now); }
    std::string take() {
        out = stream.take_output();
        return out;
    }
    std::vector<StreamEvent> events() {
        std::vector<StreamEvent> v;
        while (auto e = stream.next_event()) v.push_back(std::move(*e));
        return v;
    }
    // STARTTLS then SCRAM-SHA-1 then bind; returns the Online event.
    Online login(ScramServer& server, std::string_view mechanisms = "SCRAM-SHA-1 PLAIN") {
        stream.start(now);
        REQUIRE(take().find("<stream:stream to='example.org' version='1.0'") != std::string::npos);
        CHECK(out.find("from=") == std::string::npos);  // RFC 6120 §4.7.1: not before TLS
        feed(header(1));
        feed(starttls_features);
        CHECK(take() == "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        feed("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        auto ev = events();
        REQUIRE(ev.size() == 1);
        REQUIRE(std::holds_alternative<StartTls>(ev[0]));
        CHECK(stream.state() == StreamState::StartingTls);
        stream.tls_established(now);
        CHECK(take().find("from='user@example.org'") != std::string::npos);
        feed(header(2));
        feed(sasl_features(mechanisms));
        take();
        REQUIRE(out.find("mechanism='SCRAM-SHA-1'") != std::string::npos);
        auto client_first = base64_decode(between(out, "'>", "</auth>")).value();
        feed("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" +
             base64_encode(server.first(client_first)) + "</challenge>");
        auto client_final = base64_decode(between(take(), "'>", "</response>")).value();
        auto server_final = server.final(client_final);
        REQUIRE_FALSE(server_final.empty());
        feed("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + base64_encode(server_final) + "</success>");
        CHECK(take().find("<stream:stream") != std::string::npos);  // §6.4.6 restart
        feed(header(3));
        feed(bind_features);
        CHECK(take().find("<resource>stanzad</resource>") != std::string::npos);
        feed("<iq type='result' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
             "<jid>user@example.org/stanzad-x1</jid></bind></iq>");
        ev = events();
        REQUIRE(ev.size() == 1);
        REQUIRE(std::holds_alternative<Online>(ev[0]));
        CHECK(stream.state() == StreamState::Online);
        return std::get<Online>(ev[0]);
    }
};

inline Closed closed_event(Session& s) {
    auto ev = s.events();
    REQUIRE(ev.size() == 1);
    REQUIRE(std::holds_alternative<Closed>(ev[0]));
    CHECK(s.stream.state() == StreamState::Closed);
    return std::get<Closed>(ev[0]);
}

// ---------------------------------------------------------------------------------------
// XEP-0198 stream management

inline constexpr std::string_view sm_bind_features =
    "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:3'/></stream:features>";

// Direct TLS and PLAIN up to the bind/resume step, with stream management offered.
inline void authenticate(Session& s) {
    s.stream.start(s.now);
    s.feed(header(1));
    s.feed(sasl_features("PLAIN"));
    s.feed("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    s.feed(header(2));
    s.take();
    s.feed(sm_bind_features);
}

inline StreamOptions sm_options(std::optional<SmSession> resume = std::nullopt) {
    auto o = Session::options();
    o.direct_tls = true;
    o.ping_interval = 60s;
    o.ping_timeout = 10s;
    o.resume = std::move(resume);
    return o;
}

inline Online enable(Session& s) {
    authenticate(s);
    REQUIRE(s.take().find("id='bind'") != std::string::npos);
    s.feed("<iq type='result' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
           "<jid>user@example.org/r</jid></bind></iq>");
    CHECK(s.take() == "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    CHECK(s.events().empty());  // online only once the server answered
    s.feed("<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true' max='600'/>");
    auto ev = s.events();
    REQUIRE(ev.size() == 1);
    auto online = std::get<Online>(ev[0]);
    CHECK(online.stream_management);
    CHECK_FALSE(online.resumed);
    return online;
}

inline std::vector<std::string> acked_tags(Session& s) {
    std::vector<std::string> tags;
    for (auto& e : s.events())
        if (auto* a = std::get_if<Acked>(&e))
            for (auto& t : a->tags) tags.push_back(t);
    return tags;
}

}  // namespace stream_test
