// When the daemon gives freed memory back (daemon/trim_clock.hpp): after a burst, at the first
// quiet tick; under traffic that never pauses, once a minute; never when nothing happened.
#include <catch2/catch.hpp>

#include "daemon/trim_clock.hpp"

using stanzad::TrimClock;

TEST_CASE("trim clock: nothing committed, nothing to give back") {
    TrimClock clock;
    for (int i = 0; i < 100; ++i) CHECK_FALSE(clock.tick(0));
}

TEST_CASE("trim clock: a burst is trimmed at the first tick without a commit, once") {
    TrimClock clock;
    CHECK_FALSE(clock.tick(10));   // the burst
    CHECK_FALSE(clock.tick(250));  // still going
    CHECK(clock.tick(250));        // quiet: give it back
    CHECK_FALSE(clock.tick(250));  // and not again while quiet
    CHECK_FALSE(clock.tick(251));  // the next burst
    CHECK(clock.tick(251));
}

TEST_CASE("trim clock: traffic that never pauses for a tick is trimmed every kBusyTicks ticks") {
    TrimClock clock;
    std::int64_t commits = 0;
    int trims = 0;
    for (int i = 1; i <= 3 * TrimClock::kBusyTicks; ++i) {
        bool trimmed = clock.tick(++commits);
        CHECK(trimmed == (i % TrimClock::kBusyTicks == 0));
        trims += trimmed;
    }
    CHECK(trims == 3);
    // A pause after a trim under traffic still trims what came since.
    CHECK_FALSE(clock.tick(++commits));
    CHECK(clock.tick(commits));
}

TEST_CASE("trim clock: due while commits wait for a trim; the daemon stops ticking when not") {
    TrimClock clock;
    CHECK_FALSE(clock.due());  // nothing yet: no ticks needed
    CHECK_FALSE(clock.tick(5));
    CHECK(clock.due());
    CHECK(clock.tick(5));  // quiet: trimmed
    CHECK_FALSE(clock.due());
    // Ticks start again with the next activity; the first sees what was committed since.
    CHECK_FALSE(clock.tick(9));
    CHECK(clock.due());
    CHECK(clock.tick(9));
}
