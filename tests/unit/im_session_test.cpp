// protocol/im/session: one account's messages both ways, fed typed stanzas and commands over
// an in-memory store and port; what it stores, shows and sends is read back.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <set>

#include "protocol/im/session.hpp"
#include "stanza_helpers.hpp"

using namespace xmpp;
using namespace xmpp::im;

namespace {

using test::frame;

// The account's rows, in memory. `fail` makes every write fail (a full disk).
struct MemoryStore final : SessionStore {
    std::vector<Outgoing> outbox;
    std::vector<model::Event> events;
    // De-duplication keys and aliases -> the seq of the event (as text), or the alias's value.
    std::map<std::string, std::string> keys;
    std::map<std::string, std::string> values;  // kept per account ("mam_last", ...)
    bool fail = false;

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
    Result<std::optional<model::Seq>> message_seq(const std::string&, const std::string& msg_id) override {
        for (const auto& e : events)
            if (auto* m = std::get_if<model::Message>(&e.body); m && m->msg_id == msg_id)
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
        if (keys.count(key)) return false;
        keys[key] = std::to_string(add(event));
        for (const auto& [alias, value] : aliases) keys.emplace(alias, value.empty() ? keys[key] : value);
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

    bool send(std::string_view xml, const std::string& tag) override {
        if (!is_online) return false;
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

    std::vector<bool> decrypted_stored;
    std::vector<std::string> finished_ids;

    // The states the front ends saw for `msg_id`, in order.
    std::vector<std::string> states(const std::string& msg_id) const {
        std::vector<std::string> out;
        for (const auto& e : delivered)
            if (auto* s = std::get_if<model::MessageState>(&e.body); s && s->msg_id == msg_id) out.push_back(s->state);
        return out;
    }
    std::vector<model::Message> messages() const {
        std::vector<model::Message> out;
        for (const auto& e : delivered)
            if (auto* m = std::get_if<model::Message>(&e.body)) out.push_back(*m);
        return out;
    }
};

const Jid alice = Jid::parse("alice@example.org").value();

struct Fixture {
    MemoryStore store;
    RecordingPort port;
    AccountSession session{"work", alice, store, port};

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

}  // namespace

TEST_CASE("session: a send is on disk before its reply, then goes out with its origin-id") {
    Fixture f;
    auto reply = f.send("bob@example.org", "hello", "c1");
    REQUIRE(reply.ok());
    CHECK(reply.msg_id == "c1");
    REQUIRE(f.store.outbox.size() == 1);
    CHECK(f.store.outbox[0].state == "sent");
    // The outgoing message and its states, in order.
    CHECK(f.port.states("c1") == std::vector<std::string>{"accepted", "sent"});
    REQUIRE(f.port.messages().size() == 1);
    CHECK(f.port.messages()[0].outgoing);
    CHECK(f.port.messages()[0].from == "alice@example.org");
    REQUIRE(f.port.sent.size() == 1);
    CHECK(f.port.sent[0].second == "c1");  // acknowledged by XEP-0198 under its msg_id
    CHECK(f.port.sent[0].first.find("<origin-id xmlns='urn:xmpp:sid:0' id='c1'/>") != std::string::npos);
    CHECK(f.port.sent[0].first.find("<active xmlns='http://jabber.org/protocol/chatstates'/>") != std::string::npos);

    // The same client_id again: the same message, nothing stored or sent twice.
    auto again = f.send("bob@example.org", "hello", "c1");
    CHECK(again.duplicate);
    CHECK(f.store.outbox.size() == 1);
    CHECK(f.port.sent.size() == 1);

    // Without a client_id the session makes one.
    CHECK(f.send("bob@example.org", "x").msg_id == "id1");
}

TEST_CASE("session: what cannot be sent is refused before anything is stored") {
    Fixture f;
    CHECK(f.send("bob@example.org", std::string(AccountSession::kMaxBodyXml / 4 + 1, '<')).error_code == "bad-request");
    model::Send s{"work", "bob@example.org", "fixed", "", "", "nothing"};
    CHECK(f.session.send(s).error_code == "bad-request");  // XEP-0308: no such message of ours
    f.store.fail = true;
    CHECK(f.send("bob@example.org", "hi").error_code == "internal");
    CHECK(f.store.outbox.empty());
    CHECK(f.port.sent.empty());
    CHECK(f.port.delivered.empty());
}

TEST_CASE("session: offline, a send waits in the outbox; the next session takes it") {
    Fixture f;
    f.port.is_online = false;
    REQUIRE(f.send("bob@example.org", "queued", "q1").ok());
    CHECK(f.port.sent.empty());
    CHECK(f.port.states("q1") == std::vector<std::string>{"accepted"});
    // cancel works only while nothing has left.
    REQUIRE(f.send("bob@example.org", "dropped", "q2").ok());
    CHECK(f.session.cancel("q2").ok());
    CHECK(f.port.states("q2") == std::vector<std::string>{"accepted", "failed"});
    CHECK(f.session.cancel("nope").error_code == "item-not-found");

    f.port.is_online = true;
    f.session.online(false, false);
    REQUIRE(f.port.sent.size() == 1);
    CHECK(f.port.sent[0].second == "q1");
    CHECK(f.session.cancel("q1").error_code == "too-late");
    f.session.acked({"q1"});
    CHECK(f.port.states("q1") == std::vector<std::string>{"accepted", "sent", "acked"});
    CHECK(f.port.finished_ids == std::vector<std::string>{"q2", "q1"});
}

TEST_CASE("session: sent but never acknowledged goes again on a new session, not on a resumed one") {
    Fixture f;
    REQUIRE(f.send("bob@example.org", "one", "m1").ok());
    REQUIRE(f.port.sent.size() == 1);
    // Sent on the current session while it was starting: not again when the start completes.
    f.session.online(false, false);
    CHECK(f.port.sent.size() == 1);
    // A resumed session: the stream resent it itself.
    f.port.sessions = 2;
    f.session.online(true, false);
    CHECK(f.port.sent.size() == 1);
    // A new session: again, with the same origin-id.
    f.port.sessions = 3;
    f.session.online(false, false);
    REQUIRE(f.port.sent.size() == 2);
    CHECK(f.port.sent[1].first == f.port.sent[0].first);
    // A restarted daemon's resumption does not know what the server has: again too.
    f.port.sessions = 4;
    f.session.online(true, true);
    CHECK(f.port.sent.size() == 3);
}

TEST_CASE("session: a message the server never takes fails after kMaxAttempts sessions") {
    Fixture f;
    REQUIRE(f.send("bob@example.org", "too big for this server", "big").ok());
    for (unsigned long s = 2; s <= AccountSession::kMaxAttempts + 1; ++s) {
        f.port.sessions = s;
        f.session.online(false, false);
    }
    CHECK(f.port.sent.size() == AccountSession::kMaxAttempts);
    CHECK(f.store.outbox[0].state == "failed");
    REQUIRE(f.port.states("big").back() == "failed");
    f.port.sessions = 99;
    f.session.online(false, false);
    CHECK(f.port.sent.size() == AccountSession::kMaxAttempts);  // failed is final
}

TEST_CASE("session: states move forward only, and only the recipient may move them") {
    Fixture f;
    REQUIRE(f.send("bob@example.org", "hi", "m1").ok());
    // A receipt from someone else (anyone in a room can learn our ids).
    f.receive("<message from='mallory@evil.example/x' to='alice@example.org/s' id='r0'>"
              "<received xmlns='urn:xmpp:receipts' id='m1'/></message>");
    CHECK(f.port.states("m1") == std::vector<std::string>{"accepted", "sent"});
    REQUIRE(!f.port.logs.empty());
    CHECK(f.port.logs.back().find("ignored a delivered for message m1 from mallory@evil.example/x") !=
          std::string::npos);
    f.receive("<message from='bob@example.org/phone' to='alice@example.org/s' id='r1'>"
              "<received xmlns='urn:xmpp:receipts' id='m1'/></message>");
    f.session.acked({"m1"});  // a late ack does not move it back
    f.receive("<message from='bob@example.org/phone' to='alice@example.org/s' id='r2'>"
              "<displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/></message>");
    CHECK(f.port.states("m1") == std::vector<std::string>{"accepted", "sent", "delivered", "displayed"});

    // An error from the recipient fails a message; a receipt after that changes nothing.
    REQUIRE(f.send("bob@example.org", "again", "m2").ok());
    f.receive("<message type='error' id='m2' from='bob@example.org'><error type='cancel'>"
              "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
    f.receive("<message from='bob@example.org/phone' id='r3'><received xmlns='urn:xmpp:receipts' id='m2'/></message>");
    CHECK(f.port.states("m2") == std::vector<std::string>{"accepted", "sent", "failed"});
    CHECK(f.store.find("m2")->state == "failed");
}

TEST_CASE("session: a state that cannot be stored is not shown") {
    Fixture f;
    REQUIRE(f.send("bob@example.org", "hi", "m1").ok());
    f.store.fail = true;
    f.session.acked({"m1"});
    CHECK(f.port.states("m1") == std::vector<std::string>{"accepted", "sent"});
    CHECK(f.port.logs.back().find("cannot record message m1 as acked") != std::string::npos);
}

TEST_CASE("session: one event per message, live or from the archive, by stanza-id and origin-id") {
    Fixture f;
    const std::string live = "<message from='bob@example.org/phone' to='alice@example.org/s' type='chat' id='b1'>"
                             "<body>hi</body><origin-id xmlns='urn:xmpp:sid:0' id='o1'/>"
                             "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='s1'/></message>";
    f.receive(live);
    REQUIRE(f.port.messages().size() == 1);
    CHECK(f.port.messages()[0].msg_id == "s1");
    CHECK(f.store.values["mam_last"] == "s1");  // live, no gap open: the position to keep
    f.receive(live);  // offline storage or a resumption hands it over again
    CHECK_FALSE(f.archived(live));  // and the archive
    CHECK(f.port.messages().size() == 1);
    CHECK(f.store.events.size() == 1);

    // Without a stanza-id, the sender's origin-id still recognises it.
    const std::string plain = "<message from='bob@example.org/laptop' type='chat' id='b2'>"
                              "<body>again?</body><origin-id xmlns='urn:xmpp:sid:0' id='o2'/></message>";
    f.receive(plain);
    f.receive(plain);
    CHECK(f.port.messages().size() == 2);
    // With no id at all a message cannot be recognised: each copy is one event.
    f.receive("<message from='bob@example.org/x' type='chat'><body>anon</body></message>");
    f.receive("<message from='bob@example.org/x' type='chat'><body>anon</body></message>");
    CHECK(f.port.messages().size() == 4);
}

TEST_CASE("session: carbons are ours, forged ones are dropped") {
    Fixture f;
    // XEP-0280 §6: a message another of our clients sent.
    f.receive("<message from='alice@example.org' to='alice@example.org/s' type='chat'>"
              "<sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
              "<message xmlns='jabber:client' from='alice@example.org/phone' to='bob@example.org' type='chat' id='p1'>"
              "<body>from my phone</body></message></forwarded></sent></message>");
    REQUIRE(f.port.messages().size() == 1);
    auto sent = f.port.messages()[0];
    CHECK(sent.outgoing);
    CHECK(sent.carbon == "sent");
    CHECK(sent.from == "alice@example.org/phone");
    CHECK(sent.to == "bob@example.org");
    // §11: a carbon wrapper not from our own account is a forgery.
    f.receive("<message from='mallory@evil.example' to='alice@example.org/s' type='chat'>"
              "<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
              "<message xmlns='jabber:client' from='bob@example.org/x' to='alice@example.org' type='chat' id='f1'>"
              "<body>trust me</body></message></forwarded></received></message>");
    CHECK(f.port.messages().size() == 1);
    CHECK(f.port.logs.back() == "account work: dropped a forged carbon from mallory@evil.example");
    // Our own message echoed back by the archive: the outgoing event we stored, not a new one.
    REQUIRE(f.send("bob@example.org", "mine", "own1").ok());
    CHECK_FALSE(f.archived("<message from='alice@example.org/s' to='bob@example.org' type='chat' id='own1'>"
                           "<body>mine</body><origin-id xmlns='urn:xmpp:sid:0' id='own1'/></message>"));
    CHECK(f.port.messages().size() == 2);
}

TEST_CASE("session: receipts only to those who see our presence, never to rooms") {
    Fixture f;
    f.session.roster({{"bob@example.org", "", "from", {}, false}, {"stranger@example.org", "", "to", {}, false}}, false,
                     std::nullopt);
    f.session.join("room@muc.example.org", "alice", "", [](model::Reply) {});
    f.port.sent.clear();
    const auto request = [&](const std::string& from, const std::string& id) {
        f.receive("<message from='" + from + "' type='chat' id='" + id + "'><body>x</body>"
                  "<request xmlns='urn:xmpp:receipts'/></message>");
    };
    request("bob@example.org/phone", "q1");
    request("stranger@example.org/x", "q2");       // XEP-0184 §8: no presence leak
    request("room@muc.example.org/nick", "q3");    // a room's occupant
    REQUIRE(f.port.sent.size() == 1);
    CHECK(f.port.sent[0].first.find("<received xmlns='urn:xmpp:receipts' id='q1'/>") != std::string::npos);
    CHECK(f.port.sent[0].first.find("to='bob@example.org/phone'") != std::string::npos);
}

TEST_CASE("session: chat states stop after a reply without them (XEP-0085 5.1)") {
    Fixture f;
    f.receive("<message from='bob@example.org/x' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    REQUIRE(f.port.transients.size() == 1);  // for live front ends only
    CHECK(std::get<model::ChatState>(f.port.transients[0]).state == "composing");
    CHECK(f.store.events.empty());
    CHECK(f.session.chat_states().wanted("bob@example.org"));
    f.receive("<message from='bob@example.org/x' type='chat' id='b1'><body>plain reply</body></message>");
    CHECK_FALSE(f.session.chat_states().wanted("bob@example.org"));
    REQUIRE(f.send("bob@example.org", "next", "n1").ok());
    CHECK(f.port.sent.back().first.find("chatstates") == std::string::npos);
}

TEST_CASE("session: a correction points at the message it corrects, by its msg_id") {
    Fixture f;
    f.receive("<message from='bob@example.org/x' type='chat' id='b1'><body>teh</body>"
              "<origin-id xmlns='urn:xmpp:sid:0' id='o1'/>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='s1'/></message>");
    f.receive("<message from='bob@example.org/x' type='chat' id='b2'><body>the</body>"
              "<replace xmlns='urn:xmpp:message-correct:0' id='o1'/></message>");
    auto msgs = f.port.messages();
    REQUIRE(msgs.size() == 2);
    CHECK(msgs[1].replaces == "s1");  // the stanza-id front ends know it by
    // Nobody's message: the id stays as it came.
    f.receive("<message from='bob@example.org/x' type='chat' id='b3'><body>?</body>"
              "<replace xmlns='urn:xmpp:message-correct:0' id='unknown'/></message>");
    CHECK(f.port.messages().back().replaces == "unknown");
}

TEST_CASE("session: an encrypted message is decrypted once, stored with the session state it moved") {
    Fixture f;
    const std::string xml = "<message from='bob@example.org/x' type='chat' id='e1'>"
                            "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='7'><key rid='1'>AAAA</key><iv>AAAAAAAAAAAAAAAA</iv></header><payload>AAAA</payload>"
                            "</encrypted><body>fallback</body><origin-id xmlns='urn:xmpp:sid:0' id='eo1'/></message>";
    f.receive(xml);
    f.receive(xml);  // seen before: not decrypted again (its message key is spent)
    REQUIRE(f.port.messages().size() == 1);
    CHECK(f.port.messages()[0].body == "decrypted");
    CHECK(f.port.messages()[0].encryption == "omemo");
    CHECK(f.port.decrypted_stored == std::vector<bool>{true});
    CHECK(f.store.values["omemo:session"] == "moved");
    // When the store fails, the device hears it was not stored (its changes are dropped).
    f.store.fail = true;
    f.receive("<message from='bob@example.org/x' type='chat' id='e2'>"
              "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='7'><key rid='1'>AAAA</key><iv>AAAAAAAAAAAAAAAA</iv></header><payload>AAAA</payload>"
              "</encrypted><origin-id xmlns='urn:xmpp:sid:0' id='eo2'/></message>");
    CHECK(f.port.decrypted_stored == std::vector<bool>{true, false});
}

namespace {

// A page of our own archive as the server sends it (XEP-0313 §4.2), and its end (§4.3).
std::string archive_result(const std::string& query_id, const std::string& archive_id, const std::string& body) {
    return "<message to='alice@example.org/s'><result xmlns='urn:xmpp:mam:2' queryid='" + query_id + "' id='" +
           archive_id + "'><forwarded xmlns='urn:xmpp:forward:0'>"
           "<delay xmlns='urn:xmpp:delay' stamp='2026-12-01T10:00:00Z'/>"
           "<message xmlns='jabber:client' from='bob@example.org/x' to='alice@example.org' type='chat' id='a-" +
           archive_id + "'><body>" + body + "</body></message></forwarded></result></message>";
}
std::string fin(const std::string& id, bool complete, const std::string& last, const std::string& from = {}) {
    return "<iq type='result' id='" + id + "'" + (from.empty() ? "" : " from='" + from + "'") +
           "><fin xmlns='urn:xmpp:mam:2' complete='" + (complete ? "true" : "false") +
           "'><set xmlns='http://jabber.org/protocol/rsm'><last>" + last + "</last></set></fin></iq>";
}

}  // namespace

TEST_CASE("session: catch-up pages our archive after the kept position, and the gap rule") {
    Fixture f;
    f.store.values["mam_last"] = "s0";
    f.session.catch_up("2026-12-06T00:00:00.000Z");
    REQUIRE(f.port.sent.size() == 1);
    const std::string& query = f.port.sent[0].first;
    CHECK(query.find("queryid='catchup1'") != std::string::npos);
    CHECK(query.find("<after>s0</after>") != std::string::npos);
    CHECK(query.find("var='start'") == std::string::npos);  // after a known id, no start
    CHECK(f.session.gap_open());

    // A live message during the gap is newer than what the catch-up still brings: it is
    // shown, but does not move the position (else what lies between would be skipped).
    f.receive("<message from='carol@example.org/x' type='chat' id='l1'><body>live</body>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='s9'/></message>");
    CHECK(f.store.values["mam_last"] == "s0");

    f.session.archive_result(test::frame(archive_result("catchup1", "s1", "missed")).root());
    f.session.archive_result(test::frame(archive_result("other", "s2", "not asked")).root());  // dropped
    // An answer from anyone but our account is not the answer.
    CHECK_FALSE(f.session.catch_up_answer(test::frame(fin("catchup1", false, "s1", "mallory@evil.example")).root()));
    // Not complete: the position moves to the page's end and the next page goes out.
    CHECK(f.session.catch_up_answer(test::frame(fin("catchup1", false, "s1")).root()));
    CHECK(f.store.values["mam_last"] == "s1");
    REQUIRE(f.port.sent.size() == 2);
    CHECK(f.port.sent[1].first.find("<after>s1</after>") != std::string::npos);
    CHECK(f.port.sent[1].first.find("queryid='catchup2'") != std::string::npos);
    CHECK(f.session.gap_open());
    // The missed message came once, as a message of its own (not history).
    auto msgs = f.port.messages();
    REQUIRE(msgs.size() == 2);  // the live one and the missed one; the one nobody asked for is dropped
    CHECK(msgs[1].body == "missed");
    CHECK(msgs[1].delayed);
    CHECK_FALSE(msgs[1].history);

    // Complete: the gap closes; live messages move the position again.
    f.session.archive_result(test::frame(archive_result("catchup2", "s9", "live")).root());
    CHECK(f.session.catch_up_answer(test::frame(fin("catchup2", true, "s9")).root()));
    CHECK_FALSE(f.session.gap_open());
    CHECK(f.store.values["mam_last"] == "s9");
    CHECK(f.port.sent.size() == 2);
    CHECK(f.port.logs.back() == "account work: archive catch-up: 2 message(s), 1 of them new");
    f.receive("<message from='carol@example.org/x' type='chat' id='l2'><body>later</body>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='s10'/></message>");
    CHECK(f.store.values["mam_last"] == "s10");
    // A late answer to a finished query is nobody's.
    CHECK_FALSE(f.session.catch_up_answer(test::frame(fin("catchup2", true, "s9")).root()));
}

TEST_CASE("session: the first catch-up starts when the account was first seen; a failure keeps the gap") {
    Fixture f;
    f.session.catch_up("2026-12-06T08:00:00.000Z");
    REQUIRE(f.port.sent.size() == 1);
    CHECK(f.port.sent[0].first.find("<field var='start'><value>2026-12-06T08:00:00.000Z</value></field>") !=
          std::string::npos);
    CHECK(f.store.values["mam_since"] == "2026-12-06T08:00:00.000Z");
    CHECK(f.session.catch_up_answer(
        test::frame("<iq type='error' id='catchup1'><error type='wait'>"
                    "<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
            .root()));
    CHECK(f.session.gap_open());
    CHECK(f.port.logs.back() == "account work: archive catch-up failed (the server answered error)");
    // The next login starts from the same point in time, not from its own "now".
    f.session.catch_up("2026-12-07T09:00:00.000Z");
    REQUIRE(f.port.sent.size() == 2);
    CHECK(f.port.sent[1].first.find("<value>2026-12-06T08:00:00.000Z</value>") != std::string::npos);
    CHECK(f.port.sent[1].first.find("queryid='catchup2'") != std::string::npos);
}

namespace {

const std::string kRoom = "coven@chat.example";
const std::string kMember = "<item affiliation='member' role='participant'/>";

MucPresence room_presence(const std::string& nick, const std::string& extra) {
    auto s = test::frame("<presence from='" + kRoom + "/" + nick + "' to='alice@example.org/s'>"
                         "<x xmlns='http://jabber.org/protocol/muc#user'>" + extra + "</x></presence>");
    auto p = parse_muc_presence(s.root());
    REQUIRE(p);
    return *p;
}

// The occupant changes the front ends saw, as "change nick".
std::vector<std::string> occupant_changes(const std::vector<model::Event>& events) {
    std::vector<std::string> out;
    for (const auto& e : events)
        if (const auto* o = std::get_if<model::Occupant>(&e.body)) out.push_back(o->change + " " + o->who.nick);
    return out;
}

// The room's archive page answer (XEP-0313 §4.3) to the request `r`.
void answer_page(RecordingPort::Request& r, bool complete, const std::string& last) {
    auto iq = test::frame("<iq type='result' from='" + kRoom + "' id='x'><fin xmlns='urn:xmpp:mam:2' complete='" +
                          (complete ? "true" : "false") + "'><set xmlns='http://jabber.org/protocol/rsm'><last>" +
                          last + "</last></set></fin></iq>");
    r.done(IqReply{IqReply::Outcome::Result, iq.root(), {}});
}

}  // namespace

TEST_CASE("session: a join is answered when the room has us; its archive follows; a rejoin tells what changed") {
    Fixture f;
    std::vector<model::Reply> replies;
    f.session.join(kRoom, "alice", "", [&](model::Reply r) { replies.push_back(std::move(r)); });
    REQUIRE(f.port.sent.size() == 1);
    CHECK(f.port.sent[0].first.find("to='coven@chat.example/alice'") != std::string::npos);
    CHECK(f.port.sent[0].first.find("<c/>") != std::string::npos);  // our presence payload
    CHECK(f.session.find_room(kRoom));
    CHECK(f.session.room_presence(room_presence("bob", kMember)));
    CHECK(replies.empty());
    CHECK(f.session.room_presence(room_presence("alice", kMember + "<status code='110'/>")));
    REQUIRE(replies.size() == 1);
    REQUIRE(replies[0].rooms.size() == 1);
    CHECK(replies[0].rooms[0].state == "joined");
    CHECK(occupant_changes(f.port.delivered) == std::vector<std::string>{});  // the list comes with the join
    // Remembered for the next session, and the room's newest archive page is asked for.
    CHECK(f.store.values["rooms"].find("\"room\":\"coven@chat.example\"") != std::string::npos);
    REQUIRE(f.port.requests.size() == 1);
    CHECK(f.port.requests[0].to == kRoom);
    CHECK(f.port.requests[0].xml.find("<before/>") != std::string::npos);
    answer_page(f.port.requests[0], true, "r5");
    CHECK(f.store.values["mam_last:coven@chat.example"] == "r5");

    // A live message moves the room's position; our own echo marks ours delivered.
    REQUIRE(f.send(kRoom, "hello room", "g1").ok());
    f.receive("<message from='coven@chat.example/alice' type='groupchat' id='g1'><body>hello room</body>"
              "<origin-id xmlns='urn:xmpp:sid:0' id='g1'/>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='coven@chat.example' id='r6'/></message>");
    CHECK(f.port.states("g1") == std::vector<std::string>{"accepted", "sent", "delivered"});
    f.receive("<message from='coven@chat.example/bob' type='groupchat' id='b1'><body>hi alice</body>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='coven@chat.example' id='r7'/></message>");
    CHECK(f.store.values["mam_last:coven@chat.example"] == "r7");
    CHECK(f.port.messages().back().from == "coven@chat.example/bob");
    CHECK(f.port.messages().size() == 2);  // ours (outgoing) and bob's; the echo is not a new one

    // A new session: joined again; only who changed meanwhile is told (carol came, bob left).
    f.port.sessions = 2;
    f.port.started = f.port.clock;
    f.port.sent.clear();
    f.port.delivered.clear();
    f.session.rooms_online(false);
    REQUIRE(f.port.sent.size() == 1);
    CHECK(f.port.sent[0].first.find("to='coven@chat.example/alice'") != std::string::npos);
    f.session.room_presence(room_presence("carol", kMember));
    f.session.room_presence(room_presence("alice", kMember + "<status code='110'/>"));
    CHECK(occupant_changes(f.port.delivered) == std::vector<std::string>{"join carol", "leave bob"});
    // The catch-up asks after the kept position this time.
    REQUIRE(f.port.requests.size() == 3);  // the page, bookmarks, the page again
    CHECK(f.port.requests[2].xml.find("<after>r7</after>") != std::string::npos);
}

TEST_CASE("session: join requests time out; a lost room is joined again after a self-ping") {
    using namespace std::chrono_literals;
    Fixture f;
    std::vector<model::Reply> replies;
    f.session.join(kRoom, "alice", "", [&](model::Reply r) { replies.push_back(std::move(r)); });
    f.port.clock += 29s;
    f.session.tick(300s);
    CHECK(replies.empty());
    f.port.clock += 2s;
    f.session.tick(300s);
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].error_code == "timeout");

    // Joined later after all; then the self-ping says we are not in (XEP-0410 §3.3).
    f.session.room_presence(room_presence("alice", kMember + "<status code='110'/>"));
    f.port.requests.clear();
    f.port.sent.clear();
    f.port.clock += 301s;
    f.session.tick(300s);
    REQUIRE(f.port.requests.size() == 1);
    CHECK(f.port.requests[0].to == kRoom + "/alice");
    auto error = test::frame("<iq type='error' from='coven@chat.example/alice' id='x'><error type='cancel'>"
                             "<not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    f.port.requests[0].done(IqReply{IqReply::Outcome::Remote, error.root(), {"not-acceptable", ""}});
    REQUIRE(f.port.sent.size() == 1);
    CHECK(f.port.sent[0].first.find("to='coven@chat.example/alice'") != std::string::npos);
    CHECK(f.port.logs.back().find("no longer in coven@chat.example") != std::string::npos);
}

TEST_CASE("session: a part while offline leaves at the next login; the room is forgotten at once") {
    Fixture f;
    f.session.join(kRoom, "alice", "", [](model::Reply) {});
    f.session.room_presence(room_presence("alice", kMember + "<status code='110'/>"));
    f.port.is_online = false;
    f.port.sent.clear();
    CHECK(f.session.part(kRoom, "bye").ok());
    CHECK(f.port.sent.empty());
    CHECK_FALSE(f.session.find_room(kRoom));
    CHECK(f.store.values["rooms"] == "[]");
    CHECK(f.session.part(kRoom, "again").error_code == "not-joined");
    f.port.is_online = true;
    f.session.rooms_online(false);
    REQUIRE(!f.port.sent.empty());
    CHECK(f.port.sent[0].first.find("type='unavailable'") != std::string::npos);
    CHECK(f.port.sent[0].first.find("to='coven@chat.example/alice'") != std::string::npos);
}

TEST_CASE("session: a history request brings its page; messages new to us are stored once") {
    Fixture f;
    model::History h;
    h.account = "work";
    h.with = "bob@example.org";
    h.max = 10;
    std::vector<model::Reply> replies;
    f.session.history(h, [&](model::Reply r) { replies.push_back(std::move(r)); });
    REQUIRE(f.port.requests.size() == 1);
    CHECK(f.port.requests[0].xml.find("<field var='with'><value>bob@example.org</value></field>") != std::string::npos);
    CHECK(f.port.requests[0].xml.find("<before/>") != std::string::npos);  // the newest page
    CHECK(f.port.requests[0].xml.find("queryid='history1'") != std::string::npos);
    f.session.archive_result(test::frame(archive_result("history1", "h1", "old one")).root());
    f.session.archive_result(test::frame(archive_result("history1", "h1", "old one")).root());
    auto fin = test::frame("<iq type='result' id='x'><fin xmlns='urn:xmpp:mam:2' complete='true'>"
                           "<set xmlns='http://jabber.org/protocol/rsm'><first>h1</first><last>h1</last></set></fin></iq>");
    f.port.requests[0].done(IqReply{IqReply::Outcome::Result, fin.root(), {}});
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].source == "archive");
    CHECK(replies[0].complete);
    CHECK(replies[0].first == "h1");
    REQUIRE(replies[0].messages.size() == 2);  // as the server sent them
    CHECK(std::get<model::Message>(replies[0].messages[0].body).history);
    CHECK(std::get<model::Message>(replies[0].messages[0].body).body == "old one");
    CHECK(f.store.events.size() == 1);  // stored once, not shown live (it is history)
    CHECK(f.port.messages().empty());

    // A request that gets no answer is answered anyway.
    f.session.history(h, [&](model::Reply r) { replies.push_back(std::move(r)); });
    f.port.requests[1].done(IqReply{IqReply::Outcome::Timeout, {}, {}});
    REQUIRE(replies.size() == 2);
    CHECK(replies[1].error_code == "timeout");
}

TEST_CASE("session: front-end commands answer once, with what the account can do now") {
    Fixture f;
    std::vector<model::Reply> replies;
    auto respond = [&](model::Reply r) { replies.push_back(std::move(r)); };
    // XEP-0333: the displayed marker carries the id the sender gave its message (the "rid:" alias).
    f.receive("<message from='bob@example.org/x' type='chat' id='b-own-id'><body>read me</body>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='s1'/></message>");
    f.session.handle(model::Displayed{"work", "bob@example.org", "s1"}, respond);
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].sent);
    CHECK(f.port.sent.back().first.find("<displayed xmlns='urn:xmpp:chat-markers:0' id='b-own-id'/>") !=
          std::string::npos);
    // Without the user's consent, nothing is sent.
    f.port.markers = false;
    auto sent = f.port.sent.size();
    f.session.handle(model::Displayed{"work", "bob@example.org", "s1"}, respond);
    CHECK_FALSE(replies.back().sent);
    CHECK(f.port.sent.size() == sent);

    // Read markers move forward only, and never past now.
    f.session.handle(model::SetReadMarker{"work", "bob@example.org", "2026-12-06T10:00:00Z"}, respond);
    CHECK(replies.back().stamp == "2026-12-06T10:00:00.000Z");
    f.session.handle(model::SetReadMarker{"work", "bob@example.org", "2026-12-06T09:00:00Z"}, respond);
    CHECK(replies.back().stamp == "2026-12-06T10:00:00.000Z");
    f.session.handle(model::SetReadMarker{"work", "bob@example.org", "2030-01-01T00:00:00Z"}, respond);
    CHECK(replies.back().stamp == "2026-12-06T12:00:00.000Z");
    f.session.handle(model::SetReadMarker{"work", "bob@example.org", "yesterday"}, respond);
    CHECK(replies.back().error_code == "bad-request");

    // The stored conversation, around a message.
    model::StoredMessages stored;
    stored.account = "work";
    stored.peer = "bob@example.org";
    stored.around_msg_id = "s1";
    stored.limit = 10;
    f.session.handle(stored, respond);
    REQUIRE(replies.back().ok());
    CHECK(replies.back().cursor == 1);
    REQUIRE(replies.back().messages.size() == 1);

    // Offline: what needs the server says so, with the account's state.
    f.port.is_online = false;
    f.session.handle(model::Join{"work", "room@muc.example.org", "", ""}, respond);
    CHECK(replies.back().error_code == "not-online");
    CHECK(replies.back().error_message == "account work is disconnected");
    f.session.handle(model::SendChatState{"work", "bob@example.org", "composing"}, respond);
    CHECK(replies.back().error_code == "not-online");
    f.session.handle(model::Kick{"work", "room@muc.example.org", "bob", ""}, respond);
    CHECK(replies.back().error_code == "not-joined");
    // Without an archive on the server, history comes from the store ("local").
    f.port.caps.known = true;
    f.port.caps.archive = false;
    model::History h;
    h.account = "work";
    h.with = "bob@example.org";
    h.max = 5;
    f.session.handle(h, respond);
    CHECK(replies.back().source == "local");
    CHECK(replies.back().complete);
    REQUIRE(replies.back().messages.size() == 1);
    CHECK(std::get<model::Message>(replies.back().messages[0].body).history);
    // Our presence is kept for the next session even offline.
    f.session.handle(model::SetPresence{"work", "away", "lunch", std::nullopt}, respond);
    CHECK(replies.back().ok());
    CHECK(f.port.presence_show == "away");
    CHECK(replies.size() == 12);  // one answer per command
}
