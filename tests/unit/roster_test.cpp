// The IM core's roster (protocol/im/roster): RFC 6121 §2.6 versioning across logins, results
// and pushes. Fed the items and versions the server's stanzas carry.
#include <catch2/catch.hpp>

#include "protocol/im/roster.hpp"

using namespace xmpp;
using namespace xmpp::im;

namespace {

RosterEntry item(std::string jid, std::string subscription = "both", std::string name = "") {
    RosterEntry e;
    e.jid = std::move(jid);
    e.subscription = std::move(subscription);
    e.name = std::move(name);
    return e;
}

std::vector<std::string> jids(const Roster& r) {
    std::vector<std::string> out;
    for (const auto& e : r.items()) out.push_back(e.jid);
    return out;
}

}  // namespace

TEST_CASE("roster: without server versioning no 'ver' is sent, whatever we kept") {
    Roster r;
    CHECK_FALSE(r.request_version(false));
    r.restore({item("bob@example.org")}, "ver14");
    CHECK_FALSE(r.request_version(false));
}

TEST_CASE("roster: the first login asks for everything, versioned (§2.6.2: ver='')") {
    Roster r;
    CHECK_FALSE(r.known());
    REQUIRE(r.request_version(true));
    CHECK(*r.request_version(true) == "");
    r.result({item("bob@example.org"), item("carol@example.org", "to")}, "ver7");
    CHECK(r.known());
    CHECK(r.version() == std::optional<std::string>("ver7"));
    // The next login asks for what changed since ver7.
    CHECK(r.request_version(true) == std::optional<std::string>("ver7"));
}

TEST_CASE("roster: a kept roster and its version make the next login ask only for changes") {
    Roster r;
    r.restore({item("bob@example.org")}, "ver14");
    CHECK(r.request_version(true) == std::optional<std::string>("ver14"));
    // §2.6.3: the server answers with an empty result (nothing fed) and pushes what changed.
    r.push({item("nurse@example.com", "none")}, "ver15");
    r.push({item("bob@example.org", "remove")}, "ver16");
    CHECK(jids(r) == std::vector<std::string>{"nurse@example.com"});
    CHECK(r.version() == std::optional<std::string>("ver16"));
}

TEST_CASE("roster: a kept roster without a version asks for everything") {
    Roster r;
    r.restore({item("bob@example.org")}, std::nullopt);
    CHECK(r.request_version(true) == std::optional<std::string>(""));
}

TEST_CASE("roster: a result replaces the roster; one without a version leaves none to ask with") {
    Roster r;
    r.restore({item("bob@example.org"), item("carol@example.org")}, "ver3");
    r.result({item("dave@example.org")}, std::nullopt);
    CHECK(jids(r) == std::vector<std::string>{"dave@example.org"});
    CHECK_FALSE(r.version());
    CHECK(r.request_version(true) == std::optional<std::string>(""));
}

TEST_CASE("roster: a push replaces the item of its JID; a push without version keeps the last one") {
    Roster r;
    r.result({item("bob@example.org", "to", "Bob")}, "v1");
    r.push({item("bob@example.org", "both", "Robert")}, std::nullopt);
    REQUIRE(r.items().size() == 1);
    CHECK(r.items()[0].name == "Robert");
    CHECK(r.items()[0].subscription == "both");
    CHECK(r.version() == std::optional<std::string>("v1"));
    CHECK(r.contains("bob@example.org"));
    CHECK_FALSE(r.contains("carol@example.org"));
    r.push({item("carol@example.org", "remove")}, "v2");  // removing what we do not have: no harm
    CHECK(jids(r) == std::vector<std::string>{"bob@example.org"});
    CHECK(r.version() == std::optional<std::string>("v2"));
}
