// SCRAM client (RFC 5802, RFC 7677), with channel binding (§6, XEP-0440) and the downgrade
// protection of XEP-0474. See sasl.hpp. Every error is a value; no message ever carries a
// password, a proof or channel-binding data.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <utility>

#include "protocol/base/base64.hpp"
#include "protocol/sasl.hpp"
#include "protocol/sasl_detail.hpp"

namespace xmpp::sasl {
namespace {

using namespace detail;

// RFC 5802 §5.1 and RFC 7677 §4: at least 4096 iterations; fewer make a captured exchange
// cheap to brute-force.
constexpr std::uint64_t kMinIterations = 4096;
// A server that asks for more iterations than this could pin the loop thread for many
// seconds per attempt (about a second at this bound with SHA-512); 1,000,000 is far above
// what deployed servers use (4096..100,000).
constexpr std::uint64_t kMaxIterations = 1'000'000;
constexpr std::size_t kNonceBytes = 24;

// RFC 5802 §7: printable = %x21-2B / %x2D-7E (visible ASCII except ',').
bool is_printable_nonce(std::string_view nonce) {
    if (nonce.empty()) return false;
    for (unsigned char c : nonce) {
        if (c < 0x21 || c > 0x7e || c == ',') return false;
    }
    return true;
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

private:
    // What a server-first-message says (RFC 5802 §5.1), once checked.
    struct ServerFirst {
        std::string_view nonce;  // the client's nonce and the server's part
        std::string salt;
        std::uint64_t iterations = 0;
        std::optional<std::string_view> signed_hash;  // XEP-0474 h=, if any
    };

public:
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

        auto first = parse_server_first(challenge);
        if (!first) return first.error();
        if (auto st = check_offer(first.value().signed_hash); !st) return st.error();
        // Checked after the offer, so that a fuzzer without our random nonce reaches the above.
        if (first.value().nonce.size() <= client_nonce_.size() ||
            first.value().nonce.substr(0, client_nonce_.size()) != client_nonce_) {
            return fail("scram-bad-nonce",
                        "the server nonce does not extend the client nonce");
        }

        return prove(challenge, first.value());
    }

private:
    // RFC 5802 §7: the server-first-message, checked (its nonce is checked against ours
    // by the caller, after the offer).
    Result<ServerFirst> parse_server_first(std::string_view challenge) {
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

        // XEP-0474 §5.2: the server's hash of what it offered (h=), at most once.
        std::optional<std::string_view> signed_hash;
        for (std::size_t k = 3; k < parts.size(); ++k) {
            if (parts[k][0] != 'h') continue;
            if (signed_hash) {
                return fail("scram-bad-challenge",
                            "the server-first-message has more than one h= attribute");
            }
            signed_hash = parts[k].substr(2);
        }
        return ServerFirst{nonce, std::move(salt).value(), iterations, signed_hash};
    }

    // XEP-0474 §5.2: the server's signed hash of its offer against the offer we saw.
    Status check_offer(const std::optional<std::string_view>& signed_hash) {
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

        return Ok{};
    }

    // RFC 5802 §3, §7: the client-final-message, with its proof (the server's signature
    // kept for finish()).
    Result<std::string> prove(std::string_view challenge, const ServerFirst& first) {
        std::string_view nonce = first.nonce;
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
        const std::string& salt_bytes = first.salt;
        bool derived = pw.size() <= INT_MAX && salt_bytes.size() <= INT_MAX &&
                       PKCS5_PBKDF2_HMAC(
                           pw.data(), static_cast<int>(pw.size()),
                           reinterpret_cast<const unsigned char*>(salt_bytes.data()),
                           static_cast<int>(salt_bytes.size()), static_cast<int>(first.iterations),
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

public:
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

}  // namespace

std::unique_ptr<Mechanism> make_scram(ScramHash hash, Credentials credentials,
                                      std::string client_nonce, ScramOptions options) {
    return std::make_unique<Scram>(hash, std::move(credentials), std::move(client_nonce),
                                   std::move(options));
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

}  // namespace xmpp::sasl
