// config::parse of the network keys: proxy (socks5h:// and socks5:// URLs, credentials, onion
// services), tls_pin (sha256/BASE64 SPKI pins) and daemon.resolver.
#include "config_fixture.hpp"

using namespace config_test;

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
