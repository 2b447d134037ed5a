// config::parse of the SASL keys: sasl (mechanism families in order of preference) and
// channel_binding.
#include "config_fixture.hpp"

using namespace config_test;

TEST_CASE("sasl: distinct mechanism families in order of preference", "[config][sasl]") {
    const std::string both = "[[account]]\nname = \"a\"\njid = \"alice@example.org\"\npassword = \"x\"\n"
                             "client_cert = \"/c.pem\"\nclient_key = \"/k.pem\"\n";
    auto parse_sasl = [](const std::string& head, const std::string& value) {
        return config::parse(head + "sasl = " + value + "\n", "s.toml");
    };
    SECTION("any case in, upper case stored, order kept") {
        auto r = parse_sasl(both, "[\"external\", \"Scram\", \"PLAIN\"]");
        INFO(all_problems(r));
        REQUIRE(r.ok());
        CHECK(r.problems.empty());
        CHECK(r.config->accounts[0].sasl == std::vector<std::string>{"EXTERNAL", "SCRAM", "PLAIN"});
        auto scram_first = parse_sasl(both, "[\"SCRAM\", \"EXTERNAL\"]");
        REQUIRE(scram_first.ok());
        CHECK(scram_first.config->accounts[0].sasl == std::vector<std::string>{"SCRAM", "EXTERNAL"});
    }
    SECTION("absent: empty, the daemon applies the default order") {
        auto r = config::parse(both, "s.toml");
        REQUIRE(r.ok());
        CHECK(r.config->accounts[0].sasl.empty());
    }
    SECTION("not an array") {
        const std::string text = both + "sasl = \"SCRAM\"\n";
        auto r = config::parse(text, "s.toml");
        const Problem& p = only_problem(r);
        CHECK(p.key == "account[1].sasl");
        CHECK(p.line == line_of(text, "sasl ="));
        CHECK(p.message ==
              "expected an array in order of preference, like sasl = [\"EXTERNAL\", \"SCRAM\"], got a string");
    }
    SECTION("an empty array") {
        auto r = parse_sasl(both, "[]");
        const Problem& p = only_problem(r);
        CHECK(p.key == "account[1].sasl");
        CHECK(p.message == "an empty list allows no way to log in; remove sasl for the default order (EXTERNAL "
                           "when client_cert is set, then SCRAM when a password is)");
    }
    SECTION("unknown names list the valid ones") {
        const std::string text =
            both + "sasl = [\n  \"DIGEST-MD5\",\n  \"SCRAM-SHA-256-PLUS\",\n  \"externl\",\n  7,\n]\n";
        auto r = config::parse(text, "s.toml");
        CHECK_FALSE(r.ok());
        INFO(all_problems(r));
        REQUIRE(r.problems.size() == 4);
        for (std::size_t i = 0; i < 4; ++i) {
            CHECK(r.problems[i].key == "account[1].sasl[" + std::to_string(i + 1) + "]");
            CHECK(r.problems[i].line == line_of(text, "sasl =") + 1 + static_cast<int>(i));
        }
        CHECK(r.problems[0].message == "unknown mechanism 'DIGEST-MD5': expected EXTERNAL, SCRAM or PLAIN");
        CHECK(r.problems[1].message ==
              "unknown mechanism 'SCRAM-SHA-256-PLUS': expected EXTERNAL, SCRAM or PLAIN; write SCRAM: the hash and "
              "-PLUS are chosen from what the server offers");
        CHECK(r.problems[2].message ==
              "unknown mechanism 'externl': expected EXTERNAL, SCRAM or PLAIN; did you mean 'EXTERNAL'?");
        CHECK(r.problems[3].message == "expected EXTERNAL, SCRAM or PLAIN, got an integer");
    }
    SECTION("a name twice, in any case") {
        const std::string text = both + "sasl = [\"SCRAM\",\n  \"scram\"]\n";
        auto r = config::parse(text, "s.toml");
        const Problem& p = only_problem(r);
        CHECK(p.key == "account[1].sasl[2]");
        CHECK(p.line == line_of(text, "\"scram\""));
        CHECK(p.message == "'SCRAM' is listed twice");
    }
    SECTION("EXTERNAL without a certificate") {
        const std::string head = "[[account]]\nname = \"a\"\njid = \"alice@example.org\"\npassword_command = \"p\"\n";
        auto r = parse_sasl(head, "[\"SCRAM\", \"EXTERNAL\"]");
        const Problem& p = only_problem(r);
        CHECK(p.severity == Problem::Severity::Error);
        CHECK(p.key == "account[1].sasl[2]");
        CHECK(p.message == "EXTERNAL needs client_cert and client_key");
        // Half a pair is one error, about the missing half.
        auto half = parse_sasl(head + "client_key = \"/k.pem\"\n", "[\"EXTERNAL\"]");
        CHECK(only_problem(half).message == "client_key is set but client_cert is not");
    }
    SECTION("SCRAM and PLAIN without a password") {
        const std::string head = "[[account]]\nname = \"a\"\njid = \"alice@example.org\"\n"
                                 "client_cert = \"/c.pem\"\nclient_key = \"/k.pem\"\n";
        auto r = parse_sasl(head, "[\"EXTERNAL\", \"SCRAM\", \"plain\"]");
        INFO(all_problems(r));
        REQUIRE(r.problems.size() == 2);
        CHECK(r.problems[0].key == "account[1].sasl[2]");
        CHECK(r.problems[0].message == "SCRAM needs password or password_command");
        CHECK(r.problems[1].key == "account[1].sasl[3]");
        CHECK(r.problems[1].message == "PLAIN needs password or password_command");
        auto only_external = parse_sasl(head, "[\"EXTERNAL\"]");
        REQUIRE(only_external.ok());
        CHECK(only_external.config->accounts[0].sasl == std::vector<std::string>{"EXTERNAL"});
    }
    SECTION("no credentials at all: one error, not one per mechanism") {
        auto r = parse_sasl("[[account]]\nname = \"a\"\njid = \"alice@example.org\"\n", "[\"EXTERNAL\", \"SCRAM\"]");
        const Problem& p = only_problem(r);
        CHECK(p.key == "account[1].password");
        CHECK(p.message == "missing: set password, password_command, or client_cert and client_key");
    }
}

TEST_CASE("channel_binding is auto or required", "[config][sasl]") {
    auto dflt = config::parse(minimal_account, "cb.toml");
    REQUIRE(dflt.ok());
    CHECK(dflt.config->accounts[0].channel_binding == config::ChannelBinding::Auto);
    auto required = config::parse(std::string(minimal_account) + "channel_binding = \"required\"\n", "cb.toml");
    REQUIRE(required.ok());
    CHECK(required.config->accounts[0].channel_binding == config::ChannelBinding::Required);
    auto automatic = config::parse(std::string(minimal_account) + "channel_binding = \"auto\"\n", "cb.toml");
    REQUIRE(automatic.ok());
    CHECK(automatic.config->accounts[0].channel_binding == config::ChannelBinding::Auto);

    const std::string text = std::string(minimal_account) + "channel_binding = \"requird\"\n";
    auto r = config::parse(text, "cb.toml");
    const Problem& p = only_problem(r);
    CHECK(p.key == "account[1].channel_binding");
    CHECK(p.line == line_of(text, "channel_binding"));
    CHECK(p.message == "expected auto or required, got 'requird'; did you mean 'required'?");
}
