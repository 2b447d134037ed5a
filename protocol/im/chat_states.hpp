#pragma once
// The IM core: whether we send chat states to a contact (XEP-0085 §5.1). Our messages carry
// <active/> until the contact replies; a reply without any chat state means the contact does
// not want them, and then we MUST NOT send more (neither <active/> in our messages nor
// standalone notifications) until it sends one itself. Pure; bounded: at most
// `max_refusing` contacts are remembered (the oldest is forgotten first).
#include <cstddef>
#include <deque>
#include <set>
#include <string>

namespace xmpp::im {

class ChatStates {
public:
    static constexpr std::size_t max_refusing = 10'000;

    // A 1:1 message from `contact` (its bare JID): `content` when it has a body (a reply),
    // `state` its chat state ("" for none).
    void received(const std::string& contact, bool content, const std::string& state);
    // Whether chat states may go to `contact` (bare JID).
    bool wanted(const std::string& contact) const { return !refusing_.count(contact); }

private:
    std::set<std::string> refusing_;
    std::deque<std::string> order_;  // of refusing_, oldest first
};

}  // namespace xmpp::im
