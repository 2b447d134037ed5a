// Resource binding (RFC 6120 §7, with RFC 3921 session establishment) and stream
// management (XEP-0198) of ClientStream: enabling it, counting, acks, and resuming a
// session on a new stream, or handing it on for the next connection to resume.
#include "protocol/stream.hpp"
#include "protocol/stream_detail.hpp"

namespace xmpp {
using detail::condition_and_text;
using detail::describe;
using detail::parse_h;

void ClientStream::bind() {
    write("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" +
          xml_escape(options_.resource) + "</resource></bind></iq>");
    phase_ = Phase::Binding;
}

// The answers to our bind and session iqs (RFC 6120 §7, RFC 3921 §3); requests from the
// server are answered meanwhile, anything else waits for the session.
void ClientStream::handle_binding(pugi::xml_node iq, TimePoint now) {
    if (local_name(iq) != "iq" || namespace_of(iq) != ns_client) return;
    std::string_view type = iq.attribute("type").value();
    if (type == "get" || type == "set") {
        handle_iq_request(iq);
        return;
    }
    if (std::string_view(iq.attribute("id").value()) != "bind" &&
        std::string_view(iq.attribute("id").value()) != "session")
        return;
    if (type == "error") {
        auto ct = condition_and_text(iq.child("error"), ns_stanzas);
        finish(
            Closed::Kind::Error,
            (phase_ == Phase::Binding ? "resource binding failed: " : "session establishment failed: ") + describe(ct));
        return;
    }
    if (phase_ == Phase::Binding) {
        if (!take_bound_jid(iq)) return;
        if (session_required_) {
            phase_ = Phase::Session;
            write("<iq type='set' id='session'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
            return;
        }
    }
    if (sm_offered_) {
        // XEP-0198 §3: counting starts with <enable/>, on a fresh queue.
        sm_ = SmQueue();
        write("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
        phase_ = Phase::Enabling;
        return;
    }
    go_online(now, false);
}

// The JID of a bind result (RFC 6120 §7.6.1), kept as bound_; false when it is unusable
// and the stream is closed.
bool ClientStream::take_bound_jid(pugi::xml_node iq) {
    auto jid_text = child(child(iq, ns_bind, "bind"), ns_bind, "jid").child_value();
    auto jid = Jid::parse(jid_text);
    if (jid && !jid.value().is_bare() && jid.value().bare() != options_.jid.bare()) {
        // Authenticated as someone else (a client certificate naming another JID,
        // XEP-0178 §3): every retry would log that other account in again, and may
        // replace its own sessions. Final until the config changes.
        stream_error("policy-violation",
                     "the server logged us in as " + jid.value().bare() + ", not " + options_.jid.bare() +
                         " (does the client certificate name another JID?)",
                     Closed::Kind::Fatal);
        return false;
    }
    if (!jid || jid.value().is_bare()) {
        stream_error("undefined-condition", std::string("the server bound an unusable JID '") + jid_text + "'");
        return false;
    }
    bound_ = jid.value();
    return true;
}

void ClientStream::go_online(TimePoint now, bool resumed, bool restored) {
    phase_ = Phase::Online;
    state_ = StreamState::Online;
    negotiation_deadline_.reset();
    last_received_ = now;
    std::string mechanism = mechanism_description_;
    if (!external_failure_.empty()) mechanism += "; EXTERNAL refused: " + external_failure_;
    std::string setup = !sasl2_used_ ? "" : bind2_bound_ ? "SASL2 + Bind2" : "SASL2";
    events_.emplace_back(Online{bound_, std::move(mechanism), sm_enabled_, resumed, restored, resume_failure_,
                                roster_versioning_, pre_approval_, carbons_enabled_, std::move(setup)});
}

std::optional<SmCheckpoint> ClientStream::checkpoint() const {
    if (state_ != StreamState::Online || !sm_enabled_ || !sm_resumable_) return std::nullopt;
    return SmCheckpoint{sm_id_, sm_location_, bound_.full(), sm_.inbound()};
}

void ClientStream::handle_sm(pugi::xml_node element, TimePoint now) {
    std::string_view name = local_name(element);
    if (name == "r") {  // §4: answer at once
        if (sm_enabled_) write("<a xmlns='urn:xmpp:sm:3' h='" + std::to_string(sm_.inbound()) + "'/>");
        return;
    }
    auto h = parse_h(element.attribute("h").value());
    if (name == "a") {
        if (!sm_enabled_) return;
        if (!h) {
            stream_error("invalid-xml", "an <a/> without a valid h");
            return;
        }
        ack_deadline_.reset();
        sm_resume_unconfirmed_ = false;
        acked(*h);
        return;
    }
    if (phase_ == Phase::Resuming) {
        if (name == "resumed" && h) {
            bool restored = take_resumed(*h);
            if (state_ == StreamState::Closed) return;
            go_online(now, true, restored);
            sm_resume_unconfirmed_ = true;
            if (sm_.unacked_count() > 0) request_ack(now);
        } else if (name == "failed") {
            resume_failed(element);
            bind();
        } else {
            stream_error("invalid-xml", "unexpected <" + std::string(name) + "/> while resuming");
        }
        return;
    }
    if (phase_ == Phase::Enabling) {
        if (name == "enabled") enabled(element);
        go_online(now, false);  // <failed/>: online all the same, without acks
    }
}

bool ClientStream::take_resumed(std::uint32_t h) {
    SmSession previous = std::move(*options_.resume);
    options_.resume.reset();
    sm_id_ = previous.id;
    sm_location_ = previous.location;
    sm_max_ = previous.max;
    bound_ = previous.jid;
    sm_enabled_ = sm_resumable_ = true;
    if (previous.restored) {
        // Which of our stanzas h covers is unknown after a restart: count on from h;
        // the owner resends its unacknowledged messages, which are new stanzas here.
        sm_ = SmQueue(h);
        sm_.set_inbound(previous.queue.inbound());
        return true;
    }
    sm_ = std::move(previous.queue);
    acked(h);
    if (state_ == StreamState::Closed) return false;
    // §5: what the server did not get goes again, under the same counts.
    for (const auto& e : sm_.unacked()) write(e.xml);
    return false;
}

void ClientStream::resume_failed(pugi::xml_node failed) {
    resume_failure_ = describe(condition_and_text(failed, ns_stanzas));
    // §5: the h of <failed/>, when present, still tells what arrived.
    if (auto h = parse_h(failed.attribute("h").value())) {
        if (auto done = options_.resume->queue.ack(*h)) {
            std::vector<std::string> tags;
            for (auto& e : done.value())
                if (!e.tag.empty()) tags.push_back(std::move(e.tag));
            if (!tags.empty()) events_.emplace_back(Acked{std::move(tags)});
        }
    }
    options_.resume.reset();
}

void ClientStream::enabled(pugi::xml_node element) {
    sm_enabled_ = true;
    sm_id_ = element.attribute("id").value();
    std::string_view resume = element.attribute("resume").value();
    sm_resumable_ = !sm_id_.empty() && (resume == "true" || resume == "1");
    sm_location_ = element.attribute("location").value();
    sm_max_ = parse_h(element.attribute("max").value()).value_or(0);
}

void ClientStream::acked(std::uint32_t h) {
    auto done = sm_.ack(h);
    if (!done) {
        // §4: acknowledging more than we sent is a stream error, not a crash.
        write("<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
              "<handled-count-too-high xmlns='urn:xmpp:sm:3' h='" + std::to_string(h) + "' send-count='" +
              std::to_string(sm_.head()) + "'/></stream:error></stream:stream>");
        sm_resumable_ = false;
        finish(Closed::Kind::Error, "stream management: " + done.error().message);
        return;
    }
    std::vector<std::string> tags;
    for (auto& e : done.value())
        if (!e.tag.empty()) tags.push_back(std::move(e.tag));
    if (!tags.empty()) events_.emplace_back(Acked{std::move(tags)});
}

void ClientStream::request_ack(TimePoint now) {
    write("<r xmlns='urn:xmpp:sm:3'/>");
    sm_requested_at_ = sm_.head();
    sm_bytes_since_request_ = 0;
    ack_request_due_.reset();
    if (!ack_deadline_) ack_deadline_ = now + options_.ping_timeout;
}

std::optional<SmSession> ClientStream::take_resumable() {
    if (state_ != StreamState::Closed) return std::nullopt;
    // A connection that died before the server answered <resume/> hands the session on.
    if (options_.resume) return std::exchange(options_.resume, std::nullopt);
    if (!sm_enabled_ || !sm_resumable_) return std::nullopt;
    sm_resumable_ = false;
    return SmSession{sm_id_, sm_location_, bound_, std::move(sm_), sm_max_, false};
}

}  // namespace xmpp
