// Store batches: one transaction, nesting, and a failing call inside a batch.
#include <algorithm>

#include "store_fixture.hpp"

using namespace store_test;

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

// From outside, like a disk that fails mid-call: every insert of an event of the account
// "boom" fails.
namespace {
void fail_events_of_account_boom(const std::string& store_path) {
    raw_exec(store_path,
             "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.account = 'boom' "
             "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;");
}
}  // namespace

// Calls inside a batch have no savepoints (store_detail.hpp Transaction): a call that fails
// before it changed a row leaves the batch going; one that fails part way fails the batch.
TEST_CASE("store: inside a batch a call that fails before writing leaves the batch going") {
    TempDir dir;
    auto store = open_store(dir.store());
    fail_events_of_account_boom(dir.store());
    store->begin_batch();
    auto first = message("first", "f");
    REQUIRE(store->append(first));

    // The event is the first row an append writes: nothing of it stays, the batch goes on.
    auto bad = message("x");
    bad.account = "boom";
    REQUIRE_FALSE(store->append(bad));
    CHECK(bad.seq == 0);

    // Calls that find their work done already write nothing either.
    std::vector<model::Event> good = {state_event("c-2", "accepted")};
    REQUIRE(store->enqueue(entry("c-2"), good).value());
    CHECK(good[0].seq == 2);
    std::vector<model::Event> retried = {state_event("c-2", "accepted")};
    CHECK_FALSE(store->enqueue(entry("c-2"), retried).value());  // a retried send
    auto missing = state_event("nope", "sent");
    CHECK_FALSE(store->set_state("home", "nope", "sent", "", missing));  // not in the outbox
    auto dup_key = message("in", "in-1");
    REQUIRE(store->append_once(dup_key, "sid-1", {}).value());
    auto again = message("in", "in-1");
    CHECK_FALSE(store->append_once(again, "sid-1", {}).value());
    REQUIRE(store->end_batch());

    CHECK(seqs(*store) == std::vector<model::Seq>{1, 2, 3});
    CHECK(raw_query(dir.store(), "SELECT count(*) FROM events") == "3");
    CHECK(raw_query(dir.store(), "SELECT count(*) FROM outbox") == "1");
}

TEST_CASE("store: inside a batch a call that fails part way fails the whole batch, and only it") {
    TempDir dir;
    auto store = open_store(dir.store());
    fail_events_of_account_boom(dir.store());
    auto before = message("before", "b");
    REQUIRE(store->append(before));  // committed on its own

    store->begin_batch();
    auto first = message("first", "f");
    REQUIRE(store->append(first));
    // The outbox row and the first event went in, the second event failed.
    std::vector<model::Event> events = {message("hi", "c-1"), state_event("c-1", "accepted")};
    events[1].account = "boom";
    REQUIRE_FALSE(store->enqueue(entry("c-1"), events));
    // The batch is failed: no later call joins it...
    auto later = message("later", "l");
    auto refused = store->append(later);
    REQUIRE_FALSE(refused);
    // ...and its end keeps nothing of it.
    auto end = store->end_batch();
    REQUIRE_FALSE(end);
    CHECK_THAT(end.error().message, Catch::Contains("nothing of this batch was kept"));
    CHECK(seqs(*store) == std::vector<model::Seq>{1});
    CHECK(raw_query(dir.store(), "SELECT count(*) FROM events") == "1");
    CHECK(raw_query(dir.store(), "SELECT count(*) FROM outbox") == "0");

    // The next batch is a batch like any other.
    store->begin_batch();
    auto next = message("next", "n");
    REQUIRE(store->append(next));
    REQUIRE(store->end_batch());
    CHECK(raw_query(dir.store(), "SELECT count(*) FROM events") == "2");
}

// stored_json (issue 15): the JSON socket sends the row the store wrote instead of encoding
// each event again; it must be that event's encoding, for the events of this batch only.
TEST_CASE("store: stored_json is the stored row of each event of the batch, and nothing after it") {
    TempDir dir;
    auto store = open_store(dir.store());
    auto row = [&](model::Seq seq) {
        return raw_query(dir.store(), "SELECT json FROM events WHERE seq = " + std::to_string(seq));
    };
    auto before = message("before", "b");
    REQUIRE(store->append(before));  // outside a batch

    store->begin_batch();
    CHECK(store->stored_json(before.seq) != nullptr);  // the last few writes outside a batch
    auto first = message("first", "f");
    REQUIRE(store->append(first));
    std::vector<model::Event> events = {message("hi", "c-1"), state_event("c-1", "accepted")};
    REQUIRE(store->enqueue(entry("c-1"), events).value());
    auto sent = state_event("c-1", "sent");
    REQUIRE(store->set_state("home", "c-1", "sent", "", sent));
    auto in = message("in", "in-1");
    REQUIRE(store->append_once(in, "oid:in-1", {}).value());
    auto again = message("in", "in-1");
    REQUIRE_FALSE(store->append_once(again, "oid:in-1", {}).value());  // seen before: not stored

    const std::vector<const model::Event*> stored = {&first, &events[0], &events[1], &sent, &in};
    for (const auto* e : stored) {
        const std::string* json = store->stored_json(e->seq);
        REQUIRE(json != nullptr);
        CHECK(*json == model::codec::encode(*e));  // the event as it was given its seq and stamp
    }
    CHECK(store->stored_json(0) == nullptr);  // never stored (a chat state)
    CHECK(store->stored_json(store->last_seq() + 1) == nullptr);
    REQUIRE(store->end_batch());

    for (const auto* e : stored) {
        CHECK(row(e->seq) == model::codec::encode(*e));
        CHECK(store->stored_json(e->seq) == nullptr);  // the batch ended
    }
}

// set_meta inside a batch is written once, at its end (issue 15: the archive position moves
// with every incoming message). What the other calls see must be as if written at once.
TEST_CASE("store: set_meta in a batch: read at once, written at the end, in order with the other writes") {
    TempDir dir;
    auto store = open_store(dir.store());
    auto on_disk = [&](const std::string& key) {
        return raw_query(dir.store(), "SELECT value FROM account_meta WHERE account = 'home' AND key = '" + key + "'");
    };
    // Every row written to account_meta, counted by key.
    raw_exec(dir.store(), "CREATE TABLE meta_writes (key TEXT); "
                          "CREATE TRIGGER mw_i AFTER INSERT ON account_meta BEGIN INSERT INTO meta_writes VALUES (NEW.key); END; "
                          "CREATE TRIGGER mw_u AFTER UPDATE ON account_meta BEGIN INSERT INTO meta_writes VALUES (NEW.key); END;");
    auto writes_of = [&](const std::string& key) {
        return raw_query(dir.store(), "SELECT count(*) FROM meta_writes WHERE key = '" + key + "'");
    };
    store->begin_batch();
    store->begin_batch();  // nested: its end writes nothing yet
    REQUIRE(store->set_meta("home", "mam_last", "a1"));
    REQUIRE(store->set_meta("home", "mam_last", "a2"));
    REQUIRE(store->end_batch());
    CHECK(store->meta("home", "mam_last").value() == "a2");
    CHECK(store->meta("work", "mam_last").value() == "");  // per account
    CHECK(on_disk("mam_last") == "");

    // set_metas after a deferred value of the same key wins; a set_meta after it wins again.
    REQUIRE(store->set_meta("home", "x", "deferred"));
    REQUIRE(store->set_metas("home", {{"x", std::string("set_metas")}}));
    CHECK(store->meta("home", "x").value() == "set_metas");
    REQUIRE(store->set_meta("home", "y", "first"));
    REQUIRE(store->set_metas("home", {{"y", std::string("set_metas")}}));
    REQUIRE(store->set_meta("home", "y", "last"));
    // metas() reads in SQL: it sees the deferred values.
    REQUIRE(store->set_meta("home", "p:1", "one"));
    auto listed = store->metas("home", "p:", 10);
    REQUIRE(listed);
    CHECK(listed.value() == std::vector<std::pair<std::string, std::string>>{{"p:1", "one"}});
    // append_once's meta writes come after a deferred value of the same key.
    REQUIRE(store->set_meta("home", "z", "deferred"));
    auto in = message("in", "in-1");
    REQUIRE(store->append_once(in, "oid:in-1", {}, {{"z", std::string("append_once")}}).value());
    CHECK(on_disk("mam_last") == "");  // the outer batch is still open

    REQUIRE(store->end_batch());
    CHECK(on_disk("mam_last") == "a2");
    CHECK(writes_of("mam_last") == "1");  // the last value only, once
    CHECK(on_disk("x") == "set_metas");
    CHECK(on_disk("y") == "last");
    CHECK(on_disk("p:1") == "one");
    CHECK(on_disk("z") == "append_once");
    CHECK(store->meta("home", "y").value() == "last");

    // A failed batch keeps none of them.
    fail_events_of_account_boom(dir.store());
    store->begin_batch();
    REQUIRE(store->set_meta("home", "mam_last", "lost"));
    auto boom = message("boom", "x1");
    boom.account = "boom";
    std::vector<model::Event> events = {message("hi", "c-9"), boom};
    REQUIRE_FALSE(store->enqueue(entry("c-9"), events));
    REQUIRE_FALSE(store->end_batch());
    CHECK(on_disk("mam_last") == "a2");
    CHECK(store->meta("home", "mam_last").value() == "a2");
}

// set_cursor_later (issue 15): seen at once, written only with a commit that has other writes
// (or write_later(), or when the store closes), forward only, and never past the last event.
TEST_CASE("store: a cursor to write later rides in the next commit and never moves back") {
    TempDir dir;
    auto cursor_on_disk = [&](const std::string& client) {
        return raw_query(dir.store(), "SELECT seq FROM cursors WHERE client = '" + client + "'");
    };
    {
        auto store = open_store(dir.store());
        for (int i = 0; i < 5; ++i) {
            auto e = message("m" + std::to_string(i));
            REQUIRE(store->append(e));
        }
        const auto commits = store->commits();
        REQUIRE(store->set_cursor_later("irc", 2));
        REQUIRE(store->set_cursor_later("irc", 1));  // never back
        CHECK(store->cursor("irc").value() == 2);
        CHECK(store->writes_later());
        CHECK_FALSE(store->set_cursor_later("irc", 6));  // past the last event
        CHECK(cursor_on_disk("irc") == "");

        // A batch with nothing else to write commits nothing, and keeps it for later.
        store->begin_batch();
        CHECK(store->cursor("irc").value() == 2);
        REQUIRE(store->end_batch());
        CHECK(store->commits() == commits);
        CHECK(cursor_on_disk("irc") == "");

        // A batch that commits anyway takes it along.
        store->begin_batch();
        auto e = message("m5");
        REQUIRE(store->append(e));
        REQUIRE(store->end_batch());
        CHECK(store->commits() == commits + 1);
        CHECK(cursor_on_disk("irc") == "2");
        CHECK_FALSE(store->writes_later());

        // A durable cursor further on wins over a later one behind it, and the reverse.
        REQUIRE(store->set_cursor("irc", 4));
        REQUIRE(store->set_cursor_later("irc", 3));
        CHECK(store->cursor("irc").value() == 4);
        REQUIRE(store->write_later());
        CHECK(cursor_on_disk("irc") == "4");
        REQUIRE(store->set_cursor_later("irc", 5));
        CHECK(store->cursor("irc").value() == 5);
        CHECK(store->cursor("other").value() == 0);
    }
    // Closing the store writes what was left for later.
    CHECK(cursor_on_disk("irc") == "5");
}

// Inside a batch the conversations' rows are written once per conversation when it ends
// (store_detail::HeldConversations), not once per message: the rows must come out as the
// upserts one by one leave them, be seen by a read inside the batch, and go with a batch
// that fails.
namespace {
model::Event message_from(const std::string& peer, const std::string& stamp, const std::string& body) {
    model::Message m;
    m.from = peer + "/x";
    m.to = "alice@example.org/x";
    m.body = body;
    m.msg_id = body;
    return model::Event{0, "home", stamp, m};
}

// Every conversation row, in one text: "peer seq stamp; ...".
std::string conversation_rows(const std::string& path) {
    return raw_query(path, "SELECT group_concat(peer || ' ' || last_seq || ' ' || last_stamp, '; ') FROM "
                           "(SELECT * FROM conversations ORDER BY account, peer)");
}
}  // namespace

TEST_CASE("store: a batch writes each conversation's row once, as the upserts one by one would") {
    // Five peers with three messages each, the last the oldest (archive catch-up): the
    // latest stamp wins, and the last seq. Then 70 more peers, more than the 64 rows a batch
    // holds before it writes them.
    std::vector<model::Event> script;
    auto add = [&](const std::string& peer, int hour, int minute, const std::string& body) {
        char stamp[32];
        std::snprintf(stamp, sizeof stamp, "2026-11-25T%02d:%02d:00.000Z", hour, minute);
        script.push_back(message_from(peer, stamp, body));
    };
    for (int round = 0; round < 3; ++round)
        for (int p = 0; p < 5; ++p)
            add("peer" + std::to_string(p) + "@example.org", p, round == 0 ? 10 : round == 1 ? 12 : 5,
                "m" + std::to_string(round) + "-" + std::to_string(p));
    for (int p = 0; p < 70; ++p) add("more" + std::to_string(p) + "@example.org", p % 24, 30, "x" + std::to_string(p));
    TempDir one_by_one_dir, batch_dir;
    auto one_by_one = open_store(one_by_one_dir.store());
    for (auto e : script) REQUIRE(one_by_one->append(e));

    auto batch = open_store(batch_dir.store());
    batch->begin_batch();
    for (std::size_t i = 0; i < script.size(); ++i) {
        auto e = script[i];
        if (i % 2) {
            REQUIRE(batch->append(e));
        } else {
            REQUIRE(batch->append_once(e, "oid:" + std::to_string(i), {}).value());
        }
    }
    // A read inside the batch sees every conversation at its latest.
    auto listed = [](stanzad::Store& s) {
        auto conversations = s.conversations("", "", 100);
        REQUIRE(conversations);
        std::vector<std::string> out;
        for (const auto& c : conversations.value()) out.push_back(c.peer + " " + c.last_stamp);
        std::sort(out.begin(), out.end());  // conversations of the same stamp come in any order
        return out;
    };
    CHECK(listed(*batch) == listed(*one_by_one));
    CHECK(listed(*batch).size() == 75);
    REQUIRE(batch->end_batch());
    CHECK(conversation_rows(batch_dir.store()) == conversation_rows(one_by_one_dir.store()));
    CHECK(raw_query(batch_dir.store(), "SELECT last_seq || ' ' || last_stamp FROM conversations WHERE peer = "
                                       "'peer1@example.org'") == "12 2026-11-25T01:12:00.000Z");
}

TEST_CASE("store: a batch that fails takes its conversations' rows with it") {
    TempDir dir;
    auto store = open_store(dir.store());
    fail_events_of_account_boom(dir.store());
    auto before = message_from("bob@example.org", "2026-11-25T10:00:00.000Z", "b");
    REQUIRE(store->append(before));
    const std::string rows = conversation_rows(dir.store());
    REQUIRE(rows == "bob@example.org 1 2026-11-25T10:00:00.000Z");

    store->begin_batch();
    auto newer = message_from("bob@example.org", "2026-11-25T11:00:00.000Z", "n");
    auto carol = message_from("carol@example.org", "2026-11-25T11:00:00.000Z", "c");
    REQUIRE(store->append(newer));
    REQUIRE(store->append(carol));
    std::vector<model::Event> events = {message("hi", "c-1"), state_event("c-1", "accepted")};
    events[1].account = "boom";
    REQUIRE_FALSE(store->enqueue(entry("c-1"), events));  // part way: the batch fails
    REQUIRE_FALSE(store->end_batch());
    CHECK(conversation_rows(dir.store()) == rows);

    // The next batch starts with nothing held.
    store->begin_batch();
    auto later = message_from("dave@example.org", "2026-11-25T12:00:00.000Z", "d");
    REQUIRE(store->append(later));
    REQUIRE(store->end_batch());
    CHECK(conversation_rows(dir.store()) == "bob@example.org 1 2026-11-25T10:00:00.000Z; dave@example.org " +
                                                std::to_string(later.seq) + " 2026-11-25T12:00:00.000Z");
}

TEST_CASE("store: prune inside a batch counts the conversations the batch moved") {
    TempDir dir;
    auto store = open_store(dir.store());
    auto old = message_from("bob@example.org", "2026-11-25T09:00:00.000Z", "old");
    REQUIRE(store->append(old));
    REQUIRE(store->set_cursor("emacs", 1, far_future + 1h));
    store->begin_batch();
    auto fresh = message_from("bob@example.org", "2026-11-25T10:00:00.000Z", "fresh");
    auto carol = message_from("carol@example.org", "2026-11-25T08:00:00.000Z", "carol");
    REQUIRE(store->append(fresh));
    REQUIRE(store->append(carol));
    // Prune by age takes the first event only (the cursor confirmed seq 1).
    REQUIRE(store->prune(far_future, 0).value() == 1);
    CHECK(conversation_rows(dir.store()) == "bob@example.org 1 2026-11-25T09:00:00.000Z");  // not committed yet
    REQUIRE(store->end_batch());
    CHECK(conversation_rows(dir.store()) ==
          "bob@example.org 2 2026-11-25T10:00:00.000Z; carol@example.org 3 2026-11-25T08:00:00.000Z");

    // Prune taking the batch's own messages too: their rows go with them, none is written
    // back at the batch's end.
    store->begin_batch();
    auto dave = message_from("dave@example.org", "2026-11-25T11:00:00.000Z", "dave");
    REQUIRE(store->append(dave));
    REQUIRE(store->set_cursor("emacs", dave.seq, far_future + 1h));
    REQUIRE(store->prune(far_future, 0).value() == 3);
    REQUIRE(store->end_batch());
    CHECK(raw_query(dir.store(), "SELECT count(*) FROM conversations") == "0");
}
