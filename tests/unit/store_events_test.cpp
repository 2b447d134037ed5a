// Store: the event log (append, events_after, last_seq), the file (private directory, WAL, one
// opener, the schema version), client cursors, and durability across SIGKILL.
#include "store_fixture.hpp"

using namespace store_test;

TEST_CASE("store: append numbers events 1, 2, 3 and reads them back unchanged") {
    TempDir dir;
    auto store = open_store(dir.store());
    CHECK(store->last_seq() == 0);

    std::vector<model::Event> in = {
        message("hello \"there\"\n\u263A", "m1"),
        model::Event{0, "work", "2026-01-02T03:04:05.006Z",
                     model::Roster{{{"bob@example.org", "Bob", "both", {"Friends", "Work"}, ""}}, true}},
        model::Event{0, "home", "", model::AccountState{"online", "", "alice@example.org/stanzad"}},
    };
    for (std::size_t i = 0; i < in.size(); ++i) {
        REQUIRE(store->append(in[i]));
        CHECK(in[i].seq == static_cast<model::Seq>(i + 1));
        CHECK(store->last_seq() == static_cast<model::Seq>(i + 1));
    }
    // Stamps: set to now when empty, kept when given.
    const std::regex stamp_re(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
    CHECK(std::regex_match(in[0].stamp, stamp_re));
    CHECK(in[1].stamp == "2026-01-02T03:04:05.006Z");
    CHECK(std::regex_match(in[2].stamp, stamp_re));

    auto out = store->events_after(0, 100);
    REQUIRE(out);
    REQUIRE(out.value().size() == 3);
    for (std::size_t i = 0; i < in.size(); ++i) {
        const auto& e = out.value()[i];
        CHECK(e.seq == in[i].seq);
        CHECK(e.account == in[i].account);
        CHECK(e.stamp == in[i].stamp);
        CHECK(e.body.index() == in[i].body.index());
        CHECK(model::codec::encode(e) == model::codec::encode(in[i]));  // every field, through the codec
    }
    const auto& m = std::get<model::Message>(out.value()[0].body);
    CHECK(m.body == "hello \"there\"\n\u263A");
    CHECK(m.msg_id == "m1");
    CHECK(m.from == "bob@example.org/phone");

    // The stored JSON is the event as the socket shows it, seq included.
    CHECK(raw_query(dir.store(), "SELECT json FROM events WHERE seq = 1") == model::codec::encode(in[0]));
    CHECK(raw_query(dir.store(), "SELECT kind FROM events WHERE seq = 2") == "roster");

    auto later = store->events_after(1, 100);
    REQUIRE(later);
    REQUIRE(later.value().size() == 2);
    CHECK(later.value()[0].seq == 2);
    CHECK(store->events_after(3, 100).value().empty());
}

TEST_CASE("store: events_after honours the limit") {
    TempDir dir;
    auto store = open_store(dir.store());
    for (int i = 0; i < 5; ++i) {
        auto e = message("m" + std::to_string(i));
        REQUIRE(store->append(e));
    }
    CHECK(seqs(*store, 0, 2) == std::vector<model::Seq>{1, 2});
    CHECK(seqs(*store, 1, 2) == std::vector<model::Seq>{2, 3});
    CHECK(seqs(*store, 3, 10) == std::vector<model::Seq>{4, 5});
    CHECK(seqs(*store, 0, 0).empty());
    CHECK(seqs(*store, 0, std::numeric_limits<std::size_t>::max()).size() == 5);
}

// A replay to a JSON client sends rows_after's JSON as it is (issue 15): it must be the line
// that encoding the event gives, the event first shown.
TEST_CASE("store: rows_after holds each event's row as encode wrote it, with its seq and format") {
    TempDir dir;
    auto store = open_store(dir.store());
    std::vector<model::Event> appended;
    for (int i = 0; i < 4; ++i) {
        auto e = message("m\"" + std::to_string(i) + "\u00e9", "id-" + std::to_string(i));
        REQUIRE(store->append(e));
        appended.push_back(e);
    }
    auto rows = store->rows_after(1, 10);
    REQUIRE(rows);
    REQUIRE(rows.value().size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        const auto& row = rows.value()[i];
        CHECK(row.seq == appended[i + 1].seq);
        CHECK(row.format == model::codec::format_version);
        CHECK(row.json == model::codec::encode(appended[i + 1]));
        auto decoded = stanzad::decode(row);
        REQUIRE(decoded);
        CHECK(model::codec::encode(decoded.value()) == row.json);
    }
    CHECK(store->rows_after(0, 2).value().size() == 2);
    CHECK(store->rows_after(4, 10).value().empty());
}

TEST_CASE("store: events_after reads one kind only when asked, the limit counting that kind") {
    TempDir dir;
    auto store = open_store(dir.store());
    std::vector<model::Event> in = {
        model::Event{0, "home", "", model::Presence{"bob@example.org/phone", true, "", ""}},
        message("first", "m1"),
        model::Event{0, "home", "", model::MessageState{"m1", model::Delivery::Acked, ""}},
        model::Event{0, "home", "", model::AccountState{"online", "", "alice@example.org/stanzad"}},
        message("second", "m2"),
        model::Event{0, "home", "", model::Presence{"bob@example.org/phone", false, "", ""}},
    };
    for (auto& e : in) REQUIRE(store->append(e));
    auto kinds = [&](model::Seq after, std::size_t limit, std::string_view kind) {
        std::vector<std::pair<model::Seq, std::string>> out;
        auto events = store->events_after(after, limit, kind);
        REQUIRE(events);
        for (const auto& e : events.value()) out.emplace_back(e.seq, model::event_name(e.body));
        return out;
    };
    using Seen = std::vector<std::pair<model::Seq, std::string>>;
    CHECK(kinds(0, 10, "message") == Seen{{2, "message"}, {5, "message"}});
    CHECK(kinds(0, 1, "message") == Seen{{2, "message"}});
    CHECK(kinds(2, 1, "message") == Seen{{5, "message"}});
    CHECK(kinds(5, 10, "message").empty());
    CHECK(kinds(0, 10, "presence") == Seen{{1, "presence"}, {6, "presence"}});
    CHECK(kinds(0, 10, "").size() == 6);
    auto messages = store->events_after(0, 10, "message");
    REQUIRE(messages);
    CHECK(std::get<model::Message>(messages.value()[1].body).body == "second");
}

TEST_CASE("store: events_after ends a page once its rows come to max_bytes, and holds at least one event") {
    TempDir dir;
    auto store = open_store(dir.store());
    // Five messages of 1,000 bytes: each stored row is a little more than its body.
    for (int i = 1; i <= 5; ++i) {
        auto e = message(std::string(1000, 'x'), "m" + std::to_string(i));
        REQUIRE(store->append(e));
    }
    auto page = [&](model::Seq after, std::size_t max_bytes) {
        std::vector<model::Seq> out;
        auto events = store->events_after(after, 100, "", max_bytes);
        REQUIRE(events);
        for (const auto& e : events.value()) out.push_back(e.seq);
        return out;
    };
    using Seqs = std::vector<model::Seq>;
    CHECK(page(0, 2600) == Seqs{1, 2, 3});  // the third row takes it past 2,600 bytes
    CHECK(page(0, 2000) == Seqs{1, 2});     // the second row takes it past 2,000
    CHECK(page(0, 1) == Seqs{1});           // one event even when it alone is too big
    CHECK(page(3, 1) == Seqs{4});
    CHECK(page(0, 1 << 20) == Seqs{1, 2, 3, 4, 5});
    CHECK(page(5, 1).empty());
}

TEST_CASE("store: release_memory empties the page cache, and the store reads and writes on") {
    TempDir dir;
    auto store = open_store(dir.store());
    for (int i = 0; i < 200; ++i) {
        auto e = message(std::string(500, 'a' + i % 26));
        REQUIRE(store->append(e));
    }
    REQUIRE(store->events_after(0, 1000).value().size() == 200);
    const auto filled = store->cache_bytes();
    CHECK(filled > 64 * 1024);  // 200 rows of 500 bytes went through the cache
    store->release_memory();
    CHECK(store->cache_bytes() < filled / 4);
    CHECK(store->events_after(0, 1000).value().size() == 200);  // read again from the file
    auto e = message("after");
    REQUIRE(store->append(e));
    CHECK(store->last_seq() == 201);
}

TEST_CASE("store: events and last_seq survive close and reopen") {
    TempDir dir;
    {
        auto store = open_store(dir.store());
        for (int i = 0; i < 3; ++i) {
            auto e = message("m" + std::to_string(i));
            REQUIRE(store->append(e));
        }
    }
    auto store = open_store(dir.store());
    CHECK(store->last_seq() == 3);
    CHECK(seqs(*store) == std::vector<model::Seq>{1, 2, 3});
    auto e = message("after reopen");
    REQUIRE(store->append(e));
    CHECK(e.seq == 4);
}

TEST_CASE("store: creates a private directory and file, WAL, the current schema version") {
    TempDir dir;
    auto store = open_store(dir.store());
    struct stat st {};
    REQUIRE(::stat((dir.path() + "/state").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    REQUIRE(::stat(dir.store().c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(raw_query(dir.store(), "PRAGMA user_version") == std::to_string(Store::schema_version));
    CHECK(raw_query(dir.store(), "PRAGMA journal_mode") == "wal");
    CHECK(store->migrated_from() == 0);  // a new store: nothing to compact
    CHECK(store->compact_error().empty());
}

TEST_CASE("store: a second open of the same store is refused while the first holds it") {
    TempDir dir;
    auto first = open_store(dir.store());
    auto second = Store::open(dir.store());
    REQUIRE_FALSE(second);
    CHECK(second.error().message ==
          "another stanzad is using " + dir.store() + " (pid " + std::to_string(::getpid()) + ")");
    CHECK(std::filesystem::file_size(dir.store() + ".lock") > 0);
    first.reset();
    CHECK(std::filesystem::file_size(dir.store() + ".lock") == 0);
    auto third = Store::open(dir.store());
    CHECK(third);
}

TEST_CASE("store: a schema newer than this program is refused") {
    TempDir dir;
    std::filesystem::create_directories(dir.path() + "/state");
    raw_exec(dir.store(), "CREATE TABLE future (x); PRAGMA user_version = 99;");
    auto store = Store::open(dir.store());
    REQUIRE_FALSE(store);
    CHECK(store.error().code == "store");
    CHECK_THAT(store.error().message, Catch::Contains("version 99") &&
                                          Catch::Contains("version " + std::to_string(Store::schema_version)) &&
                                          Catch::Contains(dir.store()));
    CHECK(raw_query(dir.store(), "PRAGMA user_version") == "99");  // untouched
    CHECK(raw_query(dir.store(), "PRAGMA journal_mode") == "delete");
}

TEST_CASE("store: cursors start at 0, move only forward, and stop at last_seq") {
    TempDir dir;
    auto store = open_store(dir.store());
    for (int i = 0; i < 5; ++i) {
        auto e = message("m");
        REQUIRE(store->append(e));
    }
    CHECK(store->cursor("emacs").value() == 0);
    REQUIRE(store->set_cursor("emacs", 3));
    CHECK(store->cursor("emacs").value() == 3);
    REQUIRE(store->set_cursor("emacs", 1));  // never back
    CHECK(store->cursor("emacs").value() == 3);
    REQUIRE(store->set_cursor("emacs", 5));
    CHECK(store->cursor("emacs").value() == 5);

    auto beyond = store->set_cursor("emacs", 6);
    REQUIRE_FALSE(beyond);
    CHECK(beyond.error().code == "bad-seq");
    CHECK_FALSE(store->set_cursor("bot", -1));
    CHECK(store->cursor("emacs").value() == 5);
    CHECK(store->cursor("bot").value() == 0);
    CHECK(store->cursor("irc").value() == 0);  // clients are independent

    store.reset();
    store = open_store(dir.store());
    CHECK(store->cursor("emacs").value() == 5);
}

TEST_CASE("store: events committed by a process killed with SIGKILL are there after reopen") {
    TempDir dir;
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    constexpr int count = 50;
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // No Catch2 here: report through the exit status, and never return into the runner.
        ::close(ready[0]);
        auto store = Store::open(dir.store());
        if (!store) ::_exit(10);
        for (int i = 0; i < count; ++i) {
            auto e = message("before the kill " + std::to_string(i), "k" + std::to_string(i));
            if (!store.value()->append(e)) ::_exit(11);
        }
        std::vector<model::Event> events = {state_event("q", "accepted")};
        if (!store.value()->enqueue(entry("q"), events)) ::_exit(12);
        char c = 'k';
        if (::write(ready[1], &c, 1) != 1) ::_exit(13);
        for (;;) ::pause();  // killed here, the store still open
    }
    ::close(ready[1]);
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    ::close(ready[0]);

    // While the child lives, its pid is in the lock error.
    auto locked = Store::open(dir.store());
    REQUIRE_FALSE(locked);
    CHECK_THAT(locked.error().message, Catch::Contains("(pid " + std::to_string(child) + ")"));

    REQUIRE(::kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);

    // The WAL is left behind uncheckpointed; the next open recovers from it.
    struct stat st {};
    CHECK(::stat((dir.store() + "-wal").c_str(), &st) == 0);
    auto store = open_store(dir.store());
    CHECK(store->last_seq() == count + 1);
    auto events = store->events_after(0, 1000);
    REQUIRE(events);
    REQUIRE(events.value().size() == count + 1);
    CHECK(std::get<model::Message>(events.value()[count - 1].body).body ==
          "before the kill " + std::to_string(count - 1));
    CHECK(store->pending("home").value().size() == 1);
    auto e = message("after");
    REQUIRE(store->append(e));
    CHECK(e.seq == count + 2);
}
