// Store::prune: what clients have not confirmed is kept, history_days, de-duplication ids,
// seq after pruning, finished outbox rows.
#include "daemon/store_detail.hpp"
#include "store_fixture.hpp"

using namespace store_test;

namespace {

void append_messages(Store& store, int n) {
    for (int i = 0; i < n; ++i) {
        auto e = message("m");
        REQUIRE(store.append(e));
    }
}

// As if event `seq` had been stored while the clock said `t`.
void set_created(const std::string& path, model::Seq seq, std::chrono::system_clock::time_point t) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    raw_exec(path, "UPDATE events SET created_ms = " + std::to_string(ms) + " WHERE seq = " + std::to_string(seq));
}

}  // namespace

TEST_CASE("store: prune keeps what a known client has not confirmed") {
    TempDir dir;
    auto store = open_store(dir.store());
    append_messages(*store, 5);
    // Both clients confirmed lately (as seen from the day of the pruning).
    REQUIRE(store->set_cursor("emacs", 3, far_future));
    REQUIRE(store->set_cursor("bot", 4, far_future));
    auto n = store->prune(far_future, 30);
    REQUIRE(n);
    CHECK(n.value() == 3);  // the slowest client confirmed 3
    CHECK(seqs(*store) == std::vector<model::Seq>{4, 5});

    // A client that has confirmed nothing holds everything.
    REQUIRE(store->set_cursor("new", 0, far_future));
    CHECK(store->prune(far_future, 30).value() == 0);
    CHECK(seqs(*store) == std::vector<model::Seq>{4, 5});
}

TEST_CASE("store: a client that confirmed nothing for history_days no longer holds back pruning") {
    TempDir dir;
    auto store = open_store(dir.store());
    append_messages(*store, 4);
    auto now = std::chrono::system_clock::now();
    REQUIRE(store->set_cursor("used-once", 1, now));        // then never again
    REQUIRE(store->set_cursor("daily", 3, far_future - 24h));  // the day before the pruning
    CHECK(store->prune(far_future, 30).value() == 3);  // "daily" holds 4; "used-once" holds nothing
    CHECK(seqs(*store) == std::vector<model::Seq>{4});
    // The forgotten client is still known: it gets what is left when it comes back.
    CHECK(store->cursor("used-once").value() == 1);
}

TEST_CASE("store: de-duplication ids are pruned with the events they stand for") {
    TempDir dir;
    auto store = open_store(dir.store());
    auto a = message("first", "s1");
    REQUIRE(store->append_once(a, "sid:s1", {{"oid:bob@example.org:o1", ""}}).value());
    auto b = message("second", "s2");
    REQUIRE(store->append_once(b, "sid:s2").value());
    // A client still holds the second: its id stays.
    REQUIRE(store->set_cursor("emacs", 1, far_future));
    CHECK(store->prune(far_future, 30).value() == 1);
    CHECK(store->inbound("home", "sid:s2").value());
    // Once every old event is gone, so are their ids: none points at a pruned event.
    REQUIRE(store->set_cursor("emacs", 2, far_future));
    CHECK(store->prune(far_future, 30).value() == 1);
    CHECK_FALSE(store->inbound("home", "sid:s1").value());
    CHECK_FALSE(store->inbound("home", "oid:bob@example.org:o1").value());
    CHECK_FALSE(store->inbound("home", "sid:s2").value());
    // Recent ids stay however the events fare.
    auto c = message("third", "s3");
    REQUIRE(store->append_once(c, "sid:s3").value());
    CHECK(store->prune(std::chrono::system_clock::now(), 30).value() == 0);
    CHECK(store->inbound("home", "sid:s3").value());
}

TEST_CASE("store: prune takes the log's front in seq order: an old event after a younger one waits") {
    TempDir dir;
    auto store = open_store(dir.store());
    append_messages(*store, 4);
    // Event 2 was stored while the clock was 20 days ahead (and then set back).
    set_created(dir.store(), 2, std::chrono::system_clock::now() + 24h * 20);
    const auto day_31 = std::chrono::system_clock::now() + 24h * 31;
    CHECK(store->prune(day_31, 30).value() == 1);
    CHECK(seqs(*store) == std::vector<model::Seq>{2, 3, 4});
    // Once event 2 is old too, it goes with the two after it.
    CHECK(store->prune(std::chrono::system_clock::now() + 24h * 51, 30).value() == 3);
    CHECK(seqs(*store).empty());
    // Prune reads the log from its front, by seq: no index by age to keep at every insert.
    CHECK_THAT(query_plan(dir.store(), stanzad::store_detail::kPruneEvents),
               Catch::Contains("SEARCH events USING INTEGER PRIMARY KEY (rowid<?)") &&
                   Catch::Contains("SCAN events") && !Catch::Contains("TEMP B-TREE"));
}

TEST_CASE("store: an event stamped far ahead by a wrong clock does not hold back the events after it") {
    TempDir dir;
    auto store = open_store(dir.store());
    append_messages(*store, 3);
    // Event 1 was stored while the clock said ten years from now.
    set_created(dir.store(), 1, std::chrono::system_clock::now() + 24h * 3650);
    CHECK(store->prune(std::chrono::system_clock::now() + 24h * 31, 30).value() == 3);
    CHECK(seqs(*store).empty());
    // A day ahead is a clock's drift, not a wrong clock: that event is young, and holds.
    append_messages(*store, 2);
    set_created(dir.store(), 4, std::chrono::system_clock::now() + 1h);
    CHECK(store->prune(std::chrono::system_clock::now(), 0).value() == 0);
    CHECK(seqs(*store) == std::vector<model::Seq>{4, 5});
}

TEST_CASE("store: prune removes old events when no client is known, and keeps recent ones") {
    TempDir dir;
    auto store = open_store(dir.store());
    append_messages(*store, 3);
    CHECK(store->prune(std::chrono::system_clock::now(), 30).value() == 0);
    CHECK(store->prune(std::chrono::system_clock::now() + 24h * 29, 30).value() == 0);
    CHECK(seqs(*store).size() == 3);
    CHECK(store->prune(std::chrono::system_clock::now() + 24h * 31, 30).value() == 3);
    CHECK(seqs(*store).empty());
    CHECK_FALSE(store->prune(far_future, -1));
}

TEST_CASE("store: seq continues after pruning everything, also across a restart") {
    TempDir dir;
    auto store = open_store(dir.store());
    append_messages(*store, 3);
    REQUIRE(store->prune(far_future, 0).value() == 3);
    CHECK(store->last_seq() == 3);
    auto e4 = message("m");
    REQUIRE(store->append(e4));
    CHECK(e4.seq == 4);

    REQUIRE(store->prune(far_future, 0).value() == 1);
    store.reset();
    store = open_store(dir.store());
    CHECK(store->last_seq() == 4);
    auto e5 = message("m");
    REQUIRE(store->append(e5));
    CHECK(e5.seq == 5);
    CHECK(seqs(*store) == std::vector<model::Seq>{5});
}

TEST_CASE("store: prune drops finished outbox rows, never unfinished ones") {
    TempDir dir;
    auto store = open_store(dir.store());
    for (const char* id : {"accepted", "sent", "acked", "delivered", "failed"}) {
        std::vector<model::Event> events = {state_event(id, "accepted")};
        REQUIRE(store->enqueue(entry(id), events).value());
        if (std::string(id) != "accepted") {
            auto ev = state_event(id, id);
            REQUIRE(store->set_state("home", id, id, "", ev));
        }
    }
    REQUIRE(store->prune(std::chrono::system_clock::now(), 30));
    CHECK(store->find("home", "acked"));  // recent: kept
    REQUIRE(store->prune(far_future, 30));
    CHECK(store->find("home", "accepted"));
    CHECK(store->find("home", "sent"));
    CHECK_FALSE(store->find("home", "acked"));
    CHECK_FALSE(store->find("home", "delivered"));
    CHECK_FALSE(store->find("home", "failed"));
}
