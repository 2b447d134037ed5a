// The IM core's room (protocol/im/room): joining, occupants, a rejoin that tells only what
// changed, being removed, the subject, self-ping and the retry after a service shutdown. Fed
// real room presences (XEP-0045 §7.2, §7.6, §9.8, §10.9 examples, our JIDs) and times.
#include <catch2/catch.hpp>

#include <algorithm>
#include <variant>

#include "protocol/im/room.hpp"
#include "stanza_helpers.hpp"

using namespace xmpp;
using namespace xmpp::im;
using namespace std::chrono_literals;
using xmpp::test::frame;

namespace {

const std::string kRoom = "coven@chat.example";
const Room::TimePoint t0 = Room::TimePoint{} + 1000h;

// A presence from `nick` in the room: `extra` inside <x muc#user/> (items, status codes),
// `attrs` on <presence/> (type), `outside` after the <x/> (show).
MucPresence presence(const std::string& nick, const std::string& extra, const std::string& attrs = "",
                     const std::string& outside = "") {
    auto s = frame("<presence from='" + kRoom + "/" + nick + "' to='alice@example/stanzad'" + attrs + ">" + outside +
                   "<x xmlns='http://jabber.org/protocol/muc#user'>" + extra + "</x></presence>");
    auto p = parse_muc_presence(s.root());
    REQUIRE(p);
    return *p;
}

const std::string kMember = "<item affiliation='member' role='participant'/>";
const std::string kSelf = kMember + "<status code='110'/>";

MucPresence self(const std::string& nick = "alice", const std::string& codes = "") {
    return presence(nick, kSelf + codes);
}

// The occupant changes among `events`, as "change nick".
std::vector<std::string> changes(const std::vector<model::EventBody>& events) {
    std::vector<std::string> out;
    for (const auto& e : events)
        if (const auto* o = std::get_if<model::Occupant>(&e)) out.push_back(std::string(model::to_string(o->change)) + " " + o->who.nick);
    return out;
}

std::vector<std::string> states(const std::vector<model::EventBody>& events) {
    std::vector<std::string> out;
    for (const auto& e : events)
        if (const auto* s = std::get_if<model::RoomState>(&e)) out.push_back(s->state + " " + s->nick);
    return out;
}

// Joins `room` with `others` already there (§7.2.3: the others first, then ourselves).
Room::Outcome join(Room& room, const std::vector<std::string>& others, Room::TimePoint now = t0) {
    room.begin_join(now);
    for (const auto& nick : others) {
        auto out = room.presence(presence(nick, kMember), now);
        CHECK(out.events.empty());  // collected quietly while joining
    }
    return room.presence(self(), now);
}

}  // namespace

TEST_CASE("room: the first join lists the occupants quietly, then says joined once") {
    Room room(kRoom, "alice");
    CHECK(room.begin_join(t0).state == "joining");
    CHECK(room.phase() == Room::Phase::Joining);
    auto out = join(room, {"bob", "carol"});
    CHECK(room.phase() == Room::Phase::Joined);
    CHECK(changes(out.events).empty());  // a first join announces nobody: the list is in info()
    CHECK(states(out.events) == std::vector<std::string>{"joined alice"});
    CHECK(out.answer == Room::Outcome::Answer::Joined);
    CHECK(out.joined);          // the owner catches up with the room's archive now
    CHECK(out.remember);        // a room we joined is joined again after every new session
    CHECK(room.catch_up.gap_open());
    auto info = room.info();
    CHECK(info.state == "joined");
    CHECK(info.occupants.size() == 3);
    CHECK_FALSE(info.created);
}

TEST_CASE("room: 201 means we created it, 210 that the room chose our nick (§7.2.10)") {
    Room room(kRoom, "alice");
    room.begin_join(t0);
    auto out = room.presence(presence("alice2", kSelf + "<status code='201'/><status code='210'/>"), t0);
    CHECK(room.nick == "alice2");
    CHECK(room.created);
    CHECK(states(out.events) == std::vector<std::string>{"joined alice2"});
}

TEST_CASE("room: once joined, arrivals, changes, renames and departures are events") {
    Room room(kRoom, "alice");
    join(room, {"bob"});
    auto out = room.presence(presence("carol", kMember), t0);
    CHECK(changes(out.events) == std::vector<std::string>{"join carol"});
    out = room.presence(presence("carol", kMember), t0);
    CHECK(out.events.empty());  // the same presence again is no change
    out = room.presence(presence("carol", kMember, "", "<show>away</show>"), t0);
    CHECK(changes(out.events) == std::vector<std::string>{"update carol"});
    // §7.6: a rename is an unavailable with 303 and the new nick, then the new presence.
    out = room.presence(presence("bob", "<item affiliation='member' nick='robert' role='participant'/>"
                                        "<status code='303'/>",
                                 " type='unavailable'"),
                        t0);
    REQUIRE(out.events.size() == 1);
    CHECK(std::get<model::Occupant>(out.events[0]).new_nick == "robert");
    out = room.presence(presence("robert", kMember), t0);
    CHECK(out.events.empty());  // not a join: the rename said it
    // §8.2: a kick carries who and why.
    out = room.presence(presence("carol", "<item affiliation='none' role='none'><actor nick='mod'/>"
                                          "<reason>spam</reason></item><status code='307'/>",
                                 " type='unavailable'"),
                        t0);
    REQUIRE(out.events.size() == 1);
    const auto& kicked = std::get<model::Occupant>(out.events[0]);
    CHECK(kicked.change == model::OccupantChange::Kick);
    CHECK(kicked.reason == "spam");
    CHECK(room.info().occupants.size() == 2);  // alice, robert
}

TEST_CASE("room: a rejoin tells only who came, went or changed while we were away") {
    Room room(kRoom, "alice");
    join(room, {"bob", "carol", "dave"});
    // The link broke; the new session joins again. bob is gone, carol changed, erin came.
    CHECK(room.begin_join(t0 + 1h).state == "joining");
    CHECK(room.phase() == Room::Phase::Joining);
    room.presence(presence("carol", kMember, "", "<show>dnd</show>"), t0 + 1h);
    room.presence(presence("dave", kMember), t0 + 1h);
    room.presence(presence("erin", kMember), t0 + 1h);
    auto out = room.presence(self(), t0 + 1h);
    auto got = changes(out.events);
    std::sort(got.begin(), got.end());
    CHECK(got == std::vector<std::string>{"join erin", "leave bob", "update carol"});
    CHECK(states(out.events) == std::vector<std::string>{"joined alice"});  // after the differences
    CHECK(out.joined);  // catch up again: what was said meanwhile
    CHECK_FALSE(out.remember);  // already remembered
    // A rejoin after that one compares with what we saw last, not with the first time.
    room.begin_join(t0 + 2h);
    room.presence(presence("carol", kMember, "", "<show>dnd</show>"), t0 + 2h);
    room.presence(presence("dave", kMember), t0 + 2h);
    room.presence(presence("erin", kMember), t0 + 2h);
    CHECK(changes(room.presence(self(), t0 + 2h).events).empty());
}

TEST_CASE("room: a refused join ends a room we were not keeping, and puts a kept one in error") {
    auto error = [](Room& room) {
        auto s = frame("<presence from='" + kRoom + "/alice' type='error'><error type='auth'>"
                       "<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>");
        auto p = parse_muc_presence(s.root());
        REQUIRE(p);
        return room.presence(*p, t0);
    };
    Room fresh(kRoom, "alice");
    fresh.begin_join(t0);
    auto out = error(fresh);
    REQUIRE(out.gone);
    CHECK(out.gone->state == "error");
    CHECK(out.answer == Room::Outcome::Answer::None);  // the owner answers as it forgets the room

    Room kept(kRoom, "alice");
    kept.remembered = true;  // from the config or an earlier join: we keep trying
    kept.begin_join(t0);
    out = error(kept);
    CHECK_FALSE(out.gone);
    CHECK(kept.phase() == Room::Phase::Error);
    CHECK(states(out.events) == std::vector<std::string>{"error alice"});
    CHECK(out.answer == Room::Outcome::Answer::Refused);
    CHECK(out.error.find("not-authorized") != std::string::npos);

    // Joined, an error is about our nick change: the room stays joined.
    Room joined_room(kRoom, "alice");
    join(joined_room, {});
    out = error(joined_room);
    CHECK(joined_room.phase() == Room::Phase::Joined);
    CHECK(out.answer == Room::Outcome::Answer::Refused);
    CHECK(out.events.empty());
}

TEST_CASE("room: kicked, banned, destroyed or left: gone for good, with who and why") {
    struct Case {
        std::string extra, attrs, state;
    };
    for (const auto& c : std::vector<Case>{
             {"<item affiliation='none' role='none'><actor nick='mod'/><reason>bye</reason></item>"
              "<status code='110'/><status code='307'/>",
              " type='unavailable'", "kicked"},
             {"<item affiliation='outcast' role='none'/><status code='110'/><status code='301'/>", " type='unavailable'",
              "banned"},
             {"<item affiliation='none' role='none'/><status code='110'/><destroy/>", " type='unavailable'", "destroyed"},
             {"<item affiliation='none' role='none'/><status code='110'/><status code='321'/>", " type='unavailable'",
              "removed"},
             {"<item affiliation='member' role='none'/><status code='110'/>", " type='unavailable'", "left"},
         }) {
        Room room(kRoom, "alice");
        join(room, {"bob"});
        auto out = room.presence(presence("alice", c.extra, c.attrs), t0);
        REQUIRE(out.gone);
        CHECK(out.gone->state == c.state);
        if (c.state == "kicked") {
            CHECK(out.gone->actor == "mod");
            CHECK(out.gone->reason == "bye");
        }
    }
}

TEST_CASE("room: our nick change (§7.6) is remembered and answered when the new presence comes") {
    Room room(kRoom, "alice");
    join(room, {"bob"});
    room.asked = t0 + 1s;  // the owner sent the presence to the new occupant JID
    auto out = room.presence(presence("alice", "<item affiliation='member' nick='al' role='participant'/>"
                                               "<status code='110'/><status code='303'/>",
                                      " type='unavailable'"),
                             t0 + 2s);
    CHECK(room.nick == "al");
    CHECK(out.remember);
    CHECK(out.answer == Room::Outcome::Answer::None);
    out = room.presence(self("al"), t0 + 2s);
    CHECK(out.answer == Room::Outcome::Answer::Joined);
    CHECK_FALSE(out.joined);  // still in: no catch-up
    CHECK(room.info().nick == "al");
}

TEST_CASE("room: the subject is an event when it is new or changed") {
    Room room(kRoom, "alice");
    join(room, {});
    auto s = room.subject_changed("Fire burn", "bob");
    REQUIRE(s);
    CHECK(s->nick == "bob");
    CHECK_FALSE(room.subject_changed("Fire burn", "bob"));  // sent again at the next join
    CHECK(room.subject_changed("Cauldron bubble", "carol"));
    CHECK(room.subject_changed("", "carol"));  // cleared is a change too
}

TEST_CASE("room: self-ping every interval while joined, one at a time; not joined means join again") {
    Room room(kRoom, "alice");
    CHECK(room.tick(t0 + 1h, 60s) == Room::Due::Nothing);  // not joined yet
    join(room, {});
    CHECK(room.tick(t0 + 59s, 60s) == Room::Due::Nothing);
    CHECK(room.tick(t0 + 60s, 60s) == Room::Due::SelfPing);
    CHECK(room.tick(t0 + 200s, 60s) == Room::Due::Nothing);  // one out already
    CHECK_FALSE(room.self_ping_answered(false, t0 + 201s));   // still in
    CHECK(room.tick(t0 + 260s, 60s) == Room::Due::Nothing);
    CHECK(room.tick(t0 + 261s, 60s) == Room::Due::SelfPing);
    CHECK(room.self_ping_answered(true, t0 + 262s));  // §3.3 not an occupant: the owner rejoins
}

TEST_CASE("room: after the service shut down (332) it is tried again every interval until joined") {
    Room room(kRoom, "alice");
    room.remembered = true;
    join(room, {"bob"});
    auto out = room.presence(presence("alice", "<item affiliation='member' role='none'/><status code='110'/>"
                                               "<status code='332'/>",
                                      " type='unavailable'"),
                             t0 + 10s);
    CHECK_FALSE(out.gone);
    CHECK(room.phase() == Room::Phase::Error);
    CHECK(room.reason == "the chat service shut down");
    CHECK(room.tick(t0 + 69s, 60s) == Room::Due::Nothing);
    CHECK(room.tick(t0 + 70s, 60s) == Room::Due::Rejoin);
    room.begin_join(t0 + 70s);
    CHECK(room.tick(t0 + 200s, 60s) == Room::Due::Nothing);  // joining: neither
    out = room.presence(self(), t0 + 201s);
    CHECK(out.joined);
    CHECK(changes(out.events) == std::vector<std::string>{"leave bob"});  // bob did not come back
    CHECK(room.tick(t0 + 300s, 60s) == Room::Due::SelfPing);  // joined again: self-pings, no retries
}

TEST_CASE("room: a shutdown (332) of a room we were not keeping is the end of it") {
    Room room(kRoom, "alice");
    join(room, {});
    room.remembered = false;
    auto out = room.presence(presence("alice", "<item affiliation='member' role='none'/><status code='110'/>"
                                               "<status code='332'/>",
                                      " type='unavailable'"),
                             t0);
    REQUIRE(out.gone);
    CHECK(out.gone->state == "removed");
}
