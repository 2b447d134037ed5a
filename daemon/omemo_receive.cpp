// OmemoDevice, the receiving side (XEP-0384 §4.6 Receiving a message, 0.3 §4.6): the key
// addressed to our device through the session with the sending device (a key exchange
// builds it first), then the payload; OMEMO 2's is an XEP-0420 envelope. What this changes
// is pending, as everywhere in OmemoDevice (daemon/omemo.cpp), until the hub commits it
// with the message.
#include <openssl/crypto.h>

#include <memory>

extern "C" {
#include <omemo/protocol.h>
#include <omemo/session_cipher.h>
#include <omemo/signal_protocol.h>
}

#include "daemon/log.hpp"
#include "daemon/omemo_detail.hpp"
#include "daemon/omemo.hpp"
#include "protocol/omemo/payload.hpp"

namespace stanzad {
namespace {

using omemo_detail::bytes;
using omemo_detail::Unref;

const char* ratchet_error(int rc) {
    switch (rc) {
    case SG_ERR_DUPLICATE_MESSAGE:
        return "a message key used before (a replay or duplicate)";
    case SG_ERR_INVALID_KEY_ID:
        return "it uses a pre-key we do not have (used already, or not ours)";
    case SG_ERR_NO_SESSION:
        return "no session with the sending device";
    case SG_ERR_INVALID_MAC:
        return "the message key does not authenticate";
    case SG_ERR_LEGACY_MESSAGE:
    case SG_ERR_INVALID_VERSION:
        return "an unsupported Signal message version";
    case SG_ERR_INVALID_KEY:
    case SG_ERR_INVALID_PROTO_BUF:
    case SG_ERR_INVALID_MESSAGE:
        return "the message key does not decrypt";
    case SG_ERR_UNTRUSTED_IDENTITY:
        return "the sender's identity key is not trusted";
    default:
        return "the message key does not decrypt";
    }
}

}  // namespace

int OmemoDevice::decrypt_key(const xmpp::omemo::Key& key, const std::string& sender, std::uint32_t sid,
                             std::string& material) {
    const bool v2 = version_ == xmpp::omemo::Version::V2;
    const signal_protocol_address address{sender.c_str(), sender.size(), static_cast<int32_t>(sid)};
    session_cipher* cipher_raw = nullptr;
    if (int rc = session_cipher_create(&cipher_raw, store_ctx_, &address, ctx_); rc != 0) return rc;
    std::unique_ptr<session_cipher, decltype(&session_cipher_free)> cipher(cipher_raw, session_cipher_free);
    // The 0.3 wire format is the Signal protocol's version 3; OMEMO 2's (§4.2, the
    // OMEMOKeyExchange / OMEMOAuthenticatedMessage protobufs) is libomemo-c's version 4.
    session_cipher_set_version(cipher.get(), v2 ? CIPHERTEXT_OMEMO_VERSION : CIPHERTEXT_CURRENT_VERSION);
    const auto* data = reinterpret_cast<const uint8_t*>(key.data.data());
    signal_buffer* plain = nullptr;
    int rc = 0;
    if (key.prekey) {
        // prekey='true' (0.3) / kex='true' (2): the message builds the session (X3DH) first.
        Unref<pre_key_signal_message> message;
        rc = v2 ? pre_key_signal_message_deserialize_omemo(&message.p, data, key.data.size(), 0, ctx_)
                : pre_key_signal_message_deserialize(&message.p, data, key.data.size(), ctx_);
        if (rc == 0) rc = session_cipher_decrypt_pre_key_signal_message(cipher.get(), message.p, nullptr, &plain);
    } else {
        Unref<signal_message> message;
        rc = v2 ? signal_message_deserialize_omemo(&message.p, data, key.data.size(), ctx_)
                : signal_message_deserialize(&message.p, data, key.data.size(), ctx_);
        if (rc == 0) rc = session_cipher_decrypt_signal_message(cipher.get(), message.p, nullptr, &plain);
    }
    if (rc < 0 || !plain) {
        if (plain) signal_buffer_bzero_free(plain);
        return rc < 0 ? rc : SG_ERR_UNKNOWN;
    }
    material = bytes(plain);  // zeroed and freed
    return 0;
}

OmemoDevice::Decrypted OmemoDevice::decrypt(const xmpp::omemo::Encrypted& e, const std::string& sender) {
    Decrypted out;
    auto fail = [&](std::string why) {
        pending_.clear();  // nothing of a failed decryption is kept
        used_pre_keys_.clear();
        pending_bundle_.reset();
        out.kind = Decrypted::Kind::Failed;
        out.error = std::move(why);
        return out;
    };
    pending_.clear();
    used_pre_keys_.clear();
    pending_bundle_.reset();
    store_failed_ = false;
    identity_changed_ = false;
    version_ = e.version;
    // 0.3 §4.6 / 2 §4.6: the <key/> whose rid is our device id (in 2: in our JID's <keys/>).
    const xmpp::omemo::Key* key = xmpp::omemo::key_for(e, own_jid_, device_id_);
    if (!key) return fail("not encrypted for this device");
    // Anyone can start sessions with us, one per device id: at most max_devices per JID
    // (the size of a device list, XEP-0384 §5.3.1), so the store cannot be made to grow
    // without bound by one sender.
    if (key->prekey && !get(omemo_address_key(session_kind(), sender, e.sid)) &&
        sub_devices(sender).size() >= xmpp::omemo::Limits{}.max_devices)
        return fail("too many devices of this sender");
    // Issue 14 §5: the user said not to trust this device: nothing of it is read.
    if (trust(sender, e.sid) == "distrusted") return fail("the sending device is distrusted");
    std::string key_material;
    if (int rc = decrypt_key(*key, sender, e.sid, key_material); rc != 0 || store_failed_)
        return fail(store_failed_ ? "the store cannot be read" : ratchet_error(rc));
    if (!replace_used_pre_keys()) {
        OPENSSL_cleanse(key_material.data(), key_material.size());
        return fail("cannot make a new pre-key");
    }
    out.bundle_changed = pending_bundle_.has_value();
    if (auto record = get(omemo_address_key("omemo:ik", sender, e.sid)))
        out.trust = record->substr(0, record->find(' '));
    if (identity_changed_)
        logs::daemon().warn(
            "account {}: the identity key of OMEMO device {} of {} changed; its messages are marked "
            "\"trust\":\"changed\"",
            account_, e.sid, sender);
    if (!e.payload) {
        // §4.6: no payload: a key transport (or heartbeat) message; the session moved on.
        OPENSSL_cleanse(key_material.data(), key_material.size());
        out.kind = Decrypted::Kind::KeyTransport;
        return out;
    }
    auto body = xmpp::omemo::open(e.version, key_material, e.iv, *e.payload);
    OPENSSL_cleanse(key_material.data(), key_material.size());
    // The session did move (the key decrypted): that is kept; only the payload is lost.
    out.kind = Decrypted::Kind::Failed;
    if (!body) {
        out.error = "the payload does not decrypt (altered, or a wrong key)";
        return out;
    }
    if (e.version == xmpp::omemo::Version::V2) {
        // XEP-0420 §4: the envelope's <from/> must be the sender (a replay from another
        // conversation is refused).
        auto envelope = xmpp::omemo::parse_envelope(body.value());
        OPENSSL_cleanse(body.value().data(), body.value().size());
        if (!envelope) {
            out.error = envelope.error().message;
            return out;
        }
        const std::string& from = envelope.value().from;
        if (from.substr(0, from.find('/')) != sender) {
            out.error = "the SCE envelope names another sender";
            return out;
        }
        out.body = std::move(envelope.value().body);
    } else {
        out.body = std::move(body).value();
    }
    out.kind = Decrypted::Kind::Message;
    return out;
}

}  // namespace stanzad
