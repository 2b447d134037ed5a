#pragma once
// OmemoDevice: this account's OMEMO device (XEP-0384): device id, identity key, signed
// pre-key and pre-keys, made on first use with libomemo-c and kept in the store
// (account_meta, a file of mode 0600; see docs/encryption.md for what that protects).
// libomemo-c is given an OpenSSL 3 crypto provider and a store context over the same
// account_meta: sessions (omemo:session:<bare JID>/<device>), pre-keys (omemo:pk:<id>), the
// signed pre-key (omemo:spk:<id>), our identity, and the identity keys of the other
// devices (omemo:ik:<bare JID>/<device>, trust on first use).
// What a decryption changes is held back (pending) until the caller commits it together
// with the message it decrypted (Store::append_once), so the session on disk never runs
// ahead of the stored messages. Loop thread only; memory: one libomemo-c context, about
// 100 pre-keys, and the pending writes of one message.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <map>
#include <optional>

#include "daemon/store.hpp"
#include "protocol/base/result.hpp"
#include "protocol/omemo/stanza.hpp"

struct signal_context;
struct signal_protocol_store_context;
struct ratchet_identity_key_pair;
struct ec_public_key;

namespace stanzad {

class OmemoDevice {
public:
    // The device of `account`, made now (and committed before this returns) if it has none.
    static xmpp::Result<std::unique_ptr<OmemoDevice>> open(Store& store, const std::string& account);
    ~OmemoDevice();
    OmemoDevice(const OmemoDevice&) = delete;
    OmemoDevice& operator=(const OmemoDevice&) = delete;

    std::uint32_t device_id() const { return device_id_; }
    // What we publish (XEP-0384 §5.3.2): public keys only. 0.3: keys with their type byte
    // (0x05); OMEMO 2 (§5.3.2): the identity key in its Ed25519 form, the others as 32-byte
    // Curve25519 keys, the signed pre-key's signature an Ed25519 one over those 32 bytes.
    const xmpp::omemo::Bundle& bundle() const { return bundle_; }
    xmpp::omemo::Bundle bundle(xmpp::omemo::Version v) const;
    // Our bare JID: OMEMO 2 addresses keys by JID (§4.5) and signs the SCE <from/> (XEP-0420).
    void set_own_jid(std::string jid) { own_jid_ = std::move(jid); }
    // The identity key's fingerprint in the usual grouped hex form (8 groups of 8).
    std::string fingerprint() const;

    static constexpr std::uint32_t pre_key_count = 100;  // §5.3.2: about 100, at least 25

    // What became of one <encrypted/>.
    struct Decrypted {
        enum class Kind { Message, KeyTransport, Failed };
        Kind kind = Kind::Failed;
        std::string body;             // Message: the plaintext
        std::string error;            // Failed: a short reason, for people
        std::string trust;            // the sender device's: "blind" | "changed" ("" when unknown)
        bool bundle_changed = false;  // a pre-key was used and replaced: publish the bundle
    };
    // XEP-0384 §4.6 Receiving a message (0.3 or 2, as e.version says; daemon/
    // omemo_receive.cpp): the key for our device (in 2: under our JID), the session with
    // device e.sid of `sender` (a bare JID; a key exchange builds it), the payload (in 2 an
    // XEP-0420 envelope whose <from/> must be `sender`).
    // The changes are pending until commit(): take them with pending() to store them with
    // the message, then call committed(true); or committed(false) to drop them.
    Decrypted decrypt(const xmpp::omemo::Encrypted& e, const std::string& sender);
    std::vector<MetaWrite> pending() const;
    // True when the bundle changed (stored, with a pre-key replaced): publish it again.
    bool committed(bool stored);

    // --- sending (daemon/omemo_send.cpp) ---------------------------------------------------
    // XEP-0384 (0.3) §4.4 Building a session: X3DH with a random pre-key of the bundle of
    // device `device` of `jid`. The session (and the device's identity key, with the trust
    // policy's first decision) are pending until committed, as for decrypt().
    // OMEMO 2 sessions (the Signal protocol's version 4 in libomemo-c) are kept apart from
    // 0.3 ones (omemo:session2:...): a device may speak both, with one identity key.
    xmpp::Status build_session(const std::string& jid, std::uint32_t device, const xmpp::omemo::Bundle& bundle,
                               xmpp::omemo::Version v = xmpp::omemo::Version::Legacy);
    bool has_session(const std::string& jid, std::uint32_t device,
                     xmpp::omemo::Version v = xmpp::omemo::Version::Legacy);
    struct Address {
        std::string jid;
        std::uint32_t device = 0;
    };
    // 0.3 §4.5 Sending a message: the payload sealed once (AES-128-GCM, a fresh key and IV),
    // the key material encrypted with the session of each address (a PreKeySignalMessage
    // until the peer answered). Addresses whose session fails are left out (`skipped`).
    // The ratchets' changes are pending: store them before the stanza leaves.
    // OMEMO 2 (§4.4): the plaintext goes in an XEP-0420 envelope (<rpad/> of random length,
    // <from/> our JID), sealed with AES-256-CBC and HMAC-SHA-256; keys grouped by JID.
    xmpp::Result<xmpp::omemo::Encrypted> encrypt(std::string_view plaintext, const std::vector<Address>& to,
                                                 std::vector<Address>* skipped = nullptr,
                                                 xmpp::omemo::Version v = xmpp::omemo::Version::Legacy);

    // --- trust (issue 14 §5; daemon/omemo_send.cpp) ----------------------------------------
    // A device's trust: "blind" (used, nobody verified a device of this contact when it
    // appeared), "trusted" / "distrusted" (the user decided), "undecided" (it appeared after
    // the user verified a device of this contact: not used until decided), "changed" (its
    // identity key is not the one first seen: not used until decided); "" when unknown.
    std::string trust(const std::string& jid, std::uint32_t device);
    // Messages go to devices that are "blind" or "trusted".
    static bool usable_trust(std::string_view trust) { return trust == "blind" || trust == "trusted"; }
    // Sets "trusted" or "distrusted" (pending, as above); an error when the device's identity
    // key is not known yet (no session and no message from it).
    xmpp::Status set_trust(const std::string& jid, std::uint32_t device, bool trusted);
    struct KnownDevice {
        std::uint32_t device = 0;
        std::string fingerprint, trust;
    };
    // The devices of `jid` whose identity key we know, by device id.
    xmpp::Result<std::vector<KnownDevice>> known_devices(const std::string& jid);

private:
    OmemoDevice() = default;
    xmpp::Status create(Store& store, const std::string& account);
    xmpp::Status load(Store& store, const std::string& account);
    xmpp::Status open_store();
    // A fresh pre-key for each one used (§5.3.2: the bundle is refilled), ids from the
    // omemo:next_pk counter.
    bool replace_used_pre_keys();

    // The store context's view: pending changes over the store (values base64 there).
    std::optional<std::string> get(const std::string& key);
    void put(const std::string& key, std::optional<std::string> value);
    std::vector<std::uint32_t> sub_devices(std::string_view name);
    // The store key kind of sessions in the version being worked on (version_).
    std::string_view session_kind() const;
    // Decodes a peer's bundle keys for `v` (0.3: type byte + 32; 2: Ed25519 identity key,
    // 32-byte Curve25519 others); 0 or a libomemo-c error.
    int decode_bundle_key(const std::string& raw, bool identity, xmpp::omemo::Version v, ec_public_key** out);
    // The ratchet step of decrypt() for the key addressed to us; libomemo-c's result code.
    int decrypt_key(const xmpp::omemo::Key& key, const std::string& sender, std::uint32_t sid, std::string& material);
    // Whether the user trusted any device of `jid` (new devices then wait for a decision).
    bool any_trusted(const std::string& jid);
    friend struct OmemoStoreCallbacks;

    Store* store_ = nullptr;
    std::string account_;
    signal_context* ctx_ = nullptr;
    signal_protocol_store_context* store_ctx_ = nullptr;
    ratchet_identity_key_pair* identity_ = nullptr;
    std::uint32_t registration_id_ = 0;
    std::uint32_t device_id_ = 0;
    xmpp::omemo::Bundle bundle_;
    std::string ik_ed_;    // our identity key, Ed25519 form (OMEMO 2)
    std::string spks_v2_;  // the signed pre-key's OMEMO 2 signature
    std::string own_jid_;
    xmpp::omemo::Version version_ = xmpp::omemo::Version::Legacy;  // of the call in progress
    std::optional<xmpp::omemo::Bundle> pending_bundle_;
    std::map<std::string, std::optional<std::string>> pending_;  // key -> value (nullopt: deleted)
    std::vector<std::uint32_t> used_pre_keys_;
    bool store_failed_ = false;  // a read failed during this decryption
    bool identity_changed_ = false;
};

// XEP-0384's account_meta key for an address: `<kind>:<bare JID>/<device>` ('/' is in no
// bare JID, so the prefix `<kind>:<bare JID>/` lists one contact's devices).
std::string omemo_address_key(std::string_view kind, std::string_view jid, std::uint32_t device);

// The usual grouped hex form of an identity key (its 32 bytes, without the 0.3 type byte):
// 8 groups of 8 hex digits.
std::string omemo_fingerprint(std::string_view key);

// libomemo-c's crypto provider over OpenSSL 3 (EVP): random, HMAC-SHA-256, SHA-512,
// AES-CBC (PKCS#5) and AES-CTR. Installed on `ctx`.
bool install_openssl_provider(signal_context* ctx);

}  // namespace stanzad
