#include "frontends/model/codec.hpp"

#include "protocol/base/utf8.hpp"

namespace model::codec {

using Json = nlohmann::ordered_json;

namespace {

Json body_fields(const model::Message& m) {
    Json j{{"from", m.from},         {"to", m.to},           {"type", m.type},
           {"body", m.body},         {"msg_id", m.msg_id},   {"delayed", m.delayed},
           {"outgoing", m.outgoing}, {"carbon", m.carbon},   {"replaces", m.replaces},
           {"history", m.history}};
    // Only on encrypted messages (protocol version 1 readers ignore unknown fields).
    if (!m.encryption.empty()) j["encryption"] = m.encryption;
    if (!m.error.empty()) j["error"] = m.error;
    if (!m.trust.empty()) j["trust"] = m.trust;
    return j;
}
Json body_fields(const model::MessageState& s) {
    return Json{{"msg_id", s.msg_id}, {"state", model::to_string(s.state)}, {"error", s.error}};
}
Json body_fields(const model::Presence& p) {
    return Json{{"from", p.from},
                {"available", p.available},
                {"show", p.show},
                {"status", p.status},
                {"priority", p.priority}};
}
Json body_fields(const model::Roster& r) {
    Json items = Json::array();
    for (const auto& i : r.items) items.push_back(to_json(i));
    return Json{{"push", r.push}, {"items", std::move(items)}};
}
Json body_fields(const model::Subscription& s) { return Json{{"from", s.from}, {"kind", s.kind}}; }
Json body_fields(const model::AccountState& a) {
    return Json{{"state", a.state}, {"reason", a.reason}, {"jid", a.jid}};
}
Json body_fields(const model::ChatState& c) { return Json{{"from", c.from}, {"to", c.to}, {"state", c.state}}; }
Json body_fields(const model::RoomState& r) {
    return Json{{"room", r.room}, {"state", r.state}, {"nick", r.nick}, {"reason", r.reason}, {"actor", r.actor}};
}
Json body_fields(const model::Occupant& o) {
    Json j{{"room", o.room}};
    Json who = to_json(o.who);  // kept alive: items() only refers to it
    for (auto& [k, v] : who.items()) j[k] = v;
    j["change"] = model::to_string(o.change);
    j["new_nick"] = o.new_nick;
    j["actor"] = o.actor;
    j["reason"] = o.reason;
    return j;
}
Json body_fields(const model::Subject& s) { return Json{{"room", s.room}, {"subject", s.subject}, {"nick", s.nick}}; }
Json body_fields(const model::Invite& i) {
    return Json{{"room", i.room},         {"from", i.from},         {"reason", i.reason},
                {"password", i.password}, {"direct", i.direct}};
}
Json body_fields(const model::Blocklist& b) { return Json{{"blocked", b.blocked}, {"unblocked", b.unblocked}}; }
// "read_until", not "stamp": the envelope has that one.
Json body_fields(const model::ReadMarker& r) { return Json{{"peer", r.peer}, {"read_until", r.stamp}}; }

// Reads a field of the expected type; throws nlohmann's type_error otherwise, which
// decode() turns into an error value.
template <class T>
T field(const Json& j, const char* name) {
    return j.at(name).get<T>();
}

// Fields added after version 1's first release: absent in older stored lines is fine.
template <class T>
T optional_field(const Json& j, const char* name, T fallback) {
    auto it = j.find(name);
    return it == j.end() ? fallback : it->get<T>();
}

model::RosterItem roster_item(const Json& j) {
    model::RosterItem i;
    i.jid = field<std::string>(j, "jid");
    i.name = field<std::string>(j, "name");
    i.subscription = field<std::string>(j, "subscription");
    i.groups = field<std::vector<std::string>>(j, "groups");
    i.nick = optional_field<std::string>(j, "nick", "");
    return i;
}

model::OccupantInfo occupant_info(const Json& j) {
    return {field<std::string>(j, "nick"), field<std::string>(j, "jid"),  field<std::string>(j, "role"),
            field<std::string>(j, "affiliation"), field<std::string>(j, "show"), field<std::string>(j, "status")};
}

}  // namespace

Json to_json(const model::OccupantInfo& o) {
    return Json{{"nick", o.nick}, {"jid", o.jid},       {"role", o.role}, {"affiliation", o.affiliation},
                {"show", o.show}, {"status", o.status}};
}

Json to_json(const model::RoomInfo& r) {
    Json occupants = Json::array();
    for (const auto& o : r.occupants) occupants.push_back(to_json(o));
    return Json{{"room", r.room},       {"state", r.state},     {"nick", r.nick},
                {"reason", r.reason},   {"subject", r.subject}, {"occupants", std::move(occupants)}};
}

Json to_json(const model::RosterItem& item) {
    return Json{{"jid", item.jid},
                {"name", item.name},
                {"subscription", item.subscription},
                {"groups", item.groups},
                {"nick", item.nick}};
}

Json to_json(const model::AccountInfo& a) {
    Json j{{"account", a.account}, {"jid", a.jid},     {"state", a.state},
           {"bound_jid", a.bound_jid}, {"reason", a.reason}, {"auth", a.auth},
           {"connection", a.connection}, {"priority", a.priority}};
    if (a.capabilities.known)
        j["capabilities"] = Json{{"stream_management", a.capabilities.stream_management},
                                 {"archive", a.capabilities.archive},
                                 {"carbons", a.capabilities.carbons}};
    return j;
}

Json to_json(const model::Event& event) {
    Json j{{"event", model::event_name(event.body)},
           {"seq", event.seq},
           {"account", event.account},
           {"stamp", event.stamp}};
    Json fields = std::visit([](const auto& b) { return body_fields(b); }, event.body);
    for (auto& [k, v] : fields.items()) j[k] = std::move(v);
    return j;
}

// RFC 8259 §7, as nlohmann/json writes it: '"' and '\' escaped, the control characters
// as \b \f \n \r \t or \u00xx (lowercase), everything else (UTF-8 included) as is.
bool append_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    bool valid = true;
    out += '"';
    std::size_t plain = 0;  // start of the run not yet copied
    for (std::size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            std::uint32_t cp;
            std::size_t len = xmpp::utf8_sequence(s, i, cp);
            if (len == 0) valid = false;
            i += len ? len : 1;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\') {
            ++i;
            continue;
        }
        out.append(s.data() + plain, i - plain);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 0xF];
        }
        plain = ++i;
    }
    out.append(s.data() + plain, s.size() - plain);
    out += '"';
    return valid;
}

namespace {

// The events every message makes (message, message-state, presence, ...) written straight
// into the line, without a tree: the same bytes as to_json(event).dump(-1, ' ', false,
// replace), which builds an ordered tree and cost about 65,000 instructions per message
// event, twice per event (the store's row, then each JSON client's line; docs/
// performance.md). Only for valid UTF-8: a string that is not makes write() return false and
// encode() take the tree, whose serializer replaces what is invalid. A unit test compares
// the two on every kind of event.
class Writer {
public:
    explicit Writer(std::string& out) : out_(out) { out_ += '{'; }
    Writer& text(std::string_view key, std::string_view value) {
        name(key);
        quoted(value);
        return *this;
    }
    Writer& boolean(std::string_view key, bool value) {
        name(key);
        out_ += value ? "true" : "false";
        return *this;
    }
    Writer& number(std::string_view key, std::int64_t value) {
        name(key);
        out_ += std::to_string(value);
        return *this;
    }
    // Closes the object; false when a string was not valid UTF-8.
    bool close() {
        out_ += '}';
        return valid_;
    }

private:
    void name(std::string_view key) {
        out_ += first_ ? "\"" : ",\"";
        first_ = false;
        out_ += key;  // our own field names: nothing to escape
        out_ += "\":";
    }
    void quoted(std::string_view s) {
        if (!append_string(out_, s)) valid_ = false;
    }

    std::string& out_;
    bool first_ = true;
    bool valid_ = true;
};

void write_body(Writer& w, const model::Message& m) {
    w.text("from", m.from).text("to", m.to).text("type", m.type).text("body", m.body).text("msg_id", m.msg_id);
    w.boolean("delayed", m.delayed).boolean("outgoing", m.outgoing).text("carbon", m.carbon);
    w.text("replaces", m.replaces).boolean("history", m.history);
    if (!m.encryption.empty()) w.text("encryption", m.encryption);
    if (!m.error.empty()) w.text("error", m.error);
    if (!m.trust.empty()) w.text("trust", m.trust);
}
void write_body(Writer& w, const model::MessageState& s) {
    w.text("msg_id", s.msg_id).text("state", model::to_string(s.state)).text("error", s.error);
}
void write_body(Writer& w, const model::Presence& p) {
    w.text("from", p.from).boolean("available", p.available).text("show", p.show).text("status", p.status);
    w.number("priority", p.priority);
}
void write_body(Writer& w, const model::ChatState& c) { w.text("from", c.from).text("to", c.to).text("state", c.state); }

// Writes the event's line; false when the tree must do it (a kind written only there, or
// a string that is not valid UTF-8).
bool write(const model::Event& event, std::string& out) {
    out.reserve(256);
    return std::visit(
        [&](const auto& body) {
            if constexpr (requires(Writer& w, const decltype(body)& b) { write_body(w, b); }) {
                Writer w(out);
                w.text("event", model::event_name(event.body)).number("seq", event.seq);
                w.text("account", event.account).text("stamp", event.stamp);
                write_body(w, body);
                return w.close();
            } else {
                return false;
            }
        },
        event.body);
}

}  // namespace

std::string encode(const model::Event& event) {
    std::string out;
    if (write(event, out)) return out;
    // Invalid UTF-8 from the network is replaced, never a reason to lose the event.
    return to_json(event).dump(-1, ' ', false, Json::error_handler_t::replace);
}

xmpp::Result<model::Event> decode(std::string_view line) {
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) return xmpp::make_error("bad-json", "not a JSON object");
    try {
        model::Event e;
        e.seq = field<model::Seq>(j, "seq");
        e.account = field<std::string>(j, "account");
        e.stamp = field<std::string>(j, "stamp");
        std::string name = field<std::string>(j, "event");
        if (name == "message") {
            model::Message m;
            m.from = field<std::string>(j, "from");
            m.to = field<std::string>(j, "to");
            m.type = field<std::string>(j, "type");
            m.body = field<std::string>(j, "body");
            m.msg_id = field<std::string>(j, "msg_id");
            m.delayed = field<bool>(j, "delayed");
            m.outgoing = field<bool>(j, "outgoing");
            m.carbon = optional_field<std::string>(j, "carbon", "");
            m.replaces = optional_field<std::string>(j, "replaces", "");
            m.history = optional_field<bool>(j, "history", false);
            m.encryption = optional_field<std::string>(j, "encryption", "");
            m.error = optional_field<std::string>(j, "error", "");
            m.trust = optional_field<std::string>(j, "trust", "");
            e.body = std::move(m);
        } else if (name == "message-state") {
            auto state = model::parse_delivery(field<std::string>(j, "state"));
            if (!state) return xmpp::make_error("bad-event", "unknown message state '" + j["state"].get<std::string>() + "'");
            e.body = model::MessageState{field<std::string>(j, "msg_id"), *state, field<std::string>(j, "error")};
        } else if (name == "presence") {
            e.body = model::Presence{field<std::string>(j, "from"), field<bool>(j, "available"),
                                     field<std::string>(j, "show"), field<std::string>(j, "status"),
                                     optional_field<int>(j, "priority", 0)};
        } else if (name == "roster") {
            model::Roster r;
            r.push = field<bool>(j, "push");
            for (const auto& i : j.at("items")) r.items.push_back(roster_item(i));
            e.body = std::move(r);
        } else if (name == "subscription") {
            e.body = model::Subscription{field<std::string>(j, "from"), field<std::string>(j, "kind")};
        } else if (name == "account-state") {
            e.body = model::AccountState{field<std::string>(j, "state"), field<std::string>(j, "reason"),
                                         field<std::string>(j, "jid")};
        } else if (name == "chat-state") {
            e.body = model::ChatState{field<std::string>(j, "from"), field<std::string>(j, "to"),
                                      field<std::string>(j, "state")};
        } else if (name == "room") {
            e.body = model::RoomState{field<std::string>(j, "room"), field<std::string>(j, "state"),
                                      field<std::string>(j, "nick"), field<std::string>(j, "reason"),
                                      field<std::string>(j, "actor")};
        } else if (name == "occupant") {
            auto change = model::occupant_change(field<std::string>(j, "change"));
            if (!change) return xmpp::make_error("bad-event", "unknown occupant change '" + j["change"].get<std::string>() + "'");
            e.body = model::Occupant{field<std::string>(j, "room"), occupant_info(j), *change,
                                     field<std::string>(j, "new_nick"), field<std::string>(j, "actor"),
                                     field<std::string>(j, "reason")};
        } else if (name == "subject") {
            e.body = model::Subject{field<std::string>(j, "room"), field<std::string>(j, "subject"),
                                    field<std::string>(j, "nick")};
        } else if (name == "invite") {
            e.body = model::Invite{field<std::string>(j, "room"), field<std::string>(j, "from"),
                                   field<std::string>(j, "reason"), field<std::string>(j, "password"),
                                   field<bool>(j, "direct")};
        } else if (name == "blocklist") {
            e.body = model::Blocklist{field<std::vector<std::string>>(j, "blocked"),
                                      field<std::vector<std::string>>(j, "unblocked")};
        } else if (name == "read-marker") {
            e.body = model::ReadMarker{field<std::string>(j, "peer"), field<std::string>(j, "read_until")};
        } else {
            return xmpp::make_error("bad-event", "unknown event '" + name + "'");
        }
        return e;
    } catch (const Json::exception& ex) {
        return xmpp::make_error("bad-event", ex.what());
    }
}

}  // namespace model::codec
