// Fuzzes the client stream as a hostile server would drive it: any bytes after the
// connection is up (direct TLS, so negotiation starts at SASL), with time passing.
// The first byte picks the SASL setup, so that every path of the choice is reachable:
//   bit 0  a client certificate was presented (EXTERNAL)
//   bit 1  the TLS layer gave channel-binding data (-PLUS, the 'y' flag)
//   bit 2  ... under TLS 1.2 (tls-unique usable) rather than TLS 1.3
//   bit 3  channel_binding = "required"
//   bit 4  no password
//   bits 5-6  sasl order: default, EXTERNAL+SCRAM, SCRAM+PLAIN, PLAIN+EXTERNAL
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "protocol/stream.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const xmpp::Jid jid = xmpp::Jid::parse("user@example.org").value();
    if (size == 0) return 0;
    const unsigned setup = data[0];
    xmpp::StreamOptions o;
    o.jid = jid;
    o.password = setup & 0x10 ? "" : "pencil";
    o.direct_tls = true;
    o.limits.max_stanza_bytes = 4096;
    o.client_certificate = setup & 0x01;
    o.channel_binding = setup & 0x08 ? xmpp::ChannelBindingPolicy::Required : xmpp::ChannelBindingPolicy::Auto;
    static const std::array<std::vector<std::string>, 4> orders{{
        {}, {"EXTERNAL", "SCRAM"}, {"SCRAM", "PLAIN"}, {"PLAIN", "EXTERNAL"}}};
    o.sasl_order = orders[(setup >> 5) & 3];
    xmpp::ClientStream s(o);
    if (setup & 0x02) {
        xmpp::TlsChannel channel;
        channel.version = setup & 0x04 ? "TLSv1.2" : "TLSv1.3";
        channel.tls_exporter = std::string(32, '\x5a');
        channel.tls_server_end_point = std::string(32, '\0');
        channel.tls_unique = std::string(12, '\xa5');
        s.set_tls_channel(channel);
    }
    auto now = xmpp::TimePoint{} + std::chrono::seconds(1);
    s.start(now);
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    while (!in.empty()) {
        std::size_t n = std::min<std::size_t>(in.size(), 1 + static_cast<unsigned char>(in[0]) % 64);
        s.receive(in.substr(0, n), now);
        in.remove_prefix(n);
        now += std::chrono::seconds(5);
        if (auto d = s.next_deadline(); d && *d <= now) s.handle_timeout(now);
        while (s.next_event()) {
        }
        (void)s.take_output();
    }
    s.close(now);
    s.handle_timeout(now + std::chrono::seconds(10));
    while (s.next_event()) {
    }
    return 0;
}
