// Store: the outbox (enqueue, pending, set_state), a failure that leaves nothing behind, and
// corrections.
#include "store_fixture.hpp"

using namespace store_test;

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

TEST_CASE("store: enqueue writes a row as sent when its stanza goes in the same batch, never in a later state") {
    TempDir dir;
    auto store = open_store(dir.store());
    auto sent = entry("s-1");
    sent.state = "sent";
    std::vector<model::Event> events = {message("hi s-1", "s-1"), state_event("s-1", "accepted"),
                                        state_event("s-1", "sent")};
    REQUIRE(store->enqueue(sent, events).value());
    CHECK(store->find("home", "s-1").value().state == "sent");
    CHECK(seqs(*store) == std::vector<model::Seq>{1, 2, 3});
    REQUIRE(store->pending("home").value().size() == 1);

    auto acked = entry("s-2");
    acked.state = "acked";
    std::vector<model::Event> none = {state_event("s-2", "acked")};
    auto r = store->enqueue(acked, none);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("as acked"));
    CHECK_FALSE(store->find("home", "s-2"));
    CHECK(store->last_seq() == 3);
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
    // Read from an index of the messages still to acknowledge, already in queue order
    // (schema 8): nothing sorted, and no entry for what is finished.
    CHECK_THAT(query_plan(dir.store(), "SELECT id FROM outbox WHERE account = 'home' AND "
                                       "state IN ('accepted', 'sent') ORDER BY id"),
               Catch::Contains("USING INDEX outbox_pending (account=?)") && !Catch::Contains("TEMP B-TREE"));
    CHECK(raw_query(dir.store(), "SELECT sql LIKE '%WHERE state IN (''accepted'', ''sent'')' FROM sqlite_master "
                                 "WHERE name = 'outbox_pending'") == "1");
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
    CHECK(std::get<model::MessageState>(stored[0].body).state == model::Delivery::Failed);
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
