// Fuzzes the OMEMO stanza codecs (protocol/omemo/stanza.hpp) with whatever stanzas the framer
// makes of the input, and the SCE envelope parser and payload decryption with the raw bytes:
// no crash, no hang, and what the parsers take out goes back into our builders as
// well-formed XML that parses to the same thing.
#include <cstddef>
#include <cstdint>
#include <string>

#include "protocol/im.hpp"
#include "protocol/omemo/payload.hpp"
#include "protocol/omemo/stanza.hpp"
#include "protocol/xml_framer.hpp"

namespace {

pugi::xml_node reparse(pugi::xml_document& doc, const std::string& xml) {
    if (!doc.load_string(xml.c_str())) __builtin_trap();  // a builder made bad XML
    return doc.document_element();
}

void parse_all(pugi::xml_node root) {
    using namespace xmpp::omemo;
    if (auto node = find_encrypted(root)) {
        if (auto e = parse_encrypted(node)) {
            pugi::xml_document doc;
            auto again = parse_encrypted(reparse(doc, make_encrypted(e.value())));
            if (!again || again.value().keys.size() != e.value().keys.size()) __builtin_trap();
            xmpp::OutgoingMessage m;
            m.to = "bob@example.org";
            m.id = "x";
            m.body = "secret";
            if (!xmpp::check_raw_stanza(make_encrypted_message(m, e.value())).ok()) __builtin_trap();
            for (const auto& k : e.value().keys)
                if (!key_for(e.value(), k.jid, k.rid)) __builtin_trap();  // every key is found by its address
            if (e.value().payload)
                (void)open(e.value().version, e.value().keys.front().data, e.value().iv, *e.value().payload);
        }
    }
    if (auto item = parse_pep_item(root); item && item->payload) {
        if (auto list = parse_device_list(item->payload)) {
            pugi::xml_document doc;
            auto again = parse_device_list(reparse(doc, make_device_list(Version::V2, list.value())));
            if (!again || again.value() != list.value()) __builtin_trap();
            (void)xmpp::check_raw_stanza(make_publish_devices("x", Version::Legacy, list.value()));
        }
        if (auto bundle = parse_bundle(item->payload)) {
            pugi::xml_document doc;
            auto again = parse_bundle(reparse(doc, make_bundle(Version::Legacy, bundle.value())));
            if (!again || again.value().prekeys.size() != bundle.value().prekeys.size()) __builtin_trap();
            if (!xmpp::check_raw_stanza(make_publish_bundle("x", Version::V2, 1, bundle.value())).ok())
                __builtin_trap();
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    // XEP-0420 envelope (what an OMEMO 2 payload decrypts to): what it takes out goes back
    // through make_envelope as XML that parses (text that is not XML-safe becomes U+FFFD
    // there, xml_escape), and from then on round-trips unchanged.
    if (auto env = xmpp::omemo::parse_envelope(input)) {
        using xmpp::omemo::make_envelope;
        auto again = xmpp::omemo::parse_envelope(make_envelope(env.value().body, env.value().from, "pad"));
        if (!again) __builtin_trap();
        auto third = xmpp::omemo::parse_envelope(make_envelope(again.value().body, again.value().from, "pad"));
        if (!third || third.value().body != again.value().body) __builtin_trap();
    }
    xmpp::FramerLimits limits;
    limits.max_stanza_bytes = 16384;
    limits.max_depth = 16;
    xmpp::XmlFramer f(limits);
    f.feed("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
    f.feed(input);
    while (auto e = f.next())
        if (auto* s = std::get_if<xmpp::Stanza>(&*e)) parse_all(s->root());
    return 0;
}
