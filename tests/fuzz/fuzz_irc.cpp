// Fuzzes the IRC message layer as a hostile IRC client would drive it: any bytes, in any
// split, through LineSplitter and parse; and checks the properties the session relies on:
//   - what parse accepts, serialize prints as one line that parses back equal;
//   - split_text keeps every byte but CR/LF, in pieces within the limit, and never cuts a
//     UTF-8 character of valid input;
//   - nick_base always gives a valid nick; NickMap::deserialize takes any garbage.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "frontends/irc/message.hpp"
#include "frontends/irc/nicks.hpp"

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

void check_line(std::string_view line) {
    auto m = irc::parse(line);
    if (!m) return;
    for (bool colon_last : {false, true}) {
        std::string out = irc::serialize(m.value(), colon_last);
        check(out.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
        auto again = irc::parse(out);
        if (!again) {
            // Printing can only grow a line by the ':' of a 15th parameter that had none
            // (RFC 2812 §2.3.1) or of colon_last; anything else is a bug.
            check(again.error().code == "line-too-long" && out.size() > line.size());
            continue;
        }
        check(again.value() == m.value());
        check(irc::serialize(again.value(), colon_last) == out);
    }
}

void check_split(std::string_view text, std::size_t max) {
    auto pieces = irc::split_text(text, max);
    bool utf8 = irc::valid_utf8(text);
    std::string joined, expected;
    for (const auto& p : pieces) {
        check(!p.empty() && p.size() <= std::max<std::size_t>(max, 4));
        check(p.find_first_of("\r\n") == std::string::npos);
        if (utf8) check(irc::valid_utf8(p));
        joined += p;
    }
    for (char c : text)
        if (c != '\r' && c != '\n') expected += c;
    check(joined == expected);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    check_line(in);

    // The splitter with its real limit and with a small one (lines over it show up within
    // -max_len), fed in pieces sized by the input itself.
    irc::LineSplitter big, small(1 + (size ? data[0] % 64 : 0));
    std::string_view rest = in;
    while (!rest.empty()) {
        std::size_t n = std::min<std::size_t>(rest.size(), 1 + static_cast<unsigned char>(rest[0]) % 97);
        for (auto* s : {&big, &small}) {
            s->feed(rest.substr(0, n));
            check(s->partial_size() <= irc::max_line_bytes);
            while (auto line = s->next()) {
                if (!*line) continue;
                check(!line->value().empty() && line->value().find('\n') == std::string::npos);
                check_line(line->value());
            }
        }
        rest.remove_prefix(n);
    }

    check_split(in, size ? 1 + data[size - 1] % 512 : 400);

    std::string base = irc::nick_base(in);
    check(irc::valid_nick(base) && irc::sanitize_nick(base) == base);
    auto map = irc::NickMap::deserialize(in);
    std::string text = map.serialize();
    check(irc::NickMap::deserialize(text).serialize() == text);
    std::string nick = map.nick_for("fuzz", std::string(in.substr(0, 64)));
    check(irc::valid_nick(nick) && map.lookup(nick) && !map.is_reserved(nick));
    return 0;
}
