#pragma once
// IRC nicks for XMPP addresses, deterministic and stable: the same contact keeps the same
// nick across sessions and restarts (the daemon stores NickMap::serialize() and reads it
// back), and the same sequence of calls always gives the same nicks.
//
// Nick syntax (modern-irc _includes-concepts.md "Clients", messages-connection.md "NICK
// message"): we only hand out and accept nicks of ASCII letters, digits and
// - [ ] \ ^ _ ` { | }  (the RFC 2812 §2.3.1 set, which the NICK section says servers MUST
// allow), not starting with a digit or '-', at most nick_len bytes. That excludes
// everything the spec forbids (space , * ? ! @, a leading $ : # & + % ~) and the '.'
// it advises against. Comparison is CASEMAPPING=ascii (_includes-modern-appendix.md).
//
// NickMap is owned by the IRC front end on the loop thread; it holds one entry per
// (account, JID) it has named, plus the reserved nicks.
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/base/result.hpp"

namespace irc {

inline constexpr std::size_t nick_len = 30;                // ISUPPORT NICKLEN=30
inline constexpr std::string_view service_nick = "stanzad";  // speaks in &stanzad

// CASEMAPPING=ascii: 'A'..'Z' fold to 'a'..'z', nothing else changes.
std::string fold(std::string_view s);
bool valid_nick(std::string_view nick);
// Any text made into a valid nick: allowed bytes kept, each run of other bytes (a
// multi-byte character is one run) becomes one '_', '_' put in front of a leading digit
// or '-', cut to nick_len. Text without one allowed byte gives "user".
std::string sanitize_nick(std::string_view text);
// The nick a JID starts from: the occupant nick (resource) of "room@host/nick", the local
// part of "user@host", the first label of the domain of "host" ("irc.example.org" -> "irc").
std::string nick_base(std::string_view jid);

class NickMap {
public:
    using Contact = std::pair<std::string, std::string>;  // (account, JID)

    // Reserved nicks are never given to a contact: the service nick, the user's own nick.
    explicit NickMap(std::vector<std::string> reserved = {std::string(service_nick)});

    // The nick of (account, jid), assigned on first use and kept. A new nick is the first
    // free one of: base; base_<qualifier> (the domain's first label, or the room's local
    // part for an occupant; skipped when another account already has this JID);
    // base_<account>; base2, base3, ... where base = nick_base(jid), cut so that the
    // suffix fits in nick_len. Free: not reserved and not held by another contact (folded).
    std::string nick_for(const std::string& account, const std::string& jid);
    // The nick if one was assigned; never assigns.
    std::optional<std::string> find_nick(const std::string& account, const std::string& jid) const;
    // Who has this nick (any case), if a contact has it.
    std::optional<Contact> lookup(std::string_view nick) const;
    // Gives (account, jid) the nick `nick` (assigning it if it had none). Errors:
    // "erroneous-nick" (not valid_nick: ERR_ERRONEUSNICKNAME 432), "nick-in-use" (reserved
    // or another contact's: ERR_NICKNAMEINUSE 433). A change of case only is allowed.
    xmpp::Status rename(const std::string& account, const std::string& jid, std::string_view nick);
    // Drops the contact's nick; it becomes free for others.
    void forget(const std::string& account, const std::string& jid);

    // false (and nothing reserved) when a contact has the nick.
    bool reserve(std::string_view nick);
    void release(std::string_view nick);
    bool is_reserved(std::string_view nick) const;
    // Reserved or held by a contact.
    bool taken(std::string_view nick) const;
    std::size_t size() const { return by_contact_.size(); }

    // Text, one contact per line, sorted: "stanzad-nicks 1" then "nick TAB account TAB jid"
    // ('%', TAB, CR and LF in account and JID written as %25 %09 %0D %0A).
    std::string serialize() const;
    // Reads serialize()'s text. Never fails: an unknown header gives an empty map; a line
    // that is malformed, has an invalid or reserved nick, or repeats a nick or a contact
    // already read is skipped.
    static NickMap deserialize(std::string_view text,
                               std::vector<std::string> reserved = {std::string(service_nick)});

private:
    bool free_for(const std::string& folded, const Contact& who) const;
    void assign(const Contact& who, std::string nick);

    std::map<Contact, std::string> by_contact_;  // -> nick as given
    std::map<std::string, Contact> by_nick_;     // fold(nick) ->
    std::set<std::string> reserved_;             // folded
};

}  // namespace irc
