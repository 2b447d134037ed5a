// XmppConnection (connection.hpp): its start, the TLS layer and the read and write path
// between the socket and the ClientStream, the stream's events to the owner, its timer,
// and the close. Finding and reaching the server (SRV, the address race, SOCKS5) is in
// connection_connect.cpp.
#include "daemon/connection.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "daemon/connection_detail.hpp"
#include "daemon/group_commit.hpp"
#include "daemon/log.hpp"

namespace stanzad {
using detail::handshake_timeout;
using detail::host_port;
using detail::socks_timeout;

XmppConnection::XmppConnection(uv_loop_t* loop, Resolver& resolver, const config::Account& account,
                               xmpp::StreamOptions options, std::string log_prefix, ConnectionEvents events,
                               ConnectOptions where)
    : loop_(loop),
      resolver_(resolver),
      account_(account),
      prefix_(std::move(log_prefix)),
      events_(std::move(events)),
      where_(std::move(where)),
      domain_(account.jid.domain()),
      stream_(std::move(options)),
      race_timer_(loop),
      timer_(loop) {
    timer_->data = this;
    race_timer_->data = this;
    if (account_.proxy) proxy_text_ = host_port(account_.proxy->host, account_.proxy->port);
    if (logs::wire().should_log(spdlog::level::trace)) {
        stream_.set_wire_trace([this](bool out, std::string_view xml) {
            logs::wire().trace("{}{} {}", prefix_, out ? "SEND" : "RECV", xml);
        });
    }
}

XmppConnection::~XmppConnection() {
    abandon_attempts();
    if (tcp_) close_transport(false);
}

void XmppConnection::start() {
    if (where_.tls_context && !where_.probe) {
        tls_ctx_ = where_.tls_context;
        plan();
        return;
    }
    auto ctx = tls::make_client_context(account_.ca_file);
    if (!ctx) {
        fail(xmpp::Closed::Kind::Fatal, ctx.error().message);
        return;
    }
    if (!account_.client_cert.empty() && !where_.probe) {
        // XEP-0178: the certificate goes into every TLS handshake, STARTTLS and direct
        // (never into a probe, which may talk to anyone).
        if (auto st = tls::use_client_certificate(ctx.value().get(), account_.client_cert, account_.client_key,
                                                  where_.key_password);
            !st) {
            fail(xmpp::Closed::Kind::Fatal, st.error().message);
            return;
        }
    }
    tls_ctx_ = std::move(ctx).value();
    plan();
}

tls::SessionOptions XmppConnection::tls_options() const {
    tls::SessionOptions o;
    o.verify_name = domain_;  // RFC 6120 §13.7.2.1: never the SRV target
    o.alpn_xmpp_client = direct_tls_;
    o.pins = account_.tls_pins;
    o.probe = where_.probe;
    return o;
}

void XmppConnection::begin_stream(std::string_view first_bytes) {
    if (direct_tls_) {
        // The stream and its deadlines start after the handshake; bound the handshake itself.
        handshake_timer_ = true;
        arm_timer(xmpp::Clock::now() + handshake_timeout);
        tls_ = std::make_unique<tls::Session>(tls_ctx_, tls_options());
        received(first_bytes);  // sends the ClientHello
    } else {
        stream_.start(xmpp::Clock::now());
        pump();
        if (!first_bytes.empty() && !finished_) received(first_bytes);
    }
}

namespace {

// Acknowledges what was read at once. The server may hold its next stanza until the last
// one it sent is acknowledged (Nagle's algorithm: Prosody leaves it on), and when we answer
// nothing (an XEP-0198 <a/> we read) our kernel delays that acknowledgement by up to 40 ms:
// one echo in fifty took 45 ms instead of 3 (docs/performance.md). Linux leaves quick-ack
// mode by itself, so it is asked for again at every read (tcp(7) TCP_QUICKACK).
void quick_ack(uv_stream_t* stream) {
    uv_os_fd_t fd;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(stream), &fd) != 0) return;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

}  // namespace

void XmppConnection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* self = static_cast<XmppConnection*>(stream->data);
    if (!self || nread == 0) return;
    GroupCommit::Scope batch(stream->loop);  // all stanzas of this read: one commit (issue 15)
    if (nread < 0 && self->socks_) {
        self->fail(xmpp::Closed::Kind::Error, "the proxy " + self->proxy_text_ + " closed the connection during the SOCKS5 handshake" +
                                                  (nread == UV_EOF ? "" : std::string(": ") + uv_strerror(static_cast<int>(nread))));
        return;
    }
    if (nread > 0 && self->socks_) {
        self->socks_received(std::string_view(buf->base, static_cast<std::size_t>(nread)));
        return;
    }
    if (nread > 0) quick_ack(stream);
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
        // A key that matches no pin is final: only the user can say which key to trust.
        bool pin = st.error().code == "tls-pin";
        fail(pin ? xmpp::Closed::Kind::Fatal : xmpp::Closed::Kind::Error,
             verify || pin ? "TLS certificate verification failed: " + st.error().message : st.error().message, verify);
        return;
    }
    if (!was_done && tls_->handshake_done()) {
        logs::daemon().debug("{}TLS established: {}", prefix_, tls_->description());
        handshake_timer_ = false;
        stream_.set_tls_channel(tls_->channel_bindings());  // SCRAM-*-PLUS (RFC 5802 §6)
        if (where_.probe) {
            // Nothing of ours has been sent inside TLS: report what the server showed and go.
            if (events_.probed) events_.probed(tls_->peer(), endpoint());
            fail(xmpp::Closed::Kind::Requested, "probe done");
            return;
        }
        if (direct_tls_) {
            stream_.set_direct_tls();
            stream_.start(now);
        } else {
            stream_.tls_established(now);
        }
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
            tls_ = std::make_unique<tls::Session>(tls_ctx_, tls_options());
            received({});  // sends the ClientHello; recursion ends: no StartTls twice
            return;
        }
        if (auto* online = std::get_if<xmpp::Online>(&*event)) {
            if (events_.online) events_.online(*online);
        } else if (auto* in = std::get_if<xmpp::StanzaReceived>(&*event)) {
            if (events_.stanza) events_.stanza(in->stanza);
        } else if (auto* acked = std::get_if<xmpp::Acked>(&*event)) {
            if (events_.acked) events_.acked(acked->tags);
        } else if (auto* token = std::get_if<xmpp::FastTokenChanged>(&*event)) {
            if (events_.fast_token) events_.fast_token(*token);
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
    // The handshake timer bounds a SOCKS5 or direct TLS handshake until it is done.
    if (!finished_ && !handshake_timer_) arm_timer(stream_.next_deadline());
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

void XmppConnection::flush_before_commit() {
    // Inside a group commit the stanzas sent leave when it ends anyway (held until the
    // commit): encrypted there together, each TLS record carries up to 16 KiB of them instead
    // of one stanza (issue 15: an SSL_write per stanza was about 10,000 instructions of a sent
    // message, and one more record for the server to open). Any flush before then (a read's
    // acks, say) takes them along, in the stream's order; so does this one, if still needed.
    auto* gc = GroupCommit::of(loop_);
    if (!gc || !gc->holding() || !tls_) return flush();
    if (flush_held_) return;
    flush_held_ = true;
    gc->before_commit([this, alive = std::weak_ptr<bool>(alive_)] {
        if (alive.expired()) return;
        flush_held_ = false;
        if (!finished_) flush();
    });
}

bool XmppConnection::send(std::string_view xml, std::string tag) {
    if (!stream_.send(xml, xmpp::Clock::now(), std::move(tag))) return false;
    flush_before_commit();
    if (!handshake_timer_) arm_timer(stream_.next_deadline());  // an ack request may now be due
    return true;
}

void XmppConnection::close() {
    if (finished_) return;
    if (stream_.state() == xmpp::StreamState::Idle || socks_) {  // still resolving or connecting
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
    uv_timer_stop(race_timer_.get());
    abandon_attempts();
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
    if (!graceful) {
        uv_close(reinterpret_cast<uv_handle_t*>(tcp), uv::Handle<uv_tcp_t>::free_on_close);
        return;
    }
    // After our last words, which may be held until the read being handled is committed.
    uv::after_writes(loop_, [loop = loop_, tcp] {
        if (uv_is_writable(reinterpret_cast<uv_stream_t*>(tcp)) && GracefulClose::start(loop, tcp)) return;
        GracefulClose::close_tcp(tcp);
    });
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
        if (self->socks_)
            self->fail(xmpp::Closed::Kind::Error, "the proxy " + self->proxy_text_ + " did not connect within " +
                                                      std::to_string(socks_timeout.count() / 1000) + " s");
        else
            self->fail(xmpp::Closed::Kind::Error, "the TLS handshake did not complete within " +
                                                      std::to_string(handshake_timeout.count() / 1000) + " s");
        return;
    }
    self->stream_.handle_timeout(xmpp::Clock::now());
    self->pump();
}

}  // namespace stanzad
