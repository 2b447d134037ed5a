// protocol/im/session: rooms (XEP-0045): joins, the room's archive, rejoins, timeouts, self-ping, leaves.
#include "im_session_fixture.hpp"

using namespace im_session_test;
using xmpp::test::frame;

namespace {

const std::string kRoom = "coven@chat.example";
const std::string kMember = "<item affiliation='member' role='participant'/>";

MucPresence room_presence(const std::string& nick, const std::string& extra) {
    auto s = test::frame("<presence from='" + kRoom + "/" + nick + "' to='alice@example.org/s'>"
                         "<x xmlns='http://jabber.org/protocol/muc#user'>" + extra + "</x></presence>");
    auto p = parse_muc_presence(s.root());
    REQUIRE(p);
    return *p;
}

// The occupant changes the front ends saw, as "change nick".
std::vector<std::string> occupant_changes(const std::vector<model::Event>& events) {
    std::vector<std::string> out;
    for (const auto& e : events)
        if (const auto* o = std::get_if<model::Occupant>(&e.body)) out.push_back(std::string(model::to_string(o->change)) + " " + o->who.nick);
    return out;
}

// The room's archive page answer (XEP-0313 §4.3) to the request `r`.
void answer_page(RecordingPort::Request& r, bool complete, const std::string& last) {
    auto iq = test::frame("<iq type='result' from='" + kRoom + "' id='x'><fin xmlns='urn:xmpp:mam:2' complete='" +
                          (complete ? "true" : "false") + "'><set xmlns='http://jabber.org/protocol/rsm'><last>" +
                          last + "</last></set></fin></iq>");
    r.done(IqReply{IqReply::Outcome::Result, iq.root(), {}});
}

}  // namespace

TEST_CASE("session: a join is answered when the room has us; its archive follows; a rejoin tells what changed") {
    Fixture f;
    std::vector<model::Reply> replies;
    f.session.join(kRoom, "alice", "", [&](model::Reply r) { replies.push_back(std::move(r)); });
    REQUIRE(f.port.sent.size() == 1);
    CHECK(f.port.sent[0].first.find("to='coven@chat.example/alice'") != std::string::npos);
    CHECK(f.port.sent[0].first.find("<c/>") != std::string::npos);  // our presence payload
    CHECK(f.session.find_room(kRoom));
    CHECK(f.session.room_presence(room_presence("bob", kMember)));
    CHECK(replies.empty());
    CHECK(f.session.room_presence(room_presence("alice", kMember + "<status code='110'/>")));
    REQUIRE(replies.size() == 1);
    REQUIRE(replies[0].rooms.size() == 1);
    CHECK(replies[0].rooms[0].state == "joined");
    CHECK(occupant_changes(f.port.delivered) == std::vector<std::string>{});  // the list comes with the join
    // Remembered for the next session, and the room's newest archive page is asked for.
    CHECK(f.store.values["rooms"].find("\"room\":\"coven@chat.example\"") != std::string::npos);
    REQUIRE(f.port.requests.size() == 1);
    CHECK(f.port.requests[0].to == kRoom);
    CHECK(f.port.requests[0].xml.find("<before/>") != std::string::npos);
    answer_page(f.port.requests[0], true, "r5");
    CHECK(f.store.values["mam_last:coven@chat.example"] == "r5");

    // A live message moves the room's position; our own echo marks ours delivered.
    REQUIRE(f.send(kRoom, "hello room", "g1").ok());
    f.receive("<message from='coven@chat.example/alice' type='groupchat' id='g1'><body>hello room</body>"
              "<origin-id xmlns='urn:xmpp:sid:0' id='g1'/>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='coven@chat.example' id='r6'/></message>");
    CHECK(f.port.states("g1") == std::vector<std::string>{"accepted", "sent", "delivered"});
    f.receive("<message from='coven@chat.example/bob' type='groupchat' id='b1'><body>hi alice</body>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='coven@chat.example' id='r7'/></message>");
    CHECK(f.store.values["mam_last:coven@chat.example"] == "r7");
    CHECK(f.port.messages().back().from == "coven@chat.example/bob");
    CHECK(f.port.messages().size() == 2);  // ours (outgoing) and bob's; the echo is not a new one

    // A new session: joined again; only who changed meanwhile is told (carol came, bob left).
    f.port.sessions = 2;
    f.port.started = f.port.clock;
    f.port.sent.clear();
    f.port.delivered.clear();
    f.session.rooms_online(false);
    REQUIRE(f.port.sent.size() == 1);
    CHECK(f.port.sent[0].first.find("to='coven@chat.example/alice'") != std::string::npos);
    f.session.room_presence(room_presence("carol", kMember));
    f.session.room_presence(room_presence("alice", kMember + "<status code='110'/>"));
    CHECK(occupant_changes(f.port.delivered) == std::vector<std::string>{"join carol", "leave bob"});
    // The catch-up asks after the kept position this time.
    REQUIRE(f.port.requests.size() == 3);  // the page, bookmarks, the page again
    CHECK(f.port.requests[2].xml.find("<after>r7</after>") != std::string::npos);
}

TEST_CASE("session: join requests time out; a lost room is joined again after a self-ping") {
    using namespace std::chrono_literals;
    Fixture f;
    std::vector<model::Reply> replies;
    f.session.join(kRoom, "alice", "", [&](model::Reply r) { replies.push_back(std::move(r)); });
    f.port.clock += 29s;
    f.session.tick(300s);
    CHECK(replies.empty());
    f.port.clock += 2s;
    f.session.tick(300s);
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].error_code == "timeout");

    // Joined later after all; then the self-ping says we are not in (XEP-0410 §3.3).
    f.session.room_presence(room_presence("alice", kMember + "<status code='110'/>"));
    f.port.requests.clear();
    f.port.sent.clear();
    f.port.clock += 301s;
    f.session.tick(300s);
    REQUIRE(f.port.requests.size() == 1);
    CHECK(f.port.requests[0].to == kRoom + "/alice");
    auto error = test::frame("<iq type='error' from='coven@chat.example/alice' id='x'><error type='cancel'>"
                             "<not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    f.port.requests[0].done(IqReply{IqReply::Outcome::Remote, error.root(), {"not-acceptable", ""}});
    REQUIRE(f.port.sent.size() == 1);
    CHECK(f.port.sent[0].first.find("to='coven@chat.example/alice'") != std::string::npos);
    CHECK(f.port.logs.back().find("no longer in coven@chat.example") != std::string::npos);
}

TEST_CASE("session: a part while offline leaves at the next login; the room is forgotten at once") {
    Fixture f;
    f.session.join(kRoom, "alice", "", [](model::Reply) {});
    f.session.room_presence(room_presence("alice", kMember + "<status code='110'/>"));
    f.port.is_online = false;
    f.port.sent.clear();
    CHECK(f.session.part(kRoom, "bye").ok());
    CHECK(f.port.sent.empty());
    CHECK_FALSE(f.session.find_room(kRoom));
    CHECK(f.store.values["rooms"] == "[]");
    CHECK(f.session.part(kRoom, "again").error_code == "not-joined");
    f.port.is_online = true;
    f.session.rooms_online(false);
    REQUIRE(!f.port.sent.empty());
    CHECK(f.port.sent[0].first.find("type='unavailable'") != std::string::npos);
    CHECK(f.port.sent[0].first.find("to='coven@chat.example/alice'") != std::string::npos);
}

