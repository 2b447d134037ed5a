// config::parse of [irc]: listen, server_name, encrypted_prefix, the limits, and listening
// off loopback (allow_remote, tls_cert, tls_key).
#include "config_fixture.hpp"

using namespace config_test;

TEST_CASE("irc.listen is host:port or a path; on TCP a password is required", "[config]") {
    ScopedEnv home("HOME", "/home/erin");
    auto parse_irc = [](const std::string& irc) {
        return config::parse("[irc]\n" + irc + std::string(minimal_account), "irc.toml");
    };
    auto tcp = parse_irc("listen = \"[::1]:6667\"\npassword = \"p\"\n");
    REQUIRE(tcp.ok());
    CHECK(tcp.config->irc.listen == "[::1]:6667");
    CHECK(tcp.config->irc.password == std::optional<std::string>("p"));

    auto unix_socket = parse_irc("listen = \"~/irc.sock\"\npassword = \"p\"\n");
    REQUIRE(unix_socket.ok());
    CHECK(unix_socket.config->irc.listen == "/home/erin/irc.sock");

    auto bad = parse_irc("listen = \"6667\"\npassword = \"p\"\n");
    REQUIRE(bad.problems.size() == 1);
    CHECK(bad.problems[0].key == "irc.listen");
    CHECK(bad.problems[0].message ==
          "expected host:port (like 127.0.0.1:6667) or a Unix socket path, got '6667'");

    // TCP without a password: refused, with the line; a Unix socket (0600) may go without.
    auto open = parse_irc("listen = \"127.0.0.1:6667\"\n");
    CHECK_FALSE(open.ok());
    REQUIRE(open.problems.size() == 1);
    CHECK(open.problems[0].severity == Problem::Severity::Error);
    CHECK(open.problems[0].line == 2);
    CHECK(open.problems[0].to_string() ==
          "irc.toml:2:10: error: irc.listen: on TCP the IRC listener needs a password: set [irc] password or "
          "password_command, or listen on a Unix socket path");
    auto local = parse_irc("listen = \"/run/user/1000/irc.sock\"\n");
    REQUIRE(local.ok());
    CHECK(local.problems.empty());

    auto both = parse_irc("listen = \"\"\npassword = \"p\"\npassword_command = \"c\"\n");
    REQUIRE(both.problems.size() == 1);
    CHECK(both.problems[0].key == "irc.password_command");
    CHECK(both.problems[0].message == "both password and password_command are set; keep one");
}

TEST_CASE("irc.server_name: stanzad by default, else a host name", "[config]") {
    auto parse_irc = [](const std::string& irc) {
        return config::parse("[irc]\npassword = \"p\"\n" + irc + std::string(minimal_account), "irc.toml");
    };
    auto plain = parse_irc("");
    REQUIRE(plain.ok());
    CHECK(plain.config->irc.server_name == "stanzad");
    auto named = parse_irc("server_name = \"irc.home-1.example\"\n");
    REQUIRE(named.ok());
    CHECK(named.problems.empty());
    CHECK(named.config->irc.server_name == "irc.home-1.example");
    for (const std::string& bad : std::vector<std::string>{"\"a b\"", "\"nick!u@h\"", "\"-x\"", "\"\"", "\"" + std::string(64, 'x') + "\"", "7"}) {
        auto r = parse_irc("server_name = " + bad + "\n");
        CAPTURE(bad);
        REQUIRE(r.problems.size() == 1);
        CHECK(r.problems[0].key == "irc.server_name");
        CHECK(r.problems[0].line == 3);
    }
}

TEST_CASE("irc.encrypted_prefix: [OMEMO] by default, any short text, \"\" for none", "[config]") {
    auto parse_irc = [](const std::string& irc) {
        return config::parse("[irc]\npassword = \"p\"\n" + irc + std::string(minimal_account), "irc.toml");
    };
    auto plain = parse_irc("");
    REQUIRE(plain.ok());
    CHECK(plain.config->irc.encrypted_prefix == "[OMEMO] ");
    auto lock = parse_irc("encrypted_prefix = \"\xf0\x9f\x94\x92 \"\n");
    REQUIRE(lock.ok());
    CHECK(lock.problems.empty());
    CHECK(lock.config->irc.encrypted_prefix == "\xf0\x9f\x94\x92 ");
    auto none = parse_irc("encrypted_prefix = \"\"\n");
    REQUIRE(none.ok());
    CHECK(none.config->irc.encrypted_prefix.empty());
    for (const std::string& bad : std::vector<std::string>{"\"a\\nb\"", "\"\\u0001\"", "\"" + std::string(33, 'x') + "\"", "1"}) {
        auto r = parse_irc("encrypted_prefix = " + bad + "\n");
        CAPTURE(bad);
        REQUIRE(r.problems.size() == 1);
        CHECK(r.problems[0].key == "irc.encrypted_prefix");
        CHECK(r.problems[0].line == 3);
    }
}

TEST_CASE("irc limits: registration_timeout, max_unregistered, max_clients", "[config]") {
    auto parse_irc = [](const std::string& irc) {
        return config::parse("[irc]\npassword = \"p\"\n" + irc + std::string(minimal_account), "irc.toml");
    };
    auto plain = parse_irc("");
    REQUIRE(plain.ok());
    CHECK(plain.config->irc.registration_timeout == 30);
    CHECK(plain.config->irc.max_unregistered == 16);
    CHECK(plain.config->irc.max_clients == 64);
    auto set = parse_irc("registration_timeout = 5\nmax_unregistered = 2\nmax_clients = 3\n");
    REQUIRE(set.ok());
    CHECK(set.config->irc.registration_timeout == 5);
    CHECK(set.config->irc.max_unregistered == 2);
    CHECK(set.config->irc.max_clients == 3);
    auto bad = parse_irc("max_clients = 0\n");
    REQUIRE(bad.problems.size() == 1);
    CHECK(bad.problems[0].to_string() ==
          "irc.toml:3:15: error: irc.max_clients: expected a number of clients between 1 and 10000, got 0");
}

TEST_CASE("irc off loopback: allow_remote, and then only with tls_cert and tls_key", "[config]") {
    auto parse_irc = [](const std::string& irc) {
        return config::parse("[irc]\npassword = \"p\"\n" + irc + std::string(minimal_account), "irc.toml");
    };
    for (std::string local : {"127.0.0.1:6667", "127.1.2.3:6667", "[::1]:6667"}) {
        CAPTURE(local);
        CHECK(parse_irc("listen = \"" + local + "\"\n").ok());
    }
    auto remote = parse_irc("listen = \"0.0.0.0:6697\"\n");
    REQUIRE(remote.problems.size() == 1);
    CHECK(remote.problems[0].to_string() ==
          "irc.toml:3:10: error: irc.listen: '0.0.0.0:6697' is not a loopback address: set allow_remote = true "
          "(with tls_cert and tls_key)");
    auto clear = parse_irc("listen = \"[2001:db8::1]:6697\"\nallow_remote = true\n");
    REQUIRE(clear.problems.size() == 1);
    CHECK(clear.problems[0].key == "irc.allow_remote");
    CHECK(clear.problems[0].line == 4);
    auto half = parse_irc("listen = \"0.0.0.0:6697\"\nallow_remote = true\ntls_cert = \"/c.pem\"\n");
    REQUIRE(half.problems.size() == 2);
    const Problem* missing_key = find_problem(half, "irc.tls_key");
    REQUIRE(missing_key);
    CHECK(missing_key->message == "tls_cert is set but tls_key is not");
    auto ok = parse_irc("listen = \"0.0.0.0:6697\"\nallow_remote = true\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n");
    REQUIRE(ok.ok());
    CHECK(ok.problems.empty());
    CHECK(ok.config->irc.allow_remote);
    CHECK(ok.config->irc.tls_cert == "/c.pem");
    CHECK(ok.config->irc.tls_key == "/k.pem");
}
