#include "protocol/omemo/payload.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

#include <array>
#include <memory>

namespace xmpp::omemo {
namespace {

Error payload_error(std::string message) { return make_error("omemo-payload", std::move(message)); }

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

const unsigned char* u8(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

// §4.3 Message Encryption steps 2-3: HKDF-SHA-256, 32 zero bytes of salt, info "OMEMO Payload".
struct V2Keys {
    std::array<unsigned char, 32> enc, auth;
    std::array<unsigned char, 16> iv;
};
bool derive_v2(std::string_view key, V2Keys& out) {
    std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr), EVP_KDF_free);
    if (!kdf) return false;
    std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> ctx(EVP_KDF_CTX_new(kdf.get()), EVP_KDF_CTX_free);
    if (!ctx) return false;
    unsigned char salt[32] = {};
    char digest[] = "SHA256";
    char info[] = "OMEMO Payload";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(key.data()), key.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, sizeof salt),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof info - 1),
        OSSL_PARAM_construct_end()};
    unsigned char okm[80];
    if (EVP_KDF_derive(ctx.get(), okm, sizeof okm, params) != 1) return false;
    std::copy(okm, okm + 32, out.enc.begin());
    std::copy(okm + 32, okm + 64, out.auth.begin());
    std::copy(okm + 64, okm + 80, out.iv.begin());
    OPENSSL_cleanse(okm, sizeof okm);
    return true;
}

std::string hmac16(const std::array<unsigned char, 32>& key, std::string_view data) {
    unsigned char mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), u8(data), data.size(), mac, &len);
    return std::string(reinterpret_cast<char*>(mac), 16);  // §4.2: truncated to 16 bytes
}

// AES in `cipher` over `in`; false on failure (a bad padding when decrypting).
bool aes(const EVP_CIPHER* cipher, bool encrypt, const unsigned char* key, const unsigned char* iv, std::string_view in,
         std::string& out) {
    CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
    if (!ctx || EVP_CipherInit_ex(ctx.get(), cipher, nullptr, key, iv, encrypt ? 1 : 0) != 1) return false;
    out.resize(in.size() + 32);
    int n = 0, m = 0;
    if (EVP_CipherUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &n, u8(in),
                         static_cast<int>(in.size())) != 1 ||
        EVP_CipherFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + n, &m) != 1)
        return false;
    out.resize(static_cast<std::size_t>(n + m));
    return true;
}

}  // namespace

Result<Sealed> seal(Version v, std::string_view plaintext, std::string_view key, std::string_view iv) {
    if (key.size() != key_size(v)) return payload_error("wrong key size");
    Sealed out;
    if (v == Version::Legacy) {
        if (iv.size() != 12) return payload_error("wrong IV size");
        CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
        out.payload.resize(plaintext.size());
        unsigned char tag[16];
        int n = 0, m = 0;
        if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_128_gcm(), nullptr, nullptr, nullptr) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, 12, nullptr) != 1 ||
            EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, u8(key), u8(iv)) != 1 ||
            EVP_EncryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.payload.data()), &n, u8(plaintext),
                              static_cast<int>(plaintext.size())) != 1 ||
            EVP_EncryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.payload.data()) + n, &m) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
            return payload_error("AES-GCM failed");
        out.key_material = std::string(key) + std::string(reinterpret_cast<char*>(tag), 16);
        return out;
    }
    V2Keys k;
    if (!derive_v2(key, k)) return payload_error("HKDF failed");
    if (!aes(EVP_aes_256_cbc(), true, k.enc.data(), k.iv.data(), plaintext, out.payload))
        return payload_error("AES-CBC failed");
    out.key_material = std::string(key) + hmac16(k.auth, out.payload);
    OPENSSL_cleanse(&k, sizeof k);
    return out;
}

Result<std::string> open(Version v, std::string_view key_material, std::string_view iv, std::string_view payload) {
    std::string out;
    if (v == Version::Legacy) {
        // Key and tag in the key material (32 bytes); a few old clients send a 16-byte key
        // and append the tag to the payload instead.
        std::string_view key, tag;
        if (key_material.size() >= 32) {
            key = key_material.substr(0, 16);
            tag = key_material.substr(16, 16);
        } else if (key_material.size() == 16 && payload.size() >= 16) {
            key = key_material;
            tag = payload.substr(payload.size() - 16);
            payload.remove_suffix(16);
        } else {
            return payload_error("the message key has a wrong size");
        }
        if (iv.size() < 12 || iv.size() > 16) return payload_error("wrong IV size");
        CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
        out.resize(payload.size());
        int n = 0, m = 0;
        if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_128_gcm(), nullptr, nullptr, nullptr) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()), nullptr) != 1 ||
            EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, u8(key), u8(iv)) != 1 ||
            EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &n, u8(payload),
                              static_cast<int>(payload.size())) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16, const_cast<char*>(tag.data())) != 1 ||
            EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + n, &m) != 1)
            return payload_error("the payload does not match its authentication tag (altered or a wrong key)");
        out.resize(static_cast<std::size_t>(n + m));
        return out;
    }
    if (key_material.size() != 48) return payload_error("the message key has a wrong size");
    V2Keys k;
    if (!derive_v2(key_material.substr(0, 32), k)) return payload_error("HKDF failed");
    std::string mac = hmac16(k.auth, payload);
    bool good = CRYPTO_memcmp(mac.data(), key_material.data() + 32, 16) == 0;
    bool decrypted = good && aes(EVP_aes_256_cbc(), false, k.enc.data(), k.iv.data(), payload, out);
    OPENSSL_cleanse(&k, sizeof k);
    if (!good) return payload_error("the payload does not match its authentication tag (altered or a wrong key)");
    if (!decrypted) return payload_error("the payload does not decrypt (bad padding)");
    return out;
}

}  // namespace xmpp::omemo
