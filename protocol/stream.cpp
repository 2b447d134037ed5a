#include "protocol/stream.hpp"

#include "protocol/base/base64.hpp"
#include "protocol/base/utf8.hpp"

#include <algorithm>
#include <charconv>
#include <sstream>
#include <vector>

#include "protocol/im.hpp"
#include "protocol/stream_detail.hpp"

namespace xmpp {
using detail::condition_and_text;
using detail::describe;
using detail::ns_pre_approval;
using detail::ns_rosterver;
using detail::parse_h;
namespace {

// The identity we announce in disco#info (XEP-0030 §3.1), hashed into our caps.
constexpr std::string_view identity_category = "client";
constexpr std::string_view identity_type = "pc";

struct StringWriter : pugi::xml_writer {
    std::string out;
    void write(const void* data, size_t size) override {
        out.append(static_cast<const char*>(data), size);
    }
};

std::string serialize(pugi::xml_node node) {
    StringWriter w;
    node.print(w, "", pugi::format_raw);
    return std::move(w.out);
}

}  // namespace

std::string xml_escape(std::string_view text) {
    // Also makes any text well-formed XML 1.0 (§2.2 Char): bytes that are not UTF-8, and
    // code points XML does not allow (controls other than TAB, LF, CR; U+FFFE, U+FFFF),
    // become U+FFFD. A front end's text must never be able to break the stream.
    static constexpr std::string_view replacement = "\xEF\xBF\xBD";
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        std::uint32_t cp;
        std::size_t n = utf8_sequence(text, i, cp);
        if (n == 0 || !is_xml_char(cp)) {
            out += replacement;
            ++i;
            continue;
        }
        switch (cp) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&apos;"; break;
        default: out.append(text.substr(i, n));
        }
        i += n;
    }
    return out;
}

ClientStream::ClientStream(StreamOptions options)
    : options_(std::move(options)), framer_(options_.limits), tls_active_(options_.direct_tls) {
    // XEP-0199 §4.2: answer pings addressed to our full JID.
    on_iq(ns_ping, "ping", [](pugi::xml_node, pugi::xml_node) { return IqAnswer{}; });
    // XEP-0030 §3.1: who we are and what we support.
    on_iq(ns_disco_info, "query", [this](pugi::xml_node, pugi::xml_node payload) {
        return answer_disco_info(payload);
    });
    // XEP-0092 §2: software name and version (no OS: it is nobody's business).
    on_iq(ns_version, "query", [this](pugi::xml_node iq, pugi::xml_node) {
        if (std::string_view(iq.attribute("type").value()) != "get")
            return IqAnswer{"", "bad-request", "modify"};
        return IqAnswer{"<query xmlns='jabber:iq:version'><name>" + xml_escape(options_.software_name) +
                            "</name><version>" + xml_escape(options_.software_version) +
                            "</version></query>",
                        "", ""};
    });
    // XEP-0115 §7: we generate caps (caps_element()), so we say so.
    add_feature(ns_caps);
}

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

void ClientStream::write(std::string_view xml, std::string_view redacted) {
    output_.append(xml);
    if (trace_) trace_(true, redacted.empty() ? xml : redacted);
}

void ClientStream::trace_in(const Stanza& stanza) {
    if (!trace_) return;
    auto root = stanza.root();
    if (namespace_of(root) == ns_sasl2 && local_name(root) != "failure")  // SASL data, tokens
        trace_(false, "<" + std::string(root.name()) + " xmlns='" + std::string(ns_sasl2) + "'>[redacted]</" +
                          std::string(root.name()) + ">");
    else if (namespace_of(root) == ns_sasl && *root.child_value())
        trace_(false, "<" + std::string(root.name()) + " xmlns='" + std::string(ns_sasl) +
                          "'>[redacted]</" + std::string(root.name()) + ">");
    else
        trace_(false, serialize(root));
}

void ClientStream::open_stream() {
    // RFC 6120 §4.7.1: 'from' only once the stream is encrypted.
    std::string header = "<?xml version='1.0'?><stream:stream to='" +
                         xml_escape(options_.jid.domain()) + "'";
    if (tls_active_) header += " from='" + xml_escape(options_.jid.bare()) + "'";
    header += " version='1.0' xml:lang='en' xmlns='jabber:client' "
              "xmlns:stream='http://etherx.jabber.org/streams'>";
    write(header);
    phase_ = Phase::AwaitHeader;
}

void ClientStream::start(TimePoint now) {
    if (state_ != StreamState::Idle) return;
    state_ = StreamState::Negotiating;
    negotiation_deadline_ = now + options_.negotiation_timeout;
    last_received_ = now;
    open_stream();
}

void ClientStream::tls_established(TimePoint now) {
    if (state_ != StreamState::StartingTls) return;
    tls_active_ = true;
    state_ = StreamState::Negotiating;
    last_received_ = now;
    framer_.reset();
    open_stream();
}

void ClientStream::receive(std::string_view bytes, TimePoint now) {
    if (state_ == StreamState::Closed || state_ == StreamState::Idle) return;
    last_received_ = now;
    framer_.feed(bytes);
    while (state_ != StreamState::Closed && state_ != StreamState::StartingTls) {
        auto event = framer_.next();
        if (!event) break;
        if (auto* open = std::get_if<StreamOpen>(&*event)) {
            if (phase_ != Phase::AwaitHeader) {
                stream_error("not-well-formed", "a second stream header");
                break;
            }
            if (open->attribute("xmlns") != ns_client) {
                stream_error("invalid-namespace", "the server's stream is not jabber:client");
                break;
            }
            if (!open->attribute("version").starts_with("1.")) {
                stream_error("unsupported-version", "the server does not speak XMPP 1.0");
                break;
            }
            phase_ = Phase::AwaitFeatures;
        } else if (auto* stanza = std::get_if<Stanza>(&*event)) {
            trace_in(*stanza);
            handle(std::move(*stanza), now);
        } else if (std::holds_alternative<StreamEnd>(*event)) {
            if (state_ == StreamState::Closing) {
                finish(Closed::Kind::Requested, "stream closed", true);
            } else {
                write("</stream:stream>");  // §4.4: answer the server's close
                sm_resumable_ = false;
                finish(Closed::Kind::ByPeer, "the server closed the stream", true);
            }
        } else {
            const auto& err = std::get<FramerError>(*event);
            stream_error(err.condition, "bad XML from the server: " + err.message);
        }
    }
}

void ClientStream::handle(Stanza stanza, TimePoint now) {
    pugi::xml_node root = stanza.root();
    std::string_view ns = namespace_of(root);
    std::string_view name = local_name(root);
    ping_deadline_.reset();  // anything from the server proves the connection is alive

    if (ns == ns_streams && name == "error") {
        auto ct = condition_and_text(root, ns_stream_errors);
        Closed::Kind kind = ct.first == "conflict" || ct.first == "host-unknown" ||
                                    ct.first == "not-authorized" || ct.first == "invalid-from"
                                ? Closed::Kind::Fatal
                                : Closed::Kind::Error;
        write("</stream:stream>");
        sm_resumable_ = false;
        finish(kind, "stream error from the server: " + describe(ct));
        return;
    }
    if (ns == ns_sm) {
        handle_sm(root, now);
        return;
    }
    if (phase_ == Phase::Online && ns == ns_client && name == "iq" && ping_answered(root, now)) return;
    if (state_ == StreamState::Closing) {
        // §4.4: the server may still send stanzas until its closing tag; keep what it sends
        // (but answer nothing: our side of the stream is closed).
        if (phase_ == Phase::Online && ns == ns_client &&
            !(name == "iq" && (std::string_view(root.attribute("type").value()) == "get" ||
                               std::string_view(root.attribute("type").value()) == "set")))
            events_.emplace_back(StanzaReceived{std::move(stanza)});
        return;
    }

    if (phase_ == Phase::AwaitHeader) {
        stream_error("not-well-formed", "a stanza before the stream header");
        return;
    }
    if (ns == ns_streams && name == "features") {
        if (phase_ == Phase::AwaitSasl2Features) {
            sasl2_features(root, now);
            return;
        }
        if (late_features_ && phase_ == Phase::Online) {  // see sasl2_features
            late_features_ = false;
            return;
        }
        if (phase_ != Phase::AwaitFeatures) {
            stream_error("policy-violation", "stream features in the middle of negotiation");
            return;
        }
        handle_features(root);
        return;
    }
    if (phase_ == Phase::AwaitProceed) {
        if (ns == ns_tls && name == "proceed") {
            // §5.4.2.3: the server's TLS handshake comes next; nothing else goes out.
            state_ = StreamState::StartingTls;
            events_.emplace_back(StartTls{});
        } else {
            finish(Closed::Kind::Error, "the server refused STARTTLS");
        }
        return;
    }
    if (phase_ == Phase::Authenticating) {
        if (sasl2_used_) handle_sasl2(root);
        else handle_sasl(root);
        return;
    }
    if (phase_ == Phase::AwaitSasl2Features) {
        // A server may send stanzas before those features (Prosody resends the stanzas of a
        // resumed session first): the session is up, so go online and take them.
        sasl2_features({}, now);
        late_features_ = true;
    }
    if (phase_ == Phase::Binding || phase_ == Phase::Session) {
        if (name != "iq" || ns != ns_client) return;
        std::string_view type = root.attribute("type").value();
        if (type == "get" || type == "set") {
            handle_iq_request(root);
            return;
        }
        if (std::string_view(root.attribute("id").value()) != "bind" &&
            std::string_view(root.attribute("id").value()) != "session")
            return;
        if (type == "error") {
            auto ct = condition_and_text(root.child("error"), ns_stanzas);
            finish(Closed::Kind::Error, (phase_ == Phase::Binding ? "resource binding failed: "
                                                                  : "session establishment failed: ") +
                                            describe(ct));
            return;
        }
        if (phase_ == Phase::Binding) {
            auto jid_text = child(child(root, ns_bind, "bind"), ns_bind, "jid").child_value();
            auto jid = Jid::parse(jid_text);
            if (jid && !jid.value().is_bare() && jid.value().bare() != options_.jid.bare()) {
                // Authenticated as someone else (a client certificate naming another JID,
                // XEP-0178 §3): every retry would log that other account in again, and may
                // replace its own sessions. Final until the config changes.
                stream_error("policy-violation",
                             "the server logged us in as " + jid.value().bare() + ", not " + options_.jid.bare() +
                                 " (does the client certificate name another JID?)",
                             Closed::Kind::Fatal);
                return;
            }
            if (!jid || jid.value().is_bare()) {
                stream_error("undefined-condition", std::string("the server bound an unusable JID '") + jid_text + "'");
                return;
            }
            bound_ = jid.value();
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
        return;
    }
    if (phase_ != Phase::Online) {
        stream_error("not-authorized", "a stanza before negotiation finished");
        return;
    }
    if (ns != ns_client) return;  // top-level elements of extensions not enabled: ignore
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

void ClientStream::handle_features(pugi::xml_node features) {
    if (!tls_active_) {
        // §5.3.1: TLS is mandatory for us; never authenticate in the clear.
        if (!child(features, ns_tls, "starttls")) {
            finish(Closed::Kind::Fatal, "the server does not offer STARTTLS; refusing to log in without TLS");
            write("</stream:stream>");
            return;
        }
        write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        phase_ = Phase::AwaitProceed;
        return;
    }
    if (!authenticated_) {
        // RFC 6120 §6.4.1 mechanisms, and XEP-0440 §2 channel-binding types when listed; both
        // exactly as received, since XEP-0474 hashes them.
        sasl_offer_ = {};
        sasl2_ = {};
        if (auto authentication = child(features, ns_sasl2, "authentication"); authentication && options_.sasl2)
            read_sasl2_offer(authentication);  // XEP-0388 wins over RFC 6120 §6 when both are offered
        else
            for (auto m : child(features, ns_sasl, "mechanisms").children())
                if (is(m, ns_sasl, "mechanism")) sasl_offer_.mechanisms.emplace_back(m.child_value());
        sasl2_used_ = sasl2_.offered;
        if (auto cb = child(features, ns_sasl_cb, "sasl-channel-binding")) {
            std::vector<std::string> types;
            for (auto c : cb.children())
                if (is(c, ns_sasl_cb, "channel-binding") && *c.attribute("type").value())
                    types.emplace_back(c.attribute("type").value());
            sasl_offer_.channel_bindings = std::move(types);
        }
        if (auto started = authenticate(0); !started) {
            write("</stream:stream>");
            finish(Closed::Kind::AuthFailed, started.error().message);
        }
        return;
    }
    // The features after authentication say what the server's roster can do (RFC 6121
    // §2.6.1 versioning, §3.4 pre-approval); the Online event reports them.
    roster_versioning_ = child(features, ns_rosterver, "ver");
    pre_approval_ = child(features, ns_pre_approval, "sub");
    if (!child(features, ns_bind, "bind")) {
        stream_error("unsupported-feature", "the server does not offer resource binding");
        return;
    }
    // RFC 3921 session establishment: only when the server says it is not optional.
    auto session = child(features, ns_session, "session");
    session_required_ = session && !child(session, ns_session, "optional");
    sm_offered_ = options_.stream_management && child(features, ns_sm, "sm");
    if (sm_offered_ && options_.resume) {
        // XEP-0198 §5: resume instead of binding a new resource.
        write("<resume xmlns='urn:xmpp:sm:3' h='" + std::to_string(options_.resume->queue.inbound()) +
              "' previd='" + xml_escape(options_.resume->id) + "'/>");
        phase_ = Phase::Resuming;
        return;
    }
    bind();
}

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

void ClientStream::bind() {
    write("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" +
          xml_escape(options_.resource) + "</resource></bind></iq>");
    phase_ = Phase::Binding;
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

std::pair<std::string, int> split_location(std::string_view loc) {
    std::string_view host = loc, port;
    if (!loc.empty() && loc.front() == '[') {
        auto close = loc.find(']');
        host = loc.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1);
        if (close != std::string_view::npos && loc.substr(close + 1).starts_with(":")) port = loc.substr(close + 2);
    } else if (auto colon = loc.find(':'); colon != std::string_view::npos && loc.find(':', colon + 1) == std::string_view::npos) {
        host = loc.substr(0, colon);  // one colon: host:port; more: a bare IPv6 address
        port = loc.substr(colon + 1);
    }
    int p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p < 0 || p > 65535) p = 0;
    return {std::string(host), p};
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
        acked(*h);
        return;
    }
    if (phase_ == Phase::Resuming) {
        if (name == "resumed" && h) {
            bool restored = take_resumed(*h);
            if (state_ == StreamState::Closed) return;
            go_online(now, true, restored);
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

std::optional<SmSession> ClientStream::take_resumable() {
    if (state_ != StreamState::Closed) return std::nullopt;
    // A connection that died before the server answered <resume/> hands the session on.
    if (options_.resume) return std::exchange(options_.resume, std::nullopt);
    if (!sm_enabled_ || !sm_resumable_) return std::nullopt;
    sm_resumable_ = false;
    return SmSession{sm_id_, sm_location_, bound_, std::move(sm_), sm_max_, false};
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

void ClientStream::send(std::string_view xml, TimePoint now, std::string tag) {
    if (state_ != StreamState::Online) return;
    write(xml);
    if (!sm_enabled_) {
        if (!options_.ping_acks) return;
        ping_acks_.push(std::move(tag));
        // A burst gets its ping at once (at most one per ack_delay); a lone stanza shortly after.
        bool spaced = !last_ack_ping_ || now - *last_ack_ping_ >= options_.ack_delay;
        if (ping_acks_.since_ping() >= options_.ack_burst && spaced) send_ack_ping(now);
        else if (!ping_ack_due_) ping_ack_due_ = std::max(now + options_.ack_delay,
                                                          last_ack_ping_.value_or(now) + options_.ack_delay);
        return;
    }
    sm_.push(std::string(xml), std::move(tag));
    sm_bytes_since_request_ += xml.size();
    // One <r/> per window of traffic, or shortly after a stanza no <r/> followed yet.
    if (sm_.head() - sm_requested_at_ >= options_.ack_window || sm_bytes_since_request_ >= options_.ack_window_bytes)
        request_ack(now);
    else if (!ack_request_due_)
        ack_request_due_ = now + options_.ack_delay;
}

void ClientStream::close(TimePoint now) {
    if (state_ == StreamState::Closed || state_ == StreamState::Closing) return;
    if (state_ == StreamState::Idle || state_ == StreamState::StartingTls) {
        finish(Closed::Kind::Requested, "closed before the stream was open");
        return;
    }
    // A last <r/>, so the server's <a/> before its closing tag settles what it has.
    if (sm_enabled_ && sm_.unacked_count() > 0) write("<r xmlns='urn:xmpp:sm:3'/>");
    if (!sm_enabled_ && ping_acks_.since_ping() > 0 && state_ == StreamState::Online) send_ack_ping(now);
    write("</stream:stream>");
    sm_resumable_ = false;  // XEP-0198 section 6: a closed stream cannot be resumed
    state_ = StreamState::Closing;
    ack_request_due_.reset();
    ack_deadline_.reset();
    close_deadline_ = now + options_.close_timeout;
    negotiation_deadline_.reset();
    ping_deadline_.reset();
    ping_ack_due_.reset();
    ping_ack_deadline_.reset();
}

void ClientStream::transport_closed(std::string reason) {
    if (state_ == StreamState::Closed) return;
    finish(state_ == StreamState::Closing ? Closed::Kind::Requested : Closed::Kind::ByPeer, std::move(reason));
}

void ClientStream::stream_error(std::string_view condition, std::string reason, Closed::Kind kind) {
    // §4.9.1.1: send the error, then close the stream.
    sm_resumable_ = false;
    write("<stream:error><" + std::string(condition) +
          " xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>");
    finish(kind, std::move(reason));
}

void ClientStream::finish(Closed::Kind kind, std::string reason, bool clean) {
    if (state_ == StreamState::Closed) return;
    if (kind == Closed::Kind::ByPeer && clean && phase_ == Phase::Authenticating && !external_failure_.empty()) {
        // XEP-0178 §3 lets a server close the stream after refusing a certificate: the next
        // connection would be refused the same way, so say what to change instead of retrying.
        std::string family = mechanism_name_.starts_with("SCRAM") ? "SCRAM" : mechanism_name_;
        kind = Closed::Kind::AuthFailed;
        reason = "EXTERNAL: " + external_failure_ +
                 "; then the server closed the stream, so " + mechanism_name_ +
                 " could not be tried (sasl = [\"" + family + "\"] skips EXTERNAL)";
    }
    state_ = StreamState::Closed;
    negotiation_deadline_.reset();
    close_deadline_.reset();
    ping_deadline_.reset();
    ack_request_due_.reset();
    ack_deadline_.reset();
    ping_ack_due_.reset();
    ping_ack_deadline_.reset();
    events_.emplace_back(Closed{kind, std::move(reason), clean});
}

std::string ClientStream::take_output() { return std::exchange(output_, {}); }

std::optional<StreamEvent> ClientStream::next_event() {
    if (events_.empty()) return std::nullopt;
    StreamEvent e = std::move(events_.front());
    events_.pop_front();
    return e;
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
    if (due(close_deadline_)) {
        finish(Closed::Kind::Requested,
               "the server did not close its stream within " + seconds(options_.close_timeout));
    } else if (due(negotiation_deadline_)) {
        write("</stream:stream>");
        finish(Closed::Kind::Error, "login did not complete within " + seconds(options_.negotiation_timeout));
    } else if (due(ping_deadline_)) {
        finish(Closed::Kind::Error, "no answer from the server for " + seconds(options_.ping_timeout) +
                                        " after a ping");
    } else if (due(ack_deadline_)) {
        finish(Closed::Kind::Error, "no acknowledgement from the server for " + seconds(options_.ping_timeout));
    } else if (due(ping_ack_deadline_)) {
        finish(Closed::Kind::Error, "no answer from the server for " + seconds(options_.ping_timeout) +
                                        " to a ping acknowledging " + std::to_string(ping_acks_.unacked()) +
                                        " stanza(s)");
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
