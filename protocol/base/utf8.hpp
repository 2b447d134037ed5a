#pragma once
// UTF-8 (RFC 3629) and XML 1.0 characters: one decoder for the framer, our XML output
// and the IRC front end.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace xmpp {

// The length (1 to 4) of the well-formed UTF-8 sequence that starts at s[i], with its code
// point in `cp`; 0 when none starts there (RFC 3629 §4: a bad lead byte, a missing
// continuation byte, an overlong form, a surrogate, above U+10FFFF).
inline std::size_t utf8_sequence(std::string_view s, std::size_t i, std::uint32_t& cp) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
        cp = c;
        return 1;
    }
    std::size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (len == 0 || s.size() - i < len) return 0;
    cp = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
    for (std::size_t k = 1; k < len; ++k) {
        auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr std::uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[len] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
    return len;
}

// XML 1.0 §2.2 Char.
inline bool is_xml_char(std::uint32_t cp) {
    return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD) ||
           (cp >= 0x10000 && cp <= 0x10FFFF);
}

}  // namespace xmpp
