#include "ctl/render.hpp"

#include <algorithm>
#include <ctime>
#include <vector>

#include "protocol/base/rfc3339.hpp"

namespace ctl {

namespace {

constexpr std::string_view replacement = "\xEF\xBF\xBD";  // U+FFFD
constexpr std::string_view continuation_indent = "    ";

// A member as text: strings as they are, other scalars as JSON, absent or null as "".
std::string text(const Json& j, const char* name) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return {};
    if (it->is_string()) return it->get<std::string>();
    return it->dump();
}

std::string safe(const Json& j, const char* name) { return sanitize(text(j, name)); }

bool flag(const Json& j, const char* name) {
    auto it = j.find(name);
    return it != j.end() && it->is_boolean() && it->get<bool>();
}

const Json& array_member(const Json& j, const char* name) {
    static const Json empty = Json::array();
    auto it = j.find(name);
    return it != j.end() && it->is_array() ? *it : empty;
}

// The strings of an array, separated by ", "; other members skipped.
std::string joined_strings(const Json& array) {
    std::string out;
    for (const Json& s : array) {
        if (!s.is_string()) continue;
        if (!out.empty()) out += ", ";
        out += sanitize(s.get<std::string>());
    }
    return out;
}

std::string joined_groups(const Json& item) { return joined_strings(array_member(item, "groups")); }

// Columns padded to their widest cell (in code points, near enough for a terminal),
// but the last, which may hold free text.
std::string table(const std::vector<std::vector<std::string>>& rows) {
    auto width = [](const std::string& s) {
        return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) {
            return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
        }));
    };
    std::vector<std::size_t> widths;
    for (const auto& row : rows)
        for (std::size_t i = 0; i + 1 < row.size(); ++i) {
            if (widths.size() <= i) widths.resize(i + 1, 0);
            widths[i] = std::max(widths[i], width(row[i]));
        }
    std::string out;
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) line.append(widths[i] - width(row[i]) + 2, ' ');
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out += line + '\n';
    }
    return out;
}

// The body, its later lines indented so that they do not pass for events.
std::string indented_body(const std::string& body) {
    std::string clean = sanitize(body, /*keep_newlines=*/true);
    std::string out;
    for (char c : clean) {
        out += c;
        if (c == '\n') out += continuation_indent;
    }
    return out;
}

// `in_history`: a line of `history`, where every message is old; (delayed) and (history)
// would be on each line and say nothing.
std::string message_line(const Json& e, bool in_history = false) {
    std::string out = safe(e, "from") + " -> " + safe(e, "to");
    if (std::string type = safe(e, "type"); !type.empty() && type != "chat") out += " (" + type + ")";
    if (flag(e, "outgoing")) out += " (outgoing)";
    if (std::string carbon = safe(e, "carbon"); !carbon.empty()) out += " (carbon " + carbon + ")";
    if (!in_history && flag(e, "delayed")) out += " (delayed)";
    if (!in_history && flag(e, "history")) out += " (history)";
    if (std::string replaces = safe(e, "replaces"); !replaces.empty()) out += " (corrects " + replaces + ")";
    return out + ": " + indented_body(text(e, "body"));
}

std::string message_state_line(const Json& e) {
    std::string out = safe(e, "msg_id") + " " + safe(e, "state");
    if (std::string error = safe(e, "error"); !error.empty()) out += ": " + error;
    return out;
}

std::string account_state_line(const Json& e) {
    std::string out = safe(e, "state");
    if (std::string jid = safe(e, "jid"); !jid.empty()) out += " " + jid;
    if (std::string reason = safe(e, "reason"); !reason.empty()) out += ": " + reason;
    return out;
}

// The priority only when it is not 0, the common case (RFC 6121 §4.7.2.3).
std::string presence_line(const Json& e) {
    std::string out = safe(e, "from") + (flag(e, "available") ? " available" : " unavailable");
    if (std::string show = safe(e, "show"); !show.empty()) out += " " + show;
    if (std::string priority = safe(e, "priority"); !priority.empty() && priority != "0")
        out += " (priority " + priority + ")";
    if (std::string status = safe(e, "status"); !status.empty()) out += ": " + status;
    return out;
}

// "participant/member"; "-" when the room said neither.
std::string role_and_affiliation(const Json& o) {
    std::string role = safe(o, "role"), affiliation = safe(o, "affiliation");
    if (role.empty() && affiliation.empty()) return "-";
    return (role.empty() ? "-" : role) + "/" + (affiliation.empty() ? "-" : affiliation);
}

std::string by_and_reason(const Json& e) {
    std::string out;
    if (std::string actor = safe(e, "actor"); !actor.empty()) out += " by " + actor;
    if (std::string reason = safe(e, "reason"); !reason.empty()) out += ": " + reason;
    return out;
}

// Our own state in a room: ROOM STATE [as NICK] [by ACTOR][: REASON].
std::string room_line(const Json& e) {
    std::string out = safe(e, "room") + " " + safe(e, "state");
    if (std::string nick = safe(e, "nick"); !nick.empty()) out += " as " + nick;
    return out + by_and_reason(e);
}

// Someone else in a room: ROOM/NICK CHANGE, then what changed.
std::string occupant_line(const Json& e) {
    std::string change = safe(e, "change");
    std::string out = safe(e, "room") + "/" + safe(e, "nick") + " " + change;
    if (change == "nick") return out + " " + safe(e, "new_nick");
    if (change == "kick" || change == "ban") return out + by_and_reason(e);
    std::string status = safe(e, "status");
    if (change != "leave") {
        out += " " + role_and_affiliation(e);
        if (std::string jid = safe(e, "jid"); !jid.empty()) out += " " + jid;
        if (std::string show = safe(e, "show"); !show.empty()) out += " " + show;
    }
    return status.empty() ? out : out + ": " + status;
}

std::string subject_line(const Json& e) {
    std::string out = safe(e, "room");
    if (std::string nick = safe(e, "nick"); !nick.empty()) out += " by " + nick;
    std::string subject = text(e, "subject");
    return subject.empty() ? out + " (no subject)" : out + ": " + indented_body(subject);
}

// The password is not shown: it is in the event (--json) for whoever needs it.
std::string invite_line(const Json& e) {
    std::string out = safe(e, "room") + " from " + safe(e, "from");
    if (flag(e, "direct")) out += " (direct)";
    if (!text(e, "password").empty()) out += " (with password)";
    if (std::string reason = safe(e, "reason"); !reason.empty()) out += ": " + reason;
    return out;
}

// A push that unblocks with no JIDs unblocks everyone (XEP-0191 §3.5).
std::string blocklist_line(const Json& e) {
    std::string blocked = joined_strings(array_member(e, "blocked"));
    std::string unblocked = joined_strings(array_member(e, "unblocked"));
    if (blocked.empty() && unblocked.empty()) return "unblocked everyone";
    std::string out;
    if (!blocked.empty()) out += "blocked " + blocked;
    if (!unblocked.empty()) out += (out.empty() ? "" : "; ") + std::string("unblocked ") + unblocked;
    return out;
}

std::string roster_item(const Json& item) {
    std::string out = safe(item, "jid") + " " + safe(item, "subscription");
    std::string name = safe(item, "name");
    std::string groups = joined_groups(item);
    if (!name.empty() || !groups.empty())
        out += " (" + name + (!name.empty() && !groups.empty() ? "; " : "") + groups + ")";
    return out;
}

// The whole roster is one line (its size); a push is one line per changed item.
std::vector<std::string> roster_lines(const Json& e) {
    const Json& items = array_member(e, "items");
    if (!flag(e, "push")) {
        std::size_t n = items.size();
        return {std::to_string(n) + (n == 1 ? " contact" : " contacts")};
    }
    std::vector<std::string> lines;
    for (const Json& item : items)
        if (item.is_object()) lines.push_back(roster_item(item));
    if (lines.empty()) lines.emplace_back("push without items");
    return lines;
}

// An event of a later protocol version: its fields, minus the common ones.
std::string other_line(const Json& e) {
    Json rest = e;
    for (const char* common : {"event", "seq", "account", "stamp"}) rest.erase(common);
    return rest.empty() ? std::string() : sanitize(rest.dump(-1, ' ', false, Json::error_handler_t::replace));
}

std::vector<std::string> event_lines(const Json& e) {
    std::string kind = text(e, "event");
    if (kind == "message") return {message_line(e)};
    if (kind == "message-state") return {message_state_line(e)};
    if (kind == "account-state") return {account_state_line(e)};
    if (kind == "presence") return {presence_line(e)};
    if (kind == "roster") return roster_lines(e);
    if (kind == "subscription") return {safe(e, "from") + " " + safe(e, "kind")};
    if (kind == "chat-state") return {safe(e, "from") + " " + safe(e, "state")};
    if (kind == "room") return {room_line(e)};
    if (kind == "occupant") return {occupant_line(e)};
    if (kind == "subject") return {subject_line(e)};
    if (kind == "invite") return {invite_line(e)};
    if (kind == "blocklist") return {blocklist_line(e)};
    return {other_line(e)};
}

// A stamp as Unix seconds, the fraction dropped (floor, so before 1970 too).
bool parse_stamp(std::string_view s, std::time_t& out) {
    auto ms = xmpp::parse_datetime(s);
    if (!ms) return false;
    out = static_cast<std::time_t>(*ms / 1000 - (*ms % 1000 < 0 ? 1 : 0));
    return true;
}

// The stamp in local time, one word either way so that scripts can split lines into
// fields: "HH:MM:SS" when `now` is given and on the same day, else with the date.
std::string formatted_time(std::string_view stamp, const std::time_t* now) {
    std::time_t when;
    if (!parse_stamp(stamp, when)) {
        std::string word = sanitize(stamp);
        std::replace(word.begin(), word.end(), ' ', '_');
        return word.empty() ? "-" : word;
    }
    std::tm local{}, today{};
    ::localtime_r(&when, &local);
    bool same_day = false;
    if (now) {
        ::localtime_r(now, &today);
        same_day = local.tm_year == today.tm_year && local.tm_yday == today.tm_yday;
    }
    char buf[32];
    std::strftime(buf, sizeof buf, same_day ? "%H:%M:%S" : "%Y-%m-%dT%H:%M:%S", &local);
    return buf;
}

}  // namespace

std::string sanitize(std::string_view in, bool keep_newlines) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        auto c = static_cast<unsigned char>(in[i]);
        if (c == '\n') {
            out += keep_newlines ? '\n' : ' ';
        } else if (c == '\t') {
            out += ' ';
        } else if (c < 0x20 || c == 0x7F) {
            out += replacement;
        } else if (c == 0xC2 && i + 1 < in.size() && static_cast<unsigned char>(in[i + 1]) >= 0x80 &&
                   static_cast<unsigned char>(in[i + 1]) <= 0x9F) {
            out += replacement;  // C1: U+0080..U+009F, CSI among them
            ++i;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

std::string local_time(std::string_view stamp, std::time_t now) { return formatted_time(stamp, &now); }

std::string local_date_time(std::string_view stamp) { return formatted_time(stamp, nullptr); }

std::string render_event(const Json& e, std::time_t now) {
    std::string head = local_time(text(e, "stamp"), now) + " " + safe(e, "account") + " " + safe(e, "event");
    std::string out;
    for (const std::string& line : event_lines(e)) out += head + (line.empty() ? "" : " " + line) + '\n';
    return out;
}

std::string render_accounts(const Json& accounts) {
    std::vector<std::vector<std::string>> rows;
    for (const Json& a : accounts) {
        if (!a.is_object()) continue;
        std::string jid = safe(a, "bound_jid");
        if (jid.empty()) jid = safe(a, "jid");
        // Online: how we logged in and where to; else why not.
        std::string detail = safe(a, "reason");
        if (safe(a, "state") == "online" && !safe(a, "auth").empty())
            detail = "(" + safe(a, "auth") + ")" + (safe(a, "connection").empty() ? "" : " " + safe(a, "connection"));
        // What the server lacks, so a user can see why the setup is weaker (issue 18).
        if (auto caps = a.find("capabilities"); caps != a.end() && caps->is_object()) {
            std::string missing;
            for (const char* key : {"stream_management", "archive", "carbons"})
                if (caps->contains(key) && (*caps)[key].is_boolean() && !(*caps)[key].get<bool>())
                    missing += std::string(missing.empty() ? "" : ", ") + "no " +
                               (std::string_view(key) == "stream_management" ? "stream management" : key);
            if (!missing.empty()) detail += " [server: " + missing + "]";
        }
        // RFC 6121 §4.7.2.3: 0 is the common case and not shown.
        if (std::string priority = safe(a, "priority"); !priority.empty() && priority != "0")
            detail += " (priority " + priority + ")";
        rows.push_back({safe(a, "account"), safe(a, "state"), jid, detail});
    }
    return table(rows);
}

std::string render_roster(const Json& items) {
    std::vector<std::vector<std::string>> rows;
    for (const Json& item : items) {
        if (!item.is_object()) continue;
        std::string name = safe(item, "name");
        rows.push_back({safe(item, "jid"), name.empty() ? "-" : name, safe(item, "subscription"),
                        joined_groups(item)});
    }
    std::sort(rows.begin(), rows.end());
    return table(rows);
}

std::string render_history(const Json& messages) {
    std::string out;
    for (const Json& m : messages)
        if (m.is_object()) out += local_date_time(text(m, "stamp")) + " " + message_line(m, /*in_history=*/true) + '\n';
    return out;
}

std::string render_join(const Json& reply, std::string_view asked_room) {
    std::string room = safe(reply, "room");
    if (room.empty()) room = sanitize(asked_room);
    const Json& occupants = array_member(reply, "occupants");
    std::size_t n = occupants.size();
    std::string out = "joined " + room + " as " + safe(reply, "nick") + " (" + std::to_string(n) +
                      (n == 1 ? " occupant" : " occupants") + (flag(reply, "created") ? "; created the room" : "") +
                      ")\n";
    std::vector<std::vector<std::string>> rows;
    for (const Json& o : occupants)
        if (o.is_object()) rows.push_back({"  " + safe(o, "nick"), role_and_affiliation(o), safe(o, "jid")});
    std::sort(rows.begin(), rows.end());
    return out + table(rows);
}

std::string render_rooms(const Json& rooms) {
    std::vector<std::vector<std::string>> rows;
    for (const Json& r : rooms) {
        if (!r.is_object()) continue;
        std::string nick = safe(r, "nick");
        std::string state = safe(r, "state");
        std::string last = state == "error" ? safe(r, "reason") : safe(r, "subject");
        rows.push_back({safe(r, "room"), state, std::to_string(array_member(r, "occupants").size()),
                        nick.empty() ? "-" : nick, last});
    }
    std::sort(rows.begin(), rows.end());
    return table(rows);
}

std::string render_jids(const Json& jids) {
    std::vector<std::string> lines;
    for (const Json& j : jids)
        if (j.is_string()) lines.push_back(sanitize(j.get<std::string>()));
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (const auto& line : lines) out += line + '\n';
    return out;
}

std::string render_omemo_devices(const Json& devices) {
    std::string out;
    for (const Json& d : devices) {
        if (!d.is_object()) continue;
        auto text = [&](const char* key) {
            auto it = d.find(key);
            return it != d.end() && it->is_string() ? sanitize(it->get<std::string>()) : std::string();
        };
        auto id = d.find("device");
        std::string device = id != d.end() && id->is_number_unsigned() ? std::to_string(id->get<std::uint64_t>()) : "?";
        auto listed = d.find("listed");
        std::string trust = text("trust");
        if (listed != d.end() && listed->is_boolean() && !listed->get<bool>()) trust += " (not listed)";
        out += text("jid") + "  " + device + "  " + trust + "  " + text("fingerprint") + '\n';
    }
    return out;
}

std::string render_certificate(const Json& reply) {
    auto text = [&](const char* key) {
        auto it = reply.find(key);
        return it != reply.end() && it->is_string() ? sanitize(it->get<std::string>()) : std::string();
    };
    std::string names;
    if (auto it = reply.find("names"); it != reply.end() && it->is_array())
        for (const Json& n : *it)
            if (n.is_string()) names += (names.empty() ? "" : ", ") + sanitize(n.get<std::string>());
    auto trusted = reply.find("trusted");
    bool ok = trusted != reply.end() && trusted->is_boolean() && trusted->get<bool>();
    std::string out;
    out += "server   " + text("server") + '\n';
    out += "pin      " + text("pin") + '\n';
    out += "subject  " + text("subject") + '\n';
    out += "issuer   " + text("issuer") + '\n';
    out += "valid    " + text("not_before") + " to " + text("not_after") + '\n';
    out += "names    " + (names.empty() ? std::string("(none)") : names) + '\n';
    out += "trusted  " + (ok ? std::string("yes") : "no: " + text("verify_error")) + '\n';
    return out;
}

}  // namespace ctl
