// The store's VFS (daemon/store_vfs.hpp): a commit's WAL frames leave in one write, and
// SQLite's guarantees hold: other connections see every commit, a transaction larger than
// the page cache reads its own frames back, and a crash loses only what was not committed.
#include <catch2/catch.hpp>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "daemon/store_vfs.hpp"
#include "temp_dir.hpp"

namespace {

using stanzad::test::TempDir;

// Write syscalls made by this process so far (write, pwrite64, ...): proc(5), /proc/PID/io.
std::int64_t write_syscalls() {
    std::ifstream io("/proc/self/io");
    std::string key;
    std::int64_t value = 0;
    while (io >> key >> value)
        if (key == "syscw:") return value;
    FAIL("no syscw in /proc/self/io");
    return 0;
}

sqlite3* open_db(const std::string& path, const char* vfs) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs) == SQLITE_OK);
    return db;
}

void exec(sqlite3* db, const std::string& sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    INFO(sql << ": " << (err ? err : ""));
    sqlite3_free(err);
    REQUIRE(rc == SQLITE_OK);
}

std::string text(sqlite3* db, const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    std::string out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
}

// As the store sets up its connection: WAL, a commit synced.
sqlite3* open_store_like(const std::string& path, const char* vfs, int cache_pages = 256) {
    sqlite3* db = open_db(path, vfs);
    CHECK(text(db, "PRAGMA journal_mode = WAL") == "wal");
    exec(db, "PRAGMA synchronous = FULL; PRAGMA cache_size = " + std::to_string(cache_pages));
    exec(db, "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID");
    return db;
}

// One transaction of `rows` rows at random keys: about a page per row. No assertion until
// the end: Catch2 writes to stdout when run with -s, and write_syscalls() would count that.
void insert_rows(sqlite3* db, int from, int rows) {
    bool ok = sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr) == SQLITE_OK;
    for (int i = from; i < from + rows; ++i) {
        std::string sql = "INSERT INTO t VALUES (hex(randomblob(16)) || '" + std::to_string(i) + "', hex(randomblob(400)))";
        ok = ok && sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
    }
    ok = ok && sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK;
    REQUIRE(ok);
}

}  // namespace

TEST_CASE("store VFS: a commit's WAL frames leave in one write, where the system VFS makes two per page", "[store][vfs]") {
    const char* vfs = stanzad::store_detail::buffered_wal_vfs();
    REQUIRE(vfs != nullptr);
    TempDir dir;
    sqlite3* plain = open_store_like(dir.path() + "/plain.db", nullptr);
    sqlite3* buffered = open_store_like(dir.path() + "/buffered.db", vfs);
    insert_rows(plain, 0, 200);  // a B-tree of some depth in both
    insert_rows(buffered, 0, 200);

    auto writes_of = [](sqlite3* db) {
        std::int64_t before = write_syscalls();
        bool ok = sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr) == SQLITE_OK;
        for (int i = 200; i < 210; ++i) {
            std::string sql = "INSERT INTO t VALUES (hex(randomblob(16)) || '" + std::to_string(i) + "', hex(randomblob(400)))";
            ok = ok && sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
        }
        ok = ok && sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK;
        std::int64_t writes = write_syscalls() - before;
        REQUIRE(ok);
        return writes;
    };
    std::int64_t plain_writes = writes_of(plain);
    std::int64_t buffered_writes = writes_of(buffered);

    INFO("system VFS " << plain_writes << " writes, buffered " << buffered_writes);
    CHECK(plain_writes >= 20);    // two per frame, a frame per changed page
    CHECK(buffered_writes <= 2);  // the frames in one write, two past 120 KiB

    // Another connection, through the system VFS, sees every row of both.
    sqlite3* reader = open_db(dir.path() + "/buffered.db", nullptr);
    CHECK(text(reader, "SELECT count(*) FROM t") == "210");
    sqlite3_close(reader);
    sqlite3_close(plain);
    sqlite3_close(buffered);
}

TEST_CASE("store VFS: a transaction larger than the page cache reads its own frames back", "[store][vfs]") {
    TempDir dir;
    const std::string path = dir.path() + "/big.db";
    sqlite3* db = open_store_like(path, stanzad::store_detail::buffered_wal_vfs(), 10);
    exec(db, "BEGIN");
    for (int i = 0; i < 2000; ++i)
        exec(db, "INSERT INTO t VALUES ('" + std::to_string(i) + "', hex(randomblob(200)))");
    // Ten pages of cache for hundreds of pages: they went to the WAL uncommitted, and are read back.
    CHECK(text(db, "SELECT count(*) FROM t") == "2000");
    CHECK(text(db, "SELECT sum(length(v)) FROM t") == "800000");
    exec(db, "COMMIT");
    CHECK(text(db, "PRAGMA integrity_check") == "ok");
    sqlite3* reader = open_db(path, nullptr);
    CHECK(text(reader, "SELECT count(*) FROM t") == "2000");
    CHECK(text(reader, "PRAGMA integrity_check") == "ok");
    sqlite3_close(reader);
    // A checkpoint copies the frames into the database and starts the WAL over.
    CHECK(text(db, "PRAGMA wal_checkpoint(TRUNCATE)") == "0");
    insert_rows(db, 5000, 10);
    CHECK(text(db, "SELECT count(*) FROM t") == "2010");
    sqlite3_close(db);
}

TEST_CASE("store VFS: killed in the middle of a transaction, only the commits are kept", "[store][vfs]") {
    TempDir dir;
    const std::string path = dir.path() + "/crash.db";
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // No Catch2 in here: plain SQLite, then SIGKILL with frames still in memory.
        sqlite3* db = nullptr;
        if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                            stanzad::store_detail::buffered_wal_vfs()) != SQLITE_OK)
            ::_exit(2);
        const char* setup =
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = 10;"
            "CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;"
            "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)"
            " INSERT INTO t SELECT 'kept' || i, hex(randomblob(300)) FROM n; COMMIT;"
            "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)"
            " INSERT INTO t SELECT 'lost' || i, hex(randomblob(300)) FROM n;";
        if (sqlite3_exec(db, setup, nullptr, nullptr, nullptr) != SQLITE_OK) ::_exit(3);
        ::kill(::getpid(), SIGKILL);
        ::_exit(4);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
    sqlite3* db = open_db(path, stanzad::store_detail::buffered_wal_vfs());
    CHECK(text(db, "PRAGMA integrity_check") == "ok");
    CHECK(text(db, "SELECT count(*) FROM t WHERE k LIKE 'kept%'") == "100");
    CHECK(text(db, "SELECT count(*) FROM t WHERE k LIKE 'lost%'") == "0");
    sqlite3_close(db);
}
