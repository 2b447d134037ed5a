// The stanzas of ClientStream's online stream: those handed up, the iq requests the stream
// answers itself (ping, disco#info with our caps, version; service-unavailable for the
// rest), what we send, and how a dead link is found (keepalive pings, XEP-0198 ack
// requests, acknowledging pings without XEP-0198) from the deadlines.
#include <algorithm>
#include <sstream>
#include <vector>

#include "protocol/im.hpp"
#include "protocol/stream.hpp"

namespace xmpp {
namespace {

// The identity we announce in disco#info (XEP-0030 §3.1), hashed into our caps.
constexpr std::string_view identity_category = "client";
constexpr std::string_view identity_type = "pc";

}  // namespace

void ClientStream::on_iq(std::string_view ns, std::string_view element, IqHandler handler) {
    iq_handlers_[{std::string(ns), std::string(element)}] = std::move(handler);
    features_.insert(std::string(ns));
}

void ClientStream::add_feature(std::string_view var) { features_.insert(std::string(var)); }

std::string ClientStream::caps_ver() const {
    // XEP-0115 §5.1 over exactly what answer_disco_info() announces.
    return caps_verification(identity_category, identity_type, options_.software_name,
                             std::vector<std::string>(features_.begin(), features_.end()));
}

std::string ClientStream::caps_element() const { return make_caps(options_.caps_node, caps_ver()); }

IqAnswer ClientStream::answer_disco_info(pugi::xml_node payload) const {
    std::string_view node = payload.attribute("node").value();
    std::string query = "<query xmlns='http://jabber.org/protocol/disco#info'";
    if (!node.empty()) {
        // XEP-0115 §6.2: 'caps_node#ver' is answered like no node at all, the node echoed.
        // Any other node (XEP-0030 §3.2), an older ver included, is item-not-found.
        if (node != options_.caps_node + "#" + caps_ver()) return IqAnswer{"", "item-not-found", "cancel"};
        query += " node='" + xml_escape(node) + "'";
    }
    std::string out = query + "><identity category='" + std::string(identity_category) + "' type='" +
                      std::string(identity_type) + "' name='" + xml_escape(options_.software_name) + "'/>";
    for (const auto& f : features_) out += "<feature var='" + xml_escape(f) + "'/>";
    out += "</query>";
    return IqAnswer{std::move(out), "", ""};
}

// A stanza on the online stream: counted, answered when it is a request to us, consumed
// when it answers our keepalive ping, handed up otherwise.
void ClientStream::handle_online(Stanza stanza) {
    pugi::xml_node root = stanza.root();
    std::string_view name = local_name(root);
    if (namespace_of(root) != ns_client) return;  // top-level elements of extensions not enabled: ignore
    // XEP-0198 §4: h counts every stanza we handle; the <a/> that reports it leaves only
    // after the owner has taken (and stored) the events of this read.
    if (sm_enabled_ && (name == "message" || name == "presence" || name == "iq")) sm_.count_inbound();
    if (name == "iq") {
        std::string_view type = root.attribute("type").value();
        if (type == "get" || type == "set") {
            handle_iq_request(root);
            return;
        }
        if (!ping_id_.empty() && ping_id_ == root.attribute("id").value()) {
            ping_id_.clear();  // our keepalive: any answer, even an error, will do
            return;
        }
    }
    events_.emplace_back(StanzaReceived{std::move(stanza)});
}

void ClientStream::handle_iq_request(pugi::xml_node iq) {
    std::string id = iq.attribute("id").value();
    std::string from = iq.attribute("from").value();
    if (id.empty()) return;  // §8.2.3: an iq without id cannot be answered
    pugi::xml_node payload;
    int count = 0;
    for (auto c : iq.children())
        if (c.type() == pugi::node_element && ++count == 1) payload = c;
    std::string head = "<iq id='" + xml_escape(id) + "'" + (from.empty() ? "" : " to='" + xml_escape(from) + "'");
    IqAnswer answer;
    if (count != 1) {
        answer = IqAnswer{"", "bad-request", "modify"};  // §8.2.3: exactly one payload
    } else {
        auto it = iq_handlers_.find(std::pair{std::string(namespace_of(payload)), std::string(local_name(payload))});
        answer = it == iq_handlers_.end() ? IqAnswer{"", "service-unavailable", "cancel"}  // §8.4
                                          : it->second(iq, payload);
    }
    std::string reply = answer.error_condition.empty()
                            ? head + " type='result'>" + answer.payload + "</iq>"
                            : head + " type='error'><error type='" + answer.error_type + "'><" +
                                  answer.error_condition + " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>";
    write(reply);
    if (sm_enabled_) sm_.push(std::move(reply));
}

bool ClientStream::send(std::string_view xml, TimePoint now, std::string tag) {
    if (state_ != StreamState::Online) return false;
    write(xml);
    if (!sm_enabled_) {
        if (!options_.ping_acks) return true;
        ping_acks_.push(std::move(tag));
        // A burst gets its ping at once (at most one per ack_delay); a lone stanza shortly after.
        bool spaced = !last_ack_ping_ || now - *last_ack_ping_ >= options_.ack_delay;
        if (ping_acks_.since_ping() >= options_.ack_burst && spaced) send_ack_ping(now);
        else if (!ping_ack_due_) ping_ack_due_ = std::max(now + options_.ack_delay,
                                                          last_ack_ping_.value_or(now) + options_.ack_delay);
        return true;
    }
    sm_.push(std::string(xml), std::move(tag));
    sm_bytes_since_request_ += xml.size();
    // One <r/> per window of traffic, or shortly after a stanza no <r/> followed yet.
    if (sm_.head() - sm_requested_at_ >= options_.ack_window || sm_bytes_since_request_ >= options_.ack_window_bytes)
        request_ack(now);
    else if (!ack_request_due_)
        ack_request_due_ = now + options_.ack_delay;
    return true;
}

void ClientStream::send_ack_ping(TimePoint now) {
    // XEP-0199 §4.1, addressed to the server. Its answer comes after the server handled
    // everything we sent before it (RFC 6120 §10.1: in order), so it acknowledges them.
    std::string id = "pa" + std::to_string(next_id_++);
    if (!ping_acks_.pinged(id)) {  // too many out: the next answer or the deadline decides
        if (!ping_ack_due_) ping_ack_due_ = now + options_.ack_delay;
        return;
    }
    write("<iq type='get' id='" + id + "' to='" + xml_escape(options_.jid.domain()) +
          "'><ping xmlns='urn:xmpp:ping'/></iq>");
    ping_ack_due_.reset();
    last_ack_ping_ = now;
    // While stanzas wait for it, this ping is the liveness probe: its timeout is the
    // dead-link timeout (issue 18).
    if (!ping_ack_deadline_) ping_ack_deadline_ = now + options_.ping_timeout;
}

bool ClientStream::ping_answered(pugi::xml_node iq, TimePoint now) {
    std::string_view type = iq.attribute("type").value();
    if (type != "result" && type != "error") return false;
    // RFC 6120 §8.1.2.1: from the server we pinged; §10.3.3: some servers (jabberd2)
    // answer from our own JID instead.
    std::string_view from = iq.attribute("from").value();
    if (!from.empty() && from != options_.jid.domain() && from != options_.jid.bare() && from != bound_.full())
        return false;
    auto tags = ping_acks_.answered(iq.attribute("id").value());
    if (!tags) return false;
    // Any answer, an error included (a server without XEP-0199 says service-unavailable),
    // proves the order: the stanzas before the ping were handled.
    ping_ack_deadline_.reset();
    if (ping_acks_.waiting()) ping_ack_deadline_ = now + options_.ping_timeout;
    if (!tags->empty()) events_.emplace_back(Acked{std::move(*tags)});
    return true;
}

std::optional<TimePoint> ClientStream::next_deadline() const {
    std::optional<TimePoint> d;
    auto consider = [&d](std::optional<TimePoint> t) {
        if (t && (!d || *t < *d)) d = t;
    };
    consider(negotiation_deadline_);
    consider(close_deadline_);
    consider(ping_deadline_);
    consider(ack_request_due_);
    consider(ack_deadline_);
    consider(ping_ack_due_);
    consider(ping_ack_deadline_);
    if (state_ == StreamState::Online && !ping_deadline_ && !ack_deadline_ && !ping_ack_deadline_)
        consider(last_received_ + options_.ping_interval);
    return d;
}

void ClientStream::handle_timeout(TimePoint now) {
    auto due = [now](const std::optional<TimePoint>& t) { return t && *t <= now; };
    auto seconds = [](std::chrono::milliseconds ms) {
        std::ostringstream s;
        s << static_cast<double>(ms.count()) / 1000.0 << " s";
        return s.str();
    };
    // A server that resumed our session and then answers nothing may be stuck on that
    // session, not on the link: Prosody 0.12 feeds a resumed connection to the parser of the
    // session's old connection, so a stanza the old connection cut off (the daemon killed
    // while writing) swallows all we send (docs/reliability.md). The next connection binds
    // a new session instead of resuming this one again.
    auto silent = [&](std::string reason) {
        if (!sm_resume_unconfirmed_) return reason;
        sm_resumable_ = false;
        return reason + "; nothing acknowledged since the session was resumed: a new session next";
    };
    if (due(close_deadline_)) {
        finish(Closed::Kind::Requested,
               "the server did not close its stream within " + seconds(options_.close_timeout));
    } else if (due(negotiation_deadline_)) {
        write("</stream:stream>");
        finish(Closed::Kind::Error, "login did not complete within " + seconds(options_.negotiation_timeout));
    } else if (due(ping_deadline_)) {
        finish(Closed::Kind::Error,
               silent("no answer from the server for " + seconds(options_.ping_timeout) + " after a ping"));
    } else if (due(ack_deadline_)) {
        finish(Closed::Kind::Error, silent("no acknowledgement from the server for " + seconds(options_.ping_timeout)));
    } else if (due(ping_ack_deadline_)) {
        finish(Closed::Kind::Error, silent("no answer from the server for " + seconds(options_.ping_timeout) +
                                           " to a ping acknowledging " + std::to_string(ping_acks_.unacked()) +
                                           " stanza(s)"));
    } else if (due(ack_request_due_)) {
        request_ack(now);
    } else if (due(ping_ack_due_)) {
        ping_ack_due_.reset();
        if (state_ == StreamState::Online) send_ack_ping(now);
    } else if (state_ == StreamState::Online && !ping_deadline_ && !ack_deadline_ && !ping_ack_deadline_ &&
               now >= last_received_ + options_.ping_interval) {
        if (sm_enabled_) {
            request_ack(now);  // XEP-0198 §4: an <r/> finds a dead link as well as a ping
        } else {
            // XEP-0199 §4.1: a client-to-server ping finds a dead connection.
            ping_id_ = "ka" + std::to_string(next_id_++);
            write("<iq type='get' id='" + ping_id_ + "' to='" + xml_escape(options_.jid.domain()) +
                  "'><ping xmlns='urn:xmpp:ping'/></iq>");
            ping_deadline_ = now + options_.ping_timeout;
        }
    }
}

}  // namespace xmpp
