#include "daemon/omemo.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>

extern "C" {
#include <omemo/curve.h>
#include <omemo/key_helper.h>
#include <omemo/protocol.h>
#include <omemo/ratchet.h>
#include <omemo/session_cipher.h>
#include <omemo/session_pre_key.h>
#include <omemo/signal_protocol.h>
}

#include "daemon/log.hpp"
#include "daemon/omemo_detail.hpp"
#include "protocol/base/base64.hpp"
#include "protocol/omemo/payload.hpp"

namespace stanzad {
namespace {

using omemo_detail::bytes;
using omemo_detail::Unref;

// --- helpers --------------------------------------------------------------------------------

// The 0.3 wire form of a public key: type byte 0x05 and the 32-byte Curve25519 key.
std::string public_key(const ec_public_key* key) {
    signal_buffer* b = nullptr;
    if (ec_public_key_serialize(&b, key) != 0 || !b) return {};
    return bytes(b);
}

xmpp::Error failure(std::string what, int code) {
    return xmpp::make_error("omemo-keys", what + " (libomemo-c error " + std::to_string(code) + ")");
}

}  // namespace

OmemoDevice::~OmemoDevice() {
    if (store_ctx_) signal_protocol_store_context_destroy(store_ctx_);
    if (identity_) SIGNAL_UNREF(identity_);
    if (ctx_) signal_context_destroy(ctx_);
}

std::string omemo_address_key(std::string_view kind, std::string_view jid, std::uint32_t device) {
    std::string key(kind);
    key += ':';
    key += jid;
    key += '/';
    key += std::to_string(device);
    return key;
}

xmpp::Result<std::unique_ptr<OmemoDevice>> OmemoDevice::open(Store& store, const std::string& account) {
    std::unique_ptr<OmemoDevice> d(new OmemoDevice);
    if (signal_context_create(&d->ctx_, d.get()) != 0 || !install_openssl_provider(d->ctx_))
        return xmpp::make_error("omemo-keys", "cannot set up libomemo-c");
    auto id = store.meta(account, "omemo:device");
    if (!id) return id.error();
    auto st = id.value().empty() ? d->create(store, account) : d->load(store, account);
    if (!st) return st.error();
    d->store_ = &store;
    d->account_ = account;
    if (auto s2 = d->open_store(); !s2) return s2.error();
    return d;
}

xmpp::Status OmemoDevice::create(Store& store, const std::string& account) {
    // XEP-0384 §5.1 Setup: a device id in 1..2^31-1; identity key, signed pre-key, pre-keys
    // (§5.3.2). The device id is written last: a device half made (a crash) is made again.
    Unref<ratchet_identity_key_pair> identity;
    if (int rc = signal_protocol_key_helper_generate_identity_key_pair(&identity.p, ctx_); rc != 0)
        return failure("cannot make an identity key", rc);
    signal_buffer* serialized = nullptr;
    if (int rc = ratchet_identity_key_pair_serialize(&serialized, identity.p); rc != 0)
        return failure("cannot serialize the identity key", rc);
    std::string identity_bytes = bytes(serialized);
    auto keep = [&](const std::string& key, std::string_view value) {
        return store.set_meta(account, key, xmpp::base64_encode(value));
    };
    if (auto st = keep("omemo:identity", identity_bytes); !st) return st;
    uint32_t registration = 0;
    if (int rc = signal_protocol_key_helper_generate_registration_id(&registration, 0, ctx_); rc != 0)
        return failure("cannot make a registration id", rc);
    if (auto st = store.set_meta(account, "omemo:registration", std::to_string(registration)); !st) return st;
    Unref<session_signed_pre_key> spk;
    auto now =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
    if (int rc = signal_protocol_key_helper_generate_signed_pre_key(&spk.p, identity.p, 1,
                                                                    static_cast<uint64_t>(now.count()), ctx_);
        rc != 0)
        return failure("cannot make a signed pre-key", rc);
    if (int rc = session_signed_pre_key_serialize(&serialized, spk.p); rc != 0)
        return failure("cannot serialize the signed pre-key", rc);
    if (auto st = keep("omemo:spk:1", bytes(serialized)); !st) return st;
    signal_protocol_key_helper_pre_key_list_node* head = nullptr;
    if (int rc = signal_protocol_key_helper_generate_pre_keys(&head, 1, pre_key_count, ctx_); rc != 0)
        return failure("cannot make pre-keys", rc);
    std::string ids;
    xmpp::Status st = xmpp::Ok{};
    for (auto* n = head; n && st; n = signal_protocol_key_helper_key_list_next(n)) {
        session_pre_key* pk = signal_protocol_key_helper_key_list_element(n);
        if (session_pre_key_serialize(&serialized, pk) != 0) {
            st = xmpp::make_error("omemo-keys", "cannot serialize a pre-key");
            break;
        }
        uint32_t pk_id = session_pre_key_get_id(pk);
        st = keep("omemo:pk:" + std::to_string(pk_id), bytes(serialized));
        ids += (ids.empty() ? "" : ",") + std::to_string(pk_id);
    }
    signal_protocol_key_helper_key_list_free(head);
    if (!st) return st;
    if (auto s = store.set_meta(account, "omemo:prekeys", ids); !s) return s;
    std::uint32_t device = 0;
    while (device == 0) {
        if (RAND_bytes(reinterpret_cast<unsigned char*>(&device), sizeof device) != 1)
            return xmpp::make_error("omemo-keys", "no random bytes");
        device &= 0x7FFFFFFFu;
    }
    if (auto s = store.set_meta(account, "omemo:device", std::to_string(device)); !s) return s;
    return load(store, account);
}

xmpp::Status OmemoDevice::load(Store& store, const std::string& account) {
    auto get = [&](const std::string& key) -> xmpp::Result<std::string> {
        auto v = store.meta(account, key);
        if (!v) return v.error();
        auto decoded = xmpp::base64_decode(v.value());
        if (!decoded || decoded.value().empty())
            return xmpp::make_error("omemo-keys", "the store's " + key + " of account " + account + " is damaged");
        return decoded;
    };
    auto id = store.meta(account, "omemo:device");
    if (!id) return id.error();
    device_id_ = static_cast<std::uint32_t>(std::strtoul(id.value().c_str(), nullptr, 10));
    auto identity_bytes = get("omemo:identity");
    if (!identity_bytes) return identity_bytes.error();
    Unref<ratchet_identity_key_pair> identity;
    const auto* ib = reinterpret_cast<const uint8_t*>(identity_bytes.value().data());
    if (int rc = ratchet_identity_key_pair_deserialize(&identity.p, ib, identity_bytes.value().size(), ctx_); rc != 0)
        return failure("the stored identity key does not load", rc);
    bundle_ = {};
    bundle_.ik = public_key(ratchet_identity_key_pair_get_public(identity.p));
    // XEP-0384 §5.3.2: OMEMO 2 publishes the identity key in its Ed25519 form.
    if (signal_buffer* ed = ec_public_key_get_ed(ratchet_identity_key_pair_get_public(identity.p))) ik_ed_ = bytes(ed);
    if (identity_) SIGNAL_UNREF(identity_);
    identity_ = identity.p;
    identity.p = nullptr;
    auto registration = store.meta(account, "omemo:registration");
    if (!registration) return registration.error();
    registration_id_ = static_cast<std::uint32_t>(std::strtoul(registration.value().c_str(), nullptr, 10));
    auto spk_bytes = get("omemo:spk:1");
    if (!spk_bytes) return spk_bytes.error();
    Unref<session_signed_pre_key> spk;
    if (int rc = session_signed_pre_key_deserialize(&spk.p, reinterpret_cast<const uint8_t*>(spk_bytes.value().data()),
                                                    spk_bytes.value().size(), ctx_);
        rc != 0)
        return failure("the stored signed pre-key does not load", rc);
    bundle_.spk_id = session_signed_pre_key_get_id(spk.p);
    bundle_.spk = public_key(ec_key_pair_get_public(session_signed_pre_key_get_key_pair(spk.p)));
    bundle_.spks = std::string(reinterpret_cast<const char*>(session_signed_pre_key_get_signature(spk.p)),
                               session_signed_pre_key_get_signature_len(spk.p));
    // OMEMO 2 (§5.3.2): the signature over the 32-byte Curve25519 signed pre-key, checked
    // with the Ed25519 identity key. libomemo-c keeps one with the signed pre-key; keys made
    // without it get one made now (XEdDSA, a valid Ed25519 signature).
    if (session_signed_pre_key_get_signature_omemo_len(spk.p) > 0) {
        spks_v2_ = std::string(reinterpret_cast<const char*>(session_signed_pre_key_get_signature_omemo(spk.p)),
                               session_signed_pre_key_get_signature_omemo_len(spk.p));
    } else {
        std::string mont = bundle_.spk.substr(1);
        signal_buffer* sig = nullptr;
        if (int rc = curve_calculate_signature(ctx_, &sig, ratchet_identity_key_pair_get_private(identity_),
                                               reinterpret_cast<const uint8_t*>(mont.data()), mont.size());
            rc != 0)
            return failure("cannot sign the signed pre-key for OMEMO 2", rc);
        spks_v2_ = bytes(sig);
    }
    auto ids = store.meta(account, "omemo:prekeys");
    if (!ids) return ids.error();
    std::string_view rest = ids.value();
    while (!rest.empty()) {
        auto comma = rest.find(',');
        std::string one(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        auto pk_bytes = get("omemo:pk:" + one);
        if (!pk_bytes) continue;  // used and removed
        Unref<session_pre_key> pk;
        if (session_pre_key_deserialize(&pk.p, reinterpret_cast<const uint8_t*>(pk_bytes.value().data()),
                                        pk_bytes.value().size(), ctx_) != 0)
            continue;
        bundle_.prekeys.push_back(
            {session_pre_key_get_id(pk.p), public_key(ec_key_pair_get_public(session_pre_key_get_key_pair(pk.p)))});
    }
    if (bundle_.prekeys.empty()) return xmpp::make_error("omemo-keys", "no pre-keys left in the store");
    return xmpp::Ok{};
}

std::string omemo_fingerprint(std::string_view key) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    if (key.size() == 33) key.remove_prefix(1);
    for (std::size_t i = 0; i < key.size(); ++i) {
        if (i && i % 4 == 0) out += ' ';
        auto c = static_cast<unsigned char>(key[i]);
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

std::string OmemoDevice::fingerprint() const { return omemo_fingerprint(bundle_.ik); }

xmpp::omemo::Bundle OmemoDevice::bundle(xmpp::omemo::Version v) const {
    if (v == xmpp::omemo::Version::Legacy) return bundle_;
    // §5.3.2: 32-byte keys (our 0.3 form without its type byte), the Ed25519 identity key.
    xmpp::omemo::Bundle b = bundle_;
    auto strip = [](std::string& key) {
        if (key.size() == 33) key.erase(0, 1);
    };
    strip(b.spk);
    for (auto& pk : b.prekeys) strip(pk.key);
    b.ik = ik_ed_;
    b.spks = spks_v2_;
    return b;
}

std::string_view OmemoDevice::session_kind() const {
    return version_ == xmpp::omemo::Version::V2 ? "omemo:session2" : "omemo:session";
}

// --- the store context (signal_protocol.h: the four stores libomemo-c needs) ---------------

std::optional<std::string> OmemoDevice::get(const std::string& key) {
    if (auto it = pending_.find(key); it != pending_.end()) return it->second;
    auto v = store_->meta(account_, key);
    if (!v) {
        store_failed_ = true;
        return std::nullopt;
    }
    if (v.value().empty()) return std::nullopt;
    return std::move(v).value();
}

void OmemoDevice::put(const std::string& key, std::optional<std::string> value) { pending_[key] = std::move(value); }

std::vector<std::uint32_t> OmemoDevice::sub_devices(std::string_view name) {
    const std::string prefix = std::string(session_kind()) + ":" + std::string(name) + "/";
    std::map<std::string, bool> keys;  // key -> present
    if (auto rows = store_->metas(account_, prefix, xmpp::omemo::Limits{}.max_keys))
        for (const auto& row : rows.value()) keys[row.first] = true;
    else
        store_failed_ = true;
    for (const auto& [key, value] : pending_)
        if (key.starts_with(prefix)) keys[key] = value.has_value();
    std::vector<std::uint32_t> out;
    for (const auto& [key, present] : keys)
        if (present)
            if (auto id = xmpp::omemo::parse_device_id(std::string_view(key).substr(prefix.size()))) out.push_back(*id);
    return out;
}

struct OmemoStoreCallbacks {
    static OmemoDevice& self(void* p) { return *static_cast<OmemoDevice*>(p); }
    static std::string key(std::string_view kind, const signal_protocol_address* a) {
        return omemo_address_key(kind, std::string_view(a->name, a->name_len),
                                 static_cast<std::uint32_t>(a->device_id));
    }
    // The stored base64 as a fresh signal_buffer (libomemo-c frees it).
    static int load(signal_buffer** out, const std::optional<std::string>& stored) {
        if (!stored) return 0;
        auto bytes = xmpp::base64_decode(*stored);
        if (!bytes || bytes.value().empty()) return SG_ERR_UNKNOWN;
        *out = signal_buffer_create(reinterpret_cast<const uint8_t*>(bytes.value().data()), bytes.value().size());
        return *out ? 1 : SG_ERR_NOMEM;
    }
    static std::string b64(const uint8_t* data, size_t len) {
        return xmpp::base64_encode(std::string_view(reinterpret_cast<const char*>(data), len));
    }

    // Sessions.
    static int load_session(signal_buffer** record, signal_buffer**, const signal_protocol_address* a, void* u) {
        return load(record, self(u).get(key(self(u).session_kind(), a)));
    }
    static int sub_device_sessions(signal_int_list** sessions, const char* name, size_t len, void* u) {
        signal_int_list* list = signal_int_list_alloc();
        if (!list) return SG_ERR_NOMEM;
        for (auto id : self(u).sub_devices(std::string_view(name, len)))
            if (signal_int_list_push_back(list, static_cast<int>(id)) < 0) {
                signal_int_list_free(list);
                return SG_ERR_NOMEM;
            }
        *sessions = list;
        return static_cast<int>(signal_int_list_size(list));
    }
    static int store_session(const signal_protocol_address* a, uint8_t* record, size_t len, uint8_t*, size_t, void* u) {
        self(u).put(key(self(u).session_kind(), a), b64(record, len));
        return 0;
    }
    static int contains_session(const signal_protocol_address* a, void* u) {
        return self(u).get(key(self(u).session_kind(), a)) ? 1 : 0;
    }
    static int delete_session(const signal_protocol_address* a, void* u) {
        bool had = self(u).get(key(self(u).session_kind(), a)).has_value();
        self(u).put(key(self(u).session_kind(), a), std::nullopt);
        return had ? 1 : 0;
    }
    static int delete_all_sessions(const char* name, size_t len, void* u) {
        auto ids = self(u).sub_devices(std::string_view(name, len));
        for (auto id : ids)
            self(u).put(omemo_address_key(self(u).session_kind(), std::string_view(name, len), id), std::nullopt);
        return static_cast<int>(ids.size());
    }

    // Pre-keys and the signed pre-key.
    static std::string pk(uint32_t id) { return "omemo:pk:" + std::to_string(id); }
    static std::string spk(uint32_t id) { return "omemo:spk:" + std::to_string(id); }
    static int load_pre_key(signal_buffer** record, uint32_t id, void* u) {
        int rc = load(record, self(u).get(pk(id)));
        return rc == 1 ? SG_SUCCESS : rc == 0 ? SG_ERR_INVALID_KEY_ID : rc;
    }
    static int store_pre_key(uint32_t id, uint8_t* record, size_t len, void* u) {
        self(u).put(pk(id), b64(record, len));
        return 0;
    }
    static int contains_pre_key(uint32_t id, void* u) { return self(u).get(pk(id)) ? 1 : 0; }
    static int remove_pre_key(uint32_t id, void* u) {
        // XEP-0384 (0.3) §4.6: a used pre-key is deleted (and replaced: replace_used_pre_keys).
        self(u).put(pk(id), std::nullopt);
        self(u).used_pre_keys_.push_back(id);
        return 0;
    }
    static int load_signed_pre_key(signal_buffer** record, uint32_t id, void* u) {
        int rc = load(record, self(u).get(spk(id)));
        return rc == 1 ? SG_SUCCESS : rc == 0 ? SG_ERR_INVALID_KEY_ID : rc;
    }
    static int store_signed_pre_key(uint32_t id, uint8_t* record, size_t len, void* u) {
        self(u).put(spk(id), b64(record, len));
        return 0;
    }
    static int contains_signed_pre_key(uint32_t id, void* u) { return self(u).get(spk(id)) ? 1 : 0; }
    static int remove_signed_pre_key(uint32_t id, void* u) {
        self(u).put(spk(id), std::nullopt);
        return 0;
    }

    // Identities: ours, and the other devices' (trust on first use).
    static int identity_key_pair(signal_buffer** public_data, signal_buffer** private_data, void* u) {
        OmemoDevice& d = self(u);
        if (!d.identity_) return SG_ERR_UNKNOWN;
        if (int rc = ec_public_key_serialize(public_data, ratchet_identity_key_pair_get_public(d.identity_)); rc < 0)
            return rc;
        if (int rc = ec_private_key_serialize(private_data, ratchet_identity_key_pair_get_private(d.identity_));
            rc < 0) {
            signal_buffer_free(*public_data);
            *public_data = nullptr;
            return rc;
        }
        return 0;
    }
    static int registration_id(void* u, uint32_t* id) {
        *id = self(u).registration_id_;
        return 0;
    }
    // The record: "<trust> <base64 key>" (OmemoDevice::trust() says what each means). A
    // key first seen is "blind", or "undecided" once the user verified (trusted) a device of
    // that contact (issue 14 §5); a later key that differs from the first is "changed" and
    // stays so until the user decides.
    static int save_identity(const signal_protocol_address* a, uint8_t* data, size_t len, void* u) {
        OmemoDevice& d = self(u);
        if (!data) return 0;  // "remove the key data": we keep what we know
        const std::string k = key("omemo:ik", a);
        const std::string encoded = b64(data, len);
        auto old = d.get(k);
        std::string trust = d.any_trusted(std::string(a->name, a->name_len)) ? "undecided" : "blind";
        if (old) {
            auto space = old->find(' ');
            if (space != std::string::npos && old->compare(space + 1, std::string::npos, encoded) == 0) return 0;
            trust = "changed";
            d.identity_changed_ = true;
        }
        d.put(k, trust + " " + encoded);
        return 0;
    }
    // A key the user distrusted is refused (a session is neither built nor used with it);
    // every other one is used to decrypt, its trust shown on the message.
    static int is_trusted(const signal_protocol_address* a, uint8_t* data, size_t len, void* u) {
        auto record = self(u).get(key("omemo:ik", a));
        if (!record || !data) return 1;
        auto space = record->find(' ');
        bool same = space != std::string::npos && record->compare(space + 1, std::string::npos, b64(data, len)) == 0;
        return same && record->compare(0, space, "distrusted") == 0 ? 0 : 1;
    }
};

xmpp::Status OmemoDevice::open_store() {
    using C = OmemoStoreCallbacks;
    if (signal_protocol_store_context_create(&store_ctx_, ctx_) != 0)
        return xmpp::make_error("omemo-keys", "cannot set up the libomemo-c store");
    signal_protocol_session_store sessions{};
    sessions.load_session_func = C::load_session;
    sessions.get_sub_device_sessions_func = C::sub_device_sessions;
    sessions.store_session_func = C::store_session;
    sessions.contains_session_func = C::contains_session;
    sessions.delete_session_func = C::delete_session;
    sessions.delete_all_sessions_func = C::delete_all_sessions;
    sessions.user_data = this;
    signal_protocol_pre_key_store pre_keys{};
    pre_keys.load_pre_key = C::load_pre_key;
    pre_keys.store_pre_key = C::store_pre_key;
    pre_keys.contains_pre_key = C::contains_pre_key;
    pre_keys.remove_pre_key = C::remove_pre_key;
    pre_keys.user_data = this;
    signal_protocol_signed_pre_key_store signed_pre_keys{};
    signed_pre_keys.load_signed_pre_key = C::load_signed_pre_key;
    signed_pre_keys.store_signed_pre_key = C::store_signed_pre_key;
    signed_pre_keys.contains_signed_pre_key = C::contains_signed_pre_key;
    signed_pre_keys.remove_signed_pre_key = C::remove_signed_pre_key;
    signed_pre_keys.user_data = this;
    signal_protocol_identity_key_store identities{};
    identities.get_identity_key_pair = C::identity_key_pair;
    identities.get_local_registration_id = C::registration_id;
    identities.save_identity = C::save_identity;
    identities.is_trusted_identity = C::is_trusted;
    identities.user_data = this;
    if (signal_protocol_store_context_set_session_store(store_ctx_, &sessions) != 0 ||
        signal_protocol_store_context_set_pre_key_store(store_ctx_, &pre_keys) != 0 ||
        signal_protocol_store_context_set_signed_pre_key_store(store_ctx_, &signed_pre_keys) != 0 ||
        signal_protocol_store_context_set_identity_key_store(store_ctx_, &identities) != 0)
        return xmpp::make_error("omemo-keys", "cannot set up the libomemo-c store");
    return xmpp::Ok{};
}

namespace {

std::vector<std::uint32_t> parse_ids(std::string_view list) {
    std::vector<std::uint32_t> out;
    while (!list.empty()) {
        auto comma = list.find(',');
        std::string_view one = list.substr(0, comma);
        std::uint32_t id = 0;
        auto [end, ec] = std::from_chars(one.data(), one.data() + one.size(), id);
        if (ec == std::errc() && end == one.data() + one.size() && id > 0) out.push_back(id);
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
    return out;
}

// Pre-key ids are 24-bit in the Signal protocol's wire format (Medium.MAX_VALUE).
constexpr std::uint32_t kMaxPreKeyId = 0xFFFFFE;

}  // namespace

bool OmemoDevice::replace_used_pre_keys() {
    if (used_pre_keys_.empty()) return true;
    auto list_text = get("omemo:prekeys");
    std::vector<std::uint32_t> ids = parse_ids(list_text ? *list_text : "");
    std::uint32_t next = 0;
    if (auto counter = get("omemo:next_pk"))
        next = static_cast<std::uint32_t>(std::strtoul(counter->c_str(), nullptr, 10));
    if (next == 0 || next > kMaxPreKeyId) {
        // Before the counter existed: past every id made so far (1..100 at creation).
        next = pre_key_count + 1;
        for (auto id : ids) next = std::max(next, id + 1);
        if (next > kMaxPreKeyId) next = 1;
    }
    xmpp::omemo::Bundle bundle = pending_bundle_ ? *pending_bundle_ : bundle_;
    for (auto used : used_pre_keys_) {
        ids.erase(std::remove(ids.begin(), ids.end(), used), ids.end());
        std::erase_if(bundle.prekeys, [&](const auto& p) { return p.id == used; });
        std::uint32_t id = 0;
        for (std::uint32_t tries = 0; tries < 1000 && id == 0; ++tries) {
            std::uint32_t candidate = next;
            next = next >= kMaxPreKeyId ? 1 : next + 1;
            if (std::find(ids.begin(), ids.end(), candidate) == ids.end() &&
                !get("omemo:pk:" + std::to_string(candidate)))
                id = candidate;
        }
        if (id == 0) return false;
        signal_protocol_key_helper_pre_key_list_node* head = nullptr;
        if (signal_protocol_key_helper_generate_pre_keys(&head, id, 1, ctx_) != 0 || !head) return false;
        session_pre_key* key = signal_protocol_key_helper_key_list_element(head);
        signal_buffer* serialized = nullptr;
        bool ok = session_pre_key_serialize(&serialized, key) == 0;
        std::uint32_t made = session_pre_key_get_id(key);
        std::string pub = public_key(ec_key_pair_get_public(session_pre_key_get_key_pair(key)));
        signal_protocol_key_helper_key_list_free(head);
        if (!ok) return false;
        put("omemo:pk:" + std::to_string(made), xmpp::base64_encode(bytes(serialized)));
        ids.push_back(made);
        bundle.prekeys.push_back({made, pub});
    }
    used_pre_keys_.clear();
    std::string text;
    for (auto id : ids) text += (text.empty() ? "" : ",") + std::to_string(id);
    put("omemo:prekeys", text);
    put("omemo:next_pk", std::to_string(next));
    pending_bundle_ = std::move(bundle);
    return true;
}

std::vector<MetaWrite> OmemoDevice::pending() const {
    std::vector<MetaWrite> out;
    out.reserve(pending_.size());
    for (const auto& [key, value] : pending_) out.push_back({key, value});
    return out;
}

bool OmemoDevice::committed(bool stored) {
    bool changed = stored && pending_bundle_;
    if (changed) bundle_ = std::move(*pending_bundle_);
    pending_.clear();
    used_pre_keys_.clear();
    pending_bundle_.reset();
    return changed;
}

}  // namespace stanzad
