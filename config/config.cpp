// The TOML configuration (DESIGN.md, "Config (TOML)"): toml++ parses, a Validator walks
// the tree once and collects every problem instead of stopping at the first, so that a
// user fixes a file in one round trip. Runs at startup, before the loop exists.
#include "config/config.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <initializer_list>
#include <memory>
#include <utility>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <toml++/toml.h>

#include "protocol/base/base64.hpp"

namespace config {
namespace {

constexpr std::size_t max_config_bytes = 1024 * 1024;  // also the bound for certificate and key files

constexpr std::array<std::string_view, 3> root_keys = {"daemon", "irc", "account"};
constexpr std::array<std::string_view, 7> daemon_keys = {"state_dir",     "socket",       "log_level", "history_days",
                                                         "ping_interval", "ping_timeout", "resolver"};
constexpr std::array<std::string_view, 10> irc_keys = {
    "listen",      "password",    "password_command", "server_name", "registration_timeout",
    "max_unregistered", "max_clients", "allow_remote", "tls_cert",    "tls_key"};
constexpr std::size_t max_server_name = 63;
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

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

// The XDG base directory spec says relative values must be ignored.
std::string xdg_dir(const char* name) {
    std::string v = env(name);
    return (!v.empty() && v.front() == '/') ? v : std::string();
}

std::string home_dir() {
    std::string home = env("HOME");
    if (!home.empty()) return home;
    // A daemon started by a service manager may have no $HOME.
    if (const passwd* pw = getpwuid(getuid()); pw && pw->pw_dir) return pw->pw_dir;
    return {};
}

// Restricted Damerau-Levenshtein (optimal string alignment), so that a swapped pair
// of letters ("prot") counts as one typo.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[a.size()][b.size()];
}

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

std::string_view type_name(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::table: return "a table";
        case toml::node_type::array: return "an array";
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a floating-point number";
        case toml::node_type::boolean: return "a boolean";
        case toml::node_type::date: return "a date";
        case toml::node_type::time: return "a time";
        case toml::node_type::date_time: return "a date-time";
        case toml::node_type::none: break;
    }
    return "nothing";
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
    if (s.empty() || s.size() > 5) return std::nullopt;
    unsigned value = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value < 1 || value > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

// The host of "host:port" / "[v6]:port" is 127.0.0.0/8 or ::1 (RFC 1122 §3.2.1.3,
// RFC 4291 §2.5.3).
bool is_loopback_listen(std::string_view s) {
    std::string_view host = s.substr(0, s.rfind(':'));
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    return host.starts_with("127.") || host == "::1" || host == "localhost";
}

// "host:port" or "[v6]:port"; a bare IPv6 address must be bracketed so that the port
// is not ambiguous.
bool is_host_port(std::string_view s) {
    std::string_view host, port;
    if (!s.empty() && s.front() == '[') {
        auto close = s.find(']');
        if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
            return false;
        host = s.substr(1, close - 1);
        port = s.substr(close + 2);
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string_view::npos) return false;
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) return false;
    }
    if (host.empty() || host.find_first_of(" \t/@") != std::string_view::npos) return false;
    return parse_port(port).has_value();
}

bool is_ipv4(std::string_view s) {
    in_addr a{};
    return ::inet_pton(AF_INET, std::string(s).c_str(), &a) == 1;
}

bool is_ipv6(std::string_view s) {
    in6_addr a{};
    return ::inet_pton(AF_INET6, std::string(s).c_str(), &a) == 1;
}

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

// RFC 7686: a .onion name resolves only inside Tor.
bool is_onion(std::string_view host) {
    if (host.ends_with('.')) host.remove_suffix(1);
    constexpr std::string_view suffix = ".onion";
    return host.size() > suffix.size() && iequals(host.substr(host.size() - suffix.size()), suffix);
}

// `[daemon] resolver`: an IPv4 address or a bracketed IPv6 address, and a port. c-ares
// takes addresses only; a name here would need a resolver to find the resolver.
bool is_resolver_address(std::string_view s) {
    std::string_view host, port;
    bool v6 = !s.empty() && s.front() == '[';
    if (v6) {
        auto close = s.find(']');
        if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
        host = s.substr(1, close - 1);
        port = s.substr(close + 2);
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string_view::npos) return false;
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
    }
    return (v6 ? is_ipv6(host) : is_ipv4(host)) && parse_port(port).has_value();
}

// RFC 3986 §2.1 percent-decoding; nullopt for a '%' not followed by two hex digits.
std::optional<std::string> percent_decode(std::string_view s) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        c = ascii_lower(c);
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size()) return std::nullopt;
        int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

// RFC 1929 §2: ULEN and PLEN are one byte each, and at least 1.
constexpr std::size_t max_socks_credential = 255;

constexpr std::string_view proxy_schemes_hint =
    "use socks5h:// (the proxy resolves host names: the one for Tor) or socks5:// (host names "
    "are resolved here first)";

// `socks5h://[USER:PASSWORD@]HOST:PORT[/]` or `socks5://...` (RFC 1928, RFC 1929). The
// messages never quote the value: it may hold a password.
xmpp::Result<Proxy> parse_proxy_url(std::string_view url) {
    auto fail = [](std::string message) { return xmpp::make_error("proxy", std::move(message)); };
    const std::string like = "like socks5h://127.0.0.1:9050";
    Proxy proxy;

    auto sep = url.find("://");
    if (sep == std::string_view::npos)
        return fail("expected a URL " + like + "; " + std::string(proxy_schemes_hint));
    std::string_view scheme = url.substr(0, sep);
    if (iequals(scheme, "socks5h")) {
        proxy.remote_dns = true;
    } else if (iequals(scheme, "socks5")) {
        proxy.remote_dns = false;
    } else {
        // A scheme is letters, digits, '+', '-', '.' (RFC 3986 §3.1): safe to quote.
        bool quotable = !scheme.empty() && scheme.size() <= 16 &&
                        std::all_of(scheme.begin(), scheme.end(), [](char c) {
                            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                                   c == '+' || c == '-' || c == '.';
                        });
        std::string what = quotable ? "unsupported scheme '" + std::string(scheme) + "'" : "unsupported scheme";
        return fail(what + ": " + std::string(proxy_schemes_hint));
    }
    std::string_view rest = url.substr(sep + 3);

    // The last '@' ends the credentials: a host and port never contain one.
    if (auto at = rest.rfind('@'); at != std::string_view::npos) {
        std::string_view userinfo = rest.substr(0, at);
        rest.remove_prefix(at + 1);
        auto colon = userinfo.find(':');
        if (colon == std::string_view::npos)
            return fail("credentials in the URL need a user name and a password (USER:PASSWORD@)");
        auto user = percent_decode(userinfo.substr(0, colon));
        auto pass = percent_decode(userinfo.substr(colon + 1));
        if (!user || !pass)
            return fail("bad percent-escape in the credentials: '%' must be followed by two hex digits");
        if (user->empty() || pass->empty() || user->size() > max_socks_credential ||
            pass->size() > max_socks_credential)
            return fail("the user name and the password in the URL must be 1 to 255 bytes each (RFC 1929)");
        proxy.username = std::move(*user);
        proxy.password = std::move(*pass);
    }

    if (rest.ends_with('/')) rest.remove_suffix(1);
    if (rest.find_first_of("/?#") != std::string_view::npos)
        return fail("expected nothing after HOST:PORT, " + like);
    if (rest.empty()) return fail("no host: expected HOST:PORT after the scheme, " + like);

    std::string_view host, port;
    if (rest.front() == '[') {
        auto close = rest.find(']');
        if (close == std::string_view::npos)
            return fail("an IPv6 address in brackets needs its closing ']', like socks5h://[::1]:9050");
        host = rest.substr(1, close - 1);
        if (host.empty()) return fail("empty host: expected HOST:PORT after the scheme, " + like);
        if (!is_ipv6(host)) return fail("the address in brackets is not an IPv6 address");
        std::string_view after = rest.substr(close + 1);
        if (after.empty() || after == ":")
            return fail("no port: expected HOST:PORT, like socks5h://[::1]:9050 (Tor's SocksPort is 9050)");
        if (after.front() != ':') return fail("expected ':PORT' after the ']', like socks5h://[::1]:9050");
        port = after.substr(1);
    } else {
        auto colon = rest.rfind(':');
        if (colon == std::string_view::npos || colon + 1 == rest.size())
            return fail("no port: expected HOST:PORT, " + like + " (Tor's SocksPort is 9050)");
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            return fail("an IPv6 address goes in brackets, like socks5h://[::1]:9050");
        if (host.empty()) return fail("empty host: expected HOST:PORT after the scheme, " + like);
        bool clean = std::all_of(host.begin(), host.end(), [](char c) {
            return static_cast<unsigned char>(c) > 0x20 && c != 0x7f && c != '%' && c != '\\' && c != '[' &&
                   c != ']';
        });
        if (!clean || host.size() > 253) return fail("the proxy host is not a host name or an address");
    }
    auto number = parse_port(port);
    if (!number) return fail("bad port: expected a number between 1 and 65535, " + like);
    proxy.host = std::string(host);
    proxy.port = *number;
    return proxy;
}

// `tls_pin` entries: "sha256/" and the standard base64 (with padding) of a SHA-256 digest
// of a SubjectPublicKeyInfo, as HPKP (RFC 7469 §2.4) and curl's --pinnedpubkey write it.
xmpp::Result<Pin> parse_pin(std::string_view text) {
    auto fail = [](std::string message) { return xmpp::make_error("pin", std::move(message)); };
    constexpr std::string_view prefix = "sha256/";
    if (!text.starts_with(prefix)) return fail("it does not start with \"sha256/\"");
    std::string_view b64 = text.substr(prefix.size());
    // "sha256//..." is a valid pin when the base64 starts with '/' (1 key in 64); only
    // when it is not does the second slash come from curl's form.
    if (b64.starts_with('/') && b64.size() != 44)
        return fail("it has two slashes (curl's --pinnedpubkey writes \"sha256//\"); here it is one");
    bool hex = b64.size() == 64 && std::all_of(b64.begin(), b64.end(), [](char c) {
                   return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
               });
    if (hex)
        return fail("that is a hex digest; the pin is its base64 (openssl dgst -sha256 -binary | openssl base64)");
    auto bytes = xmpp::base64_decode(b64);
    if (!bytes) return fail("not valid base64: " + bytes.error().message);
    if (bytes.value().size() != Pin().size())
        return fail("it decodes to " + std::to_string(bytes.value().size()) + " bytes, not 32");
    Pin pin;
    std::memcpy(pin.data(), bytes.value().data(), pin.size());
    return pin;
}

// A small file read whole, and its permission bits.
struct FileText {
    std::string text;
    mode_t mode = 0;
};

// Errors: "cannot-read" (with strerror) and "too-large" (more than max_config_bytes);
// both messages name the file.
xmpp::Result<FileText> read_small_file(const std::string& path) {
    auto fail = [&](int e) { return xmpp::make_error("cannot-read", "cannot read " + path + ": " + std::strerror(e)); };
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        return fail(e);
    }
    FileText file;
    file.mode = st.st_mode;
    // One allocation for the usual case, so that a key leaves no copies in freed memory.
    if (st.st_size > 0)
        file.text.reserve(std::min(static_cast<std::size_t>(st.st_size), max_config_bytes) + 1);
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            ::close(fd);
            OPENSSL_cleanse(buf, sizeof buf);
            return fail(e);
        }
        if (n == 0) break;
        if (file.text.size() + static_cast<std::size_t>(n) > max_config_bytes) {
            ::close(fd);
            OPENSSL_cleanse(buf, sizeof buf);
            OPENSSL_cleanse(file.text.data(), file.text.size());
            return xmpp::make_error("too-large", path + " is larger than 1 MiB");
        }
        file.text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    OPENSSL_cleanse(buf, sizeof buf);
    return file;
}

template <auto Free>
struct OpenSslFree {
    template <class T>
    void operator()(T* p) const { Free(p); }
};
using X509Ptr = std::unique_ptr<X509, OpenSslFree<X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree<EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, OpenSslFree<BIO_free>>;

BioPtr memory_bio(const std::string& text) {
    return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Given to every PEM read: OpenSSL never prompts on the terminal, and we learn that the
// key wanted a passphrase.
int no_passphrase(char*, int, int, void* asked) {
    *static_cast<bool*>(asked) = true;
    return 0;
}

// The first certificate of a PEM file (the leaf of a chain, as
// SSL_CTX_use_certificate_chain_file takes it); null when there is none.
X509Ptr first_certificate(const std::string& pem) {
    BioPtr bio = memory_bio(pem);
    bool asked = false;
    X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, &asked) : nullptr);
    ERR_clear_error();
    return cert;
}

struct PrivateKey {
    PkeyPtr key;             // null when the file holds none or it is encrypted
    bool encrypted = false;  // OpenSSL asked for a passphrase
};

PrivateKey private_key(const std::string& pem) {
    PrivateKey out;
    BioPtr bio = memory_bio(pem);
    if (bio) out.key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, &out.encrypted));
    ERR_clear_error();
    if (out.encrypted) out.key.reset();
    return out;
}

bool has_pem_label(std::string_view text, std::string_view label_end) {
    for (std::size_t at = text.find("-----BEGIN "); at != std::string_view::npos;
         at = text.find("-----BEGIN ", at + 1)) {
        std::string_view line = text.substr(at, text.find('\n', at) - at);
        if (line.find(label_end) != std::string_view::npos) return true;
    }
    return false;
}

// "2026-11-25 12:00:00 UTC"; "an unreadable date" when OpenSSL cannot convert it.
std::string utc_date(const ASN1_TIME* time) {
    std::tm tm{};
    if (ASN1_TIME_to_tm(time, &tm) != 1) return "an unreadable date";
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

std::string file_mode(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

char ascii_upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

bool is_account_name(std::string_view s) {
    if (s.empty()) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
}

std::string join_key(std::string_view prefix, std::string_view key) {
    if (prefix.empty()) return std::string(key);
    std::string out(prefix);
    out += '.';
    out += key;
    return out;
}

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
    std::optional<Account> account(const toml::table& t, const std::string& prefix) {
        std::size_t errors_before = error_count();
        Account a;
        a.line = static_cast<int>(t.source().begin.line);
        check_unknown(t, account_keys, prefix);

        if (!t.contains("name")) error(t, prefix + ".name", "missing required key 'name'");
        if (auto name = string_at(t, "name", prefix)) {
            const toml::node& at = *t.get("name");
            if (!is_account_name(*name)) {
                error(at, prefix + ".name",
                      "'" + *name + "' is not a valid name: use letters, digits, '_' and '-'");
            } else {
                a.name = *name;
                // Checked against every earlier [[account]], valid or not, so that a
                // duplicate is reported even when the first one has other problems.
                auto same = std::find_if(seen_names_.begin(), seen_names_.end(),
                                         [&](const auto& seen) { return seen.first == *name; });
                if (same != seen_names_.end()) {
                    error(at, prefix + ".name",
                          "account name '" + *name + "' is already used by the account at line " +
                              std::to_string(same->second));
                } else {
                    seen_names_.emplace_back(*name, a.line);
                }
            }
        }

        if (!t.contains("jid")) error(t, prefix + ".jid", "missing required key 'jid'");
        if (auto text = string_at(t, "jid", prefix)) {
            const toml::node& at = *t.get("jid");
            auto jid = xmpp::Jid::parse(*text);
            if (!jid) {
                error(at, prefix + ".jid", "invalid JID '" + *text + "': " + jid.error().message);
            } else if (!jid.value().is_bare()) {
                error(at, prefix + ".jid",
                      "expected a bare JID (no /resource; set resource instead), got '" + *text + "'");
            } else {
                a.jid = jid.value();
            }
        }

        password_pair(t, prefix, a.password, a.password_command);

        if (auto resource = string_at(t, "resource", prefix)) {
            // Prepare it the way the server will, so a bad resource fails here and not at bind.
            auto full = xmpp::Jid::parse((a.jid.empty() ? std::string("x") : a.jid.bare()) + "/" + *resource);
            if (!full) {
                error(*t.get("resource"), prefix + ".resource",
                      "invalid resource '" + *resource + "': " + full.error().message);
            } else {
                a.resource = full.value().resource();
            }
        }

        if (auto host = string_at(t, "host", prefix)) {
            if (host->find_first_of(" \t/:") != std::string::npos) {
                error(*t.get("host"), prefix + ".host",
                      "expected a host name or address without port or scheme, got '" + *host + "'");
            } else {
                a.host = *host;
            }
        }

        if (const toml::node* port = t.get("port")) {
            if (const auto* i = port->as_integer()) {
                std::int64_t v = i->get();
                if (v < 1 || v > 65535)
                    error(*port, prefix + ".port", "expected a port between 1 and 65535, got " + std::to_string(v));
                else
                    a.port = static_cast<std::uint16_t>(v);
            } else {
                error(*port, prefix + ".port", "expected an integer, got " + std::string(type_name(*port)));
            }
        }

        if (auto tls = choice_at(t, "tls", prefix, tls_modes)) {
            a.tls = *tls == "starttls" ? TlsMode::StartTls : *tls == "direct" ? TlsMode::Direct : TlsMode::Auto;
        }

        if (auto v = path_at(t, "ca_file", prefix)) a.ca_file = *v;
        if (auto v = path_at(t, "client_cert", prefix)) a.client_cert = *v;
        if (auto v = path_at(t, "client_key", prefix)) a.client_key = *v;
        a.client_key_password_command = string_at(t, "client_key_password_command", prefix);
        bool has_cert = t.contains("client_cert"), has_key = t.contains("client_key");
        bool has_password = t.contains("password") || t.contains("password_command");
        if (has_cert && !has_key) {
            error(*t.get("client_cert"), prefix + ".client_key", "client_cert is set but client_key is not");
        } else if (has_key && !has_cert) {
            error(*t.get("client_key"), prefix + ".client_cert", "client_key is set but client_cert is not");
        } else if (!has_cert && !has_password) {
            error(t, prefix + ".password",
                  "missing: set password, password_command, or client_cert and client_key");
        }
        if (t.contains("client_key_password_command") && !has_key && !has_cert) {
            error(*t.get("client_key_password_command"), prefix + ".client_key",
                  "client_key_password_command is set but client_key is not");
        }
        if (const toml::node* sasl = t.get("sasl")) sasl_list(*sasl, prefix, a, has_cert || has_key, has_password);
        if (auto v = choice_at(t, "channel_binding", prefix, channel_bindings)) {
            a.channel_binding = *v == "required" ? ChannelBinding::Required : ChannelBinding::Auto;
        }
        if (check_files_ && !a.client_cert.empty() && !a.client_key.empty()) certificate_files(t, prefix, a);

        proxy_keys(t, prefix, a);
        onion_checks(t, prefix, a);
        if (const toml::node* pins = t.get("tls_pin")) tls_pins(*pins, prefix, a);

        if (const toml::node* rooms = t.get("rooms")) this->rooms(*rooms, prefix, a);
        if (auto v = bool_at(t, "chat_markers", prefix)) a.chat_markers = *v;
        if (auto v = choice_at(t, "encryption", prefix, encryption_modes)) a.encryption = *v;
        // RFC 6121 §4.7.2.3: the priority is an integer from -128 to +127.
        integer_at(t, "priority", -128, 127, "a presence priority", a.priority, prefix);

        if (error_count() != errors_before) return std::nullopt;
        return a;
    }

    // `sasl = ["EXTERNAL", "SCRAM"]`: the mechanism families to try, in order. Names are
    // matched without regard to case and stored in upper case; each needs its credentials.
    // `any_cert`: client_cert or client_key is set (half a pair is reported elsewhere).
    void sasl_list(const toml::node& node, const std::string& prefix, Account& a, bool any_cert,
                   bool has_password) {
        // Without any credentials the "missing" error already says what to add.
        const bool check_credentials = any_cert || has_password;
        const std::string key = prefix + ".sasl";
        const std::string valid = "expected " + one_of(sasl_names);
        const toml::array* list = node.as_array();
        if (!list) {
            error(node, key,
                  "expected an array in order of preference, like sasl = [\"EXTERNAL\", \"SCRAM\"], got " +
                      std::string(type_name(node)));
            return;
        }
        if (list->empty()) {
            error(node, key,
                  "an empty list allows no way to log in; remove sasl for the default order (EXTERNAL when "
                  "client_cert is set, then SCRAM when a password is)");
            return;
        }
        for (std::size_t i = 0; i < list->size(); ++i) {
            const toml::node& item = *list->get(i);
            const std::string item_key = key + "[" + std::to_string(i + 1) + "]";
            const auto* text = item.as_string();
            if (!text) {
                error(item, item_key, valid + ", got " + std::string(type_name(item)));
                continue;
            }
            std::string name = text->get();
            std::transform(name.begin(), name.end(), name.begin(), ascii_upper);
            if (std::find(sasl_names.begin(), sasl_names.end(), name) == sasl_names.end()) {
                std::string message = "unknown mechanism '" + text->get() + "': " + valid;
                if (name.starts_with("SCRAM-")) {
                    message += "; write SCRAM: the hash and -PLUS are chosen from what the server offers";
                } else if (auto hint = closest(name, sasl_names)) {
                    message += "; did you mean '" + std::string(*hint) + "'?";
                }
                error(item, item_key, std::move(message));
            } else if (std::find(a.sasl.begin(), a.sasl.end(), name) != a.sasl.end()) {
                error(item, item_key, "'" + name + "' is listed twice");
            } else if (check_credentials && name == "EXTERNAL" && !any_cert) {
                error(item, item_key, "EXTERNAL needs client_cert and client_key");
            } else if (check_credentials && name != "EXTERNAL" && !has_password) {
                error(item, item_key, name + " needs password or password_command");
            } else {
                a.sasl.push_back(std::move(name));
            }
        }
    }

    // XEP-0178: the certificate and key the TLS handshake will present, read now so that
    // --check-config finds an unreadable, malformed or mismatched pair. Nothing is run (an
    // encrypted key's passphrase command waits for the daemon) and no key material is
    // quoted.
    void certificate_files(const toml::table& t, const std::string& prefix, const Account& a) {
        const toml::node& cert_at = *t.get("client_cert");
        const toml::node& key_at = *t.get("client_key");
        const std::string cert_key = prefix + ".client_cert", key_key = prefix + ".client_key";
        const std::string cert_name = "client_cert " + a.client_cert, key_name = "client_key " + a.client_key;

        X509Ptr cert;
        if (auto file = read_small_file(a.client_cert); !file) {
            error(cert_at, cert_key, file.error().message);
        } else if (cert = first_certificate(file.value().text); !cert) {
            std::string message = cert_name + " holds no PEM certificate (-----BEGIN CERTIFICATE-----)";
            if (has_pem_label(file.value().text, "PRIVATE KEY-----"))
                message += "; it holds a private key: are client_cert and client_key swapped?";
            error(cert_at, cert_key, std::move(message));
        } else if (const ASN1_TIME* not_after = X509_get0_notAfter(cert.get());
                   X509_cmp_current_time(not_after) < 0) {
            warning(cert_at, cert_key,
                    cert_name + " expired on " + utc_date(not_after) + "; servers will refuse it");
        }

        auto file = read_small_file(a.client_key);
        if (!file) {
            error(key_at, key_key, file.error().message);
            return;
        }
        FileText& key_file = file.value();
        PrivateKey key = private_key(key_file.text);
        bool holds_certificate = has_pem_label(key_file.text, "CERTIFICATE-----");
        OPENSSL_cleanse(key_file.text.data(), key_file.text.size());
        if ((key.key || key.encrypted) && (key_file.mode & (S_IRGRP | S_IROTH))) {
            warning(key_at, key_key,
                    a.client_key + " is readable by others (mode " + file_mode(key_file.mode) +
                        ") and holds a private key; chmod 600 " + a.client_key);
        }

        if (key.encrypted) {
            if (!a.client_key_password_command)
                error(key_at, key_key, key_name + " is encrypted: set client_key_password_command");
            // With the command, the key stays locked until the daemon runs it.
            return;
        }
        if (!key.key) {
            std::string message = key_name + " holds no PEM private key (-----BEGIN PRIVATE KEY-----)";
            if (holds_certificate) message += "; it holds a certificate: are client_cert and client_key swapped?";
            error(key_at, key_key, std::move(message));
            return;
        }
        if (a.client_key_password_command) {
            warning(*t.get("client_key_password_command"), prefix + ".client_key_password_command",
                    key_name + " is not encrypted: the command is not needed");
        }
        if (cert && EVP_PKEY_eq(X509_get0_pubkey(cert.get()), key.key.get()) != 1) {
            error(key_at, key_key, key_name + " does not belong to " + cert_name);
        }
        ERR_clear_error();
    }

    // `proxy`, and `proxy_username`/`proxy_password` that override the URL's credentials.
    void proxy_keys(const toml::table& t, const std::string& prefix, Account& a) {
        if (auto url = string_at(t, "proxy", prefix)) {
            auto proxy = parse_proxy_url(*url);
            if (!proxy) {
                error(*t.get("proxy"), prefix + ".proxy", proxy.error().message);
            } else {
                if (!proxy.value().password.empty()) saw_password_ = true;
                a.proxy = std::move(proxy.value());
            }
        }
        auto username = socks_credential_at(t, "proxy_username", prefix);
        auto password = socks_credential_at(t, "proxy_password", prefix);
        bool has_user = t.contains("proxy_username"), has_pass = t.contains("proxy_password");
        if (has_pass) saw_password_ = true;
        if ((has_user || has_pass) && !t.contains("proxy")) {
            std::string_view present = has_user ? "proxy_username" : "proxy_password";
            error(*t.get(present), prefix + ".proxy", std::string(present) + " is set but proxy is not");
        } else if (has_user && !has_pass) {
            error(*t.get("proxy_username"), prefix + ".proxy_password",
                  "proxy_username is set but proxy_password is not (RFC 1929 needs both)");
        } else if (has_pass && !has_user) {
            error(*t.get("proxy_password"), prefix + ".proxy_username",
                  "proxy_password is set but proxy_username is not (RFC 1929 needs both)");
        } else if (username && password && a.proxy) {
            a.proxy->username = std::move(*username);
            a.proxy->password = std::move(*password);
        }
    }

    // A SOCKS user name or password: 1..255 bytes (RFC 1929 §2). Never quoted.
    std::optional<std::string> socks_credential_at(const toml::table& t, std::string_view key,
                                                   const std::string& prefix) {
        auto value = string_at(t, key, prefix);
        if (value && value->size() > max_socks_credential) {
            error(*t.get(key), join_key(prefix, key),
                  "must be at most 255 bytes (RFC 1929), got " + std::to_string(value->size()));
            return std::nullopt;
        }
        return value;
    }

    // RFC 7686: a .onion name is reachable only through Tor, and looking it up in the
    // ordinary DNS fails and tells the DNS server where we are going.
    void onion_checks(const toml::table& t, const std::string& prefix, const Account& a) {
        bool onion_host = is_onion(a.host);
        // What the daemon resolves or hands to the proxy: host, else the JID's domain.
        std::string_view target = !a.host.empty() ? std::string_view(a.host) : std::string_view(a.jid.domain());
        if (!is_onion(target)) return;
        const toml::node& at = onion_host ? *t.get("host") : *t.get("jid");
        if (!t.contains("proxy")) {
            error(at, prefix + ".proxy",
                  std::string(target) + " is an onion service: it can only be reached through Tor's SOCKS port; "
                  "set proxy = \"socks5h://127.0.0.1:9050\"");
        } else if (a.proxy && !a.proxy->remote_dns) {
            warning(*t.get("proxy"), prefix + ".proxy",
                    "socks5:// resolves host names here, but " + std::string(target) +
                        " is an onion service that only Tor can resolve (and the lookup would tell your DNS "
                        "server about it): use socks5h://");
        }
    }

    void tls_pins(const toml::node& node, const std::string& prefix, Account& a) {
        const std::string key = prefix + ".tls_pin";
        const toml::array* list = node.as_array();
        if (!list) {
            error(node, key,
                  "expected an array, like tls_pin = [\"sha256/BASE64\"] (several pins for a key change), got " +
                      std::string(type_name(node)));
            return;
        }
        const std::string expected =
            "expected \"sha256/\" followed by the base64 of 32 bytes (44 characters), as printed by `stanzactl pin " +
            (a.name.empty() ? std::string("ACCOUNT") : a.name) + "`";
        for (std::size_t i = 0; i < list->size(); ++i) {
            const toml::node& item = *list->get(i);
            std::string item_key = key + "[" + std::to_string(i + 1) + "]";
            const auto* text = item.as_string();
            if (!text) {
                error(item, item_key, expected + ", got " + std::string(type_name(item)));
                continue;
            }
            auto pin = parse_pin(text->get());
            if (!pin) {
                error(item, item_key, expected + "; " + pin.error().message);
            } else if (std::find(a.tls_pins.begin(), a.tls_pins.end(), pin.value()) != a.tls_pins.end()) {
                warning(item, item_key, "the same pin is listed twice");
            } else {
                a.tls_pins.push_back(pin.value());
            }
        }
    }

    void rooms(const toml::node& node, const std::string& prefix, Account& a) {
        const std::string key = prefix + ".rooms";
        const toml::array* list = node.as_array();
        if (!list) {
            error(node, key,
                  "expected an array like [ { jid = \"room@conference.example.org\", nick = \"me\" } ], got " +
                      std::string(type_name(node)));
            return;
        }
        for (std::size_t i = 0; i < list->size(); ++i) {
            const toml::node& item = *list->get(i);
            std::string room_prefix = key + "[" + std::to_string(i + 1) + "]";
            const toml::table* t = item.as_table();
            if (!t) {
                error(item, room_prefix,
                      "expected a table like { jid = \"room@conference.example.org\", nick = \"me\" }, got " +
                          std::string(type_name(item)));
                continue;
            }
            check_unknown(*t, room_keys, room_prefix);
            Room room;
            bool ok = true;
            if (!t->contains("jid")) {
                error(*t, room_prefix + ".jid", "missing required key 'jid'");
                ok = false;
            }
            if (auto text = string_at(*t, "jid", room_prefix)) {
                auto jid = xmpp::Jid::parse(*text);
                if (!jid) {
                    error(*t->get("jid"), room_prefix + ".jid", "invalid JID '" + *text + "': " + jid.error().message);
                    ok = false;
                } else if (!jid.value().is_bare()) {
                    error(*t->get("jid"), room_prefix + ".jid",
                          "expected a bare room JID (set the nick with nick), got '" + *text + "'");
                    ok = false;
                } else {
                    room.jid = jid.value().bare();
                }
            } else {
                ok = false;
            }
            if (auto nick = string_at(*t, "nick", room_prefix)) {
                room.nick = *nick;
            } else if (t->contains("nick")) {
                ok = false;
            } else {
                // The usual choice in XMPP clients: the account's localpart.
                room.nick = !a.jid.local().empty() ? a.jid.local() : a.name;
            }
            if (ok) {
                auto dup = std::find_if(a.rooms.begin(), a.rooms.end(),
                                        [&](const Room& r) { return r.jid == room.jid; });
                if (dup != a.rooms.end()) {
                    error(*t->get("jid"), room_prefix + ".jid", "room '" + room.jid + "' is listed twice");
                } else {
                    a.rooms.push_back(std::move(room));
                }
            }
        }
    }

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

}  // namespace

std::string Problem::to_string() const {
    std::string out = file;
    if (line > 0) {
        out += ':' + std::to_string(line);
        if (column > 0) out += ':' + std::to_string(column);
    }
    out += severity == Severity::Error ? ": error: " : ": warning: ";
    if (!key.empty()) out += key + ": ";
    out += message;
    return out;
}

LoadResult parse(std::string_view text, const std::string& source_name) {
    return Validator(source_name).run(text);
}

LoadResult load(const std::string& path) {
    auto fail = [&](std::string message) {
        Problem p;
        p.file = path;
        p.message = std::move(message);
        LoadResult r;
        r.problems.push_back(std::move(p));
        return r;
    };
    auto file = read_small_file(path);
    if (!file) {
        std::string message = file.error().message;
        if (file.error().code == "too-large") message += "; that is not a configuration file";
        return fail(std::move(message));
    }

    Validator validator(path, /*check_files=*/true);
    LoadResult result = validator.run(file.value().text);
    if (validator.saw_password() && (file.value().mode & (S_IRGRP | S_IROTH))) {
        Problem p;
        p.severity = Problem::Severity::Warning;
        p.file = path;
        p.message = path + " is readable by others (mode " + file_mode(file.value().mode) +
                    ") and holds a password; chmod 600 " + path + " or use password_command";
        // No line: it goes first, like the other whole-file problems.
        result.problems.insert(result.problems.begin(), std::move(p));
    }
    return result;
}

std::string default_path() {
    if (std::string xdg = xdg_dir("XDG_CONFIG_HOME"); !xdg.empty()) return xdg + "/stanzad/config.toml";
    return home_dir() + "/.config/stanzad/config.toml";
}

}  // namespace config
