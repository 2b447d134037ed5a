#include "frontends/irc/message.hpp"

#include <algorithm>

#include "protocol/base/utf8.hpp"

namespace irc {
namespace {

bool is_upper_letter(char c) { return c >= 'A' && c <= 'Z'; }
bool is_lower_letter(char c) { return c >= 'a' && c <= 'z'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

std::string_view skip_spaces(std::string_view s) {
    auto n = s.find_first_not_of(' ');
    return n == std::string_view::npos ? std::string_view{} : s.substr(n);
}

// The next space-separated token, and the input after it (leading spaces skipped).
std::string_view take_token(std::string_view& s) {
    auto sp = s.find(' ');
    std::string_view token = s.substr(0, sp);
    s = sp == std::string_view::npos ? std::string_view{} : skip_spaces(s.substr(sp));
    return token;
}

// message-tags "Format": <tags> ::= <tag> [';' <tag>]*, <tag> ::= <key> ['=' <escaped_value>].
// Keys are opaque (no validation beyond being non-empty); a repeated key keeps only its
// final occurrence ("SHOULD disregard all but the final occurrence").
xmpp::Status parse_tags(std::string_view section, std::vector<std::pair<std::string, std::string>>& out) {
    if (section.empty()) return xmpp::make_error("bad-tags", "'@' without tags");
    while (true) {
        auto semi = section.find(';');
        std::string_view tag = section.substr(0, semi);
        bool last = semi == std::string_view::npos;
        if (tag.empty()) return xmpp::make_error("bad-tags", "empty tag between ';'");
        auto eq = tag.find('=');
        std::string_view key = tag.substr(0, eq);
        if (key.empty()) return xmpp::make_error("bad-tags", "tag without a key");
        std::string value = eq == std::string_view::npos ? std::string{} : unescape_tag_value(tag.substr(eq + 1));
        std::erase_if(out, [&](const auto& kv) { return kv.first == key; });
        out.emplace_back(std::string(key), std::move(value));
        if (last) break;
        section.remove_prefix(semi + 1);
        if (section.empty()) break;  // "@a=b;": one trailing ';' is tolerated
    }
    return xmpp::Ok{};
}

// Replaces the bytes in `bad` with '_' (see serialize()).
void append_safe(std::string& out, std::string_view s, std::string_view bad) {
    for (char c : s) out += bad.find(c) == std::string_view::npos ? c : '_';
}

constexpr std::string_view nul_cr_lf("\0\r\n", 3);
constexpr std::string_view nul_cr_lf_space("\0\r\n ", 4);
constexpr std::string_view bad_in_key("\0\r\n ;=", 6);

}  // namespace

const std::string* Message::tag(std::string_view key) const {
    for (const auto& [k, v] : tags)
        if (k == key) return &v;
    return nullptr;
}

std::string escape_tag_value(std::string_view raw) {
    // message-tags "Escaping values": ; -> \:  SPACE -> \s  \ -> \\  CR -> \r  LF -> \n.
    // NUL has no escape and may not appear raw (<escaped_value> excludes it): dropped.
    std::string out;
    out.reserve(raw.size());
    for (char c : raw) {
        switch (c) {
        case ';': out += "\\:"; break;
        case ' ': out += "\\s"; break;
        case '\\': out += "\\\\"; break;
        case '\r': out += "\\r"; break;
        case '\n': out += "\\n"; break;
        case '\0': break;
        default: out += c;
        }
    }
    return out;
}

std::string unescape_tag_value(std::string_view escaped) {
    // message-tags "Escaping values": a lone '\' at the end gives no character; a '\'
    // before anything but : s \ r n is dropped ("\b" -> "b").
    std::string out;
    out.reserve(escaped.size());
    for (std::size_t i = 0; i < escaped.size(); ++i) {
        char c = escaped[i];
        if (c != '\\') {
            out += c;
            continue;
        }
        if (++i == escaped.size()) break;
        switch (escaped[i]) {
        case ':': out += ';'; break;
        case 's': out += ' '; break;
        case 'r': out += '\r'; break;
        case 'n': out += '\n'; break;
        default: out += escaped[i];  // "\\" -> "\", "\b" -> "b"
        }
    }
    return out;
}

bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        std::uint32_t cp;
        std::size_t len = xmpp::utf8_sequence(s, i, cp);
        if (len == 0) return false;
        i += len;
    }
    return true;
}

xmpp::Result<Message> parse(std::string_view line) {
    if (line.find_first_not_of(' ') == std::string_view::npos)
        return xmpp::make_error("empty", "empty line");
    // modern-irc "Message Format": NUL, CR and LF are in no part of a message.
    if (line.find_first_of(nul_cr_lf) != std::string_view::npos)
        return xmpp::make_error("bad-char", "NUL, CR or LF inside the line");

    Message m;
    std::string_view rest = line;
    std::string_view tags;
    if (rest.front() == '@') {
        // message-tags "Size limit": 8191 bytes "including the leading '@' and trailing
        // space"; the rest of the message keeps its own 512.
        auto sp = rest.find(' ');
        std::size_t section = (sp == std::string_view::npos ? rest.size() : sp) + 1;
        if (section > max_tag_bytes)
            return xmpp::make_error("tags-too-long", "tag section of " + std::to_string(section) +
                                                         " bytes; at most " + std::to_string(max_tag_bytes));
        tags = rest.substr(1, section - 2);
        rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
    }
    // modern-irc "Message Format": 512 bytes including CR LF (ERR_INPUTTOOLONG, 417).
    if (rest.size() > max_body_bytes)
        return xmpp::make_error("line-too-long", "line of " + std::to_string(rest.size() + 2) +
                                                     " bytes with CR LF; at most " + std::to_string(max_body_bytes + 2));
    // UTF8ONLY (ircv3 utf8-only.md): we advertise it and refuse anything else.
    if (!valid_utf8(line)) return xmpp::make_error("invalid-utf8", "the line is not valid UTF-8");
    if (line.front() == '@')
        if (auto st = parse_tags(tags, m.tags); !st) return st.error();

    // modern-irc "Message Format": SPACE ::= %x20 *( %x20 ); leading spaces are tolerated.
    rest = skip_spaces(rest);
    // modern-irc "Source": starts with ':' and ends at the next space.
    if (!rest.empty() && rest.front() == ':') {
        rest.remove_prefix(1);
        m.source = std::string(take_token(rest));
    }
    // modern-irc "Command": command ::= letter* / 3digit; case-insensitive, kept upper case.
    std::string_view command = take_token(rest);
    if (command.empty()) return xmpp::make_error("no-command", "no command");
    bool letters = std::all_of(command.begin(), command.end(),
                               [](char c) { return is_upper_letter(c) || is_lower_letter(c); });
    bool numeric = command.size() == 3 && std::all_of(command.begin(), command.end(), is_digit);
    if (!letters && !numeric) {
        std::string shown(command.substr(0, 32));
        return xmpp::make_error("bad-command", "'" + shown + "' is neither a command nor a numeric");
    }
    m.command.reserve(command.size());
    for (char c : command) m.command += is_lower_letter(c) ? static_cast<char>(c - 'a' + 'A') : c;

    // modern-irc "Parameters": parameters ::= *( SPACE middle ) [ SPACE ":" trailing ].
    // Past 14 middle parameters, the rest of the line is the 15th, ':' or not
    // (RFC 2812 §2.3.1: 14( SPACE middle ) [ SPACE [ ":" ] trailing ]).
    while (!rest.empty()) {
        if (rest.front() == ':') {
            m.params.emplace_back(rest.substr(1));
            break;
        }
        if (m.params.size() == max_params - 1) {
            m.params.emplace_back(rest);
            break;
        }
        m.params.emplace_back(take_token(rest));
    }
    return m;
}

std::string serialize(const Message& m, bool colon_last) {
    std::string out;
    if (!m.tags.empty()) {
        out += '@';
        bool first = true;
        for (const auto& [k, v] : m.tags) {
            if (!first) out += ';';
            first = false;
            append_safe(out, k, bad_in_key);
            // message-tags "Format": an empty value is sent in the missing form ("MAY
            // normalise tag values by converting the empty form to the missing form").
            if (!v.empty()) {
                out += '=';
                out += escape_tag_value(v);
            }
        }
        out += ' ';
    }
    if (!m.source.empty()) {
        out += ':';
        append_safe(out, m.source, nul_cr_lf_space);
        out += ' ';
    }
    append_safe(out, m.command, nul_cr_lf_space);
    for (std::size_t i = 0; i < m.params.size(); ++i) {
        const std::string& p = m.params[i];
        out += ' ';
        // modern-irc "Parameters": a parameter that contains spaces, is empty or begins
        // with ':' MUST be sent with a preceding ':', which only the last one may have.
        if (i + 1 == m.params.size()) {
            if (colon_last || p.empty() || p.front() == ':' || p.find(' ') != std::string::npos) out += ':';
            for (char c : p) out += nul_cr_lf.find(c) == std::string_view::npos ? c : ' ';
        } else if (p.empty()) {
            out += '*';
        } else {
            if (p.front() == ':') out += '_';
            append_safe(out, p.front() == ':' ? std::string_view(p).substr(1) : std::string_view(p), nul_cr_lf_space);
        }
    }
    return out;
}

std::string wire(const Message& m, bool colon_last) { return serialize(m, colon_last) + "\r\n"; }

Message make(std::string source, std::string command, std::initializer_list<std::string_view> params) {
    Message m;
    m.source = std::move(source);
    m.command = std::move(command);
    for (auto p : params) m.params.emplace_back(p);
    return m;
}

std::vector<std::string> split_text(std::string_view text, std::size_t max_bytes) {
    max_bytes = std::max<std::size_t>(max_bytes, 4);  // the longest UTF-8 sequence
    std::vector<std::string> out;
    while (!text.empty()) {
        auto nl = text.find('\n');
        std::string line;
        for (char c : text.substr(0, nl))
            if (c != '\r') line += c;
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        std::string_view rest = line;
        while (!rest.empty()) {
            if (rest.size() <= max_bytes) {
                out.emplace_back(rest);
                break;
            }
            // Cut before a lead byte: never inside a multi-byte sequence (utf8-only.md
            // "Implementation considerations"). Only bytes that are not UTF-8 can push
            // this back to 0; then the cut is at max_bytes.
            std::size_t cut = max_bytes;
            while (cut > 0 && is_continuation(static_cast<unsigned char>(rest[cut]))) --cut;
            if (cut == 0) cut = max_bytes;
            // After the last space, if it is in the last quarter of the piece.
            auto sp = rest.substr(0, cut).rfind(' ');
            if (sp != std::string_view::npos && sp + 1 >= cut - max_bytes / 4) cut = sp + 1;
            out.emplace_back(rest.substr(0, cut));
            rest.remove_prefix(cut);
        }
    }
    return out;
}

}  // namespace irc
