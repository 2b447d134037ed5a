// GroupCommit (daemon/group_commit.hpp): socket writes made while a Scope is open wait for
// the commit, leave in order for each socket, and as one write per socket where the order
// allows (issue 15: a reply, a stanza to the server and an event for the same client were
// two writes to that client). The sockets are SOCK_SEQPACKET pairs, which keep the boundary
// of every write(2), so the test reads how many writes each socket got.
#include <catch2/catch.hpp>

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
