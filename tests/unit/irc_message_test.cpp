// frontends/irc/message: the IRC message format (modern-irc, ircv3 message-tags and utf8-only):
// parse and serialize, tags and their escapes, size limits, parameters.
#include "irc_message_fixture.hpp"

using namespace irc_message_test;

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
