// Fuzzes the SRV answer parser as a hostile DNS server would drive it: any bytes, parsed
// for both XMPP services; what comes out must be bounded and well formed, and what the
// target list and the address interleaving make of it must be too.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string_view>
#include <vector>

#include "protocol/dns.hpp"

namespace {

constexpr std::string_view kDomain = "example.org";
constexpr std::string_view kDirect = "_xmpps-client._tcp.example.org";
constexpr std::string_view kStarttls = "_XMPP-Client._tcp.example.org.";

// parse_srv_answer's promises about one record. Label bytes are kept as they came, so a
// '.' inside a label can put a dot anywhere in the target.
void check_record(const dns::SrvRecord& r) {
    if (r.target.empty()) __builtin_trap();
    if (r.target.size() > 253) __builtin_trap();  // 255 on the wire, less the first length and the root
    if (std::any_of(r.target.begin(), r.target.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) __builtin_trap();
    if (r.ttl > 0x7fffffffu) __builtin_trap();  // RFC 2181 §8
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view message(reinterpret_cast<const char*>(data), size);
    auto direct = dns::parse_srv_answer(message, kDirect);
    auto starttls = dns::parse_srv_answer(message, kStarttls);
    // The owner name only selects records: framing errors do not depend on it.
    if (direct.ok() != starttls.ok()) __builtin_trap();
    if (!direct) {
        if (direct.error().code != "dns" || direct.error().message != starttls.error().message) __builtin_trap();
        return 0;
    }
    for (const auto* list : {&direct.value(), &starttls.value()}) {
        if (list->size() > dns::max_records) __builtin_trap();
        for (const auto& r : *list) check_record(r);
    }

    std::mt19937 random(size);
    auto ordered = dns::order_srv(starttls.value(), random);
    if (ordered.size() != starttls.value().size()) __builtin_trap();
    for (const auto& r : starttls.value())
        if (std::count(ordered.begin(), ordered.end(), r) != std::count(starttls.value().begin(), starttls.value().end(), r))
            __builtin_trap();
    for (std::size_t i = 1; i < ordered.size(); ++i)
        if (ordered[i - 1].priority > ordered[i].priority) __builtin_trap();

    const bool any = !direct.value().empty() || !starttls.value().empty();
    auto targets = dns::xmpp_targets(kDomain, direct.value(), starttls.value(), random);
    if (targets.size() > 2 * dns::max_records) __builtin_trap();
    if (!any && (targets.size() != 1 || targets[0].source != "fallback")) __builtin_trap();
    for (std::size_t i = 0; i < targets.size(); ++i) {
        const auto& t = targets[i];
        if (t.host.empty() || t.host == "." || t.source.empty()) __builtin_trap();
        if (any && t.source == "fallback") __builtin_trap();
        for (std::size_t j = 0; j < i; ++j)
            if (targets[j].host == t.host && targets[j].port == t.port && targets[j].direct_tls == t.direct_tls)
                __builtin_trap();
    }

    std::vector<bool> is_v6;
    for (std::size_t i = 0; i < std::min<std::size_t>(size, 64); ++i) is_v6.push_back((data[i] & 1) != 0);
    auto order = dns::interleave_families(is_v6);
    if (order.size() != is_v6.size()) __builtin_trap();
    std::vector<bool> seen(is_v6.size());
    for (std::size_t index : order) {
        if (index >= is_v6.size() || seen[index]) __builtin_trap();
        seen[index] = true;
    }
    return 0;
}
