#include "daemon/irc_tls.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <climits>

namespace stanzad {
namespace {

std::string openssl_error() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "unknown error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

}  // namespace

xmpp::Result<std::shared_ptr<IrcTlsContext>> IrcTlsContext::load(const std::string& cert_file,
                                                                 const std::string& key_file) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return xmpp::make_error("irc-tls", "cannot make a TLS context: " + openssl_error());
    std::shared_ptr<IrcTlsContext> context(new IrcTlsContext(ctx));
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1)
        return xmpp::make_error("irc-tls", "[irc] tls_cert " + cert_file + ": " + openssl_error());
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        return xmpp::make_error("irc-tls", "[irc] tls_key " + key_file + ": " + openssl_error());
    if (SSL_CTX_check_private_key(ctx) != 1)
        return xmpp::make_error("irc-tls", "[irc] tls_key " + key_file + " is not the key of tls_cert " + cert_file);
    return context;
}

IrcTlsContext::~IrcTlsContext() { SSL_CTX_free(ctx_); }

IrcTlsSession::IrcTlsSession(const IrcTlsContext& context) : ssl_(SSL_new(context.get())) {
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_, in_, out_);  // ssl_ owns both
    SSL_set_accept_state(ssl_);
}

IrcTlsSession::~IrcTlsSession() { SSL_free(ssl_); }

xmpp::Status IrcTlsSession::feed(std::string_view cipher, std::string& plain) {
    if (!cipher.empty() && BIO_write(in_, cipher.data(), static_cast<int>(cipher.size())) <= 0)
        return xmpp::make_error("irc-tls", "cannot buffer TLS input");
    char buf[16384];
    for (;;) {
        int n = SSL_read(ssl_, buf, sizeof buf);  // also drives the handshake
        if (n > 0) {
            plain.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        int err = SSL_get_error(ssl_, n);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_ZERO_RETURN) break;
        return xmpp::make_error("irc-tls", "TLS failed: " + openssl_error());
    }
    write_pending();
    return xmpp::Ok{};
}

void IrcTlsSession::write(std::string_view plain) {
    pending_.append(plain);
    write_pending();
}

void IrcTlsSession::write_pending() {
    if (!SSL_is_init_finished(ssl_)) return;
    while (!pending_.empty()) {
        int n = SSL_write(ssl_, pending_.data(), static_cast<int>(std::min<std::size_t>(pending_.size(), INT_MAX)));
        if (n <= 0) break;
        pending_.erase(0, static_cast<std::size_t>(n));
    }
}

std::string IrcTlsSession::take_output() {
    std::string out;
    char buf[16384];
    for (int n; (n = BIO_read(out_, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    return out;
}

}  // namespace stanzad
