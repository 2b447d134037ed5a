// Client-side SASL mechanisms: SCRAM (RFC 5802, RFC 7677) and PLAIN (RFC 4616).
// See sasl.hpp. Every error is a value; no message ever carries a password, a key or a proof.
#include "protocol/sasl.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <idn-free.h>
#include <stringprep.h>

#include <array>
#include <climits>
#include <cstdint>
#include <utility>

namespace xmpp::sasl {
namespace {

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// A server that asks for more iterations than this could pin the loop thread for many
// seconds per attempt; 1,000,000 is far above what deployed servers use (4096..100,000).
constexpr std::uint32_t kMaxIterations = 1'000'000;
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
    const EVP_MD* md;
};

Hash hash_info(ScramHash hash) {
    switch (hash) {
        case ScramHash::Sha1: return {"SCRAM-SHA-1", EVP_sha1()};
        case ScramHash::Sha256: return {"SCRAM-SHA-256", EVP_sha256()};
        case ScramHash::Sha512: return {"SCRAM-SHA-512", EVP_sha512()};
    }
    return {"SCRAM-SHA-256", EVP_sha256()};
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

// SCRAM client (RFC 5802 §3, §5). One exchange: initial_response, one respond, finish.
// Holds the password only until the proof is computed, then keeps just the expected
// ServerSignature; everything secret is wiped on the way out.
class Scram final : public Mechanism {
public:
    Scram(ScramHash hash, Credentials credentials, std::string client_nonce)
        : hash_(hash_info(hash)),
          credentials_(std::move(credentials)),
          client_nonce_(std::move(client_nonce)) {}

    ~Scram() override { forget_secrets(); }

    std::string_view name() const override { return hash_.mechanism; }

    Result<std::string> initial_response() override {
        if (state_ != State::Initial) {
            return fail("scram-out-of-order", "the SCRAM exchange has already started");
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

        // RFC 5802 §7 gs2-header: "n" because we neither support nor claim channel binding.
        gs2_header_ = credentials_.authzid.empty()
                          ? std::string("n,,")
                          : "n,a=" + escape_saslname(credentials_.authzid) + ",";
        client_first_bare_ = "n=" + escape_saslname(username.value()) + ",r=" + client_nonce_;
        state_ = State::SentFirst;
        return gs2_header_ + client_first_bare_;
    }

    Result<std::string> respond(std::string_view challenge) override {
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

        // §5.1: the server's nonce extends ours; anything else may be a replay.
        std::string_view nonce = parts[0].substr(2);
        if (!is_printable_nonce(nonce)) {
            return fail("scram-bad-nonce", "the server nonce contains invalid characters");
        }
        if (nonce.size() <= client_nonce_.size() ||
            nonce.substr(0, client_nonce_.size()) != client_nonce_) {
            return fail("scram-bad-nonce",
                        "the server nonce does not extend the client nonce");
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
                return fail("scram-bad-challenge",
                            "the iteration count (i=" + sanitize(count_text, 20) +
                                ") exceeds our limit of " + std::to_string(kMaxIterations));
            }
        }

        auto password = prepare(credentials_.password, "the password");
        wipe(credentials_.password);
        if (!password) return fail(password.error());

        // §7: channel-binding = "c=" base64(gs2-header) when no channel binding is used.
        std::string without_proof =
            "c=" + base64_encode(gs2_header_) + ",r=" + std::string(nonce);
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
                        "the server rejected the SCRAM exchange: " +
                            sanitize(first.substr(2)));
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

    Hash hash_;
    Credentials credentials_;
    std::string client_nonce_;
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

}  // namespace

std::unique_ptr<Mechanism> make_scram(ScramHash hash, Credentials credentials,
                                      std::string client_nonce) {
    return std::make_unique<Scram>(hash, std::move(credentials), std::move(client_nonce));
}

std::unique_ptr<Mechanism> make_plain(Credentials credentials) {
    return std::make_unique<Plain>(std::move(credentials));
}

Result<std::unique_ptr<Mechanism>> choose(const std::vector<std::string>& offered,
                                          const Credentials& credentials, bool tls_active) {
    auto has = [&](std::string_view name) {
        for (const auto& o : offered) {
            if (o == name) return true;
        }
        return false;
    };
    // RFC 7677 §4 and RFC 6120 §6.3.3: the client picks; strongest hash first.
    static constexpr std::array<std::pair<std::string_view, ScramHash>, 3> kScram{{
        {"SCRAM-SHA-512", ScramHash::Sha512},
        {"SCRAM-SHA-256", ScramHash::Sha256},
        {"SCRAM-SHA-1", ScramHash::Sha1},
    }};
    for (const auto& [mechanism, hash] : kScram) {
        if (has(mechanism)) return make_scram(hash, credentials);
    }
    // RFC 4616 §6: PLAIN sends the password itself, so only over a confidential channel.
    if (has("PLAIN") && tls_active) return make_plain(credentials);

    std::string message = "no acceptable SASL mechanism: ";
    if (offered.empty()) {
        message += "the server offered none";
    } else {
        message += "the server offered ";
        constexpr std::size_t kListed = 16;
        for (std::size_t k = 0; k < offered.size() && k < kListed; ++k) {
            if (k > 0) message += ", ";
            message += sanitize(offered[k], 40);
        }
        if (offered.size() > kListed) message += ", ...";
        bool plus = false;
        for (const auto& o : offered) {
            if (o.size() > 5 && o.compare(o.size() - 5, 5, "-PLUS") == 0) plus = true;
        }
        if (has("PLAIN")) message += "; PLAIN is refused outside TLS";
        if (plus) message += "; channel binding (-PLUS) is not supported yet";
        message += "; we support SCRAM-SHA-512, SCRAM-SHA-256, SCRAM-SHA-1 and PLAIN over TLS";
    }
    return make_error("no-mechanism", std::move(message));
}

Result<std::string> saslprep(std::string_view text) { return prepare(text, "the text"); }

// RFC 4648 §4.
std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t k = 0;
    auto at = [&](std::size_t i) {
        return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i]));
    };
    for (; k + 3 <= bytes.size(); k += 3) {
        std::uint32_t v = at(k) << 16 | at(k + 1) << 8 | at(k + 2);
        out.push_back(kBase64Alphabet[v >> 18 & 63]);
        out.push_back(kBase64Alphabet[v >> 12 & 63]);
        out.push_back(kBase64Alphabet[v >> 6 & 63]);
        out.push_back(kBase64Alphabet[v & 63]);
    }
    std::size_t rest = bytes.size() - k;
    if (rest == 1) {
        std::uint32_t v = at(k) << 16;
        out.push_back(kBase64Alphabet[v >> 18 & 63]);
        out.push_back(kBase64Alphabet[v >> 12 & 63]);
        out += "==";
    } else if (rest == 2) {
        std::uint32_t v = at(k) << 16 | at(k + 1) << 8;
        out.push_back(kBase64Alphabet[v >> 18 & 63]);
        out.push_back(kBase64Alphabet[v >> 12 & 63]);
        out.push_back(kBase64Alphabet[v >> 6 & 63]);
        out.push_back('=');
    }
    return out;
}

// RFC 4648 §4, strictly: no whitespace, padding only at the end, and (§3.5) zero pad bits,
// so that every byte string has exactly one accepted encoding.
Result<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) {
        return make_error("bad-base64", "base64 length is not a multiple of 4");
    }
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t k = 0; k < text.size(); k += 4) {
        bool last = k + 4 == text.size();
        std::size_t padding = 0;
        if (last && text[k + 3] == '=') padding = text[k + 2] == '=' ? 2 : 1;
        std::uint32_t v = 0;
        for (std::size_t j = 0; j < 4; ++j) {
            if (j >= 4 - padding) {
                v <<= 6;
                continue;
            }
            int d = value(text[k + j]);
            if (d < 0) {
                return make_error("bad-base64",
                                  text[k + j] == '='
                                      ? "base64 padding in the middle of the data"
                                      : "invalid character in base64 data");
            }
            v = v << 6 | static_cast<std::uint32_t>(d);
        }
        if ((padding == 1 && (v & 0xff) != 0) || (padding == 2 && (v & 0xffff) != 0)) {
            return make_error("bad-base64", "base64 padding bits are not zero");
        }
        out.push_back(static_cast<char>(v >> 16 & 0xff));
        if (padding < 2) out.push_back(static_cast<char>(v >> 8 & 0xff));
        if (padding < 1) out.push_back(static_cast<char>(v & 0xff));
    }
    return out;
}

}  // namespace xmpp::sasl
