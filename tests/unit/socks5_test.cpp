// Tests for protocol/socks5: the exact bytes of every request (RFC 1928 §3, §4; RFC 1929 §2),
// every reply code, malformed and hostile proxies, and every split of a server transcript.
#include <catch2/catch.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/socks5.hpp"

using namespace std::string_literals;
using socks5::Client;
using socks5::Credentials;

namespace {

constexpr std::string_view kUsername = "stanzad-home";
constexpr std::string_view kPassword = "correct horse battery staple";

Credentials credentials() { return Credentials{std::string(kUsername), std::string(kPassword)}; }

// Binary strings from numbers, so that no escape swallows the letter after it ("\x0be").
std::string bytes(std::initializer_list<int> list) {
    std::string out;
    for (int b : list) out += static_cast<char>(b);
    return out;
}

const std::string kGreetingNoAuth = bytes({0x05, 0x01, 0x00});
const std::string kGreetingWithAuth = bytes({0x05, 0x02, 0x00, 0x02});
const std::string kChooseNoAuth = bytes({0x05, 0x00});
const std::string kChoosePassword = bytes({0x05, 0x02});
const std::string kAuthOk = bytes({0x01, 0x00});
// RFC 1929 §2 request for kUsername / kPassword.
const std::string kAuthRequest = bytes({0x01, 12}) + "stanzad-home" + bytes({28}) + "correct horse battery staple";
// CONNECT example.org:5222 (0x1466), ATYP 3.
const std::string kConnectExampleOrg = bytes({0x05, 0x01, 0x00, 0x03, 11}) + "example.org" + bytes({0x14, 0x66});
// Succeeded, bound to 10.0.0.1:40512 (0x9E40).
const std::string kReplyIpv4 = bytes({0x05, 0x00, 0x00, 0x01, 10, 0, 0, 1, 0x9E, 0x40});

void require_error(const xmpp::Status& status, std::string_view code) {
    REQUIRE_FALSE(status.ok());
    INFO("message: " << status.error().message);
    CHECK(status.error().code == code);
    CHECK_FALSE(status.error().message.empty());
    CHECK(status.error().message.find(kPassword) == std::string::npos);
    CHECK(status.error().message.find("horse") == std::string::npos);
}

// A client past its greeting, as the connection drives it.
Client started(std::string host, std::uint16_t port = 5222,
               std::optional<Credentials> creds = std::nullopt) {
    Client c(std::move(host), port, std::move(creds));
    c.take_output();
    return c;
}

// A no-auth client that has sent its CONNECT and waits for the reply.
Client connecting() {
    Client c = started("example.org");
    REQUIRE(c.receive(kChooseNoAuth).ok());
    REQUIRE(c.take_output() == kConnectExampleOrg);
    return c;
}

// Everything observable after feeding `chunks` to a fresh client with credentials.
struct Outcome {
    bool done = false;
    bool failed = false;
    std::string code;  // of the last failed receive()
    std::string message;
    std::string output;  // after the greeting, as taken after each receive()
    std::string leftover;
    std::string bound;
    int reply_code = -1;
};

// After a failure the output depends on the split: requests taken before the failing
// read were sent, the rest is dropped. Everything else must match exactly.
bool same(const Outcome& a, const Outcome& b) {
    return a.done == b.done && a.failed == b.failed && a.code == b.code && a.message == b.message &&
           (a.failed || a.output == b.output) && a.leftover == b.leftover && a.bound == b.bound &&
           a.reply_code == b.reply_code;
}

Outcome run(const std::vector<std::string_view>& chunks) {
    Client c = started("example.org", 5222, credentials());
    Outcome o;
    for (std::string_view chunk : chunks) {
        auto status = c.receive(chunk);
        if (!status) {
            o.code = status.error().code;
            o.message = status.error().message;
        }
        o.output += c.take_output();
    }
    o.done = c.done();
    o.failed = c.failed();
    o.leftover = c.take_leftover();
    o.bound = c.bound();
    o.reply_code = c.reply_code();
    return o;
}

}  // namespace

TEST_CASE("socks5: the greeting offers no authentication, and username/password with credentials") {
    Client plain("example.org", 5222);
    CHECK(plain.take_output() == kGreetingNoAuth);  // RFC 1928 §3
    CHECK(plain.take_output().empty());             // once

    Client with_auth("example.org", 5222, credentials());
    CHECK(with_auth.take_output() == kGreetingWithAuth);
    CHECK_FALSE(with_auth.done());
    CHECK_FALSE(with_auth.failed());
    CHECK(with_auth.reply_code() == -1);
}

TEST_CASE("socks5: no authentication, CONNECT to an IPv4 literal") {
    Client c = started("192.0.2.1");
    REQUIRE(c.receive(kChooseNoAuth).ok());
    CHECK(c.take_output() == bytes({0x05, 0x01, 0x00, 0x01, 192, 0, 2, 1, 0x14, 0x66}));
    CHECK_FALSE(c.done());
    REQUIRE(c.receive(kReplyIpv4).ok());
    CHECK(c.done());
    CHECK_FALSE(c.failed());
    CHECK(c.bound() == "10.0.0.1:40512");
    CHECK(c.take_leftover().empty());
    CHECK(c.take_output().empty());
    CHECK(c.reply_code() == -1);
}

TEST_CASE("socks5: no authentication, CONNECT to an IPv6 literal with or without brackets") {
    const std::string expected = bytes({0x05, 0x01, 0x00, 0x04,                          //
                                        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0,  //
                                        0, 0, 0, 1, 0x14, 0x66});
    for (std::string host : {"2001:db8::1", "[2001:db8::1]"}) {
        INFO(host);
        Client c = started(host);
        REQUIRE(c.receive(kChooseNoAuth).ok());
        CHECK(c.take_output() == expected);
        // Bound to [::1]:80.
        REQUIRE(c.receive(bytes({0x05, 0x00, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0,  //
                                 0, 0, 0, 0, 0, 0, 0, 1, 0x00, 0x50}))
                    .ok());
        CHECK(c.done());
        CHECK(c.bound() == "[::1]:80");
    }
}

TEST_CASE("socks5: no authentication, CONNECT to a name the proxy resolves") {
    Client c = started("example.org");
    REQUIRE(c.receive(kChooseNoAuth).ok());
    CHECK(c.take_output() == kConnectExampleOrg);
    REQUIRE(c.receive(bytes({0x05, 0x00, 0x00, 0x03, 13}) + "proxy.example" + bytes({0x04, 0x38})).ok());
    CHECK(c.done());
    CHECK(c.bound() == "proxy.example:1080");

    // Things that look like literals but are not go as names too.
    for (std::string host : {"1.2.3"s, "[1.2.3.4]"s, "fe80::1%eth0"s, "256.1.1.1"s, "1.2.3.4\0.evil"s, "[::1\0]"s}) {
        INFO(host);
        Client n = started(host, 80);
        REQUIRE(n.receive(kChooseNoAuth).ok());
        CHECK(n.take_output() == bytes({0x05, 0x01, 0x00, 0x03, static_cast<int>(host.size())}) + host +
                                     bytes({0x00, 0x50}));
    }
}

TEST_CASE("socks5: a bound name is made printable for the log") {
    Client c = connecting();
    REQUIRE(c.receive(bytes({0x05, 0x00, 0x00, 0x03, 4, 'a', 0x1b, '\\', 0xff, 0x00, 0x01})).ok());
    CHECK(c.done());
    CHECK(c.bound() == "a\\x1B\\x5C\\xFF:1");
}

TEST_CASE("socks5: username/password sub-negotiation, then CONNECT") {
    Client c("example.org", 5222, credentials());
    CHECK(c.take_output() == kGreetingWithAuth);
    REQUIRE(c.receive(kChoosePassword).ok());
    CHECK(c.take_output() == kAuthRequest);  // RFC 1929 §2
    REQUIRE(c.receive(kAuthOk).ok());
    CHECK(c.take_output() == kConnectExampleOrg);
    REQUIRE(c.receive(kReplyIpv4).ok());
    CHECK(c.done());
    CHECK(c.bound() == "10.0.0.1:40512");
}

TEST_CASE("socks5: a proxy that needs no authentication skips the credentials") {
    Client c = started("example.org", 5222, credentials());
    REQUIRE(c.receive(kChooseNoAuth).ok());
    CHECK(c.take_output() == kConnectExampleOrg);
    REQUIRE(c.receive(kReplyIpv4).ok());
    CHECK(c.done());
}

TEST_CASE("socks5: credentials of 1 and 255 bytes are sent as they are") {
    const std::string user(255, 'u');
    Client c = started("example.org", 5222, Credentials{user, "p"});
    REQUIRE(c.receive(kChoosePassword).ok());
    CHECK(c.take_output() == bytes({0x01, 255}) + user + bytes({1}) + "p");
}

TEST_CASE("socks5: some proxies answer the sub-negotiation with version 5; the status still counts") {
    Client c = started("example.org", 5222, credentials());
    REQUIRE(c.receive(kChoosePassword).ok());
    REQUIRE(c.receive(bytes({0x05, 0x00})).ok());
    CHECK(c.take_output() == kAuthRequest + kConnectExampleOrg);
}

TEST_CASE("socks5: describe_reply names RFC 1928 §6 and Tor's onion-service codes") {
    CHECK(Client::describe_reply(0) == "succeeded");
    CHECK(Client::describe_reply(4) == "host unreachable");
    CHECK(Client::describe_reply(0xF0) == "onion service descriptor can not be found");
    CHECK(Client::describe_reply(9) == "unknown reply");
    CHECK(Client::describe_reply(-1) == "unknown reply");
    CHECK(Client::describe_reply(0x1F0) == "unknown reply");
}

TEST_CASE("socks5: every failed CONNECT reply says what the proxy said") {
    struct Case {
        int code;
        std::string_view text;
    };
    const Case cases[] = {
        {1, "general SOCKS server failure"},
        {2, "connection not allowed by ruleset"},
        {3, "network unreachable"},
        {4, "host unreachable"},
        {5, "connection refused"},
        {6, "TTL expired"},
        {7, "command not supported"},
        {8, "address type not supported"},
        {0xF0, "onion service descriptor can not be found"},
        {0xF1, "onion service descriptor is invalid"},
        {0xF2, "onion service introduction failed"},
        {0xF3, "onion service rendezvous failed"},
        {0xF4, "onion service client authorization missing"},
        {0xF5, "onion service client authorization wrong"},
        {0xF6, "onion address is invalid"},
        {0xF7, "onion service introduction timed out"},
        {9, "unknown reply"},
        {0x42, "unknown reply"},
        {0xFF, "unknown reply"},
    };
    for (const Case& k : cases) {
        INFO("REP " << k.code);
        CHECK(Client::describe_reply(k.code) == k.text);

        Client c = connecting();
        auto status = c.receive(bytes({0x05, k.code, 0x00, 0x01, 0, 0, 0, 0, 0, 0}));
        require_error(status, socks5::err_reply);
        CHECK(status.error().message ==
              std::string(k.text) + " (SOCKS5 reply " + std::to_string(k.code) + ")");
        CHECK(c.failed());
        CHECK_FALSE(c.done());
        CHECK(c.reply_code() == k.code);
        CHECK(c.bound().empty());
    }
}

TEST_CASE("socks5: a failure is reported as soon as REP arrives, whatever follows") {
    // RFC 1928 §6: the server closes right after a failure reply; some send it short or
    // with a bogus address type, and the reason must still reach the user.
    Client c = connecting();
    auto status = c.receive(bytes({0x05, 0x04}));
    require_error(status, socks5::err_reply);
    CHECK(c.reply_code() == 4);

    Client bogus = connecting();
    require_error(bogus.receive(bytes({0x05, 0xF2, 0x00, 0x09})), socks5::err_reply);
    CHECK(bogus.reply_code() == 0xF2);
}

TEST_CASE("socks5: a proxy that accepts none of our methods") {
    for (bool with_credentials : {false, true}) {
        INFO("credentials: " << with_credentials);
        Client c = started("example.org", 5222,
                           with_credentials ? std::optional(credentials()) : std::nullopt);
        auto status = c.receive(bytes({0x05, 0xFF}));
        require_error(status, socks5::err_auth);
        CHECK(status.error().message == "the proxy accepts none of our authentication methods");
        CHECK(c.failed());
        CHECK(c.take_output().empty());
        CHECK(c.reply_code() == -1);
    }
}

TEST_CASE("socks5: a proxy that wants a password we do not have, or a method we did not offer") {
    Client c = started("example.org");
    auto status = c.receive(kChoosePassword);
    require_error(status, socks5::err_auth);
    CHECK(status.error().message == "the proxy requires a username and password, but none is configured");
    CHECK(c.take_output().empty());

    Client gss = started("example.org", 5222, credentials());
    status = gss.receive(bytes({0x05, 0x01}));
    require_error(status, socks5::err_protocol);
    CHECK(status.error().message == "the proxy chose authentication method 0x01 (GSSAPI), which we did not offer");

    Client odd = started("example.org");
    status = odd.receive(bytes({0x05, 0x80}));
    require_error(status, socks5::err_protocol);
    CHECK(status.error().message == "the proxy chose authentication method 0x80, which we did not offer");
}

TEST_CASE("socks5: refused credentials") {
    for (int code : {0x01, 0xFF}) {
        Client c = started("example.org", 5222, credentials());
        REQUIRE(c.receive(kChoosePassword).ok());
        CHECK(c.take_output() == kAuthRequest);
        auto status = c.receive(bytes({0x01, code}));
        require_error(status, socks5::err_auth);
        CHECK(status.error().message == "the proxy refused the username/password");
        CHECK(c.failed());
        CHECK(c.take_output().empty());
    }
}

TEST_CASE("socks5: a reply that is not SOCKS5, at each step") {
    SECTION("an HTTP proxy answering the greeting") {
        Client c = started("example.org");
        auto status = c.receive("HTTP/1.1 400 Bad Request\r\n\r\n");
        require_error(status, socks5::err_protocol);
        CHECK(status.error().message ==
              "not a SOCKS5 proxy: its answer to our greeting starts with 0x48, expected 0x05 (an HTTP proxy?)");
    }
    SECTION("a SOCKS4 version byte in the method choice") {
        Client c = started("example.org");
        auto status = c.receive(bytes({0x04}));  // one byte is enough to tell
        require_error(status, socks5::err_protocol);
        CHECK(status.error().message == "not a SOCKS5 proxy: its answer to our greeting starts with 0x04, expected 0x05");
    }
    SECTION("the CONNECT reply") {
        Client c = connecting();
        auto status = c.receive(bytes({0x00, 0x5A, 0, 0, 0, 0, 0, 0}));  // a SOCKS4 "granted"
        require_error(status, socks5::err_protocol);
        CHECK(status.error().message ==
              "not a SOCKS5 proxy: its answer to our CONNECT request starts with 0x00, expected 0x05");
        CHECK(c.reply_code() == -1);
    }
    SECTION("the sub-negotiation reply") {
        Client c = started("example.org", 5222, credentials());
        REQUIRE(c.receive(kChoosePassword).ok());
        auto status = c.receive(bytes({0x02, 0x00}));
        require_error(status, socks5::err_protocol);
        CHECK(status.error().message ==
              "not a SOCKS5 proxy: its answer to our username/password starts with 0x02, expected 0x01 (RFC 1929 §2)");
    }
}

TEST_CASE("socks5: an unknown address type in the CONNECT reply") {
    for (int atyp : {0x00, 0x02, 0x05, 0xFF}) {
        INFO("ATYP " << atyp);
        Client c = connecting();
        auto status = c.receive(bytes({0x05, 0x00, 0x00, atyp}));
        require_error(status, socks5::err_protocol);
        CHECK(status.error().message.find("address type") != std::string::npos);
        CHECK(c.failed());
        CHECK(c.bound().empty());
        CHECK(c.reply_code() == -1);
    }
}

TEST_CASE("socks5: a name of 256 bytes, or none, fails at the first receive") {
    for (std::size_t size : {std::size_t{0}, std::size_t{256}, std::size_t{1000}}) {
        INFO("size " << size);
        Client c(std::string(size, 'a'), 5222);
        CHECK(c.take_output() == kGreetingNoAuth);  // still sent: the proxy answers, then we stop
        auto status = c.receive(kChooseNoAuth);
        require_error(status, socks5::err_protocol);
        CHECK(status.error().message ==
              "SOCKS5 cannot carry a host name of " + std::to_string(size) + " bytes (RFC 1928 §5 allows 1..255)");
        CHECK(c.take_output().empty());
        CHECK(c.failed());
    }

    const std::string longest(255, 'a');
    Client ok = started(longest, 5222);
    REQUIRE(ok.receive(kChooseNoAuth).ok());
    CHECK(ok.take_output() == bytes({0x05, 0x01, 0x00, 0x03, 255}) + longest + bytes({0x14, 0x66}));
}

TEST_CASE("socks5: credentials must be 1..255 bytes, and the message never shows them") {
    const std::string long_password = std::string(kPassword) + std::string(256, 'x');
    const Credentials bad[] = {
        {"", std::string(kPassword)},
        {std::string(256, 'u'), std::string(kPassword)},
        {std::string(kUsername), ""},
        {std::string(kUsername), long_password},
    };
    for (const Credentials& creds : bad) {
        INFO("username " << creds.username.size() << " bytes, password " << creds.password.size() << " bytes");
        Client c("example.org", 5222, creds);
        CHECK(c.take_output() == kGreetingWithAuth);
        auto status = c.receive(kChoosePassword);
        require_error(status, socks5::err_auth);
        CHECK(status.error().message.find(std::string(256, 'u')) == std::string::npos);
        CHECK(status.error().message.find(kUsername) == std::string::npos);
        CHECK(c.take_output().empty());  // no request carrying them
    }
}

TEST_CASE("socks5: no message carries the password or the username") {
    // Every failure reachable after the password went out.
    const std::vector<std::string> endings = {
        bytes({0x01, 0x01}),
        bytes({0x07, 0x00}),
        kAuthOk + bytes({0x05, 0x01}),
        kAuthOk + bytes({0x06}),
        kAuthOk + bytes({0x05, 0x00, 0x00, 0x07}),
    };
    for (const std::string& ending : endings) {
        Client c = started("example.org", 5222, credentials());
        auto status = c.receive(kChoosePassword + ending);
        REQUIRE_FALSE(status.ok());
        require_error(status, status.error().code);
        CHECK(status.error().message.find(kUsername) == std::string::npos);
    }
}

TEST_CASE("socks5: errors are final and repeat without doing work") {
    Client c = connecting();
    auto first = c.receive(bytes({0x05, 0x04}));
    require_error(first, socks5::err_reply);
    auto again = c.receive(kReplyIpv4);
    require_error(again, socks5::err_reply);
    CHECK(again.error().message == first.error().message);
    CHECK(c.receive("").error().message == first.error().message);
    CHECK(c.failed());
    CHECK_FALSE(c.done());
    CHECK(c.take_output().empty());
    CHECK(c.take_leftover().empty());
    CHECK(c.reply_code() == 4);
}

TEST_CASE("socks5: bytes after the CONNECT reply are the tunnel's, in the same read or later") {
    Client c = connecting();
    REQUIRE(c.receive(kReplyIpv4 + "\x16\x03\x01 TLS").ok());
    CHECK(c.done());
    CHECK(c.bound() == "10.0.0.1:40512");
    CHECK(c.take_leftover() == "\x16\x03\x01 TLS");
    CHECK(c.take_leftover().empty());
    REQUIRE(c.receive("more").ok());
    CHECK(c.take_leftover() == "more");

    // The whole conversation from a proxy that does not wait for us, in one read.
    Client all = started("example.org", 5222, credentials());
    REQUIRE(all.receive(kChoosePassword + kAuthOk + kReplyIpv4 + "<?xml").ok());
    CHECK(all.done());
    CHECK(all.take_output() == kAuthRequest + kConnectExampleOrg);
    CHECK(all.take_leftover() == "<?xml");
}

TEST_CASE("socks5: bytes before the greeting was taken are held, within one reply's worth") {
    Client c("example.org", 5222);
    REQUIRE(c.receive(kChooseNoAuth + kReplyIpv4 + "hi").ok());
    CHECK_FALSE(c.done());
    CHECK(c.take_output() == kGreetingNoAuth);
    REQUIRE(c.receive("!").ok());
    CHECK(c.done());
    CHECK(c.take_output() == kConnectExampleOrg);
    CHECK(c.take_leftover() == "hi!");

    Client flood("example.org", 5222);
    REQUIRE(flood.receive(std::string(262, '\x05')).ok());
    auto status = flood.receive("x");
    require_error(status, socks5::err_protocol);
    CHECK(status.error().message == "the proxy sent more than 262 bytes before our greeting");
}

TEST_CASE("socks5: the longest reply (a 255-byte bound name) is read whole") {
    const std::string name(255, 'n');
    Client c = connecting();
    const std::string reply = bytes({0x05, 0x00, 0x00, 0x03, 255}) + name + bytes({0xFF, 0xFF});
    REQUIRE(c.receive(reply.substr(0, 261)).ok());
    CHECK_FALSE(c.done());
    REQUIRE(c.receive(reply.substr(261) + "tail").ok());
    CHECK(c.done());
    CHECK(c.bound() == name + ":65535");
    CHECK(c.take_leftover() == "tail");
}

TEST_CASE("socks5: every split of a server transcript gives the same outcome") {
    struct Transcript {
        std::string_view name;
        std::string bytes;
        Outcome whole;  // expected when read in one piece
    };
    const std::string requests = kAuthRequest + kConnectExampleOrg;
    const std::string reply_name = bytes({0x05, 0x00, 0x00, 0x03, 13}) + "proxy.example" + bytes({0x04, 0x38});
    const Transcript transcripts[] = {
        {"success", kChoosePassword + kAuthOk + reply_name + "<?xml version='1.0'?>",
         Outcome{true, false, "", "", requests, "<?xml version='1.0'?>", "proxy.example:1080", -1}},
        // After a failure nothing is left to send: the requests are dropped with it.
        {"onion rendezvous failed", kChoosePassword + kAuthOk + bytes({0x05, 0xF3, 0x00, 0x01, 0, 0, 0, 0, 0, 0}),
         Outcome{false, true, std::string(socks5::err_reply),
                 "onion service rendezvous failed (SOCKS5 reply 243)",
                 "", "", "", 0xF3}},
        {"unknown address type", kChoosePassword + kAuthOk + bytes({0x05, 0x00, 0x00, 0x02, 1, 2, 3, 4, 5, 6}),
         Outcome{false, true, std::string(socks5::err_protocol),
                 "the proxy's CONNECT reply has address type 0x02, expected 0x01, 0x03 or 0x04 (RFC 1928 §5)",
                 "", "", "", -1}},
    };

    for (const Transcript& tr : transcripts) {
        INFO("transcript: " << tr.name);
        const std::string_view t = tr.bytes;
        const Outcome whole = run({t});
        CHECK(whole.done == tr.whole.done);
        CHECK(whole.failed == tr.whole.failed);
        CHECK(whole.code == tr.whole.code);
        CHECK(whole.message == tr.whole.message);
        CHECK(whole.output == tr.whole.output);
        CHECK(whole.leftover == tr.whole.leftover);
        CHECK(whole.bound == tr.whole.bound);
        CHECK(whole.reply_code == tr.whole.reply_code);

        std::vector<std::string_view> one_by_one;
        for (std::size_t i = 0; i < t.size(); ++i) one_by_one.push_back(t.substr(i, 1));
        const Outcome bytewise = run(one_by_one);
        CHECK(same(bytewise, whole));
        CHECK(bytewise.output == requests);  // each request taken as soon as it was due

        for (std::size_t i = 0; i <= t.size(); ++i) {
            INFO("split at " << i);
            CHECK(same(run({t.substr(0, i), t.substr(i)}), whole));
        }

        // Three pieces: one CHECK for all of them, naming the first split that differs.
        std::string first_difference;
        for (std::size_t i = 0; i <= t.size() && first_difference.empty(); ++i) {
            for (std::size_t j = i; j <= t.size(); ++j) {
                if (!same(run({t.substr(0, i), t.substr(i, j - i), t.substr(j)}), whole)) {
                    first_difference = std::to_string(i) + " and " + std::to_string(j);
                    break;
                }
            }
        }
        CHECK(first_difference == "");
    }
}
