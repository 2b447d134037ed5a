#pragma once
// TLS for the IRC socket ([irc] tls_cert / tls_key), server side: OpenSSL over memory
// BIOs, like daemon/tls.hpp on the client side. The listener feeds it what it reads and
// writes what it gives back; the IRC session sees plaintext only. TLS 1.2 at least.
// Loop thread only. Memory: OpenSSL's records in flight, plus the plaintext written
// before the handshake ends (bounded by what the listener lets a session write).
#include <memory>
#include <string>
#include <string_view>

#include "protocol/base/result.hpp"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct bio_st BIO;

namespace stanzad {

// The certificate (chain) and key of the listener, loaded once.
class IrcTlsContext {
public:
    static xmpp::Result<std::shared_ptr<IrcTlsContext>> load(const std::string& cert_file, const std::string& key_file);
    ~IrcTlsContext();
    SSL_CTX* get() const { return ctx_; }

private:
    explicit IrcTlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
    SSL_CTX* ctx_;
};

// One client's TLS session.
class IrcTlsSession {
public:
    explicit IrcTlsSession(const IrcTlsContext& context);
    ~IrcTlsSession();
    IrcTlsSession(const IrcTlsSession&) = delete;
    IrcTlsSession& operator=(const IrcTlsSession&) = delete;

    // Ciphertext from the socket; the plaintext it held is appended to `plain`. An error
    // (the handshake failed, a bad record) ends the connection.
    xmpp::Status feed(std::string_view cipher, std::string& plain);
    // Plaintext to send: encrypted once the handshake is done, kept until then.
    void write(std::string_view plain);
    // Ciphertext for the socket (handshake messages and records).
    std::string take_output();

private:
    void write_pending();
    SSL* ssl_;
    BIO* in_;
    BIO* out_;
    std::string pending_;
};

}  // namespace stanzad
