// config::parse / load. Expected lines are found in the input
// text itself (line_of), so editing a fixture cannot silently shift an assertion.
#include "config/config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

namespace {

using config::Problem;

// 1-based line of the `nth` (1-based) occurrence of `needle` in `text`.
int line_of(std::string_view text, std::string_view needle, int nth = 1) {
    std::size_t pos = std::string_view::npos;
    for (int i = 0; i < nth; ++i) {
        pos = text.find(needle, pos == std::string_view::npos ? 0 : pos + 1);
        REQUIRE(pos != std::string_view::npos);
    }
    return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(pos), '\n'));
}

// Sets or unsets an environment variable for one test and restores it afterwards.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value)
            ::setenv(name, value, 1);
        else
            ::unsetenv(name);
    }
    ~ScopedEnv() {
        if (old_)
            ::setenv(name_.c_str(), old_->c_str(), 1);
        else
            ::unsetenv(name_.c_str());
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    std::string name_;
    std::optional<std::string> old_;
};

// A mkdtemp directory, removed with its contents at the end of the test.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "stanzad-config-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    std::string write(const std::string& name, std::string_view content, mode_t mode) const {
        std::string file = path_ + "/" + name;
        {
            std::ofstream out(file, std::ios::binary);
            out << content;
        }
        REQUIRE(::chmod(file.c_str(), mode) == 0);
        return file;
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

const Problem* find_problem(const config::LoadResult& r, std::string_view key) {
    for (const Problem& p : r.problems)
        if (p.key == key) return &p;
    return nullptr;
}

std::size_t count_errors(const config::LoadResult& r) {
    return static_cast<std::size_t>(std::count_if(r.problems.begin(), r.problems.end(), [](const Problem& p) {
        return p.severity == Problem::Severity::Error;
    }));
}

std::string all_problems(const config::LoadResult& r) {
    std::string out;
    for (const Problem& p : r.problems) out += p.to_string() + "\n";
    return out;
}

// The one problem a fixture must cause.
const Problem& only_problem(const config::LoadResult& r) {
    INFO(all_problems(r));
    REQUIRE(r.problems.size() == 1);
    return r.problems[0];
}

constexpr std::string_view minimal_account = R"(
[[account]]
name = "home"
jid = "alice@example.org"
password = "secret"
)";

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// Client certificates and keys, made with the openssl CLI once per run (as tls_test's Pki):
// alice.pem/alice.key (EC P-256, self-signed), other.key (unrelated), alice-p8.key and
// alice-trad.key (alice.key encrypted as PKCS#8 and as a traditional PEM, passphrase "x"),
// expired.pem (alice's key, notAfter yesterday: `x509 -days -1`, since OpenSSL 3.0's req
// refuses -days 0 and has no -not_after) and expired.date ("notAfter=YYYY-MM-DD HH:MM:SSZ").
// Every key is 0600.
struct Pki {
    std::string dir;
    Pki() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "stanzad-config-pki-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        dir = tmpl;
        std::string cmd =
            "cd " + dir + " && "
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=alice "
            "-keyout alice.key -out alice.pem && "
            "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key && "
            "openssl pkey -in alice.key -aes256 -passout pass:x -out alice-p8.key && "
            "openssl ec -in alice.key -aes256 -passout pass:x -out alice-trad.key && "
            "openssl x509 -in alice.pem -signkey alice.key -days -1 -out expired.pem && "
            "openssl x509 -in expired.pem -noout -enddate -dateopt iso_8601 > expired.date && "
            "chmod 600 alice.key other.key alice-p8.key alice-trad.key";
        REQUIRE(std::system(("(" + cmd + ") >/dev/null 2>&1").c_str()) == 0);
    }
    ~Pki() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    std::string path(const char* file) const { return dir + "/" + file; }
};

const Pki& pki() {
    static Pki p;
    return p;
}

// A 0600 config file in `dir` with one account that uses `cert` and `key`, plus `extra`.
std::string cert_config(const TempDir& dir, const std::string& cert, const std::string& key,
                        const std::string& extra = "") {
    return dir.write("cert.toml",
                     "[[account]]\nname = \"cert\"\njid = \"alice@example.org\"\nclient_cert = \"" + cert +
                         "\"\nclient_key = \"" + key + "\"\n" + extra,
                     0600);
}

}  // namespace

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

TEST_CASE("proxy: socks5h:// and socks5:// URLs are parsed into their parts", "[config][proxy]") {
    auto proxy_of = [](const std::string& url) {
        auto r = config::parse(std::string(minimal_account) + "proxy = \"" + url + "\"\n", "p.toml");
        INFO(url << "\n" << all_problems(r));
        REQUIRE(r.ok());
        CHECK(r.problems.empty());
        REQUIRE(r.config->accounts.at(0).proxy.has_value());
        return *r.config->accounts.at(0).proxy;
    };
    SECTION("socks5h: the proxy resolves names") {
        auto p = proxy_of("socks5h://127.0.0.1:9050");
        CHECK(p == config::Proxy{true, "127.0.0.1", 9050, "", ""});
    }
    SECTION("socks5: names are resolved here") {
        auto p = proxy_of("socks5://proxy.example:1080");
        CHECK(p == config::Proxy{false, "proxy.example", 1080, "", ""});
    }
    SECTION("an IPv6 literal in brackets, a trailing slash, an upper-case scheme") {
        CHECK(proxy_of("socks5h://[::1]:9050") == config::Proxy{true, "::1", 9050, "", ""});
        CHECK(proxy_of("SOCKS5H://[2001:db8::7]:9150/") == config::Proxy{true, "2001:db8::7", 9150, "", ""});
    }
    SECTION("credentials, percent-decoded") {
        CHECK(proxy_of("socks5h://alice:hunter2@127.0.0.1:9050") ==
              config::Proxy{true, "127.0.0.1", 9050, "alice", "hunter2"});
        CHECK(proxy_of("socks5h://al%40ice:p%3Ass%2fw%25@[::1]:9050") ==
              config::Proxy{true, "::1", 9050, "al@ice", "p:ss/w%"});
        // An unescaped '@' in the password: the last '@' ends the credentials.
        CHECK(proxy_of("socks5://u:p@ss@localhost:1080") == config::Proxy{false, "localhost", 1080, "u", "p@ss"});
    }
}

TEST_CASE("proxy: each mistake is named, and the value is never echoed", "[config][proxy]") {
    const std::string head = std::string(minimal_account) + "proxy = ";
    const int line = line_of(head, "proxy =");
    auto problem_for = [&](const std::string& url) -> Problem {
        auto r = config::parse(head + "\"" + url + "\"\n", "p.toml");
        INFO(url);
        CHECK_FALSE(r.ok());
        Problem p = only_problem(r);
        CHECK(p.severity == Problem::Severity::Error);
        CHECK(p.key == "account[1].proxy");
        CHECK(p.line == line);
        CHECK(p.message.find("hunter2") == std::string::npos);
        return p;
    };
    const std::string schemes =
        "use socks5h:// (the proxy resolves host names: the one for Tor) or socks5:// (host names are resolved "
        "here first)";

    SECTION("a scheme other than socks5h and socks5") {
        CHECK(problem_for("http://user:hunter2@127.0.0.1:8080").message == "unsupported scheme 'http': " + schemes);
        CHECK(problem_for("socks4a://127.0.0.1:9050").message == "unsupported scheme 'socks4a': " + schemes);
        // Not a scheme-looking word: not quoted either.
        CHECK(problem_for("user:hunter2@x://127.0.0.1:1").message == "unsupported scheme: " + schemes);
        CHECK(problem_for("127.0.0.1:9050").message ==
              "expected a URL like socks5h://127.0.0.1:9050; " + schemes);
        CHECK(problem_for("alice:hunter2@127.0.0.1:9050").message ==
              "expected a URL like socks5h://127.0.0.1:9050; " + schemes);
    }
    SECTION("no port") {
        for (std::string url : {"socks5h://127.0.0.1", "socks5h://127.0.0.1:", "socks5://a:hunter2@localhost/"}) {
            INFO(url);
            CHECK(problem_for(url).message ==
                  "no port: expected HOST:PORT, like socks5h://127.0.0.1:9050 (Tor's SocksPort is 9050)");
        }
        CHECK(problem_for("socks5h://[::1]").message ==
              "no port: expected HOST:PORT, like socks5h://[::1]:9050 (Tor's SocksPort is 9050)");
    }
    SECTION("a bad port") {
        for (std::string url : {"socks5://host:99999", "socks5://host:0", "socks5h://host:90a", "socks5h://[::1]:-1",
                                "socks5h://user:hunter2"}) {
            INFO(url);
            CHECK(problem_for(url).message ==
                  "bad port: expected a number between 1 and 65535, like socks5h://127.0.0.1:9050");
        }
    }
    SECTION("an empty host") {
        CHECK(problem_for("socks5h://:9050").message ==
              "empty host: expected HOST:PORT after the scheme, like socks5h://127.0.0.1:9050");
        CHECK(problem_for("socks5h://a:hunter2@:9050").message ==
              "empty host: expected HOST:PORT after the scheme, like socks5h://127.0.0.1:9050");
        CHECK(problem_for("socks5h://[]:9050").message ==
              "empty host: expected HOST:PORT after the scheme, like socks5h://127.0.0.1:9050");
        CHECK(problem_for("socks5://").message ==
              "no host: expected HOST:PORT after the scheme, like socks5h://127.0.0.1:9050");
    }
    SECTION("IPv6 without brackets, or brackets without IPv6") {
        CHECK(problem_for("socks5h://::1:9050").message ==
              "an IPv6 address goes in brackets, like socks5h://[::1]:9050");
        CHECK(problem_for("socks5h://[localhost]:9050").message == "the address in brackets is not an IPv6 address");
        CHECK(problem_for("socks5h://[::1:9050").message ==
              "an IPv6 address in brackets needs its closing ']', like socks5h://[::1]:9050");
        CHECK(problem_for("socks5h://[::1]9050").message ==
              "expected ':PORT' after the ']', like socks5h://[::1]:9050");
    }
    SECTION("a path, or odd characters in the host") {
        CHECK(problem_for("socks5h://127.0.0.1:9050/tor").message ==
              "expected nothing after HOST:PORT, like socks5h://127.0.0.1:9050");
        CHECK(problem_for("socks5h://local host:9050").message == "the proxy host is not a host name or an address");
    }
    SECTION("credentials that RFC 1929 cannot carry") {
        CHECK(problem_for("socks5h://hunter2@127.0.0.1:9050").message ==
              "credentials in the URL need a user name and a password (USER:PASSWORD@)");
        CHECK(problem_for("socks5h://alice:@127.0.0.1:9050").message ==
              "the user name and the password in the URL must be 1 to 255 bytes each (RFC 1929)");
        CHECK(problem_for("socks5h://:hunter2@127.0.0.1:9050").message ==
              "the user name and the password in the URL must be 1 to 255 bytes each (RFC 1929)");
        CHECK(problem_for("socks5h://alice:" + std::string(256, 'x') + "@127.0.0.1:9050").message ==
              "the user name and the password in the URL must be 1 to 255 bytes each (RFC 1929)");
        CHECK(problem_for("socks5h://alice:hunter2%zz@127.0.0.1:9050").message ==
              "bad percent-escape in the credentials: '%' must be followed by two hex digits");
        CHECK(problem_for("socks5h://alice:hunter2%4@127.0.0.1:9050").message ==
              "bad percent-escape in the credentials: '%' must be followed by two hex digits");
    }
    SECTION("not a string") {
        auto r = config::parse(head + "9050\n", "p.toml");
        CHECK(only_problem(r).message == "expected a string, got an integer");
    }
}

TEST_CASE("proxy_username and proxy_password: both or none, and only with proxy", "[config][proxy]") {
    const std::string with_proxy = std::string(minimal_account) + "proxy = \"socks5h://u:p@127.0.0.1:9050\"\n";
    SECTION("they override the URL's credentials") {
        auto r = config::parse(with_proxy + "proxy_username = \"isolated\"\nproxy_password = \"x%41\"\n", "u.toml");
        INFO(all_problems(r));
        REQUIRE(r.ok());
        CHECK(r.problems.empty());
        // Taken as written: only the URL is percent-decoded.
        CHECK(*r.config->accounts[0].proxy == config::Proxy{true, "127.0.0.1", 9050, "isolated", "x%41"});
    }
    SECTION("255 bytes each is the most RFC 1929 allows") {
        const std::string text = with_proxy + "proxy_username = \"" + std::string(255, 'u') +
                                 "\"\nproxy_password = \"" + std::string(256, 'p') + "\"\n";
        auto r = config::parse(text, "u.toml");
        const Problem& p = only_problem(r);
        CHECK(p.key == "account[1].proxy_password");
        CHECK(p.line == line_of(text, "proxy_password"));
        CHECK(p.message == "must be at most 255 bytes (RFC 1929), got 256");
    }
    SECTION("one without the other") {
        const std::string text = with_proxy + "proxy_username = \"isolated\"\n";
        auto r = config::parse(text, "u.toml");
        const Problem& p = only_problem(r);
        CHECK(p.key == "account[1].proxy_password");
        CHECK(p.line == line_of(text, "proxy_username"));
        CHECK(p.message == "proxy_username is set but proxy_password is not (RFC 1929 needs both)");
        const std::string text2 = with_proxy + "proxy_password = \"hunter2\"\n";
        auto r2 = config::parse(text2, "u.toml");
        const Problem& p2 = only_problem(r2);
        CHECK(p2.key == "account[1].proxy_username");
        CHECK(p2.line == line_of(text2, "proxy_password"));
        CHECK(p2.message == "proxy_password is set but proxy_username is not (RFC 1929 needs both)");
    }
    SECTION("without proxy") {
        const std::string text = std::string(minimal_account) + "proxy_username = \"a\"\nproxy_password = \"b\"\n";
        auto r = config::parse(text, "u.toml");
        const Problem& p = only_problem(r);
        CHECK(p.key == "account[1].proxy");
        CHECK(p.line == line_of(text, "proxy_username"));
        CHECK(p.message == "proxy_username is set but proxy is not");
    }
    SECTION("empty") {
        auto r = config::parse(with_proxy + "proxy_username = \"\"\nproxy_password = \"b\"\n", "u.toml");
        const Problem& p = only_problem(r);
        CHECK(p.key == "account[1].proxy_username");
        CHECK(p.message == "must not be empty");
    }
}

TEST_CASE("onion services need a proxy, and socks5h to resolve them", "[config][proxy]") {
    const std::string head = "[[account]]\nname = \"tor\"\npassword = \"x\"\n";
    SECTION("an onion JID without a proxy is an error at the jid") {
        const std::string text = head + "jid = \"alice@example.onion\"\n";
        auto r = config::parse(text, "o.toml");
        CHECK_FALSE(r.ok());
        const Problem& p = only_problem(r);
        CHECK(p.key == "account[1].proxy");
        CHECK(p.line == line_of(text, "jid ="));
        CHECK(p.message ==
              "example.onion is an onion service: it can only be reached through Tor's SOCKS port; "
              "set proxy = \"socks5h://127.0.0.1:9050\"");
    }
    SECTION("an onion host without a proxy is an error at the host") {
        const std::string text = head + "jid = \"alice@example.org\"\nhost = \"xmpp.Example.ONION\"\n";
        auto r = config::parse(text, "o.toml");
        const Problem& p = only_problem(r);
        CHECK(p.key == "account[1].proxy");
        CHECK(p.line == line_of(text, "host ="));
        CHECK(p.message.starts_with("xmpp.Example.ONION is an onion service: "));
    }
    SECTION("an onion JID reached at an ordinary host needs nothing") {
        auto r = config::parse(head + "jid = \"alice@example.onion\"\nhost = \"192.0.2.7\"\n", "o.toml");
        CHECK(r.ok());
        CHECK(r.problems.empty());
    }
    SECTION("socks5:// (local DNS) with an onion name is a warning") {
        const std::string text = head + "jid = \"alice@example.onion\"\nproxy = \"socks5://127.0.0.1:9050\"\n";
        auto r = config::parse(text, "o.toml");
        REQUIRE(r.ok());
        const Problem& p = only_problem(r);
        CHECK(p.severity == Problem::Severity::Warning);
        CHECK(p.key == "account[1].proxy");
        CHECK(p.line == line_of(text, "proxy ="));
        CHECK(p.to_string() ==
              "o.toml:" + std::to_string(p.line) +
                  ":9: warning: account[1].proxy: socks5:// resolves host names here, but example.onion is an onion "
                  "service that only Tor can resolve (and the lookup would tell your DNS server about it): use "
                  "socks5h://");
        auto host = config::parse(head + "jid = \"alice@example.org\"\nhost = \"x.onion\"\n"
                                         "proxy = \"socks5://127.0.0.1:9050\"\n",
                                  "o.toml");
        REQUIRE(host.ok());
        CHECK(only_problem(host).severity == Problem::Severity::Warning);
    }
    SECTION("socks5h:// with an onion name is what Tor wants") {
        auto r =
            config::parse(head + "jid = \"alice@example.onion\"\nproxy = \"socks5h://127.0.0.1:9050\"\n", "o.toml");
        REQUIRE(r.ok());
        CHECK(r.problems.empty());
    }
    SECTION("a name that merely contains onion is not one") {
        auto r = config::parse(head + "jid = \"alice@onion.example\"\nhost = \"onion\"\n", "o.toml");
        CHECK(r.ok());
        CHECK(r.problems.empty());
    }
}

TEST_CASE("tls_pin: a list of sha256/BASE64 SPKI pins", "[config][pin]") {
    // SHA-256 of nothing, and 32 zero bytes.
    const std::string empty_sha = "sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
    const std::string zeros = "sha256/" + std::string(43, 'A') + "=";
    SECTION("two pins for a key rollover") {
        auto r = config::parse(std::string(minimal_account) + "tls_pin = [\"" + empty_sha + "\", \"" + zeros + "\"]\n",
                               "pin.toml");
        INFO(all_problems(r));
        REQUIRE(r.ok());
        CHECK(r.problems.empty());
        const auto& pins = r.config->accounts[0].tls_pins;
        REQUIRE(pins.size() == 2);
        const config::Pin expected = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
                                      0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
                                      0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
        CHECK(pins[0] == expected);
        CHECK(pins[1] == config::Pin{});
    }
    SECTION("a single string is not taken for a list") {
        const std::string text = std::string(minimal_account) + "tls_pin = \"" + empty_sha + "\"\n";
        auto r = config::parse(text, "pin.toml");
        const Problem& p = only_problem(r);
        CHECK(p.key == "account[1].tls_pin");
        CHECK(p.line == line_of(text, "tls_pin"));
        CHECK(p.message ==
              "expected an array, like tls_pin = [\"sha256/BASE64\"] (several pins for a key change), got a string");
    }
    SECTION("each bad entry is named by its index and says why") {
        const std::string text = std::string(minimal_account) + "tls_pin = [\n  \"" + zeros +
                                 "\",\n  \"sha1/AAAA\",\n  \"sha256//" + std::string(43, 'A') +
                                 "=\",\n  \"sha256/not base64!\",\n  \"sha256/" + std::string(27, 'A') +
                                 "=\",\n  \"sha256/" + std::string(64, 'e') + "\",\n  42,\n  \"" + zeros + "\",\n]\n";
        auto r = config::parse(text, "pin.toml");
        CHECK_FALSE(r.ok());
        INFO(all_problems(r));
        REQUIRE(r.problems.size() == 7);
        const std::string expected =
            "expected \"sha256/\" followed by the base64 of 32 bytes (44 characters), as printed by `stanzactl pin "
            "home`";
        for (std::size_t i = 0; i < 6; ++i) {
            CHECK(r.problems[i].key == "account[1].tls_pin[" + std::to_string(i + 2) + "]");
            CHECK(r.problems[i].line == line_of(text, "tls_pin") + 2 + static_cast<int>(i));
            CHECK(r.problems[i].message.starts_with(expected));
        }
        CHECK(r.problems[0].message == expected + "; it does not start with \"sha256/\"");
        CHECK(r.problems[1].message ==
              expected + "; it has two slashes (curl's --pinnedpubkey writes \"sha256//\"); here it is one");
        CHECK(r.problems[2].message == expected + "; not valid base64: base64 length is not a multiple of 4");
        CHECK(r.problems[3].message == expected + "; it decodes to 20 bytes, not 32");
        CHECK(r.problems[4].message ==
              expected +
                  "; that is a hex digest; the pin is its base64 (openssl dgst -sha256 -binary | openssl base64)");
        CHECK(r.problems[5].message == expected + ", got an integer");
        // The same pin again is harmless: a warning.
        CHECK(r.problems[6].severity == Problem::Severity::Warning);
        CHECK(r.problems[6].key == "account[1].tls_pin[8]");
        CHECK(r.problems[6].message == "the same pin is listed twice");
    }
    SECTION("bad padding and characters") {
        for (std::string bad : {"sha256/" + std::string(42, 'A') + "==", "sha256/" + std::string(43, 'A') + "B",
                                "sha256/" + std::string(42, 'A') + "-=", "sha256/" + std::string(43, 'A') + "F="}) {
            INFO(bad);
            auto r = config::parse(std::string(minimal_account) + "tls_pin = [\"" + bad + "\"]\n", "pin.toml");
            const Problem& p = only_problem(r);
            CHECK(p.key == "account[1].tls_pin[1]");
            CHECK_FALSE(r.ok());
        }
    }
    SECTION("an empty list pins nothing") {
        auto r = config::parse(std::string(minimal_account) + "tls_pin = []\n", "pin.toml");
        REQUIRE(r.ok());
        CHECK(r.config->accounts[0].tls_pins.empty());
    }
}

TEST_CASE("daemon.resolver is an address and a port", "[config]") {
    auto parse_resolver = [](const std::string& value) {
        return config::parse("[daemon]\nresolver = " + value + "\n" + std::string(minimal_account), "r.toml");
    };
    for (std::string good : {"127.0.0.1:53", "[::1]:53", "[2001:db8::53]:5353", "10.0.0.1:65535"}) {
        auto r = parse_resolver("\"" + good + "\"");
        INFO(good << "\n" << all_problems(r));
        REQUIRE(r.ok());
        CHECK(r.config->daemon.resolver == good);
    }
    auto system = parse_resolver("\"\"");
    REQUIRE(system.ok());
    CHECK(system.config->daemon.resolver.empty());

    for (std::string bad : {"127.0.0.1", "localhost:53", "::1:53", "[::1]", "::1", "[127.0.0.1]:53", "1.2.3.4:0",
                            "[::1]:", "1.2.3:53", "127.0.0.1:53:53"}) {
        auto r = parse_resolver("\"" + bad + "\"");
        INFO(bad);
        const Problem& p = only_problem(r);
        CHECK(p.key == "daemon.resolver");
        CHECK(p.line == 2);
        CHECK(p.message == "expected an address and port like \"127.0.0.1:53\" or \"[::1]:53\", got '" + bad + "'");
    }
    auto number = parse_resolver("53");
    CHECK(only_problem(number).message == "expected a string, got an integer");
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

TEST_CASE("load: a missing file names the file and the reason", "[config][load]") {
    TempDir dir;
    const std::string path = dir.path() + "/nope.toml";
    auto r = config::load(path);
    CHECK_FALSE(r.ok());
    REQUIRE(r.problems.size() == 1);
    CHECK(r.problems[0].severity == Problem::Severity::Error);
    CHECK(r.problems[0].file == path);
    CHECK(r.problems[0].line == 0);
    CHECK(r.problems[0].message == "cannot read " + path + ": No such file or directory");
    CHECK(r.problems[0].to_string() == path + ": error: cannot read " + path + ": No such file or directory");
}

TEST_CASE("load: a password in a group- or world-readable file is a warning", "[config][load]") {
    TempDir dir;
    SECTION("0644 with a password: warning, config still returned") {
        const std::string path = dir.write("open.toml", minimal_account, 0644);
        auto r = config::load(path);
        REQUIRE(r.ok());
        CHECK(r.config->path == path);
        CHECK(r.config->accounts.at(0).password == std::optional<std::string>("secret"));
        REQUIRE(r.problems.size() == 1);
        CHECK(r.problems[0].severity == Problem::Severity::Warning);
        CHECK(r.problems[0].message == path + " is readable by others (mode 0644) and holds a password; chmod 600 " +
                                           path + " or use password_command");
    }
    SECTION("0640: group-readable counts too") {
        const std::string path = dir.write("group.toml", minimal_account, 0640);
        auto r = config::load(path);
        REQUIRE(r.ok());
        REQUIRE(r.problems.size() == 1);
        CHECK(r.problems[0].message.find("(mode 0640)") != std::string::npos);
    }
    SECTION("0600: no warning") {
        const std::string path = dir.write("closed.toml", minimal_account, 0600);
        auto r = config::load(path);
        REQUIRE(r.ok());
        CHECK(r.problems.empty());
    }
    SECTION("0644 with only password_command: no warning") {
        const std::string path = dir.write(
            "cmd.toml", "[[account]]\nname = \"a\"\njid = \"alice@example.org\"\npassword_command = \"pass a\"\n", 0644);
        auto r = config::load(path);
        REQUIRE(r.ok());
        CHECK(r.problems.empty());
    }
    SECTION("0644 with a proxy password: warning") {
        const std::string path = dir.write(
            "proxy.toml",
            "[[account]]\nname = \"a\"\njid = \"alice@example.org\"\npassword_command = \"pass a\"\n"
            "proxy = \"socks5h://u:p@127.0.0.1:9050\"\n",
            0644);
        auto r = config::load(path);
        REQUIRE(r.ok());
        REQUIRE(r.problems.size() == 1);
        CHECK(r.problems[0].message.starts_with(path + " is readable by others (mode 0644)"));
    }
    SECTION("0644 with an irc password and an error elsewhere: both reported") {
        const std::string path = dir.write("irc.toml", "[irc]\npassword = \"p\"\n[daemon]\nlog_level = 1\n", 0644);
        auto r = config::load(path);
        CHECK_FALSE(r.ok());
        REQUIRE(r.problems.size() == 3);  // permissions, log_level, no accounts
        CHECK(r.problems[0].severity == Problem::Severity::Warning);
        CHECK(r.problems[0].message.starts_with(path + " is readable by others (mode 0644)"));
        CHECK(find_problem(r, "daemon.log_level") != nullptr);
    }
}

TEST_CASE("client_key_password_command: a string, only with client_key", "[config][cert]") {
    const std::string head = "[[account]]\nname = \"a\"\njid = \"alice@example.org\"\n";
    SECTION("with client_cert and client_key") {
        auto r = config::parse(head + "client_cert = \"/c.pem\"\nclient_key = \"/k.pem\"\n"
                                      "client_key_password_command = \"pass show key\"\n",
                               "k.toml");
        INFO(all_problems(r));
        REQUIRE(r.ok());
        CHECK(r.problems.empty());
        CHECK(r.config->accounts[0].client_key_password_command == std::optional<std::string>("pass show key"));
    }
    SECTION("absent") {
        auto r = config::parse(minimal_account, "k.toml");
        REQUIRE(r.ok());
        CHECK_FALSE(r.config->accounts[0].client_key_password_command.has_value());
    }
    SECTION("without client_key") {
        const std::string text = head + "password = \"x\"\nclient_key_password_command = \"pass show key\"\n";
        auto r = config::parse(text, "k.toml");
        const Problem& p = only_problem(r);
        CHECK(p.key == "account[1].client_key");
        CHECK(p.line == line_of(text, "client_key_password_command"));
        CHECK(p.message == "client_key_password_command is set but client_key is not");
    }
    SECTION("empty, or not a string") {
        const std::string pair = head + "client_cert = \"/c.pem\"\nclient_key = \"/k.pem\"\n";
        auto empty = config::parse(pair + "client_key_password_command = \"\"\n", "k.toml");
        CHECK(only_problem(empty).key == "account[1].client_key_password_command");
        CHECK(only_problem(empty).message == "must not be empty");
        auto number = config::parse(pair + "client_key_password_command = 1\n", "k.toml");
        CHECK(only_problem(number).message == "expected a string, got an integer");
    }
}

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

TEST_CASE("parse reads no certificate or key file; load does", "[config][cert]") {
    TempDir dir;
    const std::string missing = dir.path() + "/missing.pem";
    const std::string text = "[[account]]\nname = \"a\"\njid = \"alice@example.org\"\nclient_cert = \"" + missing +
                             "\"\nclient_key = \"" + missing + "\"\n";
    auto parsed = config::parse(text, "p.toml");
    REQUIRE(parsed.ok());
    CHECK(parsed.problems.empty());
    auto loaded = config::load(dir.write("p.toml", text, 0600));
    CHECK_FALSE(loaded.ok());
    CHECK(count_errors(loaded) == 2);
}

TEST_CASE("load: a certificate-only account with a matching pair is valid", "[config][load][cert]") {
    TempDir dir;
    const std::string path =
        cert_config(dir, pki().path("alice.pem"), pki().path("alice.key"), "sasl = [\"EXTERNAL\"]\n");
    auto r = config::load(path);
    INFO(all_problems(r));
    REQUIRE(r.ok());
    CHECK(r.problems.empty());
    const config::Account& a = r.config->accounts.at(0);
    CHECK(a.client_cert == pki().path("alice.pem"));
    CHECK(a.client_key == pki().path("alice.key"));
    CHECK_FALSE(a.password.has_value());
    CHECK_FALSE(a.password_command.has_value());
    CHECK(a.sasl == std::vector<std::string>{"EXTERNAL"});
}

TEST_CASE("load: certificate and key may share one file, and a chain is read leaf first", "[config][load][cert]") {
    TempDir dir;
    const std::string cert = read_text(pki().path("alice.pem")), key = read_text(pki().path("alice.key"));
    SECTION("key and certificate in one file") {
        const std::string both = dir.write("both.pem", key + cert, 0600);
        auto r = config::load(cert_config(dir, both, both));
        INFO(all_problems(r));
        REQUIRE(r.ok());
        CHECK(r.problems.empty());
    }
    SECTION("a chain: the leaf, then an expired issuer") {
        const std::string chain = dir.write("chain.pem", cert + read_text(pki().path("expired.pem")), 0644);
        auto r = config::load(cert_config(dir, chain, pki().path("alice.key")));
        INFO(all_problems(r));
        REQUIRE(r.ok());
        CHECK(r.problems.empty());  // only the leaf's dates and key are checked
    }
}

TEST_CASE("load: unreadable or malformed certificate and key files are errors at their lines",
          "[config][load][cert]") {
    TempDir dir;
    SECTION("missing files") {
        const std::string cert = dir.path() + "/nope.pem", key = dir.path() + "/nope.key";
        auto r = config::load(cert_config(dir, cert, key));
        CHECK_FALSE(r.ok());
        INFO(all_problems(r));
        REQUIRE(r.problems.size() == 2);
        CHECK(r.problems[0].key == "account[1].client_cert");
        CHECK(r.problems[0].line == 4);
        CHECK(r.problems[0].message == "cannot read " + cert + ": No such file or directory");
        CHECK(r.problems[1].key == "account[1].client_key");
        CHECK(r.problems[1].line == 5);
        CHECK(r.problems[1].message == "cannot read " + key + ": No such file or directory");
    }
    SECTION("a directory") {
        auto r = config::load(cert_config(dir, dir.path(), pki().path("alice.key")));
        const Problem& p = only_problem(r);
        CHECK(p.key == "account[1].client_cert");
        CHECK(p.message == "cannot read " + dir.path() + ": Is a directory");
    }
    SECTION("not PEM") {
        const std::string junk = dir.write("junk.pem", "not a certificate\n", 0600);
        auto r = config::load(cert_config(dir, junk, junk));
        CHECK_FALSE(r.ok());
        INFO(all_problems(r));
        REQUIRE(r.problems.size() == 2);
        CHECK(r.problems[0].key == "account[1].client_cert");
        CHECK(r.problems[0].message ==
              "client_cert " + junk + " holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
        CHECK(r.problems[1].key == "account[1].client_key");
        CHECK(r.problems[1].message ==
              "client_key " + junk + " holds no PEM private key (-----BEGIN PRIVATE KEY-----)");
    }
    SECTION("certificate and key swapped") {
        const std::string cert = pki().path("alice.pem"), key = pki().path("alice.key");
        auto r = config::load(cert_config(dir, key, cert));
        CHECK_FALSE(r.ok());
        INFO(all_problems(r));
        REQUIRE(r.problems.size() == 2);
        CHECK(r.problems[0].message == "client_cert " + key +
                                           " holds no PEM certificate (-----BEGIN CERTIFICATE-----); it holds a "
                                           "private key: are client_cert and client_key swapped?");
        CHECK(r.problems[1].message == "client_key " + cert +
                                           " holds no PEM private key (-----BEGIN PRIVATE KEY-----); it holds a "
                                           "certificate: are client_cert and client_key swapped?");
        // The key file's contents never appear.
        const std::string key_text = read_text(key);
        const std::string body_line = key_text.substr(key_text.find('\n') + 1, 40);
        for (const Problem& p : r.problems) CHECK(p.message.find(body_line) == std::string::npos);
    }
}

TEST_CASE("load: a key that does not belong to the certificate is an error", "[config][load][cert]") {
    TempDir dir;
    const std::string cert = pki().path("alice.pem"), key = pki().path("other.key");
    const std::string path = cert_config(dir, cert, key);
    auto r = config::load(path);
    CHECK_FALSE(r.ok());
    const Problem& p = only_problem(r);
    CHECK(p.severity == Problem::Severity::Error);
    CHECK(p.key == "account[1].client_key");
    CHECK(p.line == 5);
    CHECK(p.to_string() == path + ":5:14: error: account[1].client_key: client_key " + key +
                               " does not belong to client_cert " + cert);
}

TEST_CASE("load: an encrypted key needs client_key_password_command, which is not run",
          "[config][load][cert]") {
    TempDir dir;
    const std::string cert = pki().path("alice.pem");
    for (const char* name : {"alice-p8.key", "alice-trad.key"}) {
        const std::string key = pki().path(name);
        INFO(key);
        SECTION(std::string("no command: ") + name) {
            auto r = config::load(cert_config(dir, cert, key));
            CHECK_FALSE(r.ok());
            const Problem& p = only_problem(r);
            CHECK(p.key == "account[1].client_key");
            CHECK(p.line == 5);
            CHECK(p.message == "client_key " + key + " is encrypted: set client_key_password_command");
        }
        SECTION(std::string("with the command: ") + name) {
            const std::string marker = dir.path() + "/ran";
            auto r = config::load(
                cert_config(dir, cert, key, "client_key_password_command = \"touch " + marker + "; echo x\"\n"));
            INFO(all_problems(r));
            REQUIRE(r.ok());
            CHECK(r.problems.empty());
            CHECK(r.config->accounts.at(0).client_key_password_command ==
                  std::optional<std::string>("touch " + marker + "; echo x"));
            CHECK_FALSE(std::filesystem::exists(marker));
        }
    }
    SECTION("a command for a key that is not encrypted is a warning") {
        const std::string text_key = "client_key_password_command = \"pass show key\"\n";
        auto r = config::load(cert_config(dir, cert, pki().path("alice.key"), text_key));
        REQUIRE(r.ok());
        const Problem& p = only_problem(r);
        CHECK(p.severity == Problem::Severity::Warning);
        CHECK(p.key == "account[1].client_key_password_command");
        CHECK(p.line == 6);
        CHECK(p.message == "client_key " + pki().path("alice.key") + " is not encrypted: the command is not needed");
    }
}

TEST_CASE("load: a key readable by group or others is a warning", "[config][load][cert]") {
    TempDir dir;
    const std::string cert = pki().path("alice.pem");
    for (mode_t mode : {mode_t(0640), mode_t(0604), mode_t(0644)}) {
        const std::string key = dir.write("open.key", read_text(pki().path("alice.key")), mode);
        auto r = config::load(cert_config(dir, cert, key));
        INFO(all_problems(r));
        REQUIRE(r.ok());
        const Problem& p = only_problem(r);
        CHECK(p.severity == Problem::Severity::Warning);
        CHECK(p.key == "account[1].client_key");
        CHECK(p.line == 5);
        char octal[8];
        std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
        CHECK(p.message ==
              key + " is readable by others (mode " + octal + ") and holds a private key; chmod 600 " + key);
    }
    // Encrypted or not, the warning is the same; the certificate itself is public.
    const std::string enc = dir.write("enc.key", read_text(pki().path("alice-p8.key")), 0644);
    auto r = config::load(cert_config(dir, cert, enc, "client_key_password_command = \"pass show key\"\n"));
    REQUIRE(r.ok());
    CHECK(only_problem(r).message.starts_with(enc + " is readable by others (mode 0644)"));
}

TEST_CASE("load: an expired certificate is a warning with its date", "[config][load][cert]") {
    TempDir dir;
    const std::string cert = pki().path("expired.pem");
    auto r = config::load(cert_config(dir, cert, pki().path("alice.key")));
    INFO(all_problems(r));
    REQUIRE(r.ok());
    const Problem& p = only_problem(r);
    CHECK(p.severity == Problem::Severity::Warning);
    CHECK(p.key == "account[1].client_cert");
    CHECK(p.line == 4);
    // The date as openssl prints it in ISO 8601 ("notAfter=2026-11-25 12:00:00Z").
    std::string date = read_text(pki().path("expired.date"));
    REQUIRE(date.starts_with("notAfter="));
    date = date.substr(9, date.find('Z') - 9) + " UTC";
    CHECK(p.message == "client_cert " + cert + " expired on " + date + "; servers will refuse it");
}
