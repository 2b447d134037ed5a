#pragma once
// The helpers of the protocol/dns tests (dns_*_test.cpp): DNS messages built byte by byte
// (RFC 1035 §4.1), SRV records, and the target list of a domain.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/dns.hpp"

namespace dns_test {

using namespace std::string_literals;
using dns::SrvRecord;
using dns::Target;

inline constexpr std::string_view kName = "_xmpp-client._tcp.example.org";
inline constexpr std::size_t kQuestionName = 12;  // where the question's name starts
inline constexpr std::size_t kExampleOrg = 30;    // "example.org" inside it: 12 + 13 ("_xmpp-client") + 5 ("_tcp")

inline constexpr std::uint16_t kTypeA = 1;
inline constexpr std::uint16_t kTypeCname = 5;
inline constexpr std::uint16_t kTypeAaaa = 28;
inline constexpr std::uint16_t kTypeSrv = 33;
inline constexpr std::uint16_t kTypeOpt = 41;
inline constexpr std::uint16_t kClassIn = 1;

inline constexpr std::uint16_t kNoError = 0x8180;  // QR, RD, RA
inline constexpr std::uint16_t kNxDomain = 0x8183;

inline std::string u16(unsigned v) { return {static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)}; }
inline std::string u32(std::uint32_t v) { return u16(v >> 16) + u16(v & 0xffff); }

// Labels of a dotted name without the terminating zero: "a.bc" -> "\1a\2bc".
inline std::string labels(std::string_view dotted) {
    std::string out;
    while (!dotted.empty()) {
        auto dot = dotted.find('.');
        auto label = dotted.substr(0, dot);
        out += static_cast<char>(label.size());
        out += label;
        dotted.remove_prefix(dot == std::string_view::npos ? dotted.size() : dot + 1);
    }
    return out;
}

// An uncompressed name (RFC 1035 §3.1); "" is the root.
inline std::string wire(std::string_view dotted) { return labels(dotted) + '\0'; }

// A compression pointer (RFC 1035 §4.1.4).
inline std::string ptr(std::size_t offset) { return u16(0xc000 | offset); }

inline std::string srv_rdata(unsigned priority, unsigned weight, unsigned port, const std::string& target) {
    return u16(priority) + u16(weight) + u16(port) + target;
}

// A DNS message written section by section; counts are given up front as a server would.
struct Message {
    std::string bytes;

    explicit Message(unsigned flags = kNoError, unsigned qd = 1, unsigned an = 0, unsigned ns = 0,
                     unsigned ar = 0) {
        bytes = u16(0xbeef) + u16(flags) + u16(qd) + u16(an) + u16(ns) + u16(ar);
    }
    Message& question(const std::string& name = wire(kName), unsigned type = kTypeSrv) {
        bytes += name + u16(type) + u16(kClassIn);
        return *this;
    }
    // RDLENGTH is the size of `rdata` unless given.
    Message& rr(const std::string& owner, unsigned type, std::uint32_t ttl, const std::string& rdata,
                unsigned klass = kClassIn, std::size_t rdlength = std::string::npos) {
        if (rdlength == std::string::npos) rdlength = rdata.size();
        bytes += owner + u16(type) + u16(klass) + u32(ttl) + u16(rdlength) + rdata;
        return *this;
    }
    Message& srv(const std::string& owner, std::uint32_t ttl, unsigned priority, unsigned weight, unsigned port,
                 const std::string& target) {
        return rr(owner, kTypeSrv, ttl, srv_rdata(priority, weight, port, target));
    }
    std::size_t size() const { return bytes.size(); }
};

inline SrvRecord rec(unsigned priority, unsigned weight, unsigned port, std::string target, std::uint32_t ttl = 0) {
    SrvRecord r;
    r.priority = static_cast<std::uint16_t>(priority);
    r.weight = static_cast<std::uint16_t>(weight);
    r.port = static_cast<std::uint16_t>(port);
    r.target = std::move(target);
    r.ttl = ttl;
    return r;
}

inline std::vector<SrvRecord> parse_ok(std::string_view message, std::string_view name = kName) {
    auto r = dns::parse_srv_answer(message, name);
    if (!r) FAIL("parse failed: " << r.error().message);
    return r.value();
}

// The error message of a parse that must fail with code "dns".
inline std::string parse_error(std::string_view message, std::string_view name = kName) {
    auto r = dns::parse_srv_answer(message, name);
    if (r) FAIL("parse succeeded with " << r.value().size() << " records");
    CHECK(r.error().code == "dns");
    CHECK_FALSE(r.error().message.empty());
    return r.error().message;
}

inline bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

// jabber.org-shaped: compressed owners, one target written out, one target compressed
// against the question, an A and a CNAME record in between, an EDNS OPT record after.
inline Message compressed_answer() {
    Message m(kNoError, 1, 4, 0, 1);
    m.question(wire("_XMPP-Client._TCP.Example.ORG"));
    m.srv(ptr(kQuestionName), 3600, 31, 30, 5222, wire("Hermes2.Example.ORG"));
    const std::size_t hermes = m.size() - wire("hermes2.example.org").size();
    m.rr(ptr(hermes), kTypeA, 300, "\xc0\x00\x02\x01"s);
    m.rr(labels("alias") + ptr(kExampleOrg), kTypeCname, 60, ptr(hermes));
    m.srv(ptr(kQuestionName), 3600, 30, 30, 5222, labels("xmpp") + ptr(kExampleOrg));
    m.rr("\0"s, kTypeOpt, 0, "", 1232);  // RFC 6891 §6.1.2: CLASS is the UDP payload size
    return m;
}

inline std::vector<Target> targets(std::vector<SrvRecord> direct, std::vector<SrvRecord> starttls,
                            std::uint32_t seed = 1) {
    std::mt19937 random(seed);
    return dns::xmpp_targets("example.org", std::move(direct), std::move(starttls), random);
}

inline constexpr std::string_view kDirectSource = "SRV _xmpps-client._tcp.example.org";
inline constexpr std::string_view kStarttlsSource = "SRV _xmpp-client._tcp.example.org";

}  // namespace dns_test
