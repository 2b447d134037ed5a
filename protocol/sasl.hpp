#pragma once
// Client-side SASL (RFC 4422) for XMPP (RFC 6120 §6): SCRAM-SHA-512, SCRAM-SHA-256,
// SCRAM-SHA-1 (RFC 5802, RFC 7677) and PLAIN (RFC 4616, only inside TLS).
// Sans-I/O: payloads in and out are raw bytes; the stream base64-encodes them.
// Crypto from OpenSSL's primitives (PKCS5_PBKDF2_HMAC, HMAC, EVP digests, RAND_bytes).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.hpp"

namespace xmpp::sasl {

struct Credentials {
    std::string authcid;   // the username: the JID's localpart
    std::string password;  // UTF-8; SASLprep is applied by the mechanism
    std::string authzid;   // usually empty
};

// One exchange of one mechanism. Not thread-safe; owned by the stream that runs it.
class Mechanism {
public:
    virtual ~Mechanism() = default;
    virtual std::string_view name() const = 0;
    // The client's first message (sent in <auth/>).
    virtual Result<std::string> initial_response() = 0;
    // The answer to a server <challenge/>.
    virtual Result<std::string> respond(std::string_view challenge) = 0;
    // The additional data of <success/>. SCRAM verifies the server signature here and
    // fails if it is missing or wrong: a server that cannot prove it knows the password
    // is not trusted.
    virtual Status finish(std::string_view additional_data) = 0;
};

enum class ScramHash { Sha1, Sha256, Sha512 };

// A SCRAM mechanism. `client_nonce` is for tests (the RFC vectors); empty means 24
// random bytes from RAND_bytes, base64-encoded.
std::unique_ptr<Mechanism> make_scram(ScramHash hash, Credentials credentials,
                                      std::string client_nonce = {});
std::unique_ptr<Mechanism> make_plain(Credentials credentials);

// Picks the strongest mechanism both sides support: SCRAM-SHA-512, SCRAM-SHA-256,
// SCRAM-SHA-1, then PLAIN, and PLAIN only when `tls_active`. The error says what the
// server offered and why none was acceptable.
Result<std::unique_ptr<Mechanism>> choose(const std::vector<std::string>& offered,
                                          const Credentials& credentials, bool tls_active);

// RFC 4013 SASLprep (query strings: unassigned code points allowed), via libidn.
Result<std::string> saslprep(std::string_view text);

std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);  // rejects bad characters/padding

}  // namespace xmpp::sasl
