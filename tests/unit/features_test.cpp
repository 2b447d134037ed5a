// What the server offers (protocol/im/features): disco#info of the server and the account
// (XEP-0030 §3.1) become the capabilities the login uses, and notes for what is missing.
#include <catch2/catch.hpp>

#include "protocol/im/features.hpp"
#include "stanza_helpers.hpp"

using namespace xmpp::im;
using xmpp::test::frame;

namespace {
// jabberd2 2.7's answers (no MAM, no carbons, no PEP), and a modern server's.
constexpr const char* jabberd2_server =
    "<iq xmlns='jabber:client' type='result' id='d1' from='localhost'>"
    "<query xmlns='http://jabber.org/protocol/disco#info'>"
    "<identity category='server' type='im' name='Jabber IM server'/>"
    "<feature var='urn:xmpp:ping'/><feature var='jabber:iq:version'/><feature var='msgoffline'/>"
    "</query></iq>";
constexpr const char* jabberd2_account =
    "<iq xmlns='jabber:client' type='error' id='d2' from='alice@localhost/stanzad'>"
    "<query xmlns='http://jabber.org/protocol/disco#info'/>"
    "<error type='cancel'><feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>";
constexpr const char* modern_server =
    "<iq xmlns='jabber:client' type='result' id='d1' from='example.org'>"
    "<query xmlns='http://jabber.org/protocol/disco#info'>"
    "<identity category='server' type='im'/><feature var='urn:xmpp:carbons:2'/>"
    "</query></iq>";
constexpr const char* modern_account =
    "<iq xmlns='jabber:client' type='result' id='d2' from='alice@example.org'>"
    "<query xmlns='http://jabber.org/protocol/disco#info'>"
    "<identity category='account' type='registered'/><identity category='pubsub' type='pep'/>"
    "<feature var='urn:xmpp:mam:2'/></query></iq>";
}  // namespace

TEST_CASE("features: jabberd2 offers none of archive, carbons, PEP; each missing one is said") {
    auto server = frame(jabberd2_server);
    auto account = frame(jabberd2_account);
    auto s = parse_disco_info(server.root());
    CHECK(s.features.count("urn:xmpp:ping") == 1);
    CHECK(s.identities.count("server/im") == 1);
    auto a = parse_disco_info(account.root());
    CHECK(a.features.empty());  // an error answer offers nothing
    auto caps = capabilities(s, a, false);
    CHECK(caps == Capabilities{true, false, false, false, false});
    auto notes = missing_notes(caps);
    REQUIRE(notes.size() == 4);
    CHECK(notes[1] == "server has no message archive: messages that arrive while the link is down can be lost; "
                      "history is served from the local store");
}

TEST_CASE("features: a modern server offers carbons, the account MAM and PEP; nothing is missing") {
    auto server = frame(modern_server);
    auto account = frame(modern_account);
    auto caps = capabilities(parse_disco_info(server.root()), parse_disco_info(account.root()), true);
    CHECK(caps == Capabilities{true, true, true, true, true});
    CHECK(missing_notes(caps).empty());
    CHECK(missing_notes(Capabilities{}).empty());  // not known yet: nothing said
}

TEST_CASE("features: the disco#info request") {
    CHECK(make_disco_info_get("x'1", "example.org") ==
          "<iq type='get' id='x&apos;1' to='example.org'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
}
