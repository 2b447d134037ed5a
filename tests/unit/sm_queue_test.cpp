#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "protocol/sm_queue.hpp"

using xmpp::SmQueue;

namespace {

constexpr std::uint32_t max_u32 = std::numeric_limits<std::uint32_t>::max();  // 2^32-1

std::vector<std::uint32_t> seqs(const std::vector<SmQueue::Entry>& entries) {
    std::vector<std::uint32_t> out;
    for (const auto& e : entries) out.push_back(e.seq);
    return out;
}

std::vector<std::uint32_t> seqs(const std::deque<SmQueue::Entry>& entries) {
    return seqs(std::vector<SmQueue::Entry>(entries.begin(), entries.end()));
}

}  // namespace

TEST_CASE("sm_queue: push counts from 1 and acks in order return the covered stanzas") {
    SmQueue q;
    CHECK(q.head() == 0);
    CHECK(q.tail() == 0);
    CHECK(q.unacked_count() == 0);
    CHECK(q.push("<message id='a'/>", "a") == 1);
    CHECK(q.push("<message id='b'/>", "b") == 2);
    CHECK(q.push("<presence/>") == 3);
    CHECK(q.head() == 3);
    CHECK(q.unacked_count() == 3);

    auto r = q.ack(1);
    REQUIRE(r);
    REQUIRE(r.value().size() == 1);
    CHECK(r.value()[0].seq == 1);
    CHECK(r.value()[0].xml == "<message id='a'/>");
    CHECK(r.value()[0].tag == "a");
    CHECK(q.tail() == 1);
    CHECK(q.unacked_count() == 2);
    CHECK(seqs(q.unacked()) == std::vector<std::uint32_t>{2, 3});

    r = q.ack(3);  // partial acks may skip: h=3 covers 2 and 3
    REQUIRE(r);
    CHECK(seqs(r.value()) == std::vector<std::uint32_t>{2, 3});
    CHECK(r.value()[0].tag == "b");
    CHECK(r.value()[1].tag == "");
    CHECK(r.value()[1].xml == "<presence/>");
    CHECK(q.unacked().empty());
    CHECK(q.unacked_count() == 0);
    CHECK(q.tail() == 3);
    CHECK(q.head() == 3);
}

TEST_CASE("sm_queue: partial acks, then an ack of everything") {
    SmQueue q;
    for (int i = 1; i <= 10; ++i) q.push("<message id='" + std::to_string(i) + "'/>", std::to_string(i));
    auto r = q.ack(4);
    REQUIRE(r);
    CHECK(seqs(r.value()) == std::vector<std::uint32_t>{1, 2, 3, 4});
    CHECK(q.unacked_count() == 6);
    r = q.ack(7);
    REQUIRE(r);
    CHECK(seqs(r.value()) == std::vector<std::uint32_t>{5, 6, 7});
    CHECK(q.unacked().front().tag == "8");
    q.push("<message id='11'/>", "11");
    r = q.ack(11);
    REQUIRE(r);
    CHECK(seqs(r.value()) == std::vector<std::uint32_t>{8, 9, 10, 11});
    CHECK(r.value().back().tag == "11");
    CHECK(q.unacked().empty());
    CHECK(q.unacked_count() == 0);
}

TEST_CASE("sm_queue: a repeated ack with the same h returns nothing") {
    SmQueue q;
    q.push("<a/>");
    q.push("<b/>");
    REQUIRE(q.ack(1));
    auto r = q.ack(1);
    REQUIRE(r);
    CHECK(r.value().empty());
    CHECK(q.unacked_count() == 1);
    CHECK(q.tail() == 1);

    SmQueue fresh;  // nothing sent, nothing acked: h=0 is fine
    auto r0 = fresh.ack(0);
    REQUIRE(r0);
    CHECK(r0.value().empty());
}

TEST_CASE("sm_queue: h behind tail or beyond head is an sm-bad-h error and changes nothing") {
    SmQueue q;
    for (int i = 0; i < 5; ++i) q.push("<s/>", "t" + std::to_string(i));
    REQUIRE(q.ack(2));

    auto check_unchanged = [&] {
        CHECK(q.tail() == 2);
        CHECK(q.head() == 5);
        CHECK(q.unacked_count() == 3);
        CHECK(seqs(q.unacked()) == std::vector<std::uint32_t>{3, 4, 5});
        CHECK(q.unacked().front().tag == "t2");
    };

    SECTION("behind tail") {
        auto r = q.ack(1);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == "sm-bad-h");
        CHECK(r.error().message.find("h=1") != std::string::npos);
        CHECK(r.error().message.find("tail=2") != std::string::npos);
        CHECK(r.error().message.find("head=5") != std::string::npos);
        CHECK(r.error().message.find("behind") != std::string::npos);
        check_unchanged();
    }
    SECTION("beyond head") {
        auto r = q.ack(6);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == "sm-bad-h");
        CHECK(r.error().message.find("h=6") != std::string::npos);
        CHECK(r.error().message.find("tail=2") != std::string::npos);
        CHECK(r.error().message.find("head=5") != std::string::npos);
        CHECK(r.error().message.find("beyond") != std::string::npos);
        check_unchanged();
    }
    SECTION("far beyond head, and 2^32-1 (one behind tail 0 would be the same value)") {
        auto r = q.ack(1000000);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == "sm-bad-h");
        check_unchanged();
        r = q.ack(max_u32);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == "sm-bad-h");
        check_unchanged();
    }
    SECTION("the queue still works after an error") {
        REQUIRE_FALSE(q.ack(9));
        auto r = q.ack(5);
        REQUIRE(r);
        CHECK(seqs(r.value()) == std::vector<std::uint32_t>{3, 4, 5});
        CHECK(q.unacked_count() == 0);
    }
    SECTION("an empty queue rejects any h but the tail") {
        SmQueue empty;
        auto r = empty.ack(1);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == "sm-bad-h");
        CHECK(empty.tail() == 0);
        CHECK(empty.head() == 0);
    }
}

TEST_CASE("sm_queue: counters wrap from 2^32-1 to 0 (XEP-0198 section 4)") {
    SmQueue q(max_u32 - 2);  // the server last acked 2^32-3
    CHECK(q.tail() == max_u32 - 2);
    CHECK(q.head() == max_u32 - 2);
    std::vector<std::uint32_t> pushed;
    for (int i = 0; i < 6; ++i) pushed.push_back(q.push("<s n='" + std::to_string(i) + "'/>", "m" + std::to_string(i)));
    CHECK(pushed == std::vector<std::uint32_t>{max_u32 - 1, max_u32, 0, 1, 2, 3});
    CHECK(q.head() == 3);
    CHECK(q.unacked_count() == 6);

    auto r = q.ack(1);  // past the wrap
    REQUIRE(r);
    CHECK(seqs(r.value()) == std::vector<std::uint32_t>{max_u32 - 1, max_u32, 0, 1});
    CHECK(r.value()[0].tag == "m0");
    CHECK(r.value()[3].tag == "m3");
    CHECK(q.tail() == 1);
    CHECK(q.unacked_count() == 2);
    CHECK(seqs(q.unacked()) == std::vector<std::uint32_t>{2, 3});

    // Across the wrap, "behind tail" and "beyond head" still mean what they say.
    SmQueue w(max_u32 - 2);
    for (int i = 0; i < 6; ++i) w.push("<s/>");
    REQUIRE(w.ack(max_u32));          // tail 2^32-1, head 3
    auto behind = w.ack(max_u32 - 1);
    REQUIRE_FALSE(behind);
    CHECK(behind.error().code == "sm-bad-h");
    CHECK(behind.error().message.find("behind") != std::string::npos);
    auto beyond = w.ack(4);
    REQUIRE_FALSE(beyond);
    CHECK(beyond.error().message.find("beyond") != std::string::npos);
    CHECK(w.unacked_count() == 4);
    auto rest = w.ack(3);
    REQUIRE(rest);
    CHECK(seqs(rest.value()) == std::vector<std::uint32_t>{0, 1, 2, 3});
}

TEST_CASE("sm_queue: long sessions of pushes and acks across the wrap keep the count right") {
    // A second crossing within one queue would take 2^32 pushes, so the counter crosses the
    // wrap twice over two sessions, each started just below it through the constructor.
    for (std::uint32_t start : {max_u32 - 1500, max_u32 - 7}) {
        INFO("start " << start);
        SmQueue q(start);
        std::uint32_t expected_next = start + 1;
        std::uint32_t pending = 0;
        int crossings = 0;
        std::uint32_t last_head = q.head();
        for (int round = 0; round < 4000; ++round) {
            int pushes = 1 + round % 7;
            for (int i = 0; i < pushes; ++i) {
                std::uint32_t s = q.push("<m/>", std::to_string(round));
                REQUIRE(s == expected_next);
                ++expected_next;
                ++pending;
            }
            if (q.head() < last_head) ++crossings;
            last_head = q.head();
            REQUIRE(q.unacked_count() == pending);
            REQUIRE(q.unacked().size() == pending);
            // Ack all but a few: sometimes everything, sometimes nothing new.
            std::uint32_t keep = static_cast<std::uint32_t>(round % 5);
            if (keep > pending) keep = pending;
            std::uint32_t h = q.head() - keep;
            std::uint32_t old_tail = q.tail();
            auto r = q.ack(h);
            REQUIRE(r);
            REQUIRE(r.value().size() == pending - keep);
            for (std::size_t i = 0; i < r.value().size(); ++i)
                REQUIRE(r.value()[i].seq == static_cast<std::uint32_t>(old_tail + 1 + i));
            pending = keep;
            REQUIRE(q.tail() == h);
            REQUIRE(q.unacked_count() == pending);
            if (!q.unacked().empty()) REQUIRE(q.unacked().front().seq == static_cast<std::uint32_t>(h + 1));
        }
        CHECK(crossings == 1);
        CHECK(q.head() == static_cast<std::uint32_t>(start + 15994));  // 571 cycles of 1..7 pushes, then 1+2+3
    }
}

TEST_CASE("sm_queue: after a restart, a queue built from the server's h gives resent stanzas their old seqs") {
    SmQueue q(max_u32 - 100);
    for (int i = 0; i < 300; ++i) q.push("<m/>", std::to_string(i));
    REQUIRE(q.ack(150));  // across the wrap: head 199, tail 150
    CHECK(q.unacked_count() == 49);
    auto rest = q.take_unacked();
    REQUIRE(rest.size() == 49);
    SmQueue restarted(150);
    for (auto& e : rest) CHECK(restarted.push(e.xml, e.tag) == e.seq);
    CHECK(restarted.head() == 199);
    CHECK(restarted.unacked().front().tag == rest.front().tag);
    CHECK(restarted.unacked().back().tag == "299");
}

TEST_CASE("sm_queue: the inbound counter wraps from 2^32-1 to 0") {
    SmQueue q;
    CHECK(q.inbound() == 0);
    q.count_inbound();
    q.count_inbound();
    CHECK(q.inbound() == 2);
    q.set_inbound(max_u32 - 1);
    q.count_inbound();
    CHECK(q.inbound() == max_u32);
    q.count_inbound();
    CHECK(q.inbound() == 0);
    q.count_inbound();
    CHECK(q.inbound() == 1);
    CHECK(q.head() == 0);  // inbound and outbound counters are independent
}

TEST_CASE("sm_queue: take_unacked returns the entries in order and resets the counters") {
    SmQueue q(40);
    q.push("<message id='x'/>", "x");
    q.push("<iq id='y'/>", "");
    q.push("<message id='z'/>", "z");
    q.count_inbound();
    REQUIRE(q.ack(41));
    auto taken = q.take_unacked();
    REQUIRE(taken.size() == 2);
    CHECK(taken[0].seq == 42);
    CHECK(taken[0].xml == "<iq id='y'/>");
    CHECK(taken[0].tag == "");
    CHECK(taken[1].seq == 43);
    CHECK(taken[1].xml == "<message id='z'/>");
    CHECK(taken[1].tag == "z");
    CHECK(q.unacked().empty());
    CHECK(q.head() == 0);
    CHECK(q.tail() == 0);
    CHECK(q.unacked_count() == 0);
    CHECK(q.inbound() == 0);
    CHECK(q.take_unacked().empty());
    // A new session counts from 1 again.
    CHECK(q.push("<message id='z'/>", "z") == 1);
    auto r = q.ack(1);
    REQUIRE(r);
    CHECK(r.value()[0].tag == "z");
}

TEST_CASE("sm_queue: tags and xml survive push, ack and take_unacked") {
    SmQueue q;
    std::string big(10000, 'x');
    q.push(big, "msg-1");
    q.push("<message/>", "msg-2");
    q.push("<message/>", "msg-3");
    CHECK(q.unacked()[1].tag == "msg-2");
    auto r = q.ack(1);
    REQUIRE(r);
    CHECK(r.value()[0].xml == big);
    CHECK(r.value()[0].tag == "msg-1");
    auto rest = q.take_unacked();
    REQUIRE(rest.size() == 2);
    CHECK(rest[0].tag == "msg-2");
    CHECK(rest[1].tag == "msg-3");
}
