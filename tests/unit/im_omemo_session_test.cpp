// OmemoSession (protocol/im/omemo_session.hpp): XEP-0384's protocol side over a fake device
// (FakeCrypto: sessions, trust and encryption as plain sets), the in-memory store and the
// recording port of the AccountSession tests. The server's answers are fed by hand.
#include <tuple>

#include "im_session_fixture.hpp"
#include "protocol/im/omemo_session.hpp"

namespace {

using namespace im_session_test;
using Version = omemo::Version;

// Our device: id 100. Sessions and trust are what the test says; encrypt() gives one key
// per address it has a session with.
struct FakeCrypto final : OmemoCrypto {
    std::set<std::tuple<std::string, std::uint32_t, Version>> sessions;
    std::map<std::pair<std::string, std::uint32_t>, std::string> trusts;  // default "blind"
    std::vector<std::tuple<std::string, std::uint32_t, Version>> built;
    std::vector<std::vector<Address>> encrypted_for;
    std::vector<Version> encrypted_in;
    std::vector<bool> commits;
    bool bundle_changes = false;   // committed(true) says the bundle changed
    bool fail_encrypt = false;
    Decrypted next_decrypted;
    std::vector<KeptWrite> pending_writes;

    std::uint32_t device_id() const override { return 100; }
    std::string fingerprint() const override { return "aaaaaaaa"; }
    omemo::Bundle bundle(Version) const override { return {1, "spk", "spks", "ik", {{1, "pk"}}}; }
    bool has_session(const std::string& jid, std::uint32_t device, Version v) override {
        return sessions.count({jid, device, v}) > 0;
    }
    Status build_session(const std::string& jid, std::uint32_t device, const omemo::Bundle&, Version v) override {
        sessions.insert({jid, device, v});
        built.emplace_back(jid, device, v);
        pending_writes.push_back({"omemo:session:" + jid + "/" + std::to_string(device), "s"});
        return Ok{};
    }
    Result<omemo::Encrypted> encrypt(std::string_view, const std::vector<Address>& to, Version v) override {
        encrypted_for.push_back(to);
        encrypted_in.push_back(v);
        if (fail_encrypt) return make_error("crypto", "broken");
        omemo::Encrypted e;
        e.version = v;
        e.sid = 100;
        e.payload = "sealed";
        for (const auto& a : to)
            if (has_session(a.jid, a.device, v)) e.keys.push_back({a.jid, a.device, false, "k"});
        pending_writes.push_back({"omemo:session:step", "1"});
        return e;
    }
    Decrypted decrypt(const omemo::Encrypted&, const std::string&) override {
        pending_writes.push_back({"omemo:session:bob", "moved"});
        return next_decrypted;
    }
    std::string trust(const std::string& jid, std::uint32_t device) override {
        auto it = trusts.find({jid, device});
        return it == trusts.end() ? "blind" : it->second;
    }
    Status set_trust(const std::string& jid, std::uint32_t device, bool trusted) override {
        if (!trusts.count({jid, device})) return make_error("item-not-found", "unknown device");
        trusts[{jid, device}] = trusted ? "trusted" : "distrusted";
        return Ok{};
    }
    Result<std::vector<KnownDevice>> known_devices(const std::string& jid) override {
        std::vector<KnownDevice> out;
        for (const auto& [key, t] : trusts)
            if (key.first == jid) out.push_back({key.second, "ffff", t});
        return out;
    }
    std::vector<KeptWrite> pending() override { return pending_writes; }
    bool committed(bool stored) override {
        commits.push_back(stored);
        pending_writes.clear();
        return stored && bundle_changes;
    }
};

struct Owner final : OmemoPort {
    FakeCrypto device;
    bool available = true;
    std::string mode = "auto";
    OmemoCrypto* crypto() override { return available && mode != "off" ? &device : nullptr; }
    std::string encryption() override { return mode; }
};

const std::string bob = "bob@example.org";
const std::string own = "alice@example.org";

struct OmemoFixture : Fixture {
    Owner owner;
    OmemoSession omemo{"work", alice, store, port, session, owner};
    std::vector<model::Reply> replies;

    OmemoFixture() { session.set_encryption(omemo); }

    void send(const std::string& to, const std::string& body, bool required = true, const std::string& id = {}) {
        model::Send s;
        s.account = "work";
        s.to = to;
        s.body = body;
        s.client_id = id;
        omemo.send(s, required, [this](model::Reply r) { replies.push_back(std::move(r)); });
    }
    // Answers request `i` (0-based) with `xml` (an <iq/>), or with an error condition.
    void answer(std::size_t i, const std::string& xml) {
        auto st = frame(xml);
        auto done = std::move(port.requests.at(i).done);
        done(IqReply{IqReply::Outcome::Result, st.root(), {}});
    }
    void fail(std::size_t i, const std::string& condition) {
        auto done = std::move(port.requests.at(i).done);
        done(IqReply{IqReply::Outcome::Remote, {}, {condition, ""}});
    }
    // A device list result of version `v`.
    static std::string list(Version v, const std::vector<std::uint32_t>& ids) {
        return "<iq type='result' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='" +
               std::string(omemo::devices_node(v)) + "'><item id='current'>" + omemo::make_device_list(v, ids) +
               "</item></items></pubsub></iq>";
    }
    static std::string bundle(Version v) {
        omemo::Bundle b{1, "spk", "spks", "ik", {{1, "pk"}}};
        std::string node = v == Version::V2 ? "urn:xmpp:omemo:2:bundles" : "eu.siacs.conversations.axolotl.bundles:7";
        return "<iq type='result' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='" + node +
               "'><item id='current'>" + omemo::make_bundle(v, b) + "</item></items></pubsub></iq>";
    }
    // Fetches (device lists, bundles) still waiting for an answer.
    std::size_t open() const {
        std::size_t n = 0;
        for (const auto& r : port.requests) n += r.done && r.xml.find("type='get'") != std::string::npos;
        return n;
    }
    // Answers every open device list fetch with `lists` (by JID: "" is ours), in 0.3.
    void answer_lists(const std::map<std::string, std::vector<std::uint32_t>>& lists) {
        for (std::size_t i = 0; i < port.requests.size(); ++i) {
            auto& r = port.requests[i];
            if (!r.done || r.xml.find("type='get'") == std::string::npos ||
                (r.xml.find("devicelist") == std::string::npos && r.xml.find(":2:devices") == std::string::npos))
                continue;
            const bool v2 = r.xml.find(":2:devices") != std::string::npos;
            auto it = lists.find(r.to);
            if (v2 || it == lists.end()) fail(i, "item-not-found");
            else answer(i, list(Version::Legacy, it->second));
        }
    }
    void answer_bundles() {
        for (std::size_t i = 0; i < port.requests.size(); ++i)
            if (port.requests[i].done && port.requests[i].xml.find("type='get'") != std::string::npos &&
                port.requests[i].xml.find("bundles") != std::string::npos)
                answer(i, bundle(Version::Legacy));
    }
    void known(const std::string& jid, const std::string& ids, Version v = Version::Legacy) {
        (void)store.keep(omemo_devices_key(v, jid), ids);
    }
};

}  // namespace

TEST_CASE_METHOD(OmemoFixture, "omemo: recipients are the contact's usable devices and our other ones", "[omemo]") {
    // XEP-0384 §4.5 (0.3 §4.5): every device of the contact and our own other devices
    // (carbons bring them the message), with a session, trusted (issue 14 §5).
    known(bob, "1,2,3,4");
    known(own, "100,7,8");
    for (auto [jid, id] : std::vector<std::pair<std::string, std::uint32_t>>{{bob, 1}, {bob, 2}, {bob, 4}, {own, 7}})
        owner.device.sessions.insert({jid, id, Version::Legacy});
    owner.device.trusts[{bob, 2}] = "distrusted";
    owner.device.trusts[{bob, 4}] = "undecided";
    auto r = omemo.recipients(bob);
    CHECK(r == OmemoSession::Recipients{{bob, 1}, {own, 7}});  // 3: no session; 8: none; 100: us
    // OMEMO 2 once the contact has a usable :2 device (issue 14 §1): its devices in 2 only.
    known(bob, "5", Version::V2);
    owner.device.sessions.insert({bob, 5, Version::V2});
    CHECK(omemo.recipients(bob) == OmemoSession::Recipients{{bob, 5}});
    owner.available = false;
    CHECK(omemo.recipients(bob).empty());
}

TEST_CASE_METHOD(OmemoFixture, "omemo: the send queue keeps the order of the sends", "[omemo]") {
    send(bob, "first", true, "m1");
    REQUIRE(open() == 4);  // 0.3 and 2 lists of bob and of ours
    send(bob, "second", true, "m2");
    send(bob, "third", true, "m3");
    CHECK(open() == 4);  // the others wait for the first one's lists
    CHECK(omemo.queued() == 3);
    answer_lists({{bob, {1}}, {"", {100}}});
    REQUIRE(open() == 1);  // bob's device 1 has no session: its bundle
    CHECK(replies.empty());
    answer_bundles();
    // The lists are fresh now: the next ones go at once, in order.
    REQUIRE(replies.size() == 3);
    for (const auto& r : replies) CHECK(r.error_code.empty());
    REQUIRE(store.outbox.size() == 3);
    CHECK(store.outbox[0].msg_id == "m1");
    CHECK(store.outbox[1].msg_id == "m2");
    CHECK(store.outbox[2].msg_id == "m3");
    CHECK(store.outbox[2].body == "third");
    CHECK(omemo.queued() == 0);
}

TEST_CASE_METHOD(OmemoFixture, "omemo: abandon answers every queued send, and late answers change nothing", "[omemo]") {
    send(bob, "first", true, "m1");
    send(bob, "second", true, "m2");
    REQUIRE(omemo.queued() == 2);
    REQUIRE(replies.empty());
    omemo.abandon("account home now has another JID");
    CHECK(omemo.queued() == 0);
    REQUIRE(replies.size() == 2);
    for (const auto& r : replies) {
        CHECK(r.error_code == "internal");
        CHECK(r.error_message.find("send it again") != std::string::npos);
    }
    // The lists the first one asked for arrive after: nothing is sent, nothing answered.
    answer_lists({{bob, {1}}, {"", {100}}});
    answer_bundles();
    CHECK(replies.size() == 2);
    CHECK(store.outbox.empty());
}

TEST_CASE_METHOD(OmemoFixture, "omemo: device lists and bundles are fetched once per JID and session", "[omemo]") {
    send(bob, "one");
    answer_lists({{bob, {1, 2}}, {"", {100, 7}}});
    CHECK(open() == 3);  // bundles of bob's 1 and 2, and of our 7
    answer_bundles();
    CHECK(owner.device.built.size() == 3);
    CHECK(store.values.count("omemo:session:" + bob + "/1"));  // stored at once (§4.4)
    const auto asked = port.requests.size();
    send(bob, "two");
    CHECK(port.requests.size() == asked);  // fresh this session: nothing asked again
    REQUIRE(replies.size() == 2);
    CHECK(replies[1].error_code.empty());
    // A new session: the lists may have changed meanwhile; fetched again.
    omemo.online();
    const auto after_online = port.requests.size();
    send(bob, "three");
    CHECK(port.requests.size() == after_online + 4);
    answer_lists({{bob, {1, 2}}, {"", {100, 7}}});
    CHECK(open() == 0);  // sessions exist: no bundle fetched again
    CHECK(owner.device.built.size() == 3);
    CHECK(replies.size() == 3);
}

TEST_CASE_METHOD(OmemoFixture, "omemo: a failed list fetch is not fresh and is asked again", "[omemo]") {
    send(bob, "one", false);
    for (std::size_t i = 0; i < port.requests.size(); ++i) fail(i, "internal-server-error");
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].error_code.empty());  // auto, and no device known: in clear
    CHECK(store.values.count("omemo:out:" + replies[0].msg_id) == 0);
    const auto asked = port.requests.size();
    send(bob, "two", false);
    CHECK(port.requests.size() == asked + 4);
}

TEST_CASE_METHOD(OmemoFixture, "omemo: required encryption fails rather than go in clear", "[omemo]") {
    SECTION("the contact has no device") {
        send(bob, "secret");
        answer_lists({{"", {100}}});
        REQUIRE(replies.size() == 1);
        CHECK(replies[0].error_code == "no-omemo-device");
    }
    SECTION("the contact's only device is distrusted") {
        owner.device.trusts[{bob, 1}] = "distrusted";
        send(bob, "secret");
        answer_lists({{bob, {1}}, {"", {100}}});
        answer_bundles();
        REQUIRE(replies.size() == 1);
        CHECK(replies[0].error_code == "no-omemo-device");
    }
    SECTION("offline, with no session known") {
        port.is_online = false;
        send(bob, "secret");
        REQUIRE(replies.size() == 1);
        CHECK(replies[0].error_code == "no-omemo-device");
        CHECK(replies[0].error_message.find("offline") != std::string::npos);
    }
    SECTION("no device of ours") {
        owner.available = false;
        send(bob, "secret");
        answer_lists({{bob, {1}}, {"", {100}}});
        REQUIRE(replies.size() == 1);
        CHECK(replies[0].error_code == "no-omemo-device");
    }
    CHECK(store.outbox.empty());
    CHECK(port.sent.empty());
}

TEST_CASE_METHOD(OmemoFixture, "omemo: auto sends in clear to a contact without devices, not to one with", "[omemo]") {
    send(bob, "hello", false);
    answer_lists({{"", {100}}});
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].error_code.empty());
    REQUIRE(store.outbox.size() == 1);
    CHECK_FALSE(omemo.encrypted(store.outbox[0].msg_id));
    REQUIRE(port.sent.size() == 1);
    CHECK(port.sent[0].first.find("<body>hello</body>") != std::string::npos);
    // Issue 14 §4: devices listed but none usable: encryption was in use, so it fails.
    omemo.online();
    owner.device.trusts[{bob, 1}] = "undecided";
    send(bob, "again", false);
    answer_lists({{bob, {1}}, {"", {100}}});
    answer_bundles();
    REQUIRE(replies.size() == 2);
    CHECK(replies[1].error_code == "no-omemo-device");
    CHECK(store.outbox.size() == 1);
}

TEST_CASE_METHOD(OmemoFixture, "omemo: the outbox marker is set on queueing and goes when finished", "[omemo]") {
    known(bob, "1");
    owner.device.sessions.insert({bob, 1, Version::Legacy});
    port.is_online = false;  // no fetch: the sessions known are used
    send(bob, "secret", true, "m1");
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].error_code.empty());
    CHECK(store.values["omemo:out:m1"] == "1");
    CHECK(store.values["omemo:used:" + bob] == "1");  // "auto" encrypts from now on
    REQUIRE(store.outbox.size() == 1);
    CHECK(omemo.encrypted("m1"));
    CHECK_FALSE(omemo.encrypted("other"));
    omemo.finished("m1");
    CHECK(store.values.count("omemo:out:m1") == 0);
    // Unknown to this session (never transmitted on it): the marker stays.
    (void)store.keep("omemo:out:m2", "1");
    omemo.finished("m2");
    CHECK(store.values.count("omemo:out:m2") == 1);
}

TEST_CASE_METHOD(OmemoFixture, "omemo: a marked entry is encrypted at every transmit, or fails", "[omemo]") {
    known(bob, "1");
    known(own, "100,7");
    owner.device.sessions.insert({bob, 1, Version::Legacy});
    owner.device.sessions.insert({own, 7, Version::Legacy});
    Outgoing entry{"m1", bob + "/phone", "chat", "secret", "accepted", ""};
    OutgoingMessage m;
    m.to = entry.to;
    m.body = entry.body;
    m.id = "m1";
    auto xml = omemo.encrypt(entry, m);
    REQUIRE(xml);
    CHECK(xml.value().find("secret") == std::string::npos);
    CHECK(xml.value().find("eu.siacs.conversations.axolotl") != std::string::npos);
    REQUIRE(owner.device.encrypted_for.size() == 1);
    CHECK(owner.device.encrypted_for[0].size() == 2);
    CHECK(store.values["omemo:session:step"] == "1");  // stored before it leaves
    CHECK(owner.device.commits.back());
    SECTION("the contact's device is distrusted since") {
        owner.device.trusts[{bob, 1}] = "distrusted";
        auto again = omemo.encrypt(entry, m);
        REQUIRE_FALSE(again);
        CHECK(again.error().message.find("not sent in clear") != std::string::npos);
        CHECK_FALSE(owner.device.commits.back());
    }
    SECTION("the crypto fails") {
        owner.device.fail_encrypt = true;
        CHECK_FALSE(omemo.encrypt(entry, m));
        CHECK_FALSE(owner.device.commits.back());
    }
    SECTION("the store fails") {
        store.fail = true;
        CHECK_FALSE(omemo.encrypt(entry, m));
        CHECK_FALSE(owner.device.commits.back());
    }
}

TEST_CASE_METHOD(OmemoFixture, "omemo: the account session sends a marked entry encrypted, then drops its marker",
                 "[omemo]") {
    known(bob, "1");
    known(own, "100");
    owner.device.sessions.insert({bob, 1, Version::Legacy});
    port.is_online = false;  // stored now, out when online
    send(bob, "secret", true, "m1");
    REQUIRE(replies.size() == 1);
    REQUIRE(store.outbox.size() == 1);
    const std::string msg_id = store.outbox[0].msg_id;
    port.is_online = true;
    session.online(false, false);
    REQUIRE(port.sent.size() == 1);
    CHECK(port.sent[0].second == msg_id);
    CHECK(port.sent[0].first.find("secret") == std::string::npos);
    CHECK(port.sent[0].first.find("eu.siacs.conversations.axolotl") != std::string::npos);
    CHECK(port.states(msg_id) == std::vector<std::string>{"accepted", "sent"});
    session.acked({msg_id});
    CHECK(store.values.count("omemo:out:" + msg_id) == 0);  // finished: the marker goes
}

// Online, a plain message's row is written once, already sent (AccountSession::send); an
// encrypted one is stored first and encrypted at its transmit, never in clear.
TEST_CASE_METHOD(OmemoFixture, "omemo: online, an encrypted send is stored, then encrypted; a marked id never goes in clear",
                 "[omemo]") {
    known(bob, "1");
    known(own, "100");
    owner.device.sessions.insert({bob, 1, Version::Legacy});
    send(bob, "secret", true, "m1");
    answer_lists({{bob, {1}}, {"", {100}}});
    REQUIRE(replies.size() == 1);
    REQUIRE(replies[0].ok());
    REQUIRE(port.sent.size() == 1);
    CHECK(port.sent[0].first.find("secret") == std::string::npos);
    CHECK(port.sent[0].first.find("eu.siacs.conversations.axolotl") != std::string::npos);
    CHECK(port.states("m1") == std::vector<std::string>{"accepted", "sent"});
    CHECK(store.state_writes == 1);  // stored as accepted, then moved to sent

    // A send in clear (the account session asked directly) whose id is marked to go
    // encrypted (a retry of an encrypted send whose row did not make it): encrypted.
    store.values["omemo:out:m2"] = "1";
    model::Send clear;
    clear.account = "work";
    clear.to = bob;
    clear.body = "also secret";
    clear.client_id = "m2";
    REQUIRE(session.send(clear).ok());
    REQUIRE(port.sent.size() == 2);
    CHECK(port.sent[1].first.find("also secret") == std::string::npos);
    CHECK(port.sent[1].first.find("eu.siacs.conversations.axolotl") != std::string::npos);
}

TEST_CASE_METHOD(OmemoFixture, "omemo: a bundle publish asked while one is out goes once after it", "[omemo]") {
    // XEP-0384 §5.3.2: both versions' bundles, one publish out at a time.
    omemo.online();
    auto publishes = [this] {
        std::vector<std::size_t> out;
        for (std::size_t i = 0; i < port.requests.size(); ++i)
            if (port.requests[i].xml.find("<publish") != std::string::npos &&
                port.requests[i].xml.find("bundle") != std::string::npos)
                out.push_back(i);
        return out;
    };
    REQUIRE(publishes().size() == 1);  // 0.3 first
    omemo.publish_bundle();
    omemo.publish_bundle();
    CHECK(publishes().size() == 1);
    answer(publishes()[0], "<iq type='result' id='x'/>");
    REQUIRE(publishes().size() == 2);  // then OMEMO 2
    CHECK(port.requests[publishes()[1]].xml.find("urn:xmpp:omemo:2:bundles") != std::string::npos);
    answer(publishes()[1], "<iq type='result' id='x'/>");
    REQUIRE(publishes().size() == 3);  // the two asked meanwhile: one more, once
    answer(publishes()[2], "<iq type='result' id='x'/>");
    fail(publishes()[3], "forbidden");  // a failed publish ends it too
    CHECK(publishes().size() == 4);
    omemo.publish_bundle();
    CHECK(publishes().size() == 5);  // idle again
}

TEST_CASE_METHOD(OmemoFixture, "omemo: a new session publishes again even with one out on the old", "[omemo]") {
    omemo.online();
    omemo.publish_bundle();  // out: coalesced
    const auto before = port.requests.size();
    omemo.online();  // the old session's answers never come
    CHECK(port.requests.size() == before + 3);  // a bundle publish and both list fetches
}

TEST_CASE_METHOD(OmemoFixture, "omemo: our device goes on our device lists unless it is there", "[omemo]") {
    // §5.3.1: fetched at every new session; published with our id added, others kept.
    omemo.online();
    std::size_t legacy = 0, v2 = 0;
    for (std::size_t i = 0; i < port.requests.size(); ++i) {
        if (port.requests[i].xml.find("axolotl.devicelist") != std::string::npos) legacy = i;
        if (port.requests[i].xml.find("omemo:2:devices") != std::string::npos) v2 = i;
    }
    const auto before = port.requests.size();
    answer(legacy, list(Version::Legacy, {5, 100}));
    CHECK(port.requests.size() == before);  // there: nothing to publish
    fail(v2, "item-not-found");             // no list yet: an empty one
    REQUIRE(port.requests.size() == before + 1);
    CHECK(port.requests.back().xml.find("<device id='100'/>") != std::string::npos);
    // Another client overwrote our 0.3 list without us: added again, its devices kept.
    auto ev = frame("<message from='alice@example.org'><event xmlns='http://jabber.org/protocol/pubsub#event'>"
                    "<items node='eu.siacs.conversations.axolotl.devicelist'><item id='current'>"
                    "<list xmlns='eu.siacs.conversations.axolotl'><device id='5'/></list></item></items>"
                    "</event></message>");
    CHECK(omemo.event(ev.root()));
    REQUIRE(port.requests.size() == before + 2);
    CHECK(port.requests.back().xml.find("<device id='5'/>") != std::string::npos);
    CHECK(port.requests.back().xml.find("<device id='100'/>") != std::string::npos);
    // Someone else's list is a notification too, but nothing of ours.
    auto other = frame("<message from='bob@example.org'><event xmlns='http://jabber.org/protocol/pubsub#event'>"
                       "<items node='urn:xmpp:omemo:2:devices'><item id='current'>"
                       "<devices xmlns='urn:xmpp:omemo:2'><device id='5'/></devices></item></items>"
                       "</event></message>");
    CHECK(omemo.event(other.root()));
    CHECK(port.requests.size() == before + 2);
    CHECK_FALSE(omemo.event(frame("<message from='bob@example.org'><body>hi</body></message>").root()));
}

TEST_CASE_METHOD(OmemoFixture, "omemo: whether a send is encrypted", "[omemo]") {
    model::Send s;
    s.to = bob + "/phone";
    s.type = "chat";
    auto wanted = [&] { return omemo.wanted(s); };
    REQUIRE(wanted());
    CHECK_FALSE(wanted().value());  // auto, never used: in clear
    (void)store.keep("omemo:used:" + bob, "1");
    REQUIRE(wanted().value());
    CHECK_FALSE(*wanted().value());  // auto, used: encrypted if it can be
    omemo.set_encryption({"work", bob, "omemo"});
    CHECK(*wanted().value());  // required
    owner.mode = "off";
    CHECK_FALSE(wanted());  // cannot be honoured: an error, nothing sent
    omemo.set_encryption({"work", bob, "off"});
    REQUIRE(wanted());
    CHECK_FALSE(wanted().value());
    s.type = "groupchat";
    omemo.set_encryption({"work", bob, "omemo"});
    CHECK_FALSE(wanted());  // rooms: not supported, and set to omemo
    omemo.set_encryption({"work", bob, "default"});
    REQUIRE(wanted());
    CHECK_FALSE(wanted().value());  // the account's default is for 1:1 chats
    auto reply = omemo.set_encryption({"work", bob, ""});
    CHECK(reply.encryption == "default");
    CHECK(reply.encryption_default == "off");
}

TEST_CASE_METHOD(OmemoFixture, "omemo: decryption never shows the fallback body", "[omemo]") {
    auto stanza = frame("<message from='bob@example.org/phone' to='alice@example.org/s' type='chat'>"
                        "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='5'><key rid='100'>AAAA</key>"
                        "<iv>AAAAAAAAAAAAAAAA</iv></header><payload>AAAA</payload></encrypted>"
                        "<body>I sent you an OMEMO encrypted message</body></message>");
    auto m = parse_message(stanza.root(), alice);
    REQUIRE(m);
    REQUIRE(m->omemo);
    model::Message msg;
    SECTION("it decrypts") {
        owner.device.next_decrypted = {OmemoCrypto::Decrypted::Kind::Message, "hi", "", "blind"};
        auto writes = omemo.decrypt(*m, msg, "");
        REQUIRE(writes);
        CHECK(writes->size() == 1);  // the session's step, stored with the message
        CHECK(msg.body == "hi");
        CHECK(msg.trust == "blind");
        CHECK(store.values["omemo:used:" + bob] == "1");
        owner.device.bundle_changes = true;  // a pre-key was used: the bundle goes again
        omemo.decrypted(true);
        CHECK(owner.device.commits == std::vector<bool>{true});
        CHECK(port.requests.size() == 1);
    }
    SECTION("it does not") {
        owner.device.next_decrypted = {OmemoCrypto::Decrypted::Kind::Failed, "", "no key for us", ""};
        REQUIRE(omemo.decrypt(*m, msg, ""));
        CHECK(msg.body.empty());
        CHECK(msg.error == "no key for us");
        omemo.decrypted(false);
        CHECK(owner.device.commits == std::vector<bool>{false});
    }
    SECTION("in a room") {
        CHECK_FALSE(omemo.decrypt(*m, msg, "room@muc.example.org"));
        CHECK(msg.body.empty());
        CHECK(msg.error.find("rooms") != std::string::npos);
    }
    SECTION("encryption is off") {
        owner.mode = "off";
        CHECK_FALSE(omemo.decrypt(*m, msg, ""));
        CHECK(msg.body.empty());
        CHECK(msg.error.find("off") != std::string::npos);
        omemo.decrypted(true);  // nothing to commit
        CHECK(owner.device.commits.empty());
    }
    CHECK(msg.encryption == "omemo");
}

TEST_CASE_METHOD(OmemoFixture, "omemo: trust and the device list command", "[omemo]") {
    CHECK(omemo.trust({"work", bob, 1, true}).error_code == "item-not-found");  // no key known
    owner.device.trusts[{bob, 1}] = "blind";
    CHECK(omemo.trust({"work", bob, 1, false}).error_code.empty());
    CHECK(owner.device.trusts[{bob, 1}] == "distrusted");
    port.is_online = false;
    known(bob, "1");
    owner.device.trusts[{bob, 2}] = "changed";
    std::vector<model::Reply> got;
    omemo.devices({"work", bob}, [&](model::Reply r) { got.push_back(std::move(r)); });
    REQUIRE(got.size() == 1);
    const auto& d = got[0].omemo_devices;
    REQUIRE(d.size() == 3);
    CHECK((d[0].jid == own && d[0].device == 100 && d[0].trust == "own"));
    CHECK((d[1].device == 1 && d[1].trust == "distrusted" && d[1].listed));
    CHECK((d[2].device == 2 && d[2].trust == "changed" && !d[2].listed));
    owner.mode = "off";
    CHECK(omemo.trust({"work", bob, 1, true}).error_code == "feature-not-implemented");
}
