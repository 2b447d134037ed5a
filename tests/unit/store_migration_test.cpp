// Store: databases of older schema versions migrated forward, and rows newer than this
// program refused.
#include "store_fixture.hpp"

using namespace store_test;

namespace {
// A store of a version before 8 made from this schema: no events_floor yet, and the
// sqlite_sequence that their AUTOINCREMENT tables had (migration 7 -> 8 reads it).
constexpr const char* kBefore8 =
    "DROP TABLE events_floor; CREATE TABLE had_autoincrement (id INTEGER PRIMARY KEY AUTOINCREMENT); "
    "DROP TABLE had_autoincrement; ";
}  // namespace

TEST_CASE("store: a version 1 database is migrated forward and keeps its events") {
    TempDir dir;
    {
        auto store = open_store(dir.store());
        auto e = message("kept");
        REQUIRE(store->append(e));
    }
    // Back to what a version 1 daemon left: without the tables of version 2.
    raw_exec(dir.store(),
             std::string(kBefore8) +
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
             std::string(kBefore8) +
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
        model::Event{4, "home", "2026-11-25T10:03:00.000Z", model::MessageState{"a1", model::Delivery::Acked, ""}},
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

TEST_CASE("store: migration 8 copies events and outbox without AUTOINCREMENT and keeps the highest seq given") {
    TempDir dir;
    make_v5_store(dir.store(),
                  {chat(1, "bob@example.org/phone", "alice@example.org/x", false, "chat", "b1", "2026-11-25T10:00:00.000Z"),
                   chat(2, "alice@example.org", "bob@example.org", true, "chat", "a1", "2026-11-25T10:01:00.000Z")});
    // Events 3 to 10 were pruned; two messages in the outbox, one still to send.
    raw_exec(dir.store(),
             "UPDATE sqlite_sequence SET seq = 10 WHERE name = 'events'; "
             "INSERT INTO outbox (account, msg_id, to_jid, type, body, state, created, created_ms, updated_ms) VALUES "
             "('home', 'a1', 'bob@example.org', 'chat', 'done', 'acked', '2026-11-25T10:01:00.000Z', 1, 1), "
             "('home', 'a2', 'bob@example.org', 'chat', 'to send', 'sent', '2026-11-25T10:02:00.000Z', 2, 2);");
    {
        auto store = open_store(dir.store());
        CHECK(raw_query(dir.store(), "PRAGMA user_version") == std::to_string(Store::schema_version));
        CHECK(store->migrated_from() == 5);
        // The old tables' pages went back to the disk (VACUUM after the copy).
        CHECK(store->compact_error().empty());
        CHECK(raw_query(dir.store(), "PRAGMA freelist_count") == "0");
        CHECK(raw_query(dir.store(), "SELECT count(*) FROM sqlite_master WHERE sql LIKE '%AUTOINCREMENT%'") == "0");
        CHECK(raw_query(dir.store(), "SELECT group_concat(name) FROM (SELECT name FROM sqlite_master WHERE "
                                     "type = 'index' AND tbl_name IN ('events', 'outbox') AND sql IS NOT NULL "
                                     "ORDER BY name)") == "events_msgid,events_peer,outbox_pending");
        CHECK(store->last_seq() == 10);
        CHECK(seqs(*store) == std::vector<model::Seq>{1, 2});
        CHECK(store->message_seq("home", "bob@example.org", "a1").value() == std::optional<model::Seq>(2));
        auto pending = store->pending("home");
        REQUIRE(pending);
        REQUIRE(pending.value().size() == 1);
        CHECK(pending.value()[0].msg_id == "a2");
        CHECK(pending.value()[0].body == "to send");
        CHECK(store->find("home", "a1").value().state == "acked");
        auto e = message("after the migration");
        REQUIRE(store->append(e));
        CHECK(e.seq == 11);
        // Pruning everything keeps the floor: the next start goes on from 11.
        REQUIRE(store->prune(far_future, 0).value() == 3);
    }
    auto store = open_store(dir.store());
    CHECK(store->migrated_from() == Store::schema_version);
    CHECK(store->last_seq() == 11);
    auto e = message("after a restart");
    REQUIRE(store->append(e));
    CHECK(e.seq == 12);
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
