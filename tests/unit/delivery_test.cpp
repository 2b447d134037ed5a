// The IM core's message states (protocol/im/delivery): forward only, failed is final, and
// only the recipient (or a server on the way) may report what became of a message.
#include <catch2/catch.hpp>

#include "protocol/im/delivery.hpp"

using namespace xmpp::im;

TEST_CASE("delivery: states move forward only, and failed is final") {
    CHECK(may_advance(Delivery::Accepted, Delivery::Sent));
    CHECK(may_advance(Delivery::Sent, Delivery::Acked));
    CHECK(may_advance(Delivery::Sent, Delivery::Displayed));  // a marker may overtake the receipt
    CHECK_FALSE(may_advance(Delivery::Delivered, Delivery::Acked));  // a late ack changes nothing
    CHECK_FALSE(may_advance(Delivery::Acked, Delivery::Acked));
    CHECK(may_advance(Delivery::Displayed, Delivery::Failed));  // an error may still come
    for (auto next : {Delivery::Accepted, Delivery::Sent, Delivery::Acked, Delivery::Delivered, Delivery::Displayed,
                      Delivery::Failed})
        CHECK_FALSE(may_advance(Delivery::Failed, next));
}

TEST_CASE("delivery: the names are the store's and the JSON protocol's") {
    for (auto s : {Delivery::Accepted, Delivery::Sent, Delivery::Acked, Delivery::Delivered, Delivery::Displayed,
                   Delivery::Failed})
        CHECK(parse_delivery(to_string(s)) == s);
    CHECK(to_string(Delivery::Acked) == "acked");
    CHECK_FALSE(parse_delivery("read"));
    CHECK_FALSE(parse_delivery(""));
}

TEST_CASE("delivery: only the recipient or a server on the way may report") {
    constexpr const char* own = "example.org";
    CHECK(may_report("bob@example.net/phone", "bob@example.net", own));     // the recipient
    CHECK(may_report("bob@example.net", "bob@example.net/laptop", own));    // any resource of it
    CHECK(may_report("example.net", "bob@example.net", own));               // its server
    CHECK(may_report("example.org", "bob@example.net", own));               // ours
    CHECK_FALSE(may_report("mallory@example.net", "bob@example.net", own)); // someone who learnt the id
    CHECK_FALSE(may_report("room@conference.example.net/bob", "bob@example.net", own));
    CHECK_FALSE(may_report("evil.example", "bob@example.net", own));        // another server
    CHECK_FALSE(may_report("not a jid@@", "bob@example.net", own));
}
