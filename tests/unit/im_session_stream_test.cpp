// AccountSession::started and ::received (protocol/im/session.hpp): what a new, resumed and
// restored stream starts, and where each stanza the stream hands up goes.
#include "im_session_fixture.hpp"

using namespace im_session_test;

namespace {

// The stanzas that went out (requests, or written as they are) with `ns` in them.
int asked(const RecordingPort& port, const std::string& ns) {
    int n = 0;
    for (const auto& r : port.requests) n += r.xml.find(ns) != std::string::npos;
    for (const auto& [xml, tag] : port.sent) n += xml.find(ns) != std::string::npos;
    return n;
}

// The outbox entries written to the stream, by msg_id.
std::vector<std::string> transmitted(const RecordingPort& port) {
    std::vector<std::string> out;
    for (const auto& [xml, tag] : port.sent)
        if (!tag.empty()) out.push_back(tag);
    return out;
}

constexpr const char* roster_ns = "jabber:iq:roster";
constexpr const char* blocking_ns = "urn:xmpp:blocking";
constexpr const char* mam_ns = "urn:xmpp:mam:2";

}  // namespace

TEST_CASE("session: what a new, a resumed and a restored stream start") {
    Fixture f;
    f.port.caps.known = true;
    f.port.caps.archive = true;
    REQUIRE(f.send("bob@example.org", "waiting", "w1").ok());  // offline: it waits
    f.port.is_online = true;

    SECTION("a new session: roster, block list (XEP-0191 §3.2), device, outbox and catch-up") {
        f.session.started(false, false, false);
        CHECK(asked(f.port, roster_ns) == 1);
        CHECK(asked(f.port, blocking_ns) == 1);
        CHECK(asked(f.port, mam_ns) == 1);
        CHECK(f.encryption.onlines == 1);
        CHECK(transmitted(f.port) == std::vector<std::string>{"w1"});
    }
    SECTION("a resumed one: what was accepted meanwhile, nothing asked again") {
        f.session.started(true, false, false);
        CHECK(asked(f.port, roster_ns) == 0);
        CHECK(asked(f.port, blocking_ns) == 0);
        CHECK(asked(f.port, mam_ns) == 0);
        CHECK(f.encryption.onlines == 0);
        CHECK(transmitted(f.port) == std::vector<std::string>{"w1"});  // accepted while the stream was down
    }
    SECTION("resumed after a daemon restart: the device and the archive are checked again") {
        f.session.started(true, true, false);
        CHECK(asked(f.port, roster_ns) == 0);
        CHECK(asked(f.port, blocking_ns) == 0);
        CHECK(asked(f.port, mam_ns) == 1);
        CHECK(f.encryption.onlines == 1);
    }
    SECTION("a server without an archive (XEP-0313 §7) is not asked for one") {
        f.port.caps.archive = false;
        f.session.started(false, false, false);
        CHECK(asked(f.port, roster_ns) == 1);
        CHECK(asked(f.port, mam_ns) == 0);
    }
}

TEST_CASE("session: each stanza the stream hands up goes where it belongs") {
    Fixture f;
    f.port.is_online = true;
    auto feed = [&](const std::string& xml) {
        auto stanza = frame(xml);
        f.session.received(stanza.root());
    };
    // XEP-0249: a direct invitation is an `invite` event, stored.
    feed("<message from='carol@example.org/x' to='alice@example.org'>"
         "<x xmlns='jabber:x:conference' jid='room@muc.example.org' reason='come'/></message>");
    REQUIRE(f.port.delivered.size() == 1);
    auto* invite = std::get_if<model::Invite>(&f.port.delivered[0].body);
    REQUIRE(invite);
    CHECK(invite->room == "room@muc.example.org");
    CHECK(invite->direct);
    CHECK(f.store.events.size() == 1);
    // A PEP notification (XEP-0163) is the encryption's, never a message.
    feed("<message from='bob@example.org' to='alice@example.org'>"
         "<event xmlns='http://jabber.org/protocol/pubsub#event'/></message>");
    CHECK(f.encryption.events == 1);
    CHECK(f.port.delivered.size() == 1);
    // A chat message is a message.
    feed("<message from='bob@example.org/x' type='chat' id='c1'><body>hi</body></message>");
    REQUIRE(f.port.messages().size() == 1);
    CHECK(f.port.messages()[0].body == "hi");
    // A presence is a presence (a stranger's: shown, not kept); an iq is not the session's
    // to take here.
    feed("<presence from='dave@example.org/x'/>");
    REQUIRE(f.port.transients.size() == 1);
    auto* presence = std::get_if<model::Presence>(&f.port.transients[0]);
    REQUIRE(presence);
    CHECK(presence->from == "dave@example.org/x");
    const auto delivered = f.port.delivered.size();
    feed("<iq type='get' id='q' from='bob@example.org/x'><query xmlns='jabber:iq:version'/></iq>");
    CHECK(f.port.delivered.size() == delivered);
}

namespace {

// The roster get (RFC 6121 §2.1.3) among the requests of the last login.
RecordingPort::Request& roster_get(RecordingPort& port) {
    for (auto& r : port.requests)
        if (r.xml.find(roster_ns) != std::string::npos) return r;
    FAIL("no roster request");
    throw;
}

void answer(RecordingPort::Request& r, const std::string& iq_xml) {
    auto iq = test::frame(iq_xml);
    r.done(IqReply{IqReply::Outcome::Result, iq.root(), {}});
}

}  // namespace

TEST_CASE("session: roster versioning (RFC 6121 §2.6): the kept version is asked for, an empty result keeps the roster") {
    Fixture f;
    f.port.is_online = true;
    f.session.started(false, false, true);
    // §2.6.3: a first fetch from a server that versions asks with an empty version.
    auto& first = roster_get(f.port);
    CHECK(first.xml.find("ver=''") != std::string::npos);
    answer(first, "<iq type='result' id='x'><query xmlns='jabber:iq:roster' ver='v1'>"
                  "<item jid='bob@example.org' subscription='both'/></query></iq>");
    CHECK(f.store.values["roster_ver"] == "v1");
    CHECK(f.session.roster_items().size() == 1);

    // §2.1.6: a push carries the next version, kept together with the changed roster.
    f.session.roster({RosterEntry{"carol@example.org", "Carol", "to", {}, false}}, true, "v2");
    CHECK(f.store.values["roster_ver"] == "v2");
    CHECK(f.store.values["roster"].find("carol@example.org") != std::string::npos);

    SECTION("the next login (a restarted daemon, the same store) asks with it; an empty result changes nothing") {
        Fixture g;
        g.store.values = f.store.values;
        g.port.is_online = true;
        g.session.started(false, false, true);
        auto& again = roster_get(g.port);
        CHECK(again.xml.find("ver='v2'") != std::string::npos);
        answer(again, "<iq type='result' id='x'/>");  // §2.6.3: no changes since v2
        auto items = g.session.roster_items();
        REQUIRE(items.size() == 2);
        CHECK(g.store.values["roster_ver"] == "v2");
    }
    SECTION("a new full roster without a version replaces the roster and forgets the version") {
        Fixture g;
        g.store.values = f.store.values;
        g.port.is_online = true;
        g.session.started(false, false, true);
        answer(roster_get(g.port), "<iq type='result' id='x'><query xmlns='jabber:iq:roster'>"
                                   "<item jid='dave@example.org' subscription='from'/></query></iq>");
        auto items = g.session.roster_items();
        REQUIRE(items.size() == 1);
        CHECK(items[0].jid == "dave@example.org");
        CHECK(g.store.values["roster_ver"].empty());
    }
    SECTION("a server that does not version is never sent a 'ver'") {
        Fixture g;
        g.store.values = f.store.values;
        g.port.is_online = true;
        g.session.started(false, false, false);
        CHECK(roster_get(g.port).xml.find("ver=") == std::string::npos);
    }
}
