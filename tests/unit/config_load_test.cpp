// config::load: the file and its permissions, and client certificates and keys
// (client_cert, client_key, client_key_password_command) read, matched and checked.
#include "config_fixture.hpp"

using namespace config_test;

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
