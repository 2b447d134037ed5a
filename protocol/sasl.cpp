// Client-side SASL mechanisms: EXTERNAL (RFC 4422 App. A), SCRAM with and without channel
// binding (RFC 5802, RFC 7677, XEP-0474) and PLAIN (RFC 4616), and the choice between them.
// See sasl.hpp. Every error is a value; no message ever carries a password, a key, a proof
// or channel-binding data.
#include "protocol/sasl.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <idn-free.h>
#include <stringprep.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <climits>
#include <cstdint>
#include <utility>

#include "protocol/base/base64.hpp"

namespace xmpp::sasl {
namespace {

// RFC 5802 §5.1 and RFC 7677 §4: at least 4096 iterations; fewer make a captured exchange
// cheap to brute-force.
constexpr std::uint64_t kMinIterations = 4096;
// A server that asks for more iterations than this could pin the loop thread for many
// seconds per attempt (about a second at this bound with SHA-512); 1,000,000 is far above
// what deployed servers use (4096..100,000).
constexpr std::uint64_t kMaxIterations = 1'000'000;
constexpr std::size_t kNonceBytes = 24;

void wipe(std::string& s) {
    if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
    s.clear();
}

// Key material that is wiped when it goes out of scope, so a reused heap block or a core
// dump does not hand it to someone else.
class Secret {
public:
    explicit Secret(std::size_t size = 0) : bytes_(size) {}
    ~Secret() { clear(); }
    Secret(Secret&& other) noexcept : bytes_(std::move(other.bytes_)) {}
    Secret& operator=(Secret&& other) noexcept {
        clear();
        bytes_ = std::move(other.bytes_);
        return *this;
    }
    Secret(const Secret&) = delete;
    Secret& operator=(const Secret&) = delete;

    unsigned char* data() { return bytes_.data(); }
    const unsigned char* data() const { return bytes_.data(); }
    std::size_t size() const { return bytes_.size(); }
    std::string_view view() const {
        return {reinterpret_cast<const char*>(bytes_.data()), bytes_.size()};
    }
    void clear() {
        if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
        bytes_.clear();
    }

private:
    std::vector<unsigned char> bytes_;
};

// Server-supplied text put into an error message: printable ASCII only and bounded, so a
// hostile server cannot inject control characters or megabytes into our logs.
std::string sanitize(std::string_view text, std::size_t limit = 64) {
    std::string out;
    for (char c : text.substr(0, limit)) {
        out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
    }
    if (text.size() > limit) out += "...";
    return out;
}

// RFC 5802 §7: printable = %x21-2B / %x2D-7E (visible ASCII except ',').
bool is_printable_nonce(std::string_view nonce) {
    if (nonce.empty()) return false;
    for (unsigned char c : nonce) {
        if (c < 0x21 || c > 0x7e || c == ',') return false;
    }
    return true;
}

// `what` names the field ("username", "password") and is the only part of the input the
// message reveals.
Result<std::string> prepare(std::string_view text, std::string_view what) {
    // libidn takes a C string: an embedded NUL would silently truncate the input, and
    // RFC 4013 §2.3 prohibits U+0000 anyway (RFC 3454 C.2.1).
    if (text.find('\0') != std::string_view::npos) {
        return make_error("saslprep", std::string(what) +
                                          " is not allowed by SASLprep (RFC 4013): it "
                                          "contains a NUL character");
    }
    std::string input(text);
    char* out = nullptr;
    // Flags 0: a "query" string in RFC 3454 §7 terms; RFC 5802 §5.1 asks for that for
    // both username and password, and unassigned code points stay allowed.
    int rc = stringprep_profile(input.c_str(), &out, "SASLprep",
                                static_cast<Stringprep_profile_flags>(0));
    wipe(input);
    if (rc != STRINGPREP_OK) {
        if (out != nullptr) idn_free(out);
        return make_error("saslprep",
                          std::string(what) + " is not allowed by SASLprep (RFC 4013): " +
                              stringprep_strerror(static_cast<Stringprep_rc>(rc)));
    }
    std::string result(out);
    OPENSSL_cleanse(out, result.size());
    idn_free(out);
    return result;
}

// RFC 5802 §5.1: saslname escapes ',' and '=' so they cannot end or fake an attribute.
std::string escape_saslname(std::string_view name) {
    std::string out;
    out.reserve(name.size());
    for (char c : name) {
        if (c == ',') {
            out += "=2C";
        } else if (c == '=') {
            out += "=3D";
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (true) {
        std::size_t end = text.find(separator, start);
        if (end == std::string_view::npos) {
            parts.push_back(text.substr(start));
            return parts;
        }
        parts.push_back(text.substr(start, end - start));
        start = end + 1;
    }
}

// RFC 5802 §7: attr-val = ALPHA "=" value, value = 1*value-char.
bool is_attr_val(std::string_view part) {
    if (part.size() < 3 || part[1] != '=') return false;
    char a = part[0];
    return (a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z');
}

struct Hash {
    std::string_view mechanism;
    std::string_view plus;  // the channel-binding variant (RFC 5802 §4)
    const EVP_MD* md;
};

Hash hash_info(ScramHash hash) {
    switch (hash) {
        case ScramHash::Sha1: return {"SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", EVP_sha1()};
        case ScramHash::Sha256: return {"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", EVP_sha256()};
        case ScramHash::Sha512: return {"SCRAM-SHA-512", "SCRAM-SHA-512-PLUS", EVP_sha512()};
    }
    return {"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", EVP_sha256()};
}

// RFC 5802 §7: cb-name = 1*(ALPHA / DIGIT / "." / "-").
bool is_cb_name(std::string_view name) {
    if (name.empty()) return false;
    for (unsigned char c : name) {
        if (!std::isalnum(c) && c != '.' && c != '-') return false;
    }
    return true;
}

// The server-error-value of a server-final-message (RFC 5802 §7), explained.
std::string explain_server_error(std::string_view value, const ChannelBinding& binding) {
    std::string out = "the server rejected the SCRAM exchange: " + sanitize(value);
    if (value == "invalid-proof") {
        out += " (wrong password)";
    } else if (value == "unknown-user") {
        out += " (no such user)";
    } else if (value == "channel-bindings-dont-match") {
        out += " (the TLS channel the server sees is not the one we see: someone may be "
               "intercepting the connection)";
    } else if (value == "server-does-support-channel-binding") {
        out += " (we said we could bind to the channel but saw no SCRAM-*-PLUS offered: "
               "someone may have removed it from the server's list)";
    } else if (value == "unsupported-channel-binding-type" && !binding.type.empty()) {
        out += " (the server cannot check " + binding.type + ")";
    } else if (value == "channel-binding-not-supported") {
        out += " (the server offered SCRAM-*-PLUS but cannot bind to the channel)";
    }
    return out;
}

Error crypto_error(std::string_view step) {
    return make_error("crypto", "OpenSSL failed while computing the SCRAM " +
                                    std::string(step));
}

bool hmac(const EVP_MD* md, const Secret& key, std::string_view data, Secret& out) {
    out = Secret(static_cast<std::size_t>(EVP_MD_get_size(md)));
    unsigned int length = 0;
    if (key.size() > INT_MAX) return false;
    if (HMAC(md, key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
             &length) == nullptr) {
        return false;
    }
    return length == out.size();
}

bool digest(const EVP_MD* md, const Secret& data, Secret& out) {
    out = Secret(static_cast<std::size_t>(EVP_MD_get_size(md)));
    unsigned int length = 0;
    if (EVP_Digest(data.data(), data.size(), out.data(), &length, md, nullptr) != 1) {
        return false;
    }
    return length == out.size();
}

// Offer as text for people: "mechanisms A, B with channel bindings C" (sorted, sanitized).
std::string offer_text(const Offer& offer) {
    auto list = [](std::vector<std::string> items) {
        std::sort(items.begin(), items.end());
        std::string out;
        constexpr std::size_t kListed = 16;
        for (std::size_t k = 0; k < items.size() && k < kListed; ++k) {
            if (k > 0) out += ", ";
            out += sanitize(items[k], 40);
        }
        if (items.size() > kListed) out += ", ...";
        return out.empty() ? std::string("(none)") : out;
    };
    std::string out = list(offer.mechanisms);
    if (offer.channel_bindings) {
        out += " with channel bindings " + list(*offer.channel_bindings);
    } else {
        out += " without a channel-binding list";
    }
    return out;
}

// XEP-0474 §5.2 failed: only a hash came signed, so the lists behind it are found by trying
// what an attacker would have removed: SCRAM variants missing from the offer, and the
// XEP-0440 list (all of it, or some of the types defined today). At most 64 x 10 hashes of a
// few hundred bytes, and only on this error path.
std::string describe_downgrade(ScramHash hash, const Offer& offer, std::string_view signed_hash) {
    static constexpr std::array<std::string_view, 6> kScram{
        "SCRAM-SHA-1",      "SCRAM-SHA-256",      "SCRAM-SHA-512",
        "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-512-PLUS"};
    static constexpr std::array<std::string_view, 3> kTypes{"tls-exporter",
                                                            "tls-server-end-point", "tls-unique"};
    std::vector<std::string> missing;
    for (auto name : kScram) {
        if (std::find(offer.mechanisms.begin(), offer.mechanisms.end(), name) ==
            offer.mechanisms.end()) {
            missing.emplace_back(name);
        }
    }
    std::vector<std::optional<std::vector<std::string>>> bindings{offer.channel_bindings,
                                                                  std::nullopt};
    for (unsigned set = 0; set < (1u << kTypes.size()); ++set) {
        std::vector<std::string> types;
        for (std::size_t k = 0; k < kTypes.size(); ++k) {
            if (set & (1u << k)) types.emplace_back(kTypes[k]);
        }
        bindings.emplace_back(std::move(types));
    }
    for (unsigned set = 0; set < (1u << missing.size()); ++set) {
        Offer candidate{offer.mechanisms, std::nullopt};
        for (std::size_t k = 0; k < missing.size(); ++k) {
            if (set & (1u << k)) candidate.mechanisms.push_back(missing[k]);
        }
        for (const auto& b : bindings) {
            candidate.channel_bindings = b;
            if (offer_hash(hash, candidate) == signed_hash) {
                return "downgrade detected: the server signed mechanisms " +
                       offer_text(candidate) + " but offered " + offer_text(offer) +
                       " (XEP-0474)";
            }
        }
    }
    return "downgrade detected: the mechanisms and channel-binding types the server signed "
           "(XEP-0474) are not the ones it offered (" + offer_text(offer) + ")";
}

// SCRAM client (RFC 5802 §3, §5), with channel binding (§6) when `binding` has a type. One
// exchange: initial_response, one respond, finish. Holds the password only until the proof
// is computed, then keeps just the expected ServerSignature; everything secret is wiped on
// the way out.
class Scram final : public Mechanism {
public:
    Scram(ScramHash hash, Credentials credentials, std::string client_nonce, ScramOptions options)
        : hash_id_(hash),
          hash_(hash_info(hash)),
          credentials_(std::move(credentials)),
          client_nonce_(std::move(client_nonce)),
          options_(std::move(options)) {}

    ~Scram() override { forget_secrets(); }

    std::string_view name() const override {
        return options_.binding.type.empty() ? hash_.mechanism : hash_.plus;
    }

    Result<std::string> initial_response() override {
        if (state_ != State::Initial) {
            return fail("scram-out-of-order", "the SCRAM exchange has already started");
        }
        const ChannelBinding& binding = options_.binding;
        if (!binding.type.empty() && (!is_cb_name(binding.type) || binding.data.empty())) {
            return fail("scram-bad-binding",
                        "channel binding needs a type name (RFC 5802 §7 cb-name) and its data");
        }
        if (client_nonce_.empty()) {
            std::array<unsigned char, kNonceBytes> random{};
            if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
                return fail("random", "RAND_bytes could not produce a SCRAM client nonce");
            }
            client_nonce_ = base64_encode(
                {reinterpret_cast<const char*>(random.data()), random.size()});
        } else if (!is_printable_nonce(client_nonce_)) {
            return fail("scram-bad-nonce",
                        "the client nonce must be visible ASCII without ',' (RFC 5802 §7)");
        }

        auto username = prepare(credentials_.authcid, "the username");
        if (!username) return fail(username.error());
        if (username.value().empty()) {
            return fail("empty-username", "the SCRAM username is empty");
        }
        // RFC 5802 §7: authzid is a saslname, which excludes NUL.
        if (credentials_.authzid.find('\0') != std::string::npos) {
            return fail("bad-authzid", "the authorization identity contains a NUL character");
        }

        // RFC 5802 §7 gs2-header = gs2-cbind-flag "," [authzid] ","; the flag is "p=" with
        // the binding type, "y" when we could bind but the server offered no -PLUS (§6: the
        // server refuses that if it did offer one, which exposes a stripped list), else "n".
        std::string flag = !binding.type.empty() ? "p=" + binding.type
                           : binding.supported   ? std::string("y")
                                                 : std::string("n");
        gs2_header_ = flag + "," +
                      (credentials_.authzid.empty()
                           ? std::string()
                           : "a=" + escape_saslname(credentials_.authzid)) +
                      ",";
        client_first_bare_ = "n=" + escape_saslname(username.value()) + ",r=" + client_nonce_;
        state_ = State::SentFirst;
        return gs2_header_ + client_first_bare_;
    }

    Result<std::string> respond(std::string_view challenge) override {
        if (state_ == State::SentFinal && challenge.substr(0, 2) == "e=") {
            // A server-final-message with an error, sent as a challenge.
            return fail("scram-server-error",
                        explain_server_error(split(challenge, ',').front().substr(2),
                                             options_.binding));
        }
        if (state_ != State::SentFirst) {
            // A second challenge would be a server trying to get a second proof out of us,
            // or a server sending server-final as a challenge, which RFC 6120 §6.3.10 rules
            // out for mechanisms with additional data on success.
            return fail("scram-out-of-order",
                        state_ == State::Initial
                            ? "a SCRAM challenge arrived before the initial response"
                            : "the server sent a second SCRAM challenge; only one is expected");
        }
        if (challenge.find('\0') != std::string_view::npos) {
            return fail("scram-bad-challenge", "the server-first-message contains a NUL");
        }

        // RFC 5802 §7: server-first-message =
        //     [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]
        auto parts = split(challenge, ',');
        for (auto part : parts) {
            if (!is_attr_val(part)) {
                return fail("scram-bad-challenge",
                            "the server-first-message is not a list of a=value attributes");
            }
            // RFC 5802 §5.1: an unknown mandatory extension means the client MUST fail.
            if (part[0] == 'm') {
                return fail("scram-bad-challenge",
                            "the server requires a mandatory SCRAM extension (m=) we do not "
                            "support");
            }
        }
        // §5.1: the order is fixed; only extensions after i= may vary.
        if (parts.size() < 3 || parts[0][0] != 'r' || parts[1][0] != 's' ||
            parts[2][0] != 'i') {
            return fail("scram-bad-challenge",
                        "the server-first-message does not start with r=, s=, i= in that "
                        "order");
        }

        // §5.1: the server's nonce extends ours (checked below); anything else may be a replay.
        std::string_view nonce = parts[0].substr(2);
        if (!is_printable_nonce(nonce)) {
            return fail("scram-bad-nonce", "the server nonce contains invalid characters");
        }

        auto salt = base64_decode(parts[1].substr(2));
        if (!salt) {
            return fail("scram-bad-challenge",
                        "the salt (s=) is not valid base64: " + salt.error().message);
        }
        if (salt.value().empty()) {
            return fail("scram-bad-challenge", "the salt (s=) is empty");
        }

        // §7: iteration-count = "i=" posit-number, posit-number = %x31-39 *DIGIT.
        std::string_view count_text = parts[2].substr(2);
        if (count_text[0] < '1' || count_text[0] > '9') {
            return fail("scram-bad-challenge",
                        "the iteration count (i=) is not a positive integer");
        }
        std::uint64_t iterations = 0;
        for (char c : count_text) {
            if (c < '0' || c > '9') {
                return fail("scram-bad-challenge",
                            "the iteration count (i=) is not a positive integer");
            }
            iterations = iterations * 10 + static_cast<std::uint64_t>(c - '0');
            if (iterations > kMaxIterations) {
                return fail("scram-iterations",
                            "the server asks for " + sanitize(count_text, 24) +
                                " PBKDF2 iterations (at most " +
                                std::to_string(kMaxIterations) +
                                " accepted: more would stall the daemon at every login)");
            }
        }
        if (iterations < kMinIterations) {
            return fail("scram-iterations",
                        "the server asks for only " + std::to_string(iterations) +
                            " PBKDF2 iterations (at least " + std::to_string(kMinIterations) +
                            " required, RFC 5802 §5.1)");
        }

        // XEP-0474 §5.2: the server's hash of what it offered, checked against what we saw.
        std::optional<std::string_view> signed_hash;
        for (std::size_t k = 3; k < parts.size(); ++k) {
            if (parts[k][0] != 'h') continue;
            if (signed_hash) {
                return fail("scram-bad-challenge",
                            "the server-first-message has more than one h= attribute");
            }
            signed_hash = parts[k].substr(2);
        }
        if (options_.offer) {
            if (signed_hash && *signed_hash != offer_hash(hash_id_, *options_.offer)) {
                return fail("downgrade", describe_downgrade(hash_id_, *options_.offer,
                                                            *signed_hash));
            }
            if (!signed_hash && options_.require_offer_hash) {
                return fail("downgrade",
                            "downgrade suspected: the server offers SCRAM-*-PLUS with channel "
                            "bindings none of which this connection can use, and not "
                            "tls-server-end-point, which every server must offer (XEP-0440 "
                            "§3); it did not sign its lists (XEP-0474), so they may have been "
                            "tampered with (" + offer_text(*options_.offer) + ")");
            }
        }

        // Checked after the offer, so that a fuzzer without our random nonce reaches the above.
        if (nonce.size() <= client_nonce_.size() ||
            nonce.substr(0, client_nonce_.size()) != client_nonce_) {
            return fail("scram-bad-nonce",
                        "the server nonce does not extend the client nonce");
        }

        auto password = prepare(credentials_.password, "the password");
        wipe(credentials_.password);
        if (!password) return fail(password.error());

        // §7: channel-binding = "c=" base64(cbind-input), cbind-input = gs2-header
        // [cbind-data], the data only with "p=".
        std::string cbind_input = gs2_header_;
        if (!options_.binding.type.empty()) cbind_input += options_.binding.data;
        std::string without_proof =
            "c=" + base64_encode(cbind_input) + ",r=" + std::string(nonce);
        wipe(cbind_input);
        std::string auth_message =
            client_first_bare_ + "," + std::string(challenge) + "," + without_proof;

        // §3: SaltedPassword := Hi(Normalize(password), salt, i); Hi is PBKDF2 (RFC 2898)
        // with HMAC and dkLen equal to the hash size.
        const EVP_MD* md = hash_.md;
        Secret salted(static_cast<std::size_t>(EVP_MD_get_size(md)));
        const std::string& pw = password.value();
        const std::string& salt_bytes = salt.value();
        bool derived = pw.size() <= INT_MAX && salt_bytes.size() <= INT_MAX &&
                       PKCS5_PBKDF2_HMAC(
                           pw.data(), static_cast<int>(pw.size()),
                           reinterpret_cast<const unsigned char*>(salt_bytes.data()),
                           static_cast<int>(salt_bytes.size()), static_cast<int>(iterations),
                           md, static_cast<int>(salted.size()), salted.data()) == 1;
        wipe(password.value());
        if (!derived) return fail(crypto_error("SaltedPassword"));

        // §3: ClientKey, StoredKey, ClientSignature, ClientProof, ServerKey, ServerSignature.
        Secret client_key, stored_key, client_signature, server_key;
        if (!hmac(md, salted, "Client Key", client_key)) return fail(crypto_error("ClientKey"));
        if (!digest(md, client_key, stored_key)) return fail(crypto_error("StoredKey"));
        if (!hmac(md, stored_key, auth_message, client_signature)) {
            return fail(crypto_error("ClientSignature"));
        }
        if (!hmac(md, salted, "Server Key", server_key)) return fail(crypto_error("ServerKey"));
        if (!hmac(md, server_key, auth_message, server_signature_)) {
            return fail(crypto_error("ServerSignature"));
        }

        Secret proof(client_key.size());
        for (std::size_t k = 0; k < proof.size(); ++k) {
            proof.data()[k] = client_key.data()[k] ^ client_signature.data()[k];
        }
        state_ = State::SentFinal;
        return without_proof + ",p=" + base64_encode(proof.view());
    }

    Status finish(std::string_view additional_data) override {
        if (state_ != State::SentFinal) {
            return fail("scram-out-of-order",
                        state_ == State::Done     ? "the SCRAM exchange has already finished"
                        : state_ == State::Failed ? "the SCRAM exchange has already failed"
                                                  : "the server reported success before the "
                                                    "SCRAM exchange was complete");
        }
        // RFC 5802 §7: server-final-message = (server-error / verifier) ["," extensions]
        auto first = split(additional_data, ',').front();
        if (first.substr(0, 2) == "e=") {
            return fail("scram-server-error",
                        explain_server_error(first.substr(2), options_.binding));
        }
        if (first.substr(0, 2) != "v=") {
            return fail("scram-bad-signature",
                        "the server-final-message has no verifier (v=), so the server did "
                        "not prove it knows the password");
        }
        auto verifier = base64_decode(first.substr(2));
        // §5.1: the client MUST verify ServerSignature. Compare in constant time so that a
        // forged verifier learns nothing from timing.
        if (!verifier || verifier.value().size() != server_signature_.size() ||
            CRYPTO_memcmp(verifier.value().data(), server_signature_.data(),
                          server_signature_.size()) != 0) {
            return fail("scram-bad-signature",
                        "the server signature (v=) is wrong: the server does not know the "
                        "password, or someone is in the middle");
        }
        state_ = State::Done;
        forget_secrets();
        return Ok{};
    }

private:
    enum class State { Initial, SentFirst, SentFinal, Done, Failed };

    Error fail(Error error) {
        state_ = State::Failed;
        forget_secrets();
        return error;
    }
    Error fail(std::string code, std::string message) {
        return fail(make_error(std::move(code), std::move(message)));
    }

    void forget_secrets() {
        wipe(credentials_.password);
        server_signature_.clear();
    }

    ScramHash hash_id_;
    Hash hash_;
    Credentials credentials_;
    std::string client_nonce_;
    ScramOptions options_;
    std::string gs2_header_;
    std::string client_first_bare_;
    Secret server_signature_;
    State state_ = State::Initial;
};

// PLAIN (RFC 4616): one message, no challenges, no additional data on success.
class Plain final : public Mechanism {
public:
    explicit Plain(Credentials credentials) : credentials_(std::move(credentials)) {}
    ~Plain() override { wipe(credentials_.password); }

    std::string_view name() const override { return "PLAIN"; }

    Result<std::string> initial_response() override {
        // RFC 4616 §2: authcid and passwd are 1*SAFE, authzid excludes NUL.
        if (credentials_.authzid.find('\0') != std::string::npos) {
            return make_error("bad-authzid",
                              "the authorization identity contains a NUL character");
        }
        auto authcid = prepare(credentials_.authcid, "the username");
        if (!authcid) return authcid.error();
        if (authcid.value().empty()) {
            return make_error("empty-username", "the PLAIN username is empty");
        }
        auto password = prepare(credentials_.password, "the password");
        if (!password) return password.error();
        if (password.value().empty()) {
            return make_error("empty-password", "PLAIN cannot send an empty password");
        }
        // RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd
        std::string message = credentials_.authzid;
        message.push_back('\0');
        message += authcid.value();
        message.push_back('\0');
        message += password.value();
        wipe(password.value());
        return message;
    }

    Result<std::string> respond(std::string_view) override {
        return make_error("plain-unexpected-challenge",
                          "the server sent a challenge, but PLAIN has none (RFC 4616)");
    }

    Status finish(std::string_view additional_data) override {
        if (!additional_data.empty()) {
            return make_error("plain-unexpected-data",
                              "the server sent additional data with success, but PLAIN "
                              "defines none (RFC 4616)");
        }
        return Ok{};
    }

private:
    Credentials credentials_;
};

// EXTERNAL (RFC 4422 App. A): the server takes the identity from the TLS client certificate
// (XEP-0178 §3). message = [authz-id]; no additional data on success.
class External final : public Mechanism {
public:
    explicit External(std::string authzid) : authzid_(std::move(authzid)) {}

    std::string_view name() const override { return "EXTERNAL"; }

    Result<std::string> initial_response() override {
        if (authzid_.find('\0') != std::string::npos) {
            return make_error("bad-authzid",
                              "the authorization identity contains a NUL character");
        }
        return authzid_;
    }

    Result<std::string> respond(std::string_view challenge) override {
        // App. A: the only challenge is an empty one, asking for the message when the client
        // sent no initial response. We always send one, but answering it once is harmless.
        if (!challenge.empty() || answered_) {
            return make_error("external-unexpected-challenge",
                              "the server sent a challenge, but EXTERNAL has none after the "
                              "initial response (RFC 4422 App. A)");
        }
        answered_ = true;
        return authzid_;
    }

    Status finish(std::string_view additional_data) override {
        if (!additional_data.empty()) {
            return make_error("external-unexpected-data",
                              "the server sent additional data with success, but EXTERNAL "
                              "defines none (RFC 4422 App. A)");
        }
        return Ok{};
    }

private:
    std::string authzid_;
    bool answered_ = false;
};

// draft-schmaus-kitten-sasl-ht §3 (the HT mechanisms of XEP-0484): the client proves it holds
// the token with HMAC(token, "Initiator" || cb-data), the server with "Responder"; one message
// each way, no iterations. The token is wiped with the mechanism.
class Ht final : public Mechanism {
public:
    Ht(std::string name, std::string authcid, std::string token, std::string cb_data)
        : name_(std::move(name)), authcid_(std::move(authcid)), token_(token.size()), cb_data_(std::move(cb_data)) {
        std::copy(token.begin(), token.end(), token_.data());
        wipe(token);
    }
    ~Ht() override { wipe(cb_data_); }

    std::string_view name() const override { return name_; }

    Result<std::string> initial_response() override {
        if (authcid_.empty() || authcid_.find('\0') != std::string::npos)
            return make_error("bad-username", "the username is empty or contains a NUL character");
        Secret proof;
        if (!hmac(EVP_sha256(), token_, "Initiator" + cb_data_, proof))
            return make_error("crypto", "OpenSSL failed while computing the FAST proof");
        return authcid_ + '\0' + std::string(proof.view());
    }

    Result<std::string> respond(std::string_view) override {
        return make_error("ht-unexpected-challenge", "the server sent a challenge, but " + name_ +
                                                         " has none (one message each way)");
    }

    Status finish(std::string_view additional_data) override {
        Secret expected;
        if (!hmac(EVP_sha256(), token_, "Responder" + cb_data_, expected))
            return make_error("crypto", "OpenSSL failed while checking the server's FAST proof");
        if (additional_data.size() != expected.size() ||
            CRYPTO_memcmp(additional_data.data(), expected.data(), expected.size()) != 0)
            return make_error("server-proof", "the server's FAST proof is missing or wrong: it does not "
                                              "know our token (a man in the middle?)");
        return Ok{};
    }

private:
    std::string name_, authcid_;
    Secret token_;
    std::string cb_data_;
};

enum class Family { External, Scram, Plain };

constexpr std::string_view kExporter = "tls-exporter";
constexpr std::string_view kEndPoint = "tls-server-end-point";
constexpr std::string_view kUnique = "tls-unique";

bool contains(const std::vector<std::string>& list, std::string_view item) {
    return std::find(list.begin(), list.end(), item) != list.end();
}

bool tls12_or_older(std::string_view version) {
    return version == "TLSv1.2" || version == "TLSv1.1" || version == "TLSv1";
}

std::string_view binding_data(const TlsChannel& channel, std::string_view type) {
    if (type == kExporter) return channel.tls_exporter;
    if (type == kEndPoint) return channel.tls_server_end_point;
    if (type == kUnique && tls12_or_older(channel.version)) return channel.tls_unique;
    return {};
}

// The channel-binding types this connection has data for, in the order to use them when the
// server does not list its own (XEP-0440; under TLS 1.3 only with channel_binding = required,
// see pick_binding). RFC 9266 makes tls-exporter the default under TLS 1.3, where tls-unique
// is undefined; under TLS 1.2 RFC 5802 §6 makes tls-unique the type every server with -PLUS
// implements (Prosody 0.12 and ejabberd 23.01 know no other), so it goes first there.
std::vector<std::string_view> usable_types(const TlsChannel& channel) {
    std::vector<std::string_view> out;
    auto add = [&](std::string_view type) {
        if (!binding_data(channel, type).empty()) out.push_back(type);
    };
    if (tls12_or_older(channel.version)) add(kUnique);
    add(kExporter);
    add(kEndPoint);
    return out;
}

// The binding type for SCRAM-*-PLUS, if any: with a XEP-0440 list the strongest type on it
// that we can use (§3 rule 7: stronger than tls-server-end-point when possible), else the
// default of the TLS version, which under TLS 1.3 is used only when binding is required.
std::optional<std::string_view> pick_binding(const Offer& offer, const TlsChannel& channel,
                                             ChannelBindingPolicy policy) {
    auto usable = usable_types(channel);
    if (offer.channel_bindings) {
        for (auto type : {kExporter, kEndPoint, kUnique}) {
            if (contains(*offer.channel_bindings, type) &&
                std::find(usable.begin(), usable.end(), type) != usable.end()) {
                return type;
            }
        }
        return std::nullopt;
    }
    if (usable.empty()) return std::nullopt;
    // TLS 1.3 without a list: no guess unless binding is required. RFC 9266 §3 makes
    // tls-exporter the type there, tls-unique being undefined under TLS 1.3, but servers older
    // than it offer -PLUS under TLS 1.3 and know only tls-unique (Debian 12's ejabberd 23.01),
    // so a tls-exporter login to them always fails; only the list of XEP-0440 §3 says which
    // types a server knows. Auto therefore uses plain SCRAM with 'n' (not 'y', which a server
    // that offers -PLUS refuses), as coyim does; required binds with tls-exporter and accepts
    // that failure.
    if (!tls12_or_older(channel.version) && policy == ChannelBindingPolicy::Auto) {
        return std::nullopt;
    }
    return usable.front();
}

// The HT mechanisms in the order we prefer them, with the binding type each uses.
constexpr std::array<std::pair<std::string_view, std::string_view>, 4> kHtMechanisms{{
    {"HT-SHA-256-EXPR", kExporter},
    {"HT-SHA-256-UNIQ", kUnique},
    {"HT-SHA-256-ENDP", kEndPoint},
    {"HT-SHA-256-NONE", ""},
}};

std::string join(const std::vector<std::string_view>& items) {
    std::string out;
    for (auto item : items) out += (out.empty() ? "" : ", ") + std::string(item);
    return out.empty() ? std::string("none") : out;
}

// SCRAM within the offer: -PLUS first when we can bind, then the strongest hash. Sets
// `refusal` when channel_binding = required rules SCRAM out, adds to `notes` why else not.
std::optional<Choice> choose_scram(const Offer& offer, const Setup& setup, std::size_t position,
                                   std::optional<Error>& refusal,
                                   std::vector<std::string>& notes) {
    std::optional<ScramHash> plus, plain;
    for (auto hash : {ScramHash::Sha512, ScramHash::Sha256, ScramHash::Sha1}) {
        Hash info = hash_info(hash);
        if (!plus && contains(offer.mechanisms, info.plus)) plus = hash;
        if (!plain && contains(offer.mechanisms, info.mechanism)) plain = hash;
    }
    if (!plus && !plain) return std::nullopt;
    bool required = setup.channel_binding == ChannelBindingPolicy::Required;
    auto usable = usable_types(setup.channel);
    ScramOptions options;
    options.offer = offer;

    if (plus) {
        if (auto type = pick_binding(offer, setup.channel, setup.channel_binding)) {
            options.binding.type = std::string(*type);
            options.binding.data = std::string(binding_data(setup.channel, *type));
            Choice choice{make_scram(*plus, setup.credentials, {}, std::move(options)), {},
                          position, {}};
            choice.description = std::string(choice.mechanism->name()) + ", " + std::string(*type);
            if (!offer.channel_bindings) {
                choice.failure_hint =
                    "if the password is right, the server may not know " + std::string(*type) +
                    ": it did not say which channel-binding types it supports (XEP-0440); or "
                    "the TLS channel differs on its side: someone between us may be relaying it";
                if (*type == kExporter && !tls12_or_older(setup.channel.version)) {
                    choice.failure_hint += "; servers that know only tls-unique (ejabberd "
                                           "before 23.10) cannot bind under TLS 1.3";
                }
            }
            return choice;
        }
        if (required) {
            std::vector<std::string_view> listed;
            if (offer.channel_bindings) {
                for (const auto& t : *offer.channel_bindings) listed.push_back(t);
            }
            refusal = make_error(
                "channel-binding-required",
                usable.empty()
                    ? "channel binding is required but this TLS connection has no "
                      "channel-binding data"
                    : "channel binding is required but none of the server's channel-binding "
                      "types (" + sanitize(join(listed), 120) +
                          ") is one this connection can use (" + join(usable) + ")");
            return std::nullopt;
        }
        if (!plain) {
            notes.push_back(usable.empty()
                                ? "SCRAM-*-PLUS needs channel-binding data, which this TLS "
                                  "connection does not have"
                            : !offer.channel_bindings
                                ? "SCRAM-*-PLUS is offered without a list of channel-binding "
                                  "types (XEP-0440), and under TLS 1.3 none is guessed unless "
                                  "channel_binding = \"required\""
                                : "SCRAM-*-PLUS is offered only with channel-binding types "
                                  "this connection cannot use");
            return std::nullopt;
        }
        // We cannot bind to what this server offers, or will not guess a type for it (TLS 1.3
        // without a list, see pick_binding): 'n'. A list stripped on the way is still caught
        // when the server signs its offer (XEP-0474, options.offer). XEP-0440 §3 rule 6 (as
        // XEP-0474 §7 relaxes it): a list without tls-server-end-point, which every server must
        // offer, and nothing we can use on it is trusted only if the server signs it.
        options.require_offer_hash =
            !usable.empty() && offer.channel_bindings && !contains(*offer.channel_bindings, kEndPoint);
    } else {
        if (required) {
            refusal = make_error("channel-binding-required",
                                 "channel binding is required but the server offers no "
                                 "SCRAM-*-PLUS");
            return std::nullopt;
        }
        // RFC 5802 §6 and XEP-0440 §3 rule 3: we could bind, the server offers no -PLUS: 'y',
        // which a server that did offer -PLUS refuses, exposing whoever removed it.
        options.binding.supported = !usable.empty();
    }
    bool flag_y = options.binding.supported;
    Choice choice{make_scram(*plain, setup.credentials, {}, std::move(options)), {}, position, {}};
    choice.description = std::string(choice.mechanism->name());
    if (flag_y) {
        choice.failure_hint =
            "if the password is right: we told the server we can bind to the channel but saw "
            "no SCRAM-*-PLUS offered (gs2 flag 'y', RFC 5802 §6); a server that does offer it "
            "refuses this, so someone may have removed it from the list";
    }
    return choice;
}

Result<std::vector<Family>> families(const Setup& setup) {
    std::vector<Family> out;
    if (setup.order.empty()) {
        if (setup.client_certificate) out.push_back(Family::External);
        out.push_back(Family::Scram);
        out.push_back(Family::Plain);
        return out;
    }
    for (const auto& name : setup.order) {
        std::string upper;
        for (unsigned char c : name) upper.push_back(static_cast<char>(std::toupper(c)));
        Family family;
        if (upper == "EXTERNAL") {
            family = Family::External;
        } else if (upper == "SCRAM") {
            family = Family::Scram;
        } else if (upper == "PLAIN") {
            family = Family::Plain;
        } else {
            return make_error("bad-sasl-order", "sasl: unknown mechanism family '" +
                                                    sanitize(name, 40) +
                                                    "' (known: EXTERNAL, SCRAM, PLAIN)");
        }
        if (std::find(out.begin(), out.end(), family) == out.end()) out.push_back(family);
    }
    return out;
}

}  // namespace

std::unique_ptr<Mechanism> make_scram(ScramHash hash, Credentials credentials,
                                      std::string client_nonce, ScramOptions options) {
    return std::make_unique<Scram>(hash, std::move(credentials), std::move(client_nonce),
                                   std::move(options));
}

std::unique_ptr<Mechanism> make_plain(Credentials credentials) {
    return std::make_unique<Plain>(std::move(credentials));
}

std::unique_ptr<Mechanism> make_external(std::string authzid) {
    return std::make_unique<External>(std::move(authzid));
}

Result<Choice> choose(const Offer& offer, const Setup& setup, std::size_t from) {
    auto order = families(setup);
    if (!order) return order.error();
    const auto& family = order.value();
    auto offered = [&](std::string_view name) { return contains(offer.mechanisms, name); };
    bool password = !setup.credentials.password.empty();
    bool required = setup.channel_binding == ChannelBindingPolicy::Required;
    std::optional<Error> refusal;
    std::vector<std::string> notes;

    // RFC 6120 §6.3.3: the client picks, in its order of preference.
    for (std::size_t k = from; k < family.size(); ++k) {
        switch (family[k]) {
            case Family::External:
                // Some servers offer EXTERNAL to every client (ejabberd): never without a
                // certificate of ours.
                if (!setup.client_certificate || !offered("EXTERNAL")) break;
                return Choice{make_external(), "EXTERNAL", k, {}};
            case Family::Scram:
                if (!password) break;
                if (auto choice = choose_scram(offer, setup, k, refusal, notes)) {
                    return std::move(*choice);
                }
                break;
            case Family::Plain:
                if (!password || !offered("PLAIN")) break;
                // RFC 4616 §6: PLAIN sends the password itself, so only over a confidential
                // channel, and it cannot be bound to it.
                if (!setup.tls_active) {
                    notes.emplace_back("PLAIN is refused outside TLS");
                    break;
                }
                if (required) {
                    notes.emplace_back("PLAIN cannot bind to the channel (channel_binding = "
                                       "\"required\")");
                    break;
                }
                return Choice{make_plain(setup.credentials), "PLAIN", k, {}};
        }
    }
    if (refusal) return *refusal;

    std::string message = "no acceptable SASL mechanism: ";
    if (offer.mechanisms.empty()) {
        message += "the server offered none";
    } else {
        message += "the server offered ";
        constexpr std::size_t kListed = 16;
        for (std::size_t k = 0; k < offer.mechanisms.size() && k < kListed; ++k) {
            if (k > 0) message += ", ";
            message += sanitize(offer.mechanisms[k], 40);
        }
        if (offer.mechanisms.size() > kListed) message += ", ...";
        auto in_order = [&](Family f) {
            return std::find(family.begin(), family.end(), f) != family.end();
        };
        if (offered("EXTERNAL") && !setup.client_certificate) {
            notes.emplace_back("EXTERNAL needs a client certificate, and none was presented");
        } else if (offered("EXTERNAL") && !in_order(Family::External)) {
            notes.emplace_back("the sasl setting leaves out EXTERNAL");
        } else if (!offered("EXTERNAL") && setup.client_certificate) {
            notes.emplace_back("the server does not offer EXTERNAL for our client certificate");
        }
        if (!password) notes.emplace_back("no password is set for SCRAM or PLAIN");
        if (password && offered("PLAIN") && !in_order(Family::Plain)) {
            notes.emplace_back("the sasl setting leaves out PLAIN");
        }
        for (const auto& note : notes) message += "; " + note;
        message += "; we support EXTERNAL (with a client certificate), SCRAM-SHA-512, "
                   "SCRAM-SHA-256, SCRAM-SHA-1 (and -PLUS with channel binding) and PLAIN "
                   "over TLS";
    }
    return make_error("no-mechanism", std::move(message));
}

std::string offer_hash(ScramHash hash, const Offer& offer) {
    // XEP-0474 §5.1, with "i;octet" ordering (RFC 4790 §9.3): std::string compares as
    // unsigned bytes.
    auto joined = [](std::vector<std::string> items) {
        std::sort(items.begin(), items.end());
        std::string out;
        for (std::size_t k = 0; k < items.size(); ++k) {
            if (k > 0) out.push_back('\x1e');
            out += items[k];
        }
        return out;
    };
    std::string text = joined(offer.mechanisms);
    if (offer.channel_bindings) {
        text.push_back('\x1f');
        text += joined(*offer.channel_bindings);
    }
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(text.data(), text.size(), out, &length, hash_info(hash).md, nullptr) != 1) {
        return {};
    }
    return base64_encode({reinterpret_cast<const char*>(out), length});
}

Result<std::string> saslprep(std::string_view text) { return prepare(text, "the text"); }

std::unique_ptr<Mechanism> make_ht(std::string name, std::string authcid, std::string token, std::string cb_data) {
    return std::make_unique<Ht>(std::move(name), std::move(authcid), std::move(token), std::move(cb_data));
}

std::optional<HtChoice> ht_for(std::string_view mechanism, const TlsChannel& channel, ChannelBindingPolicy policy) {
    for (auto [name, type] : kHtMechanisms) {
        if (name != mechanism) continue;
        if (type.empty()) {
            if (policy == ChannelBindingPolicy::Required) return std::nullopt;
            return HtChoice{std::string(name), {}, {}};
        }
        auto data = binding_data(channel, type);
        if (data.empty()) return std::nullopt;
        return HtChoice{std::string(name), std::string(type), std::string(data)};
    }
    return std::nullopt;
}

std::optional<HtChoice> choose_ht(const std::vector<std::string>& offered, const TlsChannel& channel,
                                  ChannelBindingPolicy policy) {
    for (auto [name, type] : kHtMechanisms) {
        if (!contains(offered, name)) continue;
        if (auto choice = ht_for(name, channel, policy)) return choice;
    }
    return std::nullopt;
}

}  // namespace xmpp::sasl
