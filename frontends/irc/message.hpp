#pragma once
// IRC messages, sans-I/O: one line <-> Message, a splitter that cuts a byte stream into
// lines, and the text helpers the IRC session needs (UTF-8 checks, body splitting).
// Spec texts: modern-irc "Message Format" (_includes-c2s_structure.md) and IRCv3
// message-tags.md. Plain functions and values; LineSplitter is owned by one session on
// the loop thread and holds at most one partial line (its max_line_bytes) plus the
// complete lines not yet taken with next().
#include <cstddef>
#include <deque>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "frontends/line_splitter.hpp"
#include "protocol/base/result.hpp"

namespace irc {

// message-tags "Size limit": the tag section, '@' and the trailing space included.
inline constexpr std::size_t max_tag_bytes = 8191;
// modern-irc "Message Format": 512 bytes with CR LF for source, command and parameters.
inline constexpr std::size_t max_body_bytes = 510;
// The longest line LineSplitter keeps (CR included, LF not): anything longer cannot parse.
inline constexpr std::size_t max_line_bytes = max_tag_bytes + max_body_bytes + 2;
// modern-irc "Parameters": software SHOULD AVOID sending more than 15; RFC 2812 §2.3.1
// makes everything after the 14th middle parameter the 15th.
inline constexpr std::size_t max_params = 15;

struct Message {
    std::vector<std::pair<std::string, std::string>> tags;  // in order; "" for no value
    std::string source;                                     // "" for none
    std::string command;                                    // upper case, or 3 digits
    std::vector<std::string> params;                        // the trailing one included

    // The value of tag `key`, or nullptr when the message has no such tag.
    const std::string* tag(std::string_view key) const;

    friend bool operator==(const Message&, const Message&) = default;
};

// Parses ONE line, without its CR LF. Error codes:
//   "empty"          nothing but spaces (modern-irc: empty lines are ignored)
//   "bad-char"       NUL, CR or LF inside the line (excluded everywhere by the grammar)
//   "tags-too-long"  tag section over max_tag_bytes        } ERR_INPUTTOOLONG (417)
//   "line-too-long"  the rest over max_body_bytes          }
//   "invalid-utf8"   the line is not UTF-8 (UTF8ONLY; FAIL ... INVALID_UTF8)
//   "bad-tags"       a tag without a key ("@=x", "@a;;b", "@ CMD")
//   "no-command"     tags and/or source but no command
//   "bad-command"    a command that is neither letters nor 3 digits (the message names it)
xmpp::Result<Message> parse(std::string_view line);

// The line for `m`, WITHOUT CR LF; no length limit is applied (split text first). The last
// parameter gets a ':' when it is empty, contains a space or starts with ':', and always
// with colon_last (for message text: naive clients take the text from the first " :",
// and servers commonly send it that way). The output
// is always one line: CR, LF and NUL never appear in it. A Message that cannot be written
// as it is (a middle parameter that is empty, has a space or a leading ':'; a space in
// the source or command; ' ', ';' or '=' in a tag key) is our bug; such bytes become '_'
// and an empty middle parameter becomes "*", so the parameter count stays right.
std::string serialize(const Message& m, bool colon_last = false);
// serialize(m, colon_last) + "\r\n": what goes to the socket.
std::string wire(const Message& m, bool colon_last = false);
// Builds a message without tags: make("irc.local", "001", {"alice", "Welcome"}).
Message make(std::string source, std::string command, std::initializer_list<std::string_view> params);

// message-tags "Escaping values".
std::string escape_tag_value(std::string_view raw);
std::string unescape_tag_value(std::string_view escaped);

// Well-formed UTF-8 (RFC 3629 §4): no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(std::string_view s);

// Splits a message body into PRIVMSG-sized pieces. Lines first: LF ends a line, CR is
// dropped, empty lines are skipped (IRC cannot send an empty message: ERR_NOTEXTTOSEND).
// Then each line into pieces of at most max_bytes bytes (at least 4, so that any code
// point fits), cut between code points, and after the last space when one falls in the
// last quarter of the piece (the space stays at the end of the earlier piece). The pieces
// concatenated give the text without its CR and LF bytes; from valid UTF-8 every piece is
// valid UTF-8.
std::vector<std::string> split_text(std::string_view text, std::size_t max_bytes);

// The splitter of frontends/line_splitter.hpp, with IRC's longest line (modern-irc
// "Message Format" and "Compatibility with incorrect software"; a lone CR stays in the
// line, and parse refuses it).
class LineSplitter : public frontends::LineSplitter {
public:
    explicit LineSplitter(std::size_t max_line_bytes = irc::max_line_bytes)
        : frontends::LineSplitter(max_line_bytes) {}
};

}  // namespace irc
