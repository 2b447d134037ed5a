#pragma once
// Where to connect for an XMPP domain, without sockets: the SRV answer parser (RFC 1035
// §4.1, RFC 2782), the order in which to try targets (RFC 2782 weights, RFC 6120 §3.2.1,
// XEP-0368) and the order in which to try addresses (RFC 8305 §4). The resolver in
// daemon/ does the I/O and feeds raw DNS answers in; randomness comes in as
// a generator so tests are deterministic. Loop thread only; no state.
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/base/result.hpp"

namespace dns {

struct SrvRecord {
    std::uint16_t priority = 0;
    std::uint16_t weight = 0;
    std::uint16_t port = 0;
    std::string target;       // lower case, no trailing dot; "." (no service) is kept as ".";
                              // only ASCII is lowered, other label bytes (even '.', NUL) kept
    std::uint32_t ttl = 0;    // seconds; a TTL with the top bit set is 0 (RFC 2181 §8)
    friend bool operator==(const SrvRecord&, const SrvRecord&) = default;
};

// Bounds on what one DNS answer may cost us (the network is untrusted).
inline constexpr std::size_t max_answer_bytes = 65535;
inline constexpr std::size_t max_records = 64;        // SRV records kept from one answer

// Parses a whole DNS response message (header, question, answer section) and returns the
// SRV records of the answer section whose owner name is `name` (case-insensitive; CNAMEs
// are not followed, RFC 2782 forbids them for SRV). Compression pointers are followed
// only backwards and at most 32 times per name; a name is at most 255 bytes. RCODE 3
// (NXDOMAIN) and an answer with no SRV record both give an empty list. Errors: code "dns"
// with what was wrong ("truncated at byte 37 (answer 2 RDATA at byte 30)", "server
// failure (RCODE 2)", "truncated answer (TC)": ask again over TCP). RCODE is looked at
// before TC. The ID and the question are not checked (the resolver matches the ID); the
// authority and additional sections are not read.
xmpp::Result<std::vector<SrvRecord>> parse_srv_answer(std::string_view message, std::string_view name);

// RFC 2782 "Usage rules": ascending priority; within one priority, a weighted random
// order (weight 0 records first in the candidate list, chosen with a small chance).
// At most `max_records` are kept.
std::vector<SrvRecord> order_srv(std::vector<SrvRecord> records, std::mt19937& random);

// One place to connect to, in the order they should be tried.
struct Target {
    std::string host;
    std::uint16_t port = 0;
    bool direct_tls = false;   // XEP-0368: TLS from the first byte
    std::string source;        // for the log: "SRV _xmpps-client._tcp.example.org", "fallback"
    friend bool operator==(const Target&, const Target&) = default;
};

// RFC 6120 §3.2.1 + XEP-0368 §3: the targets for `domain` from the records of
// _xmpps-client._tcp (direct TLS) and _xmpp-client._tcp (STARTTLS), both already as
// answered (unordered). Each list is ordered with order_srv; the two are merged by
// priority, and at equal priority direct TLS comes first (XEP-0368 §3 lets a client
// prefer a kind; weights are not mixed across the two lists). A service whose only record
// has target "." is not offered (RFC 2782); "." records are dropped before ordering.
// Only when both lists are empty is the result the fallback {domain, 5222, STARTTLS}
// (RFC 6120 §3.2.2 is for when SRV gave no answer). When records came back but none is
// usable, e.g. a "." from either service and nothing from the other, the result is empty:
// RFC 6120 §3.2.1 aborts on "." and does not fall back after an answer, and XEP-0368 §5
// forbids the A/AAAA fallback after a "." for _xmpps-client. Duplicate (host, port,
// direct_tls) entries are dropped, the first kept.
std::vector<Target> xmpp_targets(std::string_view domain, std::vector<SrvRecord> direct,
                                 std::vector<SrvRecord> starttls, std::mt19937& random);

// RFC 8305 §4: interleave address families, IPv6 first when there is any: v6, v4, v6,
// v4, ... keeping the order within each family; the longer family's rest at the end.
// `is_v6[i]` says the family of element i; the result is a permutation of indexes.
std::vector<std::size_t> interleave_families(const std::vector<bool>& is_v6);

}  // namespace dns
