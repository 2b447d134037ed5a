#pragma once
// Client-side SASL (RFC 4422) for XMPP (RFC 6120 §6): EXTERNAL with a TLS client certificate
// (RFC 4422 App. A, XEP-0178), SCRAM-SHA-512, -256 and -1 with or without channel binding
// (-PLUS; RFC 5802, RFC 7677, RFC 5929, RFC 9266, XEP-0440), the downgrade protection of
// XEP-0474, and PLAIN (RFC 4616, only inside TLS).
// Sans-I/O: payloads in and out are raw bytes; the stream base64-encodes them. The TLS layer
// hands in what it knows of the channel (TlsChannel); nothing here touches a socket or TLS.
// Crypto from OpenSSL's primitives (PKCS5_PBKDF2_HMAC, HMAC, EVP digests, RAND_bytes).
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/base/result.hpp"

namespace xmpp {

// The TLS channel a stream runs in, as much as SASL channel binding (RFC 5056) needs. The
// daemon fills it after every completed TLS handshake (ClientStream::set_tls_channel). The
// binding data is binary; empty means "not available", and a type without data is never used.
struct TlsChannel {
    std::string version;  // "TLSv1.2" or "TLSv1.3", as SSL_get_version() says
    // RFC 9266 §2: 32 bytes of exported keying material, label "EXPORTER-Channel-Binding",
    // empty context. Under TLS 1.2 only with the extended master secret (RFC 7627, RFC 9266
    // §3); leave it empty otherwise.
    std::string tls_exporter;
    // RFC 5929 §4.1: the hash of the server's certificate (DER) with the hash function of its
    // signature algorithm, SHA-256 when that is MD5 or SHA-1.
    std::string tls_server_end_point;
    // RFC 5929 §3.1: the first Finished message of the latest handshake (the client's after a
    // full handshake, the server's after a resumption). Used with TLS 1.2 only: RFC 9266 §3
    // leaves it undefined for TLS 1.3.
    std::string tls_unique;
};

// channel_binding = "auto" | "required" in the account's config.
enum class ChannelBindingPolicy {
    // Bind whenever both sides can; otherwise tell the server we could (gs2 'y'). Under
    // TLS 1.3 a server that offers -PLUS without a XEP-0440 list gets plain SCRAM with 'n':
    // no binding type is guessed (see choose).
    Auto,
    // A password never goes out without binding (SCRAM-*-PLUS); EXTERNAL is fine. Under
    // TLS 1.3 without a XEP-0440 list it binds with tls-exporter (RFC 9266), which fails with
    // servers that know only tls-unique.
    Required,
};

namespace sasl {

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

// What the server's stream features offered, exactly as received.
struct Offer {
    std::vector<std::string> mechanisms;  // RFC 6120 §6.4.1 <mechanisms/>, in its order
    // XEP-0440 <sasl-channel-binding/>: the types listed, when the element was sent at all.
    std::optional<std::vector<std::string>> channel_bindings;
};

// RFC 5802 §6-§7: what the gs2 header says about channel binding.
struct ChannelBinding {
    std::string type;        // "p=" with this type ("tls-exporter", ...); empty: no binding
    std::string data;        // the binding data of `type`, appended to the gs2 header in c=
    bool supported = false;  // without a type: 'y' (we could bind but the server offered no
                             // -PLUS), else 'n'
};

struct ScramOptions {
    ChannelBinding binding;
    // XEP-0474 §5.2: when the server-first-message carries h=, it must be the hash of these
    // lists; a mismatch fails with the code "downgrade". Without it h= is not checked.
    std::optional<Offer> offer;
    // XEP-0440 §3 rule 6 as XEP-0474 §7 relaxes it: the server listed -PLUS and channel-binding
    // types, none of which we can use, and not tls-server-end-point; only its signed lists
    // (h=) can show that nobody tampered with them, so without h= the exchange fails.
    bool require_offer_hash = false;
};

// A SCRAM mechanism, "-PLUS" when options.binding has a type. `client_nonce` is for tests
// (the RFC vectors); empty means 24 random bytes from RAND_bytes, base64-encoded.
std::unique_ptr<Mechanism> make_scram(ScramHash hash, Credentials credentials,
                                      std::string client_nonce = {}, ScramOptions options = {});
std::unique_ptr<Mechanism> make_plain(Credentials credentials);
// EXTERNAL (RFC 4422 App. A): the identity is the TLS client certificate's. XEP-0178 §3 step
// 9: an authzid only to act as someone else than the certificate says (or to pick one of
// several JIDs in it); empty sends "=" (RFC 6120 §6.4.2).
std::unique_ptr<Mechanism> make_external(std::string authzid = {});

// XEP-0484 (FAST): a token the server issued for one HT mechanism, kept by the owner between
// connections like a password (never logged).
struct FastToken {
    std::string mechanism;  // "HT-SHA-256-NONE", "HT-SHA-256-UNIQ", ...: the token works only with it
    std::string secret;     // the 'token' attribute
    std::string expiry;     // the 'expiry' attribute (XEP-0082 DateTime), as sent
    friend bool operator==(const FastToken&, const FastToken&) = default;
};

// The HT mechanisms of draft-schmaus-kitten-sasl-ht (the ones XEP-0484 lists), SHA-256 only:
// one message each way. The client sends authcid NUL HMAC(token, "Initiator" || cb-data); the
// server's success data must be HMAC(token, "Responder" || cb-data). `cb_data` is the binding
// data of the mechanism's type (empty for -NONE).
std::unique_ptr<Mechanism> make_ht(std::string name, std::string authcid, std::string token, std::string cb_data);

struct HtChoice {
    std::string mechanism;  // "HT-SHA-256-EXPR"
    std::string binding;    // "tls-exporter", "tls-unique", "tls-server-end-point", "" for -NONE
    std::string data;       // its binding data
};
// Of the HT mechanisms the server offers in <fast/>, the one to ask a token for: bound to the
// channel when we can (EXPR when tls-exporter data exists, UNIQ under TLS 1.2, ENDP), else
// -NONE, which ChannelBindingPolicy::Required refuses. nullopt: none fits.
std::optional<HtChoice> choose_ht(const std::vector<std::string>& offered, const TlsChannel& channel,
                                  ChannelBindingPolicy policy);
// The binding data an HT mechanism needs on this channel; nullopt when the channel cannot give
// it (a token for -UNIQ on a TLS 1.3 connection, say) or the name is not an HT-SHA-256 one.
std::optional<HtChoice> ht_for(std::string_view mechanism, const TlsChannel& channel, ChannelBindingPolicy policy);

// Everything the choice of a mechanism depends on, besides the offer.
struct Setup {
    Credentials credentials;          // an empty password: no password-based mechanism
    bool tls_active = false;          // PLAIN only inside TLS
    bool client_certificate = false;  // presented in the TLS handshake: EXTERNAL possible
    // Families in the order to try: "EXTERNAL", "SCRAM", "PLAIN" (any case). Empty: EXTERNAL
    // with a certificate, then SCRAM, then PLAIN.
    std::vector<std::string> order;
    ChannelBindingPolicy channel_binding = ChannelBindingPolicy::Auto;
    TlsChannel channel;
};

struct Choice {
    std::unique_ptr<Mechanism> mechanism;
    std::string description;  // for people: "SCRAM-SHA-256-PLUS, tls-exporter", "EXTERNAL"
    std::size_t position = 0;  // of its family in the order: choose(..., position + 1) goes on
    std::string failure_hint;  // what a <failure/> of this mechanism may also mean, or ""
};

// The first family of the order, from `from` on, that the offer and the setup allow, and in
// it the strongest variant: EXTERNAL only with a client certificate; within SCRAM -PLUS first
// when we can bind (XEP-0440 list, else what the TLS version defines: tls-unique under TLS 1.2,
// and under TLS 1.3 tls-exporter only with ChannelBindingPolicy::Required, plain SCRAM with
// gs2 'n' otherwise), then SHA-512 > SHA-256 > SHA-1; PLAIN only inside TLS. Errors: "no-mechanism" (says what was offered and why
// nothing fits), "channel-binding-required", "bad-sasl-order" (an unknown family name).
Result<Choice> choose(const Offer& offer, const Setup& setup, std::size_t from = 0);

// XEP-0474 §5.1: base64 of the hash of the sorted mechanisms joined by %x1E, then, when
// XEP-0440 was used, %x1F and the sorted channel-binding types joined by %x1E.
std::string offer_hash(ScramHash hash, const Offer& offer);

// RFC 4013 SASLprep (query strings: unassigned code points allowed), via libidn.
Result<std::string> saslprep(std::string_view text);

}  // namespace sasl
}  // namespace xmpp
