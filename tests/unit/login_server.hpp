#pragma once
// The server side of a login, for stream tests: headers, features, and SCRAM (RFC 5802)
// written independently of protocol/sasl_scram.cpp, so the client is tested against a second
// implementation.
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <string_view>

#include "protocol/base/base64.hpp"
#include "protocol/sasl.hpp"

namespace test_server {

using namespace xmpp;

inline constexpr std::string_view server_header =
    "<?xml version='1.0'?><stream:stream from='example.org' id='s%' version='1.0' xml:lang='en' "
    "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
inline constexpr std::string_view starttls_features =
    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
    "</stream:features>";
inline constexpr std::string_view bind_features =
    "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
    "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>";

inline std::string sasl_features(std::string_view mechanisms) {
    std::string out = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>";
    std::string_view rest = mechanisms;
    while (!rest.empty()) {
        auto sp = rest.find(' ');
        out += "<mechanism>" + std::string(rest.substr(0, sp)) + "</mechanism>";
        rest = sp == std::string_view::npos ? "" : rest.substr(sp + 1);
    }
    return out + "</mechanisms></stream:features>";
}

inline std::string between(const std::string& s, std::string_view open_end, std::string_view close) {
    auto a = s.find(open_end);
    REQUIRE(a != std::string::npos);
    a += open_end.size();
    auto b = s.find(close, a);
    REQUIRE(b != std::string::npos);
    return s.substr(a, b - a);
}

inline std::string hmac(const EVP_MD* md, std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    HMAC(md, key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
         data.size(), out, &len);
    return std::string(reinterpret_cast<char*>(out), len);
}

inline std::string hash(const EVP_MD* md, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(data.data(), data.size(), out, &len, md, nullptr);
    return std::string(reinterpret_cast<char*>(out), len);
}

// The server side of SCRAM (RFC 5802 §3, §6), written independently of protocol/sasl_scram.cpp
// so that the stream is tested against a second implementation. It checks c= against the
// gs2 header and, with "p=", the binding data of the channel as the server sees it.
struct ScramServer {
    std::string password = "pencil";
    std::string salt = "0123456789abcdef";
    int iterations = 4096;
    const EVP_MD* md = EVP_sha1();
    std::string binding_data;  // the server's view of the channel, for "p="
    std::string extensions;    // appended to the server-first-message (",h=...")
    std::string gs2_header, client_first_bare, server_first, nonce;

    std::string first(const std::string& client_first) {
        // RFC 5802 §7: the gs2-header ends at the second ','.
        auto end = client_first.find(',', client_first.find(',') + 1);
        REQUIRE(end != std::string::npos);
        gs2_header = client_first.substr(0, end + 1);
        client_first_bare = client_first.substr(end + 1);
        nonce = between(client_first_bare + ",", "r=", ",") + "SERVERNONCE";
        server_first = "r=" + nonce + ",s=" + base64_encode(salt) + ",i=" + std::to_string(iterations) +
                       extensions;
        return server_first;
    }
    // Returns the server-final message, or "" if the client's binding or proof is wrong.
    std::string final(const std::string& client_final, bool corrupt_signature = false) {
        auto without_proof = client_final.substr(0, client_final.find(",p="));
        auto cbind = base64_decode(between(client_final, "c=", ",")).value();
        if (cbind != gs2_header + (gs2_header.starts_with("p=") ? binding_data : "")) return "";
        auto proof = base64_decode(client_final.substr(client_final.find(",p=") + 3)).value();
        int size = EVP_MD_get_size(md);
        std::string salted_password(static_cast<std::size_t>(size), '\0');
        PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                          reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                          iterations, md, size, reinterpret_cast<unsigned char*>(salted_password.data()));
        std::string client_key = hmac(md, salted_password, "Client Key");
        std::string auth_message = client_first_bare + "," + server_first + "," + without_proof;
        std::string client_signature = hmac(md, hash(md, client_key), auth_message);
        std::string expected_proof = client_key;
        for (std::size_t i = 0; i < expected_proof.size(); ++i)
            expected_proof[i] = static_cast<char>(client_key[i] ^ client_signature[i]);
        if (proof != expected_proof) return "";
        std::string server_signature = hmac(md, hmac(md, salted_password, "Server Key"), auth_message);
        if (corrupt_signature) server_signature[0] ^= 1;
        return "v=" + base64_encode(server_signature);
    }
};

inline std::string header(int n) {
    std::string h(server_header);
    h.replace(h.find('%'), 1, std::to_string(n));
    return h;
}

}  // namespace test_server
