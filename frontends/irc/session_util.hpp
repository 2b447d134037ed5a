#pragma once
// Small text helpers shared by the files of irc::Session (see session.hpp for the
// list). Internal to frontends/irc.
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace irc::detail {

inline constexpr std::string_view control_channel = "&stanzad";
inline constexpr std::size_t text_bytes = 400;  // a PRIVMSG body piece: room for the prefix and tags

inline std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return out;
}

inline std::string bare(std::string_view jid) { return std::string(jid.substr(0, jid.find('/'))); }
inline std::string resource(std::string_view jid) {
    auto slash = jid.find('/');
    return slash == std::string_view::npos ? "" : std::string(jid.substr(slash + 1));
}
inline std::string local_part(std::string_view jid) {
    std::string b = bare(jid);
    auto at = b.find('@');
    return at == std::string::npos ? "~" : b.substr(0, at);
}
inline std::string domain_part(std::string_view jid) {
    std::string b = bare(jid);
    auto at = b.find('@');
    return at == std::string::npos ? b : b.substr(at + 1);
}

inline std::vector<std::string> comma_list(std::string_view list) {
    std::vector<std::string> out;
    while (!list.empty()) {
        auto comma = list.find(',');
        out.emplace_back(list.substr(0, comma));
        list = comma == std::string_view::npos ? "" : list.substr(comma + 1);
    }
    return out;
}

inline std::vector<std::string> words(std::string_view text) {
    std::vector<std::string> out;
    std::istringstream in{std::string(text)};
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

}  // namespace irc::detail
