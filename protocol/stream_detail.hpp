#pragma once
// Small helpers shared by stream.cpp and the stream_*.cpp files; not part of the protocol API.
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "protocol/xml_framer.hpp"

namespace xmpp::detail {

// RFC 6121 §2.6.1 and §3.4: stream features of the server's roster.
inline constexpr std::string_view ns_rosterver = "urn:xmpp:features:rosterver";
inline constexpr std::string_view ns_pre_approval = "urn:xmpp:features:pre-approval";

// The first child element in `ns` (a defined condition, §4.9.3 and §8.3.3), and <text/>.
inline std::pair<std::string, std::string> condition_and_text(pugi::xml_node error, std::string_view ns) {
    std::string condition, text;
    for (auto c : error.children()) {
        if (c.type() != pugi::node_element || namespace_of(c) != ns) continue;
        if (local_name(c) == "text") text = c.child_value();
        else if (condition.empty()) condition = std::string(local_name(c));
    }
    if (condition.empty()) condition = "undefined-condition";
    return {condition, text};
}

inline std::optional<std::uint32_t> parse_h(std::string_view text) {
    std::uint32_t h = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), h);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return h;
}

inline std::string describe(const std::pair<std::string, std::string>& ct) {
    return ct.second.empty() ? ct.first : ct.first + " (" + ct.second + ")";
}

}  // namespace xmpp::detail
