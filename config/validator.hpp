#pragma once
// Internal to config/: the keys each table may have, the value parsers (values.cpp), and the
// Validator that walks a parsed document once and collects every problem (config.cpp runs it;
// the [[account]] checks are in validator_account.cpp).
#include <sys/types.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <toml++/toml.h>

#include "config/config.hpp"

namespace config::detail {

constexpr std::size_t max_config_bytes = 1024 * 1024;  // also the bound for certificate and key files

constexpr std::array<std::string_view, 3> root_keys = {"daemon", "irc", "account"};
constexpr std::array<std::string_view, 7> daemon_keys = {"state_dir",     "socket",       "log_level", "history_days",
                                                         "ping_interval", "ping_timeout", "resolver"};
constexpr std::array<std::string_view, 11> irc_keys = {
    "listen",      "password",    "password_command", "server_name", "registration_timeout",
    "max_unregistered", "max_clients", "allow_remote", "tls_cert",    "tls_key", "encrypted_prefix"};
constexpr std::size_t max_server_name = 63;
constexpr std::size_t max_encrypted_prefix = 32;
constexpr std::array<std::string_view, 22> account_keys = {
    "name",           "jid",            "password",    "password_command", "resource",
    "host",           "port",           "tls",         "ca_file",          "client_cert",
    "client_key",     "client_key_password_command",   "sasl",             "channel_binding",
    "proxy",          "proxy_username", "proxy_password", "tls_pin",       "rooms",
    "chat_markers",   "encryption",     "priority"};
constexpr std::array<std::string_view, 2> room_keys = {"jid", "nick"};
constexpr std::array<std::string_view, 3> tls_modes = {"auto", "starttls", "direct"};
constexpr std::array<std::string_view, 2> channel_bindings = {"auto", "required"};
constexpr std::array<std::string_view, 3> encryption_modes = {"auto", "omemo", "off"};
// `sasl`: mechanism families; the daemon picks the hash and -PLUS from what the server offers.
constexpr std::array<std::string_view, 3> sasl_names = {"EXTERNAL", "SCRAM", "PLAIN"};
constexpr std::array<std::string_view, 7> log_levels = {"trace", "debug",    "info", "warn",
                                                        "error", "critical", "off"};

std::string env(const char* name);

// The XDG base directory spec says relative values must be ignored.
std::string xdg_dir(const char* name);

std::string home_dir();

// Restricted Damerau-Levenshtein (optimal string alignment), so that a swapped pair
// of letters ("prot") counts as one typo.
std::size_t edit_distance(std::string_view a, std::string_view b);

template <std::size_t N>
std::optional<std::string_view> closest(std::string_view word,
                                        const std::array<std::string_view, N>& candidates) {
    std::optional<std::string_view> best;
    std::size_t best_distance = 3;  // suggest only within two edits
    for (std::string_view c : candidates) {
        std::size_t dist = edit_distance(word, c);
        // A one-letter key is "two edits" from half the list; that is noise, not a hint.
        if (dist < best_distance && dist < word.size()) {
            best = c;
            best_distance = dist;
        }
    }
    return best;
}

template <std::size_t N>
std::string one_of(const std::array<std::string_view, N>& values) {
    std::string out;
    for (std::size_t i = 0; i < N; ++i) {
        if (i) out += i + 1 == N ? " or " : ", ";
        out += values[i];
    }
    return out;
}

std::string_view type_name(const toml::node& node);

std::optional<std::uint16_t> parse_port(std::string_view s);

// The host of "host:port" / "[v6]:port" is 127.0.0.0/8 or ::1 (RFC 1122 §3.2.1.3,
// RFC 4291 §2.5.3).
bool is_loopback_listen(std::string_view s);

// "host:port" or "[v6]:port"; a bare IPv6 address must be bracketed so that the port
// is not ambiguous.
bool is_host_port(std::string_view s);

bool is_ipv4(std::string_view s);

bool is_ipv6(std::string_view s);

inline char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b);

// RFC 7686: a .onion name resolves only inside Tor.
bool is_onion(std::string_view host);

// `[daemon] resolver`: an IPv4 address or a bracketed IPv6 address, and a port. c-ares
// takes addresses only; a name here would need a resolver to find the resolver.
bool is_resolver_address(std::string_view s);

// RFC 3986 §2.1 percent-decoding; nullopt for a '%' not followed by two hex digits.
std::optional<std::string> percent_decode(std::string_view s);

// RFC 1929 §2: ULEN and PLEN are one byte each, and at least 1.
constexpr std::size_t max_socks_credential = 255;

constexpr std::string_view proxy_schemes_hint =
    "use socks5h:// (the proxy resolves host names: the one for Tor) or socks5:// (host names "
    "are resolved here first)";

// `socks5h://[USER:PASSWORD@]HOST:PORT[/]` or `socks5://...` (RFC 1928, RFC 1929). The
// messages never quote the value: it may hold a password.
xmpp::Result<Proxy> parse_proxy_url(std::string_view url);

// `tls_pin` entries: "sha256/" and the standard base64 (with padding) of a SHA-256 digest
// of a SubjectPublicKeyInfo, as HPKP (RFC 7469 §2.4) and curl's --pinnedpubkey write it.
xmpp::Result<Pin> parse_pin(std::string_view text);

// A small file read whole, and its permission bits.
struct FileText {
    std::string text;
    mode_t mode = 0;
};

// Errors: "cannot-read" (with strerror) and "too-large" (more than max_config_bytes);
// both messages name the file.
xmpp::Result<FileText> read_small_file(const std::string& path);

template <auto Free>
struct OpenSslFree {
    template <class T>
    void operator()(T* p) const { Free(p); }
};

using X509Ptr = std::unique_ptr<X509, OpenSslFree<X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree<EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, OpenSslFree<BIO_free>>;
BioPtr memory_bio(const std::string& text);

// Given to every PEM read: OpenSSL never prompts on the terminal, and we learn that the
// key wanted a passphrase.
int no_passphrase(char*, int, int, void* asked);

// The first certificate of a PEM file (the leaf of a chain, as
// SSL_CTX_use_certificate_chain_file takes it); null when there is none.
X509Ptr first_certificate(const std::string& pem);

struct PrivateKey {
    PkeyPtr key;             // null when the file holds none or it is encrypted
    bool encrypted = false;  // OpenSSL asked for a passphrase
};

PrivateKey private_key(const std::string& pem);

bool has_pem_label(std::string_view text, std::string_view label_end);

// "2026-11-25 12:00:00 UTC"; "an unreadable date" when OpenSSL cannot convert it.
std::string utc_date(const ASN1_TIME* time);

std::string file_mode(mode_t mode);

inline char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

bool is_account_name(std::string_view s);

std::string join_key(std::string_view prefix, std::string_view key);

// One pass over a parsed document. Owns the problem list while it runs; bounded by the
// size of the document (at most a few problems per key).
class Validator {
public:
    // `check_files`: also read client_cert and client_key (load() does; parse() reads nothing).
    explicit Validator(std::string file, bool check_files = false)
        : file_(std::move(file)), check_files_(check_files) {}

    LoadResult run(std::string_view text) {
        toml::table root;
        try {
            root = toml::parse(text, std::string_view(file_));
        } catch (const toml::parse_error& e) {
            // toml++ stops at the first syntax error; there is no tree to validate.
            add(Problem::Severity::Error, e.source(), "", std::string(e.description()));
            return finish(std::nullopt);
        }
        Config cfg;
        cfg.path = file_;
        check_unknown(root, root_keys, "");
        daemon_section(root, cfg.daemon);
        irc_section(root, cfg.irc);
        accounts(root, cfg.accounts);
        return finish(std::move(cfg));
    }

    bool saw_password() const { return saw_password_; }

private:
    void add(Problem::Severity severity, const toml::source_region& where, std::string key,
             std::string message) {
        Problem p;
        p.severity = severity;
        p.file = file_;
        p.line = static_cast<int>(where.begin.line);
        p.column = static_cast<int>(where.begin.column);
        p.key = std::move(key);
        p.message = std::move(message);
        problems_.push_back(std::move(p));
    }
    void error(const toml::node& at, std::string key, std::string message) {
        add(Problem::Severity::Error, at.source(), std::move(key), std::move(message));
    }
    void warning(const toml::node& at, std::string key, std::string message) {
        add(Problem::Severity::Warning, at.source(), std::move(key), std::move(message));
    }
    void error_without_line(std::string key, std::string message) {
        add(Problem::Severity::Error, toml::source_region{}, std::move(key), std::move(message));
    }

    LoadResult finish(std::optional<Config> cfg) {
        // Problems are found table by table (and toml++ tables iterate in key order), but
        // people read them top to bottom.
        std::stable_sort(problems_.begin(), problems_.end(), [](const Problem& a, const Problem& b) {
            return std::pair(a.line, a.column) < std::pair(b.line, b.column);
        });
        LoadResult result;
        bool has_error = std::any_of(problems_.begin(), problems_.end(), [](const Problem& p) {
            return p.severity == Problem::Severity::Error;
        });
        if (!has_error) result.config = std::move(cfg);
        result.problems = std::move(problems_);
        return result;
    }

    template <std::size_t N>
    void check_unknown(const toml::table& table, const std::array<std::string_view, N>& known,
                       std::string_view prefix) {
        for (auto&& [key, value] : table) {
            std::string_view k = key.str();
            if (std::find(known.begin(), known.end(), k) != known.end()) continue;
            std::string message = "unknown key '" + std::string(k) + "'";
            if (auto hint = closest(k, known)) message += "; did you mean '" + std::string(*hint) + "'?";
            add(Problem::Severity::Error, key.source(), join_key(prefix, k), std::move(message));
        }
    }

    // The table under `key`, or null when absent or of the wrong type (reported).
    const toml::table* sub_table(const toml::table& parent, std::string_view key) {
        const toml::node* node = parent.get(key);
        if (!node) return nullptr;
        if (const toml::table* t = node->as_table()) return t;
        error(*node, std::string(key), "expected a table, got " + std::string(type_name(*node)));
        return nullptr;
    }

    // The string under `key`, or nullopt when absent or of the wrong type (reported).
    std::optional<std::string> string_at(const toml::table& table, std::string_view key,
                                         std::string_view prefix, bool allow_empty = false) {
        const toml::node* node = table.get(key);
        if (!node) return std::nullopt;
        const auto* s = node->as_string();
        if (!s) {
            error(*node, join_key(prefix, key), "expected a string, got " + std::string(type_name(*node)));
            return std::nullopt;
        }
        if (!allow_empty && s->get().empty()) {
            error(*node, join_key(prefix, key), "must not be empty");
            return std::nullopt;
        }
        return s->get();
    }

    std::optional<bool> bool_at(const toml::table& table, std::string_view key, std::string_view prefix) {
        const toml::node* node = table.get(key);
        if (!node) return std::nullopt;
        if (const auto* b = node->as_boolean()) return b->get();
        error(*node, join_key(prefix, key), "expected true or false, got " + std::string(type_name(*node)));
        return std::nullopt;
    }

    // `~/` expanded with $HOME; nullopt (reported) when there is no home to expand to.
    std::optional<std::string> path_at(const toml::table& table, std::string_view key,
                                       std::string_view prefix) {
        auto value = string_at(table, key, prefix);
        if (!value) return std::nullopt;
        if (*value != "~" && !value->starts_with("~/")) return value;
        std::string home = home_dir();
        if (home.empty()) {
            error(*table.get(key), join_key(prefix, key), "cannot expand '~': $HOME is not set");
            return std::nullopt;
        }
        return home + value->substr(1);
    }

    template <std::size_t N>
    std::optional<std::string> choice_at(const toml::table& table, std::string_view key,
                                         std::string_view prefix,
                                         const std::array<std::string_view, N>& allowed) {
        auto value = string_at(table, key, prefix, /*allow_empty=*/true);
        if (!value) return std::nullopt;
        if (std::find(allowed.begin(), allowed.end(), *value) != allowed.end()) return value;
        std::string message = "expected " + one_of(allowed) + ", got '" + *value + "'";
        if (auto hint = closest(*value, allowed)) message += "; did you mean '" + std::string(*hint) + "'?";
        error(*table.get(key), join_key(prefix, key), std::move(message));
        return std::nullopt;
    }

    // An integer key within [min, max]; left as it was when absent or bad. `section` is the
    // dotted prefix in messages ("daemon", "irc", "account[1]").
    void integer_at(const toml::table& t, std::string_view key, std::int64_t min, std::int64_t max,
                    std::string_view what, int& out, std::string_view section = "daemon") {
        const toml::node* node = t.get(key);
        if (!node) return;
        const std::string dotted = join_key(section, key);
        const auto* i = node->as_integer();
        if (!i) {
            error(*node, dotted, "expected an integer, got " + std::string(type_name(*node)));
        } else if (i->get() < min || i->get() > max) {
            error(*node, dotted, "expected " + std::string(what) + " between " + std::to_string(min) + " and " +
                                     std::to_string(max) + ", got " + std::to_string(i->get()));
        } else {
            out = static_cast<int>(i->get());
        }
    }

    void daemon_section(const toml::table& root, DaemonSection& out) {
        const toml::table* t = sub_table(root, "daemon");
        if (t) {
            check_unknown(*t, daemon_keys, "daemon");
            if (auto v = path_at(*t, "state_dir", "daemon")) out.state_dir = *v;
            if (auto v = path_at(*t, "socket", "daemon")) out.socket = *v;
            if (auto v = choice_at(*t, "log_level", "daemon", log_levels)) out.log_level = *v;
            integer_at(*t, "history_days", 1, 36500, "a number of days", out.history_days);
            integer_at(*t, "ping_interval", 1, 3600, "a number of seconds", out.ping_interval);
            integer_at(*t, "ping_timeout", 1, 600, "a number of seconds", out.ping_timeout);
            if (auto v = string_at(*t, "resolver", "daemon", /*allow_empty=*/true)) {
                if (v->empty() || is_resolver_address(*v)) {
                    out.resolver = *v;
                } else {
                    error(*t->get("resolver"), "daemon.resolver",
                          "expected an address and port like \"127.0.0.1:53\" or \"[::1]:53\", got '" + *v + "'");
                }
            }
        }
        // Defaults only where the key is absent: a key with a bad value is already an error.
        bool state_dir_given = t && t->contains("state_dir");
        bool socket_given = t && t->contains("socket");
        if (!state_dir_given) {
            if (std::string xdg = xdg_dir("XDG_STATE_HOME"); !xdg.empty()) {
                out.state_dir = xdg + "/stanzad";
            } else if (std::string home = home_dir(); !home.empty()) {
                out.state_dir = home + "/.local/state/stanzad";
            } else {
                error_without_line("daemon.state_dir",
                                   "no default: neither $XDG_STATE_HOME nor $HOME is set");
            }
        }
        if (!socket_given) {
            if (std::string xdg = xdg_dir("XDG_RUNTIME_DIR"); !xdg.empty())
                out.socket = xdg + "/stanzad.sock";
            else if (!out.state_dir.empty())
                out.socket = out.state_dir + "/stanzad.sock";
        }
    }

    // Shared by [irc] and [[account]]: both, or an empty value, are mistakes.
    void password_pair(const toml::table& t, std::string_view prefix,
                       std::optional<std::string>& password,
                       std::optional<std::string>& password_command) {
        if (t.contains("password")) saw_password_ = true;
        password = string_at(t, "password", prefix);
        password_command = string_at(t, "password_command", prefix);
        if (t.contains("password") && t.contains("password_command")) {
            error(*t.get("password_command"), join_key(prefix, "password_command"),
                  "both password and password_command are set; keep one");
        }
    }

    void irc_section(const toml::table& root, IrcSection& out) {
        const toml::table* t = sub_table(root, "irc");
        if (!t) return;
        check_unknown(*t, irc_keys, "irc");
        if (auto listen = string_at(*t, "listen", "irc", /*allow_empty=*/true)) {
            std::string v = *listen;
            bool is_path = v.starts_with("/") || v.starts_with("./") || v.starts_with("~/");
            if (v.starts_with("~/")) {
                if (std::string home = home_dir(); !home.empty()) v = home + v.substr(1);
            }
            if (v.empty() || is_path || is_host_port(v)) {
                out.listen = v;
            } else {
                error(*t->get("listen"), "irc.listen",
                      "expected host:port (like 127.0.0.1:6667) or a Unix socket path, got '" + v + "'");
            }
        }
        password_pair(*t, "irc", out.password, out.password_command);
        server_name(*t, out.server_name);
        encrypted_prefix(*t, out.encrypted_prefix);
        integer_at(*t, "registration_timeout", 1, 3600, "a number of seconds", out.registration_timeout, "irc");
        integer_at(*t, "max_unregistered", 1, 10000, "a number of connections", out.max_unregistered, "irc");
        integer_at(*t, "max_clients", 1, 10000, "a number of clients", out.max_clients, "irc");
        // On TCP anyone on the machine can connect: a password is required. A Unix socket
        // (mode 0600) is its owner's only.
        bool tcp = !out.listen.empty() && out.listen.front() != '/' && out.listen.find('/') == std::string::npos;
        if (tcp && !t->contains("password") && !t->contains("password_command")) {
            error(*t->get("listen"), "irc.listen",
                  "on TCP the IRC listener needs a password: set [irc] password or password_command, or listen on "
                  "a Unix socket path");
        }
        irc_remote(*t, out, tcp);
    }

    // Off loopback the IRC socket is reachable from the network: only when asked for
    // (allow_remote), and only with TLS, since the password would otherwise cross it in clear.
    void irc_remote(const toml::table& t, IrcSection& out, bool tcp) {
        if (auto v = bool_at(t, "allow_remote", "irc")) out.allow_remote = *v;
        if (auto v = path_at(t, "tls_cert", "irc")) out.tls_cert = *v;
        if (auto v = path_at(t, "tls_key", "irc")) out.tls_key = *v;
        if (t.contains("tls_cert") != t.contains("tls_key")) {
            bool cert = t.contains("tls_cert");
            error(*t.get(cert ? "tls_cert" : "tls_key"), cert ? "irc.tls_key" : "irc.tls_cert",
                  cert ? "tls_cert is set but tls_key is not" : "tls_key is set but tls_cert is not");
        }
        if (tcp && !out.allow_remote && !is_loopback_listen(out.listen)) {
            error(*t.get("listen"), "irc.listen",
                  "'" + out.listen + "' is not a loopback address: set allow_remote = true (with tls_cert and tls_key)");
        }
        if (out.allow_remote && (!t.contains("tls_cert") || !t.contains("tls_key"))) {
            error(*t.get("allow_remote"), "irc.allow_remote",
                  "needs tls_cert and tls_key: off loopback the IRC password must not cross the network in clear");
        }
        for (const char* key : {"tls_cert", "tls_key"}) {
            const std::string& path = std::string_view(key) == "tls_cert" ? out.tls_cert : out.tls_key;
            if (!check_files_ || path.empty()) continue;
            if (auto file = read_small_file(path); !file) error(*t.get(key), join_key("irc", key), file.error().message);
        }
    }

    // [irc] server_name: a host name (RFC 1123 letters, digits, '-' and '.'), so that a
    // client never mistakes it for a nick!user@host source (modern-irc "Source").
    void server_name(const toml::table& t, std::string& out) {
        auto name = string_at(t, "server_name", "irc");
        if (!name) return;
        auto host_char = [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
        };
        bool ok = name->size() <= max_server_name && std::all_of(name->begin(), name->end(), host_char) &&
                  name->front() != '-' && name->front() != '.';
        if (!ok) {
            error(*t.get("server_name"), "irc.server_name",
                  "expected a host name (letters, digits, '-' and '.', at most 63 bytes), got '" + *name + "'");
            return;
        }
        out = *name;
    }

    // [irc] encrypted_prefix: text put before each OMEMO-encrypted message; it goes into IRC
    // lines, so no control characters (a CR or LF would end the line), and short.
    void encrypted_prefix(const toml::table& t, std::string& out) {
        auto prefix = string_at(t, "encrypted_prefix", "irc", /*allow_empty=*/true);
        if (!prefix) return;
        bool control = std::any_of(prefix->begin(), prefix->end(), [](char c) {
            auto u = static_cast<unsigned char>(c);
            return u < 0x20 || u == 0x7f;
        });
        if (control || prefix->size() > max_encrypted_prefix) {
            error(*t.get("encrypted_prefix"), "irc.encrypted_prefix",
                  "expected at most 32 bytes of text without control characters (\"\" for none)");
            return;
        }
        out = *prefix;
    }

    void accounts(const toml::table& root, std::vector<Account>& out) {
        const toml::node* node = root.get("account");
        if (!node) {
            add(Problem::Severity::Warning, toml::source_region{}, "",
                "no [[account]]: the daemon will have nothing to do");
            return;
        }
        const toml::array* list = node->as_array();
        if (!list) {
            error(*node, "account",
                  "expected an array of tables ([[account]]), got " + std::string(type_name(*node)));
            return;
        }
        if (list->empty()) {
            warning(*node, "account", "no [[account]]: the daemon will have nothing to do");
            return;
        }
        for (std::size_t i = 0; i < list->size(); ++i) {
            const toml::node& item = *list->get(i);
            std::string prefix = "account[" + std::to_string(i + 1) + "]";
            const toml::table* t = item.as_table();
            if (!t) {
                error(item, prefix, "expected a table, got " + std::string(type_name(item)));
                continue;
            }
            if (auto a = account(*t, prefix)) out.push_back(std::move(*a));
        }
    }

    // Returns the account when its own keys are valid; the caller's Config is dropped
    // anyway if any problem elsewhere is an error.
    std::optional<Account> account(const toml::table& t, const std::string& prefix);
    void account_identity(const toml::table& t, const std::string& prefix, Account& a);
    void account_server(const toml::table& t, const std::string& prefix, Account& a);
    void account_credentials(const toml::table& t, const std::string& prefix, Account& a);
    // `sasl = ["EXTERNAL", "SCRAM"]`: the mechanism families to try, in order. Names are
    // matched without regard to case and stored in upper case; each needs its credentials.
    // `any_cert`: client_cert or client_key is set (half a pair is reported elsewhere).
    void sasl_list(const toml::node& node, const std::string& prefix, Account& a, bool any_cert,
                   bool has_password);
    // XEP-0178: the certificate and key the TLS handshake will present, read now so that
    // --check-config finds an unreadable, malformed or mismatched pair. Nothing is run (an
    // encrypted key's passphrase command waits for the daemon) and no key material is
    // quoted.
    void certificate_files(const toml::table& t, const std::string& prefix, const Account& a);
    // `proxy`, and `proxy_username`/`proxy_password` that override the URL's credentials.
    void proxy_keys(const toml::table& t, const std::string& prefix, Account& a);
    // A SOCKS user name or password: 1..255 bytes (RFC 1929 §2). Never quoted.
    std::optional<std::string> socks_credential_at(const toml::table& t, std::string_view key,
                                                   const std::string& prefix);
    // RFC 7686: a .onion name is reachable only through Tor, and looking it up in the
    // ordinary DNS fails and tells the DNS server where we are going.
    void onion_checks(const toml::table& t, const std::string& prefix, const Account& a);
    void tls_pins(const toml::node& node, const std::string& prefix, Account& a);
    void rooms(const toml::node& node, const std::string& prefix, Account& a);

    std::size_t error_count() const {
        return static_cast<std::size_t>(std::count_if(problems_.begin(), problems_.end(), [](const Problem& p) {
            return p.severity == Problem::Severity::Error;
        }));
    }

    std::string file_;
    bool check_files_ = false;
    std::vector<Problem> problems_;
    std::vector<std::pair<std::string, int>> seen_names_;  // account name, line
    bool saw_password_ = false;
};

}  // namespace config::detail
