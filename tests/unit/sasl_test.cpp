// Tests for protocol/sasl: RFC vectors for SCRAM, an independently computed SCRAM-SHA-512
// exchange and -PLUS exchange for each channel-binding type, malicious and malformed server
// messages, XEP-0474, SASLprep, PLAIN, EXTERNAL and choose() (base64: base64_test.cpp).
#include <catch2/catch.hpp>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <string>
#include <string_view>
#include <vector>

#include "protocol/base/base64.hpp"
#include "protocol/sasl.hpp"

using namespace std::string_literals;
using xmpp::sasl::Credentials;
using xmpp::sasl::ScramHash;

namespace {

// RFC 5802 §5.
constexpr std::string_view kSha1Nonce = "fyko+d2lbbFgONRv9qkxdawL";
constexpr std::string_view kSha1ServerFirst =
    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
constexpr std::string_view kSha1ClientFinal =
    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
constexpr std::string_view kSha1ServerFinal = "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=";

Credentials user_pencil() { return Credentials{"user", "pencil", ""}; }

// A SCRAM-SHA-1 exchange with the RFC 5802 nonce, past the initial response.
std::unique_ptr<xmpp::sasl::Mechanism> started_sha1() {
    auto m = xmpp::sasl::make_scram(ScramHash::Sha1, user_pencil(), std::string(kSha1Nonce));
    auto first = m->initial_response();
    REQUIRE(first.ok());
    return m;
}

// The RFC 5802 §5 server-first-message with one attribute replaced.
std::string sha1_server_first(std::string_view r, std::string_view s, std::string_view i) {
    return "r="s + std::string(r) + ",s=" + std::string(s) + ",i=" + std::string(i);
}
constexpr std::string_view kSha1ServerNonce = "fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j";
constexpr std::string_view kSha1Salt = "QSXCR+Q6sek8bf92";

// choose() as the stream calls it without certificate, channel data or order.
xmpp::Result<xmpp::sasl::Choice> choose_from(std::vector<std::string> offered,
                                             Credentials credentials, bool tls) {
    xmpp::sasl::Setup setup;
    setup.credentials = std::move(credentials);
    setup.tls_active = tls;
    return xmpp::sasl::choose(xmpp::sasl::Offer{std::move(offered), std::nullopt}, setup);
}

void require_error(const xmpp::Error& error, std::string_view code) {
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

}  // namespace

TEST_CASE("SCRAM-SHA-1 matches the RFC 5802 section 5 example", "[sasl][scram]") {
    auto m = xmpp::sasl::make_scram(ScramHash::Sha1, user_pencil(), std::string(kSha1Nonce));
    CHECK(m->name() == "SCRAM-SHA-1");
    auto first = m->initial_response();
    REQUIRE(first.ok());
    CHECK(first.value() == "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
    auto final_message = m->respond(kSha1ServerFirst);
    REQUIRE(final_message.ok());
    CHECK(final_message.value() == kSha1ClientFinal);
    auto done = m->finish(kSha1ServerFinal);
    CHECK(done.ok());
}

TEST_CASE("SCRAM-SHA-256 matches the RFC 7677 section 3 example", "[sasl][scram]") {
    auto m = xmpp::sasl::make_scram(ScramHash::Sha256, user_pencil(), "rOprNGfwEbeRWgbNEkqO");
    CHECK(m->name() == "SCRAM-SHA-256");
    auto first = m->initial_response();
    REQUIRE(first.ok());
    CHECK(first.value() == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    auto final_message = m->respond(
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,"
        "i=4096");
    REQUIRE(final_message.ok());
    CHECK(final_message.value() ==
          "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
          "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    auto done = m->finish("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    CHECK(done.ok());
}

TEST_CASE("the independent SCRAM reference reproduces RFC 5802 section 5", "[sasl][scram]") {
    // Validates the helper used for SCRAM-SHA-512 below, which has no RFC vector.
    Independent reference{"SHA1"};
    auto expected = reference.compute("user", "pencil", kSha1Nonce, kSha1ServerFirst,
                                      kSha1ServerNonce, kSha1Salt, 4096);
    CHECK(expected.client_final == kSha1ClientFinal);
    CHECK(expected.server_final == kSha1ServerFinal);
}

TEST_CASE("SCRAM-SHA-512 agrees with an independent computation", "[sasl][scram]") {
    const std::string client_nonce = "rOprNGfwEbeRWgbNEkqO";
    const std::string server_nonce = client_nonce + "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const std::string salt = "W22ZaJ0SNY7soEsUEjb6gQ==";
    const std::string server_first = "r=" + server_nonce + ",s=" + salt + ",i=4096";

    Independent reference{"SHA512"};
    auto expected = reference.compute("user", "pencil", client_nonce, server_first,
                                      server_nonce, salt, 4096);
    // SHA-512 output is 64 bytes: 88 base64 characters.
    REQUIRE(expected.server_final.size() == 2 + 88);

    auto m = xmpp::sasl::make_scram(ScramHash::Sha512, user_pencil(), client_nonce);
    CHECK(m->name() == "SCRAM-SHA-512");
    auto first = m->initial_response();
    REQUIRE(first.ok());
    CHECK(first.value() == "n,,n=user,r=" + client_nonce);
    auto final_message = m->respond(server_first);
    REQUIRE(final_message.ok());
    CHECK(final_message.value() == expected.client_final);
    CHECK(m->finish(expected.server_final).ok());

    SECTION("a SHA-256-sized verifier is refused") {
        auto other = xmpp::sasl::make_scram(ScramHash::Sha512, user_pencil(), client_nonce);
        REQUIRE(other->initial_response().ok());
        REQUIRE(other->respond(server_first).ok());
        auto status = other->finish("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-bad-signature");
    }
}

TEST_CASE("SCRAM refuses a server that cannot prove it knows the password", "[sasl][scram]") {
    auto m = started_sha1();
    REQUIRE(m->respond(kSha1ServerFirst).ok());

    SECTION("wrong signature of the right length") {
        auto status = m->finish("v=rmF9pqV8S7suAoZWja4dJRkFsKE=");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-bad-signature");
    }
    SECTION("signature of the wrong length") {
        auto status = m->finish("v=rmF9pqV8S7suAoZWja4dJRkF");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-bad-signature");
    }
    SECTION("verifier is not base64") {
        auto status = m->finish("v=rmF9pqV8S7suAoZWja4dJRkFsKQ");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-bad-signature");
    }
    SECTION("no additional data at all") {
        auto status = m->finish("");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-bad-signature");
    }
    SECTION("an attribute other than v=") {
        auto status = m->finish("x=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-bad-signature");
    }
    SECTION("e= is reported with the server's value") {
        auto status = m->finish("e=invalid-proof");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-server-error");
        CHECK(status.error().message.find("invalid-proof") != std::string::npos);
    }
    SECTION("the exchange cannot be finished twice") {
        REQUIRE(m->finish(kSha1ServerFinal).ok());
        auto again = m->finish(kSha1ServerFinal);
        REQUIRE_FALSE(again.ok());
        require_error(again.error(), "scram-out-of-order");
    }
    SECTION("a failed exchange stays failed") {
        REQUIRE_FALSE(m->finish("v=rmF9pqV8S7suAoZWja4dJRkFsKE=").ok());
        auto again = m->finish(kSha1ServerFinal);
        REQUIRE_FALSE(again.ok());
        require_error(again.error(), "scram-out-of-order");
    }
    SECTION("the verifier may be followed by extensions") {
        CHECK(m->finish("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=,x=ext").ok());
    }
}

TEST_CASE("SCRAM rejects a malformed or hostile server-first-message", "[sasl][scram]") {
    auto m = started_sha1();
    auto expect = [&](std::string_view challenge, std::string_view code) {
        INFO("challenge: " << challenge);
        auto response = m->respond(challenge);
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), code);
    };

    SECTION("server nonce does not start with ours") {
        expect(sha1_server_first("xyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j", kSha1Salt, "4096"),
               "scram-bad-nonce");
    }
    SECTION("server nonce equals ours") {
        expect(sha1_server_first(kSha1Nonce, kSha1Salt, "4096"), "scram-bad-nonce");
    }
    SECTION("server nonce is a prefix of ours") {
        expect(sha1_server_first("fyko+d2lbb", kSha1Salt, "4096"), "scram-bad-nonce");
    }
    SECTION("server nonce has a non-printable character") {
        expect(sha1_server_first(std::string(kSha1Nonce) + "ab\x7f", kSha1Salt, "4096"),
               "scram-bad-nonce");
    }
    SECTION("iteration count of zero") {
        expect(sha1_server_first(kSha1ServerNonce, kSha1Salt, "0"), "scram-bad-challenge");
    }
    SECTION("absurd iteration count") {
        expect(sha1_server_first(kSha1ServerNonce, kSha1Salt, "10000000"), "scram-iterations");
    }
    SECTION("one above the iteration limit") {
        expect(sha1_server_first(kSha1ServerNonce, kSha1Salt, "1000001"), "scram-iterations");
    }
    SECTION("iteration count that overflows 64 bits") {
        expect(sha1_server_first(kSha1ServerNonce, kSha1Salt, "99999999999999999999999"),
               "scram-iterations");
    }
    SECTION("negative, signed, padded or non-numeric iteration counts") {
        for (auto count : {"-1", "+4096", "04096", "4096 ", "4k", "0x10"}) {
            auto fresh = started_sha1();
            auto response = fresh->respond(sha1_server_first(kSha1ServerNonce, kSha1Salt, count));
            INFO("i=" << count);
            REQUIRE_FALSE(response.ok());
            require_error(response.error(), "scram-bad-challenge");
        }
    }
    SECTION("empty iteration count") {
        expect(sha1_server_first(kSha1ServerNonce, kSha1Salt, ""), "scram-bad-challenge");
    }
    SECTION("salt with a bad length") {
        expect(sha1_server_first(kSha1ServerNonce, "QSXCR+Q6sek8bf9", "4096"),
               "scram-bad-challenge");
    }
    SECTION("salt with a bad character") {
        expect(sha1_server_first(kSha1ServerNonce, "QSXCR*Q6sek8bf92", "4096"),
               "scram-bad-challenge");
    }
    SECTION("empty salt") {
        expect(sha1_server_first(kSha1ServerNonce, "", "4096"), "scram-bad-challenge");
    }
    SECTION("mandatory extension") {
        expect("m=ext," + std::string(kSha1ServerFirst), "scram-bad-challenge");
    }
    SECTION("attributes out of order") {
        expect("s=QSXCR+Q6sek8bf92,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,i=4096",
               "scram-bad-challenge");
    }
    SECTION("missing iteration count") {
        expect("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92",
               "scram-bad-challenge");
    }
    SECTION("empty challenge") { expect("", "scram-bad-challenge"); }
    SECTION("garbage") { expect("hello", "scram-bad-challenge"); }
    SECTION("embedded NUL") {
        expect(std::string(kSha1ServerFirst) + "\0"s, "scram-bad-challenge");
    }
    SECTION("a failed exchange cannot continue") {
        expect("hello", "scram-bad-challenge");
        auto response = m->respond(kSha1ServerFirst);
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "scram-out-of-order");
    }
}

TEST_CASE("SCRAM accepts what RFC 5802 allows", "[sasl][scram]") {
    SECTION("an optional extension after i= is part of AuthMessage") {
        auto m = started_sha1();
        auto response = m->respond(std::string(kSha1ServerFirst) + ",x=ext");
        REQUIRE(response.ok());
        CHECK(response.value() != kSha1ClientFinal);
        CHECK(response.value().rfind("c=biws,r=" + std::string(kSha1ServerNonce) + ",p=", 0) ==
              0);
    }
    SECTION("the iteration limit itself") {
        auto m = started_sha1();
        CHECK(m->respond(sha1_server_first(kSha1ServerNonce, kSha1Salt, "1000000")).ok());
    }
    SECTION("the iteration floor itself") {
        auto m = started_sha1();
        CHECK(m->respond(sha1_server_first(kSha1ServerNonce, kSha1Salt, "4096")).ok());
    }
}

TEST_CASE("SCRAM enforces the order of the exchange", "[sasl][scram]") {
    SECTION("a second challenge") {
        auto m = started_sha1();
        REQUIRE(m->respond(kSha1ServerFirst).ok());
        auto again = m->respond(kSha1ServerFirst);
        REQUIRE_FALSE(again.ok());
        require_error(again.error(), "scram-out-of-order");
        // The server cannot rescue the exchange afterwards.
        CHECK_FALSE(m->finish(kSha1ServerFinal).ok());
    }
    SECTION("server-final sent as a challenge") {
        auto m = started_sha1();
        REQUIRE(m->respond(kSha1ServerFirst).ok());
        auto again = m->respond(kSha1ServerFinal);
        REQUIRE_FALSE(again.ok());
        require_error(again.error(), "scram-out-of-order");
    }
    SECTION("success before the challenge") {
        auto m = started_sha1();
        auto status = m->finish(kSha1ServerFinal);
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-out-of-order");
    }
    SECTION("success before anything") {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha1, user_pencil(), "abc");
        auto status = m->finish("");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-out-of-order");
    }
    SECTION("a challenge before the initial response") {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha1, user_pencil(), "abc");
        auto response = m->respond(kSha1ServerFirst);
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "scram-out-of-order");
    }
    SECTION("two initial responses") {
        auto m = started_sha1();
        auto again = m->initial_response();
        REQUIRE_FALSE(again.ok());
        require_error(again.error(), "scram-out-of-order");
    }
}

TEST_CASE("SCRAM client-first-message", "[sasl][scram]") {
    SECTION("',' and '=' in the username are escaped") {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha256, {"a,b=c", "pencil", ""}, "nonce");
        auto first = m->initial_response();
        REQUIRE(first.ok());
        CHECK(first.value() == "n,,n=a=2Cb=3Dc,r=nonce");
    }
    SECTION("the username is SASLprep'd") {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha256, {"I\u00ADX", "pencil", ""}, "nonce");
        auto first = m->initial_response();
        REQUIRE(first.ok());
        CHECK(first.value() == "n,,n=IX,r=nonce");
    }
    SECTION("a username SASLprep prohibits") {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha256, {"us\u0007er", "pencil", ""}, "n");
        auto first = m->initial_response();
        REQUIRE_FALSE(first.ok());
        require_error(first.error(), "saslprep");
    }
    SECTION("an empty username") {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha256, {"", "pencil", ""}, "nonce");
        auto first = m->initial_response();
        REQUIRE_FALSE(first.ok());
        require_error(first.error(), "empty-username");
    }
    SECTION("authzid goes into the gs2 header and c=") {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha1, {"user", "pencil", "ad,m=n"},
                                        std::string(kSha1Nonce));
        auto first = m->initial_response();
        REQUIRE(first.ok());
        // RFC 5802 §7: gs2-header = "n," authzid "," and client-first-message-bare follows.
        CHECK(first.value() == "n,a=ad=2Cm=3Dn,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        auto response = m->respond(kSha1ServerFirst);
        REQUIRE(response.ok());
        CHECK(response.value().rfind(
                  "c=" + xmpp::base64_encode("n,a=ad=2Cm=3Dn,") + ",r=", 0) == 0);
    }
    SECTION("a client nonce with a comma is refused") {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha1, user_pencil(), "ab,c");
        auto first = m->initial_response();
        REQUIRE_FALSE(first.ok());
        require_error(first.error(), "scram-bad-nonce");
    }
    SECTION("a random nonce is 24 bytes of base64 and differs each time") {
        auto a = xmpp::sasl::make_scram(ScramHash::Sha256, user_pencil());
        auto b = xmpp::sasl::make_scram(ScramHash::Sha256, user_pencil());
        auto first_a = a->initial_response();
        auto first_b = b->initial_response();
        REQUIRE(first_a.ok());
        REQUIRE(first_b.ok());
        const std::string prefix = "n,,n=user,r=";
        REQUIRE(first_a.value().rfind(prefix, 0) == 0);
        std::string nonce = first_a.value().substr(prefix.size());
        CHECK(nonce.size() == 32);
        auto raw = xmpp::base64_decode(nonce);
        REQUIRE(raw.ok());
        CHECK(raw.value().size() == 24);
        CHECK(first_a.value() != first_b.value());

        // The random nonce is the one the exchange checks the server's against.
        auto response = a->respond("r=" + nonce + "srv,s=QSXCR+Q6sek8bf92,i=4096");
        CHECK(response.ok());
    }
}

TEST_CASE("SCRAM normalizes the password with SASLprep", "[sasl][scram]") {
    // RFC 4013 §2.1: non-ASCII space characters map to SPACE, so "pen\u00A0cil" and
    // "pen cil" must produce the same proof.
    auto run = [](std::string password) {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha1, {"user", password, ""},
                                        std::string(kSha1Nonce));
        REQUIRE(m->initial_response().ok());
        auto response = m->respond(kSha1ServerFirst);
        REQUIRE(response.ok());
        return response.value();
    };
    auto nbsp = run("pen\u00A0cil");
    CHECK(nbsp == run("pen cil"));
    CHECK(nbsp != kSha1ClientFinal);
    CHECK(run("pen\u00ADcil") == kSha1ClientFinal);  // soft hyphen maps to nothing

    auto m = xmpp::sasl::make_scram(ScramHash::Sha1, {"user", "pen\u0007cil", ""},
                                    std::string(kSha1Nonce));
    REQUIRE(m->initial_response().ok());
    auto response = m->respond(kSha1ServerFirst);
    REQUIRE_FALSE(response.ok());
    require_error(response.error(), "saslprep");
}

TEST_CASE("SASLprep follows the RFC 4013 section 3 examples", "[sasl][saslprep]") {
    auto ok = [](std::string_view in, std::string_view out) {
        INFO("input: " << in);
        auto prepared = xmpp::sasl::saslprep(in);
        REQUIRE(prepared.ok());
        CHECK(prepared.value() == out);
    };
    ok("I\u00ADX", "IX");
    ok("user", "user");
    ok("USER", "USER");
    ok("\u00AA", "a");
    ok("\u2168", "IX");
    ok("a\u00A0b", "a b");
    ok("", "");

    auto bad = [](std::string_view in) {
        INFO("input: " << in);
        auto prepared = xmpp::sasl::saslprep(in);
        REQUIRE_FALSE(prepared.ok());
        CHECK(prepared.error().code == "saslprep");
        CHECK_FALSE(prepared.error().message.empty());
    };
    bad("\u0007");
    bad("\u0627\u0031");  // RFC 3454 §6: RandALCat must start and end the string
    bad("a\0b"s);
    bad("\xff\xfe");      // not UTF-8
    bad("\xC0\xAF");      // overlong '/'
}

TEST_CASE("PLAIN sends one message and takes no challenge", "[sasl][plain]") {
    SECTION("the payload is authzid NUL authcid NUL password") {
        auto m = xmpp::sasl::make_plain(user_pencil());
        CHECK(m->name() == "PLAIN");
        auto first = m->initial_response();
        REQUIRE(first.ok());
        CHECK(first.value() == "\0user\0pencil"s);
        CHECK(first.value().size() == 12);
        CHECK(m->finish("").ok());
    }
    SECTION("with an authzid") {
        auto m = xmpp::sasl::make_plain({"user", "pencil", "admin@example.org"});
        auto first = m->initial_response();
        REQUIRE(first.ok());
        CHECK(first.value() == "admin@example.org\0user\0pencil"s);
    }
    SECTION("username and password are SASLprep'd") {
        auto m = xmpp::sasl::make_plain({"I\u00ADX", "pen\u00A0cil", ""});
        auto first = m->initial_response();
        REQUIRE(first.ok());
        CHECK(first.value() == "\0IX\0pen cil"s);
    }
    SECTION("a prohibited password") {
        auto m = xmpp::sasl::make_plain({"user", "pen\u0007cil", ""});
        auto first = m->initial_response();
        REQUIRE_FALSE(first.ok());
        require_error(first.error(), "saslprep");
    }
    SECTION("a NUL in the authzid") {
        auto m = xmpp::sasl::make_plain({"user", "pencil", "a\0b"s});
        auto first = m->initial_response();
        REQUIRE_FALSE(first.ok());
        require_error(first.error(), "bad-authzid");
    }
    SECTION("empty username or password") {
        auto no_user = xmpp::sasl::make_plain({"", "pencil", ""})->initial_response();
        REQUIRE_FALSE(no_user.ok());
        require_error(no_user.error(), "empty-username");
        auto no_password = xmpp::sasl::make_plain({"user", "", ""})->initial_response();
        REQUIRE_FALSE(no_password.ok());
        require_error(no_password.error(), "empty-password");
    }
    SECTION("a challenge is an error") {
        auto m = xmpp::sasl::make_plain(user_pencil());
        REQUIRE(m->initial_response().ok());
        auto response = m->respond("anything");
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "plain-unexpected-challenge");
    }
    SECTION("additional data on success is an error") {
        auto m = xmpp::sasl::make_plain(user_pencil());
        REQUIRE(m->initial_response().ok());
        auto status = m->finish("v=abc");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "plain-unexpected-data");
    }
}

TEST_CASE("choose picks the strongest acceptable mechanism", "[sasl][choose]") {
    auto pick = [](std::vector<std::string> offered, bool tls) {
        auto chosen = choose_from(offered, user_pencil(), tls);
        REQUIRE(chosen.ok());
        REQUIRE(chosen.value().mechanism != nullptr);
        CHECK(chosen.value().description == chosen.value().mechanism->name());
        return std::string(chosen.value().mechanism->name());
    };
    CHECK(pick({"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512"}, true) ==
          "SCRAM-SHA-512");
    CHECK(pick({"SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN"}, true) == "SCRAM-SHA-256");
    CHECK(pick({"PLAIN", "SCRAM-SHA-1"}, true) == "SCRAM-SHA-1");
    CHECK(pick({"SCRAM-SHA-1"}, false) == "SCRAM-SHA-1");
    CHECK(pick({"PLAIN"}, true) == "PLAIN");
    CHECK(pick({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1", "EXTERNAL"}, false) == "SCRAM-SHA-1");
    CHECK(pick({"X-OAUTH2", "DIGEST-MD5", "SCRAM-SHA-256"}, false) == "SCRAM-SHA-256");

    // The chosen mechanism carries the credentials.
    auto chosen = choose_from({"PLAIN"}, user_pencil(), true);
    REQUIRE(chosen.ok());
    auto first = chosen.value().mechanism->initial_response();
    REQUIRE(first.ok());
    CHECK(first.value() == "\0user\0pencil"s);
}

TEST_CASE("choose explains why nothing is acceptable", "[sasl][choose]") {
    auto refuse = [](std::vector<std::string> offered, bool tls) {
        auto chosen = choose_from(offered, user_pencil(), tls);
        REQUIRE_FALSE(chosen.ok());
        CHECK(chosen.error().code == "no-mechanism");
        return chosen.error().message;
    };

    auto plain = refuse({"PLAIN"}, false);
    CHECK(plain.find("PLAIN is refused outside TLS") != std::string::npos);

    auto plus = refuse({"SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"}, true);
    CHECK(plus.find("SCRAM-SHA-1-PLUS") != std::string::npos);
    CHECK(plus.find("SCRAM-SHA-256-PLUS") != std::string::npos);
    CHECK(plus.find("-PLUS") != std::string::npos);

    auto both = refuse({"SCRAM-SHA-512-PLUS", "PLAIN", "EXTERNAL"}, false);
    CHECK(both.find("EXTERNAL") != std::string::npos);
    CHECK(both.find("PLAIN is refused outside TLS") != std::string::npos);

    auto none = refuse({}, true);
    CHECK(none.find("none") != std::string::npos);

    // Names are matched exactly (RFC 4422 §3.1 names are upper case).
    refuse({"scram-sha-1", "plain"}, true);

    // Server-supplied names are sanitized before they reach a log.
    auto hostile = refuse({"EVIL\x1b[2J"}, true);
    CHECK(hostile.find('\x1b') == std::string::npos);
}

// ---------------------------------------------------------------------------------------
// EXTERNAL, channel binding, XEP-0474, and choose() over an Offer and a Setup

namespace {

using xmpp::ChannelBindingPolicy;
using xmpp::TlsChannel;
using xmpp::sasl::Offer;
using xmpp::sasl::Setup;

std::string bytes(std::initializer_list<int> values) {
    std::string out;
    for (int v : values) out.push_back(static_cast<char>(v));
    return out;
}

// Binding data as a TLS stack would give it: binary, with NULs and high bytes.
TlsChannel channel(std::string version) {
    TlsChannel c;
    c.version = std::move(version);
    for (int k = 0; k < 32; ++k) c.tls_exporter.push_back(static_cast<char>(k * 7));
    for (int k = 0; k < 32; ++k) c.tls_server_end_point.push_back(static_cast<char>(255 - k));
    c.tls_unique = bytes({0x00, 0x9f, 0x10, 0x20, 0xff, 0x01, 0x02, 0x7f, 0x80, 0x00, 0xee, 0x42});
    return c;
}

Setup setup_with(TlsChannel c, ChannelBindingPolicy policy = ChannelBindingPolicy::Auto) {
    Setup setup;
    setup.credentials = user_pencil();
    setup.tls_active = true;
    setup.channel = std::move(c);
    setup.channel_binding = policy;
    return setup;
}

Offer offer(std::vector<std::string> mechanisms,
            std::optional<std::vector<std::string>> bindings = std::nullopt) {
    return Offer{std::move(mechanisms), std::move(bindings)};
}

xmpp::sasl::Choice chosen(const Offer& o, const Setup& setup, std::size_t from = 0) {
    auto c = xmpp::sasl::choose(o, setup, from);
    INFO((c ? std::string() : c.error().message));
    REQUIRE(c.ok());
    REQUIRE(c.value().mechanism != nullptr);
    return std::move(c).value();
}

// The whole exchange of `choice` against the independent reference, which is told which
// cbind-input to expect (RFC 5802 §7: gs2-header, then the binding data with "p=").
void run_against_reference(xmpp::sasl::Choice& choice, const std::string& digest_name,
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
std::string ssdp(const std::string& digest_name, std::string text) {
    unsigned char out[EVP_MAX_MD_SIZE];
    size_t length = 0;
    REQUIRE(EVP_Q_digest(nullptr, digest_name.c_str(), nullptr, text.data(), text.size(), out,
                         &length) == 1);
    return Independent::b64(std::string_view(reinterpret_cast<char*>(out), length));
}

}  // namespace

TEST_CASE("EXTERNAL sends an empty response and expects nothing back", "[sasl][external]") {
    auto m = xmpp::sasl::make_external();
    CHECK(m->name() == "EXTERNAL");
    auto first = m->initial_response();
    REQUIRE(first.ok());
    CHECK(first.value().empty());  // "=" on the wire (RFC 6120 §6.4.2)
    CHECK(m->finish("").ok());

    SECTION("an empty challenge is answered once, anything else is an error") {
        auto e = xmpp::sasl::make_external();
        REQUIRE(e->initial_response().ok());
        auto empty = e->respond("");
        REQUIRE(empty.ok());
        CHECK(empty.value().empty());
        auto again = e->respond("");
        REQUIRE_FALSE(again.ok());
        require_error(again.error(), "external-unexpected-challenge");
        auto data = xmpp::sasl::make_external()->respond("x");
        REQUIRE_FALSE(data.ok());
        require_error(data.error(), "external-unexpected-challenge");
    }
    SECTION("additional data on success is an error") {
        auto status = xmpp::sasl::make_external()->finish("x");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "external-unexpected-data");
    }
    SECTION("an authzid, when asked for, is the whole message") {
        auto as = xmpp::sasl::make_external("juliet@example.com");
        auto response = as->initial_response();
        REQUIRE(response.ok());
        CHECK(response.value() == "juliet@example.com");
    }
}

TEST_CASE("SCRAM-*-PLUS: each binding type agrees with an independent computation",
          "[sasl][scram][plus]") {
    SECTION("tls-exporter, the default under TLS 1.3 when binding is required, with SHA-256") {
        auto setup = setup_with(channel("TLSv1.3"), ChannelBindingPolicy::Required);
        auto c = chosen(offer({"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "PLAIN"}), setup);
        CHECK(c.mechanism->name() == "SCRAM-SHA-256-PLUS");
        CHECK(c.description == "SCRAM-SHA-256-PLUS, tls-exporter");
        run_against_reference(c, "SHA256", "p=tls-exporter,," + setup.channel.tls_exporter);
    }
    SECTION("tls-server-end-point, from the server's list, with SHA-512") {
        auto setup = setup_with(channel("TLSv1.3"));
        auto c = chosen(offer({"SCRAM-SHA-512-PLUS"}, {{"tls-server-end-point"}}), setup);
        CHECK(c.description == "SCRAM-SHA-512-PLUS, tls-server-end-point");
        run_against_reference(c, "SHA512",
                              "p=tls-server-end-point,," + setup.channel.tls_server_end_point);
    }
    SECTION("tls-unique, the default under TLS 1.2 without a list, with SHA-1") {
        auto setup = setup_with(channel("TLSv1.2"));
        auto c = chosen(offer({"SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"}), setup);
        CHECK(c.description == "SCRAM-SHA-1-PLUS, tls-unique");
        run_against_reference(c, "SHA1", "p=tls-unique,," + setup.channel.tls_unique);
    }
    SECTION("an authzid sits between the flag and the binding data") {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha1, {"user", "pencil", "admin"},
                                        std::string(kSha1Nonce),
                                        {{"tls-exporter", "\x01\x02"s, false}, {}, false});
        CHECK(m->name() == "SCRAM-SHA-1-PLUS");
        auto first = m->initial_response();
        REQUIRE(first.ok());
        CHECK(first.value() == "p=tls-exporter,a=admin,n=user,r=" + std::string(kSha1Nonce));
        auto response = m->respond(kSha1ServerFirst);
        REQUIRE(response.ok());
        CHECK(response.value().rfind(
                  "c=" + Independent::b64("p=tls-exporter,a=admin,\x01\x02"s) + ",r=", 0) == 0);
    }
    SECTION("a type without data, or a malformed type, is refused before anything goes out") {
        for (auto binding : {xmpp::sasl::ChannelBinding{"tls-exporter", "", false},
                             xmpp::sasl::ChannelBinding{"tls,exporter", "x", false}}) {
            auto m = xmpp::sasl::make_scram(ScramHash::Sha256, user_pencil(), "n",
                                            {binding, {}, false});
            auto first = m->initial_response();
            REQUIRE_FALSE(first.ok());
            require_error(first.error(), "scram-bad-binding");
        }
    }
}

TEST_CASE("SCRAM: the gs2 flag says whether we could bind", "[sasl][scram][plus]") {
    SECTION("binding data but no -PLUS offered: 'y' (RFC 5802 §6)") {
        auto c = chosen(offer({"SCRAM-SHA-1", "PLAIN"}), setup_with(channel("TLSv1.3")));
        CHECK(c.description == "SCRAM-SHA-1");
        CHECK_FALSE(c.failure_hint.empty());
        run_against_reference(c, "SHA1", "y,,");
    }
    SECTION("no binding data: 'n'") {
        auto c = chosen(offer({"SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"}), setup_with(TlsChannel{}));
        CHECK(c.description == "SCRAM-SHA-1");
        CHECK(c.failure_hint.empty());
        run_against_reference(c, "SHA1", "n,,");
    }
    SECTION("tls-unique is not used under TLS 1.3 (RFC 9266 §3), even when listed: 'n'") {
        TlsChannel unique_only;
        unique_only.version = "TLSv1.3";
        unique_only.tls_unique = "0123456789ab";
        auto c = chosen(offer({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}, {{"tls-unique"}}),
                        setup_with(unique_only));
        CHECK(c.description == "SCRAM-SHA-256");
        run_against_reference(c, "SHA256", "n,,");
    }
}

TEST_CASE("choose: the binding type follows the XEP-0440 list, else the TLS version",
          "[sasl][choose][plus]") {
    auto description = [](const Offer& o, TlsChannel c,
                          ChannelBindingPolicy policy = ChannelBindingPolicy::Auto) {
        return chosen(o, setup_with(std::move(c), policy)).description;
    };
    // Our preference on a list: tls-exporter > tls-server-end-point > tls-unique.
    CHECK(description(offer({"SCRAM-SHA-256-PLUS"}, {{"tls-unique", "tls-server-end-point"}}),
                      channel("TLSv1.2")) == "SCRAM-SHA-256-PLUS, tls-server-end-point");
    CHECK(description(offer({"SCRAM-SHA-256-PLUS"}, {{"tls-unique", "tls-exporter"}}),
                      channel("TLSv1.2")) == "SCRAM-SHA-256-PLUS, tls-exporter");
    CHECK(description(offer({"SCRAM-SHA-256-PLUS"}, {{"tls-unique"}}), channel("TLSv1.2")) ==
          "SCRAM-SHA-256-PLUS, tls-unique");
    // Only types we have data for.
    auto no_exporter = channel("TLSv1.3");
    no_exporter.tls_exporter.clear();
    CHECK(description(offer({"SCRAM-SHA-256-PLUS"}, {{"tls-exporter", "tls-server-end-point"}}),
                      no_exporter) == "SCRAM-SHA-256-PLUS, tls-server-end-point");
    CHECK(description(offer({"SCRAM-SHA-256-PLUS"}), no_exporter, ChannelBindingPolicy::Required) ==
          "SCRAM-SHA-256-PLUS, tls-server-end-point");
    // Without a list: TLS 1.3 no guess unless required, then tls-exporter (RFC 9266 §3);
    // TLS 1.2 tls-unique (RFC 5802 §6), then the others.
    CHECK(description(offer({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}), channel("TLSv1.3")) ==
          "SCRAM-SHA-256");
    CHECK(description(offer({"SCRAM-SHA-256-PLUS"}), channel("TLSv1.3"),
                      ChannelBindingPolicy::Required) == "SCRAM-SHA-256-PLUS, tls-exporter");
    CHECK(description(offer({"SCRAM-SHA-256-PLUS"}), channel("TLSv1.2")) ==
          "SCRAM-SHA-256-PLUS, tls-unique");
    auto no_unique = channel("TLSv1.2");
    no_unique.tls_unique.clear();
    CHECK(description(offer({"SCRAM-SHA-256-PLUS"}), no_unique) ==
          "SCRAM-SHA-256-PLUS, tls-exporter");
    // -PLUS before hash strength; then SHA-512 > SHA-256 > SHA-1.
    CHECK(description(offer({"SCRAM-SHA-512", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256"}, {{"tls-exporter"}}),
                      channel("TLSv1.3")) == "SCRAM-SHA-1-PLUS, tls-exporter");
    CHECK(description(offer({"SCRAM-SHA-1-PLUS", "SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS"},
                            {{"tls-exporter"}}),
                      channel("TLSv1.3")) == "SCRAM-SHA-512-PLUS, tls-exporter");
    // A list we share nothing with: no binding ('n'), the best plain SCRAM.
    CHECK(description(offer({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}, {{"tls-unique"}}),
                      channel("TLSv1.3")) == "SCRAM-SHA-256");
    // The failure hint names the missing list.
    auto hinted = chosen(offer({"SCRAM-SHA-256-PLUS"}),
                         setup_with(channel("TLSv1.3"), ChannelBindingPolicy::Required));
    CHECK(hinted.failure_hint.find("XEP-0440") != std::string::npos);
    CHECK(hinted.failure_hint.find("TLS 1.3") != std::string::npos);
    auto guessed = chosen(offer({"SCRAM-SHA-256-PLUS"}), setup_with(channel("TLSv1.2")));
    CHECK(guessed.failure_hint.find("tls-unique: it did not say") != std::string::npos);
    CHECK(chosen(offer({"SCRAM-SHA-256-PLUS"}, {{"tls-exporter"}}),
                 setup_with(channel("TLSv1.3")))
              .failure_hint.empty());
}

TEST_CASE("choose: under TLS 1.3 no binding type is guessed without a XEP-0440 list",
          "[sasl][choose][plus]") {
    // Servers older than RFC 9266 (Debian 12's ejabberd 23.01) offer -PLUS under TLS 1.3 but
    // know only tls-unique, and fail every tls-exporter login.
    const auto unlisted = offer({"SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256",
                                 "SCRAM-SHA-1", "PLAIN"});

    SECTION("auto: the plain mechanism with 'n', not 'y', which a server with -PLUS refuses") {
        auto c = chosen(unlisted, setup_with(channel("TLSv1.3")));
        CHECK(c.mechanism->name() == "SCRAM-SHA-256");
        CHECK(c.description == "SCRAM-SHA-256");
        CHECK(c.failure_hint.empty());
        run_against_reference(c, "SHA256", "n,,");
    }
    SECTION("auto: a stripped list is still caught when the server signs its offer (XEP-0474)") {
        auto c = chosen(offer({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}),
                        setup_with(channel("TLSv1.3")));
        auto first = c.mechanism->initial_response();
        REQUIRE(first.ok());
        CHECK(first.value().rfind("n,,", 0) == 0);
        std::string nonce = first.value().substr(first.value().find("r=") + 2);
        auto response = c.mechanism->respond(
            "r=" + nonce + "x,s=QSXCR+Q6sek8bf92,i=4096,h=" +
            ssdp("SHA256", "SCRAM-SHA-256\x1eSCRAM-SHA-256-PLUS\x1ftls-exporter"));
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "downgrade");
    }
    SECTION("auto: with only -PLUS offered, SCRAM is skipped and the reason given") {
        CHECK(chosen(offer({"SCRAM-SHA-256-PLUS", "PLAIN"}), setup_with(channel("TLSv1.3")))
                  .description == "PLAIN");
        auto none = xmpp::sasl::choose(offer({"SCRAM-SHA-256-PLUS"}), setup_with(channel("TLSv1.3")));
        REQUIRE_FALSE(none.ok());
        CHECK(none.error().code == "no-mechanism");
        CHECK(none.error().message.find("without a list of channel-binding types (XEP-0440), and "
                                        "under TLS 1.3 none is guessed unless channel_binding = "
                                        "\"required\"") != std::string::npos);
    }
    SECTION("required: -PLUS with tls-exporter (RFC 9266 §3), with a hint for when it fails") {
        auto setup = setup_with(channel("TLSv1.3"), ChannelBindingPolicy::Required);
        auto c = chosen(unlisted, setup);
        CHECK(c.description == "SCRAM-SHA-512-PLUS, tls-exporter");
        CHECK(c.failure_hint.find("ejabberd") != std::string::npos);
        CHECK(c.failure_hint.find("tls-unique") != std::string::npos);
        run_against_reference(c, "SHA512", "p=tls-exporter,," + setup.channel.tls_exporter);
    }
    SECTION("auto with a list naming tls-exporter: -PLUS with tls-exporter") {
        auto setup = setup_with(channel("TLSv1.3"));
        auto c = chosen(offer({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}, {{"tls-exporter"}}), setup);
        CHECK(c.description == "SCRAM-SHA-256-PLUS, tls-exporter");
        CHECK(c.failure_hint.empty());
        run_against_reference(c, "SHA256", "p=tls-exporter,," + setup.channel.tls_exporter);
    }
    SECTION("TLS 1.2 without a list still binds with tls-unique; no -PLUS at all still says 'y'") {
        auto setup = setup_with(channel("TLSv1.2"));
        auto c = chosen(unlisted, setup);
        CHECK(c.description == "SCRAM-SHA-512-PLUS, tls-unique");
        run_against_reference(c, "SHA512", "p=tls-unique,," + setup.channel.tls_unique);
        auto y = chosen(offer({"SCRAM-SHA-256", "PLAIN"}), setup_with(channel("TLSv1.3")));
        CHECK(y.description == "SCRAM-SHA-256");
        run_against_reference(y, "SHA256", "y,,");
    }
}

TEST_CASE("choose: channel_binding = required", "[sasl][choose][plus]") {
    auto refused = [](const Offer& o, TlsChannel c) {
        auto result = xmpp::sasl::choose(o, setup_with(std::move(c), ChannelBindingPolicy::Required));
        REQUIRE_FALSE(result.ok());
        CHECK(result.error().code == "channel-binding-required");
        return result.error().message;
    };
    CHECK(refused(offer({"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}), channel("TLSv1.3")) ==
          "channel binding is required but the server offers no SCRAM-*-PLUS");
    CHECK(refused(offer({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}), TlsChannel{}) ==
          "channel binding is required but this TLS connection has no channel-binding data");
    CHECK(refused(offer({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}, {{"tls-unique"}}),
                  channel("TLSv1.3")) ==
          "channel binding is required but none of the server's channel-binding types "
          "(tls-unique) is one this connection can use (tls-exporter, tls-server-end-point)");

    // -PLUS is fine, and so is EXTERNAL, which sends no password.
    auto setup = setup_with(channel("TLSv1.3"), ChannelBindingPolicy::Required);
    CHECK(chosen(offer({"SCRAM-SHA-1-PLUS", "PLAIN"}), setup).description ==
          "SCRAM-SHA-1-PLUS, tls-exporter");
    setup.client_certificate = true;
    CHECK(chosen(offer({"EXTERNAL", "SCRAM-SHA-1"}), setup).description == "EXTERNAL");
    // PLAIN never goes out under it.
    setup.client_certificate = false;
    auto plain = xmpp::sasl::choose(offer({"PLAIN"}), setup);
    REQUIRE_FALSE(plain.ok());
    CHECK(plain.error().message.find("PLAIN cannot bind") != std::string::npos);
}

TEST_CASE("choose: EXTERNAL only with a certificate, in the configured order",
          "[sasl][choose][external]") {
    Setup setup = setup_with(TlsChannel{});
    const auto everything = offer({"EXTERNAL", "SCRAM-SHA-256", "PLAIN"});

    SECTION("offered to everyone (ejabberd), but never picked without a certificate") {
        CHECK(chosen(everything, setup).description == "SCRAM-SHA-256");
        setup.order = {"EXTERNAL", "SCRAM"};
        CHECK(chosen(everything, setup).description == "SCRAM-SHA-256");
        setup.credentials.password.clear();
        auto none = xmpp::sasl::choose(everything, setup);
        REQUIRE_FALSE(none.ok());
        CHECK(none.error().code == "no-mechanism");
        CHECK(none.error().message.find("EXTERNAL needs a client certificate") != std::string::npos);
        CHECK(none.error().message.find("no password") != std::string::npos);
    }
    SECTION("with a certificate, the default order starts with EXTERNAL; SCRAM comes next") {
        setup.client_certificate = true;
        auto first = chosen(everything, setup);
        CHECK(first.description == "EXTERNAL");
        CHECK(first.failure_hint.empty());
        CHECK(chosen(everything, setup, first.position + 1).description == "SCRAM-SHA-256");
    }
    SECTION("with a certificate and no password, nothing follows EXTERNAL") {
        setup.client_certificate = true;
        setup.credentials.password.clear();
        auto first = chosen(everything, setup);
        CHECK(first.description == "EXTERNAL");
        auto next = xmpp::sasl::choose(everything, setup, first.position + 1);
        REQUIRE_FALSE(next.ok());
        CHECK(next.error().code == "no-mechanism");
        auto not_offered = xmpp::sasl::choose(offer({"SCRAM-SHA-1"}), setup);
        REQUIRE_FALSE(not_offered.ok());
        CHECK(not_offered.error().message ==
              "no acceptable SASL mechanism: the server offered SCRAM-SHA-1; the server does not "
              "offer EXTERNAL for our client certificate; no password is set for SCRAM or PLAIN; "
              "we support EXTERNAL (with a client certificate), SCRAM-SHA-512, SCRAM-SHA-256, "
              "SCRAM-SHA-1 (and -PLUS with channel binding) and PLAIN over TLS");
    }
    SECTION("an explicit order wins") {
        setup.client_certificate = true;
        setup.order = {"scram", "EXTERNAL"};
        CHECK(chosen(everything, setup).description == "SCRAM-SHA-256");
        setup.order = {"PLAIN"};
        CHECK(chosen(everything, setup).description == "PLAIN");
        setup.order = {"EXTERNAL"};
        auto only = chosen(everything, setup);
        CHECK(only.description == "EXTERNAL");
        CHECK_FALSE(xmpp::sasl::choose(everything, setup, only.position + 1).ok());
    }
    SECTION("PLAIN only when the order allows it") {
        setup.order = {"SCRAM"};
        auto refused = xmpp::sasl::choose(offer({"PLAIN"}), setup);
        REQUIRE_FALSE(refused.ok());
        CHECK(refused.error().message.find("leaves out PLAIN") != std::string::npos);
    }
    SECTION("an unknown family is a configuration error") {
        setup.order = {"SCRAM", "DIGEST-MD5"};
        auto bad = xmpp::sasl::choose(everything, setup);
        REQUIRE_FALSE(bad.ok());
        CHECK(bad.error().code == "bad-sasl-order");
        CHECK(bad.error().message.find("DIGEST-MD5") != std::string::npos);
    }
}

TEST_CASE("XEP-0474: the hash of the offer", "[sasl][ssdp]") {
    // The example of XEP-0474 §5.3 (SHA-1 of
    // "SCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS\x1ftls-exporter\x1etls-server-end-point").
    CHECK(xmpp::sasl::offer_hash(ScramHash::Sha1,
                                 offer({"SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"},
                                       {{"tls-server-end-point", "tls-exporter"}})) ==
          "G6k/rBLDqgOhRRaCuuatSDFkJ08=");
    // Sorted by octets ('-' < 'P' < 'S'), the hash of the mechanism in use, and no %x1F
    // without a XEP-0440 list; an empty list still adds it.
    CHECK(xmpp::sasl::offer_hash(ScramHash::Sha256,
                                 offer({"SCRAM-SHA-256", "PLAIN", "SCRAM-SHA-1", "EXTERNAL"})) ==
          ssdp("SHA256", "EXTERNAL\x1ePLAIN\x1eSCRAM-SHA-1\x1eSCRAM-SHA-256"));
    CHECK(xmpp::sasl::offer_hash(ScramHash::Sha512, offer({"SCRAM-SHA-512"}, {{}})) ==
          ssdp("SHA512", "SCRAM-SHA-512\x1f"));
}

TEST_CASE("XEP-0474: the signed offer is checked in the server-first-message", "[sasl][ssdp]") {
    const Offer seen = offer({"SCRAM-SHA-1", "PLAIN"}, {{"tls-exporter"}});
    auto started = [&](bool require_hash = false) {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha1, user_pencil(), std::string(kSha1Nonce),
                                        {{}, seen, require_hash});
        REQUIRE(m->initial_response().ok());
        return m;
    };

    SECTION("a matching h= is part of the exchange") {
        std::string server_first = std::string(kSha1ServerFirst) + ",h=" +
                                   ssdp("SHA1", "PLAIN\x1eSCRAM-SHA-1\x1ftls-exporter");
        Independent reference{"SHA1"};
        auto expected = reference.compute("user", "pencil", kSha1Nonce, server_first,
                                          kSha1ServerNonce, kSha1Salt, 4096);
        auto m = started();
        auto response = m->respond(server_first);
        REQUIRE(response.ok());
        CHECK(response.value() == expected.client_final);
        CHECK(m->finish(expected.server_final).ok());
    }
    SECTION("a stripped -PLUS is found and named") {
        auto m = started();
        auto response = m->respond(
            std::string(kSha1ServerFirst) + ",h=" +
            ssdp("SHA1", "PLAIN\x1eSCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS\x1ftls-exporter"));
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "downgrade");
        CHECK(response.error().message ==
              "downgrade detected: the server signed mechanisms PLAIN, SCRAM-SHA-1, "
              "SCRAM-SHA-1-PLUS with channel bindings tls-exporter but offered PLAIN, "
              "SCRAM-SHA-1 with channel bindings tls-exporter (XEP-0474)");
    }
    SECTION("a stripped channel-binding list is found and named") {
        auto m = started();
        auto response = m->respond(std::string(kSha1ServerFirst) + ",h=" +
                                   ssdp("SHA1", "PLAIN\x1eSCRAM-SHA-1\x1ftls-exporter\x1e"
                                                "tls-server-end-point"));
        REQUIRE_FALSE(response.ok());
        CHECK(response.error().message.find("signed mechanisms PLAIN, SCRAM-SHA-1 with "
                                            "channel bindings tls-exporter, "
                                            "tls-server-end-point but offered") !=
              std::string::npos);
    }
    SECTION("a hash that matches nothing we can guess") {
        auto m = started();
        auto response = m->respond(std::string(kSha1ServerFirst) + ",h=" + ssdp("SHA1", "X"));
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "downgrade");
        CHECK(response.error().message.find("are not the ones it offered (PLAIN, SCRAM-SHA-1 "
                                            "with channel bindings tls-exporter)") !=
              std::string::npos);
    }
    SECTION("the hash of another algorithm does not match") {
        auto m = started();
        auto response = m->respond(std::string(kSha1ServerFirst) + ",h=" +
                                   ssdp("SHA256", "PLAIN\x1eSCRAM-SHA-1\x1ftls-exporter"));
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "downgrade");
    }
    SECTION("no h=: nothing to check, unless only a signature could clear the offer") {
        CHECK(started()->respond(kSha1ServerFirst).ok());
        auto response = started(true)->respond(kSha1ServerFirst);
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "downgrade");
        CHECK(response.error().message.find("XEP-0440") != std::string::npos);
    }
    SECTION("two h= attributes") {
        std::string h = ",h=" + ssdp("SHA1", "PLAIN\x1eSCRAM-SHA-1\x1ftls-exporter");
        auto response = started()->respond(std::string(kSha1ServerFirst) + h + h);
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "scram-bad-challenge");
    }
    SECTION("without an offer to check against, h= is just an extension") {
        auto m = started_sha1();
        CHECK(m->respond(std::string(kSha1ServerFirst) + ",h=" + ssdp("SHA1", "X")).ok());
    }
    SECTION("a list without tls-server-end-point and nothing we can use needs the signature") {
        auto c = chosen(offer({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}, {{"tls-unique"}}),
                        setup_with(channel("TLSv1.3")));
        auto first = c.mechanism->initial_response();
        REQUIRE(first.ok());
        CHECK(first.value().rfind("n,,", 0) == 0);
        std::string nonce = first.value().substr(first.value().find("r=") + 2);
        auto response = c.mechanism->respond("r=" + nonce + "x,s=QSXCR+Q6sek8bf92,i=4096");
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "downgrade");
        // With tls-server-end-point on the list it is our own limit, not a sign of tampering.
        TlsChannel exporter_only = channel("TLSv1.3");
        exporter_only.tls_server_end_point.clear();
        auto ok = chosen(offer({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}, {{"tls-server-end-point"}}),
                         setup_with(exporter_only));
        CHECK(ok.description == "SCRAM-SHA-256");
        run_against_reference(ok, "SHA256", "n,,");
    }
}

TEST_CASE("SCRAM: the PBKDF2 iteration count has a floor and a ceiling", "[sasl][scram]") {
    auto refuse = [](std::string_view count) {
        auto m = started_sha1();
        auto response = m->respond(sha1_server_first(kSha1ServerNonce, kSha1Salt, count));
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "scram-iterations");
        return response.error().message;
    };
    CHECK(refuse("4095") ==
          "the server asks for only 4095 PBKDF2 iterations (at least 4096 required, RFC 5802 "
          "§5.1)");
    CHECK(refuse("1") ==
          "the server asks for only 1 PBKDF2 iterations (at least 4096 required, RFC 5802 "
          "§5.1)");
    CHECK(refuse("10000000") ==
          "the server asks for 10000000 PBKDF2 iterations (at most 1000000 accepted: more "
          "would stall the daemon at every login)");
}

TEST_CASE("SCRAM: the server's error values are explained", "[sasl][scram]") {
    auto finished = [](std::string_view final_message) {
        auto m = started_sha1();
        REQUIRE(m->respond(kSha1ServerFirst).ok());
        auto status = m->finish(final_message);
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-server-error");
        return status.error().message;
    };
    CHECK(finished("e=channel-bindings-dont-match").find("intercepting") != std::string::npos);
    CHECK(finished("e=server-does-support-channel-binding").find("removed") != std::string::npos);
    CHECK(finished("e=invalid-proof").find("wrong password") != std::string::npos);
    CHECK(finished("e=other-error,x=1") == "the server rejected the SCRAM exchange: other-error");

    // Sent as a second challenge instead of with <failure/> or <success/>.
    auto m = started_sha1();
    REQUIRE(m->respond(kSha1ServerFirst).ok());
    auto response = m->respond("e=channel-bindings-dont-match");
    REQUIRE_FALSE(response.ok());
    require_error(response.error(), "scram-server-error");
    CHECK(response.error().message.find("channel-bindings-dont-match") != std::string::npos);
}
