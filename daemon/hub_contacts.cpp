// The hub's contacts side: presences, roster pushes and block list pushes handed to the
// account's session (protocol/im/session_contacts.cpp keeps the roster, vCard names and
// presences).
#include "daemon/account.hpp"
#include "daemon/hub.hpp"

namespace stanzad {

void Hub::received_presence(Account& account, pugi::xml_node root) {
    if (auto mp = xmpp::parse_muc_presence(root); mp && session(account).room_presence(*mp)) return;
    session(account).presence(root);
}

void Hub::roster(Account& account, std::vector<xmpp::RosterEntry> items, bool push,
                 std::optional<std::string> version) {
    session(account).roster(std::move(items), push, std::move(version));
}

void Hub::blocklist_push(Account& account, std::vector<std::string> jids, bool blocked) {
    model::Blocklist b;
    (blocked ? b.blocked : b.unblocked) = std::move(jids);
    publish(account.name(), std::move(b));
}

}  // namespace stanzad
