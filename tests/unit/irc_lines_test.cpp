// frontends/irc/message: LineSplitter (lines out of a byte stream) and split_text (text cut
// into lines that fit, never inside a character).
#include "irc_message_fixture.hpp"

using namespace irc_message_test;

namespace {

// Every line the splitter hands out, with "!" + code for errors.
std::vector<std::string> drain(irc::LineSplitter& s) {
    std::vector<std::string> out;
    while (auto r = s.next()) out.push_back(*r ? r->value() : "!" + r->error().code);
    return out;
}

std::string without_newlines(std::string_view s) {
    std::string out;
    for (char c : s)
        if (c != '\r' && c != '\n') out += c;
    return out;
}

void check_pieces(std::string_view text, std::size_t max) {
    auto pieces = irc::split_text(text, max);
    INFO("max " << max << " text '" << std::string(text) << "'");
    std::string joined;
    for (const auto& p : pieces) {
        CHECK(!p.empty());
        CHECK(p.size() <= std::max<std::size_t>(max, 4));
        CHECK(irc::valid_utf8(p));
        CHECK(p.find_first_of("\r\n") == std::string::npos);
        joined += p;
    }
    CHECK(joined == without_newlines(text));
}

}  // namespace

// --- LineSplitter -------------------------------------------------------------------

TEST_CASE("irc: the splitter cuts at CR LF and at a lone LF, and skips empty lines") {
    irc::LineSplitter s;
    s.feed("NICK a\r\nUSER u 0 * :U\n\r\n\nPING x\r\nPART");
    CHECK(drain(s) == std::vector<std::string>{"NICK a", "USER u 0 * :U", "PING x"});
    CHECK(s.partial_size() == 4);
    s.feed(" #c\r\n");
    CHECK(drain(s) == std::vector<std::string>{"PART #c"});
    // A lone CR is not an end of line (only CR LF and LF are); parse refuses it.
    s.feed("A\rB\r\n\r\r\n");
    CHECK(drain(s) == std::vector<std::string>{"A\rB", "\r"});
    CHECK(error_of("A\rB") == "bad-char");
}

TEST_CASE("irc: the splitter works one byte at a time") {
    std::string stream = "@t=1 :s PRIVMSG #c :hello\r\nPING x\nQUIT\r\n";
    irc::LineSplitter s;
    std::vector<std::string> got;
    for (char c : stream) {
        s.feed(std::string_view(&c, 1));
        for (auto& l : drain(s)) got.push_back(l);
    }
    CHECK(got == std::vector<std::string>{"@t=1 :s PRIVMSG #c :hello", "PING x", "QUIT"});
    CHECK(s.partial_size() == 0);
}

TEST_CASE("irc: a 10 KB line is reported once, dropped, and the next line is fine") {
    irc::LineSplitter s;
    std::string big(10 * 1024, 'x');
    s.feed("PRIVMSG #c :" + big);  // no LF yet: reported already, memory stays bounded
    CHECK(drain(s) == std::vector<std::string>{"!line-too-long"});
    CHECK(s.partial_size() == 0);
    s.feed(big);
    s.feed(big);
    CHECK(drain(s).empty());
    CHECK(s.partial_size() == 0);
    s.feed("\r\nPING ok\r\n");
    CHECK(drain(s) == std::vector<std::string>{"PING ok"});

    // Byte by byte, too.
    irc::LineSplitter b;
    std::string all = big + "\r\nPING ok\r\n";
    std::vector<std::string> got;
    for (char c : all) {
        b.feed(std::string_view(&c, 1));
        CHECK(b.partial_size() <= irc::max_line_bytes);
        for (auto& l : drain(b)) got.push_back(l);
    }
    CHECK(got == std::vector<std::string>{"!line-too-long", "PING ok"});
}

TEST_CASE("irc: the splitter keeps a line of exactly its limit") {
    irc::LineSplitter s(10);
    s.feed("0123456789\n0123456789\r\n01234567890\nok\n");
    // 10 bytes fit; with CR the second line is 11 and too long; so is the third.
    CHECK(drain(s) == std::vector<std::string>{"0123456789", "!line-too-long", "!line-too-long", "ok"});

    irc::LineSplitter d;
    std::string longest = "@k=" + std::string(8191 - 4, 'x') + " PRIVMSG #c :" + std::string(498, 'y');
    d.feed(longest + "\r\n");
    auto lines = drain(d);
    REQUIRE(lines.size() == 1);
    CHECK(irc::parse(lines[0]));
}

// --- split_text ---------------------------------------------------------------------

TEST_CASE("irc: split_text cuts lines and skips empty ones") {
    using V = std::vector<std::string>;
    CHECK(irc::split_text("hello", 400) == V{"hello"});
    CHECK(irc::split_text("hello\nworld\r\n\r\n\nagain\n", 400) == V{"hello", "world", "again"});
    CHECK(irc::split_text("", 400).empty());
    CHECK(irc::split_text("\r\n\n", 400).empty());
    CHECK(irc::split_text(" ", 400) == V{" "});
    CHECK(irc::split_text("a\rb", 400) == V{"ab"});
}

TEST_CASE("irc: split_text prefers a space in the last quarter") {
    using V = std::vector<std::string>;
    CHECK(irc::split_text("hello world foo", 12) == V{"hello world ", "foo"});
    CHECK(irc::split_text("hello world foo", 13) == V{"hello world ", "foo"});
    // The only space is too early: a hard cut.
    CHECK(irc::split_text("ab cdefghijklmnop", 8) == V{"ab cdefg", "hijklmno", "p"});
    CHECK(irc::split_text("aaaaaa bbbbbb", 8) == V{"aaaaaa ", "bbbbbb"});
    CHECK(irc::split_text("0123456789", 4) == V{"0123", "4567", "89"});
    CHECK(irc::split_text("0123456789", 1) == V{"0123", "4567", "89"});  // 4 at least
}

TEST_CASE("irc: split_text never cuts a character, at any position") {
    const std::vector<std::string> chars = {"é", "€", "😀", " ", "a"};
    for (std::size_t max = 1; max <= 24; ++max) {
        for (std::size_t lead = 0; lead <= max + 4; ++lead) {
            for (const auto& c : chars) {
                std::string text(lead, 'a');
                for (int i = 0; i < 12; ++i) text += c;
                check_pieces(text, max);
                check_pieces(text + "\n" + text + " x\r\n", max);
            }
            std::string mixed(lead, 'b');
            mixed += "é€😀 é€😀aé\n€😀 😀😀 €€ ";
            check_pieces(mixed, max);
        }
    }
    // A real size: an IRC line has room for roughly 400 bytes of text.
    std::string big;
    for (int i = 0; i < 300; ++i) big += i % 7 ? "😀€é" : " word ";
    check_pieces(big, 400);
    auto pieces = irc::split_text(big, 400);
    REQUIRE(pieces.size() > 1);
    for (std::size_t i = 0; i + 1 < pieces.size(); ++i) CHECK(pieces[i].size() >= 300);
}

TEST_CASE("irc: split_text on bytes that are not UTF-8 still ends and keeps every byte") {
    std::string junk = "\x80\x80\x80\x80\x80\x80\x80\x80\x80\xff\xfe abc\xe2\x82";
    auto pieces = irc::split_text(junk, 4);
    std::string joined;
    for (const auto& p : pieces) {
        CHECK(p.size() <= 4);
        joined += p;
    }
    CHECK(joined == junk);
}
