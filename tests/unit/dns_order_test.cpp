// Tests for protocol/dns: RFC 2782 weighted ordering, the RFC 6120 / XEP-0368 target list and
// the RFC 8305 family interleaving.
#include "dns_fixture.hpp"

using namespace dns_test;

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
