// The checkpoint worker (daemon/store_checkpoint.hpp): the WAL is copied into the database
// beside the loop, what was committed stays readable and whole, and closing the store while
// the worker copies is safe.
#include "store_fixture.hpp"

#include "daemon/store_checkpoint.hpp"

using namespace store_test;

namespace {

// Appends `n` messages of `size` bytes: each commit writes a few pages to the WAL.
void append_messages(Store& store, int n, std::size_t size) {
    for (int i = 0; i < n; ++i) {
        auto e = message(std::string(size, static_cast<char>('a' + i % 26)), "m" + std::to_string(i));
        REQUIRE(store.append(e));
    }
}

}  // namespace

TEST_CASE("store: the worker checkpoints the WAL once it passes its size, and every event stays", "[store][checkpoint]") {
    TempDir dir;
    auto store = open_store(dir.store());
    REQUIRE(store->checkpointer() != nullptr);
    CHECK(store->checkpointer()->done() == 0);
    // 4 KiB bodies: a page each at least, so 1,500 commits pass kWanted (4,000 frames).
    append_messages(*store, 1500, 4096);
    REQUIRE(store->checkpointer()->wait_done(1, std::chrono::seconds(60)));
    // Woken once per 4,000 frames the WAL grew (these commits make 6-10 each), not at every
    // commit past the first 4,000: that checkpointed, and fsynced, after nearly each one.
    CHECK(store->checkpointer()->done() <= 4);
    CHECK(raw_query(dir.store(), "PRAGMA integrity_check") == "ok");
    CHECK(raw_query(dir.store(), "SELECT count(*) FROM events") == "1500");
    auto events = store->events_after(0, 2000);
    REQUIRE(events);
    REQUIRE(events.value().size() == 1500);
    CHECK(std::get<model::Message>(events.value()[1499].body).body == std::string(4096, 'a' + 1499 % 26));
}

TEST_CASE("store: closed while the worker may be copying, and opened again, nothing is lost", "[store][checkpoint]") {
    TempDir dir;
    {
        auto store = open_store(dir.store());
        append_messages(*store, 1500, 4096);  // wakes the worker; the store closes at once
    }
    auto store = open_store(dir.store());
    CHECK(store->last_seq() == 1500);
    CHECK(raw_query(dir.store(), "PRAGMA integrity_check") == "ok");
}
