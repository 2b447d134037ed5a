#include "protocol/im/roster.hpp"

#include <algorithm>
#include <utility>

namespace xmpp::im {

bool Roster::contains(std::string_view bare_jid) const {
    return std::any_of(items_.begin(), items_.end(), [&](const RosterEntry& e) { return e.jid == bare_jid; });
}

void Roster::restore(std::vector<RosterEntry> items, std::optional<std::string> version) {
    items_ = std::move(items);
    version_ = std::move(version);
    known_ = true;
}

std::optional<std::string> Roster::request_version(bool server_versions) const {
    if (!server_versions) return std::nullopt;
    // A version without the roster it describes would make the server send only changes to
    // a roster we do not have.
    return known_ ? version_.value_or("") : "";
}

void Roster::result(std::vector<RosterEntry> items, std::optional<std::string> version) {
    items_ = std::move(items);
    // A result without a version (the server stopped versioning) leaves none to ask with.
    version_ = std::move(version);
    known_ = true;
}

void Roster::push(std::vector<RosterEntry> items, std::optional<std::string> version) {
    for (auto& item : items) {
        std::erase_if(items_, [&](const RosterEntry& e) { return e.jid == item.jid; });
        if (item.subscription != "remove") items_.push_back(std::move(item));
    }
    if (version) version_ = std::move(version);
}

}  // namespace xmpp::im
