#pragma once
// When the daemon gives freed memory back (Daemon::trim_when_quiet, every 4 s): glibc keeps
// what a burst freed at the top of its heap (up to M_TRIM_THRESHOLD, 2 MiB, daemon/main.cpp)
// and in its free lists, and SQLite keeps the pages the burst touched
// (docs/performance.md "Memory"). Pure: fed the store's commit count at each tick.
#include <cstdint>

namespace stanzad {

class TrimClock {
public:
    static constexpr int kBusyTicks = 15;  // a minute of 4 s ticks that all saw commits

    // True when this tick should trim: the first tick without a commit after some (a burst
    // is over), or, for traffic that never pauses for a tick (a busy room), the kBusyTicks-th
    // tick in a row with commits.
    bool tick(std::int64_t commits) {
        const bool committed = commits != commits_;
        commits_ = commits;
        if (committed) due_ = true;
        if (!due_) return false;
        if (committed && ++busy_ < kBusyTicks) return false;
        due_ = false;
        busy_ = 0;
        return true;
    }

    // Commits happened since the last trim: the ticks are still needed. When not, the daemon
    // stops them until something reaches an account again (Hub::on_activity).
    bool due() const { return due_; }

private:
    std::int64_t commits_ = 0;  // the commit count at the last tick
    bool due_ = false;          // commits happened since the last trim
    int busy_ = 0;              // ticks in a row with commits since the last trim
};

}  // namespace stanzad
