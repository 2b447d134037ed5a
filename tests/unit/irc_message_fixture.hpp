#pragma once
// The helpers of the IRC message and line tests (irc_message_test.cpp, irc_lines_test.cpp):
// a line parsed, or the error it gives.
#include <catch2/catch.hpp>

#include "frontends/irc/message.hpp"
#include "frontends/irc/nicks.hpp"

namespace irc_message_test {

using irc::Message;
using Tags = std::vector<std::pair<std::string, std::string>>;
using Params = std::vector<std::string>;

inline Message parsed(std::string_view line) {
    auto r = irc::parse(line);
    INFO(std::string(line) << " -> " << (r ? std::string("ok") : r.error().code + ": " + r.error().message));
    REQUIRE(r);
    return r.value();
}

inline std::string error_of(std::string_view line) {
    auto r = irc::parse(line);
    return r ? std::string("ok") : r.error().code;
}

}  // namespace irc_message_test
