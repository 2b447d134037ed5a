// Store: de-duplication keys and aliases (append_once), messages and conversations by peer,
// and per-account values.
#include "daemon/store_detail.hpp"
#include "store_fixture.hpp"

using namespace store_test;

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

TEST_CASE("store: append_once without a key stores the event and its aliases; its msg_id finds it") {
    // The IM core's way for a message with a stanza-id: found by msg_id in its conversation
    // (message_seq), so no key row; its other ids are aliases as usual.
    TempDir dir;
    auto store = open_store(dir.store());
    auto a = message("hello", "S1");
    REQUIRE(store->append_once(a, "", {{"oid:bob@example.org:o1", ""}}).value());
    CHECK(store->inbound("home", "oid:bob@example.org:o1").value() == std::optional<std::string>(std::to_string(a.seq)));
    CHECK(store->message_seq("home", "bob@example.org", "S1").value() == std::optional<model::Seq>(a.seq));
    CHECK_FALSE(store->message_seq("home", "carol@example.org", "S1").value());
    CHECK_FALSE(store->message_seq("work", "bob@example.org", "S1").value());
    // A message-state names a msg_id too, in no conversation: never found by it.
    auto state = state_event("S9", "sent");
    REQUIRE(store->append(state));
    CHECK_FALSE(store->message_seq("home", "bob@example.org", "S9").value());
    CHECK_FALSE(store->message_seq("home", "", "S9").value());
    // No key: nothing to refuse a second one by (the caller looked it up first).
    auto b = message("hello again", "S2");
    CHECK(store->append_once(b, "", {}).value());
    CHECK(seqs(*store) == std::vector<model::Seq>{a.seq, state.seq, b.seq});
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
    model::Event state{0, "home", "", model::MessageState{"a1", model::Delivery::Acked, ""}};
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
    // Prune finds the conversations it touches in the range of seqs it deletes, not by
    // reading every message.
    CHECK_THAT(query_plan(dir.store(), stanzad::store_detail::kPrunableConversations),
               Catch::Contains("SEARCH events USING INTEGER PRIMARY KEY (rowid<?)"));
    // Prune finds old de-duplication ids by their index, not by reading every one, and the
    // first event kept by its seq, not by reading every event.
    const std::string ids_plan = query_plan(dir.store(), stanzad::store_detail::kPruneInboundIds);
    CHECK_THAT(ids_plan, Catch::Contains("INDEX inbound_ids_created (created_ms<?)"));
    CHECK_THAT(ids_plan, Catch::Contains("SCAN events") && !Catch::Contains("TEMP B-TREE"));
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
