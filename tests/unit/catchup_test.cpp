// The IM core's archive catch-up (protocol/im/catchup): one pager for our own archive and for
// rooms', and the gap rule (live messages do not move the position while a gap is open).
#include <catch2/catch.hpp>

#include "protocol/im/catchup.hpp"

using namespace xmpp::im;

TEST_CASE("catch-up: our archive, from the kept position, page after page until complete") {
    CatchUp c(CatchUp::Archive::Own);
    CHECK_FALSE(c.gap_open());
    auto page = c.begin("A10");
    CHECK(c.gap_open());
    CHECK(page.after == "A10");
    CHECK(page.max == CatchUp::own_page);
    CHECK_FALSE(page.since);
    c.counted(true);
    c.counted(false);
    auto fin = c.fin(false, "A20");
    CHECK(fin.keep == "A20");  // kept at once: a page that came is ours even if the next fails
    REQUIRE(fin.next);
    CHECK(fin.next->after == "A20");
    CHECK(c.gap_open());  // live messages still must not move the position
    c.counted(true);
    fin = c.fin(true, "A25");
    CHECK(fin.keep == "A25");
    CHECK_FALSE(fin.next);
    CHECK_FALSE(c.gap_open());
    CHECK(c.count() == 3);
    CHECK(c.fresh() == 2);
}

TEST_CASE("catch-up: our archive without a position starts from when we were first seen") {
    CatchUp c(CatchUp::Archive::Own);
    auto page = c.begin("");
    CHECK(page.since);
    CHECK_FALSE(page.newest);
    // An empty archive: complete, nothing to keep.
    auto fin = c.fin(true, "");
    CHECK(fin.keep.empty());
    CHECK_FALSE(fin.next);
    CHECK_FALSE(c.gap_open());
    // Incomplete but without a last id: nothing to page after; done.
    c.begin("");
    CHECK_FALSE(c.fin(false, "").next);
}

TEST_CASE("catch-up: our server's failures keep the gap open for the next login") {
    CatchUp c(CatchUp::Archive::Own);
    c.begin("A1");
    c.counted(true);
    c.failed("internal-server-error", true);
    CHECK(c.gap_open());
    CHECK_FALSE(c.running());
    c.failed("feature-not-implemented", true);
    CHECK(c.gap_open());
    // The retry continues from the position; the counts start again.
    auto page = c.begin("A1");
    CHECK(page.after == "A1");
    CHECK(c.count() == 0);
}

TEST_CASE("catch-up: a room we never read: only its newest page") {
    CatchUp c(CatchUp::Archive::Room);
    c.open_gap();  // joined
    CHECK(c.gap_open());
    auto page = c.begin("");
    CHECK(page.newest);
    CHECK(page.max == CatchUp::room_page);
    auto fin = c.fin(false, "R50");  // there is more, but older: not wanted
    CHECK(fin.keep == "R50");
    CHECK_FALSE(fin.next);
    CHECK_FALSE(c.gap_open());
}

TEST_CASE("catch-up: a room after a position pages to the end; a rejoin during it goes on") {
    CatchUp c(CatchUp::Archive::Room);
    c.begin("R50");
    c.counted(true);
    auto fin = c.fin(false, "R100");
    REQUIRE(fin.next);
    CHECK(fin.next->after == "R100");
    // The link dropped; the resumed session asks again from the kept position: one catch-up.
    c.begin("R100");
    c.counted(true);
    CHECK(c.count() == 2);
    CHECK_FALSE(c.fin(true, "R120").next);
    CHECK_FALSE(c.gap_open());
}

TEST_CASE("catch-up: a room without an archive closes its gap; other failures keep it") {
    for (auto [condition, answered, open] : {std::tuple{"feature-not-implemented", true, false},
                                              {"service-unavailable", true, false},
                                              {"", true, false},  // answered without a <fin/>
                                              {"internal-server-error", true, true},
                                              {"", false, true}}) {  // timeout, disconnected
        CatchUp c(CatchUp::Archive::Room);
        c.open_gap();
        c.begin("R1");
        c.failed(condition, answered);
        CHECK(c.gap_open() == open);
    }
}
