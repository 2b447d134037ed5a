#pragma once
// XmppConnection: one attempt to be online with one account. Finds where to connect (SRV,
// RFC 6120 §3.2.1 and XEP-0368, unless the account names a host or a SOCKS5 proxy resolves
// names for us), races each target's addresses (Happy Eyeballs, RFC 8305), tunnels through
// the account's SOCKS5 proxy when there is one, runs TLS (STARTTLS or direct) and the
// protocol's ClientStream, and reports to its owner. A target that cannot be reached moves
// on to the next; when it reports closed it is finished and the owner drops it on a later
// loop turn. Loop thread only. Memory: one read buffer, the stream's bounded framer,
// unwritten output, the target list (bounded by dns::max_records per service).
#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <random>
#include <vector>

#include "config/config.hpp"
#include "daemon/resolver.hpp"
#include "daemon/tls.hpp"
#include "daemon/uv.hpp"
#include "protocol/dns.hpp"
#include "protocol/socks5.hpp"
#include "protocol/stream.hpp"

namespace stanzad {

struct ConnectionEvents {
    std::function<void(const xmpp::Online&)> online;
    std::function<void(xmpp::Stanza&)> stanza;
    std::function<void(const std::vector<std::string>& tags)> acked;  // XEP-0198
    // The resumable XEP-0198 session changed (nullopt: none); for the store.
    std::function<void(const std::optional<xmpp::SmCheckpoint>&)> checkpoint;
    // Final. `tls_verify` is set when the server's certificate was refused.
    std::function<void(const xmpp::Closed&, bool tls_verify)> closed;
    // Probe connections only: the server's certificate, once the TLS handshake is done
    // (`closed` follows). `server` says where: "example.org:5222 (STARTTLS) at 127.0.0.1:5222".
    std::function<void(const tls::PeerCertificate&, const std::string& server)> probed;
    // XEP-0484: a FAST token to keep for the next login, or to forget.
    std::function<void(const xmpp::FastTokenChanged&)> fast_token;
};

// Where the connection goes: a resumption's `location` (XEP-0198 §5), else the account's.
struct ConnectOptions {
    std::string host;          // "" for the account's choice
    int port = 0;
    bool direct_tls = false;   // with `host`: how the previous connection there spoke TLS
    // Connect, finish the TLS handshake, report `probed`, close; never authenticate.
    bool probe = false;
    std::string key_password;  // of the account's encrypted client_key
    // The account's TLS context from an earlier connection (trust store and client
    // certificate loaded); null: load them. Loading the system trust store costs more CPU
    // than the whole rest of a login, so an account loads it once.
    std::shared_ptr<SSL_CTX> tls_context;
};

class XmppConnection {
public:
    // `options` carries the credentials and the session to resume.
    XmppConnection(uv_loop_t* loop, Resolver& resolver, const config::Account& account, xmpp::StreamOptions options,
                   std::string log_prefix, ConnectionEvents events, ConnectOptions where = {});
    ~XmppConnection();
    XmppConnection(const XmppConnection&) = delete;
    XmppConnection& operator=(const XmppConnection&) = delete;

    void start();
    // Closes the stream cleanly (RFC 6120 §4.4); reports closed when done or timed out.
    void close();
    // Sends a stanza on the online stream; `tag` comes back through `acked`. False, and
    // nothing sent, when the stream is not online (closing, or closed by the server).
    bool send(std::string_view xml, std::string tag = {});
    bool stream_online() const { return stream_.state() == xmpp::StreamState::Online; }
    // After closed: the XEP-0198 session the next connection may resume.
    std::optional<xmpp::SmSession> take_resumable() { return stream_.take_resumable(); }
    // Answers iq requests addressed to us with this payload (see ClientStream::on_iq).
    void on_iq(std::string_view ns, std::string_view element, xmpp::IqHandler handler) {
        stream_.on_iq(ns, element, std::move(handler));
    }
    void add_feature(std::string_view var) { stream_.add_feature(var); }
    // XEP-0115: the <c/> element for our presences.
    std::string caps_element() const { return stream_.caps_element(); }

    bool finished() const { return finished_; }
    // Once connected: "example.org:5222 (STARTTLS) at 127.0.0.1:5222", "... at the proxy ...".
    // The TLS context this connection made or was given; null until start() succeeded.
    std::shared_ptr<SSL_CTX> tls_context() const { return tls_ctx_; }
    std::string endpoint() const { return targets_.empty() ? "" : where() + connected_at_; }
    // The target in use (or last tried), for the resumption of this session elsewhere.
    bool direct_tls() const { return direct_tls_; }

private:
    struct Attempt;  // one TCP connect of the race; may outlive us
    static void on_connected(uv_connect_t* req, int status);
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
    static void on_timer(uv_timer_t* timer);

    void plan();
    void lookup_srv();
    void srv_answered();
    void try_target();
    void target_failed(std::string reason);
    void race(std::vector<Address> addresses);
    void start_attempt();
    void abandon_attempts();
    void race_won(const Address& address);
    void race_failed();
    void socks_received(std::string_view bytes);
    void begin_stream(std::string_view first_bytes);
    tls::SessionOptions tls_options() const;
    std::string where() const;  // "example.org:5222 (STARTTLS)"
    void received(std::string_view bytes);
    void pump();
    void flush();
    void flush_before_commit();
    void write_raw(std::string data);
    void fail(xmpp::Closed::Kind kind, std::string reason, bool tls_verify = false);
    void close_transport(bool graceful);
    void arm_timer(std::optional<xmpp::TimePoint> when);

    uv_loop_t* loop_;
    Resolver& resolver_;
    const config::Account account_;
    std::string prefix_;
    ConnectionEvents events_;
    ConnectOptions where_;
    std::string domain_;            // the JID's: TLS checks it, SRV asks for it
    xmpp::ClientStream stream_;
    std::unique_ptr<tls::Session> tls_;
    std::shared_ptr<SSL_CTX> tls_ctx_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // resolver answers check it
    std::mt19937 random_{std::random_device{}()};

    // Where to go, in order, and how far we got.
    std::vector<dns::Target> targets_;
    std::size_t target_ = 0;
    bool direct_tls_ = false;
    int srv_pending_ = 0;
    std::vector<dns::SrvRecord> srv_direct_, srv_starttls_;
    std::string last_error_;
    // The race of one target's (or the proxy's) addresses.
    std::vector<Address> race_addresses_;
    std::size_t race_next_ = 0;
    std::vector<Attempt*> attempts_;
    std::string race_error_;
    uv::Timer race_timer_;
    // SOCKS5: the host name (socks5h) or address (socks5) the proxy connects to.
    std::unique_ptr<socks5::Client> socks_;
    std::string proxy_text_;        // "127.0.0.1:9050"
    std::string connected_at_;      // " at ADDRESS" of the race's winner, or " through the proxy P"

    uv::Handle<uv_tcp_t> tcp_;
    uv::Timer timer_;
    bool handshake_timer_ = false;  // the timer bounds the SOCKS5 or direct TLS handshake
    bool finished_ = false;
    bool flush_held_ = false;  // flush_before_commit: a flush waits for the batch's end
    std::optional<xmpp::SmCheckpoint> checkpoint_;  // as last reported
};

}  // namespace stanzad
