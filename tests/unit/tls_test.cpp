#include <catch2/catch.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "daemon/tls.hpp"

namespace fs = std::filesystem;

namespace {

// A CA and a server certificate for "xmpp.test", made with the openssl CLI at test time.
struct Pki {
    fs::path dir;
    Pki() {
        char tmpl[] = "/tmp/stanzad-tls-XXXXXX";
        dir = mkdtemp(tmpl);
        std::string d = dir.string();
        std::string cmd =
            "cd " + d + " && "
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=TestCA "
            "-keyout ca.key -out ca.pem && "
            "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=xmpp.test "
            "-keyout server.key -out server.csr && "
            "printf 'subjectAltName=DNS:xmpp.test\\n' > ext && "
            "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
            "-extfile ext -out server.pem";
        REQUIRE(std::system((cmd + " >/dev/null 2>&1").c_str()) == 0);
    }
    ~Pki() { fs::remove_all(dir); }
    std::string path(const char* f) const { return (dir / f).string(); }
};

const Pki& pki() {
    static Pki p;
    return p;
}

struct Server {
    SSL_CTX* ctx;
    SSL* ssl;
    BIO *in, *out;
    explicit Server(int max_version = 0) {
        ctx = SSL_CTX_new(TLS_server_method());
        REQUIRE(SSL_CTX_use_certificate_file(ctx, pki().path("server.pem").c_str(), SSL_FILETYPE_PEM) == 1);
        REQUIRE(SSL_CTX_use_PrivateKey_file(ctx, pki().path("server.key").c_str(), SSL_FILETYPE_PEM) == 1);
        if (max_version) {
            SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
            SSL_CTX_set_max_proto_version(ctx, max_version);
            SSL_CTX_set_security_level(ctx, 0);
        }
        ssl = SSL_new(ctx);
        in = BIO_new(BIO_s_mem());
        out = BIO_new(BIO_s_mem());
        BIO_set_mem_eof_return(in, -1);
        SSL_set_bio(ssl, in, out);
        SSL_set_accept_state(ssl);
    }
    ~Server() {
        SSL_free(ssl);
        SSL_CTX_free(ctx);
    }
    std::string take() {
        std::string s;
        char buf[4096];
        int n;
        while ((n = BIO_read(out, buf, sizeof buf)) > 0) s.append(buf, n);
        return s;
    }
};

// Runs the handshake by passing bytes both ways; returns the client's final status.
xmpp::Status handshake(tls::Session& client, Server& server) {
    for (int round = 0; round < 10; ++round) {
        auto st = client.advance();
        if (!st) return st;
        std::string c = client.take_ciphertext();
        if (!c.empty()) BIO_write(server.in, c.data(), static_cast<int>(c.size()));
        SSL_do_handshake(server.ssl);
        ERR_clear_error();
        client.receive(server.take());
        if (client.handshake_done()) return client.advance();
    }
    return xmpp::make_error("test", "handshake did not finish");
}

}  // namespace

TEST_CASE("tls: the chain and the host name are verified, then data flows both ways") {
    auto ctx = tls::make_client_context(pki().path("ca.pem"));
    REQUIRE(ctx);
    tls::Session client(ctx.value(), "xmpp.test");
    Server server;
    REQUIRE(client.write("early").ok());  // queued until the handshake is done
    auto st = handshake(client, server);
    REQUIRE(st.ok());
    CHECK(client.handshake_done());
    CHECK(client.description().starts_with("TLSv1."));

    BIO_write(server.in, "", 0);
    std::string c = client.take_ciphertext();
    BIO_write(server.in, c.data(), static_cast<int>(c.size()));
    char buf[64];
    int n = SSL_read(server.ssl, buf, sizeof buf);
    REQUIRE(n == 5);
    CHECK(std::string(buf, 5) == "early");
    REQUIRE(SSL_write(server.ssl, "<hello/>", 8) == 8);
    client.receive(server.take());
    REQUIRE(client.advance().ok());
    CHECK(client.take_plaintext() == "<hello/>");

    SSL_shutdown(server.ssl);
    client.receive(server.take());
    REQUIRE(client.advance().ok());
    CHECK(client.peer_closed());
}

TEST_CASE("tls: an unknown CA is refused with a reason") {
    auto ctx = tls::make_client_context("");
    REQUIRE(ctx);
    tls::Session client(ctx.value(), "xmpp.test");
    Server server;
    auto st = handshake(client, server);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == "tls-verify");
    CHECK(st.error().message.find("local issuer") != std::string::npos);
    CHECK(st.error().message.find("xmpp.test") != std::string::npos);
}

TEST_CASE("tls: a certificate for another name is refused") {
    auto ctx = tls::make_client_context(pki().path("ca.pem"));
    REQUIRE(ctx);
    tls::Session client(ctx.value(), "other.test");
    Server server;
    auto st = handshake(client, server);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == "tls-verify");
    CHECK(st.error().message.find("hostname mismatch") != std::string::npos);
}

TEST_CASE("tls: TLS 1.1 and older are refused") {
    auto ctx = tls::make_client_context(pki().path("ca.pem"));
    REQUIRE(ctx);
    tls::Session client(ctx.value(), "xmpp.test");
    Server server(TLS1_1_VERSION);
    auto st = handshake(client, server);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == "tls");
}

TEST_CASE("tls: a missing ca_file is a clear error") {
    auto ctx = tls::make_client_context("/nonexistent/ca.pem");
    REQUIRE_FALSE(ctx);
    CHECK(ctx.error().message.find("/nonexistent/ca.pem") != std::string::npos);
}
