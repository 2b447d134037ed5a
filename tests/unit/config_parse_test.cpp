// config::parse as a whole: a complete file into typed values, the XDG defaults, unknown keys
// with their closest known key, wrong types, TOML syntax errors, and every problem in file order.
#include "config_fixture.hpp"

using namespace config_test;

TEST_CASE("a complete configuration is parsed into typed values", "[config]") {
    ScopedEnv home("HOME", "/home/alice");
    const std::string text = R"(# stanzad
[daemon]
state_dir = "~/state/stanzad"
socket = "/run/user/1000/stanzad.sock"
log_level = "debug"
resolver = "[::1]:5353"

[irc]
listen = "127.0.0.1:6667"
password_command = "pass show stanzad/irc"

[[account]]
name = "home"
jid = "Alice@Example.org"
password = "secret"
resource = "laptop"
host = "xmpp.example.org"
port = 5223
tls = "direct"
ca_file = "~/ca.pem"
proxy = "socks5h://127.0.0.1:9050"
tls_pin = ["sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="]
rooms = [ { jid = "room@conference.example.org", nick = "alice" },
          { jid = "tea@conference.example.org" } ]

[[account]]
name = "work_2"
jid = "bob@work.example"
client_cert = "/etc/stanzad/bob.crt"
client_key = "~/keys/bob.key"
tls = "starttls"
)";
    auto r = config::parse(text, "good.toml");
    INFO(all_problems(r));
    REQUIRE(r.ok());
    CHECK(r.problems.empty());
    const config::Config& c = *r.config;
    CHECK(c.path == "good.toml");
    CHECK(c.daemon.state_dir == "/home/alice/state/stanzad");
    CHECK(c.daemon.socket == "/run/user/1000/stanzad.sock");
    CHECK(c.daemon.log_level == "debug");
    CHECK(c.daemon.resolver == "[::1]:5353");
    CHECK(c.irc.listen == "127.0.0.1:6667");
    CHECK_FALSE(c.irc.password.has_value());
    CHECK(c.irc.password_command == std::optional<std::string>("pass show stanzad/irc"));

    REQUIRE(c.accounts.size() == 2);
    const config::Account& a = c.accounts[0];
    CHECK(a.name == "home");
    CHECK(a.jid.bare() == "alice@example.org");  // nodeprep/nameprep lowercase
    CHECK(a.jid.is_bare());
    CHECK(a.password == std::optional<std::string>("secret"));
    CHECK_FALSE(a.password_command.has_value());
    CHECK(a.resource == "laptop");
    CHECK(a.host == "xmpp.example.org");
    CHECK(a.port == 5223);
    CHECK(a.tls == config::TlsMode::Direct);
    CHECK(a.ca_file == "/home/alice/ca.pem");
    REQUIRE(a.proxy.has_value());
    CHECK(a.proxy->remote_dns);
    CHECK(a.proxy->host == "127.0.0.1");
    CHECK(a.proxy->port == 9050);
    CHECK(a.proxy->username.empty());  // the daemon then isolates the account itself
    CHECK(a.proxy->password.empty());
    REQUIRE(a.tls_pins.size() == 1);
    CHECK(a.tls_pins[0][0] == 0xe3);
    CHECK(a.line == line_of(text, "[[account]]"));
    REQUIRE(a.rooms.size() == 2);
    CHECK(a.rooms[0] == config::Room{"room@conference.example.org", "alice"});
    // Without a nick, the account's localpart.
    CHECK(a.rooms[1] == config::Room{"tea@conference.example.org", "alice"});

    const config::Account& b = c.accounts[1];
    CHECK(b.name == "work_2");
    CHECK(b.jid.bare() == "bob@work.example");
    CHECK_FALSE(b.password.has_value());
    CHECK(b.resource == "stanzad");
    CHECK(b.host.empty());
    CHECK(b.port == 0);
    CHECK(b.tls == config::TlsMode::StartTls);
    CHECK(b.client_cert == "/etc/stanzad/bob.crt");
    CHECK(b.client_key == "/home/alice/keys/bob.key");
    CHECK_FALSE(b.proxy.has_value());
    CHECK(b.tls_pins.empty());
    CHECK(b.rooms.empty());
    CHECK(b.line == line_of(text, "[[account]]", 2));
}

TEST_CASE("defaults come from the XDG variables, then from HOME", "[config]") {
    ScopedEnv home("HOME", "/home/carol");
    SECTION("XDG_STATE_HOME and XDG_RUNTIME_DIR set") {
        ScopedEnv state("XDG_STATE_HOME", "/xdg/state");
        ScopedEnv runtime("XDG_RUNTIME_DIR", "/run/user/1001");
        auto r = config::parse(minimal_account, "min.toml");
        REQUIRE(r.ok());
        CHECK(r.config->daemon.state_dir == "/xdg/state/stanzad");
        CHECK(r.config->daemon.socket == "/run/user/1001/stanzad.sock");
    }
    SECTION("neither set: ~/.local/state and a socket inside it") {
        ScopedEnv state("XDG_STATE_HOME", nullptr);
        ScopedEnv runtime("XDG_RUNTIME_DIR", nullptr);
        auto r = config::parse(minimal_account, "min.toml");
        REQUIRE(r.ok());
        CHECK(r.config->daemon.state_dir == "/home/carol/.local/state/stanzad");
        CHECK(r.config->daemon.socket == "/home/carol/.local/state/stanzad/stanzad.sock");
        CHECK(r.config->daemon.log_level == "info");
        CHECK(r.config->daemon.resolver.empty());  // the system's
        CHECK(r.config->irc.listen.empty());
        const config::Account& a = r.config->accounts.at(0);
        CHECK(a.resource == "stanzad");
        CHECK(a.tls == config::TlsMode::Auto);
        CHECK(a.port == 0);
    }
    SECTION("a relative XDG_STATE_HOME is ignored, as the spec says") {
        ScopedEnv state("XDG_STATE_HOME", "relative/dir");
        ScopedEnv runtime("XDG_RUNTIME_DIR", nullptr);
        auto r = config::parse(minimal_account, "min.toml");
        REQUIRE(r.ok());
        CHECK(r.config->daemon.state_dir == "/home/carol/.local/state/stanzad");
    }
    SECTION("an explicit state_dir also moves the default socket") {
        ScopedEnv runtime("XDG_RUNTIME_DIR", nullptr);
        auto r = config::parse("[daemon]\nstate_dir = \"/srv/stanzad\"\n" + std::string(minimal_account), "m.toml");
        REQUIRE(r.ok());
        CHECK(r.config->daemon.state_dir == "/srv/stanzad");
        CHECK(r.config->daemon.socket == "/srv/stanzad/stanzad.sock");
    }
}

TEST_CASE("default_path follows XDG_CONFIG_HOME", "[config]") {
    ScopedEnv home("HOME", "/home/dave");
    {
        ScopedEnv xdg("XDG_CONFIG_HOME", "/xdg/config");
        CHECK(config::default_path() == "/xdg/config/stanzad/config.toml");
    }
    ScopedEnv xdg("XDG_CONFIG_HOME", nullptr);
    CHECK(config::default_path() == "/home/dave/.config/stanzad/config.toml");
}

TEST_CASE("a typo'd key is reported with its line and the closest known key", "[config]") {
    const std::string text = R"(
[[account]]
name = "home"
jid = "alice@example.org"
pasword = "secret"
)";
    auto r = config::parse(text, "typo.toml");
    CHECK_FALSE(r.ok());
    const Problem* p = find_problem(r, "account[1].pasword");
    REQUIRE(p);
    CHECK(p->severity == Problem::Severity::Error);
    CHECK(p->file == "typo.toml");
    CHECK(p->line == line_of(text, "pasword"));
    CHECK(p->column == 1);
    CHECK(p->message == "unknown key 'pasword'; did you mean 'password'?");
    CHECK(p->to_string() ==
          "typo.toml:" + std::to_string(line_of(text, "pasword")) +
              ":1: error: account[1].pasword: unknown key 'pasword'; did you mean 'password'?");
    // Without the real key there are also no credentials: the second, consequential error.
    CHECK(count_errors(r) == 2);
    CHECK(find_problem(r, "account[1].password") != nullptr);
}

TEST_CASE("unknown keys far from any known key get no suggestion", "[config]") {
    const std::string text = "[daemon]\ncolour = \"blue\"\n[irc]\nlisen = \"127.0.0.1:6667\"\npassword = \"x\"\n"
                             "[accounts]\n" + std::string(minimal_account);
    auto r = config::parse(text, "u.toml");
    CHECK_FALSE(r.ok());
    const Problem* colour = find_problem(r, "daemon.colour");
    REQUIRE(colour);
    CHECK(colour->message == "unknown key 'colour'");
    const Problem* lisen = find_problem(r, "irc.lisen");
    REQUIRE(lisen);
    CHECK(lisen->message == "unknown key 'lisen'; did you mean 'listen'?");
    const Problem* accounts = find_problem(r, "accounts");
    REQUIRE(accounts);
    CHECK(accounts->line == line_of(text, "[accounts]"));
    CHECK(accounts->message == "unknown key 'accounts'; did you mean 'account'?");
    CHECK(count_errors(r) == 3);
}

TEST_CASE("a value of the wrong type is reported at its line", "[config]") {
    const std::string text = R"([daemon]
log_level = 3

[[account]]
name = "home"
jid = "alice@example.org"
password = "secret"
port = "5222"
)";
    auto r = config::parse(text, "types.toml");
    CHECK_FALSE(r.ok());
    REQUIRE(r.problems.size() == 2);
    const Problem& level = r.problems[0];
    CHECK(level.key == "daemon.log_level");
    CHECK(level.line == line_of(text, "log_level"));
    CHECK(level.column == 13);  // the value, not the key
    CHECK(level.message == "expected a string, got an integer");
    const Problem& port = r.problems[1];
    CHECK(port.key == "account[1].port");
    CHECK(port.line == line_of(text, "port ="));
    CHECK(port.message == "expected an integer, got a string");
}

TEST_CASE("the new keys take part in unknown-key detection", "[config]") {
    const std::string text = "[daemon]\nresolvr = \"127.0.0.1:53\"\n" + std::string(minimal_account) +
                             "tls_pins = []\nproxy_user = \"a\"\n";
    auto r = config::parse(text, "k.toml");
    CHECK_FALSE(r.ok());
    INFO(all_problems(r));
    REQUIRE(r.problems.size() == 3);
    CHECK(r.problems[0].message == "unknown key 'resolvr'; did you mean 'resolver'?");
    CHECK(r.problems[1].message == "unknown key 'tls_pins'; did you mean 'tls_pin'?");
    CHECK(r.problems[2].key == "account[1].proxy_user");
    CHECK(r.problems[2].message.starts_with("unknown key 'proxy_user'"));
}

TEST_CASE("a TOML syntax error is reported with its line and column", "[config]") {
    const std::string text = "[daemon]\nlog_level = \"info\"\nstate_dir = \"/var/lib/stanzad\n";
    auto r = config::parse(text, "syntax.toml");
    CHECK_FALSE(r.ok());
    REQUIRE(r.problems.size() == 1);
    const Problem& p = r.problems[0];
    CHECK(p.severity == Problem::Severity::Error);
    CHECK(p.file == "syntax.toml");
    CHECK(p.line == 3);
    CHECK(p.column > 0);
    CHECK(p.key.empty());
    CHECK_FALSE(p.message.empty());
    CHECK(p.to_string().starts_with("syntax.toml:3:" + std::to_string(p.column) + ": error: "));
    CHECK(p.to_string().ends_with(p.message));
}

TEST_CASE("every problem in a file is reported, in file order", "[config]") {
    const std::string text = R"([daemon]
log_levl = "info"
log_level = "loud"

[[account]]
name = "home"
jid = "alice@example.org/phone"
password = "x"
password_command = "pass x"
port = 0

[[account]]
name = "home"
jid = 42
password = "y"
tls = "none"
)";
    auto r = config::parse(text, "many.toml");
    CHECK_FALSE(r.ok());
    INFO(all_problems(r));
    REQUIRE(r.problems.size() == 8);
    std::vector<std::string> keys;
    for (const Problem& p : r.problems) keys.push_back(p.key);
    CHECK(keys == std::vector<std::string>{
                      "daemon.log_levl", "daemon.log_level", "account[1].jid", "account[1].password_command",
                      "account[1].port", "account[2].name", "account[2].jid", "account[2].tls"});
    for (std::size_t i = 1; i < r.problems.size(); ++i)
        CHECK(r.problems[i - 1].line <= r.problems[i].line);
    CHECK(r.problems[0].message == "unknown key 'log_levl'; did you mean 'log_level'?");
    CHECK(r.problems[6].message == "expected a string, got an integer");
    CHECK(r.problems[6].line == line_of(text, "jid = 42"));
}

TEST_CASE("no [[account]] is a warning, not an error", "[config]") {
    auto r = config::parse("[daemon]\nlog_level = \"warn\"\n", "empty.toml");
    REQUIRE(r.ok());
    CHECK(r.config->accounts.empty());
    CHECK(r.config->daemon.log_level == "warn");
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0].severity == Problem::Severity::Warning);
    CHECK(r.problems[0].to_string() == "empty.toml: warning: no [[account]]: the daemon will have nothing to do");
}

TEST_CASE("Problem::to_string without a line or key", "[config]") {
    Problem p;
    p.file = "f.toml";
    p.message = "boom";
    CHECK(p.to_string() == "f.toml: error: boom");
    p.key = "irc.listen";
    p.line = 4;
    CHECK(p.to_string() == "f.toml:4: error: irc.listen: boom");
    p.column = 2;
    p.severity = Problem::Severity::Warning;
    CHECK(p.to_string() == "f.toml:4:2: warning: irc.listen: boom");
}

TEST_CASE("the certificate keys take part in unknown-key detection", "[config]") {
    const std::string text = std::string(minimal_account) +
                             "sals = []\nchanel_binding = \"auto\"\nclient_key_pasword_command = \"x\"\n";
    auto r = config::parse(text, "k.toml");
    INFO(all_problems(r));
    REQUIRE(r.problems.size() == 3);
    CHECK(r.problems[0].message == "unknown key 'sals'; did you mean 'sasl'?");
    CHECK(r.problems[1].message == "unknown key 'chanel_binding'; did you mean 'channel_binding'?");
    CHECK(r.problems[2].message ==
          "unknown key 'client_key_pasword_command'; did you mean 'client_key_password_command'?");
}
