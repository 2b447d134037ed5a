// ClientStream with XEP-0198 stream management: acks, resumption, checkpoints.
#include "stream_fixture.hpp"

using namespace stream_test;

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

// AccountSession stores a message as sent on the strength of send()'s answer.
TEST_CASE("sm: send says whether the stanza went; once the stream closes, nothing goes and it says so") {
    Session s(sm_options());
    enable(s);
    CHECK(s.stream.send("<message to='b@c' id='m1'/>", s.now, "m1"));
    s.take();
    s.feed("</stream:stream>");  // the server closes: the stream is no longer online
    s.take();
    CHECK_FALSE(s.stream.send("<message to='b@c' id='m2'/>", s.now, "m2"));
    CHECK(s.take().find("m2") == std::string::npos);
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

TEST_CASE("sm: a resumed session that then acknowledges nothing is not resumed again") {
    // Prosody 0.12 feeds a resumed connection to the old connection's parser: a stanza cut
    // off by a crash swallows what follows, so the server answers nothing on it.
    auto resumed = [](bool server_acks) {
        Session first(sm_options());
        enable(first);
        first.stream.transport_closed("reset");
        Session second(sm_options(first.stream.take_resumable()));
        authenticate(second);
        second.take();
        second.feed("<resumed xmlns='urn:xmpp:sm:3' h='0' previd='sm-1'/>");
        REQUIRE(std::get<Online>(second.events().at(0)).resumed);
        second.stream.send("<message id='m1'/>", second.now, "m1");
        if (server_acks) second.feed("<a xmlns='urn:xmpp:sm:3' h='1'/>");
        for (int i = 0; i < 3 && second.stream.state() != StreamState::Closed; ++i)
            second.stream.handle_timeout(*second.stream.next_deadline());
        std::optional<Closed> closed;
        for (auto& e : second.events())
            if (auto* c = std::get_if<Closed>(&e)) closed = *c;
        REQUIRE(closed);
        CHECK(closed->retry());
        return std::make_pair(closed->reason, second.stream.take_resumable().has_value());
    };
    auto [silent_reason, silent_resumable] = resumed(false);
    CHECK(silent_reason.find("a new session next") != std::string::npos);
    CHECK_FALSE(silent_resumable);
    // Once the server has acknowledged something, a silence later is the link's: resumed.
    auto [reason, resumable] = resumed(true);
    CHECK(reason.find("a new session next") == std::string::npos);
    CHECK(resumable);
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
