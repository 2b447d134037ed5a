#pragma once
// Incremental XML framer for one XMPP stream (RFC 6120 §4, §11).
//
// Bytes go in with feed(), in any split (one byte at a time works); next() hands out the
// stream header, each complete top-level element (a stanza, or a stream-level element
// such as <stream:features/>) as its own pugixml document, and the stream's end.
// Each stanza's root element carries the namespace declarations it inherited from the
// stream header, so namespace_of() works on it alone.
//
// RFC 6120 §11.1 restricts XMPP to a subset of XML: comments, processing instructions
// (other than the XML declaration before the header), DTDs and entities other than the
// five predefined ones and character references are errors here. Input must be UTF-8.
//
// Owned by one stream, one thread. Memory is bounded by Limits: the framer holds at most
// one partial stanza (max_stanza_bytes) plus the bytes of one feed() call that follow it.
// Errors are values (FramerError); after the first one the framer stays failed.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <pugixml.hpp>

namespace xmpp {

inline constexpr std::string_view ns_streams = "http://etherx.jabber.org/streams";

struct FramerLimits {
    std::size_t max_stanza_bytes = 1 << 20;  // a stanza larger than this is a policy violation
    std::size_t max_header_bytes = 16 << 10;
    std::size_t max_depth = 32;              // element nesting inside one stanza
    // Work per stanza: namespace lookups (namespace_of) scan the attributes of an element and
    // its ancestors, so both counts are bounded. A roster of 10,000 contacts with a group each
    // is about 20,000 elements; no XMPP element we know of has more than a dozen attributes.
    std::size_t max_attributes = 64;         // per element, xmlns declarations included
    std::size_t max_elements = 50'000;       // per stanza, the stanza element included
};

struct StreamOpen {
    std::string name;  // qualified name, normally "stream:stream"
    std::vector<std::pair<std::string, std::string>> attributes;  // including xmlns*
    std::string_view attribute(std::string_view name) const;
};

struct Stanza {
    pugi::xml_document doc;
    pugi::xml_node root() const { return doc.document_element(); }
};

struct StreamEnd {};

struct FramerError {
    std::string condition;  // RFC 6120 §4.9.3 stream error to send: not-well-formed,
                            // restricted-xml, policy-violation, invalid-namespace, bad-format
    std::string message;    // for people, with the byte offset in the stream
};

using FramerEvent = std::variant<StreamOpen, Stanza, StreamEnd, FramerError>;

class XmlFramer {
public:
    explicit XmlFramer(FramerLimits limits = {});

    void feed(std::string_view bytes);
    // The next complete item, or nullopt until more bytes arrive. A FramerError is
    // returned once; after it (or after StreamEnd) nothing more comes out.
    std::optional<FramerEvent> next();
    // Stream restart after STARTTLS or SASL (RFC 6120 §5.4.3.3, §6.4.6): forget all
    // state and any buffered bytes, expect a new header.
    void reset();

    std::size_t buffered_bytes() const { return buf_.size() - consumed_; }

private:
    enum class State {
        Prolog,        // before the header: whitespace, <?xml ...?>
        XmlDecl,       // inside <?xml ... ?>
        Text,          // character data at stream level or inside a stanza
        TagOpen,       // just after '<'
        StartTag,      // inside <name ...>, outside quotes
        AttrValue,     // inside a quoted attribute value
        SlashInTag,    // saw '/' inside a start tag, expect '>'
        EndTag,        // inside </name ...>
        Bang,          // after "<!": expect "[CDATA["
        CData,         // inside <![CDATA[ ... ]]>
        Done,          // after </stream:stream> or an error
    };

    std::optional<FramerEvent> fail(std::string condition, std::string message);
    std::optional<FramerEvent> finish_header();
    std::optional<FramerEvent> finish_stanza();
    bool check_entity(std::size_t amp, std::size_t semi, std::string* why) const;
    // Moves pos_ in one step past the bytes that are `plain`, stopping before `end` and
    // before any byte where a bound checked at the top of next() would fail; whether it moved.
    template <class Plain>
    bool skip(std::size_t end, Plain plain);

    FramerLimits limits_;
    std::string buf_;
    std::size_t consumed_ = 0;   // bytes of buf_ already handed out
    std::size_t pos_ = 0;        // scan position in buf_
    std::size_t offset_base_ = 0;  // stream offset of buf_[0], for error messages
    std::size_t item_start_ = 0;   // where the current header/stanza began in buf_
    std::size_t tag_start_ = 0;    // where the current tag began in buf_
    std::size_t entity_start_ = std::string::npos;  // '&' awaiting its ';'
    State state_ = State::Prolog;
    std::size_t depth_ = 0;        // 0 outside the stream, 1 inside it, 2+ inside a stanza
    std::size_t attributes_ = 0;   // in the current start tag
    std::size_t elements_ = 0;     // in the current stanza
    char quote_ = 0;
    std::string stream_name_;      // "stream:stream", with the header's prefix
    std::vector<std::pair<std::string, std::string>> inherited_ns_;  // from the header
};

// Namespace of an element of a framed stanza, resolved through xmlns declarations on it
// and its ancestors (pugixml itself is not namespace-aware). "" when undeclared.
std::string_view namespace_of(pugi::xml_node element);
// The element name without its prefix.
std::string_view local_name(pugi::xml_node element);
// True when `element` is {ns}name.
bool is(pugi::xml_node element, std::string_view ns, std::string_view name);
// First child element {ns}name, or an empty node.
pugi::xml_node child(pugi::xml_node parent, std::string_view ns, std::string_view name);

}  // namespace xmpp
