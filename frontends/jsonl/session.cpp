#include "frontends/jsonl/session.hpp"

#include "frontends/jsonl/request.hpp"
#include "frontends/model/codec.hpp"

namespace jsonl {

using Json = nlohmann::ordered_json;
using model::codec::encode;
using model::codec::to_json;

namespace {

const Json* member(const Json& j, const char* name) {
    auto it = j.find(name);
    return it == j.end() ? nullptr : &*it;
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

Json accounts_json(const model::Reply& reply) {
    Json a = Json::array();
    for (const auto& info : reply.accounts) a.push_back(to_json(info));
    return a;
}

// What a successful reply carries besides "id" and "ok", by the command it answers
// (docs/json-protocol.md); `hello` is the session's own.
void add_reply_fields(const model::Command& command, const model::Reply& reply, Json& j) {
    if (std::holds_alternative<model::Ack>(command)) {
        j["cursor"] = reply.cursor;
    } else if (std::holds_alternative<model::ListAccounts>(command)) {
        j["accounts"] = accounts_json(reply);
    } else if (std::holds_alternative<model::Send>(command)) {
        j["msg_id"] = reply.msg_id;
        if (reply.duplicate) j["duplicate"] = true;
    } else if (std::holds_alternative<model::GetRoster>(command)) {
        Json items = Json::array();
        for (const auto& i : reply.items) items.push_back(to_json(i));
        j["items"] = std::move(items);
    } else if (std::holds_alternative<model::Join>(command) && !reply.rooms.empty()) {
        const auto& r = reply.rooms.front();
        Json room = to_json(r);
        j["room"] = r.room;
        j["nick"] = r.nick;
        j["created"] = r.created;
        j["subject"] = r.subject;
        j["occupants"] = room["occupants"];
    } else if (std::holds_alternative<model::ListRooms>(command)) {
        Json rooms = Json::array();
        for (const auto& r : reply.rooms) rooms.push_back(to_json(r));
        j["rooms"] = std::move(rooms);
    } else if (std::holds_alternative<model::History>(command)) {
        j["complete"] = reply.complete;
        j["first"] = reply.first;
        j["last"] = reply.last;
        j["source"] = reply.source;
        Json messages = Json::array();
        for (const auto& e : reply.messages) messages.push_back(to_json(e));
        j["messages"] = std::move(messages);
    } else if (std::holds_alternative<model::Displayed>(command)) {
        j["sent"] = reply.sent;
    } else if (std::holds_alternative<model::GetBlocklist>(command)) {
        j["jids"] = reply.jids;
    } else if (std::holds_alternative<model::ListPresences>(command)) {
        Json presences = Json::array();
        for (const auto& p : reply.presences)
            presences.push_back(Json{{"from", p.from}, {"available", p.available}, {"show", p.show},
                                     {"status", p.status}, {"priority", p.priority}});
        j["presences"] = std::move(presences);
    } else if (std::holds_alternative<model::SetReadMarker>(command)) {
        j["stamp"] = reply.stamp;
    } else if (std::holds_alternative<model::SetEncryption>(command)) {
        j["jid"] = std::get<model::SetEncryption>(command).jid;
        j["encryption"] = reply.encryption;
        j["default"] = reply.encryption_default;
    } else if (std::holds_alternative<model::OmemoDevices>(command)) {
        Json devices = Json::array();
        for (const auto& d : reply.omemo_devices)
            devices.push_back(Json{{"jid", d.jid}, {"device", d.device}, {"fingerprint", d.fingerprint},
                                   {"trust", d.trust}, {"listed", d.listed}});
        j["devices"] = std::move(devices);
    } else if (std::holds_alternative<model::ProbeCertificate>(command)) {
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
        auto command = parse_command(op_name, j);
        if (!command) {
            error(id, command.error().code, command.error().message);
            continue;
        }
        if (op_name == "hello") hello_sent_ = true;
        return Request{id, op_name, std::move(command).value()};
    }
    return std::nullopt;
}

void Session::reply(const Request& request, const model::Reply& reply) {
    if (!reply.ok()) {
        if (std::holds_alternative<model::Hello>(request.command)) hello_sent_ = false;  // may try again
        error(request.id, reply.error_code, reply.error_message);
        return;
    }
    if (std::holds_alternative<model::Send>(request.command) && !reply.duplicate) {
        // The reply to every send, written without a tree (issue 15: the tree and its dump
        // were about 8,000 instructions of each sent message, this 2,500): the bytes write() makes of
        // {"id", "ok", "msg_id"}, as a unit test checks.
        const std::size_t size = output_.size();
        if (!request.id.is_null()) {
            output_ += "{\"id\":";
            output_ += request.id.dump(-1, ' ', false, Json::error_handler_t::replace);
            output_ += ",\"ok\":true,\"msg_id\":";
        } else {
            output_ += "{\"ok\":true,\"msg_id\":";
        }
        if (model::codec::append_string(output_, reply.msg_id)) {
            output_ += "}\n";
            return;
        }
        output_.resize(size);  // not valid UTF-8: the tree below replaces what is invalid
    }
    Json j;
    if (!request.id.is_null()) j["id"] = request.id;
    j["ok"] = true;
    if (auto* h = std::get_if<model::Hello>(&request.command)) {
        client_ = h->client;
        attached_ = true;
        j["version"] = protocol_version;
        j["daemon"] = daemon_version_;
        j["client"] = client_;
        j["cursor"] = reply.cursor;
        j["last_seq"] = reply.last_seq;
        j["accounts"] = accounts_json(reply);
    } else {
        add_reply_fields(request.command, reply, j);
    }
    write(j);
}

void Session::event(const model::Event& event) {
    if (!attached_) return;
    output_ += encode(event);
    output_ += '\n';
}

void Session::event(std::string_view encoded) {
    if (!attached_) return;
    output_ += encoded;
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
