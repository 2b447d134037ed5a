#pragma once
// OMEMO payload encryption: the symmetric layer under the Double Ratchet (XEP-0384). The
// message key (with its authentication tag) is what each device's session encrypts; the
// payload is encrypted once. Pure functions over OpenSSL; the caller supplies the random
// key and IV, so tests are deterministic.
#include <string>
#include <string_view>

#include "protocol/base/result.hpp"
#include "protocol/omemo/stanza.hpp"

namespace xmpp::omemo {

struct Sealed {
    std::string key_material;  // what the ratchet encrypts for each device
    std::string payload;       // the <payload/> bytes
};

// OMEMO 0.3: AES-128-GCM with a 12-byte IV; key material = key (16) || tag (16).
// OMEMO 2 (§4.3 Message Encryption): HKDF-SHA-256(key, 32 zero bytes, "OMEMO Payload") -> 80
// bytes: AES-256-CBC key, HMAC-SHA-256 key, IV; key material = key (32) || truncated HMAC (16).
// `key`: 16 random bytes (0.3) or 32 (2); `iv`: 12 random bytes (0.3 only).
Result<Sealed> seal(Version v, std::string_view plaintext, std::string_view key, std::string_view iv);
// The reverse; errors ("omemo-payload") when the tag does not verify or sizes are wrong.
Result<std::string> open(Version v, std::string_view key_material, std::string_view iv, std::string_view payload);

// Key material sizes (for checks before the ratchet is asked).
constexpr std::size_t key_size(Version v) { return v == Version::Legacy ? 16 : 32; }

}  // namespace xmpp::omemo
