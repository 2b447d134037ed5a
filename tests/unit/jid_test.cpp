#include <catch2/catch.hpp>

#include <stringprep.h>

#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <vector>

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

namespace {

// libidn's preparation of one part, the reference the ASCII fast path must agree with.
std::optional<std::string> libidn(const std::string& part, const char* profile) {
    char* out = nullptr;
    if (stringprep_profile(part.c_str(), &out, profile, STRINGPREP_NO_UNASSIGNED) != STRINGPREP_OK) {
        std::free(out);
        return std::nullopt;
    }
    std::string prepared(out);
    std::free(out);
    if (prepared.empty()) return std::nullopt;
    return prepared;
}

}  // namespace

TEST_CASE("jid: ASCII parts are prepared exactly as libidn prepares them") {
    // Every visible ASCII character, and space, in every part; then random parts of them.
    std::vector<std::string> parts;
    for (int c = 0x20; c <= 0x7e; ++c) parts.push_back(std::string("x") + static_cast<char>(c) + "Y");
    std::mt19937 random(7622);
    std::uniform_int_distribution<int> visible(0x20, 0x7e), length(1, 12);
    for (int i = 0; i < 3000; ++i) {
        std::string part;
        for (int n = length(random); n > 0; --n) part += static_cast<char>(visible(random));
        parts.push_back(part);
    }
    for (const auto& part : parts) {
        INFO(part);
        if (part.find_first_of("@/") != std::string::npos) continue;  // they split the JID
        auto local = Jid::parse(part + "@example.org");
        auto expected_local = libidn(part, "Nodeprep");
        REQUIRE(local.ok() == expected_local.has_value());
        if (local) CHECK(local.value().local() == *expected_local);
        auto resource = Jid::parse("a@example.org/" + part);
        auto expected_resource = libidn(part, "Resourceprep");
        REQUIRE(resource.ok() == expected_resource.has_value());
        if (resource) CHECK(resource.value().resource() == *expected_resource);
        if (part.back() == '.') continue;  // §3.2: a final dot is dropped before preparation
        auto domain = Jid::parse("a@" + part);
        auto expected_domain = libidn(part, "Nameprep");
        // Jid::parse also refuses what no domain may hold (space, controls).
        bool domain_ok = expected_domain && expected_domain->find_first_of(" ") == std::string::npos;
        CHECK(domain.ok() == domain_ok);
        if (domain && domain_ok) CHECK(domain.value().domain() == *expected_domain);
    }
}
