#include <catch2/catch.hpp>

#include "protocol/base/jid.hpp"

using xmpp::Jid;

TEST_CASE("jid: parts are split and prepared (RFC 7622)") {
    auto j = Jid::parse("Alice@Example.ORG/Home Phone");
    REQUIRE(j);
    CHECK(j.value().local() == "alice");
    CHECK(j.value().domain() == "example.org");
    CHECK(j.value().resource() == "Home Phone");  // resourceprep keeps case and spaces
    CHECK(j.value().bare() == "alice@example.org");
    CHECK(j.value().full() == "alice@example.org/Home Phone");
    CHECK(Jid::parse("example.org").value().full() == "example.org");
    CHECK(Jid::parse("example.org.").value().domain() == "example.org");
    CHECK(Jid::parse("a@b/c/d").value().resource() == "c/d");  // the first '/' splits
    CHECK(Jid::parse("\xC3\x89lise@\xC3\x89xample.org").value().bare() == "\xC3\xA9lise@\xC3\xA9xample.org");
    CHECK(Jid::parse("a@b").value().with_resource("r").full() == "a@b/r");
}

TEST_CASE("jid: malformed addresses are errors that say which part") {
    for (auto [text, part] : {std::pair{"@example.org", "localpart"}, {"a@", "domain"}, {"", "domain"},
                              {"a@b/", "resource"}, {"a b@example.org", "localpart"},
                              {"a\"b@example.org", "localpart"}}) {
        INFO(text);
        auto j = Jid::parse(text);
        REQUIRE_FALSE(j);
        CHECK(j.error().code == "bad-jid");
        CHECK(j.error().message.find(part) != std::string::npos);
    }
    CHECK_FALSE(Jid::parse(std::string(1024, 'a') + "@example.org"));
}
