#include "protocol/xml_framer.hpp"

#include <algorithm>
#include <cstring>

#include "protocol/base/utf8.hpp"

namespace xmpp {
namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

constexpr std::size_t kMaxEndTag = 1024;  // bytes of an end tag before its '>'

// Well-formed UTF-8 (RFC 3629) made of XML characters only (RFC 6120 §11.6).
// Returns the offset of the first bad byte, or npos.
std::size_t find_bad_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        // ASCII from 0x20 up, most of a stanza, eight bytes at a time: a word with no byte
        // of its high bit set and none below 0x20 is all XML characters. Any other word goes
        // through the per-byte path below (`below` never misses a byte under 0x20: the
        // lowest such byte is flagged whatever the borrows above it). Issue 15: this check
        // was 4 % of an incoming message's instructions.
        constexpr std::uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
        while (i + 8 <= s.size()) {
            std::uint64_t w;
            std::memcpy(&w, s.data() + i, 8);
            const std::uint64_t below = (w - 0x20 * ones) & ~w & highs;
            if ((w & highs) | below) break;
            i += 8;
        }
        if (i >= s.size()) break;
        std::uint32_t cp;
        std::size_t len = utf8_sequence(s, i, cp);
        if (len == 0 || !is_xml_char(cp)) return i;
        i += len;
    }
    return std::string_view::npos;
}

constexpr unsigned parse_options = pugi::parse_cdata | pugi::parse_escapes | pugi::parse_eol |
                                   pugi::parse_wconv_attribute | pugi::parse_ws_pcdata_single;

bool attr_is_xmlns_for(std::string_view attr, std::string_view prefix) {
    if (prefix.empty()) return attr == "xmlns";
    return attr.size() == 6 + prefix.size() && attr.substr(0, 6) == "xmlns:" &&
           attr.substr(6) == prefix;
}

}  // namespace

std::string_view StreamOpen::attribute(std::string_view name) const {
    for (const auto& [k, v] : attributes)
        if (k == name) return v;
    return {};
}

XmlFramer::XmlFramer(FramerLimits limits) : limits_(limits) {}

void XmlFramer::reset() { *this = XmlFramer(limits_); }

void XmlFramer::feed(std::string_view bytes) {
    if (state_ == State::Done) return;
    if (consumed_ > 0) {
        // Drop what was handed out, once per feed() rather than once per stanza.
        auto shift = [this](std::size_t& x) { x = x >= consumed_ ? x - consumed_ : 0; };
        buf_.erase(0, consumed_);
        offset_base_ += consumed_;
        shift(pos_);
        shift(item_start_);
        shift(tag_start_);
        if (entity_start_ != std::string::npos) shift(entity_start_);
        consumed_ = 0;
    }
    buf_.append(bytes);
}

template <class Plain>
bool XmlFramer::skip(std::size_t end, Plain plain) {
    // Only where the checks at the top of next() cannot fail: inside a stanza (depth 1 on),
    // below the stanza bound; in the stream header, up to the header bound. The byte it
    // stops at, plain or not, then goes through next()'s loop as before.
    const std::size_t bound =
        depth_ == 0 ? item_start_ + limits_.max_header_bytes + 1 : item_start_ + limits_.max_stanza_bytes;
    end = std::min(end, bound);
    const char* d = buf_.data();
    const std::size_t from = pos_;
    while (pos_ < end && plain(d[pos_])) ++pos_;
    return pos_ != from;
}

std::optional<FramerEvent> XmlFramer::fail(std::string condition, std::string message) {
    state_ = State::Done;
    message += " (at byte " + std::to_string(offset_base_ + pos_) + ")";
    buf_.clear();
    consumed_ = pos_ = 0;
    return FramerError{std::move(condition), std::move(message)};
}

bool XmlFramer::check_entity(std::size_t amp, std::size_t semi, std::string* why) const {
    std::string_view name(buf_.data() + amp + 1, semi - amp - 1);
    if (name == "amp" || name == "lt" || name == "gt" || name == "quot" || name == "apos")
        return true;
    if (name.size() >= 2 && name[0] == '#') {
        bool hex = name[1] == 'x';
        std::string_view digits = name.substr(hex ? 2 : 1);
        if (digits.empty() || digits.size() > 8) {
            *why = "bad character reference '&" + std::string(name) + ";'";
            return false;
        }
        std::uint32_t cp = 0;  // at most 8 digits: fits
        for (char d : digits) {
            int v;
            if (d >= '0' && d <= '9') v = d - '0';
            else if (hex && d >= 'a' && d <= 'f') v = d - 'a' + 10;
            else if (hex && d >= 'A' && d <= 'F') v = d - 'A' + 10;
            else {
                *why = "bad character reference '&" + std::string(name) + ";'";
                return false;
            }
            cp = cp * (hex ? 16 : 10) + static_cast<std::uint32_t>(v);
        }
        if (!is_xml_char(cp)) {
            *why = "character reference '&" + std::string(name) + ";' is not an XML character";
            return false;
        }
        return true;
    }
    *why = "undeclared entity '&" + std::string(name) + ";' (RFC 6120 §11.1)";
    return false;
}

std::optional<FramerEvent> XmlFramer::next() {
    const std::size_t n = buf_.size();
    while (pos_ < n) {
        const char c = buf_[pos_];
        // Bounds (RFC 6120 §13.12): a partial header or stanza may not grow without limit.
        if (depth_ == 0 && state_ != State::Prolog && pos_ - item_start_ > limits_.max_header_bytes)
            return fail("policy-violation", "stream header larger than " +
                                                std::to_string(limits_.max_header_bytes) + " bytes");
        // From the '<' of a stanza on, including its start tag (depth is still 1 there).
        if ((depth_ >= 2 || (depth_ == 1 && state_ != State::Text)) && pos_ - item_start_ >= limits_.max_stanza_bytes)
            return fail("policy-violation",
                        "stanza larger than " + std::to_string(limits_.max_stanza_bytes) + " bytes");
        if (entity_start_ != std::string::npos) {
            if (c == ';') {
                std::string why;
                if (!check_entity(entity_start_, pos_, &why))
                    return fail(why.starts_with("undeclared") ? "restricted-xml" : "not-well-formed",
                                why);
                entity_start_ = std::string::npos;
                ++pos_;
                continue;
            }
            if (pos_ - entity_start_ > 12 || c == '<' || c == '&' || is_ws(c) || c == quote_)
                return fail("not-well-formed", "unterminated entity reference");
            ++pos_;
            continue;
        }
        switch (state_) {
        case State::Prolog:
            if (is_ws(c)) {
                consumed_ = ++pos_;
                continue;
            }
            if (c != '<') return fail("not-well-formed", "text before the stream header");
            item_start_ = tag_start_ = pos_++;
            state_ = State::TagOpen;
            continue;
        case State::XmlDecl:
            if (c == '>' && buf_[pos_ - 1] == '?') {
                std::string_view decl(buf_.data() + tag_start_, pos_ + 1 - tag_start_);
                if (decl.size() < 7 || decl.substr(0, 5) != "<?xml" || !is_ws(decl[5]))
                    return fail("restricted-xml", "processing instructions are not allowed");
                state_ = State::Prolog;
                consumed_ = ++pos_;
                continue;
            }
            if (pos_ - tag_start_ > 256) return fail("not-well-formed", "XML declaration too long");
            ++pos_;
            continue;
        case State::Text: {
            if (depth_ <= 1) {
                if (c == '<') {
                    elements_ = 0;
                    item_start_ = tag_start_ = pos_++;
                    state_ = State::TagOpen;
                    continue;
                }
                if (!is_ws(c)) return fail("not-well-formed", "text between stanzas");
                consumed_ = ++pos_;  // whitespace keepalive (RFC 6120 §4.6.1)
                continue;
            }
            // Inside a stanza: skip plain character data quickly.
            std::size_t i = pos_;
            const char* d = buf_.data();
            while (i < n && d[i] != '<' && d[i] != '&') ++i;
            pos_ = i;
            if (i == n) continue;
            if (d[i] == '&') {
                entity_start_ = pos_++;
                continue;
            }
            tag_start_ = pos_++;
            state_ = State::TagOpen;
            continue;
        }
        case State::TagOpen:
            if (c == '/') {
                state_ = State::EndTag;
            } else if (c == '!') {
                if (depth_ < 2) return fail("restricted-xml", "comments and DTDs are not allowed");
                state_ = State::Bang;
            } else if (c == '?') {
                if (depth_ != 0 || tag_start_ != item_start_)
                    return fail("restricted-xml", "processing instructions are not allowed");
                state_ = State::XmlDecl;
            } else if (is_ws(c) || c == '>' || c == '<' || c == '=') {
                return fail("not-well-formed", "bad tag name");
            } else {
                state_ = State::StartTag;
                attributes_ = 0;
                if (depth_ >= 1 && ++elements_ > limits_.max_elements)  // the stanza's own counts too
                    return fail("policy-violation",
                                "more than " + std::to_string(limits_.max_elements) + " elements in one stanza");
            }
            ++pos_;
            continue;
        case State::StartTag: {
            // Names, '=' and blanks: past them in one go, as far as the bounds above allow
            // (issue 15: byte by byte through this loop, tags cost most of the framing).
            // The byte it stops at goes through the checks above, then here.
            auto plain = [](char b) { return b != '"' && b != '\'' && b != '>' && b != '/' && b != '<' && b != '&'; };
            if (skip(n, plain)) continue;
            if (c == '"' || c == '\'') {
                quote_ = c;
                state_ = State::AttrValue;
                if (++attributes_ > limits_.max_attributes)
                    return fail("policy-violation",
                                "more than " + std::to_string(limits_.max_attributes) + " attributes on one element");
            } else if (c == '>') {
                ++pos_;
                state_ = State::Text;
                if (depth_ == 0) {
                    depth_ = 1;
                    return finish_header();
                }
                if (++depth_ > limits_.max_depth + 1)
                    return fail("policy-violation",
                                "elements nested deeper than " + std::to_string(limits_.max_depth));
                continue;
            } else if (c == '/') {
                state_ = State::SlashInTag;
            } else if (c == '<' || c == '&') {
                return fail("not-well-formed", "'<' or '&' inside a tag");
            }
            ++pos_;
            continue;
        }
        case State::AttrValue: {
            if (skip(n, [q = quote_](char b) { return b != q && b != '<' && b != '&'; })) continue;
            if (c == quote_) {
                quote_ = 0;
                state_ = State::StartTag;
            } else if (c == '<') {
                return fail("not-well-formed", "'<' inside an attribute value");
            } else if (c == '&') {
                entity_start_ = pos_;
            }
            ++pos_;
            continue;
        }
        case State::SlashInTag:
            if (c != '>') return fail("not-well-formed", "'/' inside a tag");
            ++pos_;
            state_ = State::Text;
            if (depth_ == 0) return fail("not-well-formed", "the stream header closes itself");
            if (depth_ == 1) return finish_stanza();
            if (depth_ > limits_.max_depth)
                return fail("policy-violation",
                            "elements nested deeper than " + std::to_string(limits_.max_depth));
            continue;
        case State::EndTag: {
            if (skip(std::min(n, tag_start_ + kMaxEndTag + 1), [](char b) { return b != '>'; })) continue;
            if (c != '>') {
                if (pos_ - tag_start_ > kMaxEndTag) return fail("not-well-formed", "end tag too long");
                ++pos_;
                continue;
            }
            ++pos_;
            state_ = State::Text;
            if (depth_ <= 1) {
                // Only </stream:stream> may close at stream level; "</stream:stream >" is fine.
                std::string_view name(buf_.data() + tag_start_ + 2, pos_ - tag_start_ - 3);
                while (!name.empty() && is_ws(name.back())) name.remove_suffix(1);
                if (depth_ == 0 || name != stream_name_)
                    return fail("not-well-formed", "unexpected end tag '</" + std::string(name) + ">'");
                state_ = State::Done;
                consumed_ = pos_;
                return StreamEnd{};
            }
            if (--depth_ == 1) return finish_stanza();
            continue;
        }
        case State::Bang: {
            static constexpr std::string_view cdata_open = "[CDATA[";
            std::size_t k = pos_ - tag_start_ - 2;
            if (c != cdata_open[k]) return fail("restricted-xml", "comments and DTDs are not allowed");
            ++pos_;
            if (k + 1 == cdata_open.size()) state_ = State::CData;
            continue;
        }
        case State::CData: {
            const char* d = buf_.data();
            std::size_t i = pos_;
            while (i < n && d[i] != '>') ++i;
            pos_ = i;
            if (i == n) continue;
            ++pos_;
            if (i - tag_start_ >= 11 && d[i - 1] == ']' && d[i - 2] == ']') state_ = State::Text;
            continue;
        }
        case State::Done:
            pos_ = n;
            continue;
        }
    }
    return std::nullopt;
}

std::optional<FramerEvent> XmlFramer::finish_header() {
    std::string_view tag(buf_.data() + item_start_, pos_ - item_start_);
    if (auto bad = find_bad_utf8(tag); bad != std::string_view::npos)
        return fail("not-well-formed", "invalid UTF-8 or control character in the stream header");
    std::size_t name_end = 1;
    while (name_end < tag.size() && !is_ws(tag[name_end]) && tag[name_end] != '>') ++name_end;
    std::string name(tag.substr(1, name_end - 1));
    std::string text(tag);
    text += "</" + name + ">";
    pugi::xml_document doc;
    if (auto r = doc.load_buffer(text.data(), text.size(), parse_options, pugi::encoding_utf8); !r)
        return fail("not-well-formed", std::string("bad stream header: ") + r.description());
    StreamOpen open;
    open.name = name;
    for (auto a : doc.document_element().attributes()) {
        open.attributes.emplace_back(a.name(), a.value());
        std::string_view an = a.name();
        if (an == "xmlns" || an.starts_with("xmlns:")) inherited_ns_.emplace_back(a.name(), a.value());
    }
    // RFC 6120 §4.8.1: the stream element must be in the streams namespace.
    auto colon = name.find(':');
    std::string prefix = colon == std::string::npos ? "" : name.substr(0, colon);
    std::string local = colon == std::string::npos ? name : name.substr(colon + 1);
    std::string_view ns = open.attribute(prefix.empty() ? "xmlns" : "xmlns:" + prefix);
    if (local != "stream" || ns != ns_streams)
        return fail("invalid-namespace", "the stream header is not <stream> in " +
                                             std::string(ns_streams));
    stream_name_ = name;
    consumed_ = pos_;
    return open;
}

std::optional<FramerEvent> XmlFramer::finish_stanza() {
    std::string_view text(buf_.data() + item_start_, pos_ - item_start_);
    if (auto bad = find_bad_utf8(text); bad != std::string_view::npos) {
        pos_ = item_start_ + bad;
        return fail("not-well-formed", "invalid UTF-8 or a control character");
    }
    Stanza stanza;
    auto r = stanza.doc.load_buffer(text.data(), text.size(), parse_options, pugi::encoding_utf8);
    if (!r) {
        pos_ = item_start_ + static_cast<std::size_t>(r.offset);
        return fail("not-well-formed", r.description());
    }
    // Carry the namespaces inherited from the stream header (pugixml is not namespace-aware).
    auto root = stanza.root();
    for (const auto& [name, uri] : inherited_ns_)
        if (!root.attribute(name.c_str())) root.append_attribute(name.c_str()) = uri.c_str();
    consumed_ = item_start_ = pos_;
    return stanza;
}

std::string_view namespace_of(pugi::xml_node element) {
    std::string_view name = element.name();
    auto colon = name.find(':');
    std::string_view prefix = colon == std::string_view::npos ? std::string_view{} : name.substr(0, colon);
    for (auto n = element; n && n.type() == pugi::node_element; n = n.parent())
        for (auto a : n.attributes())
            if (attr_is_xmlns_for(a.name(), prefix)) return a.value();
    return {};
}

std::string_view local_name(pugi::xml_node element) {
    std::string_view name = element.name();
    auto colon = name.find(':');
    return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

bool is(pugi::xml_node element, std::string_view ns, std::string_view name) {
    return element.type() == pugi::node_element && local_name(element) == name &&
           namespace_of(element) == ns;
}

pugi::xml_node child(pugi::xml_node parent, std::string_view ns, std::string_view name) {
    for (auto c : parent.children())
        if (is(c, ns, name)) return c;
    return {};
}

}  // namespace xmpp
