#pragma once
// AccountKeep: what an account keeps in the store besides its messages, each as one of the
// account's values (Store::meta): the XEP-0198 session to resume after a restart ("sm"), the
// XEP-0484 FAST token ("fast", kept like the password it replaces: in the store, mode 0600,
// never in a log) and the XEP-0388 user-agent id ("user_agent"). Loop thread only.
#include <cstdint>
#include <optional>
#include <string>

#include "daemon/store.hpp"
#include "protocol/sasl.hpp"
#include "protocol/stream.hpp"

namespace stanzad {

class AccountKeep {
public:
    AccountKeep(Store& store, std::string account) : store_(store), account_(std::move(account)) {}

    // The XEP-0198 session to resume (nullopt: none, or unreadable).
    std::optional<xmpp::SmCheckpoint> checkpoint() const;
    void save_checkpoint(const std::optional<xmpp::SmCheckpoint>& checkpoint);
    // The FAST token (nullopt: none; saved as nullopt: forgotten).
    std::optional<xmpp::sasl::FastToken> fast_token() const;
    void save_fast_token(const std::optional<xmpp::sasl::FastToken>& token);
    // A UUID v4 made on first use and kept, so the server knows this installation across
    // connections (FAST tokens are bound to it); "" when it cannot be kept.
    std::string user_agent_id();

private:
    Store& store_;
    std::string account_;
};

// A random (version 4) UUID (RFC 9562 §5.4), for the user-agent id.
std::string make_uuid();

// A time-ordered (version 7) UUID (RFC 9562 §5.7), for message ids: 48 bits of Unix
// milliseconds, then 74 random bits, so it is still unpredictable (XEP-0359 §3 asks that).
// The ids of one period sort together, so the store's indexes on msg_id (outbox, events)
// take a new message at their right edge and find a recent one in pages already cached,
// instead of a random page of each for every message (docs/performance.md).
std::string make_time_uuid(std::uint64_t unix_ms);
std::string make_time_uuid();  // now, by the system clock

}  // namespace stanzad
