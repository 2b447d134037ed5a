// Tests for protocol/sasl: SASLprep (RFC 4013 §3 examples) and PLAIN.
#include "sasl_fixture.hpp"

using namespace sasl_test;

TEST_CASE("SASLprep follows the RFC 4013 section 3 examples", "[sasl][saslprep]") {
    auto ok = [](std::string_view in, std::string_view out) {
        INFO("input: " << in);
        auto prepared = xmpp::sasl::saslprep(in);
        REQUIRE(prepared.ok());
        CHECK(prepared.value() == out);
    };
    ok("I\u00ADX", "IX");
    ok("user", "user");
    ok("USER", "USER");
    ok("\u00AA", "a");
    ok("\u2168", "IX");
    ok("a\u00A0b", "a b");
    ok("", "");

    auto bad = [](std::string_view in) {
        INFO("input: " << in);
        auto prepared = xmpp::sasl::saslprep(in);
        REQUIRE_FALSE(prepared.ok());
        CHECK(prepared.error().code == "saslprep");
        CHECK_FALSE(prepared.error().message.empty());
    };
    bad("\u0007");
    bad("\u0627\u0031");  // RFC 3454 §6: RandALCat must start and end the string
    bad("a\0b"s);
    bad("\xff\xfe");      // not UTF-8
    bad("\xC0\xAF");      // overlong '/'
}

TEST_CASE("PLAIN sends one message and takes no challenge", "[sasl][plain]") {
    SECTION("the payload is authzid NUL authcid NUL password") {
        auto m = xmpp::sasl::make_plain(user_pencil());
        CHECK(m->name() == "PLAIN");
        auto first = m->initial_response();
        REQUIRE(first.ok());
        CHECK(first.value() == "\0user\0pencil"s);
        CHECK(first.value().size() == 12);
        CHECK(m->finish("").ok());
    }
    SECTION("with an authzid") {
        auto m = xmpp::sasl::make_plain({"user", "pencil", "admin@example.org"});
        auto first = m->initial_response();
        REQUIRE(first.ok());
        CHECK(first.value() == "admin@example.org\0user\0pencil"s);
    }
    SECTION("username and password are SASLprep'd") {
        auto m = xmpp::sasl::make_plain({"I\u00ADX", "pen\u00A0cil", ""});
        auto first = m->initial_response();
        REQUIRE(first.ok());
        CHECK(first.value() == "\0IX\0pen cil"s);
    }
    SECTION("a prohibited password") {
        auto m = xmpp::sasl::make_plain({"user", "pen\u0007cil", ""});
        auto first = m->initial_response();
        REQUIRE_FALSE(first.ok());
        require_error(first.error(), "saslprep");
    }
    SECTION("a NUL in the authzid") {
        auto m = xmpp::sasl::make_plain({"user", "pencil", "a\0b"s});
        auto first = m->initial_response();
        REQUIRE_FALSE(first.ok());
        require_error(first.error(), "bad-authzid");
    }
    SECTION("empty username or password") {
        auto no_user = xmpp::sasl::make_plain({"", "pencil", ""})->initial_response();
        REQUIRE_FALSE(no_user.ok());
        require_error(no_user.error(), "empty-username");
        auto no_password = xmpp::sasl::make_plain({"user", "", ""})->initial_response();
        REQUIRE_FALSE(no_password.ok());
        require_error(no_password.error(), "empty-password");
    }
    SECTION("a challenge is an error") {
        auto m = xmpp::sasl::make_plain(user_pencil());
        REQUIRE(m->initial_response().ok());
        auto response = m->respond("anything");
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "plain-unexpected-challenge");
    }
    SECTION("additional data on success is an error") {
        auto m = xmpp::sasl::make_plain(user_pencil());
        REQUIRE(m->initial_response().ok());
        auto status = m->finish("v=abc");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "plain-unexpected-data");
    }
}
