#include <catch2/catch.hpp>

#include "frontends/irc/message.hpp"
#include "frontends/irc/nicks.hpp"

using irc::Message;
using Tags = std::vector<std::pair<std::string, std::string>>;
using Params = std::vector<std::string>;

namespace {

Message parsed(std::string_view line) {
    auto r = irc::parse(line);
    INFO(std::string(line) << " -> " << (r ? std::string("ok") : r.error().code + ": " + r.error().message));
    REQUIRE(r);
    return r.value();
}

std::string error_of(std::string_view line) {
    auto r = irc::parse(line);
    return r ? std::string("ok") : r.error().code;
}

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

// --- Message format -----------------------------------------------------------------

TEST_CASE("irc: the complete example messages of modern-irc 'Message Format'") {
    auto m = parsed(":irc.example.com CAP LS * :multi-prefix extended-join sasl");
    CHECK(m.tags.empty());
    CHECK(m.source == "irc.example.com");
    CHECK(m.command == "CAP");
    CHECK(m.params == Params{"LS", "*", "multi-prefix extended-join sasl"});

    m = parsed("@id=234AB :dan!d@localhost PRIVMSG #chan :Hey what's up!");
    CHECK(m.tags == Tags{{"id", "234AB"}});
    CHECK(m.source == "dan!d@localhost");
    CHECK(m.command == "PRIVMSG");
    CHECK(m.params == Params{"#chan", "Hey what's up!"});

    m = parsed("CAP REQ :sasl");
    CHECK(m.source.empty());
    CHECK(m.params == Params{"REQ", "sasl"});

    for (auto line : {":irc.example.com CAP LS * :multi-prefix extended-join sasl",
                      "@id=234AB :dan!d@localhost PRIVMSG #chan :Hey what's up!"})
        CHECK(irc::serialize(parsed(line)) == line);
    // The ':' of a last parameter without a space is optional; we leave it out.
    CHECK(irc::serialize(parsed("CAP REQ :sasl")) == "CAP REQ sasl");
}

TEST_CASE("irc: the tag examples of modern-irc 'Tags'") {
    CHECK(parsed("@id=123AB;rose CMD").tags == Tags{{"id", "123AB"}, {"rose", ""}});
    auto m = parsed("@url=;netsplit=tur,ty CMD");
    CHECK(m.tags == Tags{{"url", ""}, {"netsplit", "tur,ty"}});
    // message-tags "Format": an empty value may be normalised to the missing form.
    CHECK(irc::serialize(m) == "@url;netsplit=tur,ty CMD");
    CHECK(*m.tag("netsplit") == "tur,ty");
    CHECK(m.tag("rose") == nullptr);
}

TEST_CASE("irc: the parameter examples of modern-irc 'Parameters'") {
    struct Case {
        const char* line;
        Params params;
        const char* printed;
    };
    for (const auto& c : std::vector<Case>{
             {":irc.example.com CAP * LIST :", {"*", "LIST", ""}, ":irc.example.com CAP * LIST :"},
             {"CAP * LS :multi-prefix sasl", {"*", "LS", "multi-prefix sasl"}, "CAP * LS :multi-prefix sasl"},
             {"CAP REQ :sasl message-tags foo", {"REQ", "sasl message-tags foo"}, "CAP REQ :sasl message-tags foo"},
             {":dan!d@localhost PRIVMSG #chan :Hey!", {"#chan", "Hey!"}, ":dan!d@localhost PRIVMSG #chan Hey!"},
             {":dan!d@localhost PRIVMSG #chan Hey!", {"#chan", "Hey!"}, ":dan!d@localhost PRIVMSG #chan Hey!"},
             {":dan!d@localhost PRIVMSG #chan ::-)", {"#chan", ":-)"}, ":dan!d@localhost PRIVMSG #chan ::-)"},
         }) {
        auto m = parsed(c.line);
        CHECK(m.params == c.params);
        CHECK(irc::serialize(m) == c.printed);
        CHECK(parsed(irc::serialize(m)) == m);
    }
}

TEST_CASE("irc: the examples of message-tags.md parse and print back unchanged") {
    // Message text is printed with colon_last, as these examples have it.
    std::vector<std::pair<const char*, bool>> examples = {
        {":nick!ident@host.com PRIVMSG me :Hello", true},
        {"@aaa=bbb;ccc;example.com/ddd=eee :nick!ident@host.com PRIVMSG me :Hello", true},
        {"@example-tag=example-value PRIVMSG #channel :Message", true},
        {"@+example-client-tag=example-value PRIVMSG #channel :Message", true},
        {"@+icon=https://example.com/favicon.png :url_bot!bot@example.com PRIVMSG #channel :Example.com: A News Story", true},
        {"@+example.com/foo=bar :irc.example.com NOTICE #channel :A vendor-prefixed client-only tagged message", true},
        {"@+example=raw+:=,escaped\\:\\s\\\\ :irc.example.com NOTICE #channel :Message", true},
        {"@+example-client-tag=example-value TAGMSG @#channel", false},
        {"@label=123;msgid=abc;+example-client-tag=example-value :nick!user@example.com TAGMSG #channel", false},
        {":server.example.com 417 nick :Input line was too long", true},
    };
    for (const auto& [line, colon_last] : examples) {
        CHECK(irc::serialize(parsed(line), colon_last) == line);
        CHECK(parsed(irc::serialize(parsed(line))) == parsed(line));
    }
    CHECK(irc::serialize(parsed("PRIVMSG me :Hello")) == "PRIVMSG me Hello");
    CHECK(irc::serialize(parsed("PRIVMSG me :Hello"), true) == "PRIVMSG me :Hello");
    CHECK(irc::serialize(parsed("PING"), true) == "PING");
    auto m = parsed("@aaa=bbb;ccc;example.com/ddd=eee :nick!ident@host.com PRIVMSG me :Hello");
    CHECK(m.tags == Tags{{"aaa", "bbb"}, {"ccc", ""}, {"example.com/ddd", "eee"}});
    // "Raw value: raw+:=,escaped; \  Escaped value: raw+:=,escaped\:\s\\"
    m = parsed("@+example=raw+:=,escaped\\:\\s\\\\ :irc.example.com NOTICE #channel :Message");
    CHECK(m.tags == Tags{{"+example", "raw+:=,escaped; \\"}});
    CHECK(irc::escape_tag_value("raw+:=,escaped; \\") == "raw+:=,escaped\\:\\s\\\\");
}

TEST_CASE("irc: every tag escape, both ways (message-tags 'Escaping values')") {
    CHECK(irc::escape_tag_value(";") == "\\:");
    CHECK(irc::escape_tag_value(" ") == "\\s");
    CHECK(irc::escape_tag_value("\\") == "\\\\");
    CHECK(irc::escape_tag_value("\r") == "\\r");
    CHECK(irc::escape_tag_value("\n") == "\\n");
    CHECK(irc::escape_tag_value("a=b,c:d+é") == "a=b,c:d+é");
    CHECK(irc::escape_tag_value(std::string("a\0b", 3)) == "ab");  // NUL has no escape

    CHECK(irc::unescape_tag_value("\\:") == ";");
    CHECK(irc::unescape_tag_value("\\s") == " ");
    CHECK(irc::unescape_tag_value("\\\\") == "\\");
    CHECK(irc::unescape_tag_value("\\r") == "\r");
    CHECK(irc::unescape_tag_value("\\n") == "\n");
    CHECK(irc::unescape_tag_value("test\\") == "test");  // a lone '\' at the end: nothing
    CHECK(irc::unescape_tag_value("\\b") == "b");        // an unknown escape: '\' dropped
    CHECK(irc::unescape_tag_value("\\é") == "é");
    CHECK(irc::unescape_tag_value("\\\\s") == "\\s");
    CHECK(irc::unescape_tag_value("") == "");

    std::string all = "; \\\r\n;;  x\\";
    CHECK(irc::unescape_tag_value(irc::escape_tag_value(all)) == all);
    Message m;
    m.tags = {{"k", all}, {"+v.example/k2", "a b"}};
    m.command = "TAGMSG";
    m.params = {"#c"};
    CHECK(irc::serialize(m) == "@k=\\:\\s\\\\\\r\\n\\:\\:\\s\\sx\\\\;+v.example/k2=a\\sb TAGMSG #c");
    CHECK(parsed(irc::serialize(m)) == m);
}

TEST_CASE("irc: tag sections that are not tags") {
    CHECK(error_of("@ CMD") == "bad-tags");
    CHECK(error_of("@=x CMD") == "bad-tags");
    CHECK(error_of("@a;;b CMD") == "bad-tags");
    CHECK(error_of("@a;=b CMD") == "bad-tags");
    CHECK(error_of("@") == "bad-tags");
    CHECK(parsed("@a; CMD").tags == Tags{{"a", ""}});
    // "SHOULD disregard all but the final occurrence"
    CHECK(parsed("@a=1;b=2;a=3 CMD").tags == Tags{{"b", "2"}, {"a", "3"}});
    // Keys are opaque: no validation rejects the message.
    CHECK(parsed("@K\\ey!=v CMD").tags == Tags{{"K\\ey!", "v"}});
}

TEST_CASE("irc: size limits, to the byte (message-tags 'Size limit', modern-irc 'Message Format')") {
    // The tag section, '@' and the trailing space included: 8191 bytes at most.
    std::string tags_ok = "@k=" + std::string(8191 - 4, 'x') + " ";
    REQUIRE(tags_ok.size() == 8191);
    CHECK(parsed(tags_ok + "PING x").tags[0].second.size() == 8187);
    CHECK(error_of("@k=" + std::string(8191 - 3, 'x') + " PING x") == "tags-too-long");
    CHECK(error_of("@k=" + std::string(9000, 'x')) == "tags-too-long");

    // The rest: 512 bytes with CR LF, so 510 here.
    std::string rest_ok = "PRIVMSG #c :" + std::string(510 - 12, 'y');
    REQUIRE(rest_ok.size() == 510);
    CHECK(parsed(rest_ok).params[1].size() == 498);
    CHECK(error_of(rest_ok + "y") == "line-too-long");
    // Both at their maximum in one line.
    auto both = parsed(tags_ok + rest_ok);
    CHECK(both.tags.size() == 1);
    CHECK(both.params.size() == 2);
    CHECK(error_of(tags_ok + rest_ok + "y") == "line-too-long");
    // Multi-byte characters count as bytes.
    std::string euros = "PRIVMSG #c :";
    while (euros.size() + 3 <= 510) euros += "€";
    CHECK(irc::parse(euros));
    CHECK(error_of(euros + "€") == "line-too-long");
}

TEST_CASE("irc: UTF-8 only (ircv3 utf8-only.md)") {
    CHECK(irc::valid_utf8(""));
    CHECK(irc::valid_utf8("plain ascii\x01\x7f"));
    CHECK(irc::valid_utf8("é € 😀 \xf4\x8f\xbf\xbf \xef\xbf\xbf"));
    CHECK_FALSE(irc::valid_utf8("\xff"));
    CHECK_FALSE(irc::valid_utf8("\x80"));                // a lone continuation byte
    CHECK_FALSE(irc::valid_utf8("\xc0\xaf"));            // overlong '/'
    CHECK_FALSE(irc::valid_utf8("\xc1\xbf"));            // overlong
    CHECK_FALSE(irc::valid_utf8("\xe0\x80\xaf"));        // overlong, 3 bytes
    CHECK_FALSE(irc::valid_utf8("\xf0\x80\x80\xaf"));    // overlong, 4 bytes
    CHECK_FALSE(irc::valid_utf8("\xed\xa0\x80"));        // surrogate U+D800
    CHECK_FALSE(irc::valid_utf8("\xf4\x90\x80\x80"));    // U+110000
    CHECK_FALSE(irc::valid_utf8("\xf5\x80\x80\x80"));
    CHECK_FALSE(irc::valid_utf8("\xe2\x82"));            // cut short
    CHECK_FALSE(irc::valid_utf8("\xe2\x82x"));
    CHECK_FALSE(irc::valid_utf8("\xf0\x9f\x98"));

    CHECK(error_of("PRIVMSG #c :caf\xe9") == "invalid-utf8");           // Latin-1
    CHECK(error_of("@k=\xff PRIVMSG #c :hi") == "invalid-utf8");        // in a tag value
    CHECK(error_of(":n\xc0\xaf PRIVMSG #c :hi") == "invalid-utf8");     // in the source
    CHECK(parsed("PRIVMSG #c :café 😀").params[1] == "café 😀");
}

TEST_CASE("irc: lines without a command") {
    CHECK(error_of("") == "empty");
    CHECK(error_of("    ") == "empty");
    CHECK(error_of(":irc.example.com") == "no-command");
    CHECK(error_of(":irc.example.com   ") == "no-command");
    CHECK(error_of("@a=b") == "no-command");   // only tags
    CHECK(error_of("@a=b ") == "no-command");
    CHECK(error_of("@a=b;c :src") == "no-command");
    CHECK(error_of(":") == "no-command");
}

TEST_CASE("irc: commands are letters or three digits, in any case") {
    CHECK(parsed("privmsg #c :x").command == "PRIVMSG");
    CHECK(parsed("PrivMsg #c :x").command == "PRIVMSG");
    CHECK(parsed("001 alice :Welcome").command == "001");
    CHECK(parsed(":s 417 n :Input line was too long").command == "417");
    CHECK(error_of("01 x") == "bad-command");
    CHECK(error_of("0001 x") == "bad-command");
    CHECK(error_of("PRIV1 x") == "bad-command");
    CHECK(error_of("PRIV-MSG x") == "bad-command");
    CHECK(error_of("ÉTÉ x") == "bad-command");
    auto r = irc::parse("PRIV_MSG x");
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("PRIV_MSG") != std::string::npos);
}

TEST_CASE("irc: NUL, CR and LF have no place inside a line") {
    CHECK(error_of("PRIVMSG #c :a\rb") == "bad-char");
    CHECK(error_of("PRIVMSG #c :a\nb") == "bad-char");
    CHECK(error_of(std::string("PRIVMSG #c :a\0b", 15)) == "bad-char");
    CHECK(error_of("PING x\r") == "bad-char");
}

TEST_CASE("irc: more than one space between the parts is tolerated") {
    auto m = parsed("@a=b   :src   PRIVMSG    #chan     :hi  there  ");
    CHECK(m.tags == Tags{{"a", "b"}});
    CHECK(m.source == "src");
    CHECK(m.command == "PRIVMSG");
    CHECK(m.params == Params{"#chan", "hi  there  "});
    m = parsed("  NICK   bob   ");
    CHECK(m.command == "NICK");
    CHECK(m.params == Params{"bob"});
    CHECK(parsed("MODE  #c  +o   bob").params == Params{"#c", "+o", "bob"});
    CHECK(irc::serialize(parsed("MODE  #c  +o   bob")) == "MODE #c +o bob");
    CHECK(parsed(": PING x").source.empty());
}

TEST_CASE("irc: fifteen parameters at most; the rest of the line is the fifteenth") {
    std::string fifteen = "CMD";
    Params expected;
    for (char c = 'a'; c < 'a' + 15; ++c) {
        fifteen += std::string(" ") + c;
        expected.emplace_back(1, c);
    }
    CHECK(parsed(fifteen).params == expected);
    // RFC 2812 §2.3.1: after 14 middle parameters, the rest (':' optional) is one.
    auto m = parsed(fifteen + " p  q");
    REQUIRE(m.params.size() == 15);
    CHECK(m.params[14] == "o p  q");
    CHECK(irc::serialize(m) == "CMD a b c d e f g h i j k l m n :o p  q");
    CHECK(parsed(irc::serialize(m)) == m);
    m = parsed("CMD a b c d e f g h i j k l m n :o p :q");
    CHECK(m.params.size() == 15);
    CHECK(m.params[14] == "o p :q");
    // And any number when printing.
    Message many = irc::make("", "CMD", {});
    for (int i = 0; i < 20; ++i) many.params.push_back("p" + std::to_string(i));
    CHECK(irc::parse(irc::serialize(many)).value().params.size() == 15);
}

TEST_CASE("irc: the trailing parameter, at its edges") {
    CHECK(parsed("CMD").params.empty());
    CHECK(parsed("CMD :").params == Params{""});
    CHECK(parsed("CMD a :").params == Params{"a", ""});
    CHECK(parsed("CMD : ").params == Params{" "});
    CHECK(parsed("CMD ::").params == Params{":"});
    CHECK(parsed("CMD a::b").params == Params{"a::b"});
    CHECK(parsed("CMD :a :b").params == Params{"a :b"});
    CHECK(parsed("CMD a :b c ").params == Params{"a", "b c "});

    // serialize: ':' only where needed, and only on the last parameter.
    CHECK(irc::serialize(irc::make("", "PRIVMSG", {"#c", ""})) == "PRIVMSG #c :");
    CHECK(irc::serialize(irc::make("", "PRIVMSG", {"#c", "a b"})) == "PRIVMSG #c :a b");
    CHECK(irc::serialize(irc::make("", "PRIVMSG", {"#c", ":)"})) == "PRIVMSG #c ::)");
    CHECK(irc::serialize(irc::make("", "PRIVMSG", {"#c", "a:b"})) == "PRIVMSG #c a:b");
    CHECK(irc::serialize(irc::make("srv", "PING", {})) == ":srv PING");
    CHECK(irc::wire(irc::make("srv", "001", {"alice", "Welcome"})) == ":srv 001 alice Welcome\r\n");
    CHECK(irc::wire(irc::make("srv", "001", {"alice", "Welcome"}), true) == ":srv 001 alice :Welcome\r\n");
    // Middle parameters that cannot be written are our bug: made safe, count kept.
    auto bad = irc::serialize(irc::make("", "CMD", {"", "a b", ":x", "last"}));
    CHECK(bad == "CMD * a_b _x last");
    CHECK(parsed(bad).params.size() == 4);
}

TEST_CASE("irc: serialize always prints exactly one line") {
    Message m;
    m.tags = {{"a b;c=d", "v\r\n"}, {"k", std::string("x\0y", 3)}};
    m.source = "evil\r\nQUIT";
    m.command = "PRIVMSG";
    m.params = {"#c\r\nJOIN", std::string("text\r\nQUIT :bye\0", 16)};
    auto line = irc::serialize(m);
    CHECK(line.find_first_of(std::string("\r\n\0", 3)) == std::string::npos);
    CHECK(line == "@a_b_c_d=v\\r\\n;k=xy :evil__QUIT PRIVMSG #c__JOIN :text  QUIT :bye ");
    auto back = parsed(line);
    CHECK(back.params.size() == 2);
    CHECK(back.tags.size() == 2);
    CHECK(irc::serialize(irc::make("a b", "PRIV MSG", {})) == ":a_b PRIV_MSG");
}

TEST_CASE("irc: parse then serialize then parse is stable") {
    for (auto line : {"PING", "ping :", "@a=\\:\\s\\\\ CMD x", "@a=x\\ CMD :y z", ":s  001   a   :b  c",
                      "@k=\\b\\ :src CMD ::", "CMD a b c d e f g h i j k l m n o p", "@x;y= CMD"}) {
        auto m = parsed(line);
        auto again = parsed(irc::serialize(m));
        CHECK(again == m);
        CHECK(irc::serialize(again) == irc::serialize(m));
    }
}

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

// --- Nicks --------------------------------------------------------------------------

TEST_CASE("irc nicks: the nick a JID starts from") {
    CHECK(irc::nick_base("alice@example.org") == "alice");
    CHECK(irc::nick_base("example.org") == "example");           // host only: first label
    CHECK(irc::nick_base("irc.example.org") == "irc");
    CHECK(irc::nick_base("localhost") == "localhost");
    CHECK(irc::nick_base("jürgen@x.de") == "j_rgen");             // one '_' per character
    CHECK(irc::nick_base("züüürich@x.de") == "z_rich");           // and per run
    CHECK(irc::nick_base("张伟@example.cn") == "user");            // nothing usable
    CHECK(irc::nick_base("john.doe@x") == "john_doe");
    CHECK(irc::nick_base("123@x") == "_123");
    CHECK(irc::nick_base("-x@y") == "_-x");
    CHECK(irc::nick_base("[a]{b}|c^d`e\\f_g-h@x") == "[a]{b}|c^d`e\\f_g-h");
    CHECK(irc::nick_base(std::string(40, 'l') + "@x") == std::string(30, 'l'));
    CHECK(irc::nick_base("9" + std::string(40, 'l') + "@x") == "_9" + std::string(28, 'l'));
    CHECK(irc::nick_base("room@conference.example.org/Bob Smith") == "Bob_Smith");  // occupant
    CHECK(irc::nick_base("room@conference.example.org/a@b") == "a_b");
    CHECK(irc::nick_base("room@conference.example.org/") == "user");
    CHECK(irc::nick_base("") == "user");
    CHECK(irc::nick_base("@x") == "user");
    CHECK(irc::nick_base("$pecial:#chan,*?!@x") == "_pecial_chan_");
    for (auto jid : {"alice@example.org", "example.org", "jürgen@x", "123@x", "-@x", "#@x", ":x@y",
                     "$x@y", "~x@y", "&x@y", "+x@y", "%x@y", "@", "/", "a b@c", "\xff\xfe@x", "r@c/9 lives"})
        CHECK(irc::valid_nick(irc::nick_base(jid)));
}

TEST_CASE("irc nicks: what a nick may be") {
    CHECK(irc::valid_nick("alice"));
    CHECK(irc::valid_nick("[away]`_|^{}\\-9"));
    CHECK(irc::valid_nick(std::string(30, 'a')));
    CHECK_FALSE(irc::valid_nick(std::string(31, 'a')));
    CHECK_FALSE(irc::valid_nick(""));
    CHECK_FALSE(irc::valid_nick("9lives"));
    CHECK_FALSE(irc::valid_nick("-dash"));
    for (auto bad : {"a b", "a,b", "a*", "a?", "a!b", "a@b", "a.b", "$a", ":a", "#a", "&a", "~a", "+a", "%a", "jürgen"})
        CHECK_FALSE(irc::valid_nick(bad));
    CHECK(irc::fold("AliCE[]\\~") == "alice[]\\~");  // ascii: only A-Z fold
}

TEST_CASE("irc nicks: collisions across accounts and domains") {
    irc::NickMap m;
    CHECK(m.nick_for("home", "alice@a.org") == "alice");
    CHECK(m.nick_for("work", "alice@b.org") == "alice_b");       // domain's first label
    CHECK(m.nick_for("work", "alice@a.org") == "alice_work");    // same JID, other account
    CHECK(m.nick_for("home", "alice@b.net") == "alice_home");    // alice_b is taken
    CHECK(m.nick_for("home", "alice@b.com") == "alice2");
    CHECK(m.nick_for("home", "alice@b.de") == "alice3");
    CHECK(m.nick_for("home", "alice@a.org") == "alice");         // kept
    CHECK(m.nick_for("work", "alice@b.org") == "alice_b");
    CHECK(m.size() == 6);

    auto who = m.lookup("alice_work");
    REQUIRE(who);
    CHECK(who->first == "work");
    CHECK(who->second == "alice@a.org");
    CHECK_FALSE(m.lookup("alice4"));
    CHECK(m.find_nick("home", "alice@b.de") == std::optional<std::string>("alice3"));
    CHECK_FALSE(m.find_nick("home", "nobody@b.de"));
}

TEST_CASE("irc nicks: nicks differ in more than case (CASEMAPPING=ascii)") {
    irc::NickMap m;
    CHECK(m.nick_for("home", "Alice@x.org") == "Alice");
    CHECK(m.nick_for("home", "alice@y.org") == "alice_y");
    CHECK(m.lookup("ALICE")->second == "Alice@x.org");
    CHECK(m.lookup("ALICE_Y")->second == "alice@y.org");
    CHECK(m.taken("aLiCe"));
    // Long nicks keep their suffix inside NICKLEN.
    std::string l(30, 'l');
    CHECK(m.nick_for("home", l + "@a.org") == l);
    auto second = m.nick_for("home", l + "@b.org");
    CHECK(second == std::string(28, 'l') + "_b");
    CHECK(irc::valid_nick(second));
}

TEST_CASE("irc nicks: reserved nicks are never given to a contact") {
    irc::NickMap m({"stanzad", "Me"});
    CHECK(m.nick_for("home", "stanzad@example.org") == "stanzad_example");
    CHECK(m.nick_for("home", "me@example.org") == "me_example");
    CHECK(m.is_reserved("STANZAD"));
    CHECK_FALSE(m.lookup("stanzad"));
    CHECK(m.reserve("bob"));
    CHECK(m.nick_for("home", "bob@x.org") == "bob_x");
    CHECK_FALSE(m.reserve("BOB_X"));  // a contact has it
    CHECK_FALSE(m.is_reserved("bob_x"));
    m.release("bob");
    CHECK_FALSE(m.is_reserved("bob"));
    CHECK(m.nick_for("home", "bob@y.org") == "bob");
    // The default reserves the service nick.
    irc::NickMap d;
    CHECK(d.is_reserved(irc::service_nick));
    CHECK(d.nick_for("a", "stanzad.example.org") == "stanzad_a");
}

TEST_CASE("irc nicks: rename") {
    irc::NickMap m;
    CHECK(m.nick_for("home", "alice@a.org") == "alice");
    CHECK(m.nick_for("home", "bob@a.org") == "bob");
    CHECK(m.rename("home", "alice@a.org", "Ally"));
    CHECK(m.find_nick("home", "alice@a.org") == std::optional<std::string>("Ally"));
    CHECK(m.lookup("ally")->second == "alice@a.org");
    CHECK_FALSE(m.lookup("alice"));                       // the old nick is free again
    CHECK(m.rename("home", "alice@a.org", "ALLY"));       // a change of case
    CHECK(m.find_nick("home", "alice@a.org") == std::optional<std::string>("ALLY"));

    auto r = m.rename("home", "alice@a.org", "Bob");
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "nick-in-use");
    r = m.rename("home", "alice@a.org", "stanzad");
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "nick-in-use");
    for (auto bad : {"", "9x", "a b", "a.b", "jürgen", "#x"}) {
        r = m.rename("home", "alice@a.org", bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == "erroneous-nick");
    }
    r = m.rename("home", "alice@a.org", std::string(31, 'x'));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "erroneous-nick");
    CHECK(m.find_nick("home", "alice@a.org") == std::optional<std::string>("ALLY"));

    // A contact without a nick yet gets the one asked for.
    CHECK(m.rename("work", "carol@c.org", "caz"));
    CHECK(m.nick_for("work", "carol@c.org") == "caz");
    // A freed nick goes to the next contact that wants it.
    CHECK(m.nick_for("home", "alice@z.org") == "alice");

    m.forget("home", "bob@a.org");
    CHECK_FALSE(m.lookup("bob"));
    CHECK(m.rename("work", "carol@c.org", "bob"));
}

TEST_CASE("irc nicks: the same calls give the same nicks") {
    auto run = [] {
        irc::NickMap m;
        for (auto jid : {"alice@a.org", "alice@b.org", "bob@a.org", "Alice@c.org", "a.org", "alice@a.org"})
            for (auto acct : {"home", "work"}) m.nick_for(acct, jid);
        return m.serialize();
    };
    CHECK(run() == run());
}

TEST_CASE("irc nicks: serialize and deserialize") {
    irc::NickMap m;
    m.nick_for("home", "alice@a.org");
    m.nick_for("work", "alice@b.org");
    m.nick_for("we%ird\tacct", "x@y.org/res\nwith%0Anewline\r");
    REQUIRE(m.rename("home", "bob@a.org", "Bobby"));
    auto text = m.serialize();
    CHECK(text.rfind("stanzad-nicks 1\n", 0) == 0);
    CHECK(text.find("Bobby\thome\tbob@a.org\n") != std::string::npos);

    auto back = irc::NickMap::deserialize(text);
    CHECK(back.serialize() == text);
    CHECK(back.size() == 4);
    CHECK(back.nick_for("work", "alice@b.org") == "alice_b");
    CHECK(back.lookup("bobby")->second == "bob@a.org");
    CHECK(back.nick_for("we%ird\tacct", "x@y.org/res\nwith%0Anewline\r") ==
          m.nick_for("we%ird\tacct", "x@y.org/res\nwith%0Anewline\r"));
    // New contacts after a restart get what they would have got without one.
    CHECK(back.nick_for("home", "alice@c.org") == m.nick_for("home", "alice@c.org"));
    CHECK(irc::NickMap::deserialize(irc::NickMap().serialize()).size() == 0);
    // CR LF line ends (a file edited elsewhere) read the same.
    std::string crlf;
    for (char c : text) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    CHECK(irc::NickMap::deserialize(crlf).serialize() == text);
}

TEST_CASE("irc nicks: garbage in, an empty or partial map out") {
    CHECK(irc::NickMap::deserialize("").size() == 0);
    CHECK(irc::NickMap::deserialize("\n\n\t\t\n").size() == 0);
    CHECK(irc::NickMap::deserialize("stanzad-nicks 2\nalice\thome\ta@b\n").size() == 0);  // unknown version
    CHECK(irc::NickMap::deserialize("alice\thome\ta@b\n").size() == 0);                   // no header
    std::string text =
        "stanzad-nicks 1\n"
        "alice\thome\talice@a.org\n"      // good
        "ALICE\thome\talice@b.org\n"      // same nick, other case: skipped
        "al\thome\talice@a.org\n"         // same contact again: skipped
        "9bad\thome\tc@d\n"               // invalid nick
        "bad nick\thome\tc@d\n"
        "stanzad\thome\ts@d\n"            // reserved
        "two\tfields\n"
        "four\ta\tb\tc\n"
        "esc\thome\tbad%zz\n"             // bad escape
        "\n"
        "\xff\xfe";
    text += std::string(1, '\0');
    text +=
        "garbage"
        "bob\thome\tbob@a.org\n"          // joined to the garbage line: skipped
        "carol\thome\tcarol@a.org";       // no final LF: still read
    auto m = irc::NickMap::deserialize(text);
    CHECK(m.size() == 2);
    CHECK(m.find_nick("home", "alice@a.org") == std::optional<std::string>("alice"));
    CHECK(m.find_nick("home", "carol@a.org") == std::optional<std::string>("carol"));
    CHECK(m.nick_for("home", "alice@b.org") == "alice_b");
    // Cut anywhere: never a crash, always a map that serializes.
    irc::NickMap full;
    for (auto jid : {"alice@a.org", "bob@a.org", "carol@b.org", "dave@c.org"}) full.nick_for("home", jid);
    auto good = full.serialize();
    for (std::size_t n = 0; n <= good.size(); ++n) {
        auto part = irc::NickMap::deserialize(good.substr(0, n));
        CHECK(part.size() <= full.size());
        CHECK(irc::NickMap::deserialize(part.serialize()).serialize() == part.serialize());
    }
}
