// Fuzzes every instant-messaging and multi-user chat parser (protocol/im.hpp, muc.hpp) with
// whatever stanzas the framer makes of the input: no crash, no hang, and what the parsers
// take out goes back into our builders as well-formed XML.
#include <cstddef>
#include <cstdint>
#include <string>

#include "protocol/im.hpp"
#include "protocol/muc.hpp"
#include "protocol/xml_framer.hpp"

namespace {

void check(const std::string& xml) {
    if (!xmpp::check_raw_stanza(xml).ok()) __builtin_trap();  // a builder made bad XML
}

void parse_all(pugi::xml_node root) {
    static const xmpp::Jid own = xmpp::Jid::parse("alice@example.org").value();
    (void)xmpp::stanza_error(root);
    if (auto m = xmpp::parse_message(root, own)) {
        check(xmpp::make_message(xmpp::OutgoingMessage{"b@example.org", "chat", m->body, m->id, m->replace_id}));
        check(xmpp::make_receipt("b@example.org", m->id, m->origin_id));
        check(xmpp::make_displayed("b@example.org", "chat", m->stanza_id, m->displayed_id));
        if (!m->chat_state.empty()) check(xmpp::make_chat_state("b@example.org", "chat", m->chat_state));
    }
    if (auto c = xmpp::parse_carbon(root, own); c && c->message) (void)xmpp::parse_message(c->message, own);
    (void)xmpp::parse_mam_result(root, own);
    (void)xmpp::parse_mam_result(root, own, "room@muc.example.org");
    (void)xmpp::parse_mam_fin(root);
    (void)xmpp::parse_presence(root);
    if (auto p = xmpp::parse_muc_presence(root)) {
        check(xmpp::make_muc_join(p->room.empty() ? "r@m.example.org" : "r@m.example.org", "nick", p->status));
        check(xmpp::make_muc_leave("r@m.example.org", "nick", p->reason));
    }
    if (auto i = xmpp::parse_invite(root)) check(xmpp::make_direct_invite("b@example.org", i->room, i->reason, i->password));
    for (auto child : root.children()) {
        (void)xmpp::parse_roster(child);
        (void)xmpp::roster_version(child);
        (void)xmpp::parse_block_items(child);
    }
    (void)xmpp::parse_bookmarks(root);
    (void)xmpp::parse_legacy_bookmarks(root);
    (void)xmpp::classify_self_ping(root);
    (void)xmpp::parse_vcard_names(root);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    xmpp::FramerLimits limits;
    limits.max_stanza_bytes = 8192;
    limits.max_depth = 16;
    xmpp::XmlFramer f(limits);
    f.feed("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
    std::string_view input(reinterpret_cast<const char*>(data), size);
    // Any bytes a front end sends as a body or an id still make a well-formed stanza.
    check(xmpp::make_message(xmpp::OutgoingMessage{"b@example.org", "chat", std::string(input), std::string(input.substr(0, 64)), ""}));
    f.feed(input);
    while (auto e = f.next())
        if (auto* s = std::get_if<xmpp::Stanza>(&*e)) parse_all(s->root());
    return 0;
}
