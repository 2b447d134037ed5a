#include "daemon/connection.hpp"

#include "daemon/log.hpp"

namespace stanzad {
namespace {

constexpr std::chrono::milliseconds connect_timeout{10'000};
constexpr std::chrono::milliseconds handshake_timeout{30'000};  // direct TLS, before the stream

std::string address_text(const sockaddr* sa) {
    char buf[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET)
        uv_ip4_name(reinterpret_cast<const sockaddr_in*>(sa), buf, sizeof buf);
    else if (sa->sa_family == AF_INET6)
        uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(sa), buf, sizeof buf);
    return buf;
}

}  // namespace

XmppConnection::XmppConnection(uv_loop_t* loop, const config::Account& account, xmpp::StreamOptions options,
                               std::string log_prefix, ConnectionEvents events, std::string host, int port)
    : loop_(loop),
      account_(account),
      prefix_(std::move(log_prefix)),
      events_(std::move(events)),
      host_(!host.empty() ? host : account.host.empty() ? account.jid.domain() : account.host),
      port_(port ? port : account.port ? account.port : account.tls == config::TlsMode::Direct ? 5223 : 5222),
      direct_tls_(account.tls == config::TlsMode::Direct),
      stream_(std::move(options)),
      timer_(loop) {
    timer_->data = this;
    if (logs::wire().should_log(spdlog::level::trace)) {
        stream_.set_wire_trace([this](bool out, std::string_view xml) {
            logs::wire().trace("{}{} {}", prefix_, out ? "SEND" : "RECV", xml);
        });
    }
}

XmppConnection::~XmppConnection() {
    // Requests in flight call back later; tell them we are gone.
    if (resolving_) {
        resolving_->data = nullptr;
        uv_cancel(reinterpret_cast<uv_req_t*>(resolving_));
    }
    if (connecting_) connecting_->data = nullptr;
    if (addresses_) uv_freeaddrinfo(addresses_);
    if (tcp_) close_transport(false);
}

void XmppConnection::start() {
    auto ctx = tls::make_client_context(account_.ca_file);
    if (!ctx) {
        fail(xmpp::Closed::Kind::Fatal, ctx.error().message);
        return;
    }
    tls_ctx_ = std::move(ctx).value();
    logs::daemon().info("{}connecting to {}:{}", prefix_, host_, port_);
    resolving_ = new uv_getaddrinfo_t{};
    resolving_->data = this;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = uv_getaddrinfo(loop_, resolving_, on_resolved, host_.c_str(), std::to_string(port_).c_str(), &hints);
    if (rc != 0) {
        delete std::exchange(resolving_, nullptr);
        fail(xmpp::Closed::Kind::Error, "cannot resolve " + host_ + ": " + uv_strerror(rc));
    }
}

void XmppConnection::on_resolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
    auto* self = static_cast<XmppConnection*>(req->data);
    delete req;
    if (!self) {
        if (res) uv_freeaddrinfo(res);
        return;
    }
    self->resolving_ = nullptr;
    if (status != 0) {
        self->fail(xmpp::Closed::Kind::Error, "cannot resolve " + self->host_ + ": " + uv_strerror(status));
        return;
    }
    self->addresses_ = self->next_address_ = res;
    self->connect_next();
}

void XmppConnection::connect_next() {
    // Addresses in resolver order, one at a time, each with its own timeout.
    if (!next_address_) {
        fail(xmpp::Closed::Kind::Error, "cannot connect to " + host_ + ":" + std::to_string(port_) + ": " +
                                            (last_connect_error_.empty() ? "no address" : last_connect_error_));
        return;
    }
    const addrinfo* ai = next_address_;
    next_address_ = next_address_->ai_next;
    tcp_.reset();
    auto* tcp = new uv_tcp_t{};
    uv_tcp_init(loop_, tcp);
    tcp->data = this;
    tcp_ = uv::Handle<uv_tcp_t>::adopt(tcp);
    uv_tcp_nodelay(tcp, 1);
    connecting_ = new uv_connect_t{};
    connecting_->data = this;
    int rc = uv_tcp_connect(connecting_, tcp, ai->ai_addr, on_connected);
    if (rc != 0) {
        delete std::exchange(connecting_, nullptr);
        last_connect_error_ = address_text(ai->ai_addr) + ": " + uv_strerror(rc);
        connect_next();
        return;
    }
    last_connect_error_ = address_text(ai->ai_addr);
    connect_timer_ = true;
    arm_timer(xmpp::Clock::now() + connect_timeout);
}

void XmppConnection::on_connected(uv_connect_t* req, int status) {
    auto* self = static_cast<XmppConnection*>(req->data);
    delete req;
    if (!self) return;
    self->connecting_ = nullptr;
    if (status == UV_ECANCELED) return;  // we closed this socket ourselves
    if (status != 0) {
        self->last_connect_error_ += std::string(": ") + uv_strerror(status);
        self->connect_next();
        return;
    }
    self->connected();
}

void XmppConnection::connected() {
    connect_timer_ = false;
    arm_timer(std::nullopt);
    if (direct_tls_) {
        // The stream and its deadlines start after the handshake; bound the handshake itself.
        handshake_timer_ = true;
        arm_timer(xmpp::Clock::now() + handshake_timeout);
    }
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(tcp_.get()),
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
            static char storage[65536];  // one thread; each read is consumed before the next
            *buf = uv_buf_init(storage, sizeof storage);
        },
        on_read);
    if (direct_tls_) {
        tls_ = std::make_unique<tls::Session>(tls_ctx_, account_.jid.domain());
        received({});  // sends the ClientHello
    } else {
        stream_.start(xmpp::Clock::now());
        pump();
    }
}

void XmppConnection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* self = static_cast<XmppConnection*>(stream->data);
    if (!self || nread == 0) return;
    if (nread < 0) {
        self->stream_.transport_closed(nread == UV_EOF ? "the server closed the connection"
                                                       : std::string("connection lost: ") + uv_strerror(static_cast<int>(nread)));
        self->pump();
        return;
    }
    self->received(std::string_view(buf->base, static_cast<std::size_t>(nread)));
}

void XmppConnection::received(std::string_view bytes) {
    auto now = xmpp::Clock::now();
    if (!tls_) {
        stream_.receive(bytes, now);
        pump();
        return;
    }
    bool was_done = tls_->handshake_done();
    tls_->receive(bytes);
    if (auto st = tls_->advance(); !st) {
        flush();  // a TLS alert may be waiting to go out
        bool verify = st.error().code == "tls-verify";
        fail(xmpp::Closed::Kind::Error,
             verify ? "TLS certificate verification failed: " + st.error().message : st.error().message, verify);
        return;
    }
    if (!was_done && tls_->handshake_done()) {
        logs::daemon().debug("{}TLS established: {}", prefix_, tls_->description());
        handshake_timer_ = false;
        if (direct_tls_) stream_.start(now);
        else stream_.tls_established(now);
    }
    if (auto plain = tls_->take_plaintext(); !plain.empty()) stream_.receive(plain, now);
    if (tls_->peer_closed()) stream_.transport_closed("the server closed the TLS session");
    pump();
}

void XmppConnection::pump() {
    // Events first, output after: what we answer to the server (a pong now, XEP-0198 acks
    // later) leaves only once the stanzas received before it are handled and stored.
    while (!finished_) {
        auto event = stream_.next_event();
        if (!event) break;
        if (std::holds_alternative<xmpp::StartTls>(*event)) {
            flush();  // the plaintext before the handshake
            tls_ = std::make_unique<tls::Session>(tls_ctx_, account_.jid.domain());
            received({});  // sends the ClientHello; recursion ends: no StartTls twice
            return;
        }
        if (auto* online = std::get_if<xmpp::Online>(&*event)) {
            if (events_.online) events_.online(*online);
        } else if (auto* in = std::get_if<xmpp::StanzaReceived>(&*event)) {
            if (events_.stanza) events_.stanza(in->stanza);
        } else if (auto* acked = std::get_if<xmpp::Acked>(&*event)) {
            if (events_.acked) events_.acked(acked->tags);
        } else if (auto* closed = std::get_if<xmpp::Closed>(&*event)) {
            flush();
            if (tls_) {
                tls_->shutdown();
                flush();
            }
            close_transport(/*graceful=*/true);
            finished_ = true;
            arm_timer(std::nullopt);
            if (events_.closed) events_.closed(*closed, false);
            return;  // the owner may drop us now (on a later loop turn)
        }
    }
    // After the events of this read are handled: what the store keeps to resume after a restart.
    if (auto cp = stream_.checkpoint(); !finished_ && cp && cp != checkpoint_) {
        checkpoint_ = cp;
        if (events_.checkpoint) events_.checkpoint(cp);
    }
    flush();
    if (!finished_) arm_timer(stream_.next_deadline());
}

void XmppConnection::flush() {
    std::string out = stream_.take_output();
    if (tls_) {
        if (!out.empty()) {
            if (auto st = tls_->write(out); !st) {
                fail(xmpp::Closed::Kind::Error, st.error().message);
                return;
            }
        }
        out = tls_->take_ciphertext();
    }
    if (!out.empty()) write_raw(std::move(out));
}

void XmppConnection::write_raw(std::string data) {
    if (tcp_) uv::write(reinterpret_cast<uv_stream_t*>(tcp_.get()), std::move(data));
}

void XmppConnection::send(std::string_view xml, std::string tag) {
    stream_.send(xml, xmpp::Clock::now(), std::move(tag));
    flush();
    arm_timer(stream_.next_deadline());  // an ack request may now be due
}

void XmppConnection::close() {
    if (finished_) return;
    if (stream_.state() == xmpp::StreamState::Idle) {  // still resolving or connecting
        fail(xmpp::Closed::Kind::Requested, "closed before connecting");
        return;
    }
    stream_.close(xmpp::Clock::now());
    pump();
}

void XmppConnection::fail(xmpp::Closed::Kind kind, std::string reason, bool tls_verify) {
    if (finished_) return;
    finished_ = true;
    arm_timer(std::nullopt);
    close_transport(false);
    if (events_.closed) events_.closed(xmpp::Closed{kind, std::move(reason), false}, tls_verify);
}

namespace {

// A graceful close that cannot hang: uv_shutdown lets queued writes (our last words,
// close_notify) reach the wire, and a timer closes the socket anyway if the peer stops
// reading. Owns itself; the shutdown callback runs exactly once (done or cancelled).
struct GracefulClose {
    static constexpr uint64_t limit_ms = 2000;
    uv_shutdown_t req{};
    uv_timer_t timer{};
    uv_tcp_t* tcp = nullptr;
    int outstanding = 2;  // the shutdown request and the timer

    static void release(GracefulClose* g) {
        if (--g->outstanding == 0) delete g;
    }
    static void close_tcp(uv_tcp_t* tcp) {
        if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(tcp)))
            uv_close(reinterpret_cast<uv_handle_t*>(tcp), uv::Handle<uv_tcp_t>::free_on_close);
    }
    static bool start(uv_loop_t* loop, uv_tcp_t* tcp) {
        auto* g = new GracefulClose;
        g->tcp = tcp;
        g->req.data = g;
        if (uv_shutdown(&g->req, reinterpret_cast<uv_stream_t*>(tcp), [](uv_shutdown_t* r, int) {
                auto* g = static_cast<GracefulClose*>(r->data);
                close_tcp(g->tcp);
                uv_close(reinterpret_cast<uv_handle_t*>(&g->timer),
                         [](uv_handle_t* h) { release(static_cast<GracefulClose*>(h->data)); });
                release(g);
            }) != 0) {
            delete g;
            return false;
        }
        uv_timer_init(loop, &g->timer);
        g->timer.data = g;
        uv_timer_start(&g->timer, [](uv_timer_t* t) { close_tcp(static_cast<GracefulClose*>(t->data)->tcp); },
                       limit_ms, 0);
        return true;
    }
};

}  // namespace

void XmppConnection::close_transport(bool graceful) {
    if (!tcp_) return;
    uv_tcp_t* tcp = tcp_.release();
    tcp->data = nullptr;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp));
    if (graceful && uv_is_writable(reinterpret_cast<uv_stream_t*>(tcp)) && GracefulClose::start(loop_, tcp)) return;
    uv_close(reinterpret_cast<uv_handle_t*>(tcp), uv::Handle<uv_tcp_t>::free_on_close);
}

void XmppConnection::arm_timer(std::optional<xmpp::TimePoint> when) {
    if (!when) {
        uv_timer_stop(timer_.get());
        return;
    }
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(*when - xmpp::Clock::now()).count();
    uv_timer_start(timer_.get(), on_timer, ms > 0 ? static_cast<uint64_t>(ms) : 0, 0);
}

void XmppConnection::on_timer(uv_timer_t* timer) {
    auto* self = static_cast<XmppConnection*>(timer->data);
    if (!self || self->finished_) return;
    if (self->handshake_timer_) {
        self->fail(xmpp::Closed::Kind::Error, "the TLS handshake did not complete within " +
                                                  std::to_string(handshake_timeout.count() / 1000) + " s");
        return;
    }
    if (self->connect_timer_) {
        self->last_connect_error_ += ": timed out";
        if (self->connecting_) self->connecting_->data = nullptr;
        self->connecting_ = nullptr;
        self->connect_next();
        return;
    }
    self->stream_.handle_timeout(xmpp::Clock::now());
    self->pump();
}

}  // namespace stanzad
