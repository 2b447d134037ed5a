#include "frontends/jsonl/session.hpp"

#include "frontends/jsonl/codec.hpp"
#include "protocol/base/jid.hpp"
#include "protocol/base/rfc3339.hpp"

namespace jsonl {

using Json = nlohmann::ordered_json;

namespace {

// A problem with a request, found while reading it: becomes an error reply.
struct Invalid {
    std::string code, message;
};

const Json* member(const Json& j, const char* name) {
    auto it = j.find(name);
    return it == j.end() ? nullptr : &*it;
}

std::string type_name(const Json& j) {
    if (j.is_string()) return "a string";
    if (j.is_number_integer()) return "an integer";
    if (j.is_number()) return "a number";
    if (j.is_boolean()) return "a boolean";
    if (j.is_null()) return "null";
    if (j.is_array()) return "an array";
    return "an object";
}

std::string get_string(const Json& j, const char* name, bool required = true, std::string fallback = "") {
    const Json* v = member(j, name);
    if (!v) {
        if (required) throw Invalid{"bad-request", std::string("missing field '") + name + "'"};
        return fallback;
    }
    if (!v->is_string())
        throw Invalid{"bad-request", std::string("field '") + name + "' must be a string, not " + type_name(*v)};
    return v->get<std::string>();
}

std::optional<model::Seq> get_seq(const Json& j, const char* name, bool required) {
    const Json* v = member(j, name);
    if (!v) {
        if (required) throw Invalid{"bad-request", std::string("missing field '") + name + "'"};
        return std::nullopt;
    }
    if (!v->is_number_integer() || v->get<std::int64_t>() < 0)
        throw Invalid{"bad-request", std::string("field '") + name + "' must be an integer >= 0"};
    return v->get<model::Seq>();
}

// An optional integer field within [min, max]. JSON numbers above INT64_MAX are unsigned
// and must not wrap into the range.
std::optional<int> get_int(const Json& j, const char* name, int min, int max) {
    const Json* v = member(j, name);
    if (!v) return std::nullopt;
    bool ok = false;
    if (v->is_number_unsigned())
        ok = max >= 0 && v->get<std::uint64_t>() <= static_cast<std::uint64_t>(max) &&
             (min <= 0 || v->get<std::uint64_t>() >= static_cast<std::uint64_t>(min));
    else if (v->is_number_integer())
        ok = v->get<std::int64_t>() >= min && v->get<std::int64_t>() <= max;
    if (!ok)
        throw Invalid{"bad-request", std::string("field '") + name + "' must be an integer from " + std::to_string(min) +
                                         " to " + std::to_string(max)};
    return v->get<int>();
}

std::string get_account(const Json& j) {
    auto a = get_string(j, "account");
    if (a.empty()) throw Invalid{"bad-request", "field 'account' must not be empty"};
    return a;
}

std::string get_jid(const Json& j, const char* name, bool bare) {
    auto text = get_string(j, name);
    auto jid = xmpp::Jid::parse(text);
    if (!jid) throw Invalid{"bad-jid", std::string("field '") + name + "': " + jid.error().message};
    if (bare && !jid.value().is_bare())
        throw Invalid{"bad-jid", std::string("field '") + name + "' must be a bare JID (no /resource)"};
    return bare ? jid.value().bare() : jid.value().full();
}

void check_one_of(const std::string& value, const char* name, std::initializer_list<const char*> allowed) {
    std::string list;
    for (const char* a : allowed) {
        if (value == a) return;
        list += list.empty() ? "" : ", ";
        list += std::string("'") + a + "'";
    }
    throw Invalid{"bad-request", std::string("field '") + name + "' must be one of " + list + ", not '" + value + "'"};
}

// Deeper than 32 levels of arrays and objects: refused before anything copies it.
bool too_deep(std::string_view line) {
    int depth = 0;
    bool in_string = false, escaped = false;
    for (char c : line) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > 32) return true;
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    return false;
}

std::vector<std::string> get_strings(const Json& j, const char* name, bool required) {
    const Json* v = member(j, name);
    if (!v) {
        if (required) throw Invalid{"bad-request", std::string("missing field '") + name + "'"};
        return {};
    }
    if (!v->is_array() || v->size() > 1000)
        throw Invalid{"bad-request", std::string("field '") + name + "' must be an array of at most 1000 strings"};
    std::vector<std::string> out;
    for (const auto& e : *v) {
        if (!e.is_string()) throw Invalid{"bad-request", std::string("field '") + name + "' must hold only strings"};
        out.push_back(e.get<std::string>());
    }
    return out;
}

// A room nick is the resource of an occupant JID (RFC 7622 §3.4, XEP-0045 §7.2.3).
void check_nick(const std::string& nick) {
    if (nick.empty()) throw Invalid{"bad-request", "the nick must not be empty"};
    if (!xmpp::Jid::parse("r@example.org/" + nick)) throw Invalid{"bad-request", "the nick '" + nick + "' is not usable"};
}

bool valid_client_name(const std::string& s) {
    if (s.empty() || s.size() > 64) return false;
    for (unsigned char c : s)
        if (!std::isalnum(c) && c != '.' && c != '_' && c != '-') return false;
    return true;
}

model::Command parse_command(const std::string& op, const Json& j) {
    if (op == "hello") {
        model::Hello h;
        h.client = get_string(j, "client");
        if (!valid_client_name(h.client))
            throw Invalid{"bad-request", "field 'client' must be 1 to 64 of A-Z a-z 0-9 . _ -"};
        h.since = get_seq(j, "since", false);
        if (const Json* r = member(j, "replay")) {
            if (!r->is_boolean()) throw Invalid{"bad-request", "field 'replay' must be a boolean"};
            h.replay = r->get<bool>();
        }
        return h;
    }
    if (op == "ack") return model::Ack{*get_seq(j, "seq", true)};
    if (op == "accounts") return model::ListAccounts{};
    if (op == "send") {
        model::Send s;
        s.account = get_account(j);
        s.to = get_jid(j, "to", false);
        s.body = get_string(j, "body");
        if (s.body.empty()) throw Invalid{"bad-request", "field 'body' must not be empty"};
        s.type = get_string(j, "type", false, "");
        if (member(j, "type")) check_one_of(s.type, "type", {"chat", "groupchat", "normal"});
        s.client_id = get_string(j, "client_id", false);
        s.replace = get_string(j, "replace", false);
        if (member(j, "client_id")) {
            bool printable = !s.client_id.empty() && s.client_id.size() <= 128;
            for (unsigned char c : s.client_id) printable = printable && c > 0x20 && c < 0x7f;
            if (!printable)
                throw Invalid{"bad-request", "field 'client_id' must be 1 to 128 printable ASCII characters"};
        }
        return s;
    }
    if (op == "roster") return model::GetRoster{get_account(j)};
    if (op == "join") {
        model::Join c;
        c.account = get_account(j);
        c.room = get_jid(j, "room", true);
        c.nick = get_string(j, "nick", false);
        c.password = get_string(j, "password", false);
        if (member(j, "nick")) check_nick(c.nick);
        return c;
    }
    if (op == "part") {
        std::string account = get_account(j);
        return model::Part{account, get_jid(j, "room", true), get_string(j, "reason", false)};
    }
    if (op == "rooms") return model::ListRooms{get_account(j)};
    if (op == "subject") {
        std::string account = get_account(j);
        std::string room = get_jid(j, "room", true);
        return model::SetSubject{account, room, get_string(j, "subject")};
    }
    if (op == "kick") {
        model::Kick c;
        c.account = get_account(j);
        c.room = get_jid(j, "room", true);
        c.nick = get_string(j, "nick");
        check_nick(c.nick);
        c.reason = get_string(j, "reason", false);
        return c;
    }
    if (op == "invite") {
        model::SendInvite c;
        c.account = get_account(j);
        c.room = get_jid(j, "room", true);
        c.jid = get_jid(j, "jid", true);
        c.reason = get_string(j, "reason", false);
        return c;
    }
    if (op == "history") {
        model::History c;
        c.account = get_account(j);
        c.with = get_jid(j, "with", true);
        if (member(j, "before")) c.before = get_string(j, "before");
        c.after = get_string(j, "after", false);
        if (c.before && !c.after.empty()) throw Invalid{"bad-request", "give 'before' or 'after', not both"};
        if (auto max = get_int(j, "max", 1, 200)) c.max = *max;
        return c;
    }
    if (op == "chat-state") {
        model::SendChatState c;
        c.account = get_account(j);
        c.to = get_jid(j, "to", false);
        c.state = get_string(j, "state");
        check_one_of(c.state, "state", {"active", "composing", "paused", "inactive", "gone"});
        return c;
    }
    if (op == "displayed") {
        model::Displayed c;
        c.account = get_account(j);
        c.to = get_jid(j, "to", false);
        c.msg_id = get_string(j, "msg_id");
        if (c.msg_id.empty()) throw Invalid{"bad-request", "field 'msg_id' must not be empty"};
        return c;
    }
    if (op == "roster-set") {
        model::RosterSet c;
        c.account = get_account(j);
        c.jid = get_jid(j, "jid", true);
        c.name = get_string(j, "name", false);
        c.groups = get_strings(j, "groups", false);
        return c;
    }
    if (op == "roster-remove") {
        std::string account = get_account(j);
        return model::RosterRemove{account, get_jid(j, "jid", true)};
    }
    if (op == "block" || op == "unblock") {
        model::Block c;
        c.account = get_account(j);
        c.block = op == "block";
        for (const auto& text : get_strings(j, "jids", true)) {
            auto jid = xmpp::Jid::parse(text);
            if (!jid) throw Invalid{"bad-jid", "field 'jids': '" + text + "': " + jid.error().message};
            c.jids.push_back(jid.value().full());
        }
        if (c.block && c.jids.empty()) throw Invalid{"bad-request", "field 'jids' must not be empty"};
        return c;
    }
    if (op == "blocklist") return model::GetBlocklist{get_account(j)};
    if (op == "pin") return model::ProbeCertificate{get_account(j)};
    if (op == "cancel") {
        model::CancelSend c;
        c.account = get_account(j);
        c.msg_id = get_string(j, "msg_id");
        if (c.msg_id.empty()) throw Invalid{"bad-request", "field 'msg_id' must not be empty"};
        return c;
    }
    if (op == "presences") return model::ListPresences{get_account(j)};
    if (op == "encryption") {
        model::SetEncryption c;
        c.account = get_account(j);
        c.jid = get_jid(j, "jid", true);
        c.mode = get_string(j, "set", false);
        if (member(j, "set")) check_one_of(c.mode, "set", {"omemo", "off", "default"});
        return c;
    }
    if (op == "omemo-devices") {
        model::OmemoDevices c;
        c.account = get_account(j);
        if (member(j, "jid")) c.jid = get_jid(j, "jid", true);
        return c;
    }
    if (op == "omemo-trust" || op == "omemo-distrust") {
        model::OmemoTrust c;
        c.account = get_account(j);
        c.jid = get_jid(j, "jid", true);
        auto device = get_int(j, "device", 1, 2147483647);  // XEP-0384 §5.1: 1..2^31-1
        if (!device) throw Invalid{"bad-request", "field 'device' is required"};
        c.device = static_cast<std::uint32_t>(*device);
        c.trusted = op == "omemo-trust";
        return c;
    }
    if (op == "read-marker") {
        model::SetReadMarker c;
        c.account = get_account(j);
        c.peer = get_jid(j, "peer", true);
        c.stamp = get_string(j, "stamp", false);
        if (!c.stamp.empty() && !xmpp::parse_datetime(c.stamp))
            throw Invalid{"bad-request", "field 'stamp' must be a UTC time like 2026-11-25T12:00:00.000Z"};
        return c;
    }
    if (op == "presence") {
        model::SetPresence p;
        p.account = get_account(j);
        p.show = get_string(j, "show", false);
        check_one_of(p.show, "show", {"", "away", "chat", "dnd", "xa"});
        p.status = get_string(j, "status", false);
        p.priority = get_int(j, "priority", -128, 127);  // RFC 6121 §4.7.2.3
        return p;
    }
    if (op == "subscribe" || op == "unsubscribe" || op == "approve" || op == "deny") {
        std::string account = get_account(j);
        return model::ChangeSubscription{account, get_jid(j, "jid", true), op};
    }
    if (op == "raw") {
        model::Raw r;
        r.account = get_account(j);
        r.xml = get_string(j, "xml");
        return r;
    }
    throw Invalid{"unknown-op", "unknown op '" + op + "'"};
}

}  // namespace

Session::Session(std::string daemon_version) : daemon_version_(std::move(daemon_version)) {}

void Session::receive(std::string_view bytes) { splitter_.feed(bytes); }

std::optional<Request> Session::next_request() {
    while (auto next = splitter_.next()) {
        if (!*next) {
            error(nullptr, next->error().code, next->error().message);
            continue;
        }
        std::string line = std::move(*next).value();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines are harmless
        // Nesting is bounded: JSON values are copied and printed recursively.
        if (too_deep(line)) {
            error(nullptr, "bad-json", "nested deeper than 32 levels");
            continue;
        }
        Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded() || !j.is_object()) {
            error(nullptr, "bad-json", j.is_discarded() ? "the line is not valid JSON" : "the line is not a JSON object");
            continue;
        }
        Json id = j.contains("id") ? j["id"] : Json(nullptr);
        const Json* op = member(j, "op");
        if (!op || !op->is_string()) {
            error(id, "unknown-op", op ? "field 'op' must be a string" : "missing field 'op'");
            continue;
        }
        std::string op_name = op->get<std::string>();
        if (!hello_sent_ && op_name != "hello") {
            error(id, "hello-required", "send hello first");
            continue;
        }
        if (hello_sent_ && op_name == "hello") {
            error(id, "bad-request", "hello was already sent on this connection");
            continue;
        }
        try {
            Request r{id, op_name, parse_command(op_name, j)};
            if (op_name == "hello") hello_sent_ = true;
            return r;
        } catch (const Invalid& inv) {
            error(id, inv.code, inv.message);
        } catch (const Json::exception& e) {
            error(id, "bad-request", e.what());
        }
    }
    return std::nullopt;
}

void Session::reply(const Request& request, const model::Reply& reply) {
    if (!reply.ok()) {
        if (std::holds_alternative<model::Hello>(request.command)) hello_sent_ = false;  // may try again
        error(request.id, reply.error_code, reply.error_message);
        return;
    }
    Json j;
    if (!request.id.is_null()) j["id"] = request.id;
    j["ok"] = true;
    auto accounts = [&] {
        Json a = Json::array();
        for (const auto& info : reply.accounts) a.push_back(to_json(info));
        return a;
    };
    if (auto* h = std::get_if<model::Hello>(&request.command)) {
        client_ = h->client;
        attached_ = true;
        j["version"] = protocol_version;
        j["daemon"] = daemon_version_;
        j["client"] = client_;
        j["cursor"] = reply.cursor;
        j["last_seq"] = reply.last_seq;
        j["accounts"] = accounts();
    } else if (std::holds_alternative<model::Ack>(request.command)) {
        j["cursor"] = reply.cursor;
    } else if (std::holds_alternative<model::ListAccounts>(request.command)) {
        j["accounts"] = accounts();
    } else if (std::holds_alternative<model::Send>(request.command)) {
        j["msg_id"] = reply.msg_id;
        if (reply.duplicate) j["duplicate"] = true;
    } else if (std::holds_alternative<model::GetRoster>(request.command)) {
        Json items = Json::array();
        for (const auto& i : reply.items) items.push_back(to_json(i));
        j["items"] = std::move(items);
    } else if (std::holds_alternative<model::Join>(request.command) && !reply.rooms.empty()) {
        const auto& r = reply.rooms.front();
        Json room = to_json(r);
        j["room"] = r.room;
        j["nick"] = r.nick;
        j["created"] = r.created;
        j["subject"] = r.subject;
        j["occupants"] = room["occupants"];
    } else if (std::holds_alternative<model::ListRooms>(request.command)) {
        Json rooms = Json::array();
        for (const auto& r : reply.rooms) rooms.push_back(to_json(r));
        j["rooms"] = std::move(rooms);
    } else if (std::holds_alternative<model::History>(request.command)) {
        j["complete"] = reply.complete;
        j["first"] = reply.first;
        j["last"] = reply.last;
        j["source"] = reply.source;
        Json messages = Json::array();
        for (const auto& e : reply.messages) messages.push_back(to_json(e));
        j["messages"] = std::move(messages);
    } else if (std::holds_alternative<model::Displayed>(request.command)) {
        j["sent"] = reply.sent;
    } else if (std::holds_alternative<model::GetBlocklist>(request.command)) {
        j["jids"] = reply.jids;
    } else if (std::holds_alternative<model::ListPresences>(request.command)) {
        Json presences = Json::array();
        for (const auto& p : reply.presences)
            presences.push_back(Json{{"from", p.from}, {"available", p.available}, {"show", p.show},
                                     {"status", p.status}, {"priority", p.priority}});
        j["presences"] = std::move(presences);
    } else if (std::holds_alternative<model::SetReadMarker>(request.command)) {
        j["stamp"] = reply.stamp;
    } else if (std::holds_alternative<model::SetEncryption>(request.command)) {
        j["jid"] = std::get<model::SetEncryption>(request.command).jid;
        j["encryption"] = reply.encryption;
        j["default"] = reply.encryption_default;
    } else if (std::holds_alternative<model::OmemoDevices>(request.command)) {
        Json devices = Json::array();
        for (const auto& d : reply.omemo_devices)
            devices.push_back(Json{{"jid", d.jid}, {"device", d.device}, {"fingerprint", d.fingerprint},
                                   {"trust", d.trust}, {"listed", d.listed}});
        j["devices"] = std::move(devices);
    } else if (std::holds_alternative<model::ProbeCertificate>(request.command)) {
        const auto& c = reply.certificate;
        j["server"] = c.server;
        j["pin"] = c.pin;
        j["subject"] = c.subject;
        j["issuer"] = c.issuer;
        j["not_before"] = c.not_before;
        j["not_after"] = c.not_after;
        j["names"] = c.names;
        j["trusted"] = c.verify_error.empty();
        j["verify_error"] = c.verify_error;
    }
    write(j);
}

void Session::event(const model::Event& event) {
    if (!attached_) return;
    output_ += encode(event);
    output_ += '\n';
}

void Session::write(const Json& j) {
    output_ += j.dump(-1, ' ', false, Json::error_handler_t::replace);
    output_ += '\n';
}

void Session::error(const Json& id, std::string_view code, std::string_view message) {
    Json j;
    if (!id.is_null()) j["id"] = id;
    j["ok"] = false;
    j["error"] = Json{{"code", code}, {"message", message}};
    write(j);
}

}  // namespace jsonl
