#pragma once
// RFC 3339 date-times: the one form we write (UTC with milliseconds, the JSON protocol's
// `stamp` and IRCv3 server-time) and the XEP-0082 DateTime profile we read (any precision,
// any offset). Pure functions: the time is always passed in.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace xmpp {

// UTC, RFC 3339 with milliseconds: 2026-11-25T12:00:00.000Z. Instants before 1970 too.
std::string rfc3339(std::chrono::system_clock::time_point t);

// A XEP-0082 DateTime (CCYY-MM-DDThh:mm:ss[.sss]TZD) as milliseconds since the Unix
// epoch, UTC; nullopt when malformed. Digits past the milliseconds are cut off.
std::optional<std::int64_t> parse_datetime(std::string_view text);

}  // namespace xmpp
