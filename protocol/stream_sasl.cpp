// The SASL login of ClientStream (RFC 6120 §6): the mechanism chosen from the offer, its
// steps, and what a failure means for the next attempt. SASL2 (XEP-0388) is in
// stream_sasl2.cpp; both share the mechanism choice (sasl.hpp).
#include "protocol/base/base64.hpp"
#include "protocol/stream.hpp"
#include "protocol/stream_detail.hpp"

namespace xmpp {
using detail::condition_and_text;
using detail::describe;

// Chooses a mechanism from the family at `from` of the order on, and sends <auth/> with its
// initial response (§6.4.2). An error leaves the stream as it was.
Status ClientStream::authenticate(std::size_t from) {
    if (sasl2_used_ && from == 0 && options_.fast_token) {
        if (authenticate_fast()) return Ok{};
    }
    sasl::Setup setup{{options_.jid.local(), options_.password, {}},
                      tls_active_,
                      options_.client_certificate,
                      options_.sasl_order,
                      options_.channel_binding,
                      tls_channel_};
    auto chosen = sasl::choose(sasl_offer_, setup, from);
    if (!chosen) return chosen.error();
    sasl::Choice& choice = chosen.value();
    auto initial = choice.mechanism->initial_response();
    if (!initial) return initial.error();
    mechanism_ = std::move(choice.mechanism);
    mechanism_name_ = std::string(mechanism_->name());
    mechanism_description_ = std::move(choice.description);
    sasl_position_ = choice.position;
    failure_hint_ = std::move(choice.failure_hint);
    phase_ = Phase::Authenticating;
    if (sasl2_used_) {
        send_authenticate2(initial.value(), false);
        return Ok{};
    }
    // §6.4.2: an empty initial response is sent as "=".
    std::string payload = initial.value().empty() ? "=" : base64_encode(initial.value());
    write("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + mechanism_name_ + "'>" + payload +
              "</auth>",
          "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + mechanism_name_ + "'>[redacted]</auth>");
    return Ok{};
}

void ClientStream::abort_sasl(const Error& error) {
    // §6.4.4 would let us abort; a server that fails our checks gets no second chance.
    write("</stream:stream>");
    if (error.code == "downgrade")  // XEP-0474: someone rewrote the offer; no retry
        finish(Closed::Kind::Fatal, error.message);
    else
        finish(Closed::Kind::AuthFailed, mechanism_name_ + ": " + error.message);
}

void ClientStream::handle_sasl(pugi::xml_node element) {
    std::string_view name = local_name(element);
    if (namespace_of(element) != ns_sasl) {
        stream_error("not-authorized", "a stanza during authentication");
        return;
    }
    auto abort_with = [this](const Error& error) { abort_sasl(error); };
    if (name == "failure") {
        auto ct = condition_and_text(element, ns_sasl);
        std::string reason = mechanism_name_ + ": " + describe(ct);
        if (mechanism_name_ == "EXTERNAL" && external_failure_.empty()) {
            // §6.4.5: another mechanism may follow a failure on the same stream. A refused
            // certificate says nothing about the password, so the next family in the order
            // gets its turn; after any other failure, trying a weaker one would be a downgrade.
            if (authenticate(sasl_position_ + 1)) {
                external_failure_ = describe(ct);
                return;
            }
        }
        bool temporary = ct.first == "temporary-auth-failure" || ct.first == "aborted";
        if (!temporary && !failure_hint_.empty()) reason += " (" + failure_hint_ + ")";
        // §6.5.11: temporary-auth-failure is worth retrying; the others are not.
        write("</stream:stream>");
        finish(temporary ? Closed::Kind::Error : Closed::Kind::AuthFailed, reason);
        return;
    }
    std::string_view text = element.child_value();
    auto data = base64_decode(text == "=" ? std::string_view{} : text);
    if (!data) {
        abort_with(make_error("bad-base64", "the server sent bad base64"));
        return;
    }
    if (name == "challenge") {
        auto response = mechanism_->respond(data.value());
        if (!response) {
            abort_with(response.error());
            return;
        }
        write("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" +
                  (response.value().empty() ? std::string("=") : base64_encode(response.value())) +
                  "</response>",
              "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>[redacted]</response>");
    } else if (name == "success") {
        if (auto done = mechanism_->finish(data.value()); !done) {
            abort_with(done.error());
            return;
        }
        authenticated_ = true;  // §6.4.6: restart the stream
        framer_.reset();
        open_stream();
    } else {
        stream_error("unsupported-stanza-type", "unexpected <" + std::string(name) + "/> during SASL");
    }
}

}  // namespace xmpp
