#include "frontends/jsonl/request.hpp"

#include <cctype>
#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/base/jid.hpp"
#include "protocol/base/rfc3339.hpp"

namespace jsonl {

using Json = nlohmann::ordered_json;

namespace {

std::string type_name(const Json& j) {
    if (j.is_string()) return "a string";
    if (j.is_number_integer()) return "an integer";
    if (j.is_number()) return "a number";
    if (j.is_boolean()) return "a boolean";
    if (j.is_null()) return "null";
    if (j.is_array()) return "an array";
    return "an object";
}

std::string field(const char* name) { return std::string("field '") + name + "'"; }

// The fields of one request, read one by one. The first problem is kept (problem()); reads
// after it give defaults, so an op's reader goes on and the caller looks once at the end.
class Fields {
public:
    explicit Fields(const Json& j) : j_(j) {}

    const std::optional<xmpp::Error>& problem() const { return problem_; }
    void fail(std::string code, std::string message) {
        if (!problem_) problem_ = xmpp::make_error(std::move(code), std::move(message));
    }
    void require(bool ok, std::string message) {
        if (!ok) fail("bad-request", std::move(message));
    }
    bool has(const char* name) const { return j_.find(name) != j_.end(); }

    std::string string(const char* name, bool required = true, std::string fallback = "") {
        const Json* v = member(name);
        if (!v) {
            if (required) fail("bad-request", "missing " + field(name));
            return fallback;
        }
        if (!v->is_string()) {
            fail("bad-request", field(name) + " must be a string, not " + type_name(*v));
            return fallback;
        }
        return v->get<std::string>();
    }

    std::optional<model::Seq> seq(const char* name, bool required) {
        const Json* v = member(name);
        if (!v) {
            if (required) fail("bad-request", "missing " + field(name));
            return std::nullopt;
        }
        if (!v->is_number_integer() || v->get<std::int64_t>() < 0) {
            fail("bad-request", field(name) + " must be an integer >= 0");
            return std::nullopt;
        }
        return v->get<model::Seq>();
    }

    // An optional integer within [min, max]. JSON numbers above INT64_MAX are unsigned and
    // must not wrap into the range.
    std::optional<int> integer(const char* name, int min, int max) {
        const Json* v = member(name);
        if (!v) return std::nullopt;
        bool ok = false;
        if (v->is_number_unsigned())
            ok = max >= 0 && v->get<std::uint64_t>() <= static_cast<std::uint64_t>(max) &&
                 (min <= 0 || v->get<std::uint64_t>() >= static_cast<std::uint64_t>(min));
        else if (v->is_number_integer())
            ok = v->get<std::int64_t>() >= min && v->get<std::int64_t>() <= max;
        if (!ok) {
            fail("bad-request",
                 field(name) + " must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
            return std::nullopt;
        }
        return v->get<int>();
    }

    std::optional<bool> boolean(const char* name) {
        const Json* v = member(name);
        if (!v) return std::nullopt;
        if (!v->is_boolean()) {
            fail("bad-request", field(name) + " must be a boolean");
            return std::nullopt;
        }
        return v->get<bool>();
    }

    std::string account() {
        auto a = string("account");
        if (!problem_ && a.empty()) fail("bad-request", "field 'account' must not be empty");
        return a;
    }

    std::string jid(const char* name, bool bare) {
        auto text = string(name);
        if (problem_) return {};
        auto jid = xmpp::Jid::parse(text);
        if (!jid) {
            fail("bad-jid", field(name) + ": " + jid.error().message);
            return {};
        }
        if (bare && !jid.value().is_bare()) fail("bad-jid", field(name) + " must be a bare JID (no /resource)");
        return bare ? jid.value().bare() : jid.value().full();
    }

    std::vector<std::string> strings(const char* name, bool required) {
        const Json* v = member(name);
        if (!v) {
            if (required) fail("bad-request", "missing " + field(name));
            return {};
        }
        if (!v->is_array() || v->size() > 1000) {
            fail("bad-request", field(name) + " must be an array of at most 1000 strings");
            return {};
        }
        std::vector<std::string> out;
        for (const auto& e : *v) {
            if (!e.is_string()) {
                fail("bad-request", field(name) + " must hold only strings");
                return {};
            }
            out.push_back(e.get<std::string>());
        }
        return out;
    }

    void one_of(const std::string& value, const char* name, std::initializer_list<const char*> allowed) {
        std::string list;
        for (const char* a : allowed) {
            if (value == a) return;
            list += list.empty() ? "" : ", ";
            list += std::string("'") + a + "'";
        }
        fail("bad-request", field(name) + " must be one of " + list + ", not '" + value + "'");
    }

    // A room nick is the resource of an occupant JID (RFC 7622 §3.4, XEP-0045 §7.2.3).
    void nick(const std::string& nick) {
        require(!nick.empty(), "the nick must not be empty");
        require(nick.empty() || xmpp::Jid::parse("r@example.org/" + nick).ok(), "the nick '" + nick + "' is not usable");
    }

private:
    const Json* member(const char* name) const {
        auto it = j_.find(name);
        return it == j_.end() ? nullptr : &*it;
    }

    const Json& j_;
    std::optional<xmpp::Error> problem_;
};

bool valid_client_name(const std::string& s) {
    if (s.empty() || s.size() > 64) return false;
    for (unsigned char c : s)
        if (!std::isalnum(c) && c != '.' && c != '_' && c != '-') return false;
    return true;
}

bool printable_ascii(const std::string& s, std::size_t max) {
    bool ok = !s.empty() && s.size() <= max;
    for (unsigned char c : s) ok = ok && c > 0x20 && c < 0x7f;
    return ok;
}

// One reader per op (docs/json-protocol.md); `op` for the readers that serve several.
using Reader = model::Command (*)(Fields& f, const std::string& op);

model::Command hello(Fields& f, const std::string&) {
    model::Hello h;
    h.client = f.string("client");
    f.require(valid_client_name(h.client), "field 'client' must be 1 to 64 of A-Z a-z 0-9 . _ -");
    h.since = f.seq("since", false);
    if (auto replay = f.boolean("replay")) h.replay = *replay;
    return h;
}

model::Command send(Fields& f, const std::string&) {
    model::Send s;
    s.account = f.account();
    s.to = f.jid("to", false);
    s.body = f.string("body");
    f.require(!s.body.empty(), "field 'body' must not be empty");
    s.type = f.string("type", false, "");
    if (f.has("type")) f.one_of(s.type, "type", {"chat", "groupchat", "normal"});
    s.client_id = f.string("client_id", false);
    s.replace = f.string("replace", false);
    if (f.has("client_id"))
        f.require(printable_ascii(s.client_id, 128), "field 'client_id' must be 1 to 128 printable ASCII characters");
    return s;
}

model::Command join(Fields& f, const std::string&) {
    model::Join c;
    c.account = f.account();
    c.room = f.jid("room", true);
    c.nick = f.string("nick", false);
    c.password = f.string("password", false);
    if (f.has("nick")) f.nick(c.nick);
    return c;
}

model::Command kick(Fields& f, const std::string&) {
    model::Kick c;
    c.account = f.account();
    c.room = f.jid("room", true);
    c.nick = f.string("nick");
    f.nick(c.nick);
    c.reason = f.string("reason", false);
    return c;
}

model::Command invite(Fields& f, const std::string&) {
    model::SendInvite c;
    c.account = f.account();
    c.room = f.jid("room", true);
    c.jid = f.jid("jid", true);
    c.reason = f.string("reason", false);
    return c;
}

model::Command history(Fields& f, const std::string&) {
    model::History c;
    c.account = f.account();
    c.with = f.jid("with", true);
    if (f.has("before")) c.before = f.string("before");
    c.after = f.string("after", false);
    f.require(!c.before || c.after.empty(), "give 'before' or 'after', not both");
    if (auto max = f.integer("max", 1, 200)) c.max = *max;
    return c;
}

model::Command chat_state(Fields& f, const std::string&) {
    model::SendChatState c;
    c.account = f.account();
    c.to = f.jid("to", false);
    c.state = f.string("state");
    f.one_of(c.state, "state", {"active", "composing", "paused", "inactive", "gone"});
    return c;
}

model::Command displayed(Fields& f, const std::string&) {
    model::Displayed c;
    c.account = f.account();
    c.to = f.jid("to", false);
    c.msg_id = f.string("msg_id");
    f.require(!c.msg_id.empty(), "field 'msg_id' must not be empty");
    return c;
}

model::Command roster_set(Fields& f, const std::string&) {
    model::RosterSet c;
    c.account = f.account();
    c.jid = f.jid("jid", true);
    c.name = f.string("name", false);
    c.groups = f.strings("groups", false);
    return c;
}

model::Command block(Fields& f, const std::string& op) {
    model::Block c;
    c.account = f.account();
    c.block = op == "block";
    for (const auto& text : f.strings("jids", true)) {
        auto jid = xmpp::Jid::parse(text);
        if (!jid) {
            f.fail("bad-jid", "field 'jids': '" + text + "': " + jid.error().message);
            break;
        }
        c.jids.push_back(jid.value().full());
    }
    f.require(!c.block || !c.jids.empty() || f.problem(), "field 'jids' must not be empty");
    return c;
}

model::Command cancel(Fields& f, const std::string&) {
    model::CancelSend c;
    c.account = f.account();
    c.msg_id = f.string("msg_id");
    f.require(!c.msg_id.empty(), "field 'msg_id' must not be empty");
    return c;
}

model::Command encryption(Fields& f, const std::string&) {
    model::SetEncryption c;
    c.account = f.account();
    c.jid = f.jid("jid", true);
    c.mode = f.string("set", false);
    if (f.has("set")) f.one_of(c.mode, "set", {"omemo", "off", "default"});
    return c;
}

model::Command omemo_devices(Fields& f, const std::string&) {
    model::OmemoDevices c;
    c.account = f.account();
    if (f.has("jid")) c.jid = f.jid("jid", true);
    return c;
}

model::Command omemo_trust(Fields& f, const std::string& op) {
    model::OmemoTrust c;
    c.account = f.account();
    c.jid = f.jid("jid", true);
    auto device = f.integer("device", 1, 2147483647);  // XEP-0384 §5.1: 1..2^31-1
    f.require(device || f.problem(), "field 'device' is required");
    c.device = static_cast<std::uint32_t>(device.value_or(0));
    c.trusted = op == "omemo-trust";
    return c;
}

model::Command read_marker(Fields& f, const std::string&) {
    model::SetReadMarker c;
    c.account = f.account();
    c.peer = f.jid("peer", true);
    c.stamp = f.string("stamp", false);
    f.require(c.stamp.empty() || xmpp::parse_datetime(c.stamp).has_value(),
              "field 'stamp' must be a UTC time like 2026-11-25T12:00:00.000Z");
    return c;
}

model::Command presence(Fields& f, const std::string&) {
    model::SetPresence p;
    p.account = f.account();
    p.show = f.string("show", false);
    f.one_of(p.show, "show", {"", "away", "chat", "dnd", "xa"});
    p.status = f.string("status", false);
    p.priority = f.integer("priority", -128, 127);  // RFC 6121 §4.7.2.3
    return p;
}

// The ops whose reader is one line.
model::Command ack(Fields& f, const std::string&) { return model::Ack{f.seq("seq", true).value_or(0)}; }
model::Command accounts(Fields&, const std::string&) { return model::ListAccounts{}; }
model::Command roster(Fields& f, const std::string&) { return model::GetRoster{f.account()}; }
model::Command rooms(Fields& f, const std::string&) { return model::ListRooms{f.account()}; }
model::Command blocklist(Fields& f, const std::string&) { return model::GetBlocklist{f.account()}; }
model::Command pin(Fields& f, const std::string&) { return model::ProbeCertificate{f.account()}; }
model::Command presences(Fields& f, const std::string&) { return model::ListPresences{f.account()}; }
model::Command part(Fields& f, const std::string&) {
    auto account = f.account();
    auto room = f.jid("room", true);
    return model::Part{account, room, f.string("reason", false)};
}
model::Command subject(Fields& f, const std::string&) {
    auto account = f.account();
    auto room = f.jid("room", true);
    return model::SetSubject{account, room, f.string("subject")};
}
model::Command roster_remove(Fields& f, const std::string&) {
    auto account = f.account();
    return model::RosterRemove{account, f.jid("jid", true)};
}
model::Command subscription(Fields& f, const std::string& op) {
    auto account = f.account();
    return model::ChangeSubscription{account, f.jid("jid", true), op};
}
model::Command raw(Fields& f, const std::string&) {
    model::Raw r;
    r.account = f.account();
    r.xml = f.string("xml");
    return r;
}

constexpr std::pair<std::string_view, Reader> readers[] = {
    {"hello", hello},
    {"ack", ack},
    {"accounts", accounts},
    {"send", send},
    {"roster", roster},
    {"join", join},
    {"part", part},
    {"rooms", rooms},
    {"subject", subject},
    {"kick", kick},
    {"invite", invite},
    {"history", history},
    {"chat-state", chat_state},
    {"displayed", displayed},
    {"roster-set", roster_set},
    {"roster-remove", roster_remove},
    {"block", block},
    {"unblock", block},
    {"blocklist", blocklist},
    {"pin", pin},
    {"cancel", cancel},
    {"presences", presences},
    {"encryption", encryption},
    {"omemo-devices", omemo_devices},
    {"omemo-trust", omemo_trust},
    {"omemo-distrust", omemo_trust},
    {"read-marker", read_marker},
    {"presence", presence},
    {"subscribe", subscription},
    {"unsubscribe", subscription},
    {"approve", subscription},
    {"deny", subscription},
    {"raw", raw},
};

}  // namespace

xmpp::Result<model::Command> parse_command(const std::string& op, const Json& j) {
    for (const auto& [name, reader] : readers) {
        if (name != op) continue;
        Fields f(j);
        model::Command command = reader(f, op);
        if (f.problem()) return *f.problem();
        return command;
    }
    return xmpp::make_error("unknown-op", "unknown op '" + op + "'");
}

}  // namespace jsonl
