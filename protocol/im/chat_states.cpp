#include "protocol/im/chat_states.hpp"

#include <algorithm>

namespace xmpp::im {

void ChatStates::received(const std::string& contact, bool content, const std::string& state) {
    if (!state.empty()) {
        // §5.1: it sends notifications, so it wants them.
        if (refusing_.erase(contact)) order_.erase(std::find(order_.begin(), order_.end(), contact));
        return;
    }
    if (!content || refusing_.count(contact)) return;  // only a reply says "no"
    refusing_.insert(contact);
    order_.push_back(contact);
    if (order_.size() > max_refusing) {
        refusing_.erase(order_.front());
        order_.pop_front();
    }
}

}  // namespace xmpp::im
