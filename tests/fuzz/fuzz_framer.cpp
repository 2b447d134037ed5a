// Fuzzes the XML framer: any bytes, in any split, must give the same events as when fed
// whole, and never crash, hang, or grow past the limits.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "protocol/xml_framer.hpp"

namespace {

std::vector<std::string> run(std::string_view data, std::size_t chunk) {
    xmpp::FramerLimits limits;
    limits.max_stanza_bytes = 4096;
    limits.max_depth = 8;
    xmpp::XmlFramer f(limits);
    std::vector<std::string> out;
    for (std::size_t off = 0; off < data.size(); off += chunk) {
        f.feed(data.substr(off, chunk));
        if (f.buffered_bytes() > limits.max_stanza_bytes + limits.max_header_bytes + chunk) __builtin_trap();
        while (auto e = f.next()) {
            if (std::holds_alternative<xmpp::StreamOpen>(*e)) out.push_back("open");
            else if (auto* s = std::get_if<xmpp::Stanza>(&*e)) out.push_back(std::string(xmpp::namespace_of(s->root())) + " " + s->root().name());
            else if (std::holds_alternative<xmpp::StreamEnd>(*e)) out.push_back("end");
            else out.push_back("error " + std::get<xmpp::FramerError>(*e).condition);
        }
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    std::size_t chunk = 1 + data[0] % 17;
    std::string input = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
    input.append(reinterpret_cast<const char*>(data) + 1, size - 1);
    auto whole = run(input, input.size());
    auto split = run(input, chunk);
    // Errors carry offsets in their message only, so the event lists must match exactly.
    if (whole != split) __builtin_trap();
    return 0;
}
