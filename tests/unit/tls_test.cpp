#include <catch2/catch.hpp>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <cstdlib>
#include <filesystem>
#include <cstdio>
#include <string>
#include <vector>

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

tls::SessionOptions named(const char* name) {
    tls::SessionOptions o;
    o.verify_name = name;
    return o;
}

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
    tls::Session client(ctx.value(), named("xmpp.test"));
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
    tls::Session client(ctx.value(), named("xmpp.test"));
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
    tls::Session client(ctx.value(), named("other.test"));
    Server server;
    auto st = handshake(client, server);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == "tls-verify");
    CHECK(st.error().message.find("hostname mismatch") != std::string::npos);
}

TEST_CASE("tls: TLS 1.1 and older are refused") {
    auto ctx = tls::make_client_context(pki().path("ca.pem"));
    REQUIRE(ctx);
    tls::Session client(ctx.value(), named("xmpp.test"));
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

namespace {

// The pin of the test server's key, computed by the openssl CLI (the documented way).
std::string cli_pin() {
    std::string cmd = "openssl x509 -in " + pki().path("server.pem") +
                      " -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | "
                      "openssl base64";
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p);
    char buf[128] = {};
    REQUIRE(fgets(buf, sizeof buf, p));
    pclose(p);
    std::string s(buf);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return "sha256/" + s;
}

tls::Pin server_pin() {
    FILE* f = fopen(pki().path("server.pem").c_str(), "r");
    REQUIRE(f);
    X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
    fclose(f);
    REQUIRE(cert);
    tls::Pin pin = tls::spki_pin(cert);
    X509_free(cert);
    return pin;
}

}  // namespace

TEST_CASE("tls: the pin is the SHA-256 of the SubjectPublicKeyInfo, as openssl prints it") {
    CHECK(tls::pin_text(server_pin()) == cli_pin());
}

TEST_CASE("tls: a matching pin is trust enough, without the CA and for any name") {
    auto ctx = tls::make_client_context("");  // the test CA is not trusted
    REQUIRE(ctx);
    tls::SessionOptions options = named("other.test");
    tls::Pin wrong{};
    options.pins = {wrong, server_pin()};
    tls::Session client(ctx.value(), options);
    Server server;
    REQUIRE(handshake(client, server).ok());
    CHECK(client.handshake_done());
    CHECK(client.peer().pin == cli_pin());
    CHECK_FALSE(client.peer().verify_error.empty());  // the chain alone would not do
}

TEST_CASE("tls: a pin that does not match fails closed and names the presented key") {
    auto ctx = tls::make_client_context(pki().path("ca.pem"));  // even with a valid chain
    REQUIRE(ctx);
    tls::SessionOptions options = named("xmpp.test");
    options.pins = {tls::Pin{}};
    tls::Session client(ctx.value(), options);
    REQUIRE(client.write("<stream>").ok());
    Server server;
    auto st = handshake(client, server);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == "tls-pin");
    CHECK(st.error().message == "the server's key " + cli_pin() + " matches no tls_pin");
    CHECK_FALSE(client.handshake_done());
    // Nothing of ours went out after the handshake: the server reads no application data.
    std::string c = client.take_ciphertext();
    BIO_write(server.in, c.data(), static_cast<int>(c.size()));
    char buf[64];
    CHECK(SSL_read(server.ssl, buf, sizeof buf) <= 0);
}

TEST_CASE("tls: a refused certificate names the presented key; a probe records it and goes on") {
    auto ctx = tls::make_client_context("");
    REQUIRE(ctx);
    {
        tls::Session client(ctx.value(), named("xmpp.test"));
        Server server;
        auto st = handshake(client, server);
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().message.find("the server's key is " + cli_pin()) != std::string::npos);
    }
    tls::SessionOptions options = named("xmpp.test");
    options.probe = true;
    tls::Session probe(ctx.value(), options);
    Server server;
    REQUIRE(handshake(probe, server).ok());
    CHECK(probe.peer().pin == cli_pin());
    CHECK(probe.peer().subject == "CN=xmpp.test");
    CHECK(probe.peer().issuer == "CN=TestCA");
    CHECK(probe.peer().names == std::vector<std::string>{"DNS:xmpp.test"});
    CHECK(probe.peer().verify_error.find("local issuer") != std::string::npos);
}

namespace {

std::string server_exporter(SSL* ssl) {
    static constexpr char label[] = "EXPORTER-Channel-Binding";
    unsigned char out[32];
    REQUIRE(SSL_export_keying_material(ssl, out, sizeof out, label, sizeof label - 1, nullptr, 0, 0) == 1);
    return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

std::string certificate_sha256() {
    FILE* f = fopen(pki().path("server.pem").c_str(), "r");
    REQUIRE(f);
    X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
    fclose(f);
    REQUIRE(cert);
    unsigned char out[32];
    unsigned int n = 0;
    REQUIRE(X509_digest(cert, EVP_sha256(), out, &n) == 1);
    X509_free(cert);
    return std::string(reinterpret_cast<const char*>(out), n);
}

}  // namespace

TEST_CASE("tls: channel bindings of TLS 1.3 are the exporter and the end point, never tls-unique") {
    auto ctx = tls::make_client_context(pki().path("ca.pem"));
    REQUIRE(ctx);
    tls::Session client(ctx.value(), named("xmpp.test"));
    Server server;
    REQUIRE(handshake(client, server).ok());
    auto b = client.channel_bindings();
    CHECK(b.version == "TLSv1.3");
    CHECK(b.tls_exporter.size() == 32);
    CHECK(b.tls_exporter == server_exporter(server.ssl));  // both ends derive the same
    CHECK(b.tls_server_end_point == certificate_sha256());  // ecdsa-with-SHA256 -> SHA-256
    CHECK(b.tls_unique.empty());
}

TEST_CASE("tls: over TLS 1.2, tls-unique is the client's Finished as the server saw it") {
    auto ctx = tls::make_client_context(pki().path("ca.pem"));
    REQUIRE(ctx);
    tls::Session client(ctx.value(), named("xmpp.test"));
    Server server(TLS1_2_VERSION);
    REQUIRE(handshake(client, server).ok());
    auto b = client.channel_bindings();
    CHECK(b.version == "TLSv1.2");
    unsigned char finished[64];
    std::size_t n = SSL_get_peer_finished(server.ssl, finished, sizeof finished);
    REQUIRE(n > 0);
    CHECK(b.tls_unique == std::string(reinterpret_cast<const char*>(finished), n));
    CHECK(b.tls_server_end_point == certificate_sha256());
    // Extended master secret is on by default in OpenSSL 3, so the exporter is defined.
    CHECK(b.tls_exporter == server_exporter(server.ssl));
}

TEST_CASE("tls: a client certificate whose key does not match is refused with both file names") {
    auto ctx = tls::make_client_context("");
    REQUIRE(ctx);
    auto st = tls::use_client_certificate(ctx.value().get(), pki().path("server.pem"), pki().path("ca.key"), "");
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().message.find("does not belong") != std::string::npos);
    CHECK(st.error().message.find("ca.key") != std::string::npos);
    auto missing = tls::use_client_certificate(ctx.value().get(), "/nonexistent.pem", pki().path("server.key"), "");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().message.find("/nonexistent.pem") != std::string::npos);
    auto ok_ctx = tls::make_client_context("");
    REQUIRE(ok_ctx);
    CHECK(tls::use_client_certificate(ok_ctx.value().get(), pki().path("server.pem"), pki().path("server.key"), "").ok());
}
