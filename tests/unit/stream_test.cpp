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

using namespace xmpp;
using namespace std::chrono_literals;

namespace {

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

Closed closed_event(Session& s) {
    auto ev = s.events();
    REQUIRE(ev.size() == 1);
    REQUIRE(std::holds_alternative<Closed>(ev[0]));
    CHECK(s.stream.state() == StreamState::Closed);
    return std::get<Closed>(ev[0]);
}

}  // namespace

TEST_CASE("stream: STARTTLS, SCRAM-SHA-1 with the server signature checked, bind, online") {
    Session s;
    ScramServer server;
    Online online = s.login(server);
    CHECK(online.jid.full() == "user@example.org/stanzad-x1");
    CHECK(online.mechanism == "SCRAM-SHA-1");
}

TEST_CASE("stream: the strongest SCRAM the server offers is chosen") {
    Session s;
    s.stream.start(s.now);
    s.feed(header(1));
    s.feed(starttls_features);
    s.feed("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    s.stream.tls_established(s.now);
    s.feed(header(2));
    s.take();
    s.feed(sasl_features("PLAIN SCRAM-SHA-1 SCRAM-SHA-256 SCRAM-SHA-512-PLUS SCRAM-SHA-512"));
    CHECK(s.take().find("mechanism='SCRAM-SHA-512'") != std::string::npos);
}

TEST_CASE("stream: a wrong server signature fails authentication without restarting the stream") {
    Session s;
    ScramServer server;
    s.stream.start(s.now);
    s.feed(header(1));
    s.feed(starttls_features);
    s.feed("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    s.events();
    s.stream.tls_established(s.now);
    s.feed(header(2));
    s.take();
    s.feed(sasl_features("SCRAM-SHA-1"));
    auto client_first = base64_decode(between(s.take(), "'>", "</auth>")).value();
    s.feed("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" +
           base64_encode(server.first(client_first)) + "</challenge>");
    auto client_final = base64_decode(between(s.take(), "'>", "</response>")).value();
    s.feed("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" +
           base64_encode(server.final(client_final, /*corrupt_signature=*/true)) + "</success>");
    auto closed = closed_event(s);
    CHECK(closed.kind == Closed::Kind::AuthFailed);
    CHECK_FALSE(closed.retry());
    CHECK(s.take() == "</stream:stream>");
}

TEST_CASE("stream: SASL failure says why; only temporary failures are retried") {
    for (auto [condition, retry] : {std::pair{"not-authorized", false}, {"account-disabled", false},
                                    {"temporary-auth-failure", true}}) {
        Session s;
        s.stream.start(s.now);
        s.feed(header(1));
        s.feed(starttls_features);
        s.feed("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        s.events();
        s.stream.tls_established(s.now);
        s.feed(header(2));
        s.feed(sasl_features("SCRAM-SHA-1"));
        s.feed(std::string("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><") + condition +
               "/><text xml:lang='en'>Nope</text></failure>");
        auto closed = closed_event(s);
        CHECK(closed.retry() == retry);
        CHECK(closed.reason == std::string("SCRAM-SHA-1: ") + condition + " (Nope)");
    }
}

TEST_CASE("stream: no STARTTLS offered means no login in the clear") {
    Session s;
    s.stream.start(s.now);
    s.feed(header(1));
    s.feed(sasl_features("PLAIN"));
    auto closed = closed_event(s);
    CHECK(closed.kind == Closed::Kind::Fatal);
    CHECK(closed.reason.find("STARTTLS") != std::string::npos);
    CHECK(s.take().find("<auth") == std::string::npos);
}

TEST_CASE("stream: PLAIN only when no SCRAM is offered, and only inside TLS") {
    auto o = Session::options();
    o.direct_tls = true;
    Session s(o);
    s.stream.start(s.now);
    CHECK(s.take().find("from='user@example.org'") != std::string::npos);
    s.feed(header(1));
    s.feed(sasl_features("PLAIN"));
    s.take();
    CHECK(s.out.find("mechanism='PLAIN'") != std::string::npos);
    CHECK(base64_decode(between(s.out, "'>", "</auth>")).value() == std::string("\0user\0pencil", 12));
}

TEST_CASE("stream: the whole server side, fed one byte at a time, gives the same result") {
    auto o = Session::options();
    o.direct_tls = true;
    Session s(o);
    s.stream.start(s.now);
    std::string transcript = header(1) + sasl_features("PLAIN") +
                             "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" + header(2) +
                             std::string(bind_features) +
                             "<iq type='result' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                             "<jid>user@example.org/r</jid></bind></iq>"
                             "<message from='a@b/c'><body>hi</body></message>";
    std::vector<StreamEvent> events;
    for (char c : transcript) {
        s.feed(std::string_view(&c, 1));
        for (auto& e : s.events()) events.push_back(std::move(e));
    }
    REQUIRE(events.size() == 2);
    CHECK(std::get<Online>(events[0]).jid.full() == "user@example.org/r");
    CHECK(std::string(std::get<StanzaReceived>(events[1]).stanza.root().child("body").child_value()) == "hi");
}

TEST_CASE("stream: answers ping, disco#info, version, and service-unavailable for the rest") {
    Session s;
    ScramServer server;
    s.login(server);
    s.take();
    s.feed("<iq type='get' id='p1' from='bob@example.org/x' to='user@example.org/stanzad-x1'>"
           "<ping xmlns='urn:xmpp:ping'/></iq>");
    CHECK(s.take() == "<iq id='p1' to='bob@example.org/x' type='result'></iq>");

    s.feed("<iq type='get' id='d1' from='bob@example.org/x'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    s.take();
    CHECK(s.out.starts_with("<iq id='d1' to='bob@example.org/x' type='result'><query xmlns='http://jabber.org/protocol/disco#info'>"));
    CHECK(s.out.find("<identity category='client' type='pc' name='stanzad'/>") != std::string::npos);
    for (auto f : {ns_disco_info, ns_ping, ns_version})
        CHECK(s.out.find("<feature var='" + std::string(f) + "'/>") != std::string::npos);

    s.feed("<iq type='get' id='d2' from='bob@example.org/x'><query xmlns='http://jabber.org/protocol/disco#info' node='x'/></iq>");
    CHECK(s.take().find("<item-not-found") != std::string::npos);

    s.feed("<iq type='get' id='v1' from='bob@example.org/x'><query xmlns='jabber:iq:version'/></iq>");
    CHECK(s.take() == "<iq id='v1' to='bob@example.org/x' type='result'><query xmlns='jabber:iq:version'>"
                      "<name>stanzad</name><version>1.2.3</version></query></iq>");

    s.feed("<iq type='set' id='u1' from='bob@example.org/x'><query xmlns='urn:example:unknown'/></iq>");
    CHECK(s.take() == "<iq id='u1' to='bob@example.org/x' type='error'><error type='cancel'>"
                      "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");

    s.feed("<iq type='get' id='b1' from='bob@example.org/x'/>");
    CHECK(s.take().find("<bad-request") != std::string::npos);
    s.feed("<iq type='result' id='r1' from='bob@example.org/x'/>");
    CHECK(s.take().empty());
    auto ev = s.events();
    REQUIRE(ev.size() == 1);  // results we did not ask for go up to the owner
    CHECK(std::holds_alternative<StanzaReceived>(ev[0]));
}

TEST_CASE("stream: close() waits for the server's closing tag, bounded") {
    Session s;
    ScramServer server;
    s.login(server);
    s.take();
    s.stream.close(s.now);
    CHECK(s.take() == "</stream:stream>");
    CHECK(s.stream.state() == StreamState::Closing);
    s.feed("<message><body>late</body></message><iq type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>"
           "</stream:stream>");
    auto ev = s.events();
    REQUIRE(ev.size() == 2);  // the late message is kept; the iq is not answered
    CHECK(std::string(std::get<StanzaReceived>(ev[0]).stanza.root().child("body").child_value()) == "late");
    auto closed = std::get<Closed>(ev[1]);
    CHECK(closed.kind == Closed::Kind::Requested);
    CHECK(closed.clean);
    CHECK(s.take().empty());

    Session t;
    t.login(server);
    t.stream.close(t.now);
    REQUIRE(t.stream.next_deadline());
    CHECK(*t.stream.next_deadline() == t.now + 3s);
    t.stream.handle_timeout(t.now + 2999ms);
    CHECK(t.events().empty());
    t.stream.handle_timeout(t.now + 3s);
    auto late = closed_event(t);
    CHECK_FALSE(late.clean);
    CHECK(late.reason.find("did not close its stream") != std::string::npos);
}

TEST_CASE("stream: the server closing first gets our closing tag") {
    Session s;
    ScramServer server;
    s.login(server);
    s.take();
    s.feed("</stream:stream>");
    auto closed = closed_event(s);
    CHECK(closed.kind == Closed::Kind::ByPeer);
    CHECK(closed.retry());
    CHECK(s.take() == "</stream:stream>");
}

TEST_CASE("stream: stream errors close the stream; conflict is not retried") {
    for (auto [condition, retry] : {std::pair{"conflict", false}, {"system-shutdown", true}}) {
        Session s;
        ScramServer server;
        s.login(server);
        s.take();
        s.feed(std::string("<stream:error><") + condition +
               " xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>"
               "Bye</text></stream:error>");
        auto closed = closed_event(s);
        CHECK(closed.retry() == retry);
        CHECK(closed.reason == std::string("stream error from the server: ") + condition + " (Bye)");
        CHECK(s.take() == "</stream:stream>");
    }
}

TEST_CASE("stream: bad XML from the server is answered with a stream error") {
    Session s;
    ScramServer server;
    s.login(server);
    s.take();
    s.feed("<message><!-- no --></message>");
    auto closed = closed_event(s);
    CHECK(closed.kind == Closed::Kind::Error);
    CHECK(s.take() == "<stream:error><restricted-xml xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                      "</stream:error></stream:stream>");
}

TEST_CASE("stream: keepalive ping finds a dead connection; any answer keeps it") {
    Session s;
    ScramServer server;
    s.login(server);
    s.take();
    auto t = *s.stream.next_deadline();
    CHECK(t == s.now + 60s);
    s.stream.handle_timeout(t);
    auto ping = s.take();
    REQUIRE(ping.find("<ping xmlns='urn:xmpp:ping'/>") != std::string::npos);
    auto id = between(ping, "id='", "'");
    s.now = t + 1s;
    s.feed("<iq type='error' id='" + id + "' from='example.org'><error type='cancel'>"
           "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    CHECK(s.events().empty());
    CHECK(*s.stream.next_deadline() == s.now + 60s);

    s.stream.handle_timeout(s.now + 60s);
    CHECK(s.take().find("<ping") != std::string::npos);
    CHECK(*s.stream.next_deadline() == s.now + 90s);
    s.stream.handle_timeout(s.now + 90s);
    auto closed = closed_event(s);
    CHECK(closed.retry());
    CHECK(closed.reason.find("no answer") != std::string::npos);
}

TEST_CASE("stream: a login that stalls is abandoned at the negotiation deadline") {
    Session s;
    s.stream.start(s.now);
    s.feed(header(1));
    CHECK(*s.stream.next_deadline() == s.now + 30s);
    s.stream.handle_timeout(s.now + 30s);
    auto closed = closed_event(s);
    CHECK(closed.retry());
    CHECK(closed.reason.find("did not complete") != std::string::npos);
}

TEST_CASE("stream: the wire trace never shows SASL payloads") {
    Session s;
    std::string trace;
    s.stream.set_wire_trace([&](bool out, std::string_view xml) { trace += (out ? "C: " : "S: ") + std::string(xml) + "\n"; });
    ScramServer server;
    s.login(server);
    CHECK(trace.find("[redacted]") != std::string::npos);
    CHECK(trace.find("n,,n=user") == std::string::npos);
    CHECK(trace.find(base64_encode("n,,n=user").substr(0, 8)) == std::string::npos);
    CHECK(trace.find("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>[redacted]</challenge>") != std::string::npos);
    CHECK(trace.find("S: <iq type=\"result\" id=\"bind\"") != std::string::npos);
}

// ---------------------------------------------------------------------------------------
// XEP-0198 stream management

namespace {

constexpr std::string_view sm_bind_features =
    "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:3'/></stream:features>";

// Direct TLS and PLAIN up to the bind/resume step, with stream management offered.
void authenticate(Session& s) {
    s.stream.start(s.now);
    s.feed(header(1));
    s.feed(sasl_features("PLAIN"));
    s.feed("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    s.feed(header(2));
    s.take();
    s.feed(sm_bind_features);
}

StreamOptions sm_options(std::optional<SmSession> resume = std::nullopt) {
    auto o = Session::options();
    o.direct_tls = true;
    o.ping_interval = 60s;
    o.ping_timeout = 10s;
    o.resume = std::move(resume);
    return o;
}

Online enable(Session& s) {
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

std::vector<std::string> acked_tags(Session& s) {
    std::vector<std::string> tags;
    for (auto& e : s.events())
        if (auto* a = std::get_if<Acked>(&e))
            for (auto& t : a->tags) tags.push_back(t);
    return tags;
}

}  // namespace

TEST_CASE("sm: enabled after bind; one ack request per window of stanzas; <a/> reports the tags") {
    Session s(sm_options());
    enable(s);
    auto id = [](int i) { return "m" + std::to_string(i); };
    for (int i = 1; i <= 63; ++i) s.stream.send("<message to='b@c' id='" + id(i) + "'/>", s.now, id(i));
    CHECK(s.take().find("<r xmlns='urn:xmpp:sm:3'/>") == std::string::npos);
    CHECK(*s.stream.next_deadline() == s.now + 250ms);  // a short delay before asking
    s.stream.send("<message to='b@c' id='m64'/>", s.now, "m64");
    CHECK(s.take() == "<message to='b@c' id='m64'/><r xmlns='urn:xmpp:sm:3'/>");  // the window is full
    s.feed("<a xmlns='urn:xmpp:sm:3' h='3'/>");
    CHECK(acked_tags(s) == std::vector<std::string>{"m1", "m2", "m3"});
    s.feed("<a xmlns='urn:xmpp:sm:3' h='64'/>");
    CHECK(acked_tags(s).size() == 61);
    s.feed("<a xmlns='urn:xmpp:sm:3' h='64'/>");  // the same h again: nothing new
    CHECK(acked_tags(s).empty());
}

TEST_CASE("sm: a window of bytes asks for an ack before the window of stanzas is full") {
    Session s(sm_options());
    enable(s);
    // 4 KiB bodies: the 16 KiB window fills on the 4th stanza, long before 64.
    const std::string body(4096, 'x');
    for (int i = 1; i <= 3; ++i) s.stream.send("<message to='b@c'><body>" + body + "</body></message>", s.now, "b");
    CHECK(s.take().find("<r xmlns='urn:xmpp:sm:3'/>") == std::string::npos);
    s.stream.send("<message to='b@c'><body>" + body + "</body></message>", s.now, "b");
    CHECK(s.take().ends_with("</message><r xmlns='urn:xmpp:sm:3'/>"));
    // The count starts again after each request.
    s.stream.send("<message to='b@c'><body>" + body + "</body></message>", s.now, "b");
    CHECK(s.take().find("<r xmlns='urn:xmpp:sm:3'/>") == std::string::npos);
}

TEST_CASE("sm: a burst of 10,000 stanzas carries 10000/64 ack requests, plus one for its tail") {
    Session s(sm_options());
    enable(s);
    std::size_t requests = 0;
    const std::string r = "<r xmlns='urn:xmpp:sm:3'/>";
    auto count = [&](const std::string& out) {
        for (auto at = out.find(r); at != std::string::npos; at = out.find(r, at + 1)) ++requests;
    };
    for (int i = 0; i < 10000; ++i) {
        s.stream.send("<message to='b@c' id='k" + std::to_string(i) + "'><body>hello</body></message>", s.now, "");
        if (i % 100 == 99) {
            count(s.take());
            // The server keeps up: its <a/> covers everything so far.
            s.feed("<a xmlns='urn:xmpp:sm:3' h='" + std::to_string(i + 1) + "'/>");
        }
    }
    count(s.take());
    CHECK(requests == 10000 / 64);
    // The last 16 (10000 - 156 * 64) get theirs ack_delay later.
    s.now += 250ms;
    s.stream.handle_timeout(s.now);
    count(s.take());
    CHECK(requests == 10000 / 64 + 1);
}

TEST_CASE("sm: a single stanza is followed by an ack request shortly after") {
    Session s(sm_options());
    enable(s);
    s.stream.send("<message to='b@c' id='x'/>", s.now, "x");
    s.take();
    s.stream.handle_timeout(s.now + 250ms);
    CHECK(s.take() == "<r xmlns='urn:xmpp:sm:3'/>");
}

TEST_CASE("sm: the server's <r/> is answered at once with what we handled, iq answers included") {
    Session s(sm_options());
    enable(s);
    s.feed("<message from='b@c/d'><body>1</body></message><presence from='b@c/d'/>"
           "<iq type='get' id='p' from='b@c/d'><ping xmlns='urn:xmpp:ping'/></iq>");
    s.take();
    s.events();
    s.feed("<r xmlns='urn:xmpp:sm:3'/>");
    CHECK(s.take() == "<a xmlns='urn:xmpp:sm:3' h='3'/>");
    // Our pong was a stanza too: the server acknowledges it as our first.
    s.feed("<a xmlns='urn:xmpp:sm:3' h='1'/>");
    CHECK(s.stream.state() == StreamState::Online);
}

TEST_CASE("sm: an <a/> beyond what we sent is a stream error, not a crash") {
    Session s(sm_options());
    enable(s);
    s.stream.send("<message to='b@c'/>", s.now, "m1");
    s.take();
    s.feed("<a xmlns='urn:xmpp:sm:3' h='7'/>");
    auto closed = closed_event(s);
    CHECK(closed.kind == Closed::Kind::Error);
    auto out = s.take();
    CHECK(out.find("<handled-count-too-high xmlns='urn:xmpp:sm:3' h='7' send-count='1'/>") != std::string::npos);
    CHECK_FALSE(s.stream.take_resumable());
}

TEST_CASE("sm: a dropped connection is resumed; what the server missed is sent again") {
    Session first(sm_options());
    enable(first);
    for (int i = 1; i <= 3; ++i) first.stream.send("<message id='m" + std::to_string(i) + "'/>", first.now, "m" + std::to_string(i));
    first.feed("<message from='b@c/d'><body>in</body></message>");
    first.events();
    first.stream.transport_closed("connection reset");
    first.events();
    auto session = first.stream.take_resumable();
    REQUIRE(session);
    CHECK(session->id == "sm-1");
    CHECK(session->max == 600);
    CHECK(session->queue.unacked_count() == 3);
    CHECK(session->queue.inbound() == 1);

    Session second(sm_options(std::move(session)));
    authenticate(second);
    CHECK(second.take() == "<resume xmlns='urn:xmpp:sm:3' h='1' previd='sm-1'/>");
    second.feed("<resumed xmlns='urn:xmpp:sm:3' h='1' previd='sm-1'/>");
    auto ev = second.events();
    REQUIRE(ev.size() == 2);
    CHECK(std::get<Acked>(ev[0]).tags == std::vector<std::string>{"m1"});
    auto online = std::get<Online>(ev[1]);
    CHECK(online.resumed);
    CHECK(online.jid.full() == "user@example.org/r");
    CHECK(second.take() == "<message id='m2'/><message id='m3'/><r xmlns='urn:xmpp:sm:3'/>");
    second.feed("<a xmlns='urn:xmpp:sm:3' h='3'/>");
    CHECK(acked_tags(second) == std::vector<std::string>{"m2", "m3"});
}

TEST_CASE("sm: a refused resumption binds a new session and reports what was acknowledged") {
    Session first(sm_options());
    enable(first);
    for (int i = 1; i <= 3; ++i) first.stream.send("<message id='m" + std::to_string(i) + "'/>", first.now, "m" + std::to_string(i));
    first.stream.transport_closed("connection reset");
    auto session = first.stream.take_resumable();
    REQUIRE(session);

    Session second(sm_options(std::move(session)));
    authenticate(second);
    second.take();
    second.feed("<failed xmlns='urn:xmpp:sm:3' h='2'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
    CHECK(acked_tags(second) == std::vector<std::string>{"m1", "m2"});
    CHECK(second.take().find("id='bind'") != std::string::npos);
    second.feed("<iq type='result' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                "<jid>user@example.org/r2</jid></bind></iq>");
    CHECK(second.take() == "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    second.feed("<enabled xmlns='urn:xmpp:sm:3' id='sm-2' resume='true'/>");
    auto ev = second.events();
    REQUIRE(ev.size() == 1);
    auto online = std::get<Online>(ev[0]);
    CHECK_FALSE(online.resumed);
    CHECK(online.resume_failure == "item-not-found");
    // The new session counts from zero; m3 is the owner's to send again (from its outbox).
    second.stream.send("<message id='m3'/>", second.now, "m3");
    second.feed("<a xmlns='urn:xmpp:sm:3' h='1'/>");
    CHECK(acked_tags(second) == std::vector<std::string>{"m3"});
}

TEST_CASE("sm: no ack within the timeout means a dead link, which may be resumed") {
    Session s(sm_options());
    enable(s);
    auto quiet = *s.stream.next_deadline();
    CHECK(quiet == s.now + 60s);
    s.stream.handle_timeout(quiet);
    CHECK(s.take() == "<r xmlns='urn:xmpp:sm:3'/>");  // silence: ask instead of a ping
    CHECK(*s.stream.next_deadline() == quiet + 10s);
    s.stream.handle_timeout(quiet + 10s);
    auto closed = closed_event(s);
    CHECK(closed.retry());
    CHECK(closed.reason.find("no acknowledgement") != std::string::npos);
    CHECK(s.stream.take_resumable());
}

TEST_CASE("sm: a clean close asks for a last ack and cannot be resumed") {
    Session s(sm_options());
    enable(s);
    s.stream.send("<message id='m1'/>", s.now, "m1");
    s.take();
    s.stream.close(s.now);
    CHECK(s.take() == "<r xmlns='urn:xmpp:sm:3'/></stream:stream>");
    s.feed("<a xmlns='urn:xmpp:sm:3' h='1'/></stream:stream>");
    auto ev = s.events();
    REQUIRE(ev.size() == 2);
    CHECK(std::get<Acked>(ev[0]).tags == std::vector<std::string>{"m1"});
    CHECK(std::get<Closed>(ev[1]).clean);
    CHECK_FALSE(s.stream.take_resumable());
}

TEST_CASE("sm: a server that refuses enable still gets us online, without acks") {
    Session s(sm_options());
    authenticate(s);
    s.take();
    s.feed("<iq type='result' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
           "<jid>user@example.org/r</jid></bind></iq>");
    s.take();
    s.feed("<failed xmlns='urn:xmpp:sm:3'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
    auto ev = s.events();
    REQUIRE(ev.size() == 1);
    CHECK_FALSE(std::get<Online>(ev[0]).stream_management);
    s.stream.send("<message/>", s.now, "m1");
    CHECK(s.take() == "<message/>");  // no <r/>
    // Acknowledged by a ping instead, shortly after (issue 18).
    CHECK(*s.stream.next_deadline() == s.now + 250ms);
}

TEST_CASE("sm: a connection that dies before the server answers <resume/> passes the session on") {
    Session first(sm_options());
    enable(first);
    first.stream.send("<message id='m1'/>", first.now, "m1");
    first.stream.transport_closed("reset");
    auto session = first.stream.take_resumable();
    REQUIRE(session);
    Session second(sm_options(std::move(session)));
    second.stream.start(second.now);
    second.stream.transport_closed("black hole");  // not even authenticated
    auto again = second.stream.take_resumable();
    REQUIRE(again);
    CHECK(again->id == "sm-1");
    CHECK(again->queue.unacked_count() == 1);
}

TEST_CASE("sm: a checkpoint taken while online resumes the session after a restart") {
    Session first(sm_options());
    enable(first);
    first.stream.send("<message id='m1'/>", first.now, "m1");
    first.feed("<message from='b@c/d'><body>1</body></message><message from='b@c/d'><body>2</body></message>");
    first.events();
    auto cp = first.stream.checkpoint();
    REQUIRE(cp);
    CHECK(*cp == SmCheckpoint{"sm-1", "", "user@example.org/r", 2});

    // A new process: only the checkpoint is known.
    SmSession restored{cp->id, cp->location, Jid::parse(cp->jid).value(), SmQueue(), 0, true};
    restored.queue.set_inbound(cp->inbound);
    Session second(sm_options(std::move(restored)));
    authenticate(second);
    CHECK(second.take() == "<resume xmlns='urn:xmpp:sm:3' h='2' previd='sm-1'/>");
    second.feed("<resumed xmlns='urn:xmpp:sm:3' h='7' previd='sm-1'/>");  // any h is taken as is
    auto ev = second.events();
    REQUIRE(ev.size() == 1);
    auto online = std::get<Online>(ev[0]);
    CHECK(online.resumed);
    CHECK(online.restored);
    CHECK(online.jid.full() == "user@example.org/r");
    CHECK(second.take().empty());  // nothing resent by the stream: the owner does that
    second.stream.send("<message id='m1'/>", second.now, "m1");  // counted as our 8th
    second.feed("<a xmlns='urn:xmpp:sm:3' h='8'/>");
    CHECK(acked_tags(second) == std::vector<std::string>{"m1"});
    second.feed("<r xmlns='urn:xmpp:sm:3'/>");
    CHECK(second.take().find("<a xmlns='urn:xmpp:sm:3' h='2'/>") != std::string::npos);
}

TEST_CASE("sm: no checkpoint without a resumable session, or after a clean close") {
    Session s(sm_options());
    CHECK_FALSE(s.stream.checkpoint());
    enable(s);
    CHECK(s.stream.checkpoint());
    s.stream.close(s.now);
    CHECK_FALSE(s.stream.checkpoint());
}

TEST_CASE("sm: a location is split into host and port") {
    using P = std::pair<std::string, int>;
    CHECK(split_location("") == P{"", 0});
    CHECK(split_location("xmpp.example.org") == P{"xmpp.example.org", 0});
    CHECK(split_location("xmpp.example.org:5223") == P{"xmpp.example.org", 5223});
    CHECK(split_location("[2001:db8::1]:5222") == P{"2001:db8::1", 5222});
    CHECK(split_location("[2001:db8::1]") == P{"2001:db8::1", 0});
    CHECK(split_location("2001:db8::1") == P{"2001:db8::1", 0});
    CHECK(split_location("host:99999") == P{"host", 0});
    CHECK(split_location("host:x") == P{"host", 0});
}

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

// Acknowledgement by ping without XEP-0198 v3 (issue 18), against a scripted server that
// offers no stream management (as jabberd2 2.7).
namespace {

std::vector<std::string> ping_ids(const std::string& out) {
    std::vector<std::string> ids;
    for (std::size_t at = 0; (at = out.find("<iq type='get' id='pa", at)) != std::string::npos; ++at)
        ids.push_back(between(out.substr(at), "id='", "'"));
    return ids;
}

std::vector<std::string> acked_by_ping(Session& s) {
    std::vector<std::string> tags;
    for (auto& e : s.events())
        if (auto* a = std::get_if<Acked>(&e)) tags.insert(tags.end(), a->tags.begin(), a->tags.end());
    return tags;
}

void send_messages(Session& s, int from, int to) {
    for (int i = from; i <= to; ++i)
        s.stream.send("<message to='bob@example.org' id='m" + std::to_string(i) + "'><body>x</body></message>", s.now,
                      "m" + std::to_string(i));
}

}  // namespace

TEST_CASE("ping-ack: a burst gets a ping; its answer acknowledges exactly what went before") {
    Session s;
    ScramServer server;
    s.login(server);
    s.take();
    send_messages(s, 1, 5);  // ack_burst = 5: the ping follows at once
    auto ids = ping_ids(s.take());
    REQUIRE(ids.size() == 1);
    send_messages(s, 6, 7);  // after the ping: not covered by it
    CHECK(ping_ids(s.take()).empty());
    s.feed("<iq type='result' id='" + ids[0] + "' from='example.org'/>");
    CHECK(acked_by_ping(s) == std::vector<std::string>{"m1", "m2", "m3", "m4", "m5"});
    // The two after it get their own ping ack_delay later.
    auto t = *s.stream.next_deadline();
    CHECK(t == s.now + 250ms);
    s.now = t;
    s.stream.handle_timeout(t);
    ids = ping_ids(s.take());
    REQUIRE(ids.size() == 1);
    // RFC 6120 §10.3.3: jabberd2 answers from our own full JID.
    s.feed("<iq type='result' id='" + ids[0] + "' from='user@example.org/stanzad-x1' to='user@example.org/stanzad-x1'/>");
    CHECK(acked_by_ping(s) == std::vector<std::string>{"m6", "m7"});
}

TEST_CASE("ping-ack: an error answer acknowledges too; answers out of order; strangers do not") {
    Session s;
    ScramServer server;
    s.login(server);
    s.take();
    send_messages(s, 1, 5);
    auto first = ping_ids(s.take());
    s.now += 300ms;
    send_messages(s, 6, 10);
    auto second = ping_ids(s.take());
    REQUIRE(first.size() == 1);
    REQUIRE(second.size() == 1);
    // Someone else cannot acknowledge our messages.
    s.feed("<iq type='result' id='" + second[0] + "' from='mallory@example.org/x'/>");
    auto ev = s.events();
    REQUIRE(ev.size() == 1);
    CHECK(std::holds_alternative<StanzaReceived>(ev[0]));
    // The later ping answered first (an error: a server without XEP-0199) covers all ten.
    s.feed("<iq type='error' id='" + second[0] + "' from='example.org'><error type='cancel'>"
           "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    CHECK(acked_by_ping(s).size() == 10);
    s.feed("<iq type='result' id='" + first[0] + "' from='example.org'/>");
    CHECK(s.events().empty());  // consumed, nothing more to acknowledge
    // Nothing waits: the idle keepalive is back to ping_interval.
    CHECK(*s.stream.next_deadline() == s.now + 60s);
}

TEST_CASE("ping-ack: no answer within ping_timeout is a dead link; what it covered stays unacknowledged") {
    Session s;
    ScramServer server;
    s.login(server);
    s.take();
    send_messages(s, 1, 3);  // a short batch: its ping ack_delay later
    CHECK(ping_ids(s.take()).empty());
    s.now += 250ms;
    s.stream.handle_timeout(s.now);
    REQUIRE(ping_ids(s.take()).size() == 1);
    // The connection drops between the batch and its answer: nothing was acknowledged
    // (the owner sends m1..m3 again on the next session, with the same origin-ids).
    CHECK(*s.stream.next_deadline() == s.now + 30s);  // ping_timeout, not ping_interval
    s.stream.handle_timeout(s.now + 30s);
    auto ev = s.events();
    REQUIRE(ev.size() == 1);
    auto* closed = std::get_if<Closed>(&ev[0]);
    REQUIRE(closed);
    CHECK(closed->retry());
    CHECK(closed->reason == "no answer from the server for 30 s to a ping acknowledging 3 stanza(s)");
}

TEST_CASE("ping-ack: a clean close pings last, and the answer before the server's close still counts") {
    Session s;
    ScramServer server;
    s.login(server);
    s.take();
    send_messages(s, 1, 2);
    s.stream.close(s.now);
    auto out = s.take();
    auto ids = ping_ids(out);
    REQUIRE(ids.size() == 1);
    CHECK(out.find("</stream:stream>") > out.find("<ping"));
    s.feed("<iq type='result' id='" + ids[0] + "' from='example.org'/>");
    CHECK(acked_by_ping(s) == std::vector<std::string>{"m1", "m2"});
}
