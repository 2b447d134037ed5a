// Tests for protocol/base/base64: the RFC 4648 §10 vectors, every length of every byte
// against OpenSSL's encoder (an implementation that shares no code with ours), and the strict
// decoder's refusals.
#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/base/base64.hpp"

using namespace std::string_literals;

namespace {

std::string openssl_b64(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

}  // namespace

TEST_CASE("base64 round trips and RFC 4648 section 10 vectors", "[base64]") {
    const std::vector<std::pair<std::string, std::string>> vectors = {
        {"", ""},         {"f", "Zg=="},        {"fo", "Zm8="},         {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    for (const auto& [plain, encoded] : vectors) {
        CHECK(xmpp::base64_encode(plain) == encoded);
        auto decoded = xmpp::base64_decode(encoded);
        REQUIRE(decoded.ok());
        CHECK(decoded.value() == plain);
    }

    std::string all;
    for (int k = 0; k < 256; ++k) all.push_back(static_cast<char>(k));
    for (size_t length = 0; length <= all.size(); length += 1) {
        std::string bytes = all.substr(all.size() - length);
        std::string encoded = xmpp::base64_encode(bytes);
        CHECK(encoded == openssl_b64(bytes));
        auto decoded = xmpp::base64_decode(encoded);
        REQUIRE(decoded.ok());
        CHECK(decoded.value() == bytes);
    }
}

TEST_CASE("base64 rejects malformed input", "[base64]") {
    for (std::string text : {"Zg", "Zg=", "Zm9vY", "Z===", "====", "=Zg=", "Zg=a", "Zg==Zg==",
                             "Zm9v YmFy", "Zm9v\nYmFy", "Zm9v*mFy", "Zm9-", "Zm9_", "Zh==",
                             "Zm9=", "Zm\xc3\xa9"}) {
        INFO("input: " << text);
        auto decoded = xmpp::base64_decode(text);
        REQUIRE_FALSE(decoded.ok());
        CHECK(decoded.error().code == "bad-base64");
    }
    auto nul = xmpp::base64_decode("Zm9\0"s);
    CHECK_FALSE(nul.ok());
}

TEST_CASE("base64 decodes what it encodes, binary and empty", "[base64]") {
    std::string binary("\0\xff\x80\x01 \n="s);
    auto decoded = xmpp::base64_decode(xmpp::base64_encode(binary));
    REQUIRE(decoded.ok());
    CHECK(decoded.value() == binary);
    CHECK(xmpp::base64_decode("").value().empty());
    CHECK(xmpp::base64_encode("\xfb\xff") == "+/8=");  // the last two letters of the alphabet
    CHECK(xmpp::base64_decode("+/8=").value() == "\xfb\xff");
}
