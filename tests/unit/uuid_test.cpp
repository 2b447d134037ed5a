// Message ids: time-ordered UUIDs (RFC 9562 §5.7) and random ones (§5.4).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>

#include "daemon/account_keep.hpp"

using stanzad::make_time_uuid;
using stanzad::make_uuid;

namespace {
// The layout both versions share: 8-4-4-4-12 lowercase hex digits, variant 10 (§4.1).
void check_layout(const std::string& id, char version) {
    REQUIRE(id.size() == 36);
    for (std::size_t i = 0; i < id.size(); ++i) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            CHECK(id[i] == '-');
        } else {
            CHECK(std::string("0123456789abcdef").find(id[i]) != std::string::npos);
        }
    }
    CHECK(id[14] == version);
    CHECK(std::string("89ab").find(id[19]) != std::string::npos);
}
}  // namespace

TEST_CASE("make_time_uuid: the milliseconds first, big-endian, then version 7 and random bits", "[uuid]") {
    const std::uint64_t ms = 0x0123456789abULL;
    std::string id = make_time_uuid(ms);
    check_layout(id, '7');
    CHECK(id.substr(0, 13) == "01234567-89ab");
    // RFC 9562 Appendix A.6's example: 2022-02-22 19:22:22 UTC is 0x017F22E279B0.
    CHECK(make_time_uuid(0x017F22E279B0ULL).substr(0, 13) == "017f22e2-79b0");
}

TEST_CASE("make_time_uuid: later ids sort after earlier ones, as strings", "[uuid]") {
    std::string previous = make_time_uuid(1);
    for (std::uint64_t ms : {2ULL, 255ULL, 256ULL, 65536ULL, 1'765'000'000'000ULL, 1'765'000'000'001ULL}) {
        std::string id = make_time_uuid(ms);
        CHECK(previous < id);
        previous = id;
    }
}

TEST_CASE("make_time_uuid: ids of the same millisecond still differ (74 random bits)", "[uuid]") {
    std::set<std::string> ids;
    for (int i = 0; i < 10'000; ++i) ids.insert(make_time_uuid(1'765'000'000'000ULL));
    CHECK(ids.size() == 10'000);
    // The rest is random, not a counter: 4 of its digits take thousands of values in 10,000 ids.
    std::set<std::string> tails;
    for (const auto& id : ids) tails.insert(id.substr(24, 4));
    CHECK(tails.size() > 5'000);
}

TEST_CASE("make_time_uuid() takes the system clock's milliseconds", "[uuid]") {
    using namespace std::chrono;
    auto now = [] {
        return static_cast<std::uint64_t>(duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
    };
    std::uint64_t before = now();
    std::string id = make_time_uuid();
    std::uint64_t after = now();
    check_layout(id, '7');
    std::uint64_t stamped = std::stoull(id.substr(0, 8) + id.substr(9, 4), nullptr, 16);
    CHECK(before <= stamped);
    CHECK(stamped <= after);
}

TEST_CASE("make_uuid: version 4, random", "[uuid]") {
    std::string a = make_uuid(), b = make_uuid();
    check_layout(a, '4');
    check_layout(b, '4');
    CHECK(a != b);
}
