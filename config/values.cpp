// The value parsers and small helpers of the config checker; see validator.hpp.
#include <arpa/inet.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "config/validator.hpp"
#include "protocol/base/base64.hpp"

namespace config::detail {

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

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

bool is_loopback_listen(std::string_view s) {
    std::string_view host = s.substr(0, s.rfind(':'));
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    return host.starts_with("127.") || host == "::1" || host == "localhost";
}

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

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

bool is_onion(std::string_view host) {
    if (host.ends_with('.')) host.remove_suffix(1);
    constexpr std::string_view suffix = ".onion";
    return host.size() > suffix.size() && iequals(host.substr(host.size() - suffix.size()), suffix);
}

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

// USER:PASSWORD before the '@' of a proxy URL, percent-decoded (RFC 3986 §3.2.1), each
// 1 to 255 bytes (RFC 1929 §2), into proxy.username and proxy.password.
static xmpp::Status parse_proxy_credentials(std::string_view userinfo, Proxy& proxy) {
    auto fail = [](std::string message) { return xmpp::make_error("proxy", std::move(message)); };
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
    return xmpp::Ok{};
}

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
        auto credentials = parse_proxy_credentials(rest.substr(0, at), proxy);
        if (!credentials) return credentials.error();
        rest.remove_prefix(at + 1);
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

BioPtr memory_bio(const std::string& text) {
    return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

int no_passphrase(char*, int, int, void* asked) {
    *static_cast<bool*>(asked) = true;
    return 0;
}

X509Ptr first_certificate(const std::string& pem) {
    BioPtr bio = memory_bio(pem);
    bool asked = false;
    X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, &asked) : nullptr);
    ERR_clear_error();
    return cert;
}

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

}  // namespace config::detail
