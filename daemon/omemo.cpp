#include "daemon/omemo.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <chrono>
#include <cstdlib>

extern "C" {
#include <omemo/curve.h>
#include <omemo/key_helper.h>
#include <omemo/ratchet.h>
#include <omemo/session_pre_key.h>
#include <omemo/signal_protocol.h>
}

#include "protocol/base/base64.hpp"

namespace stanzad {
namespace {

// --- crypto provider (signal_protocol.h: signal_crypto_provider) ---------------------------

int random_bytes(uint8_t* data, size_t len, void*) { return RAND_bytes(data, static_cast<int>(len)) == 1 ? 0 : SG_ERR_UNKNOWN; }

int hmac_init(void** context, const uint8_t* key, size_t key_len, void*) {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (!mac) return SG_ERR_UNKNOWN;
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
    if (!ctx || EVP_MAC_init(ctx, key, key_len, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return SG_ERR_UNKNOWN;
    }
    *context = ctx;
    return 0;
}
int hmac_update(void* context, const uint8_t* data, size_t len, void*) {
    return EVP_MAC_update(static_cast<EVP_MAC_CTX*>(context), data, len) == 1 ? 0 : SG_ERR_UNKNOWN;
}
int hmac_final(void* context, signal_buffer** output, void*) {
    unsigned char out[EVP_MAX_MD_SIZE];
    size_t len = 0;
    if (EVP_MAC_final(static_cast<EVP_MAC_CTX*>(context), out, &len, sizeof out) != 1) return SG_ERR_UNKNOWN;
    *output = signal_buffer_create(out, len);
    return *output ? 0 : SG_ERR_NOMEM;
}
void hmac_cleanup(void* context, void*) { EVP_MAC_CTX_free(static_cast<EVP_MAC_CTX*>(context)); }

int sha512_init(void** context, void*) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha512(), nullptr) != 1) {
        EVP_MD_CTX_free(ctx);
        return SG_ERR_UNKNOWN;
    }
    *context = ctx;
    return 0;
}
int sha512_update(void* context, const uint8_t* data, size_t len, void*) {
    return EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(context), data, len) == 1 ? 0 : SG_ERR_UNKNOWN;
}
int sha512_final(void* context, signal_buffer** output, void*) {
    auto* ctx = static_cast<EVP_MD_CTX*>(context);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    // "prepare the context for reuse" (signal_protocol.h).
    if (EVP_DigestFinal_ex(ctx, out, &len) != 1 || EVP_DigestInit_ex(ctx, EVP_sha512(), nullptr) != 1)
        return SG_ERR_UNKNOWN;
    *output = signal_buffer_create(out, len);
    return *output ? 0 : SG_ERR_NOMEM;
}
void sha512_cleanup(void* context, void*) { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(context)); }

const EVP_CIPHER* aes_cipher(int cipher, size_t key_len) {
    bool ctr = cipher == SG_CIPHER_AES_CTR_NOPADDING;
    if (cipher != SG_CIPHER_AES_CTR_NOPADDING && cipher != SG_CIPHER_AES_CBC_PKCS5) return nullptr;
    switch (key_len) {
    case 16: return ctr ? EVP_aes_128_ctr() : EVP_aes_128_cbc();
    case 24: return ctr ? EVP_aes_192_ctr() : EVP_aes_192_cbc();
    case 32: return ctr ? EVP_aes_256_ctr() : EVP_aes_256_cbc();
    default: return nullptr;
    }
}

int aes(bool encrypt, signal_buffer** output, int cipher, const uint8_t* key, size_t key_len, const uint8_t* iv,
        size_t iv_len, const uint8_t* in, size_t in_len) {
    const EVP_CIPHER* c = aes_cipher(cipher, key_len);
    if (!c || iv_len != 16) return SG_ERR_INVAL;
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
    std::vector<unsigned char> out(in_len + 32);
    int n = 0, m = 0;
    if (!ctx || EVP_CipherInit_ex(ctx.get(), c, nullptr, key, iv, encrypt ? 1 : 0) != 1 ||
        EVP_CipherUpdate(ctx.get(), out.data(), &n, in, static_cast<int>(in_len)) != 1 ||
        EVP_CipherFinal_ex(ctx.get(), out.data() + n, &m) != 1)
        return SG_ERR_UNKNOWN;
    *output = signal_buffer_create(out.data(), static_cast<size_t>(n + m));
    OPENSSL_cleanse(out.data(), out.size());
    return *output ? 0 : SG_ERR_NOMEM;
}
int encrypt(signal_buffer** output, int cipher, const uint8_t* key, size_t key_len, const uint8_t* iv, size_t iv_len,
            const uint8_t* plaintext, size_t plaintext_len, void*) {
    return aes(true, output, cipher, key, key_len, iv, iv_len, plaintext, plaintext_len);
}
int decrypt(signal_buffer** output, int cipher, const uint8_t* key, size_t key_len, const uint8_t* iv, size_t iv_len,
            const uint8_t* ciphertext, size_t ciphertext_len, void*) {
    return aes(false, output, cipher, key, key_len, iv, iv_len, ciphertext, ciphertext_len);
}

// --- helpers --------------------------------------------------------------------------------

std::string bytes(signal_buffer* b) {
    std::string out(reinterpret_cast<const char*>(signal_buffer_data(b)), signal_buffer_len(b));
    signal_buffer_bzero_free(b);
    return out;
}

// The 0.3 wire form of a public key: type byte 0x05 and the 32-byte Curve25519 key.
std::string public_key(const ec_public_key* key) {
    signal_buffer* b = nullptr;
    if (ec_public_key_serialize(&b, key) != 0 || !b) return {};
    return bytes(b);
}

xmpp::Error failure(std::string what, int code) {
    return xmpp::make_error("omemo-keys", what + " (libomemo-c error " + std::to_string(code) + ")");
}

template <class T>
struct Unref {
    T* p = nullptr;
    ~Unref() {
        if (p) SIGNAL_UNREF(p);
    }
};

}  // namespace

bool install_openssl_provider(signal_context* ctx) {
    signal_crypto_provider p{};
    p.random_func = random_bytes;
    p.hmac_sha256_init_func = hmac_init;
    p.hmac_sha256_update_func = hmac_update;
    p.hmac_sha256_final_func = hmac_final;
    p.hmac_sha256_cleanup_func = hmac_cleanup;
    p.sha512_digest_init_func = sha512_init;
    p.sha512_digest_update_func = sha512_update;
    p.sha512_digest_final_func = sha512_final;
    p.sha512_digest_cleanup_func = sha512_cleanup;
    p.encrypt_func = encrypt;
    p.decrypt_func = decrypt;
    return signal_context_set_crypto_provider(ctx, &p) == 0;
}

OmemoDevice::~OmemoDevice() {
    if (ctx_) signal_context_destroy(ctx_);
}

xmpp::Result<std::unique_ptr<OmemoDevice>> OmemoDevice::open(Store& store, const std::string& account) {
    std::unique_ptr<OmemoDevice> d(new OmemoDevice);
    if (signal_context_create(&d->ctx_, d.get()) != 0 || !install_openssl_provider(d->ctx_))
        return xmpp::make_error("omemo-keys", "cannot set up libomemo-c");
    auto id = store.meta(account, "omemo:device");
    if (!id) return id.error();
    auto st = id.value().empty() ? d->create(store, account) : d->load(store, account);
    if (!st) return st.error();
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
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
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
        bundle_.prekeys.push_back({session_pre_key_get_id(pk.p),
                                   public_key(ec_key_pair_get_public(session_pre_key_get_key_pair(pk.p)))});
    }
    if (bundle_.prekeys.empty()) return xmpp::make_error("omemo-keys", "no pre-keys left in the store");
    return xmpp::Ok{};
}

std::string OmemoDevice::fingerprint() const {
    // The 32 key bytes without the type byte, as clients show them: 8 groups of 8 hex digits.
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    std::string_view key = bundle_.ik.size() == 33 ? std::string_view(bundle_.ik).substr(1) : bundle_.ik;
    for (std::size_t i = 0; i < key.size(); ++i) {
        if (i && i % 4 == 0) out += ' ';
        auto c = static_cast<unsigned char>(key[i]);
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

}  // namespace stanzad
