// config::parse of [[account]]: name and jid, port, history_days, tls and log_level,
// credentials, rooms, chat_markers and priority (RFC 6121 §4.7.2.3).
#include "config_fixture.hpp"

using namespace config_test;

TEST_CASE("[account] written as a single table is explained", "[config]") {
    const std::string text = "[account]\nname = \"home\"\njid = \"alice@example.org\"\npassword = \"x\"\n";
    auto r = config::parse(text, "t.toml");
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0].key == "account");
    CHECK(r.problems[0].line == 1);
    CHECK(r.problems[0].message == "expected an array of tables ([[account]]), got a table");
}

TEST_CASE("missing jid and name are reported at the [[account]] line", "[config]") {
    const std::string text = R"([[account]]
name = "home"
jid = "alice@example.org"
password = "secret"

[[account]]
password = "other"
)";
    auto r = config::parse(text, "missing.toml");
    CHECK_FALSE(r.ok());
    REQUIRE(r.problems.size() == 2);
    const int second = line_of(text, "password = \"other\"") - 1;
    const Problem* jid = find_problem(r, "account[2].jid");
    REQUIRE(jid);
    CHECK(jid->line == second);
    CHECK(jid->message == "missing required key 'jid'");
    const Problem* name = find_problem(r, "account[2].name");
    REQUIRE(name);
    CHECK(name->line == second);
    CHECK(name->message == "missing required key 'name'");
    CHECK(find_problem(r, "account[1].jid") == nullptr);
}

TEST_CASE("account names are unique and made of [A-Za-z0-9_-]", "[config]") {
    const std::string text = R"([[account]]
name = "home"
jid = "alice@example.org"
password = "a"

[[account]]
name = "home"
jid = "alice@other.example"
password = "b"

[[account]]
name = "my home"
jid = "carol@example.org"
password = "c"
)";
    auto r = config::parse(text, "names.toml");
    CHECK_FALSE(r.ok());
    REQUIRE(r.problems.size() == 2);
    const Problem* dup = find_problem(r, "account[2].name");
    REQUIRE(dup);
    CHECK(dup->line == line_of(text, "name = \"home\"", 2));
    CHECK(dup->message == "account name 'home' is already used by the account at line 1");
    const Problem* bad = find_problem(r, "account[3].name");
    REQUIRE(bad);
    CHECK(bad->line == line_of(text, "my home"));
    CHECK(bad->message == "'my home' is not a valid name: use letters, digits, '_' and '-'");
}

TEST_CASE("the account jid must be a valid bare JID", "[config]") {
    SECTION("invalid") {
        const std::string text = "[[account]]\nname = \"a\"\njid = \"alice@\"\npassword = \"x\"\n";
        auto r = config::parse(text, "jid.toml");
        CHECK_FALSE(r.ok());
        REQUIRE(r.problems.size() == 1);
        CHECK(r.problems[0].key == "account[1].jid");
        CHECK(r.problems[0].line == 3);
        CHECK(r.problems[0].message.starts_with("invalid JID 'alice@': "));
    }
    SECTION("full JID") {
        const std::string text = "[[account]]\nname = \"a\"\njid = \"alice@example.org/phone\"\npassword = \"x\"\n";
        auto r = config::parse(text, "jid.toml");
        CHECK_FALSE(r.ok());
        REQUIRE(r.problems.size() == 1);
        CHECK(r.problems[0].key == "account[1].jid");
        CHECK(r.problems[0].line == 3);
        CHECK(r.problems[0].message ==
              "expected a bare JID (no /resource; set resource instead), got 'alice@example.org/phone'");
    }
}

TEST_CASE("port must be within 1..65535", "[config]") {
    for (std::string port : {"0", "65536", "-1"}) {
        const std::string text =
            "[[account]]\nname = \"a\"\njid = \"alice@example.org\"\npassword = \"x\"\nport = " + port + "\n";
        auto r = config::parse(text, "port.toml");
        CHECK_FALSE(r.ok());
        REQUIRE(r.problems.size() == 1);
        CHECK(r.problems[0].key == "account[1].port");
        CHECK(r.problems[0].line == 5);
        CHECK(r.problems[0].message == "expected a port between 1 and 65535, got " + port);
    }
    auto ok = config::parse(std::string(minimal_account) + "port = 65535\n", "port.toml");
    REQUIRE(ok.ok());
    CHECK(ok.config->accounts[0].port == 65535);
}

TEST_CASE("history_days is a whole number of days, 90 by default", "[config]") {
    auto dflt = config::parse(std::string(minimal_account), "h.toml");
    REQUIRE(dflt.ok());
    CHECK(dflt.config->daemon.history_days == 90);
    auto set = config::parse("[daemon]\nhistory_days = 7\n" + std::string(minimal_account), "h.toml");
    REQUIRE(set.ok());
    CHECK(set.config->daemon.history_days == 7);
    for (std::string bad : {"0", "\"7\"", "40000"}) {
        const std::string text = "[daemon]\nhistory_days = " + bad + "\n" + std::string(minimal_account);
        auto r = config::parse(text, "h.toml");
        CHECK_FALSE(r.ok());
        REQUIRE(r.problems.size() == 1);
        CHECK(r.problems[0].key == "daemon.history_days");
        CHECK(r.problems[0].line == 2);
    }
}

TEST_CASE("tls and log_level take one of their words", "[config]") {
    const std::string text = R"([daemon]
log_level = "warning"
[[account]]
name = "a"
jid = "alice@example.org"
password = "x"
tls = "startls"
)";
    auto r = config::parse(text, "enum.toml");
    REQUIRE(r.problems.size() == 2);
    CHECK(r.problems[0].key == "daemon.log_level");
    CHECK(r.problems[0].message ==
          "expected trace, debug, info, warn, error, critical or off, got 'warning'");
    CHECK(r.problems[1].key == "account[1].tls");
    CHECK(r.problems[1].line == 7);
    CHECK(r.problems[1].message == "expected auto, starttls or direct, got 'startls'; did you mean 'starttls'?");
}

TEST_CASE("credentials: exactly one way to log in", "[config]") {
    const std::string head = "[[account]]\nname = \"a\"\njid = \"alice@example.org\"\n";
    SECTION("password and password_command both set") {
        const std::string text = head + "password = \"x\"\npassword_command = \"pass show x\"\n";
        auto r = config::parse(text, "c.toml");
        REQUIRE(r.problems.size() == 1);
        CHECK(r.problems[0].key == "account[1].password_command");
        CHECK(r.problems[0].line == 5);
        CHECK(r.problems[0].message == "both password and password_command are set; keep one");
    }
    SECTION("none at all") {
        auto r = config::parse(head, "c.toml");
        REQUIRE(r.problems.size() == 1);
        CHECK(r.problems[0].key == "account[1].password");
        CHECK(r.problems[0].line == 1);
        CHECK(r.problems[0].message == "missing: set password, password_command, or client_cert and client_key");
    }
    SECTION("client_cert without client_key") {
        auto r = config::parse(head + "client_cert = \"/c.pem\"\n", "c.toml");
        REQUIRE(r.problems.size() == 1);
        CHECK(r.problems[0].key == "account[1].client_key");
        CHECK(r.problems[0].line == 4);
        CHECK(r.problems[0].message == "client_cert is set but client_key is not");
    }
    SECTION("client_key without client_cert") {
        auto r = config::parse(head + "client_key = \"/k.pem\"\n", "c.toml");
        REQUIRE(r.problems.size() == 1);
        CHECK(r.problems[0].key == "account[1].client_cert");
        CHECK(r.problems[0].message == "client_key is set but client_cert is not");
    }
    SECTION("password_command alone") {
        auto r = config::parse(head + "password_command = \"pass show x\"\n", "c.toml");
        REQUIRE(r.ok());
        CHECK(r.config->accounts[0].password_command == std::optional<std::string>("pass show x"));
        CHECK_FALSE(r.config->accounts[0].password.has_value());
    }
    SECTION("an empty password") {
        auto r = config::parse(head + "password = \"\"\n", "c.toml");
        REQUIRE(r.problems.size() == 1);
        CHECK(r.problems[0].key == "account[1].password");
        CHECK(r.problems[0].message == "must not be empty");
    }
}

TEST_CASE("rooms are { jid, nick } tables with bare room JIDs", "[config]") {
    const std::string text = std::string(minimal_account) + R"(rooms = [
  { jid = "room@conference.example.org", nick = "al" },
  { jid = "room@conference.example.org/al" },
  { jid = "other@conference.example.org", nik = "x" },
  "lobby@conference.example.org",
  { nick = "al" },
  { jid = "room@conference.example.org", nick = "again" },
]
)";
    auto r = config::parse(text, "rooms.toml");
    CHECK_FALSE(r.ok());
    INFO(all_problems(r));
    REQUIRE(r.problems.size() == 5);
    CHECK(r.problems[0].key == "account[1].rooms[2].jid");
    CHECK(r.problems[0].line == line_of(text, "/al"));
    CHECK(r.problems[0].message ==
          "expected a bare room JID (set the nick with nick), got 'room@conference.example.org/al'");
    CHECK(r.problems[1].key == "account[1].rooms[3].nik");
    CHECK(r.problems[1].message == "unknown key 'nik'; did you mean 'nick'?");
    CHECK(r.problems[2].key == "account[1].rooms[4]");
    CHECK(r.problems[2].line == line_of(text, "\"lobby@"));
    CHECK(r.problems[2].message.starts_with("expected a table like { jid = "));
    CHECK(r.problems[2].message.ends_with("got a string"));
    CHECK(r.problems[3].key == "account[1].rooms[5].jid");
    CHECK(r.problems[3].message == "missing required key 'jid'");
    CHECK(r.problems[4].key == "account[1].rooms[6].jid");
    CHECK(r.problems[4].message == "room 'room@conference.example.org' is listed twice");
}

TEST_CASE("chat_markers is a boolean, off by default", "[config]") {
    auto off = config::parse(minimal_account, "m.toml");
    REQUIRE(off.ok());
    CHECK_FALSE(off.config->accounts.at(0).chat_markers);
    auto on = config::parse(std::string(minimal_account) + "chat_markers = true\n", "m.toml");
    REQUIRE(on.ok());
    CHECK(on.config->accounts.at(0).chat_markers);
    auto bad = config::parse(std::string(minimal_account) + "chat_markers = \"yes\"\n", "m.toml");
    REQUIRE(bad.problems.size() == 1);
    CHECK(bad.problems[0].key == "account[1].chat_markers");
    CHECK(bad.problems[0].message == "expected true or false, got a string");
}

TEST_CASE("priority is an integer from -128 to 127, 0 by default (RFC 6121 §4.7.2.3)", "[config]") {
    auto none = config::parse(minimal_account, "m.toml");
    REQUIRE(none.ok());
    CHECK(none.config->accounts.at(0).priority == 0);
    for (int value : {-128, -1, 127}) {
        auto set = config::parse(std::string(minimal_account) + "priority = " + std::to_string(value) + "\n", "m.toml");
        REQUIRE(set.ok());
        CHECK(set.config->accounts.at(0).priority == value);
    }
    auto high = config::parse(std::string(minimal_account) + "priority = 128\n", "m.toml");
    REQUIRE(high.problems.size() == 1);
    CHECK(high.problems[0].key == "account[1].priority");
    CHECK(high.problems[0].message == "expected a presence priority between -128 and 127, got 128");
    auto text = config::parse(std::string(minimal_account) + "priority = \"high\"\n", "m.toml");
    REQUIRE(text.problems.size() == 1);
    CHECK(text.problems[0].key == "account[1].priority");
    CHECK(text.problems[0].message == "expected an integer, got a string");
}
