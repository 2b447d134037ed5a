#pragma once
// The IM core: what becomes of a message we send, as states that only move forward, and who
// may move them. Pure: the owner keeps the state in its store (as the names below, which are
// also the JSON protocol's).
#include <optional>
#include <string>
#include <string_view>

namespace xmpp::im {

// In the order a message goes through them; Failed is final and may come at any point.
enum class Delivery {
    Accepted,   // stored, not yet written to a stream
    Sent,       // written to the stream
    Acked,      // the server has it (XEP-0198, or an iq answered after it)
    Delivered,  // a XEP-0184 receipt came back from the recipient
    Displayed,  // a XEP-0333 displayed marker came back
    Failed,     // an error came back, or we gave up; `error` says why
};

std::string_view to_string(Delivery state);
std::optional<Delivery> parse_delivery(std::string_view name);

// Whether a message in `current` may move to `next`: only forward, and never out of Failed
// (a late receipt does not undo an error).
bool may_advance(Delivery current, Delivery next);

// Whether `reporter` (the 'from' of a receipt, marker or error) may say what became of a
// message we sent to `to`: the recipient itself (any of its resources), or a server (a JID
// without a localpart) of the recipient's domain or of our own. Anyone can learn our message
// ids in a room and send a receipt or an error with them.
bool may_report(std::string_view reporter, std::string_view to, std::string_view own_domain);

}  // namespace xmpp::im
