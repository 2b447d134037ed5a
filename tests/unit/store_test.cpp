#include <catch2/catch.hpp>

#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <regex>

#include "daemon/store.hpp"
#include "frontends/model/codec.hpp"
#include "temp_dir.hpp"

using stanzad::OutboxEntry;
using stanzad::Store;

namespace {

using namespace std::chrono_literals;

using stanzad::test::TempDir;

std::unique_ptr<Store> open_store(const std::string& path) {
    auto s = Store::open(path);
    INFO((s ? std::string() : s.error().message));
    REQUIRE(s);
    return std::move(s).value();
}

model::Event message(const std::string& body, const std::string& msg_id = "m") {
    model::Message m;
    m.from = "bob@example.org/phone";
    m.to = "alice@example.org/stanzad";
    m.body = body;
    m.msg_id = msg_id;
    return model::Event{0, "home", "", m};
}

model::Event state_event(const std::string& msg_id, const std::string& state, const std::string& error = "") {
    return model::Event{0, "home", "", model::MessageState{msg_id, state, error}};
}

OutboxEntry entry(const std::string& msg_id, const std::string& account = "home") {
    OutboxEntry e;
    e.account = account;
    e.msg_id = msg_id;
    e.to = "bob@example.org";
    e.type = "chat";
    e.body = "hi " + msg_id;
    return e;
}

std::vector<model::Seq> seqs(Store& store, model::Seq after = 0, std::size_t limit = 1000) {
    auto events = store.events_after(after, limit);
    REQUIRE(events);
    std::vector<model::Seq> out;
    for (const auto& e : events.value()) out.push_back(e.seq);
    return out;
}

// Runs SQL on the store's file through a connection of its own (not through Store).
void raw_exec(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    INFO((err ? err : ""));
    sqlite3_free(err);
    sqlite3_close(db);
    REQUIRE(rc == SQLITE_OK);
}

std::string raw_query(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
    std::string out;
    if (sqlite3_step(s) == SQLITE_ROW) out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return out;
}

// The details of EXPLAIN QUERY PLAN for `sql`, joined by "; ".
std::string query_plan(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &s, nullptr) == SQLITE_OK);
    std::string out;
    while (sqlite3_step(s) == SQLITE_ROW) out += std::string(reinterpret_cast<const char*>(sqlite3_column_text(s, 3))) + "; ";
    sqlite3_finalize(s);
    sqlite3_close(db);
    return out;
}

const auto far_future = std::chrono::system_clock::now() + 24h * 365;

}  // namespace

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

TEST_CASE("store: enqueue stores the row and its events together; a retried msg_id stores nothing") {
    TempDir dir;
    auto store = open_store(dir.store());
    auto e0 = message("x");
    REQUIRE(store->append(e0));

    std::vector<model::Event> events = {message("hi c-1", "c-1"), state_event("c-1", "accepted")};
    auto r = store->enqueue(entry("c-1"), events);
    REQUIRE(r);
    CHECK(r.value());
    CHECK(events[0].seq == 2);
    CHECK(events[1].seq == 3);
    CHECK_FALSE(events[1].stamp.empty());
    CHECK(store->last_seq() == 3);
    CHECK(seqs(*store) == std::vector<model::Seq>{1, 2, 3});

    auto row = store->find("home", "c-1");
    REQUIRE(row);
    CHECK(row.value().state == "accepted");
    CHECK(row.value().to == "bob@example.org");
    CHECK(row.value().type == "chat");
    CHECK(row.value().body == "hi c-1");
    CHECK(row.value().error.empty());
    CHECK(row.value().id > 0);
    CHECK(row.value().created.size() == std::string("2026-11-25T12:00:00.000Z").size());

    std::vector<model::Event> again = {message("hi c-1", "c-1"), state_event("c-1", "accepted")};
    auto dup = store->enqueue(entry("c-1"), again);
    REQUIRE(dup);
    CHECK_FALSE(dup.value());
    CHECK(again[0].seq == 0);
    CHECK(again[1].seq == 0);
    CHECK(store->last_seq() == 3);
    CHECK(seqs(*store) == std::vector<model::Seq>{1, 2, 3});

    // The same msg_id on another account is another message.
    std::vector<model::Event> other = {state_event("c-1", "accepted")};
    auto r2 = store->enqueue(entry("c-1", "work"), other);
    REQUIRE(r2);
    CHECK(r2.value());
    CHECK(other[0].seq == 4);

    CHECK_FALSE(store->find("home", "nope"));
    CHECK(store->find("home", "nope").error().code == "not-found");
}

TEST_CASE("store: pending lists accepted and sent messages in queue order") {
    TempDir dir;
    auto store = open_store(dir.store());
    for (const char* id : {"a", "b", "c", "d", "e"}) {
        std::vector<model::Event> events = {state_event(id, "accepted")};
        REQUIRE(store->enqueue(entry(id), events).value());
    }
    std::vector<model::Event> other = {state_event("w", "accepted")};
    REQUIRE(store->enqueue(entry("w", "work"), other).value());

    auto ev = state_event("b", "sent");
    REQUIRE(store->set_state("home", "b", "sent", "", ev));
    ev = state_event("c", "acked");
    REQUIRE(store->set_state("home", "c", "acked", "", ev));
    ev = state_event("d", "failed", "service-unavailable");
    REQUIRE(store->set_state("home", "d", "failed", "service-unavailable", ev));

    auto p = store->pending("home");
    REQUIRE(p);
    std::vector<std::string> ids, states;
    for (const auto& e : p.value()) {
        ids.push_back(e.msg_id);
        states.push_back(e.state);
    }
    CHECK(ids == std::vector<std::string>{"a", "b", "e"});
    CHECK(states == std::vector<std::string>{"accepted", "sent", "accepted"});
    CHECK(p.value()[0].id < p.value()[1].id);
    CHECK(p.value()[1].id < p.value()[2].id);
    CHECK(store->pending("work").value().size() == 1);
    CHECK(store->pending("nobody").value().empty());

    // The queue survives a restart.
    store.reset();
    store = open_store(dir.store());
    CHECK(store->pending("home").value().size() == 3);
}

TEST_CASE("store: set_state updates the row and appends its event; an unknown msg_id is not-found") {
    TempDir dir;
    auto store = open_store(dir.store());
    std::vector<model::Event> events = {state_event("c-1", "accepted")};
    REQUIRE(store->enqueue(entry("c-1"), events).value());

    auto ev = state_event("c-1", "failed", "remote-server-not-found");
    REQUIRE(store->set_state("home", "c-1", "failed", "remote-server-not-found", ev));
    CHECK(ev.seq == 2);
    CHECK(store->last_seq() == 2);
    auto row = store->find("home", "c-1").value();
    CHECK(row.state == "failed");
    CHECK(row.error == "remote-server-not-found");
    auto stored = store->events_after(1, 10).value();
    REQUIRE(stored.size() == 1);
    CHECK(std::get<model::MessageState>(stored[0].body).state == "failed");
    CHECK(std::get<model::MessageState>(stored[0].body).error == "remote-server-not-found");

    auto unknown = state_event("nope", "sent");
    auto st = store->set_state("home", "nope", "sent", "", unknown);
    REQUIRE_FALSE(st);
    CHECK(st.error().code == "not-found");
    CHECK(unknown.seq == 0);
    CHECK(store->last_seq() == 2);
    auto wrong_account = state_event("c-1", "sent");
    CHECK_FALSE(store->set_state("work", "c-1", "sent", "", wrong_account));
    CHECK(seqs(*store) == std::vector<model::Seq>{1, 2});
}

TEST_CASE("store: a failure inside enqueue or set_state leaves nothing behind") {
    TempDir dir;
    auto store = open_store(dir.store());
    auto first = message("first");
    REQUIRE(store->append(first));
    // Makes every insert of an event for account "boom" fail, as a full disk would.
    raw_exec(dir.store(),
             "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.account = 'boom' "
             "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;");

    auto bad = message("x");
    bad.account = "boom";
    auto st = store->append(bad);
    REQUIRE_FALSE(st);
    CHECK(st.error().code == "store");
    CHECK_THAT(st.error().message, Catch::Contains("disk on fire"));
    CHECK(bad.seq == 0);
    CHECK(bad.stamp.empty());
    CHECK(store->last_seq() == 1);

    // The row went in, the second event failed: neither may stay.
    std::vector<model::Event> events = {message("hi", "c-1"), state_event("c-1", "accepted")};
    events[1].account = "boom";
    auto r = store->enqueue(entry("c-1"), events);
    REQUIRE_FALSE(r);
    CHECK(events[0].seq == 0);
    CHECK(events[1].seq == 0);
    CHECK(store->last_seq() == 1);
    CHECK_FALSE(store->find("home", "c-1"));
    CHECK(seqs(*store) == std::vector<model::Seq>{1});

    std::vector<model::Event> good = {state_event("c-1", "accepted")};
    REQUIRE(store->enqueue(entry("c-1"), good).value());
    CHECK(good[0].seq == 2);  // no gap left by the rolled-back attempt

    auto boom = state_event("c-1", "sent");
    boom.account = "boom";
    REQUIRE_FALSE(store->set_state("home", "c-1", "sent", "", boom));
    CHECK(boom.seq == 0);
    CHECK(store->find("home", "c-1").value().state == "accepted");
    CHECK(store->last_seq() == 2);

    auto next = message("next");
    REQUIRE(store->append(next));
    CHECK(next.seq == 3);
}

TEST_CASE("store: prune keeps what a known client has not confirmed") {
    TempDir dir;
    auto store = open_store(dir.store());
    for (int i = 0; i < 5; ++i) {
        auto e = message("m");
        REQUIRE(store->append(e));
    }
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
    for (int i = 0; i < 4; ++i) {
        auto e = message("m");
        REQUIRE(store->append(e));
    }
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

TEST_CASE("store: prune removes old events when no client is known, and keeps recent ones") {
    TempDir dir;
    auto store = open_store(dir.store());
    for (int i = 0; i < 3; ++i) {
        auto e = message("m");
        REQUIRE(store->append(e));
    }
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
    for (int i = 0; i < 3; ++i) {
        auto e = message("m");
        REQUIRE(store->append(e));
    }
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

TEST_CASE("store: a version 1 database is migrated forward and keeps its events") {
    TempDir dir;
    {
        auto store = open_store(dir.store());
        auto e = message("kept");
        REQUIRE(store->append(e));
    }
    // Back to what a version 1 daemon left: without the tables of version 2.
    raw_exec(dir.store(),
             "DROP TABLE inbound_ids; DROP TABLE account_meta; ALTER TABLE outbox DROP COLUMN replace_id; "
             "DROP INDEX events_msgid; DROP INDEX events_peer; ALTER TABLE events DROP COLUMN peer; "
             "ALTER TABLE events DROP COLUMN format; ALTER TABLE events DROP COLUMN msg_id; "
             "ALTER TABLE events DROP COLUMN direction; DROP TABLE conversations; PRAGMA user_version = 1;");
    auto store = open_store(dir.store());
    CHECK(raw_query(dir.store(), "PRAGMA user_version") == std::to_string(Store::schema_version));
    CHECK(seqs(*store) == std::vector<model::Seq>{1});
    // The migration found the message's conversation.
    CHECK(store->messages("home", "bob@example.org", {}, 10).value().size() == 1);
    REQUIRE(store->set_meta("home", "mam_last", "A1"));
    CHECK(store->meta("home", "mam_last").value() == "A1");
}

TEST_CASE("store: a version 4 database gets the indexes of a big store and answers through them") {
    TempDir dir;
    {
        auto store = open_store(dir.store());
        auto e = message("kept", "m-1");
        REQUIRE(store->append(e));
    }
    // Back to version 4: events_peer without stamp, no events_msgid, none of schema 6's columns.
    raw_exec(dir.store(),
             "DROP INDEX events_msgid; DROP INDEX events_peer; "
             "ALTER TABLE events DROP COLUMN format; ALTER TABLE events DROP COLUMN msg_id; "
             "ALTER TABLE events DROP COLUMN direction; DROP TABLE conversations; DROP INDEX inbound_ids_created; "
             "CREATE INDEX events_peer ON events (account, peer, seq) WHERE peer != ''; PRAGMA user_version = 4;");
    auto store = open_store(dir.store());
    CHECK(raw_query(dir.store(), "PRAGMA user_version") == std::to_string(Store::schema_version));
    CHECK(raw_query(dir.store(), "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'events_msgid'") ==
          "1");
    CHECK(raw_query(dir.store(), "SELECT sql LIKE '%stamp%' FROM sqlite_master WHERE name = 'events_peer'") == "1");
    // The msgid lookup (CHATHISTORY msgid=) uses the new index, not a scan of the conversation.
    CHECK_THAT(query_plan(dir.store(), "SELECT seq FROM events WHERE account = 'home' AND peer = 'bob@example.org' "
                                       "AND peer != '' AND msg_id = 'm-1' ORDER BY seq LIMIT 1"),
               Catch::Contains("INDEX events_msgid (account=? AND peer=? AND msg_id=?)"));
    // The conversation list (CHATHISTORY TARGETS) reads the table of conversations, by stamp.
    CHECK_THAT(query_plan(dir.store(), "SELECT account, peer, last_stamp FROM conversations WHERE last_stamp > '' "
                                       "AND last_stamp < '~' ORDER BY last_stamp DESC LIMIT 50"),
               Catch::Contains("INDEX conversations_last (last_stamp>? AND last_stamp<?)"));
    CHECK(store->conversations("", "", 10).value().size() == 1);
    CHECK(store->message_seq("home", "bob@example.org", "m-1").value() == std::optional<model::Seq>(1));
}

namespace {

// A store as a schema-5 stanzad left it: the schema written out here (not taken from the
// migrations, so that later schemas cannot change it), each event's JSON in the `json`
// column and nothing of schema 6.
void make_v5_store(const std::string& path, const std::vector<model::Event>& events) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::string sql = R"sql(
CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, kind TEXT NOT NULL,
    stamp TEXT NOT NULL, created_ms INTEGER NOT NULL, json TEXT NOT NULL, peer TEXT NOT NULL DEFAULT '');
CREATE INDEX events_created ON events (created_ms);
CREATE TABLE cursors (client TEXT PRIMARY KEY, seq INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, msg_id TEXT NOT NULL,
    to_jid TEXT NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '', created TEXT NOT NULL, created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL, replace_id TEXT NOT NULL DEFAULT '', UNIQUE (account, msg_id));
CREATE INDEX outbox_pending ON outbox (account, state);
CREATE TABLE inbound_ids (account TEXT NOT NULL, id TEXT NOT NULL, created_ms INTEGER NOT NULL,
    value TEXT NOT NULL DEFAULT '', PRIMARY KEY (account, id)) WITHOUT ROWID;
CREATE TABLE account_meta (account TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (account, key)) WITHOUT ROWID;
CREATE INDEX events_msgid ON events (account, peer, json_extract(json, '$.msg_id')) WHERE peer != '';
CREATE INDEX events_peer ON events (account, peer, seq, stamp) WHERE peer != '';
PRAGMA user_version = 5;
)sql";
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db,
                               "INSERT INTO events (seq, account, kind, stamp, created_ms, json, peer) "
                               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                               -1, &s, nullptr) == SQLITE_OK);
    for (const auto& e : events) {
        const std::string json = model::codec::encode(e), peer = stanzad::conversation_of(e);
        sqlite3_bind_int64(s, 1, e.seq);
        sqlite3_bind_text(s, 2, e.account.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 3, model::event_name(e.body), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 4, e.stamp.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 5, std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch()).count());
        sqlite3_bind_text(s, 6, json.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 7, peer.c_str(), -1, SQLITE_TRANSIENT);
        CHECK(sqlite3_step(s) == SQLITE_DONE);
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
}

model::Event chat(model::Seq seq, const std::string& from, const std::string& to, bool outgoing,
                  const std::string& type, const std::string& id, const std::string& stamp) {
    model::Message m;
    m.from = from;
    m.to = to;
    m.type = type;
    m.body = "body of " + id;
    m.msg_id = id;
    m.outgoing = outgoing;
    return model::Event{seq, "home", stamp, m};
}

}  // namespace

TEST_CASE("store: a version 5 database gets format, msg_id and direction columns filled from its JSON") {
    TempDir dir;
    const std::vector<model::Event> v5 = {
        chat(1, "bob@example.org/phone", "alice@example.org/x", false, "chat", "b1", "2026-11-25T10:00:00.000Z"),
        chat(2, "alice@example.org", "bob@example.org", true, "chat", "a1", "2026-11-25T10:01:00.000Z"),
        chat(3, "room@muc.example.org/carol", "alice@example.org/x", false, "groupchat", "r1",
             "2026-11-25T10:02:00.000Z"),
        model::Event{4, "home", "2026-11-25T10:03:00.000Z", model::MessageState{"a1", "acked", ""}},
        model::Event{5, "home", "2026-11-25T10:04:00.000Z", model::AccountState{"online", "", "alice@example.org/x"}},
    };
    make_v5_store(dir.store(), v5);
    auto store = open_store(dir.store());
    CHECK(raw_query(dir.store(), "PRAGMA user_version") == std::to_string(Store::schema_version));
    CHECK(store->last_seq() == 5);

    auto row = [&](model::Seq seq) {
        const std::string where = " FROM events WHERE seq = " + std::to_string(seq);
        return raw_query(dir.store(), "SELECT format" + where) + "|" + raw_query(dir.store(), "SELECT msg_id" + where) +
               "|" + raw_query(dir.store(), "SELECT direction" + where);
    };
    CHECK(row(1) == "1|b1|in");
    CHECK(row(2) == "1|a1|out");
    CHECK(row(3) == "1|r1|in");
    CHECK(row(4) == "1|a1|");
    CHECK(row(5) == "1||");

    // The events read back as they were written, and the queries by conversation answer.
    auto events = store->events_after(0, 10);
    REQUIRE(events);
    REQUIRE(events.value().size() == v5.size());
    for (std::size_t i = 0; i < v5.size(); ++i) CHECK(model::codec::encode(events.value()[i]) == model::codec::encode(v5[i]));
    CHECK(store->message_seq("home", "bob@example.org", "a1").value() == std::optional<model::Seq>(2));
    CHECK(store->message_seq("home", "room@muc.example.org", "r1").value() == std::optional<model::Seq>(3));
    CHECK_FALSE(store->message_seq("home", "bob@example.org", "r1").value());
    CHECK(store->messages("home", "bob@example.org", {}, 10).value().size() == 2);
    auto convs = store->conversations("", "", 10).value();
    REQUIRE(convs.size() == 2);
    CHECK(convs[0].peer == "room@muc.example.org");
    CHECK(convs[1].peer == "bob@example.org");
    CHECK(convs[1].last_stamp == "2026-11-25T10:01:00.000Z");
    CHECK(raw_query(dir.store(), "SELECT last_seq FROM conversations WHERE peer = 'bob@example.org'") == "2");

    // No index reads inside the JSON any more; the msgid lookup uses the column's index.
    CHECK(raw_query(dir.store(), "SELECT count(*) FROM sqlite_master WHERE sql LIKE '%json_extract%'") == "0");
    CHECK_THAT(query_plan(dir.store(), "SELECT seq FROM events WHERE account = 'home' AND peer = 'bob@example.org' "
                                       "AND peer != '' AND msg_id = 'a1' ORDER BY seq LIMIT 1"),
               Catch::Contains("INDEX events_msgid (account=? AND peer=? AND msg_id=?)"));

    // New rows get their columns from the event itself.
    auto out = chat(0, "alice@example.org", "carol@example.org", true, "chat", "c1", "");
    REQUIRE(store->append(out));
    CHECK(row(6) == std::to_string(model::codec::format_version) + "|c1|out");
}

TEST_CASE("store: a row in a format newer than this program is an error that names it") {
    TempDir dir;
    {
        auto store = open_store(dir.store());
        auto e = message("from the future", "f1");
        REQUIRE(store->append(e));
    }
    raw_exec(dir.store(), "UPDATE events SET format = 99 WHERE seq = 1");
    auto store = open_store(dir.store());
    auto events = store->events_after(0, 10);
    REQUIRE_FALSE(events);
    CHECK_THAT(events.error().message, Catch::Contains("stored event 1") && Catch::Contains("format 99") &&
                                           Catch::Contains("format " + std::to_string(model::codec::format_version)));
    auto messages = store->messages("home", "bob@example.org", {}, 10);
    REQUIRE_FALSE(messages);
    CHECK_THAT(messages.error().message, Catch::Contains("format 99"));
    CHECK_FALSE(store->event(1));
}

TEST_CASE("store: append_once stores an incoming message once per key and account") {
    TempDir dir;
    auto store = open_store(dir.store());
    auto a = message("first", "s1");
    REQUIRE(store->append_once(a, "s1").value());
    CHECK(a.seq == 1);
    auto again = message("first again", "s1");
    CHECK_FALSE(store->append_once(again, "s1").value());
    CHECK(again.seq == 0);
    CHECK(store->last_seq() == 1);
    auto other_account = message("elsewhere", "s1");
    other_account.account = "work";
    CHECK(store->append_once(other_account, "s1").value());
    CHECK(seqs(*store) == std::vector<model::Seq>{1, 2});
}

TEST_CASE("store: an inbound key points at its event, aliases at what they were given") {
    TempDir dir;
    auto store = open_store(dir.store());
    auto filler = message("filler");
    REQUIRE(store->append(filler));
    auto a = message("hello", "s1");
    REQUIRE(store->append_once(a, "sid:s1", {{"ref:bob@example.org:m1", "s1"}}).value());
    CHECK(store->inbound("home", "sid:s1").value() == std::optional<std::string>(std::to_string(a.seq)));
    CHECK(store->inbound("home", "ref:bob@example.org:m1").value() == std::optional<std::string>("s1"));
    CHECK_FALSE(store->inbound("home", "sid:nope").value());
    CHECK_FALSE(store->inbound("work", "sid:s1").value());
    // A copy is refused and its aliases are not recorded.
    auto copy = message("hello", "s1");
    CHECK_FALSE(store->append_once(copy, "sid:s1", {{"ref:bob@example.org:m2", "s1"}}).value());
    CHECK_FALSE(store->inbound("home", "ref:bob@example.org:m2").value());
    auto stored = store->event(a.seq).value();
    REQUIRE(stored);
    CHECK(std::get<model::Message>(stored->body).body == "hello");
    CHECK_FALSE(store->event(a.seq + 1).value());
}

TEST_CASE("store: messages by conversation, paged by seq and stamp; conversations by last stamp") {
    TempDir dir;
    auto store = open_store(dir.store());
    auto add = [&](const std::string& from, const std::string& to, bool outgoing, const std::string& stamp,
                   const std::string& id) {
        model::Message m;
        m.from = from;
        m.to = to;
        m.body = id;
        m.msg_id = id;
        m.outgoing = outgoing;
        model::Event e{0, "home", stamp, m};
        REQUIRE(store->append(e));
        return e.seq;
    };
    add("bob@example.org/phone", "alice@example.org/x", false, "2026-11-25T10:00:00.000Z", "b1");
    add("alice@example.org", "bob@example.org", true, "2026-11-25T10:01:00.000Z", "a1");
    add("room@muc.example.org/carol", "alice@example.org/x", false, "2026-11-25T10:02:00.000Z", "r1");
    auto b2 = add("bob@example.org/laptop", "alice@example.org/x", false, "2026-11-25T10:03:00.000Z", "b2");
    model::Event state{0, "home", "", model::MessageState{"a1", "acked", ""}};
    REQUIRE(store->append(state));
    auto ids = [](const std::vector<model::Event>& events) {
        std::vector<std::string> out;
        for (const auto& e : events) out.push_back(std::get<model::Message>(e.body).msg_id);
        return out;
    };
    CHECK(ids(store->messages("home", "bob@example.org", {}, 10).value()) == std::vector<std::string>{"b1", "a1", "b2"});
    stanzad::MessageRange newest;
    newest.newest = true;
    CHECK(ids(store->messages("home", "bob@example.org", newest, 2).value()) == std::vector<std::string>{"a1", "b2"});
    stanzad::MessageRange before;
    before.before = b2;
    before.newest = true;
    CHECK(ids(store->messages("home", "bob@example.org", before, 1).value()) == std::vector<std::string>{"a1"});
    stanzad::MessageRange stamps;
    stamps.after_stamp = "2026-11-25T10:00:00.000Z";
    CHECK(ids(store->messages("home", "bob@example.org", stamps, 10).value()) == std::vector<std::string>{"a1", "b2"});
    CHECK(ids(store->messages("home", "room@muc.example.org", {}, 10).value()) == std::vector<std::string>{"r1"});
    CHECK(store->messages("work", "bob@example.org", {}, 10).value().empty());
    CHECK(store->message_seq("home", "bob@example.org", "b2").value() == std::optional<model::Seq>(b2));
    CHECK_FALSE(store->message_seq("home", "room@muc.example.org", "b2").value());
    auto convs = store->conversations("", "", 10).value();
    REQUIRE(convs.size() == 2);
    CHECK(convs[0].peer == "bob@example.org");
    CHECK(convs[0].last_stamp == "2026-11-25T10:03:00.000Z");
    CHECK(convs[1].peer == "room@muc.example.org");
    CHECK(store->conversations("2026-11-25T10:02:30.000Z", "", 10).value().size() == 1);
}

TEST_CASE("store: the conversation list follows inserts (latest stamp, not last inserted) and prune") {
    TempDir dir;
    auto store = open_store(dir.store());
    auto add = [&](const std::string& peer, const std::string& stamp) {
        model::Message m;
        m.from = peer + "/x";
        m.to = "alice@example.org/x";
        m.body = stamp;
        model::Event e{0, "home", stamp, m};
        REQUIRE(store->append(e));
        return e.seq;
    };
    add("carol@example.org", "2026-11-25T10:00:00.000Z");
    add("bob@example.org", "2026-11-25T10:01:00.000Z");
    add("bob@example.org", "2026-11-25T10:05:00.000Z");
    const auto delayed = add("bob@example.org", "2026-11-25T09:00:00.000Z");  // archive catch-up
    add("dave@example.org", "2026-11-25T10:02:00.000Z");
    auto peers = [&] {
        auto convs = store->conversations("", "", 10);
        REQUIRE(convs);
        std::vector<std::string> out;
        for (const auto& c : convs.value()) out.push_back(c.peer + " " + c.last_stamp);
        return out;
    };
    CHECK(peers() == std::vector<std::string>{"bob@example.org 2026-11-25T10:05:00.000Z",
                                              "dave@example.org 2026-11-25T10:02:00.000Z",
                                              "carol@example.org 2026-11-25T10:00:00.000Z"});
    CHECK(raw_query(dir.store(), "SELECT last_seq FROM conversations WHERE peer = 'bob@example.org'") ==
          std::to_string(delayed));

    // A client in use confirmed seqs 1-3: prune takes them, all of carol's and two of bob's.
    REQUIRE(store->set_cursor("emacs", 3, far_future + 1h));
    REQUIRE(store->prune(far_future, 0).value() == 3);
    CHECK(peers() == std::vector<std::string>{"dave@example.org 2026-11-25T10:02:00.000Z",
                                              "bob@example.org 2026-11-25T09:00:00.000Z"});
    CHECK(raw_query(dir.store(), "SELECT count(*) FROM conversations") == "2");
    // Prune finds the conversations it touches by the events' age, not by reading every message.
    CHECK_THAT(query_plan(dir.store(), "SELECT DISTINCT account, peer FROM events INDEXED BY events_created "
                                       "WHERE peer != '' AND created_ms < 5 AND seq <= 9"),
               Catch::Contains("INDEX events_created (created_ms<?)"));
    // Prune finds old de-duplication ids by their index, not by reading every one.
    CHECK_THAT(query_plan(dir.store(), "DELETE FROM inbound_ids WHERE created_ms < 5 AND "
                                       "created_ms < coalesce((SELECT min(created_ms) FROM events), 5)"),
               Catch::Contains("INDEX inbound_ids_created (created_ms<?)"));
}

TEST_CASE("store: a correction keeps what it replaces in the outbox") {
    TempDir dir;
    auto store = open_store(dir.store());
    OutboxEntry e;
    e.account = "home";
    e.msg_id = "m2";
    e.to = "bob@example.org";
    e.type = "chat";
    e.body = "fixed";
    e.replace_id = "m1";
    std::vector<model::Event> none;
    REQUIRE(store->enqueue(e, none).value());
    CHECK(store->find("home", "m2").value().replace_id == "m1");
    CHECK(store->pending("home").value().at(0).replace_id == "m1");
}

TEST_CASE("store: per-account values are empty until set, and overwritten") {
    TempDir dir;
    auto store = open_store(dir.store());
    CHECK(store->meta("home", "mam_last").value().empty());
    REQUIRE(store->set_meta("home", "mam_last", "A1"));
    REQUIRE(store->set_meta("home", "mam_last", "A2"));
    CHECK(store->meta("home", "mam_last").value() == "A2");
    CHECK(store->meta("work", "mam_last").value().empty());
}

TEST_CASE("store: account values by prefix, several at once, and with the event they go with") {
    TempDir dir;
    auto store = open_store(dir.store());
    using stanzad::MetaWrite;
    REQUIRE(store->set_metas("home", {{"omemo:session:bob@example.org/1", "a"},
                                      {"omemo:session:bob@example.org/22", "b"},
                                      {"omemo:session:bob@example.org.evil/3", "x"},
                                      {"omemo:session:carol@example.org/4", "c"}}));
    REQUIRE(store->set_meta("work", "omemo:session:bob@example.org/5", "w"));
    auto rows = store->metas("home", "omemo:session:bob@example.org/", 100);
    REQUIRE(rows);
    CHECK(rows.value() == std::vector<std::pair<std::string, std::string>>{
                              {"omemo:session:bob@example.org/1", "a"}, {"omemo:session:bob@example.org/22", "b"}});
    CHECK(store->metas("home", "omemo:session:", 2).value().size() == 2);  // the limit
    CHECK(store->metas("home", "nothing:", 10).value().empty());

    // A deletion (nullopt) and a change in one go.
    REQUIRE(store->set_metas("home", {{"omemo:session:bob@example.org/1", std::nullopt},
                                      {"omemo:session:bob@example.org/22", "b2"}}));
    CHECK(store->meta("home", "omemo:session:bob@example.org/1").value().empty());
    CHECK(store->meta("home", "omemo:session:bob@example.org/22").value() == "b2");

    // With the event: both or neither. A message seen before stores nothing, values neither.
    auto a = message("decrypted", "s1");
    REQUIRE(store->append_once(a, "sid:s1", {}, {{"omemo:session:bob@example.org/22", "b3"}}).value());
    CHECK(store->meta("home", "omemo:session:bob@example.org/22").value() == "b3");
    auto again = message("decrypted", "s1");
    CHECK_FALSE(store->append_once(again, "sid:s1", {}, {{"omemo:session:bob@example.org/22", "b4"}}).value());
    CHECK(store->meta("home", "omemo:session:bob@example.org/22").value() == "b3");
}

// Group commit (issue 15): another connection sees only committed data, so it tells what is
// on disk.
TEST_CASE("store: a batch is one transaction: nothing of it is durable before end_batch, all of it after") {
    TempDir dir;
    auto store = open_store(dir.store());
    auto committed = [&] { return raw_query(dir.store(), "SELECT count(*) FROM events"); };
    const auto commits = store->commits();

    store->begin_batch();
    for (int i = 0; i < 10; ++i) {
        auto e = message("b" + std::to_string(i), "b" + std::to_string(i));
        REQUIRE(store->append(e));
        CHECK(e.seq == i + 1);
    }
    std::vector<model::Event> events = {state_event("c-1", "accepted")};
    REQUIRE(store->enqueue(entry("c-1"), events).value());
    auto sent = state_event("c-1", "sent");
    REQUIRE(store->set_state("home", "c-1", "sent", "", sent));
    auto in = message("in", "in-1");
    REQUIRE(store->append_once(in, "sid-1", {}).value());
    REQUIRE(store->set_meta("home", "k", "v"));
    REQUIRE(store->set_cursor("tests", 3));
    // The batch reads its own writes...
    CHECK(store->last_seq() == 13);
    CHECK(seqs(*store).size() == 13);
    CHECK(store->find("home", "c-1").value().state == "sent");
    CHECK(store->meta("home", "k").value() == "v");
    // ...and nothing of it is on disk yet.
    CHECK(committed() == "0");
    CHECK(store->commits() == commits);

    REQUIRE(store->end_batch());
    CHECK(committed() == "13");
    CHECK(store->commits() == commits + 1);
    CHECK(raw_query(dir.store(), "SELECT state FROM outbox WHERE msg_id = 'c-1'") == "sent");
    CHECK(raw_query(dir.store(), "SELECT seq FROM cursors WHERE client = 'tests'") == "3");

    // Outside a batch each call commits on its own, as before.
    auto after = message("after");
    REQUIRE(store->append(after));
    CHECK(committed() == "14");
    CHECK(store->commits() == commits + 2);
}

TEST_CASE("store: batches nest; the outermost end commits; an empty batch commits nothing") {
    TempDir dir;
    auto store = open_store(dir.store());
    const auto commits = store->commits();
    store->begin_batch();
    REQUIRE(store->end_batch());
    CHECK(store->commits() == commits);

    store->begin_batch();
    store->begin_batch();
    auto e = message("nested");
    REQUIRE(store->append(e));
    REQUIRE(store->end_batch());
    CHECK(raw_query(dir.store(), "SELECT count(*) FROM events") == "0");
    REQUIRE(store->end_batch());
    CHECK(raw_query(dir.store(), "SELECT count(*) FROM events") == "1");
    CHECK(store->commits() == commits + 1);

    auto unbalanced = store->end_batch();
    REQUIRE_FALSE(unbalanced);
    CHECK_THAT(unbalanced.error().message, Catch::Contains("without begin_batch"));
}

TEST_CASE("store: inside a batch a failing call undoes only its own part") {
    TempDir dir;
    auto store = open_store(dir.store());
    raw_exec(dir.store(),
             "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.account = 'boom' "
             "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;");
    store->begin_batch();
    auto first = message("first", "f");
    REQUIRE(store->append(first));

    auto bad = message("x");
    bad.account = "boom";
    REQUIRE_FALSE(store->append(bad));
    CHECK(bad.seq == 0);

    // The row went in, the second event failed: neither stays, the batch goes on.
    std::vector<model::Event> events = {message("hi", "c-1"), state_event("c-1", "accepted")};
    events[1].account = "boom";
    REQUIRE_FALSE(store->enqueue(entry("c-1"), events));
    CHECK_FALSE(store->find("home", "c-1"));

    std::vector<model::Event> good = {state_event("c-2", "accepted")};
    REQUIRE(store->enqueue(entry("c-2"), good).value());
    CHECK(good[0].seq == 2);
    auto boom = state_event("c-2", "sent");
    boom.account = "boom";
    REQUIRE_FALSE(store->set_state("home", "c-2", "sent", "", boom));
    CHECK(store->find("home", "c-2").value().state == "accepted");

    auto dup_key = message("in", "in-1");
    REQUIRE(store->append_once(dup_key, "sid-1", {}).value());
    auto again = message("in", "in-1");
    CHECK_FALSE(store->append_once(again, "sid-1", {}).value());
    REQUIRE(store->end_batch());

    CHECK(seqs(*store) == std::vector<model::Seq>{1, 2, 3});
    CHECK(raw_query(dir.store(), "SELECT count(*) FROM events") == "3");
    CHECK(raw_query(dir.store(), "SELECT count(*) FROM outbox") == "1");
    CHECK(raw_query(dir.store(), "SELECT state FROM outbox WHERE msg_id = 'c-2'") == "accepted");
}
