// Tests for protocol/dns parse_srv_answer: SRV answers built byte by byte (RFC 1035 §4.1),
// hostile names and framing.
#include "dns_fixture.hpp"

using namespace dns_test;

// ---- parse_srv_answer ---------------------------------------------------------------

TEST_CASE("dns: an uncompressed SRV answer gives every field") {
    Message m(kNoError, 1, 2);
    m.question();
    m.srv(wire(kName), 86400, 10, 60, 5222, wire("xmpp1.example.org"));
    m.srv(wire(kName), 0x7fffffff, 20, 0, 443, wire("xmpp2.example.net"));
    auto records = parse_ok(m.bytes);
    REQUIRE(records.size() == 2);
    CHECK(records[0] == rec(10, 60, 5222, "xmpp1.example.org", 86400));
    CHECK(records[1] == rec(20, 0, 443, "xmpp2.example.net", 0x7fffffff));
    CHECK(records[0].priority == 10);
    CHECK(records[0].weight == 60);
    CHECK(records[0].port == 5222);
    CHECK(records[0].ttl == 86400);
    CHECK(records[1].ttl == 2147483647u);
}

TEST_CASE("dns: a compressed answer with mixed case and other record types") {
    auto m = compressed_answer();
    auto records = parse_ok(m.bytes);
    REQUIRE(records.size() == 2);
    CHECK(records[0] == rec(31, 30, 5222, "hermes2.example.org", 3600));
    CHECK(records[1] == rec(30, 30, 5222, "xmpp.example.org", 3600));
}

TEST_CASE("dns: the owner name is compared without case and with an optional trailing dot") {
    auto m = compressed_answer();
    CHECK(parse_ok(m.bytes, "_xmpp-client._tcp.example.org.").size() == 2);
    CHECK(parse_ok(m.bytes, "_XMPP-CLIENT._tcp.EXAMPLE.org").size() == 2);
    CHECK(parse_ok(m.bytes, "_xmpps-client._tcp.example.org").empty());
    CHECK(parse_ok(m.bytes, "_xmpp-client._tcp.example.org.org").empty());
    CHECK(parse_ok(m.bytes, "example.org").empty());
}

TEST_CASE("dns: records of another owner, class or type are skipped") {
    Message m(kNoError, 1, 6);
    m.question();
    m.srv(wire("_xmpps-client._tcp.example.org"), 60, 1, 1, 443, wire("other.example.org"));
    m.rr(wire(kName), kTypeSrv, 60, srv_rdata(2, 2, 5222, wire("chaos.example.org")), 3);  // CLASS CH
    m.rr(wire(kName), kTypeAaaa, 60, std::string(16, '\x20'));
    m.rr(wire(kName), kTypeCname, 60, wire("elsewhere.example.org"));
    m.rr(wire(kName), 99, 60, "anything at all");
    m.srv(wire(kName), 60, 3, 3, 5223, wire("kept.example.org"));
    auto records = parse_ok(m.bytes);
    REQUIRE(records.size() == 1);
    CHECK(records[0] == rec(3, 3, 5223, "kept.example.org", 60));
}

TEST_CASE("dns: a TTL with the top bit set counts as zero (RFC 2181 §8)") {
    Message m(kNoError, 1, 2);
    m.question();
    m.srv(wire(kName), 0x80000000u, 0, 0, 5222, wire("a.example.org"));
    m.srv(wire(kName), 0xffffffffu, 0, 0, 5222, wire("b.example.org"));
    auto records = parse_ok(m.bytes);
    REQUIRE(records.size() == 2);
    CHECK(records[0].ttl == 0);
    CHECK(records[1].ttl == 0);
}

TEST_CASE("dns: a root target comes back as '.'") {
    Message m(kNoError, 1, 1);
    m.question();
    m.srv(wire(kName), 300, 0, 0, 0, wire(""));
    auto records = parse_ok(m.bytes);
    REQUIRE(records.size() == 1);
    CHECK(records[0] == rec(0, 0, 0, ".", 300));
}

TEST_CASE("dns: odd label bytes are kept, only ASCII is lower-cased") {
    std::string odd = "A b\x00\xc3\x89\xff.Z"s;  // one label with a space, NUL, UTF-8, 0xff and a dot
    std::string target = static_cast<char>(odd.size()) + odd + labels("ORG") + '\0';
    Message m(kNoError, 1, 1);
    m.question();
    m.srv(wire(kName), 1, 0, 0, 5222, target);
    auto records = parse_ok(m.bytes);
    REQUIRE(records.size() == 1);
    CHECK(records[0].target == "a b\x00\xc3\x89\xff.z.org"s);
}

TEST_CASE("dns: labels of 63 bytes and names of 255 bytes are accepted") {
    std::string l63(63, 'a');
    std::string l61(61, 'b');
    std::string name = l63 + "." + l63 + "." + l63 + "." + l61;  // 3*64 + 62 + 1 = 255 on the wire
    REQUIRE(wire(name).size() == 255);
    Message m(kNoError, 1, 1);
    m.question();
    m.srv(wire(kName), 1, 0, 0, 5222, wire(name));
    auto records = parse_ok(m.bytes);
    REQUIRE(records.size() == 1);
    CHECK(records[0].target == name);
}

TEST_CASE("dns: NXDOMAIN and an empty answer give no records") {
    Message nx(kNxDomain, 1, 0);
    nx.question();
    CHECK(parse_ok(nx.bytes).empty());
    CHECK(parse_ok(Message(kNxDomain, 0, 0).bytes).empty());  // header only
    Message empty(kNoError, 1, 0);
    empty.question();
    CHECK(parse_ok(empty.bytes).empty());
}

TEST_CASE("dns: server errors name the RCODE") {
    Message fail(0x8182, 1, 0);
    fail.question();
    CHECK(parse_error(fail.bytes) == "server failure (RCODE 2)");
    CHECK(parse_error(Message(0x8185, 0, 0).bytes) == "refused (RCODE 5)");
    CHECK(parse_error(Message(0x8181, 0, 0).bytes) == "format error (RCODE 1)");
    CHECK(parse_error(Message(0x8184, 0, 0).bytes) == "not implemented (RCODE 4)");
    CHECK(contains(parse_error(Message(0x818f, 0, 0).bytes), "(RCODE 15)"));
}

TEST_CASE("dns: a truncated (TC) answer, a query and a too large message are errors") {
    Message tc(0x8380, 1, 1);
    tc.question();
    tc.srv(wire(kName), 1, 0, 0, 5222, wire("a.example.org"));
    CHECK(parse_error(tc.bytes) == "truncated answer (TC)");
    // RCODE wins over TC: a failure or NXDOMAIN does not get better over TCP.
    CHECK(parse_ok(Message(0x8383, 0, 0).bytes).empty());
    CHECK(parse_error(Message(0x8382, 0, 0).bytes) == "server failure (RCODE 2)");

    Message query(0x0100, 1, 0);
    query.question();
    CHECK(parse_error(query.bytes) == "not a response (QR=0)");

    Message big(kNoError, 0, 0);
    big.bytes.resize(dns::max_answer_bytes, '\0');
    CHECK(parse_ok(big.bytes).empty());  // trailing bytes after the answer section are not read
    big.bytes.push_back('\0');
    CHECK(contains(parse_error(big.bytes), "65536 bytes"));
}

TEST_CASE("dns: every truncation of an answer is an error naming the byte") {
    // Ends with the last answer RR, so no proper prefix is a whole message.
    Message m(kNoError, 1, 3);
    m.question();
    m.srv(ptr(kQuestionName), 3600, 5, 10, 5222, wire("a.example.org"));
    m.rr(ptr(kQuestionName), kTypeA, 60, "\x7f\x00\x00\x01"s);
    m.srv(ptr(kQuestionName), 3600, 5, 20, 5223, labels("b") + ptr(kExampleOrg));
    REQUIRE(parse_ok(m.bytes).size() == 2);
    for (std::size_t n = 0; n < m.size(); ++n) {
        INFO("prefix of " << n << " bytes");
        auto message = parse_error(std::string_view(m.bytes).substr(0, n));
        CHECK(message.rfind("truncated at byte " + std::to_string(n) + " (", 0) == 0);
    }
}

TEST_CASE("dns: a prefix of a message with extra sections errors or parses the same") {
    auto m = compressed_answer();
    auto whole = parse_ok(m.bytes);
    std::size_t parsed = 0;
    for (std::size_t n = 0; n <= m.size(); ++n) {
        INFO("prefix of " << n << " bytes");
        auto r = dns::parse_srv_answer(std::string_view(m.bytes).substr(0, n), kName);
        if (r) {
            CHECK(r.value() == whole);
            ++parsed;
        } else {
            CHECK(r.error().message.rfind("truncated at byte " + std::to_string(n), 0) == 0);
        }
    }
    CHECK(parsed == 12);  // the OPT record's 11 bytes missing, 10 .. 0 of them, then all of it
}

TEST_CASE("dns: compression pointers that do not point backwards are rejected") {
    SECTION("a pointer to itself") {
        Message m(kNoError, 1, 0);
        m.question(ptr(kQuestionName));
        CHECK(contains(parse_error(m.bytes), "compression pointer at byte 12 to byte 12"));
    }
    SECTION("a pointer forwards") {
        Message m(kNoError, 1, 0);
        m.question(ptr(14));
        CHECK(contains(parse_error(m.bytes), "compression pointer at byte 12 to byte 14"));
    }
    SECTION("two pointers pointing at each other") {
        Message m(kNoError, 1, 1);
        m.question();
        const std::size_t a = m.size();
        m.srv(ptr(a + 2), 1, 0, 0, 5222, wire("x.example.org"));
        m.bytes.replace(a, 2, ptr(a + 2) + ptr(a));  // owner at a -> a+2, a+2 -> a
        CHECK(contains(parse_error(m.bytes), "compression pointer at byte " + std::to_string(a)));
    }
    SECTION("a pointer back to the start of its own labels") {
        Message m(kNoError, 1, 1);
        m.question();
        const std::size_t a = m.size();
        m.srv(labels("loop") + ptr(a), 1, 0, 0, 5222, wire("x.example.org"));
        CHECK(contains(parse_error(m.bytes), "to byte " + std::to_string(a)));
    }
    SECTION("a loop through a jump: backwards from the pointer, but into the labels jumped to") {
        Message m(kNoError, 1, 1);
        m.question(labels("a") + ptr(kQuestionName));
        CHECK(contains(parse_error(m.bytes), "compression pointer at byte 14 to byte 12"));
    }
    SECTION("a pointer into the header") {
        Message m(kNoError, 1, 0);
        m.question(ptr(4));
        CHECK(contains(parse_error(m.bytes), "to byte 4"));
    }
    SECTION("a pointer past the end of the message") {
        Message m(kNoError, 1, 1);
        m.question();
        m.srv(ptr(kQuestionName), 1, 0, 0, 5222, ptr(0x3fff));
        CHECK(contains(parse_error(m.bytes), "to byte 16383"));
    }
}

TEST_CASE("dns: at most 32 compression pointers per name") {
    // The owner of the SRV record points at the last of a chain of pointers, each
    // pointing at the one before it, the first at the question name; the chain is the
    // RDATA of a record of an unknown type.
    const auto chain = [](int jumps) {
        Message m(kNoError, 1, 2);
        m.question();
        const std::size_t rdata = m.size() + 2 + 10;
        std::string pointers = ptr(kQuestionName);
        for (int i = 2; i < jumps; ++i) pointers += ptr(rdata + pointers.size() - 2);
        m.rr(ptr(kQuestionName), 99, 0, pointers);
        m.srv(ptr(rdata + pointers.size() - 2), 7, 1, 2, 5222, wire("chained.example.org"));
        return m;
    };
    auto ok = parse_ok(chain(32).bytes);
    REQUIRE(ok.size() == 1);
    CHECK(ok[0] == rec(1, 2, 5222, "chained.example.org", 7));
    CHECK(contains(parse_error(chain(33).bytes), "more than 32 compression pointers"));
}

TEST_CASE("dns: bad label lengths and overlong names are rejected") {
    SECTION("a label of 64 bytes") {
        Message m(kNoError, 1, 1);
        m.question();
        m.srv(wire(kName), 1, 0, 0, 5222, "\x40"s + std::string(64, 'a') + '\0');
        CHECK(contains(parse_error(m.bytes), "label length byte 0x40"));
    }
    SECTION("the 0x80 label type") {
        Message m(kNoError, 1, 0);
        m.question("\x80\x01"s);
        CHECK(contains(parse_error(m.bytes), "label length byte 0x80 at byte 12"));
    }
    SECTION("a name of 257 bytes") {
        std::string l63(63, 'a');
        Message m(kNoError, 1, 1);
        m.question();
        m.srv(wire(kName), 1, 0, 0, 5222, wire(l63 + "." + l63 + "." + l63 + "." + l63));
        CHECK(contains(parse_error(m.bytes), "longer than 255 bytes"));
    }
    SECTION("a name of 257 bytes put together from pointers") {
        std::string l63(63, 'a');
        Message m(kNoError, 2, 1);
        m.question(wire(l63 + "." + l63 + "." + l63));  // 193 bytes
        const std::size_t second = m.size();
        m.question(labels(std::string(61, 'c')) + ptr(kQuestionName));  // 62 + 193 = 255: fine
        m.srv(labels("d") + ptr(second), 1, 0, 0, 5222, wire("x.org"));  // 2 + 255
        CHECK(contains(parse_error(m.bytes), "answer 1 name at byte"));
        CHECK(contains(parse_error(m.bytes), "longer than 255 bytes"));
    }
}

TEST_CASE("dns: RDLENGTH must match the SRV RDATA") {
    SECTION("RDLENGTH longer than the SRV fields") {
        Message m(kNoError, 1, 1);
        m.question();
        m.rr(wire(kName), kTypeSrv, 1, srv_rdata(0, 0, 5222, wire("a.example.org")) + "xx");
        CHECK(contains(parse_error(m.bytes), "RDLENGTH mismatch"));
    }
    SECTION("RDLENGTH shorter than the target") {
        Message m(kNoError, 1, 2);
        m.question();
        const auto rdata = srv_rdata(0, 0, 5222, wire("a.example.org"));
        m.rr(wire(kName), kTypeSrv, 1, rdata, kClassIn, rdata.size() - 3);
        m.srv(wire(kName), 1, 0, 0, 5222, wire("b.example.org"));
        CHECK(contains(parse_error(m.bytes), "RDLENGTH mismatch"));
    }
    SECTION("RDLENGTH too short for priority, weight and port") {
        Message m(kNoError, 1, 2);
        m.question();
        m.rr(wire(kName), kTypeSrv, 1, u16(1) + u16(2));
        m.rr(wire(kName), kTypeA, 1, "\x7f\x00\x00\x01"s);
        CHECK(contains(parse_error(m.bytes), "answer 1 SRV priority, weight and port"));
        CHECK(contains(parse_error(m.bytes), "RDLENGTH mismatch"));
    }
    SECTION("RDLENGTH past the end of the message, also for other types") {
        Message m(kNoError, 1, 1);
        m.question();
        m.rr(wire(kName), kTypeA, 1, "\x7f\x00\x00\x01"s);
        m.bytes.pop_back();
        CHECK(contains(parse_error(m.bytes), "answer 1 RDATA"));
    }
}

TEST_CASE("dns: at most max_records SRV records are kept, the rest still checked") {
    Message m(kNoError, 1, 70);
    m.question();
    for (unsigned i = 0; i < 70; ++i) m.srv(ptr(kQuestionName), i, i, 0, 5222, wire("x.example.org"));
    auto records = parse_ok(m.bytes);
    REQUIRE(records.size() == dns::max_records);
    for (std::size_t i = 0; i < records.size(); ++i) CHECK(records[i].priority == i);

    Message bad(kNoError, 1, 70);
    bad.question();
    for (unsigned i = 0; i < 69; ++i) bad.srv(ptr(kQuestionName), i, i, 0, 5222, wire("x.example.org"));
    bad.srv(ptr(kQuestionName), 1, 1, 0, 5222, ptr(bad.size() + 2 + 10 + 6));  // a target pointing at itself
    CHECK(contains(parse_error(bad.bytes), "answer 70 SRV target"));
}

TEST_CASE("dns: the name asked for must be a DNS name") {
    Message m(kNoError, 1, 0);
    m.question();
    CHECK(parse_error(m.bytes, "a..b") == "'a..b' is not a DNS name (RFC 1035 §2.3.4)");
    CHECK(contains(parse_error(m.bytes, std::string(64, 'a') + ".org"), "is not a DNS name"));
    CHECK(parse_ok(m.bytes, ".").empty());  // the root is a name
}
