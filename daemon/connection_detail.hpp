#pragma once
// What connection.cpp and connection_connect.cpp share; not part of XmppConnection's API.
#include <chrono>
#include <string>

namespace stanzad::detail {

inline constexpr std::chrono::milliseconds connect_timeout{10'000};    // the last address of a race
inline constexpr std::chrono::milliseconds attempt_delay{250};         // RFC 8305 §5 "Connection Attempt Delay"
inline constexpr std::chrono::milliseconds handshake_timeout{30'000};  // direct TLS, before the stream
inline constexpr std::chrono::milliseconds socks_timeout{60'000};      // Tor may need a new circuit

// "host:port", with an IPv6 address in brackets.
inline std::string host_port(const std::string& host, int port) {
    bool v6 = host.find(':') != std::string::npos && host.front() != '[';
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace stanzad::detail
