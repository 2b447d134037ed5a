// ClientStream: the login (STARTTLS, SCRAM or PLAIN, bind), the answers to pings and disco#info,
// closing, stream errors, keepalive, the negotiation deadline and the wire trace (RFC 6120).
#include "stream_fixture.hpp"

using namespace stream_test;

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
