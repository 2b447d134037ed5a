// The crypto provider libomemo-c asks for (signal_protocol.h: signal_crypto_provider), over
// OpenSSL 3: random bytes, HMAC-SHA-256, SHA-512 and AES (CBC with PKCS#7 for 0.3 payload
// keys, CTR), each a C callback that returns 0 or a SG_ERR_ code.
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

extern "C" {
#include <omemo/signal_protocol.h>
}

#include "daemon/omemo.hpp"

namespace stanzad {
namespace {

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

}  // namespace stanzad
