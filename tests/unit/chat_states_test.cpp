// The IM core's chat-state rule (protocol/im/chat_states, XEP-0085 §5.1).
#include <catch2/catch.hpp>

#include "protocol/im/chat_states.hpp"

using xmpp::im::ChatStates;

TEST_CASE("chat states: sent until the contact replies without one, then again once it sends one") {
    ChatStates c;
    CHECK(c.wanted("bob@example.org"));                  // before any reply: <active/> goes out
    c.received("bob@example.org", false, "");            // a message without content says nothing
    CHECK(c.wanted("bob@example.org"));
    c.received("bob@example.org", true, "");             // a reply without a chat state: stop
    CHECK_FALSE(c.wanted("bob@example.org"));
    CHECK(c.wanted("carol@example.org"));                // per contact
    c.received("bob@example.org", false, "composing");   // a standalone notification: it wants them
    CHECK(c.wanted("bob@example.org"));
    c.received("bob@example.org", true, "");
    CHECK_FALSE(c.wanted("bob@example.org"));
    c.received("bob@example.org", true, "active");        // a reply with one
    CHECK(c.wanted("bob@example.org"));
}

TEST_CASE("chat states: the contacts remembered are bounded, the oldest forgotten first") {
    ChatStates c;
    for (std::size_t i = 0; i <= ChatStates::max_refusing; ++i) c.received("u" + std::to_string(i) + "@x", true, "");
    CHECK(c.wanted("u0@x"));  // the first one was forgotten: it gets <active/> again
    CHECK_FALSE(c.wanted("u1@x"));
    CHECK_FALSE(c.wanted("u" + std::to_string(ChatStates::max_refusing) + "@x"));
}
