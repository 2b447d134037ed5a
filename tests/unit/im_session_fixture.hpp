#pragma once
// The fixture of the AccountSession tests (im_session*_test.cpp): the session over an
// in-memory store (MemoryStore), a port that records what goes out (RecordingPort) and a
// stand-in for end-to-end encryption (RecordingEncryption).
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <set>

#include "protocol/im/session.hpp"
#include "stanza_helpers.hpp"

namespace im_session_test {

using namespace xmpp;
using namespace xmpp::im;

using test::frame;

// The account's rows, in memory. `fail` makes every write fail (a full disk).
struct MemoryStore final : SessionStore {
    std::vector<Outgoing> outbox;
    std::vector<model::Event> events;
    // De-duplication keys and aliases -> the seq of the event (as text), or the alias's value.
    std::map<std::string, std::string> keys;
    std::map<std::string, std::string> values;  // kept per account ("mam_last", ...)
    bool fail = false;
    int outbox_reads = 0;  // outgoing(): what an acknowledgement costs
    int state_writes = 0;  // set_state(): an outbox row written again

    static Error failure() { return make_error("io", "disk full"); }
    model::Seq add(model::Event& e) {
        e.seq = static_cast<model::Seq>(events.size()) + 1;
        events.push_back(e);
        return e.seq;
    }
    Outgoing* find(const std::string& id) {
        auto it = std::find_if(outbox.begin(), outbox.end(), [&](const Outgoing& o) { return o.msg_id == id; });
        return it == outbox.end() ? nullptr : &*it;
    }

    std::optional<Outgoing> outgoing(const std::string& msg_id) override {
        ++outbox_reads;
        if (auto* o = find(msg_id)) return *o;
        return std::nullopt;
    }
    Result<std::vector<Outgoing>> pending() override {
        std::vector<Outgoing> out;
        for (const auto& o : outbox)
            if (o.state == "accepted" || o.state == "sent") out.push_back(o);
        return out;
    }
    Result<bool> enqueue(const Outgoing& entry, std::vector<model::Event>& evs) override {
        if (fail) return failure();
        if (find(entry.msg_id)) return false;
        outbox.push_back(entry);
        for (auto& e : evs) add(e);
        return true;
    }
    Status set_state(const std::string& msg_id, Delivery state, const std::string&, model::Event& event) override {
        if (fail) return failure();
        ++state_writes;
        find(msg_id)->state = std::string(to_string(state));
        add(event);
        return Ok{};
    }
    std::optional<std::string> inbound(const std::string& key) override {
        auto it = keys.find(key);
        if (it == keys.end()) return std::nullopt;
        return it->second;
    }
    Result<std::vector<model::Event>> messages(const std::string& peer, const MessageRange& range,
                                               std::size_t limit) override {
        std::vector<model::Event> out;
        for (const auto& e : events) {
            auto* m = std::get_if<model::Message>(&e.body);
            if (!m || (m->outgoing ? m->to : Jid::parse(m->from).value().bare()) != peer) continue;
            if ((range.after && e.seq <= *range.after) || (range.before && e.seq >= *range.before)) continue;
            out.push_back(e);
        }
        if (out.size() > limit) out.erase(range.newest ? out.begin() : out.begin() + static_cast<long>(limit),
                                          range.newest ? out.end() - static_cast<long>(limit) : out.end());
        return out;
    }
    Result<std::optional<model::Seq>> message_seq(const std::string& peer, const std::string& msg_id) override {
        for (const auto& e : events)
            if (auto* m = std::get_if<model::Message>(&e.body);
                m && m->msg_id == msg_id && !peer.empty() && model::conversation_of(*m) == peer)
                return std::optional<model::Seq>(e.seq);
        return std::optional<model::Seq>();
    }
    std::optional<model::Event> event(model::Seq seq) override {
        if (seq < 1 || seq > static_cast<model::Seq>(events.size())) return std::nullopt;
        return events[static_cast<std::size_t>(seq - 1)];
    }
    Status append(model::Event& event) override {
        if (fail) return failure();
        add(event);
        return Ok{};
    }
    Result<bool> append_once(model::Event& event, const std::string& key,
                             const std::vector<std::pair<std::string, std::string>>& aliases,
                             const std::vector<KeptWrite>& writes) override {
        if (fail) return failure();
        if (!key.empty() && keys.count(key)) return false;
        const std::string seq = std::to_string(add(event));
        if (!key.empty()) keys[key] = seq;
        for (const auto& [alias, value] : aliases) keys.emplace(alias, value.empty() ? seq : value);
        (void)keep(writes);
        return true;
    }
    Status keep(const std::vector<KeptWrite>& writes) override {
        if (fail) return failure();
        for (const auto& w : writes) {
            if (w.value) values[w.key] = *w.value;
            else values.erase(w.key);
        }
        return Ok{};
    }
    Result<std::string> kept(const std::string& key) override {
        auto it = values.find(key);
        return it == values.end() ? std::string() : it->second;
    }
    Status keep(const std::string& key, const std::string& value) override {
        if (fail) return failure();
        values[key] = value;
        return Ok{};
    }
};

// The owner: a stream that records what was written, and front ends that record events.
struct RecordingPort final : SessionPort {
    bool is_online = true;
    unsigned long sessions = 1;
    std::vector<std::pair<std::string, std::string>> sent;  // xml, tag
    std::vector<model::Event> delivered;
    std::vector<model::EventBody> transients;
    std::vector<std::string> logs;
    // Requests out, answered by the test through answer().
    struct Request {
        std::string to, xml;
        IqCallback done;
    };
    std::vector<Request> requests;
    std::chrono::steady_clock::time_point clock = std::chrono::steady_clock::time_point{} + std::chrono::hours(1000);
    std::chrono::steady_clock::time_point started = clock;
    Capabilities caps;
    std::vector<ConfiguredRoom> configured;
    int next_id = 0;

    bool refuse_sends = false;  // online() says yes, send() no (AccountSession::send must cope)
    bool send(std::string_view xml, const std::string& tag) override {
        if (!is_online || refuse_sends) return false;
        sent.emplace_back(std::string(xml), tag);
        return true;
    }
    bool online() override { return is_online; }
    unsigned long session() override { return sessions; }
    std::string bound_jid() override { return "alice@example.org/s"; }
    std::string state_name() override { return is_online ? "online" : "disconnected"; }
    std::string wall_clock() override { return "2026-12-06T12:00:00.000Z"; }
    void set_presence(const std::string& show, const std::string&, std::optional<int>) override { presence_show = show; }
    bool chat_markers() override { return markers; }
    std::string presence_show;
    bool markers = true;
    void request(const std::string& to, const IqMaker& make, IqCallback done) override {
        if (!is_online) return done(IqReply{IqReply::Outcome::NotOnline, {}, {}});
        requests.push_back({to, make("iq" + std::to_string(requests.size() + 1)), std::move(done)});
    }
    std::chrono::steady_clock::time_point now() override { return clock; }
    std::chrono::steady_clock::time_point online_at() override { return started; }
    std::string presence_payload() override { return "<c/>"; }
    const Capabilities& capabilities() override { return caps; }
    std::vector<ConfiguredRoom> configured_rooms() override { return configured; }
    void deliver(const model::Event& event) override { delivered.push_back(event); }
    void transient(model::EventBody body) override { transients.push_back(std::move(body)); }
    void log(Level, const std::string& text) override { logs.push_back(text); }
    std::string new_id() override { return "id" + std::to_string(++next_id); }

    // The states the front ends saw for `msg_id`, in order.
    std::vector<std::string> states(const std::string& msg_id) const {
        std::vector<std::string> out;
        for (const auto& e : delivered)
            if (auto* s = std::get_if<model::MessageState>(&e.body); s && s->msg_id == msg_id) out.push_back(std::string(model::to_string(s->state)));
        return out;
    }
    std::vector<model::Message> messages() const {
        std::vector<model::Message> out;
        for (const auto& e : delivered)
            if (auto* m = std::get_if<model::Message>(&e.body)) out.push_back(*m);
        return out;
    }
};

// Encryption that records what the session asked of it: every <encrypted/> "decrypts" to
// "decrypted" and moves a stored value, nothing is marked to go encrypted.
struct RecordingEncryption final : Encryption {
    std::optional<std::vector<KeptWrite>> decrypt(const ReceivedMessage&, model::Message& msg,
                                                  const std::string&) override {
        msg.encryption = "omemo";
        msg.body = "decrypted";
        return std::vector<KeptWrite>{{"omemo:session", "moved"}};
    }
    void decrypted(bool stored) override { decrypted_stored.push_back(stored); }
    void key_transport(const ReceivedMessage&) override {}
    bool encrypted(const std::string&) override { return false; }
    Result<std::string> encrypt(const Outgoing&, const OutgoingMessage&) override {
        return make_error("omemo", "not here");
    }
    void finished(const std::string& msg_id) override { finished_ids.push_back(msg_id); }
    void online() override { ++onlines; }
    // "Handles" messages with an <event/> (XEP-0163 notifications).
    bool event(pugi::xml_node message) override {
        return message.child("event") && (++events, true);
    }

    std::vector<bool> decrypted_stored;
    std::vector<std::string> finished_ids;
    int onlines = 0;
    int events = 0;
};

inline const Jid alice = Jid::parse("alice@example.org").value();

struct Fixture {
    MemoryStore store;
    RecordingPort port;
    RecordingEncryption encryption;
    AccountSession session{"work", alice, store, port};

    Fixture() { session.set_encryption(encryption); }

    model::Reply send(const std::string& to, const std::string& body, const std::string& client_id = {}) {
        model::Send s;
        s.account = "work";
        s.to = to;
        s.body = body;
        s.client_id = client_id;
        return session.send(s);
    }
    // Feeds a live <message/> (in jabber:client) as the stream hands it up.
    void receive(const std::string& xml) {
        auto stanza = frame(xml);
        if (session.carbon(stanza.root())) return;
        auto m = parse_message(stanza.root(), alice);
        REQUIRE(m);
        session.message(*m);
    }
    bool archived(const std::string& xml) {
        auto stanza = frame(xml);
        auto m = parse_message(stanza.root(), alice);
        REQUIRE(m);
        return session.incoming(*m, true);
    }
};

}  // namespace im_session_test
