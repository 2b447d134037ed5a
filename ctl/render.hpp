#pragma once
// Human-readable text for stanzactl: tail's events, the tables of status, roster and rooms,
// history, join and the block list.
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

// The same, always with the date: "2026-11-24T12:00:01" (for history, which is old).
std::string local_date_time(std::string_view stamp);

// One event: one line, or more for a message body with newlines (continuation lines are
// indented). Every line ends in '\n'.
std::string render_event(const Json& event, std::time_t now);

// The "accounts" array of an accounts reply: name, state, JID, reason; aligned columns.
std::string render_accounts(const Json& accounts);

// The "items" array of a roster reply: jid, name, subscription, groups; sorted by jid.
std::string render_roster(const Json& items);

// The "messages" array of a history reply, in its order (oldest first): one line each
// (more for a body with newlines), as tail shows a message but with the date and without
// (delayed) and (history), which every line would have.
std::string render_history(const Json& messages);

// A join reply: "joined ROOM as NICK (N occupants)", then one indented line per occupant
// (nick, role/affiliation, JID when known), sorted by nick. `asked_room` when the reply
// has no room.
std::string render_join(const Json& reply, std::string_view asked_room);

// The "rooms" array of a rooms reply: room, state, the number of occupants, our nick (it
// may have spaces: after the columns that have none), the subject (for state error: the
// reason); sorted by room.
std::string render_rooms(const Json& rooms);

// An array of JIDs (blocklist): one a line, sorted.
std::string render_jids(const Json& jids);
// omemo devices: one line per device: JID, device id, trust, fingerprint (grouped hex).
std::string render_omemo_devices(const Json& devices);

// pin: the server, the key pin (for tls_pin) and the certificate's summary, a field a line.
std::string render_certificate(const Json& reply);

}  // namespace ctl
