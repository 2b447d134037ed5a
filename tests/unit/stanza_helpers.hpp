#pragma once
// Helpers shared by the protocol unit tests.
#include <catch2/catch.hpp>

#include <string_view>

#include "protocol/xml_framer.hpp"

namespace xmpp::test {

// A stanza as the framer hands it out, with jabber:client inherited.
inline Stanza frame(std::string_view xml) {
    XmlFramer f;
    f.feed("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
    f.feed(xml);
    f.next();
    auto e = f.next();
    REQUIRE(e);
    REQUIRE(std::holds_alternative<Stanza>(*e));
    return std::move(std::get<Stanza>(*e));
}

}  // namespace xmpp::test
