#pragma once
// The helpers of the Store tests (store_*_test.cpp): a store opened in a TempDir, events and
// outbox rows to put in it, and SQL run on its file through a connection of its own.
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

namespace store_test {

using stanzad::OutboxEntry;
using stanzad::Store;

using namespace std::chrono_literals;

using stanzad::test::TempDir;

inline std::unique_ptr<Store> open_store(const std::string& path) {
    auto s = Store::open(path);
    INFO((s ? std::string() : s.error().message));
    REQUIRE(s);
    return std::move(s).value();
}

inline model::Event message(const std::string& body, const std::string& msg_id = "m") {
    model::Message m;
    m.from = "bob@example.org/phone";
    m.to = "alice@example.org/stanzad";
    m.body = body;
    m.msg_id = msg_id;
    return model::Event{0, "home", "", m};
}

inline model::Event state_event(const std::string& msg_id, const std::string& state, const std::string& error = "") {
    return model::Event{0, "home", "", model::MessageState{msg_id, model::parse_delivery(state).value(), error}};
}

inline OutboxEntry entry(const std::string& msg_id, const std::string& account = "home") {
    OutboxEntry e;
    e.account = account;
    e.msg_id = msg_id;
    e.to = "bob@example.org";
    e.type = "chat";
    e.body = "hi " + msg_id;
    return e;
}

inline std::vector<model::Seq> seqs(Store& store, model::Seq after = 0, std::size_t limit = 1000) {
    auto events = store.events_after(after, limit);
    REQUIRE(events);
    std::vector<model::Seq> out;
    for (const auto& e : events.value()) out.push_back(e.seq);
    return out;
}

// Runs SQL on the store's file through a connection of its own (not through Store).
inline void raw_exec(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    INFO((err ? err : ""));
    sqlite3_free(err);
    sqlite3_close(db);
    REQUIRE(rc == SQLITE_OK);
}

inline std::string raw_query(const std::string& path, const std::string& sql) {
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
inline std::string query_plan(const std::string& path, const std::string& sql) {
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

inline const auto far_future = std::chrono::system_clock::now() + 24h * 365;

}  // namespace store_test
