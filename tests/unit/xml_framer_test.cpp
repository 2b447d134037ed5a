#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "protocol/xml_framer.hpp"

using namespace xmpp;

namespace {

constexpr std::string_view header =
    "<?xml version='1.0'?><stream:stream from='example.org' id='s1' version='1.0' "
    "xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

// A readable summary of one framer event, so transcripts compare as strings.
std::string describe(const FramerEvent& e) {
    if (auto* o = std::get_if<StreamOpen>(&e)) return "open " + o->name + " id=" + std::string(o->attribute("id"));
    if (auto* s = std::get_if<Stanza>(&e)) {
        std::string out = "stanza {" + std::string(namespace_of(s->root())) + "}" +
                          std::string(local_name(s->root())) + ":";
        struct W : pugi::xml_writer {
            std::string* o;
            void write(const void* d, size_t n) override { o->append(static_cast<const char*>(d), n); }
        } w;
        w.o = &out;
        s->root().print(w, "", pugi::format_raw);
        return out;
    }
    if (std::holds_alternative<StreamEnd>(e)) return "end";
    return "error " + std::get<FramerError>(e).condition;
}

std::vector<std::string> drain(XmlFramer& f) {
    std::vector<std::string> out;
    while (auto e = f.next()) out.push_back(describe(*e));
    return out;
}

std::vector<std::string> frame_chunks(const std::vector<std::string_view>& chunks, FramerLimits limits = {}) {
    XmlFramer f(limits);
    std::vector<std::string> out;
    for (auto c : chunks) {
        f.feed(c);
        for (auto& s : drain(f)) out.push_back(s);
    }
    return out;
}

std::vector<std::string> frame(std::string_view all, FramerLimits limits = {}) {
    return frame_chunks({all}, limits);
}

std::string with_header(std::string_view body) { return std::string(header) + std::string(body); }

}  // namespace

TEST_CASE("framer: a whole stream gives header, stanzas and end, at every split point") {
    const std::string stream = with_header(
        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
        "</stream:features>\n  "
        "<message to='a@b' id=\"x&gt;1\" title='a>b'><body>fish &amp; chips &#x263A; &#65;"
        "<![CDATA[<not a tag> & ]] ]]></body></message> "
        "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>"
        "<presence/></stream:stream>");
    const std::vector<std::string> expected = frame(stream);
    REQUIRE(expected.size() == 6);
    CHECK(expected[0] == "open stream:stream id=s1");
    CHECK(expected[1].starts_with("stanza {http://etherx.jabber.org/streams}features:"));
    CHECK(expected[2].starts_with("stanza {jabber:client}message:"));
    CHECK(expected[2].find("id=\"x>1\"") != std::string::npos);
    CHECK(expected[2].find("title=\"a>b\"") != std::string::npos);
    CHECK(expected[3].starts_with("stanza {jabber:client}iq:"));
    CHECK(expected[4].starts_with("stanza {jabber:client}presence:"));
    CHECK(expected[5] == "end");

    for (std::size_t split = 0; split <= stream.size(); ++split) {
        std::string_view s(stream);
        INFO("split at " << split);
        REQUIRE(frame_chunks({s.substr(0, split), s.substr(split)}) == expected);
    }
    std::vector<std::string_view> bytes;
    for (std::size_t i = 0; i < stream.size(); ++i) bytes.push_back(std::string_view(stream).substr(i, 1));
    CHECK(frame_chunks(bytes) == expected);
}

TEST_CASE("framer: text, entities, CDATA and character references are decoded") {
    XmlFramer f;
    f.feed(with_header("<message><body>fish &amp; chips &lt;3 &#x263A;&#65;<![CDATA[<b>&amp;</b>]]></body>"
                       "<x a='1 &quot;2&quot; &apos;3&apos;'/></message>"));
    REQUIRE(std::holds_alternative<StreamOpen>(*f.next()));
    auto e = f.next();
    REQUIRE(e);
    auto& s = std::get<Stanza>(*e);
    CHECK(std::string(s.root().child("body").child_value()) == "fish & chips <3 \u263A" "A");
    CHECK(std::string(s.root().child("body").last_child().value()) == "<b>&amp;</b>");
    CHECK(std::string(s.root().child("x").attribute("a").value()) == "1 \"2\" '3'");
}

TEST_CASE("framer: stanzas carry the namespaces they inherit, and keep their own") {
    XmlFramer f;
    f.feed(with_header("<message><x xmlns='urn:a'><y/></x><stream:error/></message>"
                       "<iq xmlns='jabber:server'/>"));
    f.next();
    auto m = std::get<Stanza>(*f.next());
    CHECK(namespace_of(m.root()) == "jabber:client");
    CHECK(namespace_of(m.root().child("x").child("y")) == "urn:a");
    CHECK(namespace_of(m.root().child("stream:error")) == ns_streams);
    CHECK(is(m.root().child("x"), "urn:a", "x"));
    CHECK(child(m.root(), "urn:a", "x"));
    CHECK_FALSE(child(m.root(), "urn:b", "x"));
    auto iq = std::get<Stanza>(*f.next());
    CHECK(namespace_of(iq.root()) == "jabber:server");
}

TEST_CASE("framer: whitespace keepalives between stanzas are ignored, and do not pile up") {
    XmlFramer f;
    f.feed(header);
    REQUIRE(f.next());
    for (int i = 0; i < 1000; ++i) {
        f.feed(" \n");
        CHECK_FALSE(f.next());
    }
    CHECK(f.buffered_bytes() == 0);
    f.feed("<presence/>");
    CHECK(std::holds_alternative<Stanza>(*f.next()));
}

TEST_CASE("framer: what RFC 6120 section 11.1 forbids is an error with the right condition") {
    struct Case { std::string_view input; std::string_view condition; };
    const Case cases[] = {
        {"<message><!-- hi --></message>", "restricted-xml"},
        {"<!-- hi -->", "restricted-xml"},
        {"<?pi x?>", "restricted-xml"},
        {"<message><?pi x?></message>", "restricted-xml"},
        {"<message><body>&nbsp;</body></message>", "restricted-xml"},
        {"<message a='&ent;'/>", "restricted-xml"},
        {"<message><body>&#0;</body></message>", "not-well-formed"},
        {"<message><body>&#xD800;</body></message>", "not-well-formed"},
        {"<message><body>&#12a;</body></message>", "not-well-formed"},
        {"<message><body>a & b</body></message>", "not-well-formed"},
        {"<message><body>\xC3\x28</body></message>", "not-well-formed"},
        {"<message><body>\xC0\xAF</body></message>", "not-well-formed"},
        {"<message><body>\x01</body></message>", "not-well-formed"},
        {"<message><a></b></message>", "not-well-formed"},
        {"<message a='<'/>", "not-well-formed"},
        {"hello", "not-well-formed"},
        {"</stream:other>", "not-well-formed"},
        {"<message a=1/>", "not-well-formed"},
    };
    for (const auto& c : cases) {
        INFO(c.input);
        auto out = frame(with_header(c.input));
        REQUIRE(out.size() >= 2);
        CHECK(out.back() == "error " + std::string(c.condition));
    }
    CHECK(frame("<!DOCTYPE x><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>").back() ==
          "error restricted-xml");
}

TEST_CASE("framer: the header must be a stream element in the streams namespace") {
    CHECK(frame("<stream:stream xmlns:stream='urn:wrong' xmlns='jabber:client'>") ==
          std::vector<std::string>{"error invalid-namespace"});
    CHECK(frame("<foo xmlns='http://etherx.jabber.org/streams'>") ==
          std::vector<std::string>{"error invalid-namespace"});
    CHECK(frame("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>") ==
          std::vector<std::string>{"error not-well-formed"});
    CHECK(frame("junk") == std::vector<std::string>{"error not-well-formed"});
}

TEST_CASE("framer: limits on stanza size, nesting and header size") {
    FramerLimits limits;
    limits.max_stanza_bytes = 100;
    limits.max_depth = 3;
    limits.max_header_bytes = 300;
    std::string big = "<message><body>" + std::string(200, 'x') + "</body></message>";
    CHECK(frame(with_header(big), limits).back() == "error policy-violation");
    // Fed slowly, the partial stanza is refused as soon as it passes the limit.
    XmlFramer f(limits);
    f.feed(header);
    REQUIRE(f.next());
    f.feed("<message><body>");
    std::optional<FramerEvent> e;
    for (int i = 0; i < 200 && !e; ++i) {
        f.feed("x");
        e = f.next();
    }
    REQUIRE(e);
    CHECK(std::get<FramerError>(*e).condition == "policy-violation");
    CHECK(f.buffered_bytes() == 0);

    // A start tag that never ends is cut off too.
    XmlFramer g(limits);
    g.feed(header);
    REQUIRE(g.next());
    g.feed("<message to='");
    std::optional<FramerEvent> ge;
    for (int i = 0; i < 200 && !ge; ++i) {
        g.feed("A");
        ge = g.next();
    }
    REQUIRE(ge);
    CHECK(std::get<FramerError>(*ge).condition == "policy-violation");

    CHECK(frame(with_header("<a><b><c/></b></a>"), limits).back().starts_with("stanza"));
    CHECK(frame(with_header("<a><b><c><d/></c></b></a>"), limits).back() == "error policy-violation");
    std::string long_header = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' x='" +
                              std::string(400, 'y') + "'>";
    CHECK(frame(long_header, limits).back() == "error policy-violation");
}

// Tags, attribute values and end tags are skipped in runs (issue 15), not byte by byte: each
// run must stop where byte-by-byte framing stops, at every bound, with the same error at the
// same byte.
TEST_CASE("framer: long tags meet the bounds at the same byte, fed whole or byte by byte") {
    FramerLimits limits;
    limits.max_stanza_bytes = 200;
    limits.max_header_bytes = 300;
    auto run = [&](std::string_view stream, std::size_t chunk) {
        XmlFramer f(limits);
        std::vector<std::string> out;
        for (std::size_t at = 0; at < stream.size(); at += chunk) {
            f.feed(stream.substr(at, chunk));
            while (auto e = f.next()) {
                auto* error = std::get_if<FramerError>(&*e);
                out.push_back(describe(*e) + (error ? " " + error->message : ""));
            }
        }
        return out;
    };
    auto last = [&](const std::string& stream) {
        auto whole = run(stream, stream.size());
        CHECK(whole == run(stream, 1));
        CHECK(whole == run(stream, 7));
        return whole.empty() ? std::string() : whole.back();
    };
    const std::string too_big = "error policy-violation stanza larger than 200 bytes (at byte " +
                                std::to_string(header.size() + 200) + ")";
    // A stanza of 200 bytes is framed; from 201 on its 201st byte is refused, whichever
    // part of the stanza that byte is in (at 250, in the middle of a run).
    auto sized = [](std::string_view head, char fill, std::string_view tail, std::size_t total) {
        return std::string(head) + std::string(total - head.size() - tail.size(), fill) + std::string(tail);
    };
    for (std::size_t total : {199u, 200u, 201u, 250u}) {
        INFO("stanza of " << total << " bytes");
        const std::vector<std::string> stanzas = {
            sized("<message to='", 'x', "'/>", total),                   // an attribute value
            sized("<message ", 'a', "='1'/>", total),                    // an attribute's name
            sized("<message><b></b", ' ', "></message>", total),         // an end tag
            sized("<message><b c=\"", 'q', "\">t</b></message>", total),  // double quotes
        };
        for (const auto& stanza : stanzas) {
            INFO(stanza);
            const std::string result = last(with_header(stanza));
            if (total <= 200) CHECK(result.starts_with("stanza"));
            else CHECK(result == too_big);
        }
    }
    // The stream header: 301 bytes are read, the 302nd byte is refused (the check is for
    // more than 300 before a byte).
    for (std::size_t total : {300u, 301u, 302u, 400u}) {
        INFO("header of " << total << " bytes");
        const std::string head =
            sized("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' x='", 'y', "'>", total);
        const std::string result = last(head);
        if (total <= 301) CHECK(result.starts_with("open"));
        else CHECK(result == "error policy-violation stream header larger than 300 bytes (at byte 301)");
    }
    // An end tag longer than 1,024 bytes, inside a stanza within its bound.
    limits.max_stanza_bytes = 4096;
    for (std::size_t spaces : {1020u, 1021u, 1022u, 1023u, 2000u}) {
        INFO(spaces << " blanks in an end tag");
        const std::string result = last(with_header("<message><b></b" + std::string(spaces, ' ') + "></message>"));
        CHECK(result.starts_with(spaces <= 1022 ? "stanza" : "error not-well-formed end tag too long"));
    }
}

TEST_CASE("framer: attributes per element and elements per stanza are bounded") {
    // Namespace lookups scan the attributes of an element and its ancestors: without these
    // bounds one large stanza could cost quadratic time.
    auto tag_with = [](int attributes) {
        std::string out = "<message";
        for (int i = 0; i < attributes; ++i) out += " a" + std::to_string(i) + "='v'";
        return out + "/>";
    };
    FramerLimits limits;
    CHECK(frame(with_header(tag_with(64)), limits).back().starts_with("stanza"));
    CHECK(frame(with_header(tag_with(65)), limits).back() == "error policy-violation");
    // On a child too, and the count starts again on every element.
    std::string children = "<message>";
    for (int i = 0; i < 3; ++i) children += tag_with(60).replace(1, 7, "x");
    CHECK(frame(with_header(children + "</message>"), limits).back().starts_with("stanza"));
    CHECK(frame(with_header("<message>" + tag_with(65).replace(1, 7, "x") + "</message>"), limits).back() ==
          "error policy-violation");

    limits.max_elements = 100;
    auto stanza_of = [](int elements) {  // the stanza element and elements - 1 children
        std::string out = "<iq type='result'>";
        for (int i = 1; i < elements; ++i) out += "<item/>";
        return out + "</iq>";
    };
    CHECK(frame(with_header(stanza_of(100)), limits).back().starts_with("stanza"));
    CHECK(frame(with_header(stanza_of(101)), limits).back() == "error policy-violation");
    // Per stanza: many stanzas of 100 elements each are fine.
    auto three = frame(with_header(stanza_of(100) + stanza_of(100) + stanza_of(100)), limits);
    REQUIRE(three.size() == 4);
    for (std::size_t i = 1; i < three.size(); ++i) CHECK(three[i].starts_with("stanza"));
}

TEST_CASE("framer: nothing comes out after an error or after the stream ends") {
    XmlFramer f;
    f.feed(with_header("<presence/></stream:stream><presence/>"));
    CHECK(drain(f).size() == 3);
    f.feed("<presence/>");
    CHECK_FALSE(f.next());

    XmlFramer g;
    g.feed(with_header("<a><!-- --></a><presence/>"));
    auto out = drain(g);
    CHECK(out.back() == "error restricted-xml");
    g.feed("<presence/>");
    CHECK_FALSE(g.next());
}

TEST_CASE("framer: reset() starts a new stream, as after STARTTLS or SASL") {
    XmlFramer f;
    f.feed(with_header("<stream:features/><pro"));
    CHECK(drain(f).size() == 2);
    f.reset();
    f.feed(header);
    f.feed("<presence/>");
    auto out = drain(f);
    REQUIRE(out.size() == 2);
    CHECK(out[0] == "open stream:stream id=s1");
}

TEST_CASE("framer: stream end tag with trailing whitespace and a different prefix") {
    CHECK(frame(with_header("</stream:stream  >")).back() == "end");
    CHECK(frame("<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client'><s:features/></s:stream>") ==
          std::vector<std::string>{"open s:stream id=",
                                   "stanza {http://etherx.jabber.org/streams}features:<s:features xmlns:s=\"http://etherx.jabber.org/streams\" xmlns=\"jabber:client\"/>",
                                   "end"});
}

// RFC 6120 §11.6 and RFC 3629: the framer refuses a stanza with a control character or bad
// UTF-8 and names its byte. The check reads printable ASCII eight bytes at a time (issue 15),
// so each bad byte is put at every offset of the words around it, and the good ones too.
TEST_CASE("framer: a control character or bad UTF-8 is found at its byte, wherever it falls in a word") {
    const std::string open = "<message><body>";
    const std::vector<std::string> bad = {std::string(1, '\0'), "\x01", "\x08", "\x0b", "\x0c", "\x1f",
                                          "\x80", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xef\xbf\xbe", "\xf5\x80\x80\x80"};
    const std::vector<std::string> good = {"\t", "\n", "\r", " ", "~", "\x7f", "\xc3\xa9", "\xe2\x82\xac",
                                           "\xf0\x9f\x98\x80", "\xef\xbf\xbd"};
    for (std::size_t before = 0; before < 20; ++before) {
        for (const auto& b : bad) {
            const std::string stream = with_header(open + std::string(before, 'a') + b + std::string(17, 'z') +
                                                   "</body></message>");
            auto got = frame(stream);
            REQUIRE(got.size() == 2);
            CHECK(got[1] == "error not-well-formed");
            XmlFramer f;
            f.feed(stream);
            std::optional<FramerEvent> e;
            while (auto next = f.next()) e = std::move(next);
            REQUIRE(e);
            const auto* error = std::get_if<FramerError>(&*e);
            REQUIRE(error);
            const std::size_t at = header.size() + open.size() + before;
            INFO("bad byte(s) " << b.size() << " after " << before);
            CHECK_THAT(error->message, Catch::Contains("(at byte " + std::to_string(at) + ")"));
        }
        for (const auto& g : good) {
            const std::string stream = with_header(open + std::string(before, 'a') + g + std::string(17, 'z') +
                                                   "</body></message>");
            auto got = frame(stream);
            INFO("good character of " << g.size() << " byte(s) after " << before);
            REQUIRE(got.size() == 2);
            CHECK(got[1].rfind("stanza {jabber:client}message:", 0) == 0);
        }
    }
}
