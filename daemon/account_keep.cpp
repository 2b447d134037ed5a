#include "daemon/account_keep.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string_view>
#include <vector>

#include "daemon/log.hpp"

namespace stanzad {

namespace {
// Random bytes from OpenSSL's CSPRNG (RFC 9562 §6.9), drawn 512 at a time: a RAND_bytes call
// costs about 6,000 instructions whatever its size, and a message sent needs 16 (issue 15).
// Loop thread only (the ids of messages, devices and IRC sessions).
void random_bytes(unsigned char* out, std::size_t n) {
    static unsigned char pool[512];
    static std::size_t left = 0;
    while (n > 0) {
        if (left == 0) {
            if (RAND_bytes(pool, sizeof pool) != 1) {
                // Not seeded (never seen after boot on Linux): the kernel's, through getrandom.
                logs::daemon().warn("stanzad: OpenSSL's random generator failed; using the kernel's");
                std::random_device rd;
                for (auto& b : pool) b = static_cast<unsigned char>(rd());
            }
            left = sizeof pool;
        }
        const std::size_t take = std::min(n, left);
        std::memcpy(out, pool + sizeof pool - left, take);
        OPENSSL_cleanse(pool + sizeof pool - left, take);  // each byte is handed out once
        left -= take;
        out += take;
        n -= take;
    }
}

std::string format_uuid(const unsigned char (&b)[16]) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += hex[b[i] >> 4];
        out += hex[b[i] & 15];
    }
    return out;
}
}  // namespace

std::string make_uuid() {
    unsigned char b[16];
    random_bytes(b, sizeof b);
    b[6] = (b[6] & 0x0F) | 0x40;  // RFC 9562 §5.4: version 4
    b[8] = (b[8] & 0x3F) | 0x80;  // variant 10
    return format_uuid(b);
}

std::string make_time_uuid(std::uint64_t unix_ms) {
    unsigned char b[16];
    random_bytes(b, sizeof b);  // RFC 9562 §6.9: the random bits from a CSPRNG
    for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(unix_ms >> (8 * (5 - i)));  // §5.7: unix_ts_ms, big-endian
    b[6] = (b[6] & 0x0F) | 0x70;  // version 7
    b[8] = (b[8] & 0x3F) | 0x80;  // variant 10
    return format_uuid(b);
}

std::string make_time_uuid() {
    using namespace std::chrono;
    return make_time_uuid(static_cast<std::uint64_t>(
        duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count()));
}

void AccountKeep::save_checkpoint(const std::optional<xmpp::SmCheckpoint>& cp) {
    std::string value = cp ? cp->id + "\n" + cp->location + "\n" + cp->jid + "\n" + std::to_string(cp->inbound) : "";
    if (auto st = store_.set_meta(account_, "sm", value); !st)
        logs::daemon().warn("account {}: cannot keep the stream management state: {}", account_, st.error().message);
}

std::optional<xmpp::SmCheckpoint> AccountKeep::checkpoint() const {
    auto value = store_.meta(account_, "sm");
    if (!value || value.value().empty()) return std::nullopt;
    std::vector<std::string> parts;
    std::string_view rest = value.value();
    for (std::size_t nl; (nl = rest.find('\n')) != std::string_view::npos; rest.remove_prefix(nl + 1))
        parts.emplace_back(rest.substr(0, nl));
    parts.emplace_back(rest);
    if (parts.size() != 4 || parts[0].empty()) return std::nullopt;
    return xmpp::SmCheckpoint{parts[0], parts[1], parts[2], static_cast<std::uint32_t>(std::strtoul(parts[3].c_str(), nullptr, 10))};
}

void AccountKeep::save_fast_token(const std::optional<xmpp::sasl::FastToken>& token) {
    std::string value = token ? token->mechanism + "\n" + token->secret + "\n" + token->expiry : "";
    if (auto st = store_.set_meta(account_, "fast", value); !st)
        logs::daemon().warn("account {}: cannot keep the FAST token: {}", account_, st.error().message);
}

std::optional<xmpp::sasl::FastToken> AccountKeep::fast_token() const {
    auto value = store_.meta(account_, "fast");
    if (!value) return std::nullopt;
    std::string_view v = value.value();
    auto first = v.find('\n'), second = v.find('\n', first == v.npos ? v.npos : first + 1);
    if (second == v.npos || first == 0 || second == first + 1) return std::nullopt;
    return xmpp::sasl::FastToken{std::string(v.substr(0, first)), std::string(v.substr(first + 1, second - first - 1)),
                                 std::string(v.substr(second + 1))};
}

std::string AccountKeep::user_agent_id() {
    if (auto kept = store_.meta(account_, "user_agent"); kept && kept.value().size() == 36) return kept.value();
    std::string id = make_uuid();
    if (auto st = store_.set_meta(account_, "user_agent", id); !st) return {};  // unstable ids are worse than none
    return id;
}

}  // namespace stanzad
