#pragma once
// The IM core: what becomes of a message we send, as states that only move forward, and who
// may move them. Pure: the owner keeps the state in its store (as the model's names, which
// are also the JSON protocol's). The states themselves are the model's (model::Delivery).
#include <optional>
#include <string>
#include <string_view>

#include "frontends/model/model.hpp"

namespace xmpp::im {

using model::Delivery;
using model::parse_delivery;
using model::to_string;

// Whether a message in `current` may move to `next`: only forward, and never out of Failed
// (a late receipt does not undo an error).
bool may_advance(Delivery current, Delivery next);

// Whether `reporter` (the 'from' of a receipt, marker or error) may say what became of a
// message we sent to `to`: the recipient itself (any of its resources), or a server (a JID
// without a localpart) of the recipient's domain or of our own. Anyone can learn our message
// ids in a room and send a receipt or an error with them.
bool may_report(std::string_view reporter, std::string_view to, std::string_view own_domain);

}  // namespace xmpp::im
