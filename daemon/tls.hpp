#pragma once
// TLS client over memory BIOs (OpenSSL 3), in the style of rustls: ciphertext in,
// ciphertext out, plaintext read and written in between; no socket inside.
// The certificate chain is verified against the system store plus an optional extra CA
// file, and the host name against the XMPP domain (RFC 6120 §13.7.2), or the server's key
// against the account's pins. TLS 1.2 minimum. Verification is never switched off: only a
// probe (which carries no credentials) may go on past a failed one. Owned by one connection, loop thread only.
#include <openssl/ssl.h>

#include <array>
#include <memory>
#include <vector>
#include <string>
#include <string_view>

#include "protocol/base/result.hpp"
#include "protocol/sasl.hpp"

namespace tls {

struct SslFree {
    void operator()(SSL* s) const { SSL_free(s); }
};

// A client context: system trust store plus `ca_file` (may be empty).
xmpp::Result<std::shared_ptr<SSL_CTX>> make_client_context(const std::string& ca_file);

// SASL EXTERNAL (XEP-0178): the certificate (chain) and key the context presents. The key
// may be encrypted with `key_password`. Errors name the file and say what is wrong,
// including a key that does not belong to the certificate.
xmpp::Status use_client_certificate(SSL_CTX* ctx, const std::string& cert_file, const std::string& key_file,
                                    const std::string& key_password);

// SHA-256 of a SubjectPublicKeyInfo: what `tls_pin` holds (the form of HPKP and curl).
using Pin = std::array<unsigned char, 32>;
Pin spki_pin(X509* cert);
std::string pin_text(const Pin& pin);  // "sha256/BASE64"

// What the server presented, for logs and `stanzactl pin`.
struct PeerCertificate {
    std::string pin;                  // "sha256/BASE64"; empty when no certificate was seen
    std::string subject, issuer;      // RFC 2253 text
    std::string not_before, not_after;  // "2026-12-04 17:00:00 UTC"
    std::vector<std::string> names;   // subjectAltName entries: "DNS:example.org", "IP:127.0.0.1"
    std::string verify_error;         // why the chain or name did not verify; empty: trusted
};

struct SessionOptions {
    std::string verify_name;          // the JID's domain: checked in the certificate, sent as SNI
    bool alpn_xmpp_client = false;    // XEP-0368 §4: direct TLS offers ALPN "xmpp-client"
    // When not empty, the server's key must match one of these, and that is enough on its
    // own: the pin is the identity, no CA chain or name check is needed (self-signed
    // servers). A mismatch is the error "tls-pin".
    std::vector<Pin> pins;
    // Accept any certificate and only record it (`stanzactl pin`): the connection must
    // never carry credentials. Verification still runs and its verdict is recorded.
    bool probe = false;
};

class Session {
public:
    Session(std::shared_ptr<SSL_CTX> ctx, SessionOptions options);

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
    // The channel-binding data (RFC 9266 tls-exporter, RFC 5929 tls-server-end-point and,
    // under TLS 1.2, tls-unique) of the established session; empty where undefined.
    xmpp::TlsChannel channel_bindings() const;
    // The server's certificate as far as it was seen (also after a failed verification).
    const PeerCertificate& peer() const { return peer_; }

private:
    xmpp::Error last_error(std::string_view what) const;
    static int verify_callback(int ok, X509_STORE_CTX* store);
    xmpp::Status check_pin();

    std::shared_ptr<SSL_CTX> ctx_;
    std::unique_ptr<SSL, SslFree> ssl_;
    BIO* in_ = nullptr;   // owned by ssl_
    BIO* out_ = nullptr;  // owned by ssl_
    SessionOptions options_;
    PeerCertificate peer_;
    std::string plaintext_;
    std::string pending_;  // plaintext written before the handshake finished
    bool handshake_done_ = false;
    bool pin_mismatch_ = false;  // the verify callback refused the server's key
    bool peer_closed_ = false;
};

}  // namespace tls
