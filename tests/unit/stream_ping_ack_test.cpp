// ClientStream: acknowledgement by ping, for servers without XEP-0198 stream management.
#include "stream_fixture.hpp"

using namespace stream_test;

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
