// ClientStream, the client side of one XML stream (RFC 6120): its start and restarts,
// the dispatch of what the framer cuts out of the server's stream, the stream features
// before and after authentication, and the close. The steps live beside it, one concern
// a file: SASL (stream_sasl.cpp), SASL2 (stream_sasl2.cpp), resource binding and XEP-0198
// (stream_sm.cpp), and the stanzas of the online stream with its keepalive
// (stream_stanzas.cpp).
#include "protocol/stream.hpp"

#include <array>

#include "protocol/base/utf8.hpp"

#include <charconv>
#include <vector>

#include "protocol/im.hpp"
#include "protocol/stream_detail.hpp"

namespace xmpp {
using detail::condition_and_text;
using detail::describe;
using detail::ns_pre_approval;
using detail::ns_rosterver;
namespace {

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
    // Printable ASCII that needs no escape goes in runs (issue 15: one append per character
    // was 4 % of a sent message's instructions); anything else, a character at a time below.
    static constexpr auto plain = [] {
        std::array<bool, 256> t{};
        for (int c = 0x20; c < 0x7F; ++c) t[c] = c != '&' && c != '<' && c != '>' && c != '"' && c != '\'';
        return t;
    }();
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        std::size_t run = i;
        while (run < text.size() && plain[static_cast<unsigned char>(text[run])]) ++run;
        if (run > i) {
            out.append(text.data() + i, run - i);
            i = run;
            continue;
        }
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

// The dispatch of one top-level element: what the stream itself consumes in any phase
// first (stream errors, XEP-0198 elements, answers to our pings), then by phase.
void ClientStream::handle(Stanza stanza, TimePoint now) {
    pugi::xml_node root = stanza.root();
    std::string_view ns = namespace_of(root);
    std::string_view name = local_name(root);
    ping_deadline_.reset();  // anything from the server proves the connection is alive

    if (ns == ns_streams && name == "error") {
        handle_stream_error(root);
        return;
    }
    if (ns == ns_sm) {
        handle_sm(root, now);
        return;
    }
    if (phase_ == Phase::Online && ns == ns_client && name == "iq" && ping_answered(root, now)) return;
    if (state_ == StreamState::Closing) {
        handle_while_closing(std::move(stanza));
        return;
    }
    if (phase_ == Phase::AwaitHeader) {
        stream_error("not-well-formed", "a stanza before the stream header");
        return;
    }
    if (ns == ns_streams && name == "features") {
        features_received(root, now);
        return;
    }
    if (phase_ == Phase::AwaitSasl2Features) {
        // A server may send stanzas before those features (Prosody resends the stanzas of a
        // resumed session first): the session is up, so go online and take them.
        sasl2_features({}, now);
        late_features_ = true;
    }
    switch (phase_) {
    case Phase::AwaitProceed:
        handle_proceed(root);
        return;
    case Phase::Authenticating:
        if (sasl2_used_)
            handle_sasl2(root);
        else
            handle_sasl(root);
        return;
    case Phase::Binding:
    case Phase::Session:
        handle_binding(root, now);
        return;
    case Phase::Online:
        handle_online(std::move(stanza));
        return;
    default:
        stream_error("not-authorized", "a stanza before negotiation finished");
        return;
    }
}

void ClientStream::handle_stream_error(pugi::xml_node error) {
    auto ct = condition_and_text(error, ns_stream_errors);
    Closed::Kind kind = ct.first == "conflict" || ct.first == "host-unknown" || ct.first == "not-authorized" ||
                                ct.first == "invalid-from"
                            ? Closed::Kind::Fatal
                            : Closed::Kind::Error;
    write("</stream:stream>");
    sm_resumable_ = false;
    finish(kind, "stream error from the server: " + describe(ct));
}

void ClientStream::handle_while_closing(Stanza stanza) {
    // §4.4: the server may still send stanzas until its closing tag; keep what it sends
    // (but answer nothing: our side of the stream is closed).
    pugi::xml_node root = stanza.root();
    std::string_view name = local_name(root);
    std::string_view type = root.attribute("type").value();
    if (phase_ == Phase::Online && namespace_of(root) == ns_client &&
        !(name == "iq" && (type == "get" || type == "set")))
        events_.emplace_back(StanzaReceived{std::move(stanza)});
}

void ClientStream::features_received(pugi::xml_node features, TimePoint now) {
    if (phase_ == Phase::AwaitSasl2Features) {
        sasl2_features(features, now);
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
    handle_features(features);
}

void ClientStream::handle_proceed(pugi::xml_node element) {
    if (namespace_of(element) == ns_tls && local_name(element) == "proceed") {
        // §5.4.2.3: the server's TLS handshake comes next; nothing else goes out.
        state_ = StreamState::StartingTls;
        events_.emplace_back(StartTls{});
    } else {
        finish(Closed::Kind::Error, "the server refused STARTTLS");
    }
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

}  // namespace xmpp
