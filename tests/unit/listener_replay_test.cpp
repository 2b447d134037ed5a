// Listener (daemon/listener.hpp): the replay of stored events with backpressure (issue 13).
// A client that reads slowly is given another page only while little waits to be written
// to it, and pages end by bytes as well as by count: however long the backlog, what waits
// for the client stays bounded, it is never dropped for a backlog the replay made, and it
// gets every stored event exactly once, in order. The client is a plain socket that the
// test reads a little at a time between turns of the loop.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>

#include "daemon/group_commit.hpp"
#include "daemon/listener.hpp"
#include "daemon/log.hpp"
#include "daemon/store.hpp"
#include "daemon/uv.hpp"
#include "temp_dir.hpp"

using stanzad::Listener;
using stanzad::Store;

namespace {

// A front end whose session writes one line per replayed event: "<seq> <body>".
class LineClient final : public Listener::Client {
public:
    LineClient(Listener& listener, uv_stream_t* stream, int number, std::size_t& most_waiting, bool& done)
        : Client(listener, stream, number), most_waiting_(most_waiting), done_(done) {}
    void received(std::string_view) override {}
    std::string take_output() override {
        // What will wait to be written once this is: the most the client ever costs us.
        most_waiting_ = std::max(most_waiting_, uv::queued(stream()) + out_.size());
        return std::exchange(out_, {});
    }
    void replay_event(const model::Event& e) override {
        out_ += std::to_string(e.seq) + " " + std::get<model::Message>(e.body).body + "\n";
    }
    void replay_done() override { done_ = true; }
    std::string who() const override { return "slow reader"; }
    void opened() override {
        listener_.start_reading(*this);
        listener_.start_replay(*this, 0);
    }

private:
    std::string out_;
    std::size_t& most_waiting_;
    bool& done_;
};

// A front end whose session gathers its replay and writes it at the end, as IRC's does (one
// batch per conversation): it never has anything waiting while it replays.
class GatheringClient final : public Listener::Client {
public:
    GatheringClient(Listener& listener, uv_stream_t* stream, int number, std::size_t& first_turn, bool& done)
        : Client(listener, stream, number), first_turn_(first_turn), done_(done) {}
    void received(std::string_view) override {}
    std::string take_output() override { return done_ ? std::exchange(out_, {}) : std::string(); }
    void replay_event(const model::Event& e) override {
        ++replayed_;
        gathered_ += std::to_string(e.seq) + "\n";
    }
    void replay_done() override {
        done_ = true;
        out_ = std::exchange(gathered_, {});
    }
    std::string who() const override { return "gathering"; }
    void opened() override {
        listener_.start_reading(*this);
        listener_.start_replay(*this, 0);
        first_turn_ = replayed_;  // what the replay did before it gave the loop back
    }

private:
    std::string gathered_, out_;
    std::size_t replayed_ = 0;
    std::size_t& first_turn_;
    bool& done_;
};

// `count` messages from bob, stored in one batch; `body(i)` is the i-th one's body (from 1).
void store_messages(Store& store, int count, const std::function<std::string(int)>& body) {
    store.begin_batch();
    for (int i = 1; i <= count; ++i) {
        model::Message m;
        m.from = "bob@example.org/phone";
        m.to = "alice@example.org/stanzad";
        m.msg_id = "m" + std::to_string(i);
        m.body = body(i);
        model::Event e{0, "home", "", m};
        REQUIRE(store.append(e));
    }
    REQUIRE(store.end_batch());
    REQUIRE(store.last_seq() == count);
}

int connect_unix(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    return fd;
}

}  // namespace

TEST_CASE("listener: a slow reader gets a long replay a page at a time, bounded, and is not dropped", "[listener]") {
    logs::init("off");  // the listener logs connects and drops
    stanzad::test::TempDir dir;
    auto opened = Store::open(dir.store());
    REQUIRE(opened);
    Store& store = *opened.value();

    // 1,500 messages of 10 KiB: 15 MiB, far more than the 4 MiB the client may have waiting
    // before it is dropped, and one page of 500 of them by count alone would be 5 MiB.
    constexpr int count = 1500;
    constexpr std::size_t body_size = 10 * 1024, max_backlog = 4 << 20;
    store_messages(store, count, [&](int i) { return std::string(body_size, static_cast<char>('a' + i % 26)); });

    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    std::size_t most_waiting = 0;
    bool done = false;
    {
        stanzad::GroupCommit group_commit(&loop, store);  // as in the daemon: writes may wait for a commit
        Listener listener(&loop, store, Listener::Settings{"test", max_backlog},
                          [&](Listener& l, uv_stream_t* stream, int number) {
                              return std::make_unique<LineClient>(l, stream, number, most_waiting, done);
                          });
        const std::string path = dir.path() + "/replay.sock";
        REQUIRE(listener.listen_unix(path));
        const int fd = connect_unix(path);

        // Read 16 KiB, then give the loop a few turns; until the replay is done and read.
        std::string got;
        bool eof = false;
        char buf[16384];
        while (!eof && !(done && got.size() >= count * (body_size + 2))) {
            for (int i = 0; i < 4; ++i) uv_run(&loop, UV_RUN_NOWAIT);
            ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0) eof = true;
            if (n > 0) got.append(buf, static_cast<std::size_t>(n));
        }
        // Whatever is still on its way.
        for (;;) {
            uv_run(&loop, UV_RUN_NOWAIT);
            ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n <= 0) break;
            got.append(buf, static_cast<std::size_t>(n));
        }

        CHECK_FALSE(eof);  // not dropped
        CHECK(listener.client_count() == 1);
        CHECK(done);
        // Every event once, in order, whole.
        std::size_t at = 0;
        int expected = 1, bad = 0;
        while (at < got.size()) {
            auto nl = got.find('\n', at);
            if (nl == std::string::npos) break;
            std::string line = got.substr(at, nl - at);
            auto space = line.find(' ');
            if (space == std::string::npos || line.substr(0, space) != std::to_string(expected) ||
                line.size() - space - 1 != body_size || line[space + 1] != static_cast<char>('a' + expected % 26))
                ++bad;
            ++expected;
            at = nl + 1;
        }
        CHECK(bad == 0);
        CHECK(expected - 1 == count);
        CHECK(at == got.size());
        // Bounded: the high water, one page by bytes and one event more, never the backlog.
        INFO("most waiting: " << most_waiting << " bytes");
        CHECK(most_waiting <= listener.replay_high_water() + listener.replay_page_bytes() + 2 * (body_size + 16));
        CHECK(most_waiting < max_backlog / 2);
        ::close(fd);
        listener.close();
    }
    uv_run(&loop, UV_RUN_DEFAULT);  // the closes
    CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("listener: a long replay gives the loop back after a few pages, even when nothing waits to be written",
          "[listener]") {
    logs::init("off");
    stanzad::test::TempDir dir;
    auto opened = Store::open(dir.store());
    REQUIRE(opened);
    Store& store = *opened.value();
    constexpr int count = 5000;  // ten pages of 500
    store_messages(store, count, [](int i) { return "m" + std::to_string(i); });

    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    std::size_t first_turn = 0;
    bool done = false;
    {
        stanzad::GroupCommit group_commit(&loop, store);
        Listener listener(&loop, store, Listener::Settings{"test", 16 << 20},
                          [&](Listener& l, uv_stream_t* stream, int number) {
                              return std::make_unique<GatheringClient>(l, stream, number, first_turn, done);
                          });
        const std::string path = dir.path() + "/gather.sock";
        REQUIRE(listener.listen_unix(path));
        const int fd = connect_unix(path);
        std::string expected;
        for (int i = 1; i <= count; ++i) expected += std::to_string(i) + "\n";
        std::string got;
        char buf[16384];
        while (got.size() < expected.size()) {
            uv_run(&loop, UV_RUN_NOWAIT);
            ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n == 0) break;  // dropped
            if (n > 0) got.append(buf, static_cast<std::size_t>(n));
        }
        // The first turn read a few pages, not the whole backlog...
        CHECK(first_turn > 0);
        CHECK(first_turn < static_cast<std::size_t>(count));
        // ...and the rest came on later turns, every event once, in order.
        CHECK(done);
        CHECK(got == expected);
        ::close(fd);
        listener.close();
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
}
