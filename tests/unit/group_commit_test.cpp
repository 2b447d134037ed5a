// GroupCommit (daemon/group_commit.hpp): socket writes made while a Scope is open wait for
// the commit, leave in order for each socket, and as one write per socket where the order
// allows (issue 15: a reply, a stanza to the server and an event for the same client were
// two writes to that client). The sockets are SOCK_SEQPACKET pairs, which keep the boundary
// of every write(2), so the test reads how many writes each socket got.
#include <catch2/catch.hpp>

#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <string>
#include <vector>

#include "daemon/group_commit.hpp"
#include "daemon/store.hpp"
#include "daemon/uv.hpp"
#include "temp_dir.hpp"

using stanzad::GroupCommit;
using stanzad::Store;

namespace {

// One end of a socket pair as a libuv stream, the other end read directly.
struct Pair {
    uv_pipe_t pipe{};
    int peer = -1;
    Pair(uv_loop_t* loop) {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds) == 0);
        REQUIRE(uv_pipe_init(loop, &pipe, 0) == 0);
        REQUIRE(uv_pipe_open(&pipe, fds[0]) == 0);
        peer = fds[1];
    }
    uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&pipe); }
    // Every write that has arrived, one string each; none waiting: empty.
    std::vector<std::string> writes() const {
        std::vector<std::string> out;
        char buf[4096];
        for (;;) {
            ssize_t n = ::recv(peer, buf, sizeof buf, MSG_DONTWAIT);
            if (n <= 0) break;
            out.emplace_back(buf, static_cast<std::size_t>(n));
        }
        return out;
    }
};

}  // namespace

TEST_CASE("group commit: writes wait for the commit, then leave as one write per socket", "[group_commit]") {
    stanzad::test::TempDir dir;
    auto store = Store::open(dir.store());
    REQUIRE(store);
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    {
        GroupCommit gc(&loop, *store.value());
        Pair client(&loop), server(&loop);
        std::vector<std::string> seen_by_action;
        {
            GroupCommit::Scope scope(&loop);
            // What a `send` makes: the reply, the stanza, the "sent" event, for two sockets.
            uv::write(client.stream(), "reply\n");
            uv::write(server.stream(), "<message/>");
            uv::write(client.stream(), "event\n");
            uv::write(server.stream(), "<r/>");
            // An action (a shutdown, say) comes after what was written before it...
            uv::after_writes(&loop, [&] { seen_by_action = client.writes(); });
            // ...so what is written after it is not moved before it.
            uv::write(client.stream(), "late\n");
            CHECK(gc.held_bytes(client.stream()) == 17);
            CHECK(client.writes().empty());  // nothing leaves before the commit
            CHECK(server.writes().empty());
        }
        CHECK(seen_by_action == std::vector<std::string>{"reply\nevent\n"});
        CHECK(server.writes() == std::vector<std::string>{"<message/><r/>"});
        CHECK(client.writes() == std::vector<std::string>{"late\n"});

        // Outside a scope a write leaves at once.
        uv::write(client.stream(), "now\n");
        CHECK(client.writes() == std::vector<std::string>{"now\n"});

        for (Pair* p : {&client, &server}) {
            uv_close(reinterpret_cast<uv_handle_t*>(&p->pipe), nullptr);
            ::close(p->peer);
        }
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    CHECK(uv_loop_close(&loop) == 0);
}

// Store::set_cursor_later (issue 15: IRC's PONG moved its client's cursor in a commit, an
// fsync, of its own): a read that only moves such a cursor commits nothing; the cursor rides
// in the next commit, or is written a second later in one of its own.
TEST_CASE("group commit: a cursor to write later commits nothing itself, and is on disk a second later",
          "[group_commit]") {
    stanzad::test::TempDir dir;
    auto opened = Store::open(dir.store());
    REQUIRE(opened);
    Store& store = *opened.value();
    model::Event e{0, "home", "", model::Message{}};
    REQUIRE(store.append(e));
    auto on_disk = [&] {
        sqlite3* db = nullptr;  // another connection: it sees only what was committed
        REQUIRE(sqlite3_open_v2(dir.store().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
        sqlite3_stmt* s = nullptr;
        REQUIRE(sqlite3_prepare_v2(db, "SELECT coalesce(max(seq), -1) FROM cursors WHERE client = 'irc'", -1, &s,
                                   nullptr) == SQLITE_OK);
        REQUIRE(sqlite3_step(s) == SQLITE_ROW);
        const auto seq = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        sqlite3_close(db);
        return seq;
    };
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    {
        GroupCommit gc(&loop, store);
        const auto commits = store.commits();
        {
            GroupCommit::Scope scope(&loop);
            REQUIRE(store.set_cursor_later("irc", 1));
        }
        CHECK(store.commits() == commits);  // no commit of its own
        CHECK(on_disk() == -1);
        CHECK(store.cursor("irc").value() == 1);  // seen at once
        // The loop turns until the timer wrote it (a referenced timer keeps the loop alive).
        uv_timer_t keep{};
        uv_timer_init(&loop, &keep);
        uv_timer_start(&keep, [](uv_timer_t*) {}, 10'000, 0);
        const auto start = uv_now(&loop);
        while (on_disk() != 1 && uv_now(&loop) - start < 5'000) uv_run(&loop, UV_RUN_ONCE);
        CHECK(on_disk() == 1);
        CHECK(store.commits() == commits + 1);
        CHECK_FALSE(store.writes_later());
        uv_close(reinterpret_cast<uv_handle_t*>(&keep), nullptr);
    }
    uv_run(&loop, UV_RUN_DEFAULT);  // the timer's close, and its free
    CHECK(uv_loop_close(&loop) == 0);
}

// GroupCommit::before_commit (XmppConnection: the stanzas of a batch encrypted together): a
// function runs once, when the outermost Scope closes and before the commit; what it writes
// is held with the rest, after what was held before it on the same socket, and what it
// stores is in the same commit. One registered from inside another runs too.
TEST_CASE("group commit: work left for the batch's end runs before its commit, its writes held in order",
          "[group_commit]") {
    stanzad::test::TempDir dir;
    auto store = Store::open(dir.store());
    REQUIRE(store);
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    {
        GroupCommit gc(&loop, *store.value());
        Pair server(&loop);
        const auto commits = store.value()->commits();
        std::vector<std::string> order;
        {
            GroupCommit::Scope scope(&loop);
            uv::write(server.stream(), "<a/>");
            gc.before_commit([&] {
                order.push_back("first");
                CHECK(gc.holding());
                uv::write(server.stream(), "<message id='1'/><message id='2'/>");
                model::Event e{0, "home", "", model::Presence{"bob@example.org", true, "", "", 0}};
                REQUIRE(store.value()->append(e));
                gc.before_commit([&] { order.push_back("second"); });
            });
            {
                GroupCommit::Scope inner(&loop);  // an inner scope's end runs nothing
            }
            CHECK(order.empty());
            CHECK(server.writes().empty());
        }
        CHECK(order == std::vector<std::string>{"first", "second"});
        CHECK(server.writes() == std::vector<std::string>{"<a/><message id='1'/><message id='2'/>"});
        CHECK(store.value()->commits() == commits + 1);  // the event went in the batch's one commit
        {
            GroupCommit::Scope scope(&loop);  // nothing is left over for the next batch
        }
        CHECK(order.size() == 2);
        gc.before_commit([&] { order.push_back("outside"); });  // no batch: at once
        CHECK(order.size() == 3);

        uv_close(reinterpret_cast<uv_handle_t*>(&server.pipe), nullptr);
        ::close(server.peer);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    CHECK(uv_loop_close(&loop) == 0);
}
