// The IRC session's replay after a reconnect (chathistory batches, the cursor acked on
// a PONG, the byte bound) and its CHATHISTORY queries of the store.
#include <catch2/catch.hpp>

#include "irc_session_fixture.hpp"

using namespace irc;
using namespace irc_test;

TEST_CASE("irc: replay in chathistory batches, cursor acked on the PONG after it") {
    Fixture f;
    f.daemon.cursor = 3;
    f.register_with("batch server-time message-tags", true);
    REQUIRE(f.session.replay_after() == std::optional<model::Seq>(3));
    f.session.replay_event(f.message(4, "bob@example.org/phone", "missed one"));
    f.session.replay_event(model::Event{5, "home", "", model::MessageState{"x", model::Delivery::Acked, ""}});
    f.session.replay_event(f.message(6, "bob@example.org/phone", "missed two"));
    // A live message while replaying is left to the replay.
    f.session.event(f.message(6, "bob@example.org/phone", "missed two"));
    f.session.replay_end();
    auto out = lines_of(f.session.take_output());
    REQUIRE(out.size() == 5);
    CHECK(out[0].starts_with(":stanzad BATCH +"));
    CHECK(out[0].ends_with(" chathistory bob"));
    CHECK(out[1].find("missed one") != std::string::npos);
    CHECK(out[1].find(";batch=") != std::string::npos);
    CHECK(out[2].find("missed two") != std::string::npos);
    CHECK(out[3].starts_with(":stanzad BATCH -"));
    CHECK(out[4] == ":stanzad PING replay-6");
    CHECK(f.daemon.sent<model::Ack>().empty());
    f.feed("PONG stanzad :replay-6\r\n");
    REQUIRE(f.daemon.sent<model::Ack>().size() == 1);
    CHECK(f.daemon.sent<model::Ack>()[0].seq == 6);
    CHECK_FALSE(f.daemon.sent<model::Ack>()[0].durable);  // at least once: rides in the next commit
}

TEST_CASE("irc: a replay is bounded in bytes: the newest are shown, the rest announced, all acked") {
    // 200 messages of 60 KiB are 12 MiB of bodies: written at once, they would go over the
    // listener's 16 MiB backlog with the IRC framing and get the client dropped, for good.
    Fixture f;
    f.daemon.cursor = 1;
    f.register_with("batch server-time message-tags", true);
    const std::string big(60 * 1024, 'x');
    constexpr int n = 200;
    for (int i = 0; i < n; ++i)
        f.session.replay_event(f.message(2 + i, "bob@example.org/phone", "start-" + std::to_string(i) + " " + big));
    f.session.replay_end();
    std::string written = f.session.take_output();
    CHECK(written.size() < 2 * Session::max_replay_bytes);
    auto out = lines_of(written);
    // The newest is there, the oldest is not, and the control channel says how many were left.
    CHECK(any_line(out, "start-" + std::to_string(n - 1) + " "));
    CHECK_FALSE(any_line(out, "start-0 "));
    std::size_t kept = Session::max_replay_bytes / (big.size() + 256);
    CHECK(any_line(out, std::to_string(n - kept) + " older message(s) not replayed"));
    // The cursor still moves past all of them on the PONG: nothing waits to be replayed again.
    CHECK(any_line(out, "PING replay-" + std::to_string(1 + n)));
    f.feed("PONG stanzad :replay-" + std::to_string(1 + n) + "\r\n");
    REQUIRE(f.daemon.sent<model::Ack>().size() == 1);
    CHECK(f.daemon.sent<model::Ack>()[0].seq == 1 + n);
}

TEST_CASE("irc: without server-time a replay has [HH:MM]; with draft/chathistory none at all") {
    Fixture fresh;  // a client name never seen: it starts from now, and is recorded at once
    fresh.daemon.cursor = 0;
    fresh.register_with("", true);
    CHECK_FALSE(fresh.session.replay_after());
    REQUIRE(fresh.daemon.sent<model::Ack>().size() == 1);
    CHECK(fresh.daemon.sent<model::Ack>()[0].durable);  // the name is recorded on disk at once

    Fixture plain;
    plain.daemon.cursor = 1;
    plain.register_with("", true);
    plain.session.replay_event(plain.message(2, "bob@example.org/phone", "old"));
    plain.session.replay_end();
    auto out = lines_of(plain.session.take_output());
    CHECK(any_line(out, "PRIVMSG al :[12:34] old"));
    CHECK_FALSE(any_line(out, "BATCH"));

    Fixture asks;
    asks.daemon.cursor = 1;
    asks.register_with("draft/chathistory batch");
    CHECK_FALSE(asks.session.replay_after());
}

TEST_CASE("irc: CHATHISTORY asks the store and answers in a batch; bad ones FAIL") {
    Fixture f;
    f.register_with("draft/chathistory batch server-time");
    f.feed("CHATHISTORY LATEST bob * 10\r\n");
    auto q = f.daemon.sent<model::StoredMessages>();
    REQUIRE(q.size() == 1);
    CHECK(q[0].peer == "bob@example.org");
    CHECK(q[0].newest);
    CHECK(q[0].limit == 10);
    f.feed("CHATHISTORY BEFORE bob timestamp=2026-11-25T12:00:00.000Z 5\r\n");
    q = f.daemon.sent<model::StoredMessages>();
    CHECK(q.back().before_stamp == "2026-11-25T12:00:00.000Z");
    auto out = f.feed("CHATHISTORY LATEST nobody * 10\r\n");
    CHECK(any_line(out, "FAIL CHATHISTORY INVALID_TARGET"));
    out = f.feed("CHATHISTORY BEFORE bob yesterday 10\r\n");
    CHECK(any_line(out, "FAIL CHATHISTORY INVALID_PARAMS"));
}
