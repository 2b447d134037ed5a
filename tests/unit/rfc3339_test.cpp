// Tests for protocol/base/rfc3339: the one form we write (UTC, milliseconds) and the
// XEP-0082 DateTimes we read (any precision, any offset), and that each undoes the other.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>

#include "protocol/base/rfc3339.hpp"

using namespace std::chrono_literals;
using std::chrono::system_clock;
using xmpp::parse_datetime;
using xmpp::rfc3339;

TEST_CASE("rfc3339: UTC with milliseconds") {
    CHECK(rfc3339(system_clock::time_point(1795608000123ms)) == "2026-11-25T12:00:00.123Z");
    CHECK(rfc3339(system_clock::time_point(0ms)) == "1970-01-01T00:00:00.000Z");
    CHECK(rfc3339(system_clock::time_point(-1ms)) == "1969-12-31T23:59:59.999Z");
    CHECK(rfc3339(system_clock::time_point(951782400000ms)) == "2000-02-29T00:00:00.000Z");
    // Every field's digits (written by hand, not by snprintf).
    CHECK(rfc3339(system_clock::time_point(946684799999ms)) == "1999-12-31T23:59:59.999Z");
    CHECK(rfc3339(system_clock::time_point(-8515212710990ms)) == "1700-03-01T07:08:09.010Z");
    // Below a millisecond is cut off, not rounded.
    CHECK(rfc3339(system_clock::time_point(1795608000123999us)) == "2026-11-25T12:00:00.123Z");
}

TEST_CASE("rfc3339: XEP-0082 date-times, with fractions and offsets") {
    CHECK(parse_datetime("1970-01-01T00:00:00Z") == 0);
    CHECK(parse_datetime("2026-11-25T12:00:00Z") == 1795608000000);
    CHECK(parse_datetime("2026-11-25T12:00:00.5Z") == 1795608000500);
    CHECK(parse_datetime("2026-11-25T12:00:00.05Z") == 1795608000050);
    CHECK(parse_datetime("2026-11-25T12:00:00.123Z") == 1795608000123);
    CHECK(parse_datetime("2026-11-25T12:00:00.123456Z") == 1795608000123);  // cut off, not rounded
    CHECK(parse_datetime("2026-11-25T12:00:00.999999Z") == 1795608000999);
    CHECK(parse_datetime("2026-11-25T13:30:00+01:30") == 1795608000000);
    CHECK(parse_datetime("2026-11-25T10:00:00-02:00") == 1795608000000);
    CHECK(parse_datetime("2026-11-25T12:00:00+00:00") == 1795608000000);
    CHECK(parse_datetime("2026-11-25T12:00:00-00:00") == 1795608000000);  // RFC 3339 §4.3
    CHECK(parse_datetime("2026-11-26T01:59:00.250+13:59") == 1795608000250);
    CHECK(parse_datetime("2000-02-29T00:00:00Z") == 951782400000);
    CHECK(parse_datetime("1969-12-31T23:59:59.999Z") == -1);
    CHECK(parse_datetime("1970-01-01T00:00:00+01:00") == -3600000);
    CHECK(parse_datetime("2016-12-31T23:59:60Z") == parse_datetime("2017-01-01T00:00:00Z"));  // leap second
}

TEST_CASE("rfc3339: malformed date-times are refused") {
    for (auto bad : {"", "2026-11-25", "2026-11-25T12:00:00", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z",
                     "2026-11-00T00:00:00Z", "2026-11-32T00:00:00Z", "2026-11-25T24:00:00Z", "2026-11-25T12:60:00Z",
                     "2026-11-25T12:00:61Z", "2026-11-25T12:00:00.Z", "2026-11-25T12:00:00Zjunk",
                     "2026-11-25 12:00:00Z", "20261125T120000Z", "2026-11-25T12:00Z", "2026-11-25T12:00:00+0100",
                     "2026-11-25T12:00:00+01", "2026-11-25T12:00:00+1:00", "2026-11-25T12:00:00.5", "26-11-25T12:00:00Z",
                     "2026-1-25T12:00:00Z", "2026-11-25T12:00:00.5.5Z", "2026/11/25T12:00:00Z", "x026-11-25T12:00:00Z",
                     "2026-11-25T12:00:00 Z", " 2026-11-25T12:00:00Z"}) {
        INFO("input: " << bad);
        CHECK_FALSE(parse_datetime(bad));
    }
}

// Instants within what system_clock holds (nanoseconds in 64 bits: 1677 to 2262).
TEST_CASE("rfc3339: what we write reads back as the same instant, and canonical text is kept") {
    for (std::int64_t ms : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{1}, std::int64_t{999}, std::int64_t{1000},
                            std::int64_t{-86400000}, std::int64_t{951782400000}, std::int64_t{1795608000123},
                            std::int64_t{-2208988800000}, std::int64_t{4102444799999}}) {
        std::string text = rfc3339(system_clock::time_point(std::chrono::milliseconds(ms)));
        INFO(ms << " -> " << text);
        CHECK(parse_datetime(text) == ms);
    }
    for (std::string text : {"2026-11-25T12:00:00.000Z", "1999-12-31T23:59:59.999Z", "1900-01-01T00:00:00.000Z"}) {
        auto ms = parse_datetime(text);
        REQUIRE(ms);
        CHECK(rfc3339(system_clock::time_point(std::chrono::milliseconds(*ms))) == text);
    }
}

// rfc3339 finds the date by arithmetic: the C library's gmtime_r, with the same digits, is
// the reference, at instants spread over the whole range of system_clock (1678 to 2261).
TEST_CASE("rfc3339: the same date and time as gmtime_r, anywhere in system_clock's range") {
    auto reference = [](std::int64_t ms) {
        std::int64_t secs = ms / 1000 - (ms % 1000 < 0 ? 1 : 0);
        std::time_t tt = static_cast<std::time_t>(secs);
        std::tm tm{};
        gmtime_r(&tt, &tm);
        char buf[64];
        std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                      tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms - secs * 1000));
        return std::string(buf);
    };
    const std::int64_t lowest = -9'200'000'000'000, highest = 9'200'000'000'000;  // ms, inside +-2^63 ns
    std::mt19937_64 random(20261208);
    std::uniform_int_distribution<std::int64_t> any(lowest, highest);
    int checked = 0;
    auto check = [&](std::int64_t ms) {
        const std::string ours = rfc3339(system_clock::time_point(std::chrono::milliseconds(ms)));
        if (ours != reference(ms)) FAIL(ms << ": " << ours << " != " << reference(ms));
        ++checked;
    };
    for (int i = 0; i < 200000; ++i) check(any(random));
    // Each day's last and first millisecond, around the leap days and century years.
    for (std::int64_t day = -4000; day <= 4000; ++day) {
        check(day * 86'400'000 - 1);
        check(day * 86'400'000);
    }
    for (std::int64_t year_start : {-2208988800000LL, 951782400000LL, 4107542400000LL, -5364662400000LL}) {
        for (std::int64_t d = -400; d <= 400; ++d) check(year_start + d * 86'400'000 + 43'200'123);
    }
    CHECK(checked == 200000 + 2 * 8001 + 4 * 801);
}
