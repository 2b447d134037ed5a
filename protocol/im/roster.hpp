#pragma once
// The IM core: the account's roster (RFC 6121 §2) with its version (§2.6), kept between
// logins so that a login asks only for what changed since. Sans-I/O: the owner restores what
// it stored, asks with request_version(), feeds the result and the pushes, and stores items()
// and version() again after each change.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/im.hpp"

namespace xmpp::im {

class Roster {
public:
    const std::vector<RosterEntry>& items() const { return items_; }
    // The version that goes with items() (nullopt: none known).
    const std::optional<std::string>& version() const { return version_; }
    bool contains(std::string_view bare_jid) const;
    // Whether items() is the roster as the server last gave it (restored or received).
    bool known() const { return known_; }

    // What the owner kept: the items and the version that went with them.
    void restore(std::vector<RosterEntry> items, std::optional<std::string> version);

    // §2.1.3 at login, with §2.6.2 versioning: the `ver` to ask with. nullopt: none (the
    // server does not version); "": the whole roster, versioned from now on (nothing kept);
    // otherwise the version of the roster we have.
    std::optional<std::string> request_version(bool server_versions) const;
    // §2.1.4 the result: the whole roster, which replaces ours, with its version if any.
    // (§2.6.3: an empty result means ours is current; the pushes that follow bring changes.)
    void result(std::vector<RosterEntry> items, std::optional<std::string> version);
    // §2.1.6 a push: each item replaces ours for its JID, or with subscription "remove"
    // (§2.5) drops it; its version, if any, is the roster's now (§2.6.3).
    void push(std::vector<RosterEntry> items, std::optional<std::string> version);

private:
    std::vector<RosterEntry> items_;
    std::optional<std::string> version_;
    bool known_ = false;
};

}  // namespace xmpp::im
