#include "protocol/base/base64.hpp"

#include <cstddef>
#include <cstdint>

namespace xmpp {
namespace {

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

// RFC 4648 §4.
std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t k = 0;
    auto at = [&](std::size_t i) {
        return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i]));
    };
    for (; k + 3 <= bytes.size(); k += 3) {
        std::uint32_t v = at(k) << 16 | at(k + 1) << 8 | at(k + 2);
        out.push_back(kBase64Alphabet[v >> 18 & 63]);
        out.push_back(kBase64Alphabet[v >> 12 & 63]);
        out.push_back(kBase64Alphabet[v >> 6 & 63]);
        out.push_back(kBase64Alphabet[v & 63]);
    }
    std::size_t rest = bytes.size() - k;
    if (rest == 1) {
        std::uint32_t v = at(k) << 16;
        out.push_back(kBase64Alphabet[v >> 18 & 63]);
        out.push_back(kBase64Alphabet[v >> 12 & 63]);
        out += "==";
    } else if (rest == 2) {
        std::uint32_t v = at(k) << 16 | at(k + 1) << 8;
        out.push_back(kBase64Alphabet[v >> 18 & 63]);
        out.push_back(kBase64Alphabet[v >> 12 & 63]);
        out.push_back(kBase64Alphabet[v >> 6 & 63]);
        out.push_back('=');
    }
    return out;
}

// RFC 4648 §4, strictly: no whitespace, padding only at the end, and (§3.5) zero pad bits,
// so that every byte string has exactly one accepted encoding.
Result<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) {
        return make_error("bad-base64", "base64 length is not a multiple of 4");
    }
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t k = 0; k < text.size(); k += 4) {
        bool last = k + 4 == text.size();
        std::size_t padding = 0;
        if (last && text[k + 3] == '=') padding = text[k + 2] == '=' ? 2 : 1;
        std::uint32_t v = 0;
        for (std::size_t j = 0; j < 4; ++j) {
            if (j >= 4 - padding) {
                v <<= 6;
                continue;
            }
            int d = value(text[k + j]);
            if (d < 0) {
                return make_error("bad-base64",
                                  text[k + j] == '='
                                      ? "base64 padding in the middle of the data"
                                      : "invalid character in base64 data");
            }
            v = v << 6 | static_cast<std::uint32_t>(d);
        }
        if ((padding == 1 && (v & 0xff) != 0) || (padding == 2 && (v & 0xffff) != 0)) {
            return make_error("bad-base64", "base64 padding bits are not zero");
        }
        out.push_back(static_cast<char>(v >> 16 & 0xff));
        if (padding < 2) out.push_back(static_cast<char>(v >> 8 & 0xff));
        if (padding < 1) out.push_back(static_cast<char>(v & 0xff));
    }
    return out;
}

}  // namespace xmpp
