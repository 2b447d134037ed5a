#pragma once
// Client side of a SOCKS5 CONNECT (RFC 1928) with optional username/password
// authentication (RFC 1929), sans-I/O: bytes from the proxy in, bytes for the proxy out.
// One object per proxied connection; owned by that connection, loop thread only. Holds at
// most one reply (bounded: 4 + 1 + 255 + 2 bytes) plus whatever followed it.
//
// Flow: take_output() gives the greeting; feed every byte the proxy sends to receive()
// until done() or an error; after done(), take_leftover() holds bytes that already belong
// to the tunnel (the TLS or XMPP stream behind it). An error is final.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "protocol/base/result.hpp"

namespace socks5 {

struct Credentials {
    std::string username;  // 1..255 bytes (RFC 1929 §2)
    std::string password;  // 1..255 bytes
};

// Error codes (Error::code) the client reports; the message says it for people.
inline constexpr std::string_view err_protocol = "socks-protocol";    // not a SOCKS5 answer
inline constexpr std::string_view err_auth = "socks-auth";            // no acceptable method, or refused credentials
inline constexpr std::string_view err_reply = "socks-reply";          // the proxy's CONNECT reply was not "succeeded"

class Client {
public:
    // `host`: a domain name (sent as ATYP 3, resolved by the proxy: socks5h) or an IPv4/IPv6
    // literal (sent as ATYP 1/4). A name longer than 255 bytes (or empty) is an error
    // (err_protocol) at the first receive(), as are a username or password outside 1..255
    // bytes (err_auth); the greeting still goes out. With `credentials`, the greeting offers
    // username/password (method 2) as well as "no authentication" (method 0); the proxy
    // chooses.
    Client(std::string host, std::uint16_t port, std::optional<Credentials> credentials = std::nullopt);

    // Bytes to send to the proxy (the greeting at first, then the auth and CONNECT requests).
    // The auth request holds the password in clear (RFC 1929): never log it. Empty after an
    // error.
    std::string take_output();
    // Bytes from the proxy, in any split. Errors are final: once failed(), every call
    // returns the same error again. A refused CONNECT (err_reply) carries the reply code's
    // meaning and nothing else, for the caller to put after the proxy and the target:
    // "host unreachable (SOCKS5 reply 4)".
    // Bytes that arrive before the greeting was taken are held (at most one reply's worth)
    // and read at the next receive() after take_output().
    xmpp::Status receive(std::string_view bytes);

    bool done() const { return state_ == State::Done; }
    bool failed() const { return state_ == State::Failed; }
    // After done(): bytes received after the CONNECT reply (the tunnel's first bytes).
    std::string take_leftover() { return std::exchange(leftover_, {}); }
    // After done(): the proxy's bound address as text ("127.0.0.1:40512"), for the log.
    const std::string& bound() const { return bound_; }
    // The reply code of a failed CONNECT (RFC 1928 §6; Tor's 0xF0..0xF7 for onion
    // services), or -1.
    int reply_code() const { return reply_code_; }

    // "succeeded" for 0, "host unreachable" for 4, ..., "onion service descriptor can not be
    // found" for 0xF0, ..., "unknown reply" for codes neither RFC 1928 nor Tor defines.
    static std::string describe_reply(int code);

private:
    enum class State { Greeting, Method, Auth, Connect, Done, Failed };
    xmpp::Status fail(std::string_view code, std::string message);
    xmpp::Status consume(std::string_view bytes);
    std::size_t reply_size() const;
    xmpp::Status step();
    xmpp::Status on_method(unsigned char method);
    void send_connect();
    void forget_credentials();

    std::string host_;
    std::uint16_t port_;
    std::optional<Credentials> credentials_;
    State state_ = State::Greeting;
    std::string in_;        // bytes of the reply being read
    std::string out_;
    std::string leftover_;
    std::string bound_;
    int reply_code_ = -1;
    std::string destination_;               // ATYP DST.ADDR DST.PORT (RFC 1928 §4)
    std::optional<xmpp::Error> bad_input_;  // host or credentials SOCKS5 cannot carry
    std::string early_;                     // bytes that came before the greeting was taken
    xmpp::Error error_;                     // after Failed: returned by every receive()
};

}  // namespace socks5
