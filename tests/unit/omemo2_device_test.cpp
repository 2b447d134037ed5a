// OmemoDevice in OMEMO 2 (urn:xmpp:omemo:2, XEP-0384 §4-§5): two of the daemon's devices
// (accounts "alice" and "bob" in one real Store) exchange messages over libomemo-c's
// version-4 sessions with SCE envelopes (XEP-0420). (Interoperability with another
// implementation: tests/integration/test_omemo2.py, with python-omemo and twomemo.)
#include <catch2/catch.hpp>

#include <filesystem>

#include "daemon/log.hpp"
#include "daemon/omemo.hpp"
#include "protocol/omemo/payload.hpp"
#include "temp_dir.hpp"

using stanzad::OmemoDevice;
using stanzad::Store;
namespace omemo = xmpp::omemo;

namespace {

constexpr auto V2 = omemo::Version::V2;
using Kind = OmemoDevice::Decrypted::Kind;

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
    d.value()->set_own_jid(account + "@example.org");
    return std::move(d).value();
}

void commit(Store& store, const std::string& account, OmemoDevice& device) {
    REQUIRE(store.set_metas(account, device.pending()));
    device.committed(true);
}

omemo::Encrypted send(Store& store, OmemoDevice& from, const std::string& account, const std::string& text,
                      const std::string& to_jid, std::uint32_t to_device) {
    auto e = from.encrypt(text, {{to_jid, to_device}}, nullptr, V2);
    REQUIRE(e);
    commit(store, account, from);
    return std::move(e).value();
}

OmemoDevice::Decrypted receive(Store& store, OmemoDevice& device, const std::string& account, const omemo::Encrypted& e,
                               const std::string& from) {
    auto r = device.decrypt(e, from);
    commit(store, account, device);
    return r;
}

}  // namespace

TEST_CASE("omemo 2 device: the bundle in the OMEMO 2 form") {
    TempDir dir;
    auto store = std::move(Store::open(dir.store())).value();
    auto alice = open_device(*store, "alice");
    auto b = alice->bundle(V2);
    // §5.3.2: 32-byte keys; the identity key is the Ed25519 form of the 0.3 one.
    CHECK(b.ik.size() == 32);
    CHECK(b.ik != alice->bundle().ik.substr(1));
    CHECK(b.spk == alice->bundle().spk.substr(1));
    CHECK(b.spks.size() == 64);
    REQUIRE(b.prekeys.size() == alice->bundle().prekeys.size());
    CHECK(b.prekeys[0].key.size() == 32);
    // It survives the codec.
    auto xml = omemo::make_bundle(V2, b);
    pugi::xml_document doc;
    REQUIRE(doc.load_string(xml.c_str()));
    auto parsed = omemo::parse_bundle(doc.document_element());
    REQUIRE(parsed);
    CHECK(parsed.value().ik == b.ik);
}

TEST_CASE("omemo 2 device: key exchange, both ways, envelopes checked, sessions apart from 0.3") {
    TempDir dir;
    auto store = std::move(Store::open(dir.store())).value();
    auto alice = open_device(*store, "alice");
    auto bob = open_device(*store, "bob");
    const std::string a = "alice@example.org", b = "bob@example.org";
    REQUIRE(alice->build_session(b, bob->device_id(), bob->bundle(V2), V2));
    commit(*store, "alice", *alice);
    CHECK(alice->has_session(b, bob->device_id(), V2));
    CHECK_FALSE(alice->has_session(b, bob->device_id()));  // no 0.3 session

    auto first = send(*store, *alice, "alice", "hello ✓ <&>", b, bob->device_id());
    CHECK(first.version == V2);
    REQUIRE(first.keys.size() == 1);
    CHECK(first.keys[0].jid == b);
    CHECK(first.keys[0].prekey);  // kex='true'
    CHECK(first.iv.empty());
    REQUIRE(first.payload);
    CHECK(first.payload->find("hello") == std::string::npos);
    // The stanza round trip.
    pugi::xml_document doc;
    REQUIRE(doc.load_string(omemo::make_encrypted(first).c_str()));
    auto parsed = omemo::parse_encrypted(doc.document_element());
    REQUIRE(parsed);

    auto r = receive(*store, *bob, "bob", parsed.value(), a);
    INFO(r.error);
    CHECK(r.kind == Kind::Message);
    CHECK(r.body == "hello ✓ <&>");
    CHECK(r.trust == "blind");
    CHECK(bob->has_session(a, alice->device_id(), V2));
    CHECK_FALSE(bob->has_session(a, alice->device_id()));

    auto answer = send(*store, *bob, "bob", "answer", a, alice->device_id());
    CHECK_FALSE(answer.keys[0].prekey);
    CHECK(receive(*store, *alice, "alice", answer, b).body == "answer");
    auto third = send(*store, *alice, "alice", "third", b, bob->device_id());
    CHECK_FALSE(third.keys[0].prekey);
    CHECK(receive(*store, *bob, "bob", third, a).body == "third");
    // A replay is refused.
    CHECK(receive(*store, *bob, "bob", third, a).kind == Kind::Failed);

    // The envelope names alice: the same message claimed by someone else does not pass.
    auto fourth = send(*store, *alice, "alice", "fourth", b, bob->device_id());
    auto stolen = bob->decrypt(fourth, "mallory@example.org");
    CHECK(stolen.kind == Kind::Failed);
    bob->committed(false);

    // After a restart, the sessions come back from the store.
    alice = open_device(*store, "alice");
    auto after = send(*store, *alice, "alice", "after a restart", b, bob->device_id());
    CHECK(receive(*store, *bob, "bob", after, a).body == "after a restart");
}

TEST_CASE("omemo 2 device: an altered payload fails with a reason, the session goes on") {
    TempDir dir;
    auto store = std::move(Store::open(dir.store())).value();
    auto alice = open_device(*store, "alice");
    auto bob = open_device(*store, "bob");
    const std::string a = "alice@example.org", b = "bob@example.org";
    REQUIRE(alice->build_session(b, bob->device_id(), bob->bundle(V2), V2));
    commit(*store, "alice", *alice);
    auto e = send(*store, *alice, "alice", "one", b, bob->device_id());
    (*e.payload)[0] = static_cast<char>((*e.payload)[0] ^ 1);
    auto r = receive(*store, *bob, "bob", e, a);
    CHECK(r.kind == Kind::Failed);
    CHECK(r.error.find("payload") != std::string::npos);
    CHECK(receive(*store, *bob, "bob", send(*store, *alice, "alice", "two", b, bob->device_id()), a).body == "two");
    // A message for another JID's device is not ours.
    auto other = send(*store, *alice, "alice", "three", b, bob->device_id());
    for (auto& k : other.keys) k.jid = "carol@example.org";
    CHECK(bob->decrypt(other, a).error == "not encrypted for this device");
    bob->committed(false);
}

TEST_CASE("omemo 2 device: one device in both versions keeps one identity record and one trust") {
    TempDir dir;
    auto store = std::move(Store::open(dir.store())).value();
    auto alice = open_device(*store, "alice");
    auto bob = open_device(*store, "bob");
    const std::string b = "bob@example.org";
    REQUIRE(alice->build_session(b, bob->device_id(), bob->bundle()));
    commit(*store, "alice", *alice);
    REQUIRE(alice->build_session(b, bob->device_id(), bob->bundle(V2), V2));
    commit(*store, "alice", *alice);
    CHECK(alice->has_session(b, bob->device_id()));
    CHECK(alice->has_session(b, bob->device_id(), V2));
    // The Ed25519 identity key of the :2 bundle is the same key as the 0.3 one: not "changed".
    CHECK(alice->trust(b, bob->device_id()) == "blind");
    auto known = alice->known_devices(b);
    REQUIRE(known);
    REQUIRE(known.value().size() == 1);
    CHECK(known.value()[0].fingerprint == bob->fingerprint());
    // Distrusting it covers both versions.
    REQUIRE(alice->set_trust(b, bob->device_id(), false));
    commit(*store, "alice", *alice);
    REQUIRE(bob->build_session("alice@example.org", alice->device_id(), alice->bundle(V2), V2));
    commit(*store, "bob", *bob);
    auto m = send(*store, *bob, "bob", "from a distrusted device", "alice@example.org", alice->device_id());
    auto r = alice->decrypt(m, b);
    CHECK(r.kind == Kind::Failed);
    CHECK(r.error == "the sending device is distrusted");
    alice->committed(false);
    // A bundle whose signature does not verify is refused.
    auto forged = bob->bundle(V2);
    forged.spks[0] = static_cast<char>(forged.spks[0] ^ 1);
    auto carol = open_device(*store, "carol");
    CHECK_FALSE(carol->build_session(b, bob->device_id(), forged, V2));
    carol->committed(false);
    // A 0.3 bundle given as OMEMO 2 (33-byte keys) is refused.
    CHECK_FALSE(carol->build_session(b, bob->device_id(), bob->bundle(), V2));
    carol->committed(false);
}
