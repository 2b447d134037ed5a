#include "daemon/tls.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <string>

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

int session_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

std::string name_text(const X509_NAME* name) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

std::string time_text(const ASN1_TIME* t) {
    tm parsed{};
    if (!t || ASN1_TIME_to_tm(t, &parsed) != 1) return "?";
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &parsed);
    return buf;
}

std::vector<std::string> alt_names(X509* cert) {
    std::vector<std::string> out;
    auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    if (!names) return out;
    for (int i = 0; i < sk_GENERAL_NAME_num(names) && out.size() < 32; ++i) {
        const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
        if (n->type == GEN_DNS) {
            const ASN1_STRING* s = n->d.dNSName;
            out.push_back("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                               static_cast<std::size_t>(ASN1_STRING_length(s))));
        } else if (n->type == GEN_IPADD) {
            const ASN1_OCTET_STRING* ip = n->d.iPAddress;
            char buf[INET6_ADDRSTRLEN] = "?";
            int len = ASN1_STRING_length(ip);
            if (len == 4 || len == 16) inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(ip), buf, sizeof buf);
            out.push_back(std::string("IP:") + buf);
        } else if (n->type == GEN_OTHERNAME) {
            out.push_back("othername");  // e.g. XEP-0178/RFC 6120 xmppAddr
        }
    }
    GENERAL_NAMES_free(names);
    return out;
}

PeerCertificate describe(X509* cert) {
    PeerCertificate p;
    p.pin = pin_text(spki_pin(cert));
    p.subject = name_text(X509_get_subject_name(cert));
    p.issuer = name_text(X509_get_issuer_name(cert));
    p.not_before = time_text(X509_get0_notBefore(cert));
    p.not_after = time_text(X509_get0_notAfter(cert));
    p.names = alt_names(cert);
    return p;
}

}  // namespace

Pin spki_pin(X509* cert) {
    Pin out{};
    unsigned char* der = nullptr;
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    if (len > 0) SHA256(der, static_cast<std::size_t>(len), out.data());
    OPENSSL_free(der);
    return out;
}

std::string pin_text(const Pin& pin) {
    unsigned char b64[64];
    int n = EVP_EncodeBlock(b64, pin.data(), static_cast<int>(pin.size()));
    return "sha256/" + std::string(reinterpret_cast<const char*>(b64), static_cast<std::size_t>(n));
}

namespace {

// Whether `dir` holds OpenSSL's hash links ("<8 hex digits>.<n>", as c_rehash and Debian's
// update-ca-certificates make them), through which a CA is found by its subject's hash.
bool has_hash_links(const std::string& dir) {
    struct Close {
        void operator()(DIR* d) const { ::closedir(d); }
    };
    std::unique_ptr<DIR, Close> d(::opendir(dir.c_str()));
    if (!d) return false;
    while (const dirent* e = ::readdir(d.get())) {
        std::string_view name = e->d_name;
        if (name.size() >= 10 && name[8] == '.' &&
            std::all_of(name.begin(), name.begin() + 8, [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }))
            return true;
    }
    return false;
}

// The system's CAs. X509_STORE_set_default_paths parses the whole bundle file (cert.pem: 144
// CAs on Debian 12, 1 MiB of memory and about 50 ms of the loop at start-up, docs/
// performance.md) besides adding the hashed directory. The directory alone costs nothing
// until a chain is verified: a CA is then read by its subject's hash, and only the few a
// server's chain names are. So the directory alone when it has hash links (Debian's
// /etc/ssl/certs always does) and SSL_CERT_FILE does not name a bundle; OpenSSL's way
// otherwise. SSL_CERT_DIR is honoured either way, as OpenSSL does.
bool load_system_store(X509_STORE* store) {
    const char* dir_env = std::getenv(X509_get_default_cert_dir_env());
    const std::string dir = dir_env && *dir_env ? dir_env : X509_get_default_cert_dir();
    const char* file_env = std::getenv(X509_get_default_cert_file_env());
    if ((file_env && *file_env) || dir.find(':') != std::string::npos || !has_hash_links(dir))
        return X509_STORE_set_default_paths(store) == 1;
    return X509_STORE_load_path(store, dir.c_str()) == 1;
}

// The trust stores, made once and shared by every connection that uses them (every
// account and every reconnection used to make its own). A ca_file is parsed again when it
// changes (size or modification time).
xmpp::Result<X509_STORE*> trust_store(const std::string& ca_file) {
    struct Kept {
        std::string version;  // of the ca_file: "size:mtime"
        std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store{nullptr, X509_STORE_free};
    };
    static std::map<std::string, Kept> kept;  // by ca_file ("" : the system store alone)
    std::string version;
    if (struct stat st {}; !ca_file.empty() && ::stat(ca_file.c_str(), &st) == 0)
        version = std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
                  std::to_string(st.st_mtim.tv_nsec);
    if (auto it = kept.find(ca_file); it != kept.end() && it->second.version == version) return it->second.store.get();
    Kept fresh{version};
    fresh.store.reset(X509_STORE_new());
    if (!fresh.store) return xmpp::make_error("tls", openssl_errors());
    if (!load_system_store(fresh.store.get()))
        return xmpp::make_error("tls", "cannot load the system trust store: " + openssl_errors());
    if (!ca_file.empty() && X509_STORE_load_file(fresh.store.get(), ca_file.c_str()) != 1)
        return xmpp::make_error("tls", "cannot load ca_file " + ca_file + ": " + openssl_errors());
    X509_STORE* store = fresh.store.get();
    kept[ca_file] = std::move(fresh);  // contexts made from an older one keep their reference
    return store;
}

}  // namespace

xmpp::Result<std::shared_ptr<SSL_CTX>> make_client_context(const std::string& ca_file) {
    std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
    if (!ctx) return xmpp::make_error("tls", openssl_errors());
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    // An idle connection keeps no record buffers (about 34 KiB each: one read, one write
    // buffer of a full TLS record); they are allocated again for the next record. Most
    // accounts are idle most of the time (issue 15: memory per further account).
    SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
    auto store = trust_store(ca_file);
    if (!store) return store.error();
    SSL_CTX_set1_cert_store(ctx.get(), store.value());
    return ctx;
}

xmpp::Status use_client_certificate(SSL_CTX* ctx, const std::string& cert_file, const std::string& key_file,
                                    const std::string& key_password) {
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1)
        return xmpp::make_error("tls-cert", "cannot use client_cert " + cert_file + ": " + openssl_errors());
    // The passphrase goes to OpenSSL through its callback and nowhere else.
    std::string password = key_password;
    SSL_CTX_set_default_passwd_cb_userdata(ctx, &password);
    SSL_CTX_set_default_passwd_cb(ctx, [](char* buf, int size, int, void* data) {
        const auto* pw = static_cast<const std::string*>(data);
        int n = static_cast<int>(std::min<std::size_t>(pw->size(), static_cast<std::size_t>(size)));
        std::memcpy(buf, pw->data(), static_cast<std::size_t>(n));
        return n;
    });
    int rc = SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM);
    unsigned long last = ERR_peek_last_error();
    bool mismatch = ERR_GET_LIB(last) == ERR_LIB_X509 && ERR_GET_REASON(last) == X509_R_KEY_VALUES_MISMATCH;
    SSL_CTX_set_default_passwd_cb(ctx, nullptr);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, nullptr);
    OPENSSL_cleanse(password.data(), password.size());
    if (rc != 1 && mismatch) {
        ERR_clear_error();
        return xmpp::make_error("tls-cert", "client_key " + key_file + " does not belong to client_cert " + cert_file);
    }
    if (rc != 1)
        return xmpp::make_error("tls-cert", "cannot use client_key " + key_file + ": " + openssl_errors() +
                                                (key_password.empty() ? " (is it encrypted? set client_key_password_command)"
                                                                      : ""));
    if (SSL_CTX_check_private_key(ctx) != 1)
        return xmpp::make_error("tls-cert", "client_key " + key_file + " does not belong to client_cert " + cert_file);
    return xmpp::Ok{};
}

Session::Session(std::shared_ptr<SSL_CTX> ctx, SessionOptions options)
    : ctx_(std::move(ctx)), ssl_(SSL_new(ctx_.get())), options_(std::move(options)) {
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);  // an empty input BIO means "want more", not EOF
    SSL_set_bio(ssl_.get(), in_, out_);
    SSL_set_connect_state(ssl_.get());
    SSL_set_ex_data(ssl_.get(), session_index(), this);
    SSL_set_verify(ssl_.get(), SSL_VERIFY_PEER, verify_callback);
    // RFC 6120 §13.7.2.1, XEP-0368 §4: SNI and the certificate name are the JID's domain,
    // never the host we connect to.
    SSL_set_tlsext_host_name(ssl_.get(), options_.verify_name.c_str());
    SSL_set_hostflags(ssl_.get(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    SSL_set1_host(ssl_.get(), options_.verify_name.c_str());
    if (options_.alpn_xmpp_client) {
        static const unsigned char alpn[] = "\x0bxmpp-client";
        SSL_set_alpn_protos(ssl_.get(), alpn, sizeof alpn - 1);
    }
}

// Records the server's certificate and the first verification error. Without pins (and
// outside a probe) OpenSSL's verdict stands; with pins the server's key is the verdict,
// checked here, while the server's certificate is processed: a wrong key ends the
// handshake before we present a client certificate or send anything else.
int Session::verify_callback(int ok, X509_STORE_CTX* store) {
    auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    auto* self = ssl ? static_cast<Session*>(SSL_get_ex_data(ssl, session_index())) : nullptr;
    if (!self) return ok;
    if (self->peer_.pin.empty()) {
        if (X509* leaf = X509_STORE_CTX_get0_cert(store)) self->peer_ = describe(leaf);
    }
    if (!ok && self->peer_.verify_error.empty())
        self->peer_.verify_error = X509_verify_cert_error_string(X509_STORE_CTX_get_error(store));
    if (self->options_.probe) return 1;
    if (self->options_.pins.empty()) return ok;
    X509* leaf = X509_STORE_CTX_get0_cert(store);
    bool match = leaf && std::find(self->options_.pins.begin(), self->options_.pins.end(), spki_pin(leaf)) !=
                             self->options_.pins.end();
    if (!match) self->pin_mismatch_ = true;
    return match ? 1 : 0;
}

xmpp::Status Session::check_pin() {
    X509* cert = SSL_get0_peer_certificate(ssl_.get());
    if (!cert) return xmpp::make_error("tls-pin", "the server presented no certificate");
    std::string presented = pin_text(spki_pin(cert));
    for (const auto& pin : options_.pins)
        if (pin == spki_pin(cert)) return xmpp::Ok{};
    return xmpp::make_error("tls-pin", "the server's key " + presented + " matches no tls_pin");
}

void Session::receive(std::string_view ciphertext) {
    if (!ciphertext.empty()) BIO_write(in_, ciphertext.data(), static_cast<int>(ciphertext.size()));
}

xmpp::Error Session::last_error(std::string_view what) const {
    if (pin_mismatch_)
        return xmpp::make_error("tls-pin", "the server's key " + peer_.pin + " matches no tls_pin");
    long verify = SSL_get_verify_result(ssl_.get());
    if (verify != X509_V_OK && options_.pins.empty() && !options_.probe) {
        std::string message = std::string(X509_verify_cert_error_string(verify)) + " (checking the certificate of " +
                              options_.verify_name + ")";
        if (!peer_.pin.empty()) message += "; the server's key is " + peer_.pin;
        return xmpp::make_error("tls-verify", message);
    }
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
        if (X509* cert = SSL_get0_peer_certificate(ssl_.get())) {
            std::string error = peer_.verify_error;
            peer_ = describe(cert);
            peer_.verify_error = error;
        }
        if (!options_.pins.empty() && !options_.probe) {
            if (auto st = check_pin(); !st) return st;
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

xmpp::TlsChannel Session::channel_bindings() const {
    xmpp::TlsChannel b;
    if (!handshake_done_) return b;
    SSL* ssl = ssl_.get();
    b.version = SSL_get_version(ssl);
    bool tls13 = SSL_version(ssl) >= TLS1_3_VERSION;
    // RFC 9266 §2: 32 bytes of exporter output, label "EXPORTER-Channel-Binding", no
    // context; over TLS 1.2 only with the extended master secret (RFC 7627).
    if (tls13 || SSL_get_extms_support(ssl) == 1) {
        static constexpr char label[] = "EXPORTER-Channel-Binding";
        unsigned char out[32];
        if (SSL_export_keying_material(ssl, out, sizeof out, label, sizeof label - 1, nullptr, 0, 0) == 1)
            b.tls_exporter.assign(reinterpret_cast<const char*>(out), sizeof out);
    }
    // RFC 5929 §4.1: the hash of the server's certificate, with the hash of its signature
    // algorithm, SHA-256 in place of MD5 and SHA-1; undefined without a single hash.
    if (X509* cert = SSL_get0_peer_certificate(ssl)) {
        int md_nid = NID_undef;
        if (X509_get_signature_info(cert, &md_nid, nullptr, nullptr, nullptr) == 1 && md_nid != NID_undef) {
            if (md_nid == NID_md5 || md_nid == NID_sha1) md_nid = NID_sha256;
            if (const EVP_MD* md = EVP_get_digestbynid(md_nid)) {
                unsigned char out[EVP_MAX_MD_SIZE];
                unsigned int n = 0;
                if (X509_digest(cert, md, out, &n) == 1) b.tls_server_end_point.assign(reinterpret_cast<const char*>(out), n);
            }
        }
    }
    // RFC 5929 §3.1: the first Finished message of the handshake; not defined for TLS 1.3.
    if (!tls13) {
        unsigned char out[EVP_MAX_MD_SIZE];
        std::size_t n = SSL_session_reused(ssl) ? SSL_get_peer_finished(ssl, out, sizeof out)
                                                : SSL_get_finished(ssl, out, sizeof out);
        if (n > 0 && n <= sizeof out) b.tls_unique.assign(reinterpret_cast<const char*>(out), n);
    }
    return b;
}

std::string Session::description() const {
    if (!handshake_done_) return "handshake not done";
    return std::string(SSL_get_version(ssl_.get())) + " " + SSL_get_cipher_name(ssl_.get());
}

}  // namespace tls
