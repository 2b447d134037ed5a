#pragma once
// TLS client over memory BIOs (OpenSSL 3), in the style of rustls: ciphertext in,
// ciphertext out, plaintext read and written in between; no socket inside.
// The certificate chain is verified against the system store plus an optional extra CA
// file, and the host name against the XMPP domain (RFC 6120 §13.7.2). TLS 1.2 minimum.
// Verification is never switched off. Owned by one connection, loop thread only.
#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

#include "protocol/result.hpp"

namespace tls {

struct SslFree {
    void operator()(SSL* s) const { SSL_free(s); }
};

// A client context: system trust store plus `ca_file` (may be empty).
xmpp::Result<std::shared_ptr<SSL_CTX>> make_client_context(const std::string& ca_file);

class Session {
public:
    // `verify_name` is the name the certificate must carry (the JID's domain); it is also
    // sent as SNI.
    Session(std::shared_ptr<SSL_CTX> ctx, const std::string& verify_name);

    void receive(std::string_view ciphertext);
    // Drives the handshake and decrypts what has arrived. An error is final: a failed
    // certificate check has code "tls-verify" and says why.
    xmpp::Status advance();
    std::string take_plaintext() { return std::exchange(plaintext_, {}); }
    // Queued until the handshake is done.
    xmpp::Status write(std::string_view plaintext);
    std::string take_ciphertext();
    // Sends close_notify.
    void shutdown();

    bool handshake_done() const { return handshake_done_; }
    bool peer_closed() const { return peer_closed_; }
    std::string description() const;  // "TLSv1.3 TLS_AES_256_GCM_SHA384"

private:
    xmpp::Error last_error(std::string_view what) const;

    std::shared_ptr<SSL_CTX> ctx_;
    std::unique_ptr<SSL, SslFree> ssl_;
    BIO* in_ = nullptr;   // owned by ssl_
    BIO* out_ = nullptr;  // owned by ssl_
    std::string verify_name_;
    std::string plaintext_;
    std::string pending_;  // plaintext written before the handshake finished
    bool handshake_done_ = false;
    bool peer_closed_ = false;
};

}  // namespace tls
