#pragma once
// The helpers of the protocol/im codec tests (im_*_test.cpp, not the AccountSession tests of
// im_session_fixture.hpp): our own JID and a string that needs every XML escape.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>

#include "protocol/im.hpp"
#include "protocol/stream.hpp"
#include "protocol/xml_framer.hpp"
#include "stanza_helpers.hpp"

namespace im_test {

using namespace xmpp;

using test::frame;

inline const Jid own = Jid::parse("alice@example.org").value();

// A string that needs every XML escape, for the builders.
inline constexpr std::string_view nasty = "a'b\"c<d>e&f";

}  // namespace im_test
