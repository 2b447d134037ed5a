#pragma once
// Human-readable text for stanzactl: tail's events, the status and roster tables.
// Pure functions over parsed JSON. Everything that came from the network is passed
// through sanitize(), so a contact cannot write escape sequences to the terminal.
// Unknown events and fields are shown or skipped, never an error (json-protocol.md).
#include <ctime>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ctl {

using Json = nlohmann::json;

// Control characters (C0 but tab, DEL, C1) become U+FFFD; a tab becomes a space; a
// newline too, unless `keep_newlines`.
std::string sanitize(std::string_view text, bool keep_newlines = false);

// An RFC 3339 stamp in local time: "12:00:01" on the day of `now`, else
// "2026-11-24T12:00:01". When it does not parse: the stamp sanitized, spaces as '_', or
// "-" when empty; one word in every case.
std::string local_time(std::string_view stamp, std::time_t now);

// One event: one line, or more for a message body with newlines (continuation lines are
// indented). Every line ends in '\n'.
std::string render_event(const Json& event, std::time_t now);

// The "accounts" array of an accounts reply: name, state, JID, reason; aligned columns.
std::string render_accounts(const Json& accounts);

// The "items" array of a roster reply: jid, name, subscription, groups; sorted by jid.
std::string render_roster(const Json& items);

}  // namespace ctl
