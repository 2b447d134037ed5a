// Tests for protocol/dns: SRV answers built byte by byte (RFC 1035 §4.1), hostile names
// and framing, RFC 2782 weighted ordering, the RFC 6120 / XEP-0368 target list and the
// RFC 8305 family interleaving.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/dns.hpp"

using namespace std::string_literals;
using dns::SrvRecord;
using dns::Target;

namespace {

constexpr std::string_view kName = "_xmpp-client._tcp.example.org";
constexpr std::size_t kQuestionName = 12;  // where the question's name starts
constexpr std::size_t kExampleOrg = 30;    // "example.org" inside it: 12 + 13 ("_xmpp-client") + 5 ("_tcp")

constexpr std::uint16_t kTypeA = 1;
constexpr std::uint16_t kTypeCname = 5;
constexpr std::uint16_t kTypeAaaa = 28;
constexpr std::uint16_t kTypeSrv = 33;
constexpr std::uint16_t kTypeOpt = 41;
constexpr std::uint16_t kClassIn = 1;

constexpr std::uint16_t kNoError = 0x8180;  // QR, RD, RA
constexpr std::uint16_t kNxDomain = 0x8183;

std::string u16(unsigned v) { return {static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)}; }
std::string u32(std::uint32_t v) { return u16(v >> 16) + u16(v & 0xffff); }

// Labels of a dotted name without the terminating zero: "a.bc" -> "\1a\2bc".
std::string labels(std::string_view dotted) {
    std::string out;
    while (!dotted.empty()) {
        auto dot = dotted.find('.');
        auto label = dotted.substr(0, dot);
        out += static_cast<char>(label.size());
        out += label;
        dotted.remove_prefix(dot == std::string_view::npos ? dotted.size() : dot + 1);
    }
    return out;
}

// An uncompressed name (RFC 1035 §3.1); "" is the root.
std::string wire(std::string_view dotted) { return labels(dotted) + '\0'; }

// A compression pointer (RFC 1035 §4.1.4).
std::string ptr(std::size_t offset) { return u16(0xc000 | offset); }

std::string srv_rdata(unsigned priority, unsigned weight, unsigned port, const std::string& target) {
    return u16(priority) + u16(weight) + u16(port) + target;
}

// A DNS message written section by section; counts are given up front as a server would.
struct Message {
    std::string bytes;

    explicit Message(unsigned flags = kNoError, unsigned qd = 1, unsigned an = 0, unsigned ns = 0,
                     unsigned ar = 0) {
        bytes = u16(0xbeef) + u16(flags) + u16(qd) + u16(an) + u16(ns) + u16(ar);
    }
    Message& question(const std::string& name = wire(kName), unsigned type = kTypeSrv) {
        bytes += name + u16(type) + u16(kClassIn);
        return *this;
    }
    // RDLENGTH is the size of `rdata` unless given.
    Message& rr(const std::string& owner, unsigned type, std::uint32_t ttl, const std::string& rdata,
                unsigned klass = kClassIn, std::size_t rdlength = std::string::npos) {
        if (rdlength == std::string::npos) rdlength = rdata.size();
        bytes += owner + u16(type) + u16(klass) + u32(ttl) + u16(rdlength) + rdata;
        return *this;
    }
    Message& srv(const std::string& owner, std::uint32_t ttl, unsigned priority, unsigned weight, unsigned port,
                 const std::string& target) {
        return rr(owner, kTypeSrv, ttl, srv_rdata(priority, weight, port, target));
    }
    std::size_t size() const { return bytes.size(); }
};

SrvRecord rec(unsigned priority, unsigned weight, unsigned port, std::string target, std::uint32_t ttl = 0) {
    SrvRecord r;
    r.priority = static_cast<std::uint16_t>(priority);
    r.weight = static_cast<std::uint16_t>(weight);
    r.port = static_cast<std::uint16_t>(port);
    r.target = std::move(target);
    r.ttl = ttl;
    return r;
}

std::vector<SrvRecord> parse_ok(std::string_view message, std::string_view name = kName) {
    auto r = dns::parse_srv_answer(message, name);
    if (!r) FAIL("parse failed: " << r.error().message);
    return r.value();
}

// The error message of a parse that must fail with code "dns".
std::string parse_error(std::string_view message, std::string_view name = kName) {
    auto r = dns::parse_srv_answer(message, name);
    if (r) FAIL("parse succeeded with " << r.value().size() << " records");
    CHECK(r.error().code == "dns");
    CHECK_FALSE(r.error().message.empty());
    return r.error().message;
}

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

// jabber.org-shaped: compressed owners, one target written out, one target compressed
// against the question, an A and a CNAME record in between, an EDNS OPT record after.
Message compressed_answer() {
    Message m(kNoError, 1, 4, 0, 1);
    m.question(wire("_XMPP-Client._TCP.Example.ORG"));
    m.srv(ptr(kQuestionName), 3600, 31, 30, 5222, wire("Hermes2.Example.ORG"));
    const std::size_t hermes = m.size() - wire("hermes2.example.org").size();
    m.rr(ptr(hermes), kTypeA, 300, "\xc0\x00\x02\x01"s);
    m.rr(labels("alias") + ptr(kExampleOrg), kTypeCname, 60, ptr(hermes));
    m.srv(ptr(kQuestionName), 3600, 30, 30, 5222, labels("xmpp") + ptr(kExampleOrg));
    m.rr("\0"s, kTypeOpt, 0, "", 1232);  // RFC 6891 §6.1.2: CLASS is the UDP payload size
    return m;
}

std::vector<Target> targets(std::vector<SrvRecord> direct, std::vector<SrvRecord> starttls,
                            std::uint32_t seed = 1) {
    std::mt19937 random(seed);
    return dns::xmpp_targets("example.org", std::move(direct), std::move(starttls), random);
}

constexpr std::string_view kDirectSource = "SRV _xmpps-client._tcp.example.org";
constexpr std::string_view kStarttlsSource = "SRV _xmpp-client._tcp.example.org";

}  // namespace

// ---- parse_srv_answer ---------------------------------------------------------------

TEST_CASE("dns: an uncompressed SRV answer gives every field") {
    Message m(kNoError, 1, 2);
    m.question();
    m.srv(wire(kName), 86400, 10, 60, 5222, wire("xmpp1.example.org"));
    m.srv(wire(kName), 0x7fffffff, 20, 0, 443, wire("xmpp2.example.net"));
    auto records = parse_ok(m.bytes);
    REQUIRE(records.size() == 2);
    CHECK(records[0] == rec(10, 60, 5222, "xmpp1.example.org", 86400));
    CHECK(records[1] == rec(20, 0, 443, "xmpp2.example.net", 0x7fffffff));
    CHECK(records[0].priority == 10);
    CHECK(records[0].weight == 60);
    CHECK(records[0].port == 5222);
    CHECK(records[0].ttl == 86400);
    CHECK(records[1].ttl == 2147483647u);
}

TEST_CASE("dns: a compressed answer with mixed case and other record types") {
    auto m = compressed_answer();
    auto records = parse_ok(m.bytes);
    REQUIRE(records.size() == 2);
    CHECK(records[0] == rec(31, 30, 5222, "hermes2.example.org", 3600));
    CHECK(records[1] == rec(30, 30, 5222, "xmpp.example.org", 3600));
}

TEST_CASE("dns: the owner name is compared without case and with an optional trailing dot") {
    auto m = compressed_answer();
    CHECK(parse_ok(m.bytes, "_xmpp-client._tcp.example.org.").size() == 2);
    CHECK(parse_ok(m.bytes, "_XMPP-CLIENT._tcp.EXAMPLE.org").size() == 2);
    CHECK(parse_ok(m.bytes, "_xmpps-client._tcp.example.org").empty());
    CHECK(parse_ok(m.bytes, "_xmpp-client._tcp.example.org.org").empty());
    CHECK(parse_ok(m.bytes, "example.org").empty());
}

TEST_CASE("dns: records of another owner, class or type are skipped") {
    Message m(kNoError, 1, 6);
    m.question();
    m.srv(wire("_xmpps-client._tcp.example.org"), 60, 1, 1, 443, wire("other.example.org"));
    m.rr(wire(kName), kTypeSrv, 60, srv_rdata(2, 2, 5222, wire("chaos.example.org")), 3);  // CLASS CH
    m.rr(wire(kName), kTypeAaaa, 60, std::string(16, '\x20'));
    m.rr(wire(kName), kTypeCname, 60, wire("elsewhere.example.org"));
    m.rr(wire(kName), 99, 60, "anything at all");
    m.srv(wire(kName), 60, 3, 3, 5223, wire("kept.example.org"));
    auto records = parse_ok(m.bytes);
    REQUIRE(records.size() == 1);
    CHECK(records[0] == rec(3, 3, 5223, "kept.example.org", 60));
}

TEST_CASE("dns: a TTL with the top bit set counts as zero (RFC 2181 §8)") {
    Message m(kNoError, 1, 2);
    m.question();
    m.srv(wire(kName), 0x80000000u, 0, 0, 5222, wire("a.example.org"));
    m.srv(wire(kName), 0xffffffffu, 0, 0, 5222, wire("b.example.org"));
    auto records = parse_ok(m.bytes);
    REQUIRE(records.size() == 2);
    CHECK(records[0].ttl == 0);
    CHECK(records[1].ttl == 0);
}

TEST_CASE("dns: a root target comes back as '.'") {
    Message m(kNoError, 1, 1);
    m.question();
    m.srv(wire(kName), 300, 0, 0, 0, wire(""));
    auto records = parse_ok(m.bytes);
    REQUIRE(records.size() == 1);
    CHECK(records[0] == rec(0, 0, 0, ".", 300));
}

TEST_CASE("dns: odd label bytes are kept, only ASCII is lower-cased") {
    std::string odd = "A b\x00\xc3\x89\xff.Z"s;  // one label with a space, NUL, UTF-8, 0xff and a dot
    std::string target = static_cast<char>(odd.size()) + odd + labels("ORG") + '\0';
    Message m(kNoError, 1, 1);
    m.question();
    m.srv(wire(kName), 1, 0, 0, 5222, target);
    auto records = parse_ok(m.bytes);
    REQUIRE(records.size() == 1);
    CHECK(records[0].target == "a b\x00\xc3\x89\xff.z.org"s);
}

TEST_CASE("dns: labels of 63 bytes and names of 255 bytes are accepted") {
    std::string l63(63, 'a');
    std::string l61(61, 'b');
    std::string name = l63 + "." + l63 + "." + l63 + "." + l61;  // 3*64 + 62 + 1 = 255 on the wire
    REQUIRE(wire(name).size() == 255);
    Message m(kNoError, 1, 1);
    m.question();
    m.srv(wire(kName), 1, 0, 0, 5222, wire(name));
    auto records = parse_ok(m.bytes);
    REQUIRE(records.size() == 1);
    CHECK(records[0].target == name);
}

TEST_CASE("dns: NXDOMAIN and an empty answer give no records") {
    Message nx(kNxDomain, 1, 0);
    nx.question();
    CHECK(parse_ok(nx.bytes).empty());
    CHECK(parse_ok(Message(kNxDomain, 0, 0).bytes).empty());  // header only
    Message empty(kNoError, 1, 0);
    empty.question();
    CHECK(parse_ok(empty.bytes).empty());
}

TEST_CASE("dns: server errors name the RCODE") {
    Message fail(0x8182, 1, 0);
    fail.question();
    CHECK(parse_error(fail.bytes) == "server failure (RCODE 2)");
    CHECK(parse_error(Message(0x8185, 0, 0).bytes) == "refused (RCODE 5)");
    CHECK(parse_error(Message(0x8181, 0, 0).bytes) == "format error (RCODE 1)");
    CHECK(parse_error(Message(0x8184, 0, 0).bytes) == "not implemented (RCODE 4)");
    CHECK(contains(parse_error(Message(0x818f, 0, 0).bytes), "(RCODE 15)"));
}

TEST_CASE("dns: a truncated (TC) answer, a query and a too large message are errors") {
    Message tc(0x8380, 1, 1);
    tc.question();
    tc.srv(wire(kName), 1, 0, 0, 5222, wire("a.example.org"));
    CHECK(parse_error(tc.bytes) == "truncated answer (TC)");
    // RCODE wins over TC: a failure or NXDOMAIN does not get better over TCP.
    CHECK(parse_ok(Message(0x8383, 0, 0).bytes).empty());
    CHECK(parse_error(Message(0x8382, 0, 0).bytes) == "server failure (RCODE 2)");

    Message query(0x0100, 1, 0);
    query.question();
    CHECK(parse_error(query.bytes) == "not a response (QR=0)");

    Message big(kNoError, 0, 0);
    big.bytes.resize(dns::max_answer_bytes, '\0');
    CHECK(parse_ok(big.bytes).empty());  // trailing bytes after the answer section are not read
    big.bytes.push_back('\0');
    CHECK(contains(parse_error(big.bytes), "65536 bytes"));
}

TEST_CASE("dns: every truncation of an answer is an error naming the byte") {
    // Ends with the last answer RR, so no proper prefix is a whole message.
    Message m(kNoError, 1, 3);
    m.question();
    m.srv(ptr(kQuestionName), 3600, 5, 10, 5222, wire("a.example.org"));
    m.rr(ptr(kQuestionName), kTypeA, 60, "\x7f\x00\x00\x01"s);
    m.srv(ptr(kQuestionName), 3600, 5, 20, 5223, labels("b") + ptr(kExampleOrg));
    REQUIRE(parse_ok(m.bytes).size() == 2);
    for (std::size_t n = 0; n < m.size(); ++n) {
        INFO("prefix of " << n << " bytes");
        auto message = parse_error(std::string_view(m.bytes).substr(0, n));
        CHECK(message.rfind("truncated at byte " + std::to_string(n) + " (", 0) == 0);
    }
}

TEST_CASE("dns: a prefix of a message with extra sections errors or parses the same") {
    auto m = compressed_answer();
    auto whole = parse_ok(m.bytes);
    std::size_t parsed = 0;
    for (std::size_t n = 0; n <= m.size(); ++n) {
        INFO("prefix of " << n << " bytes");
        auto r = dns::parse_srv_answer(std::string_view(m.bytes).substr(0, n), kName);
        if (r) {
            CHECK(r.value() == whole);
            ++parsed;
        } else {
            CHECK(r.error().message.rfind("truncated at byte " + std::to_string(n), 0) == 0);
        }
    }
    CHECK(parsed == 12);  // the OPT record's 11 bytes missing, 10 .. 0 of them, then all of it
}

TEST_CASE("dns: compression pointers that do not point backwards are rejected") {
    SECTION("a pointer to itself") {
        Message m(kNoError, 1, 0);
        m.question(ptr(kQuestionName));
        CHECK(contains(parse_error(m.bytes), "compression pointer at byte 12 to byte 12"));
    }
    SECTION("a pointer forwards") {
        Message m(kNoError, 1, 0);
        m.question(ptr(14));
        CHECK(contains(parse_error(m.bytes), "compression pointer at byte 12 to byte 14"));
    }
    SECTION("two pointers pointing at each other") {
        Message m(kNoError, 1, 1);
        m.question();
        const std::size_t a = m.size();
        m.srv(ptr(a + 2), 1, 0, 0, 5222, wire("x.example.org"));
        m.bytes.replace(a, 2, ptr(a + 2) + ptr(a));  // owner at a -> a+2, a+2 -> a
        CHECK(contains(parse_error(m.bytes), "compression pointer at byte " + std::to_string(a)));
    }
    SECTION("a pointer back to the start of its own labels") {
        Message m(kNoError, 1, 1);
        m.question();
        const std::size_t a = m.size();
        m.srv(labels("loop") + ptr(a), 1, 0, 0, 5222, wire("x.example.org"));
        CHECK(contains(parse_error(m.bytes), "to byte " + std::to_string(a)));
    }
    SECTION("a loop through a jump: backwards from the pointer, but into the labels jumped to") {
        Message m(kNoError, 1, 1);
        m.question(labels("a") + ptr(kQuestionName));
        CHECK(contains(parse_error(m.bytes), "compression pointer at byte 14 to byte 12"));
    }
    SECTION("a pointer into the header") {
        Message m(kNoError, 1, 0);
        m.question(ptr(4));
        CHECK(contains(parse_error(m.bytes), "to byte 4"));
    }
    SECTION("a pointer past the end of the message") {
        Message m(kNoError, 1, 1);
        m.question();
        m.srv(ptr(kQuestionName), 1, 0, 0, 5222, ptr(0x3fff));
        CHECK(contains(parse_error(m.bytes), "to byte 16383"));
    }
}

TEST_CASE("dns: at most 32 compression pointers per name") {
    // The owner of the SRV record points at the last of a chain of pointers, each
    // pointing at the one before it, the first at the question name; the chain is the
    // RDATA of a record of an unknown type.
    const auto chain = [](int jumps) {
        Message m(kNoError, 1, 2);
        m.question();
        const std::size_t rdata = m.size() + 2 + 10;
        std::string pointers = ptr(kQuestionName);
        for (int i = 2; i < jumps; ++i) pointers += ptr(rdata + pointers.size() - 2);
        m.rr(ptr(kQuestionName), 99, 0, pointers);
        m.srv(ptr(rdata + pointers.size() - 2), 7, 1, 2, 5222, wire("chained.example.org"));
        return m;
    };
    auto ok = parse_ok(chain(32).bytes);
    REQUIRE(ok.size() == 1);
    CHECK(ok[0] == rec(1, 2, 5222, "chained.example.org", 7));
    CHECK(contains(parse_error(chain(33).bytes), "more than 32 compression pointers"));
}

TEST_CASE("dns: bad label lengths and overlong names are rejected") {
    SECTION("a label of 64 bytes") {
        Message m(kNoError, 1, 1);
        m.question();
        m.srv(wire(kName), 1, 0, 0, 5222, "\x40"s + std::string(64, 'a') + '\0');
        CHECK(contains(parse_error(m.bytes), "label length byte 0x40"));
    }
    SECTION("the 0x80 label type") {
        Message m(kNoError, 1, 0);
        m.question("\x80\x01"s);
        CHECK(contains(parse_error(m.bytes), "label length byte 0x80 at byte 12"));
    }
    SECTION("a name of 257 bytes") {
        std::string l63(63, 'a');
        Message m(kNoError, 1, 1);
        m.question();
        m.srv(wire(kName), 1, 0, 0, 5222, wire(l63 + "." + l63 + "." + l63 + "." + l63));
        CHECK(contains(parse_error(m.bytes), "longer than 255 bytes"));
    }
    SECTION("a name of 257 bytes put together from pointers") {
        std::string l63(63, 'a');
        Message m(kNoError, 2, 1);
        m.question(wire(l63 + "." + l63 + "." + l63));  // 193 bytes
        const std::size_t second = m.size();
        m.question(labels(std::string(61, 'c')) + ptr(kQuestionName));  // 62 + 193 = 255: fine
        m.srv(labels("d") + ptr(second), 1, 0, 0, 5222, wire("x.org"));  // 2 + 255
        CHECK(contains(parse_error(m.bytes), "answer 1 name at byte"));
        CHECK(contains(parse_error(m.bytes), "longer than 255 bytes"));
    }
}

TEST_CASE("dns: RDLENGTH must match the SRV RDATA") {
    SECTION("RDLENGTH longer than the SRV fields") {
        Message m(kNoError, 1, 1);
        m.question();
        m.rr(wire(kName), kTypeSrv, 1, srv_rdata(0, 0, 5222, wire("a.example.org")) + "xx");
        CHECK(contains(parse_error(m.bytes), "RDLENGTH mismatch"));
    }
    SECTION("RDLENGTH shorter than the target") {
        Message m(kNoError, 1, 2);
        m.question();
        const auto rdata = srv_rdata(0, 0, 5222, wire("a.example.org"));
        m.rr(wire(kName), kTypeSrv, 1, rdata, kClassIn, rdata.size() - 3);
        m.srv(wire(kName), 1, 0, 0, 5222, wire("b.example.org"));
        CHECK(contains(parse_error(m.bytes), "RDLENGTH mismatch"));
    }
    SECTION("RDLENGTH too short for priority, weight and port") {
        Message m(kNoError, 1, 2);
        m.question();
        m.rr(wire(kName), kTypeSrv, 1, u16(1) + u16(2));
        m.rr(wire(kName), kTypeA, 1, "\x7f\x00\x00\x01"s);
        CHECK(contains(parse_error(m.bytes), "answer 1 SRV priority, weight and port"));
        CHECK(contains(parse_error(m.bytes), "RDLENGTH mismatch"));
    }
    SECTION("RDLENGTH past the end of the message, also for other types") {
        Message m(kNoError, 1, 1);
        m.question();
        m.rr(wire(kName), kTypeA, 1, "\x7f\x00\x00\x01"s);
        m.bytes.pop_back();
        CHECK(contains(parse_error(m.bytes), "answer 1 RDATA"));
    }
}

TEST_CASE("dns: at most max_records SRV records are kept, the rest still checked") {
    Message m(kNoError, 1, 70);
    m.question();
    for (unsigned i = 0; i < 70; ++i) m.srv(ptr(kQuestionName), i, i, 0, 5222, wire("x.example.org"));
    auto records = parse_ok(m.bytes);
    REQUIRE(records.size() == dns::max_records);
    for (std::size_t i = 0; i < records.size(); ++i) CHECK(records[i].priority == i);

    Message bad(kNoError, 1, 70);
    bad.question();
    for (unsigned i = 0; i < 69; ++i) bad.srv(ptr(kQuestionName), i, i, 0, 5222, wire("x.example.org"));
    bad.srv(ptr(kQuestionName), 1, 1, 0, 5222, ptr(bad.size() + 2 + 10 + 6));  // a target pointing at itself
    CHECK(contains(parse_error(bad.bytes), "answer 70 SRV target"));
}

TEST_CASE("dns: the name asked for must be a DNS name") {
    Message m(kNoError, 1, 0);
    m.question();
    CHECK(parse_error(m.bytes, "a..b") == "'a..b' is not a DNS name (RFC 1035 §2.3.4)");
    CHECK(contains(parse_error(m.bytes, std::string(64, 'a') + ".org"), "is not a DNS name"));
    CHECK(parse_ok(m.bytes, ".").empty());  // the root is a name
}

// ---- order_srv ---------------------------------------------------------------------

TEST_CASE("order_srv: priorities ascend and every record is kept once") {
    std::vector<SrvRecord> in = {rec(20, 5, 1, "c"), rec(10, 0, 2, "a"), rec(30, 1, 3, "d"), rec(10, 7, 4, "b"),
                                 rec(20, 0, 5, "e")};
    for (std::uint32_t seed = 0; seed < 50; ++seed) {
        std::mt19937 random(seed);
        auto out = dns::order_srv(in, random);
        REQUIRE(out.size() == in.size());
        CHECK(std::is_sorted(out.begin(), out.end(),
                             [](const SrvRecord& a, const SrvRecord& b) { return a.priority < b.priority; }));
        for (const auto& r : in) CHECK(std::count(out.begin(), out.end(), r) == 1);
    }
    std::mt19937 random(1);
    CHECK(dns::order_srv({}, random).empty());
}

TEST_CASE("order_srv: a fixed seed gives a fixed order, other seeds other orders") {
    std::vector<SrvRecord> in;
    for (unsigned i = 0; i < 8; ++i) in.push_back(rec(0, 10 + i, 5222, "h" + std::to_string(i)));
    std::mt19937 a(42);
    std::mt19937 b(42);
    auto first = dns::order_srv(in, a);
    CHECK(first == dns::order_srv(in, b));
    bool differs = false;
    for (std::uint32_t seed = 0; seed < 20 && !differs; ++seed) {
        std::mt19937 c(seed);
        differs = dns::order_srv(in, c) != first;
    }
    CHECK(differs);
}

TEST_CASE("order_srv: the first pick follows the weights (RFC 2782)") {
    const std::vector<SrvRecord> in = {rec(1, 60, 1, "sixty"), rec(1, 30, 2, "thirty"), rec(1, 10, 3, "ten")};
    constexpr int runs = 10000;
    std::array<int, 3> first{};
    for (int seed = 0; seed < runs; ++seed) {
        std::mt19937 random(static_cast<std::uint32_t>(seed));
        auto out = dns::order_srv(in, random);
        REQUIRE(out.size() == 3);
        ++first[out[0].port - 1];
    }
    CHECK(first[0] / double(runs) == Approx(0.6).margin(0.03));
    CHECK(first[1] / double(runs) == Approx(0.3).margin(0.03));
    CHECK(first[2] / double(runs) == Approx(0.1).margin(0.03));
}

TEST_CASE("order_srv: a weight 0 record comes first rarely but sometimes") {
    const std::vector<SrvRecord> in = {rec(1, 50, 1, "a"), rec(1, 0, 2, "zero"), rec(1, 50, 3, "b")};
    constexpr int runs = 10000;
    int zero_first = 0;
    int zero_last = 0;
    for (int seed = 0; seed < runs; ++seed) {
        std::mt19937 random(static_cast<std::uint32_t>(seed));
        auto out = dns::order_srv(in, random);
        if (out.front().target == "zero") ++zero_first;
        if (out.back().target == "zero") ++zero_last;
    }
    INFO("zero first " << zero_first << ", last " << zero_last << " of " << runs);
    CHECK(zero_first > 0);
    CHECK(zero_first < runs * 3 / 100);  // 1/101 expected
    CHECK(zero_last > runs * 9 / 10);
}

TEST_CASE("order_srv: all weights 0 keep their order; at most max_records") {
    std::mt19937 random(7);
    std::vector<SrvRecord> zeros = {rec(5, 0, 1, "a"), rec(5, 0, 2, "b"), rec(5, 0, 3, "c")};
    CHECK(dns::order_srv(zeros, random) == zeros);

    std::vector<SrvRecord> many;
    for (unsigned i = 0; i < 100; ++i) many.push_back(rec(100 - i, i % 3, i, "h"));
    auto out = dns::order_srv(many, random);
    REQUIRE(out.size() == dns::max_records);
    CHECK(out.front().priority == 1);
    CHECK(out.back().priority == dns::max_records);
}

// ---- xmpp_targets ------------------------------------------------------------------

TEST_CASE("xmpp_targets: direct TLS first at equal priority, priority before kind") {
    auto t = targets({rec(10, 0, 443, "xmpps.example.org")}, {rec(10, 0, 5222, "xmpp.example.org")});
    REQUIRE(t.size() == 2);
    CHECK(t[0] == Target{"xmpps.example.org", 443, true, std::string(kDirectSource)});
    CHECK(t[1] == Target{"xmpp.example.org", 5222, false, std::string(kStarttlsSource)});

    t = targets({rec(10, 0, 443, "xmpps.example.org")}, {rec(5, 0, 5222, "xmpp.example.org")});
    REQUIRE(t.size() == 2);
    CHECK(t[0].host == "xmpp.example.org");
    CHECK_FALSE(t[0].direct_tls);
    CHECK(t[1].direct_tls);

    t = targets({rec(3, 0, 443, "d3"), rec(1, 0, 443, "d1"), rec(2, 0, 443, "d2")},
                {rec(2, 0, 5222, "s2"), rec(0, 0, 5222, "s0"), rec(3, 0, 5222, "s3")});
    std::vector<std::string> hosts;
    for (const auto& x : t) hosts.push_back(x.host);
    CHECK(hosts == std::vector<std::string>{"s0", "d1", "d2", "s2", "d3", "s3"});
}

TEST_CASE("xmpp_targets: weights within each kind, the same seed the same list") {
    std::vector<SrvRecord> direct = {rec(0, 10, 443, "a"), rec(0, 20, 443, "b"), rec(0, 30, 443, "c")};
    std::vector<SrvRecord> starttls = {rec(0, 10, 5222, "x"), rec(0, 20, 5222, "y")};
    auto one = targets(direct, starttls, 99);
    CHECK(one == targets(direct, starttls, 99));
    REQUIRE(one.size() == 5);
    for (int i = 0; i < 3; ++i) CHECK(one[i].direct_tls);
    for (int i = 3; i < 5; ++i) CHECK_FALSE(one[i].direct_tls);
}

TEST_CASE("xmpp_targets: '.' means the service is not offered") {
    const auto dot = rec(0, 0, 0, ".");
    SECTION("both '.': no XMPP service") { CHECK(targets({dot}, {dot}).empty()); }
    SECTION("STARTTLS '.' and no direct TLS records: no XMPP service (RFC 6120 §3.2.1)") {
        CHECK(targets({}, {dot}).empty());
    }
    SECTION("direct TLS '.' and no STARTTLS records: no A/AAAA fallback (XEP-0368 §5)") {
        CHECK(targets({dot}, {}).empty());
    }
    SECTION("direct TLS '.' and STARTTLS records") {
        auto t = targets({dot}, {rec(0, 0, 5222, "xmpp.example.org")});
        CHECK(t == std::vector<Target>{{"xmpp.example.org", 5222, false, std::string(kStarttlsSource)}});
    }
    SECTION("STARTTLS '.' and direct TLS records: direct TLS only") {
        auto t = targets({rec(0, 0, 5223, "xmpps.example.org")}, {dot});
        CHECK(t == std::vector<Target>{{"xmpps.example.org", 5223, true, std::string(kDirectSource)}});
    }
    SECTION("a '.' beside real records is dropped") {
        auto t = targets({}, {rec(0, 100, 5222, "a.example.org"), rec(0, 65535, 0, ".")});
        CHECK(t == std::vector<Target>{{"a.example.org", 5222, false, std::string(kStarttlsSource)}});
    }
}

TEST_CASE("xmpp_targets: no records at all falls back to the domain on 5222") {
    CHECK(targets({}, {}) == std::vector<Target>{{"example.org", 5222, false, "fallback"}});
}

TEST_CASE("xmpp_targets: duplicates are dropped, the first kept") {
    auto t = targets({rec(5, 0, 5223, "same.example.org"), rec(9, 0, 5223, "same.example.org")},
                     {rec(1, 0, 5222, "a.example.org"), rec(2, 0, 5222, "a.example.org"),
                      rec(3, 0, 5223, "same.example.org"), rec(4, 0, 5299, "a.example.org")});
    std::vector<Target> want = {{"a.example.org", 5222, false, std::string(kStarttlsSource)},
                                {"same.example.org", 5223, false, std::string(kStarttlsSource)},
                                {"a.example.org", 5299, false, std::string(kStarttlsSource)},
                                {"same.example.org", 5223, true, std::string(kDirectSource)}};
    CHECK(t == want);
}

// ---- interleave_families -----------------------------------------------------------

TEST_CASE("interleave_families: IPv6 first, then alternate, the rest at the end (RFC 8305 §4)") {
    using V = std::vector<std::size_t>;
    CHECK(dns::interleave_families({true, true, false, false, false}) == V{0, 2, 1, 3, 4});
    CHECK(dns::interleave_families({false, false, false, true, true}) == V{3, 0, 4, 1, 2});
    CHECK(dns::interleave_families({false, true, false, true, true, true}) == V{1, 0, 3, 2, 4, 5});
    CHECK(dns::interleave_families({false, false, false}) == V{0, 1, 2});
    CHECK(dns::interleave_families({true, true}) == V{0, 1});
    CHECK(dns::interleave_families({}).empty());
}
