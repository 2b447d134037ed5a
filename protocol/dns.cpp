#include "protocol/dns.hpp"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <utility>

namespace dns {
namespace {

using xmpp::make_error;

constexpr std::size_t header_bytes = 12;         // RFC 1035 §4.1.1
constexpr std::size_t max_label_bytes = 63;      // RFC 1035 §2.3.4
constexpr std::size_t max_name_bytes = 255;      // RFC 1035 §2.3.4: length octets included
constexpr int max_pointer_jumps = 32;
constexpr std::uint16_t type_srv = 33;           // RFC 2782
constexpr std::uint16_t class_in = 1;            // RFC 1035 §3.2.4
constexpr std::uint16_t rcode_nxdomain = 3;      // RFC 1035 §4.1.1
constexpr std::uint16_t xmpp_client_port = 5222; // RFC 6120 §3.2.2

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string hex_byte(unsigned value) {
    char out[8];
    std::snprintf(out, sizeof out, "0x%02x", value & 0xffu);
    return out;
}

// RFC 1035 §4.1.1 RCODE, named as in the RFC (and RFC 6895 §2.3 for 6..10).
std::string rcode_text(unsigned rcode) {
    const char* what = "unknown error";
    switch (rcode) {
        case 1: what = "format error"; break;
        case 2: what = "server failure"; break;
        case 4: what = "not implemented"; break;
        case 5: what = "refused"; break;
        case 6: what = "name exists when it should not"; break;
        case 7: what = "RR set exists when it should not"; break;
        case 8: what = "RR set that should exist does not"; break;
        case 9: what = "not authoritative"; break;
        case 10: what = "name not in zone"; break;
        default: break;
    }
    return std::string(what) + " (RCODE " + std::to_string(rcode) + ")";
}

// Bounds-checked reads over one DNS message; the first failure is kept in error(). Names
// come out in "key" form: the wire form (length octet + label bytes, RFC 1035 §3.1)
// without the terminating zero, ASCII lower-cased, so two names compare equal exactly when
// DNS says they are the same (RFC 4343 §3) and a '.' inside a label stays unambiguous.
class Reader {
public:
    explicit Reader(std::string_view message) : m_(message) {}

    const std::string& error() const { return error_; }

    // Whether n bytes at `at` lie before `limit` (the message end, or the end of the
    // RDATA being read).
    bool need(std::size_t at, std::size_t n, std::size_t limit, std::string_view what) {
        if (at + n <= limit) return true;
        if (limit >= m_.size()) {
            return fail("truncated at byte " + std::to_string(m_.size()) + " (" + std::string(what) +
                        " at byte " + std::to_string(at) + ")");
        }
        return fail(std::string(what) + " at byte " + std::to_string(at) + " runs past the RDATA end at byte " +
                    std::to_string(limit) + " (RDLENGTH mismatch)");
    }

    unsigned u8(std::size_t at) const { return static_cast<unsigned char>(m_[at]); }
    std::uint16_t u16(std::size_t at) const { return static_cast<std::uint16_t>(u8(at) << 8 | u8(at + 1)); }
    std::uint32_t u32(std::size_t at) const {
        return static_cast<std::uint32_t>(u16(at)) << 16 | u16(at + 2);
    }

    // RFC 1035 §3.1 and §4.1.4: reads the name at `pos` and moves `pos` past its bytes
    // (up to and including the terminating zero or the first pointer). Bytes before the
    // first pointer must end by `limit`. A pointer must point into the message body at an
    // offset before the start of the run of labels it ends, so every jump goes strictly
    // backwards and a name cannot loop; at most 32 jumps.
    bool name(std::size_t& pos, std::size_t limit, std::string& key, std::string_view what) {
        key.clear();
        const std::size_t start = pos;
        std::size_t at = pos;
        std::size_t run_start = pos;
        std::size_t wire_bytes = 1;  // the terminating zero
        int jumps = 0;
        for (;;) {
            if (!need(at, 1, limit, what)) return false;
            const unsigned length = u8(at);
            if (length == 0) {
                if (jumps == 0) pos = at + 1;
                return true;
            }
            if ((length & 0xc0) == 0xc0) {
                if (!need(at, 2, limit, what)) return false;
                const std::size_t target = u16(at) & 0x3fffu;
                if (target >= run_start || target < header_bytes) {
                    return fail("compression pointer at byte " + std::to_string(at) + " to byte " +
                                std::to_string(target) + " does not point back into the message (" +
                                std::string(what) + ")");
                }
                if (++jumps > max_pointer_jumps) {
                    return fail("more than " + std::to_string(max_pointer_jumps) + " compression pointers in " +
                                std::string(what) + " at byte " + std::to_string(start));
                }
                if (jumps == 1) pos = at + 2;
                at = run_start = target;
                limit = m_.size();
                continue;
            }
            if (length > max_label_bytes) {  // 0x40 and 0x80: RFC 6891 §5, RFC 2673 (not used)
                return fail("label length byte " + hex_byte(length) + " at byte " + std::to_string(at) +
                            " is not 1..63 (" + std::string(what) + ")");
            }
            wire_bytes += 1 + length;
            if (wire_bytes > max_name_bytes) {
                return fail(std::string(what) + " at byte " + std::to_string(start) + " is longer than " +
                            std::to_string(max_name_bytes) + " bytes");
            }
            if (!need(at + 1, length, limit, what)) return false;
            key.push_back(static_cast<char>(length));
            for (std::size_t i = at + 1; i <= at + length; ++i) key.push_back(ascii_lower(m_[i]));
            at += 1 + length;
        }
    }

private:
    bool fail(std::string message) {
        error_ = std::move(message);
        return false;
    }

    std::string_view m_;
    std::string error_;
};

// "\x04_tcp\x07example" -> "_tcp.example"; the root name (empty key) -> ".".
std::string key_to_text(std::string_view key) {
    if (key.empty()) return ".";
    std::string text;
    text.reserve(key.size());
    for (std::size_t at = 0; at < key.size();) {
        const std::size_t length = static_cast<unsigned char>(key[at]);
        if (!text.empty()) text.push_back('.');
        text.append(key.substr(at + 1, length));
        at += 1 + length;
    }
    return text;
}

// The key of a dotted name as we were asked for it; a trailing dot is optional.
xmpp::Result<std::string> text_to_key(const std::string_view name) {
    std::string_view text = name;
    if (!text.empty() && text.back() == '.') text.remove_suffix(1);
    std::string key;
    if (text.empty()) return key;
    std::size_t wire_bytes = 1;
    for (;;) {
        const std::size_t dot = text.find('.');
        const std::string_view label = text.substr(0, dot);
        wire_bytes += 1 + label.size();
        if (label.empty() || label.size() > max_label_bytes || wire_bytes > max_name_bytes) {
            return make_error("dns", "'" + std::string(name) + "' is not a DNS name (RFC 1035 §2.3.4)");
        }
        key.push_back(static_cast<char>(label.size()));
        for (char c : label) key.push_back(ascii_lower(c));
        if (dot == std::string_view::npos) return key;
        text.remove_prefix(dot + 1);
    }
}

}  // namespace

xmpp::Result<std::vector<SrvRecord>> parse_srv_answer(std::string_view message, std::string_view name) {
    if (message.size() > max_answer_bytes) {
        return make_error("dns", "answer of " + std::to_string(message.size()) + " bytes is larger than " +
                                     std::to_string(max_answer_bytes));
    }
    auto wanted = text_to_key(name);
    if (!wanted) return wanted.error();
    Reader r(message);
    const std::size_t end = message.size();
    if (!r.need(0, header_bytes, end, "header")) return make_error("dns", r.error());

    // RFC 1035 §4.1.1. RCODE before TC: a failure or NXDOMAIN is final however long the
    // answer would have been; TC with RCODE 0 means the records are incomplete (RFC 2181
    // §9), so the resolver should ask again over TCP.
    const std::uint16_t flags = r.u16(2);
    if ((flags & 0x8000u) == 0) return make_error("dns", "not a response (QR=0)");
    const unsigned rcode = flags & 0x000fu;
    if (rcode == rcode_nxdomain) return std::vector<SrvRecord>{};
    if (rcode != 0) return make_error("dns", rcode_text(rcode));
    if ((flags & 0x0200u) != 0) return make_error("dns", "truncated answer (TC)");
    const std::uint16_t qdcount = r.u16(4);
    const std::uint16_t ancount = r.u16(6);

    std::size_t pos = header_bytes;
    std::string key;
    // RFC 1035 §4.1.2: QNAME, QTYPE, QCLASS.
    for (unsigned i = 1; i <= qdcount; ++i) {
        const std::string what = "question " + std::to_string(i);
        if (!r.name(pos, end, key, what + " name")) return make_error("dns", r.error());
        if (!r.need(pos, 4, end, what + " type and class")) return make_error("dns", r.error());
        pos += 4;
    }

    // RFC 1035 §4.1.3: NAME, TYPE, CLASS, TTL, RDLENGTH, RDATA. Authority and additional
    // sections are not read.
    std::vector<SrvRecord> records;
    for (unsigned i = 1; i <= ancount; ++i) {
        const std::string what = "answer " + std::to_string(i);
        if (!r.name(pos, end, key, what + " name")) return make_error("dns", r.error());
        if (!r.need(pos, 10, end, what + " fixed fields")) return make_error("dns", r.error());
        const std::uint16_t type = r.u16(pos);
        const std::uint16_t klass = r.u16(pos + 2);
        std::uint32_t ttl = r.u32(pos + 4);
        if ((ttl & 0x80000000u) != 0) ttl = 0;  // RFC 2181 §8
        const std::uint16_t rdlength = r.u16(pos + 8);
        pos += 10;
        if (!r.need(pos, rdlength, end, what + " RDATA")) return make_error("dns", r.error());
        const std::size_t rdata_end = pos + rdlength;
        if (type != type_srv || klass != class_in) {
            pos = rdata_end;  // other types: framing only
            continue;
        }
        // RFC 2782 "The format of the SRV RR": priority, weight, port, target. The target
        // may be compressed although RFC 2782 says it should not be; servers do it.
        SrvRecord srv;
        if (!r.need(pos, 6, rdata_end, what + " SRV priority, weight and port")) return make_error("dns", r.error());
        srv.priority = r.u16(pos);
        srv.weight = r.u16(pos + 2);
        srv.port = r.u16(pos + 4);
        srv.ttl = ttl;
        const bool owner_matches = key == wanted.value();
        std::size_t target_pos = pos + 6;
        if (!r.name(target_pos, rdata_end, key, what + " SRV target")) return make_error("dns", r.error());
        if (target_pos != rdata_end) {
            return make_error("dns", what + " SRV RDATA at byte " + std::to_string(pos) + " is " +
                                         std::to_string(target_pos - pos) + " bytes but RDLENGTH is " +
                                         std::to_string(rdlength) + " (RDLENGTH mismatch)");
        }
        pos = rdata_end;
        if (owner_matches && records.size() < max_records) {
            srv.target = key_to_text(key);
            records.push_back(std::move(srv));
        }
    }
    return records;
}

std::vector<SrvRecord> order_srv(std::vector<SrvRecord> records, std::mt19937& random) {
    std::stable_sort(records.begin(), records.end(),
                     [](const SrvRecord& a, const SrvRecord& b) { return a.priority < b.priority; });
    std::vector<SrvRecord> out;
    out.reserve(std::min(records.size(), max_records));
    auto first = records.begin();
    while (first != records.end() && out.size() < max_records) {
        const auto group_end = std::find_if(first, records.end(), [&](const SrvRecord& s) {
            return s.priority != first->priority;
        });
        // RFC 2782 "Usage rules": the unordered RRs of this priority, weight 0 first;
        // a uniform number in [0, sum of weights]; the first RR whose running sum of
        // weights reaches it is next. Picked RRs move to the front of [first, group_end),
        // the rest keep their order.
        std::stable_partition(first, group_end, [](const SrvRecord& s) { return s.weight == 0; });
        while (first != group_end && out.size() < max_records) {
            std::uint64_t total = 0;
            for (auto it = first; it != group_end; ++it) total += it->weight;
            std::uniform_int_distribution<std::uint64_t> pick(0, total);
            const std::uint64_t n = pick(random);
            std::uint64_t running = 0;
            auto chosen = first;
            for (; chosen != group_end; ++chosen) {
                running += chosen->weight;
                if (running >= n) break;
            }
            std::rotate(first, chosen, std::next(chosen));
            out.push_back(std::move(*first));
            ++first;
        }
        first = group_end;
    }
    return out;
}

std::vector<Target> xmpp_targets(std::string_view domain, std::vector<SrvRecord> direct,
                                 std::vector<SrvRecord> starttls, std::mt19937& random) {
    // RFC 6120 §3.2.1: the fallback of §3.2.2 is for when the SRV query got no answer;
    // an answer that gives nothing to connect to is not followed by it. A lone "."
    // target means "decidedly not available" (RFC 2782) and aborts SRV processing
    // (§3.2.1); by XEP-0368 §5 a "." for _xmpps-client also rules out the A/AAAA
    // fallback. So only two empty lists fall back to the domain itself.
    const bool answered = !direct.empty() || !starttls.empty();
    const auto is_root = [](const SrvRecord& s) { return s.target == "."; };
    std::erase_if(direct, is_root);
    std::erase_if(starttls, is_root);
    if (direct.empty() && starttls.empty()) {
        if (answered) return {};
        return {Target{std::string(domain), xmpp_client_port, false, "fallback"}};
    }
    const std::vector<SrvRecord> d = order_srv(std::move(direct), random);
    const std::vector<SrvRecord> s = order_srv(std::move(starttls), random);
    const std::string direct_source = "SRV _xmpps-client._tcp." + std::string(domain);
    const std::string starttls_source = "SRV _xmpp-client._tcp." + std::string(domain);

    std::vector<Target> out;
    out.reserve(d.size() + s.size());
    const auto add = [&](const SrvRecord& r, bool direct_tls) {
        for (const Target& t : out)
            if (t.host == r.target && t.port == r.port && t.direct_tls == direct_tls) return;
        out.push_back(Target{r.target, r.port, direct_tls, direct_tls ? direct_source : starttls_source});
    };
    // XEP-0368 §3 rule 1 lets a client prefer one kind: priorities are merged, and at
    // equal priority direct TLS goes first (weights are not mixed across the two lists).
    std::size_t i = 0;
    std::size_t j = 0;
    while (i < d.size() || j < s.size()) {
        if (j == s.size() || (i < d.size() && d[i].priority <= s[j].priority)) add(d[i++], true);
        else add(s[j++], false);
    }
    return out;
}

std::vector<std::size_t> interleave_families(const std::vector<bool>& is_v6) {
    std::vector<std::size_t> v6;
    std::vector<std::size_t> v4;
    for (std::size_t i = 0; i < is_v6.size(); ++i) (is_v6[i] ? v6 : v4).push_back(i);
    // RFC 8305 §4: alternate families, starting with the preferred one (IPv6).
    std::vector<std::size_t> out;
    out.reserve(is_v6.size());
    for (std::size_t k = 0; k < std::max(v6.size(), v4.size()); ++k) {
        if (k < v6.size()) out.push_back(v6[k]);
        if (k < v4.size()) out.push_back(v4[k]);
    }
    return out;
}

}  // namespace dns
