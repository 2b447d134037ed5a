#pragma once
// The helpers of the protocol/sasl tests (sasl_*_test.cpp): the RFC 5802 §5 vectors, an
// independent SCRAM reference (RFC 5802 §3), and the Offer, Setup and binding data that
// choose() and the -PLUS mechanisms are given.
#include <catch2/catch.hpp>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <string>
#include <string_view>
#include <vector>

#include "protocol/base/base64.hpp"
#include "protocol/sasl.hpp"

namespace sasl_test {

using namespace std::string_literals;
using xmpp::sasl::Credentials;
using xmpp::sasl::ScramHash;

// RFC 5802 §5.
inline constexpr std::string_view kSha1Nonce = "fyko+d2lbbFgONRv9qkxdawL";
inline constexpr std::string_view kSha1ServerFirst =
    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
inline constexpr std::string_view kSha1ClientFinal =
    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
inline constexpr std::string_view kSha1ServerFinal = "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=";

inline Credentials user_pencil() { return Credentials{"user", "pencil", ""}; }

// A SCRAM-SHA-1 exchange with the RFC 5802 nonce, past the initial response.
inline std::unique_ptr<xmpp::sasl::Mechanism> started_sha1() {
    auto m = xmpp::sasl::make_scram(ScramHash::Sha1, user_pencil(), std::string(kSha1Nonce));
    auto first = m->initial_response();
    REQUIRE(first.ok());
    return m;
}

// The RFC 5802 §5 server-first-message with one attribute replaced.
inline std::string sha1_server_first(std::string_view r, std::string_view s, std::string_view i) {
    return "r="s + std::string(r) + ",s=" + std::string(s) + ",i=" + std::string(i);
}
inline constexpr std::string_view kSha1ServerNonce = "fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j";
inline constexpr std::string_view kSha1Salt = "QSXCR+Q6sek8bf92";

// choose() as the stream calls it without certificate, channel data or order.
inline xmpp::Result<xmpp::sasl::Choice> choose_from(std::vector<std::string> offered,
                                             Credentials credentials, bool tls) {
    xmpp::sasl::Setup setup;
    setup.credentials = std::move(credentials);
    setup.tls_active = tls;
    return xmpp::sasl::choose(xmpp::sasl::Offer{std::move(offered), std::nullopt}, setup);
}

inline void require_error(const xmpp::Error& error, std::string_view code) {
    INFO("message: " << error.message);
    CHECK(error.code == code);
    CHECK_FALSE(error.message.empty());
    CHECK(error.message.find("pencil") == std::string::npos);
}

// An implementation of RFC 5802 §3 that shares no code with protocol/sasl_scram.cpp: HMAC via
// EVP_MAC, Hi written out as the RFC's U1..Ui XOR loop rather than PKCS5_PBKDF2_HMAC,
// base64 via EVP_EncodeBlock.
struct Independent {
    std::string digest_name;  // "SHA1", "SHA512", ...

    // Not REQUIRE per call: Hi calls this thousands of times; compute() checks `failed`.
    mutable bool failed = false;

    std::string hmac(std::string_view key, std::string_view data) const {
        EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
        EVP_MAC_CTX* ctx = mac != nullptr ? EVP_MAC_CTX_new(mac) : nullptr;
        std::string name = digest_name;
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, name.data(), 0),
            OSSL_PARAM_construct_end()};
        unsigned char out[EVP_MAX_MD_SIZE];
        size_t length = 0;
        bool ok = ctx != nullptr &&
                  EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()),
                               key.size(), params) == 1 &&
                  EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()),
                                 data.size()) == 1 &&
                  EVP_MAC_final(ctx, out, &length, sizeof out) == 1;
        EVP_MAC_CTX_free(ctx);
        EVP_MAC_free(mac);
        if (!ok) failed = true;
        return std::string(reinterpret_cast<char*>(out), ok ? length : 0);
    }

    std::string hash(std::string_view data) const {
        unsigned char out[EVP_MAX_MD_SIZE];
        size_t length = 0;
        REQUIRE(EVP_Q_digest(nullptr, digest_name.c_str(), nullptr, data.data(), data.size(),
                             out, &length) == 1);
        return std::string(reinterpret_cast<char*>(out), length);
    }

    static std::string exclusive_or(std::string a, std::string_view b) {
        for (size_t k = 0; k < a.size() && k < b.size(); ++k) {
            a[k] = static_cast<char>(a[k] ^ b[k]);
        }
        return a;
    }

    // Hi(str, salt, i): U1 = HMAC(str, salt + INT(1)), Ui = HMAC(str, Ui-1), XOR of all.
    std::string hi(std::string_view str, std::string_view salt, int iterations) const {
        std::string u = hmac(str, std::string(salt) + "\x00\x00\x00\x01"s);
        std::string result = u;
        for (int k = 2; k <= iterations; ++k) {
            u = hmac(str, u);
            result = exclusive_or(result, u);
        }
        return result;
    }

    static std::string b64(std::string_view bytes) {
        std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
        int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
        out.resize(static_cast<size_t>(n));
        return out;
    }

    static std::string unb64(std::string_view text) {
        std::string out(text.size(), '\0');
        int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
        REQUIRE(n >= 0);
        size_t pad = 0;
        if (!text.empty() && text.back() == '=') ++pad;
        if (text.size() > 1 && text[text.size() - 2] == '=') ++pad;
        out.resize(static_cast<size_t>(n) - pad);
        return out;
    }

    struct Exchange {
        std::string client_final;
        std::string server_final;
    };

    // ASCII user and password, so Normalize() is the identity. `cbind_input` is RFC 5802
    // §7's gs2-header followed, with "p=", by the channel-binding data.
    Exchange compute(std::string_view user, std::string_view password,
                     std::string_view client_nonce, std::string_view server_first,
                     std::string_view server_nonce, std::string_view salt_b64,
                     int iterations, std::string_view cbind_input = "n,,") const {
        std::string client_first_bare =
            "n="s + std::string(user) + ",r=" + std::string(client_nonce);
        std::string without_proof =
            "c="s + b64(cbind_input) + ",r=" + std::string(server_nonce);
        std::string auth_message =
            client_first_bare + "," + std::string(server_first) + "," + without_proof;
        std::string salted = hi(password, unb64(salt_b64), iterations);
        std::string client_key = hmac(salted, "Client Key");
        std::string stored_key = hash(client_key);
        std::string client_signature = hmac(stored_key, auth_message);
        std::string client_proof = exclusive_or(client_key, client_signature);
        std::string server_key = hmac(salted, "Server Key");
        std::string server_signature = hmac(server_key, auth_message);
        REQUIRE_FALSE(failed);
        REQUIRE(client_key.size() == client_signature.size());
        return {without_proof + ",p=" + b64(client_proof), "v=" + b64(server_signature)};
    }
};

// ---------------------------------------------------------------------------------------
// EXTERNAL, channel binding, XEP-0474, and choose() over an Offer and a Setup

using xmpp::ChannelBindingPolicy;
using xmpp::TlsChannel;
using xmpp::sasl::Offer;
using xmpp::sasl::Setup;

inline std::string bytes(std::initializer_list<int> values) {
    std::string out;
    for (int v : values) out.push_back(static_cast<char>(v));
    return out;
}

// Binding data as a TLS stack would give it: binary, with NULs and high bytes.
inline TlsChannel channel(std::string version) {
    TlsChannel c;
    c.version = std::move(version);
    for (int k = 0; k < 32; ++k) c.tls_exporter.push_back(static_cast<char>(k * 7));
    for (int k = 0; k < 32; ++k) c.tls_server_end_point.push_back(static_cast<char>(255 - k));
    c.tls_unique = bytes({0x00, 0x9f, 0x10, 0x20, 0xff, 0x01, 0x02, 0x7f, 0x80, 0x00, 0xee, 0x42});
    return c;
}

inline Setup setup_with(TlsChannel c, ChannelBindingPolicy policy = ChannelBindingPolicy::Auto) {
    Setup setup;
    setup.credentials = user_pencil();
    setup.tls_active = true;
    setup.channel = std::move(c);
    setup.channel_binding = policy;
    return setup;
}

inline Offer offer(std::vector<std::string> mechanisms,
            std::optional<std::vector<std::string>> bindings = std::nullopt) {
    return Offer{std::move(mechanisms), std::move(bindings)};
}

inline xmpp::sasl::Choice chosen(const Offer& o, const Setup& setup, std::size_t from = 0) {
    auto c = xmpp::sasl::choose(o, setup, from);
    INFO((c ? std::string() : c.error().message));
    REQUIRE(c.ok());
    REQUIRE(c.value().mechanism != nullptr);
    return std::move(c).value();
}

// The whole exchange of `choice` against the independent reference, which is told which
// cbind-input to expect (RFC 5802 §7: gs2-header, then the binding data with "p=").
inline void run_against_reference(xmpp::sasl::Choice& choice, const std::string& digest_name,
                           const std::string& cbind_input,
                           const std::string& server_extensions = {}) {
    auto first = choice.mechanism->initial_response();
    REQUIRE(first.ok());
    // gs2-header, then client-first-message-bare.
    auto bare_at = first.value().find("n=user,r=");
    REQUIRE(bare_at != std::string::npos);
    std::string gs2 = first.value().substr(0, bare_at);
    CHECK(cbind_input.rfind(gs2, 0) == 0);
    std::string client_nonce = first.value().substr(bare_at + 9);
    std::string server_nonce = client_nonce + "3rfcNHYJY1ZVvWVs7j";
    std::string salt = "QSXCR+Q6sek8bf92";
    std::string server_first = "r=" + server_nonce + ",s=" + salt + ",i=4096" + server_extensions;

    Independent reference{digest_name};
    auto expected = reference.compute("user", "pencil", client_nonce, server_first,
                                      server_nonce, salt, 4096, cbind_input);
    auto final_message = choice.mechanism->respond(server_first);
    REQUIRE(final_message.ok());
    CHECK(final_message.value() == expected.client_final);
    CHECK(choice.mechanism->finish(expected.server_final).ok());
}

// XEP-0474 §5.1 written out: the sorted lists joined by %x1E, %x1F between them.
inline std::string ssdp(const std::string& digest_name, std::string text) {
    unsigned char out[EVP_MAX_MD_SIZE];
    size_t length = 0;
    REQUIRE(EVP_Q_digest(nullptr, digest_name.c_str(), nullptr, text.data(), text.size(), out,
                         &length) == 1);
    return Independent::b64(std::string_view(reinterpret_cast<char*>(out), length));
}

}  // namespace sasl_test
