#pragma once
// The client side of one XMPP stream (RFC 6120), sans-I/O: negotiation (stream header,
// features, STARTTLS §5, SASL §6, stream restarts, resource binding §7), then the online
// stream: answers to iq requests addressed to us (XEP-0199 ping, XEP-0030 disco#info,
// XEP-0092 version, service-unavailable for anything else, §8.4), keepalive pings to the
// server, stream errors (§4.9) and the closing handshake (§4.4).
//
// Bytes and time go in (receive, tls_established, handle_timeout); bytes and events come
// out (take_output, next_event). The owner (daemon/XmppConnection) does the TCP and TLS.
// One stream per connection attempt; loop thread only. Memory is bounded by the framer's
// limits plus the output not yet taken.
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "protocol/base/jid.hpp"
#include "protocol/ping_ack.hpp"
#include "protocol/sasl.hpp"
#include "protocol/sm_queue.hpp"
#include "protocol/xml_framer.hpp"

namespace xmpp {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

inline constexpr std::string_view ns_client = "jabber:client";
inline constexpr std::string_view ns_tls = "urn:ietf:params:xml:ns:xmpp-tls";
inline constexpr std::string_view ns_sasl = "urn:ietf:params:xml:ns:xmpp-sasl";
inline constexpr std::string_view ns_sasl_cb = "urn:xmpp:sasl-cb:0";  // XEP-0440
inline constexpr std::string_view ns_bind = "urn:ietf:params:xml:ns:xmpp-bind";
inline constexpr std::string_view ns_session = "urn:ietf:params:xml:ns:xmpp-session";
inline constexpr std::string_view ns_stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
inline constexpr std::string_view ns_stream_errors = "urn:ietf:params:xml:ns:xmpp-streams";
inline constexpr std::string_view ns_ping = "urn:xmpp:ping";
inline constexpr std::string_view ns_disco_info = "http://jabber.org/protocol/disco#info";
inline constexpr std::string_view ns_version = "jabber:iq:version";
inline constexpr std::string_view ns_sm = "urn:xmpp:sm:3";
inline constexpr std::string_view ns_sasl2 = "urn:xmpp:sasl:2";  // XEP-0388
inline constexpr std::string_view ns_bind2 = "urn:xmpp:bind:0";  // XEP-0386
inline constexpr std::string_view ns_fast = "urn:xmpp:fast:0";   // XEP-0484

// What a XEP-0198 session leaves behind for the next connection to resume (§5).
struct SmSession {
    std::string id;            // the server's resumption id
    std::string location;      // where to reconnect, if the server said (host[:port])
    Jid jid;                   // the full JID bound to the session
    SmQueue queue;             // unacked stanzas and both counters
    std::uint32_t max = 0;     // seconds the server keeps it (XEP-0198 §5 'max'), 0: unknown
    // Read back from disk after a restart: only the inbound h is known, not which of our
    // stanzas the server has. On <resumed h/> everything up to h counts as received and
    // the owner sends again what it has not seen acknowledged (same origin-ids).
    bool restored = false;
};

// A XEP-0198 'location' ("host", "host:port", "[v6]" or "[v6]:port") as host and port;
// port 0 when it has none.
std::pair<std::string, int> split_location(std::string_view location);

// What survives a restart of the daemon (kept in the store by the owner).
struct SmCheckpoint {
    std::string id, location, jid;
    std::uint32_t inbound = 0;
    friend bool operator==(const SmCheckpoint&, const SmCheckpoint&) = default;
};

struct StreamOptions {
    Jid jid;                        // the account's bare JID
    std::string resource = "stanzad";
    std::string password;           // empty: no password-based SASL (SCRAM, PLAIN)
    bool direct_tls = false;        // TLS is up before the stream starts (XEP-0368)
    // SASL mechanism families in the order to try: "EXTERNAL", "SCRAM", "PLAIN" (config
    // `sasl`). Empty: EXTERNAL first when client_certificate, then SCRAM, then PLAIN (inside
    // TLS only), the last two only with a password. After EXTERNAL fails, the next family is
    // tried on the same stream (RFC 6120 §6.4.5).
    std::vector<std::string> sasl_order;
    bool client_certificate = false;  // our certificate goes out in the TLS handshake
    ChannelBindingPolicy channel_binding = ChannelBindingPolicy::Auto;  // config `channel_binding`
    std::string software_name = "stanzad";
    std::string software_version = "0";
    FramerLimits limits;
    std::chrono::milliseconds negotiation_timeout{30'000};  // connect to online
    std::chrono::milliseconds close_timeout{3'000};         // wait for the server's </stream:stream>
    std::chrono::milliseconds ping_interval{60'000};        // silence before we ping the server
    std::chrono::milliseconds ping_timeout{30'000};         // silence after the ping: dead
    bool stream_management = true;                          // XEP-0198 when the server offers it
    std::optional<SmSession> resume;                        // resume this session instead of binding
    // XEP-0198 §4 leaves when to send <r/> to the client. One per window of traffic: after
    // ack_window stanzas or ack_window_bytes of them since the last <r/>, whichever comes
    // first, and ack_delay after a stanza that no <r/> followed (the tail of a burst, a lone
    // message). Sizes and why: docs/performance.md "XEP-0198 acknowledgements".
    std::uint32_t ack_window = 64;
    std::size_t ack_window_bytes = 16 * 1024;
    std::uint32_t ack_burst = 5;                            // ping acks: a ping after this many stanzas
    std::chrono::milliseconds ack_delay{250};               // or this long after the last one
    // Without XEP-0198 v3: acknowledge stanzas by a XEP-0199 ping after each burst (the same
    // ack_burst and ack_delay, at most one ping per ack_delay); its answer is an Acked event.
    bool ping_acks = true;
    std::string caps_node = "https://stanzad.org";          // XEP-0115 §4 'node'
    // XEP-0388 SASL2 when the server offers it: authentication, resource binding (XEP-0386
    // Bind2, with `resource` as its tag: the server picks the resource), carbons, and XEP-0198
    // enable or resume in one round trip. Legacy SASL otherwise.
    bool sasl2 = true;
    std::string user_agent_id;                 // XEP-0388 §3 <user-agent id/>: a stable UUID v4;
                                               // without one no FAST token is asked for or used
    std::optional<sasl::FastToken> fast_token; // XEP-0484: log in with it instead of the password
    bool carbons = true;                       // XEP-0280: enable inline with Bind2 when offered
};

enum class StreamState { Idle, Negotiating, StartingTls, Online, Closing, Closed };

// What the stream tells its owner.
struct StartTls {};  // take_output(), then run the TLS handshake, then tls_established()
struct Online {
    Jid jid;                 // the full JID the server bound
    // How we authenticated, for the login line: "SCRAM-SHA-256-PLUS, tls-exporter",
    // "SCRAM-SHA-1", "EXTERNAL", "PLAIN"; after a refused certificate also why
    // ("SCRAM-SHA-256; EXTERNAL refused: not-authorized (Certificate not trusted)").
    std::string mechanism;
    bool stream_management = false;  // XEP-0198 acks will come
    bool resumed = false;            // the previous session went on (XEP-0198 §5)
    bool restored = false;           // ... resumed from a checkpoint: resend what is unacked
    std::string resume_failure;      // why resumption was refused, when it was tried
    bool roster_versioning = false;  // RFC 6121 §2.6.1: the server offered <ver/>
    bool pre_approval = false;       // RFC 6121 §3.4: the server offered <sub/>
    bool carbons = false;            // XEP-0280 carbons enabled in the login (Bind2 inline)
    // How the session was set up: "SASL2", "SASL2 + Bind2" (XEP-0388, XEP-0386); "" for RFC 6120.
    std::string setup;
};
// XEP-0484: keep this token for the next login (it replaces any earlier one), or forget the
// one we have (nullopt: the server refused it or it is spent).
struct FastTokenChanged {
    std::optional<sasl::FastToken> token;
    std::string refused;  // with nullopt: why the server refused the token ("not-authorized")
};
// The server acknowledged these stanzas (XEP-0198 <a/> or <resumed/>): their tags, oldest
// first; untagged stanzas are counted but not listed.
struct Acked {
    std::vector<std::string> tags;
};
struct StanzaReceived {
    Stanza stanza;           // message, presence, or an iq result/error we did not consume
};
struct Closed {
    enum class Kind {
        Requested,   // we closed (close())
        ByPeer,      // the server closed its stream or the connection
        Error,       // a stream error, bad XML, a timeout, a protocol violation
        AuthFailed,  // SASL failed: retrying with the same credentials will fail again
                     // (also: no acceptable mechanism, channel binding required but impossible)
        Fatal,       // other problems that retrying will not fix (conflict, host-unknown, a
                     // SASL downgrade detected by XEP-0474)
    };
    Kind kind;
    std::string reason;      // for people: "stream error: conflict (Replaced by new connection)"
    bool clean = false;      // both sides sent </stream:stream>
    bool retry() const { return kind != Kind::AuthFailed && kind != Kind::Fatal; }
};
using StreamEvent = std::variant<StartTls, Online, StanzaReceived, Acked, Closed, FastTokenChanged>;

// An answer to an iq get/set addressed to us: the children of the result, or an error.
struct IqAnswer {
    std::string payload;          // XML inside <iq type='result'>, may be empty
    std::string error_condition;  // non-empty: reply type='error' with this condition (§8.3.3)
    std::string error_type = "cancel";
};
using IqHandler = std::function<IqAnswer(pugi::xml_node iq, pugi::xml_node payload)>;

class ClientStream {
public:
    explicit ClientStream(StreamOptions options);

    // The transport is connected (and, for direct TLS, encrypted): open the stream.
    void start(TimePoint now);
    // Plaintext from the transport.
    void receive(std::string_view bytes, TimePoint now);
    // The TLS handshake that StartTls asked for is done: restart the stream (§5.4.3.3).
    void tls_established(TimePoint now);
    // What SASL channel binding can use of the TLS channel. Call after every completed TLS
    // handshake, before tls_established() (STARTTLS) or start() (direct TLS). Without it no
    // mechanism binds to the channel (SCRAM sends the gs2 flag 'n').
    void set_tls_channel(TlsChannel channel) { tls_channel_ = std::move(channel); }
    // The transport is gone (reset, EOF, TLS error). `reason` is for people.
    void transport_closed(std::string reason);
    // Start the closing handshake (§4.4): send </stream:stream>, wait for the server's.
    void close(TimePoint now);
    // Send a stanza (serialized XML) on the online stream; false, and nothing written,
    // unless online. With stream management, `tag` comes back in an Acked event once the
    // server has it.
    bool send(std::string_view xml, TimePoint now, std::string tag = {});
    // After Closed: the XEP-0198 session to resume on the next connection, if the server
    // allowed resumption and the stream did not end cleanly.
    std::optional<SmSession> take_resumable();
    // While a resumable XEP-0198 session is up: what to keep on disk to resume it after a
    // restart. The inbound h covers only stanzas already handed out as events.
    std::optional<SmCheckpoint> checkpoint() const;

    // Iq requests addressed to us, keyed by the payload's namespace and element name.
    // Every namespace handled here is announced in disco#info (§XEP-0030 3.1).
    void on_iq(std::string_view ns, std::string_view element, IqHandler handler);
    // Another feature to announce in disco#info.
    void add_feature(std::string_view var);
    // XEP-0115 §5.1: the verification string of our identity and features (as announced
    // in disco#info, which also answers for the node 'caps_node#ver', §6.2), and the <c/>
    // element for our presence.
    std::string caps_ver() const;
    std::string caps_element() const;

    std::string take_output();
    std::optional<StreamEvent> next_event();
    std::optional<TimePoint> next_deadline() const;
    void handle_timeout(TimePoint now);

    StreamState state() const { return state_; }
    bool tls_active() const { return tls_active_; }
    // Before start(): the transport is already TLS (XEP-0368), as chosen after construction
    // (an SRV record of _xmpps-client).
    void set_direct_tls() { tls_active_ = true; }
    // Wire trace for logs, called with (outgoing, xml); SASL payloads are redacted.
    void set_wire_trace(std::function<void(bool outgoing, std::string_view xml)> trace) {
        trace_ = std::move(trace);
    }

private:
    enum class Phase {
        AwaitHeader, AwaitFeatures, AwaitProceed, Authenticating, Resuming, Binding, Session, Enabling,
        AwaitSasl2Features,  // SASL2 bound or resumed: the <features/> after <success/> complete it
        Online
    };

    void open_stream();
    void write(std::string_view xml, std::string_view redacted = {});
    // The dispatch of one element of the server's stream (stream.cpp), and its steps
    void handle(Stanza stanza, TimePoint now);
    void handle_stream_error(pugi::xml_node error);
    void handle_while_closing(Stanza stanza);
    void features_received(pugi::xml_node features, TimePoint now);
    void handle_features(pugi::xml_node features);
    void handle_proceed(pugi::xml_node element);
    // RFC 6120 §6 SASL (stream_sasl.cpp)
    void handle_sasl(pugi::xml_node element);
    Status authenticate(std::size_t from);
    void abort_sasl(const Error& error);
    // XEP-0388 SASL2 with XEP-0386 Bind2, XEP-0484 FAST, XEP-0198 inline (stream_sasl2.cpp)
    void read_sasl2_offer(pugi::xml_node authentication);
    bool authenticate_fast();
    void send_authenticate2(std::string_view initial, bool fast);
    void handle_sasl2(pugi::xml_node element);
    void sasl2_success(pugi::xml_node success);
    void sasl2_failure(pugi::xml_node failure);
    void sasl2_features(pugi::xml_node features, TimePoint now);
    // Resource binding (RFC 6120 §7) and XEP-0198 §5 (stream_sm.cpp)
    void handle_binding(pugi::xml_node iq, TimePoint now);
    bool take_bound_jid(pugi::xml_node iq);  // false: unusable, the stream is closed
    bool take_resumed(std::uint32_t h);  // true: restored from a checkpoint
    void resume_failed(pugi::xml_node failed);
    void enabled(pugi::xml_node element);
    // The online stream (stream_stanzas.cpp)
    void handle_online(Stanza stanza);
    void handle_iq_request(pugi::xml_node iq);
    void finish(Closed::Kind kind, std::string reason, bool clean = false);
    void stream_error(std::string_view condition, std::string reason, Closed::Kind kind = Closed::Kind::Error);
    IqAnswer answer_disco_info(pugi::xml_node payload) const;
    void trace_in(const Stanza& stanza);
    void handle_sm(pugi::xml_node element, TimePoint now);
    void go_online(TimePoint now, bool resumed, bool restored = false);
    void bind();
    void request_ack(TimePoint now);
    void acked(std::uint32_t h);
    void send_ack_ping(TimePoint now);
    bool ping_answered(pugi::xml_node iq, TimePoint now);

    StreamOptions options_;
    XmlFramer framer_;
    StreamState state_ = StreamState::Idle;
    Phase phase_ = Phase::AwaitHeader;
    bool tls_active_ = false;
    bool authenticated_ = false;
    bool session_required_ = false;
    bool roster_versioning_ = false;  // RFC 6121 §2.6.1, from the features after SASL
    bool pre_approval_ = false;       // RFC 6121 §3.4, likewise
    TlsChannel tls_channel_;
    sasl::Offer sasl_offer_;                  // from the features, for a second choice
    std::unique_ptr<sasl::Mechanism> mechanism_;
    std::string mechanism_name_;              // "SCRAM-SHA-256-PLUS"
    std::string mechanism_description_;       // Online::mechanism
    std::size_t sasl_position_ = 0;           // of its family in the order
    std::string failure_hint_;                // sasl::Choice::failure_hint
    std::string external_failure_;            // why EXTERNAL failed ("not-authorized (...)"),
                                              // when a second mechanism followed it
    Jid bound_;
    // XEP-0388 and friends, from the features before authentication
    struct Sasl2Offer {
        bool offered = false;             // <authentication xmlns='urn:xmpp:sasl:2'/> was there
        bool bind2 = false;               // XEP-0386
        std::set<std::string> bind2_inline;  // its <inline/> feature vars
        bool sm = false;                  // XEP-0198 <resume/> inline
        std::vector<std::string> fast;    // XEP-0484 mechanisms; empty: no FAST
    } sasl2_;
    bool sasl2_used_ = false;
    bool fast_used_ = false;              // this attempt uses options_.fast_token
    std::string fast_refused_;            // why the server refused it, when it did on this stream
    std::string token_requested_;         // the HT mechanism of our <request-token/>
    bool bind2_requested_ = false, sm_inline_enable_ = false, resume_inline_ = false, carbons_inline_ = false;
    bool bind2_bound_ = false;
    bool carbons_enabled_ = false;
    bool resumed_pending_ = false;        // <resumed/> came in <success/>; Online waits for features
    bool restored_pending_ = false;       // ... from a checkpoint
    bool late_features_ = false;          // ignore one <features/> after going online early
    std::string output_;
    std::deque<StreamEvent> events_;
    std::map<std::pair<std::string, std::string>, IqHandler, std::less<>> iq_handlers_;
    std::set<std::string> features_;
    std::function<void(bool, std::string_view)> trace_;

    std::optional<TimePoint> negotiation_deadline_;
    std::optional<TimePoint> close_deadline_;
    TimePoint last_received_{};
    std::optional<TimePoint> ping_deadline_;
    std::string ping_id_;
    unsigned long next_id_ = 1;

    // XEP-0198
    bool sm_offered_ = false;
    bool sm_enabled_ = false;
    bool sm_resumable_ = false;
    // Resumed, and no <a/> from the server since: a link that then goes silent is not
    // resumed again (ClientStream::handle_timeout).
    bool sm_resume_unconfirmed_ = false;
    std::string sm_id_, sm_location_;
    std::uint32_t sm_max_ = 0;
    std::string resume_failure_;
    SmQueue sm_;
    std::uint32_t sm_requested_at_ = 0;        // head when we last sent <r/>
    std::size_t sm_bytes_since_request_ = 0;   // stanza bytes sent since that <r/>
    std::optional<TimePoint> ack_request_due_;  // send <r/> then
    std::optional<TimePoint> ack_deadline_;     // an <a/> must come by then

    // Acknowledgement by ping without XEP-0198 (ping_ack.hpp)
    PingAckQueue ping_acks_;
    std::optional<TimePoint> ping_ack_due_;       // send the next acknowledging ping then
    std::optional<TimePoint> ping_ack_deadline_;  // its answer must come by then: else a dead link
    std::optional<TimePoint> last_ack_ping_;
};

// Escapes text for an XML attribute value or character data.
std::string xml_escape(std::string_view text);

}  // namespace xmpp
