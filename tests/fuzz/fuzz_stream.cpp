// Fuzzes the client stream as a hostile server would drive it: any bytes after the
// connection is up (direct TLS, so negotiation starts at SASL), with time passing.
#include <cstddef>
#include <cstdint>

#include "protocol/stream.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const xmpp::Jid jid = xmpp::Jid::parse("user@example.org").value();
    xmpp::StreamOptions o;
    o.jid = jid;
    o.password = "pencil";
    o.direct_tls = true;
    o.limits.max_stanza_bytes = 4096;
    xmpp::ClientStream s(o);
    auto now = xmpp::TimePoint{} + std::chrono::seconds(1);
    s.start(now);
    std::string_view in(reinterpret_cast<const char*>(data), size);
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
