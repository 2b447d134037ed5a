// OmemoDevice decrypting what another libomemo-c session encrypts (XEP-0384, OMEMO 0.3):
// the sender here keeps its state in memory; the receiver is the daemon's device over a
// real Store. (The interoperability test with another implementation is
// tests/integration/test_omemo_receive.py, with python-omemo.)
#include <catch2/catch.hpp>

#include <openssl/rand.h>

#include <filesystem>
#include <map>

extern "C" {
#include <omemo/curve.h>
#include <omemo/key_helper.h>
#include <omemo/protocol.h>
#include <omemo/ratchet.h>
#include <omemo/session_builder.h>
#include <omemo/session_cipher.h>
#include <omemo/session_pre_key.h>
#include <omemo/signal_protocol.h>
}

#include "daemon/log.hpp"
#include "daemon/omemo.hpp"
#include "temp_dir.hpp"
#include "protocol/omemo/payload.hpp"

using stanzad::OmemoDevice;
using stanzad::Store;
namespace omemo = xmpp::omemo;

namespace {

using stanzad::test::TempDir;

std::string str(signal_buffer* b) {
    return std::string(reinterpret_cast<const char*>(signal_buffer_data(b)), signal_buffer_len(b));
}

// Another OMEMO device: libomemo-c with its state in maps. Sends to one recipient device.
class Sender {
public:
    explicit Sender(std::uint32_t device_id) : device_id_(device_id) {
        REQUIRE(signal_context_create(&ctx_, this) == 0);
        REQUIRE(stanzad::install_openssl_provider(ctx_));
        REQUIRE(signal_protocol_key_helper_generate_identity_key_pair(&identity_, ctx_) == 0);
        REQUIRE(signal_protocol_store_context_create(&store_, ctx_) == 0);
        signal_protocol_session_store sessions{};
        sessions.load_session_func = [](signal_buffer** record, signal_buffer**, const signal_protocol_address* a,
                                        void* u) {
            auto& m = static_cast<Sender*>(u)->sessions_;
            auto it = m.find(a->device_id);
            if (it == m.end()) return 0;
            *record = signal_buffer_create(reinterpret_cast<const uint8_t*>(it->second.data()), it->second.size());
            return 1;
        };
        sessions.store_session_func = [](const signal_protocol_address* a, uint8_t* r, size_t n, uint8_t*, size_t,
                                         void* u) {
            static_cast<Sender*>(u)->sessions_[a->device_id] = std::string(reinterpret_cast<char*>(r), n);
            return 0;
        };
        sessions.contains_session_func = [](const signal_protocol_address* a, void* u) {
            return static_cast<int>(static_cast<Sender*>(u)->sessions_.count(a->device_id));
        };
        sessions.user_data = this;
        signal_protocol_identity_key_store identities{};
        identities.get_identity_key_pair = [](signal_buffer** pub, signal_buffer** priv, void* u) {
            auto* s = static_cast<Sender*>(u);
            ec_public_key_serialize(pub, ratchet_identity_key_pair_get_public(s->identity_));
            ec_private_key_serialize(priv, ratchet_identity_key_pair_get_private(s->identity_));
            return 0;
        };
        identities.get_local_registration_id = [](void*, uint32_t* id) {
            *id = 1234;
            return 0;
        };
        identities.save_identity = [](const signal_protocol_address*, uint8_t*, size_t, void*) { return 0; };
        identities.is_trusted_identity = [](const signal_protocol_address*, uint8_t*, size_t, void*) { return 1; };
        identities.user_data = this;
        REQUIRE(signal_protocol_store_context_set_session_store(store_, &sessions) == 0);
        REQUIRE(signal_protocol_store_context_set_identity_key_store(store_, &identities) == 0);
    }
    ~Sender() {
        signal_protocol_store_context_destroy(store_);
        SIGNAL_UNREF(identity_);
        signal_context_destroy(ctx_);
    }
    Sender(const Sender&) = delete;
    Sender& operator=(const Sender&) = delete;

    // X3DH from the recipient's published bundle, with its pre-key `pre_key_index`.
    void start(const omemo::Bundle& b, std::uint32_t device, std::size_t pre_key_index = 0) {
        address_ = {name_.c_str(), name_.size(), static_cast<int32_t>(device)};
        auto point = [&](const std::string& bytes) {
            ec_public_key* k = nullptr;
            REQUIRE(curve_decode_point(&k, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), ctx_) == 0);
            return k;
        };
        ec_public_key* pk = point(b.prekeys.at(pre_key_index).key);
        ec_public_key* spk = point(b.spk);
        ec_public_key* ik = point(b.ik);
        session_pre_key_bundle* bundle = nullptr;
        REQUIRE(session_pre_key_bundle_create(&bundle, 0, static_cast<int>(device), b.prekeys.at(pre_key_index).id, pk,
                                              b.spk_id, spk, reinterpret_cast<const uint8_t*>(b.spks.data()),
                                              b.spks.size(), ik) == 0);
        session_builder* builder = nullptr;
        REQUIRE(session_builder_create(&builder, store_, &address_, ctx_) == 0);
        session_builder_set_version(builder, CIPHERTEXT_CURRENT_VERSION);
        REQUIRE(session_builder_process_pre_key_bundle(builder, bundle) == 0);
        session_builder_free(builder);
        SIGNAL_UNREF(bundle);
        SIGNAL_UNREF(pk);
        SIGNAL_UNREF(spk);
        SIGNAL_UNREF(ik);
    }

    // 0.3 §4.5: the payload sealed once, its key and tag through the session.
    omemo::Encrypted encrypt(const std::string& text, bool with_payload = true) {
        std::string key(16, '\0'), iv(12, '\0');
        RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), 16);
        RAND_bytes(reinterpret_cast<unsigned char*>(iv.data()), 12);
        auto sealed = omemo::seal(omemo::Version::Legacy, text, key, iv);
        REQUIRE(sealed);
        session_cipher* cipher = nullptr;
        REQUIRE(session_cipher_create(&cipher, store_, &address_, ctx_) == 0);
        session_cipher_set_version(cipher, CIPHERTEXT_CURRENT_VERSION);
        ciphertext_message* message = nullptr;
        const std::string& material = sealed.value().key_material;
        REQUIRE(session_cipher_encrypt(cipher, reinterpret_cast<const uint8_t*>(material.data()), material.size(),
                                       &message) == 0);
        omemo::Encrypted e;
        e.sid = device_id_;
        e.iv = iv;
        if (with_payload) e.payload = sealed.value().payload;
        omemo::Key k;
        k.rid = static_cast<std::uint32_t>(address_.device_id);
        k.prekey = ciphertext_message_get_type(message) == CIPHERTEXT_PREKEY_TYPE;
        k.data = str(ciphertext_message_get_serialized(message));
        e.keys.push_back(k);
        SIGNAL_UNREF(message);
        session_cipher_free(cipher);
        return e;
    }

private:
    std::uint32_t device_id_;
    std::string name_ = "alice@example.org";  // the recipient's bare JID
    signal_protocol_address address_{};
    signal_context* ctx_ = nullptr;
    signal_protocol_store_context* store_ = nullptr;
    ratchet_identity_key_pair* identity_ = nullptr;
    std::map<int32_t, std::string> sessions_;
};

std::unique_ptr<OmemoDevice> open_device(Store& store) {
    static const bool logging = [] {
        logs::init("off");  // the device logs (a changed identity key)
        return true;
    }();
    (void)logging;
    auto d = OmemoDevice::open(store, "home");
    INFO((d ? std::string() : d.error().message));
    REQUIRE(d);
    return std::move(d).value();
}

// What the hub does: decrypt, then commit the pending changes with the message.
OmemoDevice::Decrypted receive(Store& store, OmemoDevice& device, const omemo::Encrypted& e,
                               const std::string& from = "bob@example.org", bool* republish = nullptr) {
    auto r = device.decrypt(e, from);
    REQUIRE(store.set_metas("home", device.pending()));
    bool changed = device.committed(true);
    if (republish) *republish = changed;
    return r;
}

using Kind = OmemoDevice::Decrypted::Kind;

}  // namespace

TEST_CASE("omemo device: PreKeySignalMessage then SignalMessages decrypt; the session survives a restart") {
    TempDir dir;
    auto store = std::move(Store::open(dir.store())).value();
    auto device = open_device(*store);
    const omemo::Bundle before = device->bundle();
    REQUIRE(before.prekeys.size() == OmemoDevice::pre_key_count);

    Sender bob(777);
    bob.start(before, device->device_id(), 5);
    auto first = bob.encrypt("hello");
    REQUIRE(first.keys[0].prekey);
    bool republish = false;
    auto r = receive(*store, *device, first, "bob@example.org", &republish);
    CHECK(r.kind == Kind::Message);
    CHECK(r.body == "hello");
    CHECK(r.trust == "blind");
    // XEP-0384 §5.3.2: the used pre-key is gone, a fresh one (ids from 101) took its place.
    CHECK(republish);
    const auto& after = device->bundle();
    REQUIRE(after.prekeys.size() == OmemoDevice::pre_key_count);
    auto has = [](const omemo::Bundle& b, std::uint32_t id) {
        return std::any_of(b.prekeys.begin(), b.prekeys.end(), [&](const auto& p) { return p.id == id; });
    };
    CHECK_FALSE(has(after, before.prekeys[5].id));
    CHECK(has(after, OmemoDevice::pre_key_count + 1));
    CHECK(store->meta("home", "omemo:next_pk").value() == std::to_string(OmemoDevice::pre_key_count + 2));

    // Until we answer, bob keeps sending the key exchange: it does not use up another pre-key.
    auto second = bob.encrypt("second");
    CHECK(second.keys[0].prekey);
    r = receive(*store, *device, second, "bob@example.org", &republish);
    CHECK(r.body == "second");
    CHECK_FALSE(republish);

    // A replay: the message key is spent.
    r = receive(*store, *device, second);
    CHECK(r.kind == Kind::Failed);
    CHECK_THAT(r.error, Catch::Contains("used before"));

    // Out of order: the skipped key is kept.
    auto third = bob.encrypt("third");
    auto fourth = bob.encrypt("fourth");
    CHECK(receive(*store, *device, fourth).body == "fourth");

    // Restart: the device and its sessions come back from the store.
    device.reset();
    store.reset();
    store = std::move(Store::open(dir.store())).value();
    device = open_device(*store);
    CHECK(device->bundle().prekeys.size() == OmemoDevice::pre_key_count);
    CHECK(has(device->bundle(), OmemoDevice::pre_key_count + 1));
    CHECK(receive(*store, *device, third).body == "third");
    CHECK(receive(*store, *device, bob.encrypt("fifth")).body == "fifth");
}

TEST_CASE("omemo device: what does not decrypt says why, and keeps nothing pending") {
    TempDir dir;
    auto store = std::move(Store::open(dir.store())).value();
    auto device = open_device(*store);
    Sender bob(777);
    bob.start(device->bundle(), device->device_id());

    auto e = bob.encrypt("not for you");
    e.keys[0].rid = device->device_id() + 1;
    auto r = device->decrypt(e, "bob@example.org");
    CHECK(r.kind == Kind::Failed);
    CHECK(r.error == "not encrypted for this device");
    CHECK(device->pending().empty());

    // No session, and not a key exchange: a SignalMessage out of nowhere.
    Sender carol(888);
    carol.start(device->bundle(), device->device_id(), 1);
    auto c1 = carol.encrypt("c1");
    c1.keys[0].prekey = false;  // claims to be a SignalMessage: it does not parse as one
    r = device->decrypt(c1, "carol@example.org");
    CHECK(r.kind == Kind::Failed);
    CHECK(device->pending().empty());

    // Altered payload: the key decrypts, so the session moves on; the text is lost.
    auto altered = bob.encrypt("altered");
    (*altered.payload)[0] ^= 1;
    r = receive(*store, *device, altered);
    CHECK(r.kind == Kind::Failed);
    CHECK_THAT(r.error, Catch::Contains("payload"));
    CHECK(r.body.empty());
    CHECK(receive(*store, *device, bob.encrypt("still fine")).body == "still fine");

    // Key transport (no payload): the session moves on, nothing to show.
    CHECK(receive(*store, *device, bob.encrypt("", false)).kind == Kind::KeyTransport);

    // A 0.3 key presented as OMEMO 2 does not decrypt (the sessions are apart; OMEMO 2 is
    // tested in omemo2_device_test.cpp).
    auto v2 = bob.encrypt("v2");
    v2.version = omemo::Version::V2;
    CHECK(device->decrypt(v2, "bob@example.org").kind == Kind::Failed);

    // A decryption that is not committed leaves the store as it was.
    auto lost = bob.encrypt("dropped");
    CHECK(device->decrypt(lost, "bob@example.org").body == "dropped");
    CHECK_FALSE(device->pending().empty());
    device->committed(false);
    CHECK(device->pending().empty());
    CHECK(receive(*store, *device, lost).body == "dropped");  // decrypts again
}

TEST_CASE("omemo device: trust on first use; a changed identity key is marked, and stays marked") {
    TempDir dir;
    auto store = std::move(Store::open(dir.store())).value();
    auto device = open_device(*store);
    {
        Sender bob(777);
        bob.start(device->bundle(), device->device_id(), 0);
        CHECK(receive(*store, *device, bob.encrypt("first key")).trust == "blind");
        CHECK(receive(*store, *device, bob.encrypt("first key again")).trust == "blind");
    }
    // The same device id with another identity key (a reinstall, or someone else).
    Sender impostor(777);
    impostor.start(device->bundle(), device->device_id(), 1);
    auto r = receive(*store, *device, impostor.encrypt("second key"));
    CHECK(r.body == "second key");
    CHECK(r.trust == "changed");
    CHECK(receive(*store, *device, impostor.encrypt("later")).trust == "changed");
    CHECK(store->meta("home", "omemo:ik:bob@example.org/777").value().starts_with("changed "));
    // Another device of the same contact is trusted on its own first use.
    Sender laptop(778);
    laptop.start(device->bundle(), device->device_id(), 2);
    CHECK(receive(*store, *device, laptop.encrypt("laptop")).trust == "blind");
}

TEST_CASE("omemo device: one sender cannot start sessions from more devices than a device list holds") {
    TempDir dir;
    auto store = std::move(Store::open(dir.store())).value();
    auto device = open_device(*store);
    const std::size_t max = omemo::Limits{}.max_devices;
    for (std::size_t i = 0; i < max; ++i) {
        Sender s(static_cast<std::uint32_t>(1000 + i));
        s.start(device->bundle(), device->device_id(), 0);
        REQUIRE(receive(*store, *device, s.encrypt("hi")).kind == Kind::Message);
    }
    Sender one_more(static_cast<std::uint32_t>(1000 + max));
    one_more.start(device->bundle(), device->device_id(), 0);
    auto r = receive(*store, *device, one_more.encrypt("hi"));
    CHECK(r.kind == Kind::Failed);
    CHECK(r.error == "too many devices of this sender");
    // Another sender is not affected.
    Sender carol(1);
    carol.start(device->bundle(), device->device_id(), 0);
    CHECK(receive(*store, *device, carol.encrypt("hi"), "carol@example.org").kind == Kind::Message);
}
