// Fuzzes the SOCKS5 client (protocol/socks5.hpp) as the proxy: any bytes, in any split, must
// give the same outcome as when fed whole, send nothing but the requests RFC 1928 and
// RFC 1929 allow, keep its states apart, and never put the password in a message.
//
// Input: byte 0 chooses the target (bits 0-2), the credentials (bits 3-4) and whether the
// proxy speaks before the greeting is taken (bit 5); byte 1 seeds the chunk sizes; the rest
// is what the proxy sends.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/socks5.hpp"

namespace {

constexpr std::string_view kUsername = "stanzad-home";
constexpr std::string_view kPassword = "fuzz-secret-password";
constexpr std::uint16_t kPort = 5222;

struct Target {
    std::string host;
    std::string destination;  // ATYP DST.ADDR DST.PORT, written out here independently
    bool valid = true;
};

std::string raw(std::initializer_list<int> list) {
    std::string out;
    for (int b : list) out += static_cast<char>(b);
    return out;
}

std::string domain(const std::string& name) {
    return raw({0x03, static_cast<int>(name.size())}) + name;
}

Target target(unsigned kind) {
    const std::string ipv6 = raw({0x04, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
    const std::string onion = "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion";
    switch (kind & 7) {
        case 0: return {"192.0.2.1", raw({0x01, 192, 0, 2, 1})};
        case 1: return {"2001:db8::1", ipv6};
        case 2: return {"[2001:db8::1]", ipv6};
        case 3: return {"example.org", domain("example.org")};
        case 4: return {onion, domain(onion)};
        case 5: return {std::string(255, 'n'), domain(std::string(255, 'n'))};
        case 6: return {std::string(256, 'n'), "", false};
        default: return {"", "", false};
    }
}

std::optional<socks5::Credentials> credentials(unsigned kind) {
    switch (kind & 3) {
        case 0: return std::nullopt;
        case 1: return socks5::Credentials{std::string(kUsername), std::string(kPassword)};
        case 2: return socks5::Credentials{"", std::string(kPassword)};
        default: return socks5::Credentials{std::string(kUsername), std::string(kPassword) + std::string(236, 'p')};
    }
}

// A host and credentials the client can send; with anything else the first receive() fails.
bool sendable(std::uint8_t config) {
    const auto creds = credentials(config >> 3);
    return target(config).valid && (!creds || (!creds->username.empty() && creds->password.size() <= 255));
}

struct Outcome {
    bool done = false;
    bool failed = false;
    std::string code;
    std::string message;
    std::string output;
    std::string leftover;
    std::string bound;
    int reply_code = -1;
};

bool same(const Outcome& a, const Outcome& b) {
    // After a failure, requests taken before the failing read were sent and the rest was
    // dropped, so only the output of a success must match.
    return a.done == b.done && a.failed == b.failed && a.code == b.code && a.message == b.message &&
           (a.failed || a.output == b.output) && a.leftover == b.leftover && a.bound == b.bound &&
           a.reply_code == b.reply_code;
}

void check_status(const socks5::Client& c, const xmpp::Status& status) {
    if (c.done() && c.failed()) __builtin_trap();
    if (status.ok() == c.failed()) __builtin_trap();
    if (status.ok()) return;
    const xmpp::Error& e = status.error();
    if (e.code != socks5::err_protocol && e.code != socks5::err_auth && e.code != socks5::err_reply) __builtin_trap();
    if (e.message.empty()) __builtin_trap();
    if (e.message.find(kPassword) != std::string::npos) __builtin_trap();
    if (e.message.find(kUsername) != std::string::npos) __builtin_trap();
    if ((e.code == socks5::err_reply) != (c.reply_code() != -1)) __builtin_trap();
    if (c.reply_code() != -1 && (c.reply_code() < 1 || c.reply_code() > 255)) __builtin_trap();
}

// What RFC 1928 and RFC 1929 say should come of `proxy` read whole, written apart from
// protocol/socks5.cpp: a failure is known from the first byte that shows it, VER before REP
// before ATYP. `bound` is left empty where it would need escaping.
struct Expected {
    bool done = false;
    bool failed = false;
    std::string_view code;
    int reply_code = -1;
    std::string leftover;
    std::string bound;
};

Expected expect(std::string_view p, bool have_credentials) {
    Expected e;
    const auto u = [&](std::size_t i) { return static_cast<unsigned char>(p[i]); };
    const auto fail = [&](std::string_view code) {
        e.failed = true;
        e.code = code;
        return e;
    };
    // Method selection.
    if (p.empty()) return e;
    if (u(0) != 5) return fail(socks5::err_protocol);
    if (p.size() < 2) return e;
    std::size_t at = 2;
    if (u(1) == 0xFF || (u(1) == 2 && !have_credentials)) return fail(socks5::err_auth);
    if (u(1) != 0 && u(1) != 2) return fail(socks5::err_protocol);
    if (u(1) == 2) {
        if (p.size() < 3) return e;
        if (u(2) != 1 && u(2) != 5) return fail(socks5::err_protocol);
        if (p.size() < 4) return e;
        if (u(3) != 0) return fail(socks5::err_auth);
        at = 4;
    }
    // CONNECT reply: VER REP RSV ATYP BND.ADDR BND.PORT.
    if (p.size() < at + 1) return e;
    if (u(at) != 5) return fail(socks5::err_protocol);
    if (p.size() < at + 2) return e;
    if (u(at + 1) != 0) {
        e.reply_code = u(at + 1);
        return fail(socks5::err_reply);
    }
    if (p.size() < at + 4) return e;
    const unsigned char atyp = u(at + 3);
    std::size_t addr_len = 0;
    if (atyp == 1) addr_len = 4;
    else if (atyp == 4) addr_len = 16;
    else if (atyp == 3 && p.size() >= at + 5) addr_len = 1 + u(at + 4);
    else if (atyp == 3) return e;
    else return fail(socks5::err_protocol);
    const std::size_t end = at + 4 + addr_len + 2;
    if (p.size() < end) return e;
    e.done = true;
    e.leftover = std::string(p.substr(end));
    const std::string_view addr = p.substr(at + 4, addr_len);
    const std::string port = ":" + std::to_string(u(end - 2) * 256 + u(end - 1));
    char text[INET6_ADDRSTRLEN] = {};
    if (atyp == 1 && inet_ntop(AF_INET, addr.data(), text, sizeof text)) e.bound = text + port;
    if (atyp == 4 && inet_ntop(AF_INET6, addr.data(), text, sizeof text)) e.bound = "[" + std::string(text) + "]" + port;
    if (atyp == 3 && std::all_of(addr.begin() + 1, addr.end(), [](char c) { return c >= 0x20 && c < 0x7F && c != '\\'; })) {
        e.bound = std::string(addr.substr(1)) + port;
    }
    return e;
}

// Feeds `proxy` in chunks of 0..16 bytes from a xorshift sequence seeded by `seed`, or
// whole when `seed` is negative.
Outcome run(std::uint8_t config, int seed, std::string_view proxy) {
    const Target t = target(config);
    auto creds = credentials(config >> 3);
    const bool valid = sendable(config);
    const bool early = (config & 0x20) != 0;
    std::string auth;
    if (creds) auth = raw({0x01, static_cast<int>(creds->username.size())}) + creds->username +
                      raw({static_cast<int>(creds->password.size())}) + creds->password;

    socks5::Client c(t.host, kPort, creds);
    Outcome o;
    std::string greeting;
    bool greeted = false;
    if (!early) {
        greeting = c.take_output();
        greeted = true;
    }
    const auto receive = [&](std::string_view bytes) {
        auto status = c.receive(bytes);
        check_status(c, status);
        if (!status) {
            o.code = status.error().code;
            o.message = status.error().message;
        }
        if (!valid && !c.failed()) __builtin_trap();  // a bad host or credentials fail at once
        if (!greeted) {
            greeting = c.take_output();
            greeted = true;
        } else {
            o.output += c.take_output();
        }
    };

    std::uint32_t state = 0x9E3779B9u ^ static_cast<std::uint32_t>(seed);
    std::size_t off = 0;
    do {
        std::size_t chunk = proxy.size() - off;
        if (seed >= 0) {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            chunk = std::min<std::size_t>(state % 17, chunk);
        }
        receive(proxy.substr(off, chunk));
        off += chunk;
    } while (off < proxy.size());
    receive("");  // reads what an early proxy sent before the greeting was taken

    // SOCKS5 greeting (RFC 1928 §3), then at most RFC 1929's request and one CONNECT.
    const std::string expected_greeting = creds ? raw({0x05, 0x02, 0x00, 0x02}) : raw({0x05, 0x01, 0x00});
    if (greeting != expected_greeting && !(early && greeting.empty() && c.failed())) __builtin_trap();
    const std::string connect = raw({0x05, 0x01, 0x00}) + t.destination + raw({kPort >> 8, kPort & 0xFF});
    const bool direct = o.output == connect.substr(0, o.output.size());
    const bool with_auth = !auth.empty() && o.output == (auth + connect).substr(0, o.output.size());
    if (!direct && !with_auth) __builtin_trap();

    o.done = c.done();
    o.failed = c.failed();
    if (o.done) {
        if (o.output != connect && o.output != auth + connect) __builtin_trap();
        if (c.bound().find(':') == std::string::npos) __builtin_trap();
        for (unsigned char ch : c.bound()) {
            if (ch < 0x20 || ch >= 0x7F) __builtin_trap();  // it goes into logs as text
        }
        if (c.reply_code() != -1) __builtin_trap();
    }
    o.leftover = c.take_leftover();
    if (!c.take_leftover().empty()) __builtin_trap();
    if (!o.done && !o.leftover.empty()) __builtin_trap();
    if (!proxy.ends_with(o.leftover)) __builtin_trap();
    o.bound = c.bound();
    o.reply_code = c.reply_code();

    if (o.failed) {
        // Final: the same error again, no work, nothing to send.
        auto again = c.receive(proxy);
        if (again.ok() || again.error().code != o.code || again.error().message != o.message) __builtin_trap();
        if (!c.take_output().empty() || !c.take_leftover().empty()) __builtin_trap();
    } else if (o.done) {
        if (!c.receive("tail").ok() || c.take_leftover() != "tail") __builtin_trap();
    }
    return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::uint8_t config = data[0];
    const std::string_view proxy(reinterpret_cast<const char*>(data) + 2, size - 2);
    const Outcome whole = run(config, -1, proxy);
    // An early proxy is read whole too, unless it sends more than the client holds.
    if (sendable(config) && ((config & 0x20) == 0 || proxy.size() <= 262)) {
        const Expected e = expect(proxy, credentials(config >> 3).has_value());
        if (whole.done != e.done || whole.failed != e.failed || whole.reply_code != e.reply_code) __builtin_trap();
        if (e.failed && whole.code != e.code) __builtin_trap();
        if (whole.leftover != e.leftover) __builtin_trap();
        if (!e.bound.empty() && whole.bound != e.bound) __builtin_trap();
    }
    const Outcome split = run(config, data[1], proxy);
    // Bytes held before the greeting are read at the next receive(), so with an early proxy
    // the outcome may depend on where the first chunk ends; the invariants still hold.
    if ((config & 0x20) == 0 && !same(whole, split)) __builtin_trap();
    return 0;
}
