// OmemoDevice, the sending side (XEP-0384 §4.4 and §4.5, in 0.3 and 2) and the trust policy (issue
// 14 §5). The state these change (sessions, identity records) goes through the same
// pending writes as decryption (daemon/omemo.cpp): the caller stores them before the
// stanza leaves, so the ratchet on disk is never behind a message that went out.
#include <openssl/crypto.h>
#include <openssl/rand.h>

extern "C" {
#include <omemo/curve.h>
#include <omemo/protocol.h>
#include <omemo/session_builder.h>
#include <omemo/session_cipher.h>
#include <omemo/session_pre_key.h>
#include <omemo/signal_protocol.h>
}

#include "daemon/omemo.hpp"
#include "daemon/omemo_detail.hpp"
#include "protocol/base/base64.hpp"
#include "protocol/omemo/payload.hpp"

namespace stanzad {
namespace {

using omemo_detail::Unref;

// A 0.3 public key as libomemo-c reads it: the type byte 0x05 and 32 bytes (some clients
// publish the 32 bytes alone).
int decode_key(signal_context* ctx, const std::string& raw, ec_public_key** out) {
    std::string key = raw.size() == 32 ? std::string(1, '\x05') + raw : raw;
    return curve_decode_point(out, reinterpret_cast<const uint8_t*>(key.data()), key.size(), ctx);
}

bool random(std::string& out, std::size_t n) {
    out.assign(n, '\0');
    return RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) == 1;
}

}  // namespace

int OmemoDevice::decode_bundle_key(const std::string& raw, bool identity, xmpp::omemo::Version v, ec_public_key** out) {
    if (v == xmpp::omemo::Version::Legacy) return decode_key(ctx_, raw, out);
    // OMEMO 2 §5.3.2: the identity key in its Ed25519 form, the pre-keys as 32-byte
    // Curve25519 (Montgomery) keys.
    if (raw.size() != 32) return SG_ERR_INVALID_KEY;
    const auto* data = reinterpret_cast<const uint8_t*>(raw.data());
    return identity ? curve_decode_point_ed(out, data, raw.size(), ctx_)
                    : curve_decode_point_mont(out, data, raw.size(), ctx_);
}

xmpp::Status OmemoDevice::build_session(const std::string& jid, std::uint32_t device, const xmpp::omemo::Bundle& b,
                                        xmpp::omemo::Version v) {
    store_failed_ = false;
    version_ = v;
    if (b.prekeys.empty()) return xmpp::make_error("omemo-session", "the bundle has no pre-keys");
    // 0.3 §4.4: one of the pre-keys, chosen at random.
    std::uint32_t pick = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&pick), sizeof pick) != 1)
        return xmpp::make_error("omemo-session", "no random bytes");
    const auto& prekey = b.prekeys[pick % b.prekeys.size()];
    Unref<ec_public_key> ik, spk, pk;
    if (decode_bundle_key(b.ik, true, v, &ik.p) != 0 || decode_bundle_key(b.spk, false, v, &spk.p) != 0 ||
        decode_bundle_key(prekey.key, false, v, &pk.p) != 0)
        return xmpp::make_error("omemo-session", "the bundle has a key that is not a public key of the right form");
    Unref<session_pre_key_bundle> bundle;
    // Neither version has a registration id on the wire: 0.
    if (session_pre_key_bundle_create(&bundle.p, 0, static_cast<int>(device), prekey.id, pk.p, b.spk_id, spk.p,
                                      reinterpret_cast<const uint8_t*>(b.spks.data()), b.spks.size(), ik.p) != 0)
        return xmpp::make_error("omemo-session", "cannot read the bundle");
    const signal_protocol_address address{jid.c_str(), jid.size(), static_cast<int32_t>(device)};
    session_builder* builder = nullptr;
    if (session_builder_create(&builder, store_ctx_, &address, ctx_) != 0)
        return xmpp::make_error("omemo-session", "cannot set up a session builder");
    // The 0.3 wire format is the Signal protocol's version 3; OMEMO 2's is libomemo-c's 4.
    session_builder_set_version(builder,
                                v == xmpp::omemo::Version::V2 ? CIPHERTEXT_OMEMO_VERSION : CIPHERTEXT_CURRENT_VERSION);
    int rc = session_builder_process_pre_key_bundle(builder, bundle.p);
    session_builder_free(builder);
    if (store_failed_) return xmpp::make_error("omemo-session", "the store cannot be read");
    if (rc == SG_ERR_UNTRUSTED_IDENTITY) return xmpp::make_error("omemo-session", "the device is distrusted");
    if (rc == SG_ERR_INVALID_KEY)
        return xmpp::make_error("omemo-session", "the bundle's signed pre-key signature does not verify");
    if (rc != 0)
        return xmpp::make_error("omemo-session",
                                "cannot build a session (libomemo-c error " + std::to_string(rc) + ")");
    return xmpp::Ok{};
}

bool OmemoDevice::has_session(const std::string& jid, std::uint32_t device, xmpp::omemo::Version v) {
    version_ = v;
    return get(omemo_address_key(session_kind(), jid, device)).has_value();
}

xmpp::Result<xmpp::omemo::Encrypted> OmemoDevice::encrypt(std::string_view plaintext, const std::vector<Address>& to,
                                                          std::vector<Address>* skipped, xmpp::omemo::Version v) {
    store_failed_ = false;
    version_ = v;
    const bool v2 = v == xmpp::omemo::Version::V2;
    std::string key, iv, rpad;
    if (!random(key, xmpp::omemo::key_size(v)) || (!v2 && !random(iv, 12)) || !random(rpad, 1))
        return xmpp::make_error("omemo-encrypt", "no random bytes");
    std::string envelope;
    if (v2) {
        // XEP-0420 §4 / XEP-0384 §4.4: <rpad/> of random length (0..200 characters) hides
        // the message's length; its text is base64 of random bytes.
        std::size_t pad = static_cast<unsigned char>(rpad[0]) % 151;
        if (!random(rpad, pad)) return xmpp::make_error("omemo-encrypt", "no random bytes");
        envelope = xmpp::omemo::make_envelope(plaintext, own_jid_, xmpp::base64_encode(rpad));
    }
    auto sealed = xmpp::omemo::seal(v, v2 ? std::string_view(envelope) : plaintext, key, iv);
    OPENSSL_cleanse(key.data(), key.size());
    OPENSSL_cleanse(envelope.data(), envelope.size());
    if (!sealed) return sealed.error();
    xmpp::omemo::Encrypted e;
    e.version = v;
    e.sid = device_id_;
    e.iv = iv;
    e.payload = std::move(sealed.value().payload);
    std::string& material = sealed.value().key_material;
    for (const auto& a : to) {
        const signal_protocol_address address{a.jid.c_str(), a.jid.size(), static_cast<int32_t>(a.device)};
        session_cipher* cipher = nullptr;
        ciphertext_message* message = nullptr;
        int rc = session_cipher_create(&cipher, store_ctx_, &address, ctx_);
        if (rc == 0) {
            session_cipher_set_version(cipher, v2 ? CIPHERTEXT_OMEMO_VERSION : CIPHERTEXT_CURRENT_VERSION);
            rc = session_cipher_encrypt(cipher, reinterpret_cast<const uint8_t*>(material.data()), material.size(),
                                        &message);
            session_cipher_free(cipher);
        }
        if (rc != 0 || !message || store_failed_) {
            if (message) SIGNAL_UNREF(message);
            if (skipped) skipped->push_back(a);
            store_failed_ = false;
            continue;
        }
        signal_buffer* serialized = ciphertext_message_get_serialized(message);
        // 0.3 §4.5 prekey='true' / 2 §4.5 kex='true' while the peer has not answered.
        xmpp::omemo::Key k;
        if (v2) k.jid = a.jid;
        k.rid = a.device;
        k.prekey = ciphertext_message_get_type(message) == CIPHERTEXT_PREKEY_TYPE;
        k.data.assign(reinterpret_cast<const char*>(signal_buffer_data(serialized)), signal_buffer_len(serialized));
        SIGNAL_UNREF(message);
        e.keys.push_back(std::move(k));
    }
    OPENSSL_cleanse(material.data(), material.size());
    return e;
}

std::string OmemoDevice::trust(const std::string& jid, std::uint32_t device) {
    auto record = get(omemo_address_key("omemo:ik", jid, device));
    if (!record) return {};
    return record->substr(0, record->find(' '));
}

bool OmemoDevice::any_trusted(const std::string& jid) {
    auto known = known_devices(jid);
    if (!known) return false;
    for (const auto& d : known.value())
        if (d.trust == "trusted") return true;
    return false;
}

xmpp::Status OmemoDevice::set_trust(const std::string& jid, std::uint32_t device, bool trusted) {
    const std::string k = omemo_address_key("omemo:ik", jid, device);
    auto record = get(k);
    if (!record || record->find(' ') == std::string::npos)
        return xmpp::make_error("item-not-found", "no identity key known for device " + std::to_string(device) +
                                                      " of " + jid + " (send it a message, or let it send one, first)");
    put(k, std::string(trusted ? "trusted" : "distrusted") + record->substr(record->find(' ')));
    return xmpp::Ok{};
}

xmpp::Result<std::vector<OmemoDevice::KnownDevice>> OmemoDevice::known_devices(const std::string& jid) {
    const std::string prefix = "omemo:ik:" + jid + "/";
    std::map<std::string, std::optional<std::string>> records;
    auto rows = store_->metas(account_, prefix, xmpp::omemo::Limits{}.max_keys);
    if (!rows) return rows.error();
    for (auto& [key, value] : rows.value()) records[key] = value;
    for (const auto& [key, value] : pending_)
        if (key.starts_with(prefix)) records[key] = value;
    std::vector<KnownDevice> out;
    for (const auto& [key, value] : records) {
        auto id = xmpp::omemo::parse_device_id(std::string_view(key).substr(prefix.size()));
        if (!id || !value) continue;
        auto space = value->find(' ');
        if (space == std::string::npos) continue;
        auto bytes = xmpp::base64_decode(std::string_view(*value).substr(space + 1));
        out.push_back({*id, bytes ? omemo_fingerprint(bytes.value()) : std::string(), value->substr(0, space)});
    }
    return out;
}

}  // namespace stanzad
