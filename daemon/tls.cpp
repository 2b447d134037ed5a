#include "daemon/tls.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace tls {
namespace {

std::string openssl_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "unknown TLS error" : out;
}

}  // namespace

xmpp::Result<std::shared_ptr<SSL_CTX>> make_client_context(const std::string& ca_file) {
    std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
    if (!ctx) return xmpp::make_error("tls", openssl_errors());
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1)
        return xmpp::make_error("tls", "cannot load the system trust store: " + openssl_errors());
    if (!ca_file.empty() && SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1)
        return xmpp::make_error("tls", "cannot load ca_file " + ca_file + ": " + openssl_errors());
    return ctx;
}

Session::Session(std::shared_ptr<SSL_CTX> ctx, const std::string& verify_name)
    : ctx_(std::move(ctx)), ssl_(SSL_new(ctx_.get())), verify_name_(verify_name) {
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);  // an empty input BIO means "want more", not EOF
    SSL_set_bio(ssl_.get(), in_, out_);
    SSL_set_connect_state(ssl_.get());
    SSL_set_tlsext_host_name(ssl_.get(), verify_name.c_str());
    SSL_set_hostflags(ssl_.get(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    SSL_set1_host(ssl_.get(), verify_name.c_str());
}

void Session::receive(std::string_view ciphertext) {
    if (!ciphertext.empty()) BIO_write(in_, ciphertext.data(), static_cast<int>(ciphertext.size()));
}

xmpp::Error Session::last_error(std::string_view what) const {
    long verify = SSL_get_verify_result(ssl_.get());
    if (verify != X509_V_OK)
        return xmpp::make_error("tls-verify", std::string(X509_verify_cert_error_string(verify)) +
                                                  " (checking the certificate of " + verify_name_ + ")");
    return xmpp::make_error("tls", std::string(what) + ": " + openssl_errors());
}

xmpp::Status Session::advance() {
    if (!handshake_done_) {
        ERR_clear_error();
        int rc = SSL_do_handshake(ssl_.get());
        if (rc != 1) {
            int err = SSL_get_error(ssl_.get(), rc);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return xmpp::Ok{};
            return last_error("TLS handshake failed");
        }
        handshake_done_ = true;
        if (!pending_.empty()) {
            auto st = write(std::exchange(pending_, {}));
            if (!st) return st;
        }
    }
    char buf[16384];
    for (;;) {
        ERR_clear_error();
        int n = SSL_read(ssl_.get(), buf, sizeof buf);
        if (n > 0) {
            plaintext_.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        int err = SSL_get_error(ssl_.get(), n);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return xmpp::Ok{};
        if (err == SSL_ERROR_ZERO_RETURN) {
            peer_closed_ = true;
            return xmpp::Ok{};
        }
        return last_error("TLS error");
    }
}

xmpp::Status Session::write(std::string_view plaintext) {
    if (plaintext.empty()) return xmpp::Ok{};
    if (!handshake_done_) {
        pending_.append(plaintext);
        return xmpp::Ok{};
    }
    ERR_clear_error();
    // A memory BIO accepts everything, so SSL_write writes all or fails.
    if (SSL_write(ssl_.get(), plaintext.data(), static_cast<int>(plaintext.size())) <= 0)
        return last_error("TLS write failed");
    return xmpp::Ok{};
}

std::string Session::take_ciphertext() {
    std::string out;
    char buf[16384];
    int n;
    while ((n = BIO_read(out_, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    return out;
}

void Session::shutdown() {
    if (handshake_done_) SSL_shutdown(ssl_.get());
}

std::string Session::description() const {
    if (!handshake_done_) return "handshake not done";
    return std::string(SSL_get_version(ssl_.get())) + " " + SSL_get_cipher_name(ssl_.get());
}

}  // namespace tls
