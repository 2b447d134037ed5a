// The XEP-0388 (SASL2) login of ClientStream, with what it negotiates inline: XEP-0386 Bind2
// (resource, carbons, XEP-0198 enable), XEP-0198 resumption and XEP-0484 FAST tokens. The
// legacy login (RFC 6120 §6-§7) is in stream_sasl.cpp and stream_sm.cpp; both share the
// mechanism choice (sasl.hpp).
//
// One round trip when everything is offered: <authenticate/> carries the SASL initial
// response and the requests; <success/> carries the server's proof, the bound JID, the SM
// state and a token; the <features/> that follow it (§"Success": no stream restart) end the
// negotiation. What is not offered inline is done the legacy way after those features.
#include <algorithm>
#include <cctype>

#include "protocol/base/base64.hpp"
#include "protocol/im.hpp"
#include "protocol/stream.hpp"
#include "protocol/stream_detail.hpp"

namespace xmpp {
using detail::condition_and_text;
using detail::describe;
using detail::parse_h;

namespace {

std::string_view text_of(pugi::xml_node parent, std::string_view ns, std::string_view name) {
    return child(parent, ns, name).child_value();
}

// XEP-0388 §"SASL Data Encoding": base64 that SHOULD NOT, but may (the XEP's own examples
// do), be wrapped in whitespace.
Result<std::string> decode_data(std::string_view text) {
    std::string compact;
    for (char c : text)
        if (!std::isspace(static_cast<unsigned char>(c))) compact.push_back(c);
    return base64_decode(compact);
}

// The SASL condition of a SASL2 <failure/> (§"Failure": one from RFC 6120 §6.5, which some
// servers put in the SASL2 namespace), and its <text/>.
std::pair<std::string, std::string> sasl2_condition(pugi::xml_node failure) {
    auto ct = condition_and_text(failure, ns_sasl);
    if (ct.first == "undefined-condition") {
        for (auto c : failure.children())
            if (c.type() == pugi::node_element && namespace_of(c) == ns_sasl2 && local_name(c) != "text") {
                ct.first = std::string(local_name(c));
                break;
            }
    }
    ct.second = text_of(failure, ns_sasl2, "text");
    return ct;
}

}  // namespace

void ClientStream::read_sasl2_offer(pugi::xml_node authentication) {
    sasl2_.offered = true;
    for (auto m : authentication.children())
        if (is(m, ns_sasl2, "mechanism")) sasl_offer_.mechanisms.emplace_back(m.child_value());
    auto inline_features = child(authentication, ns_sasl2, "inline");
    if (auto bind = child(inline_features, ns_bind2, "bind")) {  // XEP-0386 §"Discovering support"
        sasl2_.bind2 = true;
        for (auto f : child(bind, ns_bind2, "inline").children())
            if (is(f, ns_bind2, "feature")) sasl2_.bind2_inline.insert(f.attribute("var").value());
    }
    sasl2_.sm = static_cast<bool>(child(inline_features, ns_sm, "sm"));
    for (auto m : child(inline_features, ns_fast, "fast").children())  // XEP-0484 §"Server advertises"
        if (is(m, ns_fast, "mechanism")) sasl2_.fast.emplace_back(m.child_value());
}

// XEP-0484 §"Client authenticates using FAST": the token, with the mechanism it was issued
// for, when the server offers that mechanism now and this channel gives its binding data.
bool ClientStream::authenticate_fast() {
    const sasl::FastToken& token = *options_.fast_token;
    if (options_.user_agent_id.empty() ||
        std::find(sasl2_.fast.begin(), sasl2_.fast.end(), token.mechanism) == sasl2_.fast.end())
        return false;
    auto ht = sasl::ht_for(token.mechanism, tls_channel_, options_.channel_binding);
    if (!ht) return false;
    auto mechanism = sasl::make_ht(ht->mechanism, options_.jid.local(), token.secret, ht->data);
    auto initial = mechanism->initial_response();
    if (!initial) return false;
    mechanism_ = std::move(mechanism);
    mechanism_name_ = ht->mechanism;
    mechanism_description_ = ht->binding.empty() ? "FAST" : "FAST, " + ht->binding;
    sasl_position_ = 0;
    failure_hint_.clear();
    fast_used_ = true;
    phase_ = Phase::Authenticating;
    send_authenticate2(initial.value(), true);
    return true;
}

// XEP-0388 §"Initiation" with the inline requests of XEP-0198, XEP-0386 and XEP-0484.
void ClientStream::send_authenticate2(std::string_view initial, bool fast) {
    std::string head = "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='" + xml_escape(mechanism_name_) + "'>";
    std::string rest = "<user-agent";
    if (!options_.user_agent_id.empty()) rest += " id='" + xml_escape(options_.user_agent_id) + "'";
    rest += "><software>" + xml_escape(options_.software_name) + "</software></user-agent>";
    // XEP-0198 §5 inside SASL2 (XEP-0388 §"Initiation"). A session to resume that the server
    // cannot resume inline is resumed after <success/> the legacy way, so no Bind2 then: a
    // new binding would end it.
    resume_inline_ = options_.stream_management && options_.resume && sasl2_.sm;
    if (resume_inline_)
        rest += "<resume xmlns='urn:xmpp:sm:3' h='" + std::to_string(options_.resume->queue.inbound()) +
                "' previd='" + xml_escape(options_.resume->id) + "'/>";
    bind2_requested_ = sasl2_.bind2 && (!options_.resume || resume_inline_);
    carbons_inline_ = sm_inline_enable_ = false;
    if (bind2_requested_) {
        // XEP-0386 §"Performing the bind": the tag prefixes the resource the server makes.
        rest += "<bind xmlns='urn:xmpp:bind:0'><tag>" + xml_escape(options_.resource) + "</tag>";
        carbons_inline_ = options_.carbons && sasl2_.bind2_inline.contains(std::string(ns_carbons));
        if (carbons_inline_) rest += "<enable xmlns='urn:xmpp:carbons:2'/>";
        sm_inline_enable_ = options_.stream_management && sasl2_.bind2_inline.contains(std::string(ns_sm));
        if (sm_inline_enable_) rest += "<enable xmlns='urn:xmpp:sm:3' resume='true'/>";
        rest += "</bind>";
    }
    token_requested_.clear();
    if (fast) {
        rest += "<fast xmlns='urn:xmpp:fast:0'/>";
    } else if (!options_.user_agent_id.empty() && !sasl2_.fast.empty()) {
        // XEP-0484 §"Client performs initial authentication": a token for the next login.
        if (auto ht = sasl::choose_ht(sasl2_.fast, tls_channel_, options_.channel_binding)) {
            token_requested_ = ht->mechanism;
            rest += "<request-token xmlns='urn:xmpp:fast:0' mechanism='" + token_requested_ + "'/>";
        }
    }
    // §"SASL Data Encoding": an empty initial response is an empty element, never omitted
    // (every mechanism we use has one).
    write(head + "<initial-response>" + base64_encode(initial) + "</initial-response>" + rest +
              "</authenticate>",
          head + "<initial-response>[redacted]</initial-response>" + rest + "</authenticate>");
}

void ClientStream::handle_sasl2(pugi::xml_node element) {
    std::string_view name = local_name(element);
    if (namespace_of(element) != ns_sasl2) {
        stream_error("not-authorized", "a stanza during authentication");  // §"During Authentication"
        return;
    }
    if (name == "failure") {
        sasl2_failure(element);
        return;
    }
    if (name != "challenge" && name != "success" && name != "continue") {
        stream_error("unsupported-stanza-type", "unexpected <" + std::string(name) + "/> during SASL2");
        return;
    }
    auto data = decode_data(name == "challenge" ? std::string_view(element.child_value())
                                                : text_of(element, ns_sasl2, "additional-data"));
    if (!data) {
        abort_sasl(make_error("bad-base64", "the server sent bad base64"));
        return;
    }
    if (name == "challenge") {  // §"Challenges and Responses"
        auto response = mechanism_->respond(data.value());
        if (!response) {
            abort_sasl(response.error());
            return;
        }
        write("<response xmlns='urn:xmpp:sasl:2'>" + base64_encode(response.value()) + "</response>",
              "<response xmlns='urn:xmpp:sasl:2'>[redacted]</response>");
        return;
    }
    // SCRAM's server signature and FAST's proof are checked before anything else is believed.
    if (auto done = mechanism_->finish(data.value()); !done) {
        abort_sasl(done.error());
        return;
    }
    if (name == "continue") {
        // §"Continue": the password was right, but the server wants more (a second factor, a
        // new password). We can do none of those tasks, and cannot ask anyone.
        std::string tasks;
        for (auto t : child(element, ns_sasl2, "tasks").children())
            if (is(t, ns_sasl2, "task")) tasks += (tasks.empty() ? "" : ", ") + std::string(t.child_value());
        std::string text(text_of(element, ns_sasl2, "text"));
        write("<abort xmlns='urn:xmpp:sasl:2'/></stream:stream>");
        finish(Closed::Kind::AuthFailed, "the server asks for another step after " + mechanism_name_ + " (" +
                                             (tasks.empty() ? std::string("no task named") : tasks) +
                                             (text.empty() ? "" : ": " + text) +
                                             "), which stanzad cannot do; log in with another client to "
                                             "finish it, or turn it off for this account");
        return;
    }
    sasl2_success(element);
}

void ClientStream::sasl2_success(pugi::xml_node success) {
    authenticated_ = true;
    std::string_view identifier = text_of(success, ns_sasl2, "authorization-identifier");
    auto jid = Jid::parse(identifier);
    if (!jid) {
        stream_error("undefined-condition",
                     "the server's authorization identifier '" + std::string(identifier.substr(0, 100)) + "' is not a JID");
        return;
    }
    if (jid.value().bare() != options_.jid.bare()) {  // as for legacy binding: XEP-0178 §3
        stream_error("policy-violation",
                     "the server logged us in as " + jid.value().bare() + ", not " + options_.jid.bare() +
                         " (does the client certificate name another JID?)",
                     Closed::Kind::Fatal);
        return;
    }
    // XEP-0484 §"Server provides token" and §"Server initiates token rotation".
    if (auto token = child(success, ns_fast, "token"); token && *token.attribute("token").value()) {
        std::string mechanism = fast_used_ ? mechanism_name_ : token_requested_;
        if (!mechanism.empty())
            events_.emplace_back(FastTokenChanged{
                sasl::FastToken{mechanism, token.attribute("token").value(), token.attribute("expiry").value()}, {}});
    }
    if (resume_inline_) {
        if (auto r = child(success, ns_sm, "resumed")) {
            auto h = parse_h(r.attribute("h").value());
            if (!h) {
                stream_error("invalid-xml", "a <resumed/> without a valid h");
                return;
            }
            restored_pending_ = take_resumed(*h);
            if (state_ == StreamState::Closed) return;
            resumed_pending_ = true;
            phase_ = Phase::AwaitSasl2Features;
            return;
        }
        if (auto failed = child(success, ns_sm, "failed")) {
            resume_failed(failed);
        } else {
            resume_failure_ = "the server did not answer the resumption";
            options_.resume.reset();
        }
    }
    auto bound = child(success, ns_bind2, "bound");
    if (bind2_requested_ && bound) {
        if (jid.value().is_bare()) {
            stream_error("undefined-condition", "Bind2 bound no resource (a bare authorization identifier)");
            return;
        }
        bound_ = jid.value();
        bind2_bound_ = true;
        carbons_enabled_ = carbons_inline_;  // XEP-0386: "MUST be enabled", no answer needed
        if (sm_inline_enable_) {
            sm_ = SmQueue();  // XEP-0198 §3: counting starts with the enable
            if (auto e = child(bound, ns_sm, "enabled")) enabled(e);
        }
        phase_ = Phase::AwaitSasl2Features;
        return;
    }
    if (bind2_requested_) {
        if (auto failed = child(success, ns_bind2, "failed")) {
            finish(Closed::Kind::Error,
                   "resource binding failed: " + describe(condition_and_text(failed.child("error"), ns_stanzas)));
            write("</stream:stream>");
            return;
        }
    }
    // No inline binding: §"Success" features follow without a restart, then the legacy
    // resume or bind (handle_features, authenticated).
    phase_ = Phase::AwaitFeatures;
}

void ClientStream::sasl2_failure(pugi::xml_node failure) {
    auto ct = sasl2_condition(failure);
    std::string reason = mechanism_name_ + ": " + describe(ct);
    if (fast_used_) {
        // XEP-0484 §"Client responsibilities": discard the token, log in another way.
        fast_used_ = false;
        fast_refused_ = describe(ct);
        options_.fast_token.reset();
        events_.emplace_back(FastTokenChanged{std::nullopt, fast_refused_});
        if (authenticate(0)) return;
    } else if (mechanism_name_ == "EXTERNAL" && external_failure_.empty()) {
        // As in handle_sasl: a refused certificate says nothing about the password.
        if (authenticate(sasl_position_ + 1)) {
            external_failure_ = describe(ct);
            return;
        }
    }
    write("</stream:stream>");
    if (!fast_refused_.empty()) {
        // Some servers (Prosody's mod_sasl2 of 2023) refuse any second mechanism on a stream;
        // the next connection starts without the token.
        finish(Closed::Kind::Error, reason + " after the FAST token was refused (" + fast_refused_ +
                                        "); trying again without the token");
        return;
    }
    bool temporary = ct.first == "temporary-auth-failure" || ct.first == "aborted";
    if (!temporary && !failure_hint_.empty()) reason += " (" + failure_hint_ + ")";
    finish(temporary ? Closed::Kind::Error : Closed::Kind::AuthFailed, reason);
}

// The features after <success/> when Bind2 bound us or the session was resumed inline (null
// when a stanza came first). What was not done inline is done now: XEP-0198 enable.
void ClientStream::sasl2_features(pugi::xml_node features, TimePoint now) {
    if (features) {
        roster_versioning_ = child(features, detail::ns_rosterver, "ver");
        pre_approval_ = child(features, detail::ns_pre_approval, "sub");
    }
    if (resumed_pending_) {
        resumed_pending_ = false;
        go_online(now, true, restored_pending_);
        if (sm_.unacked_count() > 0) request_ack(now);
        return;
    }
    if (!sm_enabled_ && !sm_inline_enable_ && options_.stream_management && child(features, ns_sm, "sm")) {
        sm_offered_ = true;
        sm_ = SmQueue();
        write("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
        phase_ = Phase::Enabling;
        return;
    }
    go_online(now, false);
}

}  // namespace xmpp
