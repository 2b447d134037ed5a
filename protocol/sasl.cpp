// Client-side SASL: EXTERNAL (RFC 4422 App. A), PLAIN (RFC 4616), the HT-* tokens of FAST
// (XEP-0484), and the choice between them and SCRAM (sasl_scram.cpp). See sasl.hpp. Every
// error is a value; no message ever carries a password, a key, a token or channel-binding
// data.
#include "protocol/sasl.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <utility>

#include "protocol/sasl_detail.hpp"

namespace xmpp::sasl {
namespace {

using namespace detail;

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

// SCRAM-*-PLUS bound to the channel with `type`.
Choice bound_choice(const Offer& offer, const Setup& setup, ScramHash hash, std::string_view type,
                    ScramOptions options, std::size_t position) {
    options.binding.type = std::string(type);
    options.binding.data = std::string(binding_data(setup.channel, type));
    Choice choice{make_scram(hash, setup.credentials, {}, std::move(options)), {}, position, {}};
    choice.description = std::string(choice.mechanism->name()) + ", " + std::string(type);
    if (!offer.channel_bindings) {
        choice.failure_hint =
            "if the password is right, the server may not know " + std::string(type) +
            ": it did not say which channel-binding types it supports (XEP-0440); or "
            "the TLS channel differs on its side: someone between us may be relaying it";
        if (type == kExporter && !tls12_or_older(setup.channel.version)) {
            choice.failure_hint += "; servers that know only tls-unique (ejabberd "
                                   "before 23.10) cannot bind under TLS 1.3";
        }
    }
    return choice;
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
        if (auto type = pick_binding(offer, setup.channel, setup.channel_binding))
            return bound_choice(offer, setup, *plus, *type, std::move(options), position);
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
