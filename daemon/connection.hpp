#pragma once
// XmppConnection: one attempt to be online with one account. Resolves the host, connects
// TCP, runs TLS (STARTTLS or direct) and the protocol's ClientStream, and reports to its
// owner. When it reports closed it is finished; the owner drops it on a later loop turn.
// Loop thread only. Memory: one read buffer, the stream's bounded framer, unwritten output.
#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "daemon/tls.hpp"
#include "daemon/uv.hpp"
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
};

class XmppConnection {
public:
    // `options` carries the credentials and the session to resume; `host`/`port` override
    // the account's (XEP-0198 location) when not empty/0.
    XmppConnection(uv_loop_t* loop, const config::Account& account, xmpp::StreamOptions options,
                   std::string log_prefix, ConnectionEvents events, std::string host = {}, int port = 0);
    ~XmppConnection();
    XmppConnection(const XmppConnection&) = delete;
    XmppConnection& operator=(const XmppConnection&) = delete;

    void start();
    // Closes the stream cleanly (RFC 6120 §4.4); reports closed when done or timed out.
    void close();
    // Sends a stanza on the online stream; `tag` comes back through `acked`.
    void send(std::string_view xml, std::string tag = {});
    // After closed: the XEP-0198 session the next connection may resume.
    std::optional<xmpp::SmSession> take_resumable() { return stream_.take_resumable(); }
    // Answers iq requests addressed to us with this payload (see ClientStream::on_iq).
    void on_iq(std::string_view ns, std::string_view element, xmpp::IqHandler handler) {
        stream_.on_iq(ns, element, std::move(handler));
    }
    void add_feature(std::string_view var) { stream_.add_feature(var); }
    // XEP-0115: the <c/> element for our presences.
    std::string caps_element() const { return stream_.caps_element(); }

    const std::string& host() const { return host_; }
    int port() const { return port_; }

private:
    struct Request;  // a libuv request that may outlive us
    static void on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res);
    static void on_connected(uv_connect_t* req, int status);
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
    static void on_timer(uv_timer_t* timer);

    void connect_next();
    void connected();
    void received(std::string_view bytes);
    void pump();
    void flush();
    void write_raw(std::string data);
    void fail(xmpp::Closed::Kind kind, std::string reason, bool tls_verify = false);
    void close_transport(bool graceful);
    void arm_timer(std::optional<xmpp::TimePoint> when);

    uv_loop_t* loop_;
    const config::Account account_;
    std::string prefix_;
    ConnectionEvents events_;
    std::string host_;
    int port_;
    bool direct_tls_;
    xmpp::ClientStream stream_;
    std::unique_ptr<tls::Session> tls_;
    std::shared_ptr<SSL_CTX> tls_ctx_;

    uv_getaddrinfo_t* resolving_ = nullptr;
    uv_connect_t* connecting_ = nullptr;
    addrinfo* addresses_ = nullptr;
    addrinfo* next_address_ = nullptr;
    std::string last_connect_error_;
    uv::Handle<uv_tcp_t> tcp_;
    uv::Timer timer_;
    bool connect_timer_ = false;    // the timer runs for the TCP connect, not the stream
    bool handshake_timer_ = false;  // ... or for a direct TLS handshake
    bool finished_ = false;
    std::optional<xmpp::SmCheckpoint> checkpoint_;  // as last reported
    std::string tls_verify_error_;
};

}  // namespace stanzad
