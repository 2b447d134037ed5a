// SOCKS5 CONNECT client (RFC 1928) with username/password authentication (RFC 1929).
// See socks5.hpp. Every error is a value; no message ever carries the username or password.
#include "protocol/socks5.hpp"

#include <arpa/inet.h>  // inet_pton: text to address bytes, no socket

#include <algorithm>
#include <cstddef>

namespace socks5 {
namespace {

constexpr unsigned char kVersion = 0x05;         // RFC 1928 §3
constexpr unsigned char kMethodNone = 0x00;      // RFC 1928 §3: NO AUTHENTICATION REQUIRED
constexpr unsigned char kMethodGssapi = 0x01;
constexpr unsigned char kMethodPassword = 0x02;  // RFC 1928 §3, RFC 1929
constexpr unsigned char kMethodRejected = 0xFF;  // NO ACCEPTABLE METHODS
constexpr unsigned char kPasswordVersion = 0x01;  // RFC 1929 §2
constexpr unsigned char kCmdConnect = 0x01;       // RFC 1928 §4
constexpr unsigned char kAtypIpv4 = 0x01;         // RFC 1928 §5
constexpr unsigned char kAtypDomain = 0x03;
constexpr unsigned char kAtypIpv6 = 0x04;

// The largest reply: VER REP RSV ATYP, a length byte, a 255-byte name, BND.PORT (§6).
constexpr std::size_t kMaxReply = 4 + 1 + 255 + 2;

const xmpp::Status kOk = xmpp::Ok{};

void append_port(std::string& out, std::uint16_t port) {
    out += static_cast<char>(port >> 8);  // network byte order (RFC 1928 §4)
    out += static_cast<char>(port & 0xFF);
}

std::string hex_byte(unsigned char b) {
    constexpr char digits[] = "0123456789ABCDEF";
    return std::string("0x") + digits[b >> 4] + digits[b & 0x0F];
}

// Proxy-chosen names and configured hosts go into logs: control bytes become \xNN.
std::string printable(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7F && c != '\\') {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            out += hex_byte(c).substr(2);
        }
    }
    return out;
}

std::string not_socks5(std::string_view what, unsigned char version) {
    std::string message = "not a SOCKS5 proxy: its answer to " + std::string(what) +
                          " starts with " + hex_byte(version) + ", expected 0x05";
    if (version == 'H') message += " (an HTTP proxy?)";
    return message;
}

// Overwrites a string that held a secret before letting go of it; `volatile` keeps the
// compiler from dropping stores to memory that is about to be released.
void wipe(std::string& s) {
    volatile char* p = s.data();
    for (std::size_t i = 0; i < s.size(); ++i) p[i] = 0;
    s.clear();
}

}  // namespace

Client::Client(std::string host, std::uint16_t port, std::optional<Credentials> credentials)
    : host_(std::move(host)), port_(port), credentials_(std::move(credentials)) {
    // RFC 1928 §5: an IPv4 or IPv6 literal goes as an address, anything else as a name for
    // the proxy to resolve. An IPv6 literal may come in URL brackets ("[::1]"). inet_pton
    // stops at a NUL, so a host holding one ("1.2.3.4\0...") is no literal.
    std::string_view literal = host_;
    if (literal.size() >= 2 && literal.front() == '[' && literal.back() == ']') {
        literal = literal.substr(1, literal.size() - 2);
    }
    const std::string unbracketed(literal);
    const bool may_be_literal = host_.find('\0') == std::string::npos;
    unsigned char address[16];
    if (may_be_literal && unbracketed == host_ && inet_pton(AF_INET, host_.c_str(), address) == 1) {
        destination_ += static_cast<char>(kAtypIpv4);
        destination_.append(reinterpret_cast<const char*>(address), 4);
    } else if (may_be_literal && inet_pton(AF_INET6, unbracketed.c_str(), address) == 1) {
        destination_ += static_cast<char>(kAtypIpv6);
        destination_.append(reinterpret_cast<const char*>(address), 16);
    } else if (host_.empty() || host_.size() > 255) {
        bad_input_ = xmpp::make_error(
            std::string(err_protocol),
            "SOCKS5 cannot carry a host name of " + std::to_string(host_.size()) +
                " bytes (RFC 1928 §5 allows 1..255)");
    } else {
        destination_ += static_cast<char>(kAtypDomain);
        destination_ += static_cast<char>(host_.size());
        destination_ += host_;
    }
    append_port(destination_, port_);

    // RFC 1929 §2: ULEN and PLEN are single bytes, and both fields are 1..255 bytes. The
    // lengths stay out of the messages too: a password's length is a hint about it.
    if (credentials_ && !bad_input_) {
        const auto bad = [](const std::string& s) { return s.empty() || s.size() > 255; };
        if (bad(credentials_->username)) {
            bad_input_ = xmpp::make_error(std::string(err_auth),
                                          "the SOCKS5 username must be 1..255 bytes (RFC 1929 §2)");
        } else if (bad(credentials_->password)) {
            bad_input_ = xmpp::make_error(std::string(err_auth),
                                          "the SOCKS5 password must be 1..255 bytes (RFC 1929 §2)");
        }
    }
}

std::string Client::take_output() {
    if (state_ == State::Greeting) {
        // RFC 1928 §3: VER NMETHODS METHODS. Offering method 2 only when we can answer it.
        out_ += static_cast<char>(kVersion);
        if (credentials_) {
            out_ += '\x02';
            out_ += static_cast<char>(kMethodNone);
            out_ += static_cast<char>(kMethodPassword);
        } else {
            out_ += '\x01';
            out_ += static_cast<char>(kMethodNone);
        }
        state_ = State::Method;
    }
    return std::exchange(out_, {});
}

xmpp::Status Client::receive(std::string_view bytes) {
    if (state_ == State::Failed) return error_;
    if (bad_input_) {
        xmpp::Error error = *bad_input_;
        return fail(error.code, std::move(error.message));
    }
    if (state_ == State::Done) {
        leftover_.append(bytes);
        return kOk;
    }
    if (state_ == State::Greeting) {
        // A proxy that speaks first is held to one reply's worth until we have spoken.
        if (early_.size() + bytes.size() > kMaxReply) {
            return fail(err_protocol, "the proxy sent more than " + std::to_string(kMaxReply) +
                                          " bytes before our greeting");
        }
        early_.append(bytes);
        return kOk;
    }
    if (!early_.empty()) {
        const std::string early = std::exchange(early_, {});
        if (auto status = consume(early); !status) return status;
    }
    return consume(bytes);
}

// Moves bytes into in_ no further than the end of the reply being read, so in_ never holds
// more than one reply; step() checks each prefix, so any split gives the same outcome.
xmpp::Status Client::consume(std::string_view bytes) {
    while (!bytes.empty() &&
           (state_ == State::Method || state_ == State::Auth || state_ == State::Connect)) {
        const std::size_t take = std::min(reply_size() - in_.size(), bytes.size());
        in_.append(bytes.substr(0, take));
        bytes.remove_prefix(take);
        if (auto status = step(); !status) return status;
    }
    if (state_ == State::Done) leftover_.append(bytes);
    return kOk;
}

// The size of the reply being read, as far as the bytes in in_ tell it.
std::size_t Client::reply_size() const {
    if (state_ != State::Connect) return 2;  // RFC 1928 §3 VER METHOD; RFC 1929 §2 VER STATUS
    // RFC 1928 §6: VER REP RSV ATYP BND.ADDR BND.PORT.
    if (in_.size() < 4) return 4;
    switch (static_cast<unsigned char>(in_[3])) {
        case kAtypIpv4: return 4 + 4 + 2;
        case kAtypIpv6: return 4 + 16 + 2;
        default:  // kAtypDomain; step() has failed on anything else
            if (in_.size() < 5) return 5;
            return 4 + 1 + static_cast<unsigned char>(in_[4]) + 2;
    }
}

// Checks what in_ holds so far and acts on it once the reply is complete.
xmpp::Status Client::step() {
    const auto byte = [this](std::size_t i) { return static_cast<unsigned char>(in_[i]); };
    switch (state_) {
        case State::Method:
            // RFC 1928 §3: VER METHOD.
            if (byte(0) != kVersion) return fail(err_protocol, not_socks5("our greeting", byte(0)));
            if (in_.size() < 2) return kOk;
            return on_method(byte(1));

        case State::Auth:
            // RFC 1929 §2: VER STATUS, VER being the sub-negotiation's version 1. Some
            // servers put the SOCKS version 5 there instead; the status means the same.
            if (byte(0) != kPasswordVersion && byte(0) != kVersion) {
                return fail(err_protocol,
                            "not a SOCKS5 proxy: its answer to our username/password starts with " +
                                hex_byte(byte(0)) + ", expected 0x01 (RFC 1929 §2)");
            }
            if (in_.size() < 2) return kOk;
            // RFC 1929 §2: any STATUS other than X'00' is a failure.
            if (byte(1) != 0) return fail(err_auth, "the proxy refused the username/password");
            in_.clear();
            send_connect();
            return kOk;

        case State::Connect: {
            if (byte(0) != kVersion) return fail(err_protocol, not_socks5("our CONNECT request", byte(0)));
            if (in_.size() < 2) return kOk;
            // RFC 1928 §6: REP other than X'00' is a failure, and the server closes the
            // connection right after; the rest of the reply is not needed to report it.
            if (byte(1) != 0) {
                reply_code_ = byte(1);
                return fail(err_reply, describe_reply(reply_code_) + " (SOCKS5 reply " +
                                           std::to_string(reply_code_) + ")");
            }
            if (in_.size() < 4) return kOk;
            // RSV (in_[2]) "MUST be X'00'"; it carries nothing, so it is not checked.
            const unsigned char atyp = byte(3);
            if (atyp != kAtypIpv4 && atyp != kAtypIpv6 && atyp != kAtypDomain) {
                return fail(err_protocol, "the proxy's CONNECT reply has address type " + hex_byte(atyp) +
                                              ", expected 0x01, 0x03 or 0x04 (RFC 1928 §5)");
            }
            const std::size_t size = reply_size();
            if (in_.size() < size) return kOk;

            const std::string_view addr = std::string_view(in_).substr(4, size - 4 - 2);
            const std::uint16_t port = static_cast<std::uint16_t>(byte(size - 2) << 8 | byte(size - 1));
            char text[INET6_ADDRSTRLEN] = {};
            if (atyp == kAtypIpv4) {
                inet_ntop(AF_INET, addr.data(), text, sizeof text);
                bound_ = text;
            } else if (atyp == kAtypIpv6) {
                inet_ntop(AF_INET6, addr.data(), text, sizeof text);
                bound_ = "[" + std::string(text) + "]";
            } else {
                bound_ = printable(addr.substr(1));
            }
            bound_ += ":" + std::to_string(port);
            in_.clear();
            state_ = State::Done;
            return kOk;
        }

        default:
            return kOk;
    }
}

xmpp::Status Client::on_method(unsigned char method) {
    in_.clear();
    switch (method) {
        case kMethodNone:
            send_connect();
            return kOk;
        case kMethodPassword: {
            if (!credentials_) {
                return fail(err_auth, "the proxy requires a username and password, but none is configured");
            }
            // RFC 1929 §2: VER ULEN UNAME PLEN PASSWD. Lengths were checked in the constructor.
            out_ += static_cast<char>(kPasswordVersion);
            out_ += static_cast<char>(credentials_->username.size());
            out_ += credentials_->username;
            out_ += static_cast<char>(credentials_->password.size());
            out_ += credentials_->password;
            forget_credentials();
            state_ = State::Auth;
            return kOk;
        }
        case kMethodRejected:
            // RFC 1928 §3: X'FF' NO ACCEPTABLE METHODS; "the client MUST close the connection".
            return fail(err_auth, "the proxy accepts none of our authentication methods");
        default:
            return fail(err_protocol, "the proxy chose authentication method " + hex_byte(method) +
                                          (method == kMethodGssapi ? " (GSSAPI)" : "") +
                                          ", which we did not offer");
    }
}

// RFC 1928 §4: VER CMD RSV ATYP DST.ADDR DST.PORT.
void Client::send_connect() {
    out_ += static_cast<char>(kVersion);
    out_ += static_cast<char>(kCmdConnect);
    out_ += '\x00';
    out_ += destination_;
    state_ = State::Connect;
}

void Client::forget_credentials() {
    if (!credentials_) return;
    wipe(credentials_->username);
    wipe(credentials_->password);
    credentials_.reset();
}

xmpp::Status Client::fail(std::string_view code, std::string message) {
    state_ = State::Failed;
    error_ = xmpp::make_error(std::string(code), std::move(message));
    forget_credentials();
    wipe(out_);  // may hold the untaken username/password request
    in_.clear();
    early_.clear();
    return error_;
}

std::string Client::describe_reply(int code) {
    switch (code) {
        // RFC 1928 §6.
        case 0x00: return "succeeded";
        case 0x01: return "general SOCKS server failure";
        case 0x02: return "connection not allowed by ruleset";
        case 0x03: return "network unreachable";
        case 0x04: return "host unreachable";
        case 0x05: return "connection refused";
        case 0x06: return "TTL expired";
        case 0x07: return "command not supported";
        case 0x08: return "address type not supported";
        // Tor's onion-service codes, sent with SocksPort ExtendedErrors: proposal 304,
        // socks-extensions.txt and tor(1).
        case 0xF0: return "onion service descriptor can not be found";
        case 0xF1: return "onion service descriptor is invalid";
        case 0xF2: return "onion service introduction failed";
        case 0xF3: return "onion service rendezvous failed";
        case 0xF4: return "onion service client authorization missing";
        case 0xF5: return "onion service client authorization wrong";
        case 0xF6: return "onion address is invalid";
        case 0xF7: return "onion service introduction timed out";
        default: return "unknown reply";
    }
}

}  // namespace socks5
