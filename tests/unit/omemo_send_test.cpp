// OmemoDevice sending (XEP-0384 0.3 §4.4 and §4.5) and the trust policy (issue 14 §5): two
// of the daemon's devices (accounts "alice" and "bob" in one real Store) build sessions from
// each other's bundles and exchange messages. (The interoperability test with another
// implementation is tests/integration/test_omemo_send.py, with python-omemo.)
#include <catch2/catch.hpp>

#include <filesystem>

#include "daemon/log.hpp"
#include "daemon/omemo.hpp"
#include "temp_dir.hpp"

using stanzad::OmemoDevice;
using stanzad::Store;
namespace omemo = xmpp::omemo;

namespace {

using stanzad::test::TempDir;

std::unique_ptr<OmemoDevice> open_device(Store& store, const std::string& account) {
    static const bool logging = [] {
        logs::init("off");
        return true;
    }();
    (void)logging;
    auto d = OmemoDevice::open(store, account);
    INFO((d ? std::string() : d.error().message));
    REQUIRE(d);
    return std::move(d).value();
}

// What the hub does: the pending changes stored, then committed.
void commit(Store& store, const std::string& account, OmemoDevice& device) {
    REQUIRE(store.set_metas(account, device.pending()));
    device.committed(true);
}

omemo::Encrypted send(Store& store, OmemoDevice& from, const std::string& text, const std::string& to_jid,
                      std::uint32_t to_device, const std::string& account = "alice") {
    auto e = from.encrypt(text, {{to_jid, to_device}});
    REQUIRE(e);
    commit(store, account, from);
    return std::move(e).value();
}

OmemoDevice::Decrypted receive(Store& store, OmemoDevice& device, const omemo::Encrypted& e, const std::string& from,
                               const std::string& account = "bob") {
    auto r = device.decrypt(e, from);
    commit(store, account, device);
    return r;
}

using Kind = OmemoDevice::Decrypted::Kind;

}  // namespace

TEST_CASE("omemo send: a session from a bundle; key exchanges until the peer answers, then both ways") {
    TempDir dir;
    auto store = std::move(Store::open(dir.store())).value();
    auto alice = open_device(*store, "alice");
    auto bob = open_device(*store, "bob");
    CHECK_FALSE(alice->has_session("bob@example.org", bob->device_id()));
    REQUIRE(alice->build_session("bob@example.org", bob->device_id(), bob->bundle()));
    commit(*store, "alice", *alice);
    CHECK(alice->has_session("bob@example.org", bob->device_id()));
    CHECK(alice->trust("bob@example.org", bob->device_id()) == "blind");

    auto first = send(*store, *alice, "hello ✓", "bob@example.org", bob->device_id());
    CHECK(first.sid == alice->device_id());
    REQUIRE(first.keys.size() == 1);
    CHECK(first.keys[0].rid == bob->device_id());
    CHECK(first.keys[0].prekey);
    CHECK(first.iv.size() == 12);
    REQUIRE(first.payload);
    CHECK(first.payload->find("hello") == std::string::npos);
    auto second = send(*store, *alice, "second", "bob@example.org", bob->device_id());
    CHECK(second.keys[0].prekey);  // still unanswered

    auto r = receive(*store, *bob, first, "alice@example.org");
    CHECK(r.kind == Kind::Message);
    CHECK(r.body == "hello ✓");
    CHECK(r.trust == "blind");
    CHECK(receive(*store, *bob, second, "alice@example.org").body == "second");

    // Bob answers on the session the key exchange built; alice's next are plain messages.
    auto answer = send(*store, *bob, "answer", "alice@example.org", alice->device_id(), "bob");
    CHECK_FALSE(answer.keys[0].prekey);
    CHECK(receive(*store, *alice, answer, "bob@example.org", "alice").body == "answer");
    auto third = send(*store, *alice, "third", "bob@example.org", bob->device_id());
    CHECK_FALSE(third.keys[0].prekey);
    CHECK(receive(*store, *bob, third, "alice@example.org").body == "third");

    // A message key is used once: the same ciphertext again is refused, the session goes on.
    CHECK(receive(*store, *bob, third, "alice@example.org").kind == Kind::Failed);
    CHECK(receive(*store, *bob, send(*store, *alice, "fourth", "bob@example.org", bob->device_id()),
                  "alice@example.org")
              .body == "fourth");

    // The sessions come back from the store.
    alice = open_device(*store, "alice");
    CHECK(receive(*store, *bob, send(*store, *alice, "after a restart", "bob@example.org", bob->device_id()),
                  "alice@example.org")
              .body == "after a restart");
}

TEST_CASE("omemo send: addresses without a session are skipped; a bad bundle is refused") {
    TempDir dir;
    auto store = std::move(Store::open(dir.store())).value();
    auto alice = open_device(*store, "alice");
    auto bob = open_device(*store, "bob");
    std::vector<OmemoDevice::Address> skipped;
    auto e = alice->encrypt("nobody", {{"bob@example.org", bob->device_id()}}, &skipped);
    REQUIRE(e);
    CHECK(e.value().keys.empty());
    REQUIRE(skipped.size() == 1);
    CHECK(skipped[0].device == bob->device_id());

    omemo::Bundle forged = bob->bundle();
    forged.spks[0] = static_cast<char>(forged.spks[0] ^ 1);
    auto st = alice->build_session("bob@example.org", bob->device_id(), forged);
    CHECK_FALSE(st);
    alice->committed(false);
    omemo::Bundle empty = bob->bundle();
    empty.prekeys.clear();
    CHECK_FALSE(alice->build_session("bob@example.org", bob->device_id(), empty));
    alice->committed(false);
    CHECK_FALSE(alice->has_session("bob@example.org", bob->device_id()));
}

TEST_CASE("omemo trust: blind until a device is trusted; then new devices are undecided; distrusted refused") {
    TempDir dir;
    auto store = std::move(Store::open(dir.store())).value();
    auto alice = open_device(*store, "alice");
    auto phone = open_device(*store, "phone");  // bob's devices
    auto laptop = open_device(*store, "laptop");
    const std::string bob = "bob@example.org";

    CHECK(alice->trust(bob, phone->device_id()).empty());
    CHECK_FALSE(alice->set_trust(bob, phone->device_id(), true));  // no key known yet
    REQUIRE(alice->build_session(bob, phone->device_id(), phone->bundle()));
    commit(*store, "alice", *alice);
    CHECK(alice->trust(bob, phone->device_id()) == "blind");
    CHECK(OmemoDevice::usable_trust("blind"));

    auto known = alice->known_devices(bob);
    REQUIRE(known);
    REQUIRE(known.value().size() == 1);
    CHECK(known.value()[0].device == phone->device_id());
    CHECK(known.value()[0].fingerprint == phone->fingerprint());
    CHECK(known.value()[0].trust == "blind");

    REQUIRE(alice->set_trust(bob, phone->device_id(), true));
    commit(*store, "alice", *alice);
    CHECK(alice->trust(bob, phone->device_id()) == "trusted");
    // A device that appears now waits for a decision.
    REQUIRE(alice->build_session(bob, laptop->device_id(), laptop->bundle()));
    commit(*store, "alice", *alice);
    CHECK(alice->trust(bob, laptop->device_id()) == "undecided");
    CHECK_FALSE(OmemoDevice::usable_trust("undecided"));
    CHECK_FALSE(OmemoDevice::usable_trust("changed"));

    // Distrusted: its messages are refused, with a reason; the trusted one still works.
    REQUIRE(alice->set_trust(bob, laptop->device_id(), false));
    commit(*store, "alice", *alice);
    CHECK_FALSE(OmemoDevice::usable_trust("distrusted"));
    REQUIRE(laptop->build_session("alice@example.org", alice->device_id(), alice->bundle()));
    commit(*store, "laptop", *laptop);
    auto from_laptop = send(*store, *laptop, "let me in", "alice@example.org", alice->device_id(), "laptop");
    auto r = receive(*store, *alice, from_laptop, bob, "alice");
    CHECK(r.kind == Kind::Failed);
    CHECK(r.error == "the sending device is distrusted");
    CHECK(r.body.empty());
    REQUIRE(phone->build_session("alice@example.org", alice->device_id(), alice->bundle()));
    commit(*store, "phone", *phone);
    r = receive(*store, *alice, send(*store, *phone, "hi", "alice@example.org", alice->device_id(), "phone"), bob,
                "alice");
    CHECK(r.body == "hi");
    CHECK(r.trust == "trusted");
}
