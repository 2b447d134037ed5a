// Stream decoding throughput: XmlFramer (cutting + checks + one pugixml DOM per stanza)
// versus pugixml parsing the same stanzas as one document (the floor: no framing, one DOM).
// Usage: bench_framer [stanzas=200000] [runs=7]. Prints the median of the runs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "protocol/xml_framer.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// A realistic mix: chat messages with ids and a body, presence with caps, iq pings.
std::string make_stanzas(int count) {
    std::string out;
    for (int i = 0; i < count; ++i) {
        switch (i % 4) {
        case 0:
        case 1:
            out += "<message from='bob@example.org/phone' to='alice@example.org/stanzad' type='chat' id='m" +
                   std::to_string(i) +
                   "'><body>Hello Alice, this is message number " + std::to_string(i) +
                   " &amp; it has an entity &#x263A; and some text to make it a typical chat line.</body>"
                   "<origin-id xmlns='urn:xmpp:sid:0' id='3f1b6c2e-" + std::to_string(i) +
                   "'/><stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='A" + std::to_string(i) +
                   "'/><active xmlns='http://jabber.org/protocol/chatstates'/></message>";
            break;
        case 2:
            out += "<presence from='carol@example.org/laptop' to='alice@example.org/stanzad'><show>away</show>"
                   "<status>Lunch</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' "
                   "node='https://example.org' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>";
            break;
        default:
            out += "<iq type='get' from='example.org' to='alice@example.org/stanzad' id='p" + std::to_string(i) +
                   "'><ping xmlns='urn:xmpp:ping'/></iq>";
        }
    }
    return out;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    int count = argc > 1 ? std::atoi(argv[1]) : 200000;
    int runs = argc > 2 ? std::atoi(argv[2]) : 7;
    const std::string header =
        "<?xml version='1.0'?><stream:stream from='example.org' id='x' version='1.0' xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams'>";
    const std::string stanzas = make_stanzas(count);
    const std::string stream = header + stanzas;
    const double mb = static_cast<double>(stanzas.size()) / 1e6;

    std::vector<double> framer_s, dom_s;
    std::size_t checksum = 0;
    for (int r = 0; r < runs; ++r) {
        auto t0 = Clock::now();
        xmpp::XmlFramer framer;
        int got = 0;
        constexpr std::size_t chunk = 16384;  // one TLS record's worth per read
        for (std::size_t off = 0; off < stream.size(); off += chunk) {
            framer.feed(std::string_view(stream).substr(off, chunk));
            while (auto e = framer.next()) {
                if (auto* s = std::get_if<xmpp::Stanza>(&*e)) {
                    checksum += std::string_view(s->root().name()).size();
                    ++got;
                } else if (std::holds_alternative<xmpp::FramerError>(*e)) {
                    std::fprintf(stderr, "framer error: %s\n", std::get<xmpp::FramerError>(*e).message.c_str());
                    return 1;
                }
            }
        }
        framer_s.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
        if (got != count) {
            std::fprintf(stderr, "expected %d stanzas, got %d\n", count, got);
            return 1;
        }

        auto t1 = Clock::now();
        std::string doc_text = "<root xmlns='jabber:client'>" + stanzas + "</root>";
        pugi::xml_document doc;
        auto res = doc.load_buffer(doc_text.data(), doc_text.size(),
                                   pugi::parse_cdata | pugi::parse_escapes | pugi::parse_eol |
                                       pugi::parse_wconv_attribute | pugi::parse_ws_pcdata_single);
        if (!res) return 1;
        int n = 0;
        for (auto c : doc.document_element().children()) n += c.type() == pugi::node_element;
        dom_s.push_back(std::chrono::duration<double>(Clock::now() - t1).count());
        if (n != count) return 1;
    }
    double f = median(framer_s), d = median(dom_s);
    std::printf("stanzas: %d, bytes: %.1f MB, runs: %d (median)\n", count, mb, runs);
    std::printf("framer + DOM per stanza: %8.1f MB/s  %10.0f stanzas/s  %.2f us/stanza\n", mb / f, count / f,
                f / count * 1e6);
    std::printf("pugixml, one document:   %8.1f MB/s  %10.0f stanzas/s  %.2f us/stanza\n", mb / d, count / d,
                d / count * 1e6);
    std::printf("(checksum %zu)\n", checksum);
    return 0;
}
