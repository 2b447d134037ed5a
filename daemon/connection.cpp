#include "daemon/connection.hpp"

#include "daemon/group_commit.hpp"
#include "daemon/log.hpp"

namespace stanzad {
namespace {

constexpr std::chrono::milliseconds connect_timeout{10'000};    // the last address of a race
constexpr std::chrono::milliseconds attempt_delay{250};         // RFC 8305 §5 "Connection Attempt Delay"
constexpr std::chrono::milliseconds handshake_timeout{30'000};  // direct TLS, before the stream
constexpr std::chrono::milliseconds socks_timeout{60'000};      // Tor may need a new circuit

std::string host_port(const std::string& host, int port) {
    bool v6 = host.find(':') != std::string::npos && host.front() != '[';
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string describe(const dns::Target& t) {
    return host_port(t.host, t.port) + (t.direct_tls ? " (direct TLS" : " (STARTTLS") +
           (t.source.starts_with("SRV") ? ", SRV)" : ")");
}

}  // namespace

// One TCP connect of a race. Freed in its connect callback, which libuv always calls
// (with UV_ECANCELED when we closed the socket first); `owner` is null once abandoned.
struct XmppConnection::Attempt {
    XmppConnection* owner;
    uv_tcp_t* tcp;
    uv_connect_t req{};
    Address address;
};

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

// RFC 6120 §3.2.1: SRV decides only when nothing else does. A resumption goes to the
// location the server gave; an account with host, port or a fixed TLS mode goes there;
// with a socks5h proxy we make no DNS query at all (not even SRV, which would leak the
// domain to the local resolver): DOMAIN:5222, or 5223 with direct TLS.
void XmppConnection::plan() {
    bool direct = account_.tls == config::TlsMode::Direct;
    auto fixed = [&](std::string host, int port, bool direct_tls, const char* source) {
        targets_ = {dns::Target{std::move(host), static_cast<std::uint16_t>(port ? port : direct_tls ? 5223 : 5222),
                                direct_tls, source}};
        try_target();
    };
    if (!where_.host.empty()) return fixed(where_.host, where_.port, where_.direct_tls, "location");
    if (!account_.host.empty() || account_.port || account_.tls != config::TlsMode::Auto ||
        (account_.proxy && account_.proxy->remote_dns))
        return fixed(account_.host.empty() ? domain_ : account_.host, account_.port, direct, "config");
    lookup_srv();
}

void XmppConnection::lookup_srv() {
    // XEP-0368 §3: both services are asked at once; the answers are merged by priority.
    srv_pending_ = 2;
    std::weak_ptr<void> alive = alive_;
    for (bool direct : {true, false}) {
        std::string name = (direct ? "_xmpps-client._tcp." : "_xmpp-client._tcp.") + domain_;
        resolver_.srv(name, alive, [this, direct, name](xmpp::Result<std::vector<dns::SrvRecord>> r) {
            if (!r) logs::daemon().warn("{}{}; trying the other service and the fallback", prefix_, r.error().message);
            else (direct ? srv_direct_ : srv_starttls_) = std::move(r).value();
            if (--srv_pending_ == 0) srv_answered();
        });
    }
}

void XmppConnection::srv_answered() {
    if (finished_) return;
    targets_ = dns::xmpp_targets(domain_, std::move(srv_direct_), std::move(srv_starttls_), random_);
    if (targets_.empty()) {
        fail(xmpp::Closed::Kind::Error,
             domain_ + " has no XMPP service (its SRV records say \".\"); set host and port if you know better");
        return;
    }
    if (targets_.front().source == "fallback") {
        logs::daemon().info("{}no SRV records for {}; using {}:5222 (STARTTLS)", prefix_, domain_, domain_);
    } else {
        std::string list;
        for (const auto& t : targets_) list += (list.empty() ? "" : ", ") + describe(t);
        logs::daemon().info("{}targets for {}: {}", prefix_, domain_, list);
    }
    try_target();
}

std::string XmppConnection::where() const {
    const auto& t = targets_[target_];
    return host_port(t.host, t.port) + (t.direct_tls ? " (direct TLS)" : " (STARTTLS)");
}

void XmppConnection::try_target() {
    if (finished_) return;
    const dns::Target& t = targets_[target_];
    direct_tls_ = t.direct_tls;
    std::weak_ptr<void> alive = alive_;
    auto connect_to = [this, alive](const std::string& host, std::uint16_t port) {
        resolver_.addresses(host, port, alive, [this](xmpp::Result<std::vector<Address>> r) {
            if (finished_) return;
            if (!r) {
                if (account_.proxy) fail(xmpp::Closed::Kind::Error, "cannot reach the proxy " + proxy_text_ + ": " + r.error().message);
                else target_failed(r.error().message);
                return;
            }
            race(std::move(r).value());
        });
    };
    if (!account_.proxy) {
        logs::daemon().info("{}connecting to {}", prefix_, where());
        return connect_to(t.host, t.port);
    }
    logs::daemon().info("{}connecting to {} through the proxy {}", prefix_, where(), proxy_text_);
    const auto& proxy = *account_.proxy;
    if (proxy.remote_dns || Resolver::is_literal(t.host)) {
        // socks5h: the proxy gets the name (RFC 1928 ATYP 3), we resolve nothing.
        return connect_to(proxy.host, proxy.port);
    }
    // socks5: we resolve the target, the proxy gets its first address.
    resolver_.addresses(t.host, t.port, alive, [this, connect_to, proxy](xmpp::Result<std::vector<Address>> r) {
        if (finished_) return;
        if (!r) return target_failed(r.error().message);
        std::string text = r.value().front().text();
        targets_[target_].host = text.substr(0, text.rfind(':'));
        if (targets_[target_].host.starts_with('[')) targets_[target_].host = targets_[target_].host.substr(1, targets_[target_].host.size() - 2);
        connect_to(proxy.host, proxy.port);
    });
}

void XmppConnection::target_failed(std::string reason) {
    if (finished_) return;
    last_error_ = std::move(reason);
    if (target_ + 1 < targets_.size()) {
        logs::daemon().info("{}{} failed: {}; trying the next target", prefix_,
                            host_port(targets_[target_].host, targets_[target_].port), last_error_);
        ++target_;
        try_target();
        return;
    }
    fail(xmpp::Closed::Kind::Error, (account_.proxy ? "" : "cannot connect to " + host_port(targets_[target_].host, targets_[target_].port) + ": ") + last_error_);
}

// RFC 8305 §5: start with the first address; each further one after attempt_delay, or at
// once when an attempt fails; the first TCP connection wins and the others are closed.
void XmppConnection::race(std::vector<Address> addresses) {
    race_addresses_ = std::move(addresses);
    race_next_ = 0;
    race_error_.clear();
    start_attempt();
}

void XmppConnection::start_attempt() {
    while (race_next_ < race_addresses_.size()) {
        auto* a = new Attempt{this, new uv_tcp_t{}, {}, race_addresses_[race_next_++]};
        uv_tcp_init(loop_, a->tcp);
        a->req.data = a;
        int rc = uv_tcp_connect(&a->req, a->tcp, reinterpret_cast<const sockaddr*>(&a->address.addr), on_connected);
        if (rc != 0) {
            race_error_ = a->address.text() + ": " + uv_strerror(rc);
            uv_close(reinterpret_cast<uv_handle_t*>(a->tcp), uv::Handle<uv_tcp_t>::free_on_close);
            delete a;
            continue;
        }
        logs::daemon().debug("{}trying {}", prefix_, a->address.text());
        attempts_.push_back(a);
        bool more = race_next_ < race_addresses_.size();
        uv_timer_start(
            race_timer_.get(),
            [](uv_timer_t* t) {
                auto* self = static_cast<XmppConnection*>(t->data);
                if (!self || self->finished_) return;
                if (self->race_next_ < self->race_addresses_.size()) return self->start_attempt();
                self->race_error_ += self->race_error_.empty() ? "timed out" : "; timed out";
                self->abandon_attempts();
                self->race_failed();
            },
            static_cast<std::uint64_t>((more ? attempt_delay : connect_timeout).count()), 0);
        return;
    }
    // Every address is tried: the ones still connecting get connect_timeout from now (also
    // when the last ones failed at once, which left the stagger timer behind).
    if (attempts_.empty()) {
        uv_timer_stop(race_timer_.get());
        race_failed();
        return;
    }
    uv_timer_start(
        race_timer_.get(),
        [](uv_timer_t* t) {
            auto* self = static_cast<XmppConnection*>(t->data);
            if (!self || self->finished_) return;
            self->race_error_ += self->race_error_.empty() ? "timed out" : "; timed out";
            self->abandon_attempts();
            self->race_failed();
        },
        static_cast<std::uint64_t>(connect_timeout.count()), 0);
}

void XmppConnection::on_connected(uv_connect_t* req, int status) {
    auto* a = static_cast<Attempt*>(req->data);
    XmppConnection* self = a->owner;
    if (!self) {  // abandoned: its socket is already closing
        delete a;
        return;
    }
    std::erase(self->attempts_, a);
    if (status == 0) {
        Address address = a->address;
        self->tcp_ = uv::Handle<uv_tcp_t>::adopt(a->tcp);
        self->tcp_->data = self;
        delete a;
        self->abandon_attempts();
        uv_timer_stop(self->race_timer_.get());
        self->race_won(address);
        return;
    }
    self->race_error_ = a->address.text() + ": " + uv_strerror(status);
    uv_close(reinterpret_cast<uv_handle_t*>(a->tcp), uv::Handle<uv_tcp_t>::free_on_close);
    delete a;
    if (self->race_next_ < self->race_addresses_.size()) self->start_attempt();
    else if (self->attempts_.empty()) {
        uv_timer_stop(self->race_timer_.get());
        self->race_failed();
    }
}

void XmppConnection::abandon_attempts() {
    for (Attempt* a : std::exchange(attempts_, {})) {
        a->owner = nullptr;
        uv_close(reinterpret_cast<uv_handle_t*>(a->tcp), uv::Handle<uv_tcp_t>::free_on_close);
    }
}

void XmppConnection::race_failed() {
    if (finished_) return;
    std::string why = race_error_.empty() ? "no address" : race_error_;
    if (account_.proxy) {
        // The same proxy serves every target: no use trying the next one.
        if (race_addresses_.size() == 1 && why.starts_with(race_addresses_.front().text() + ": "))
            why = why.substr(race_addresses_.front().text().size() + 2);
        fail(xmpp::Closed::Kind::Error, "cannot reach the proxy " + proxy_text_ + ": " + why);
        return;
    }
    target_failed(why);
}

void XmppConnection::race_won(const Address& address) {
    uv_tcp_nodelay(tcp_.get(), 1);
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(tcp_.get()),
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
            static char storage[65536];  // one thread; each read is consumed before the next
            *buf = uv_buf_init(storage, sizeof storage);
        },
        on_read);
    connected_at_ = account_.proxy ? " through the proxy " + proxy_text_ : " at " + address.text();
    if (!account_.proxy) {
        logs::daemon().info("{}connected to {} at {}", prefix_,
                            host_port(targets_[target_].host, targets_[target_].port), address.text());
        begin_stream({});
        return;
    }
    // RFC 1928 §3: without configured credentials, offer per-account ones so that Tor
    // (IsolateSOCKSAuth, its default) gives every account its own circuit.
    const auto& proxy = *account_.proxy;
    socks5::Credentials credentials{proxy.username, proxy.password};
    if (credentials.username.empty()) credentials = {"stanzad-" + account_.name, "stanzad"};
    const auto& t = targets_[target_];
    socks_ = std::make_unique<socks5::Client>(t.host, t.port, credentials);
    handshake_timer_ = true;
    arm_timer(xmpp::Clock::now() + socks_timeout);
    write_raw(socks_->take_output());
}

void XmppConnection::socks_received(std::string_view bytes) {
    auto st = socks_->receive(bytes);
    if (!st) {
        const auto& t = targets_[target_];
        if (st.error().code == socks5::err_reply) {
            close_transport(false);
            socks_.reset();
            handshake_timer_ = false;
            arm_timer(std::nullopt);
            target_failed("the proxy " + proxy_text_ + " could not connect to " + host_port(t.host, t.port) + ": " +
                          st.error().message);
        } else {
            std::string hint = st.error().code == socks5::err_auth && account_.proxy->username.empty()
                                   ? "; set proxy_username and proxy_password if it needs a login"
                                   : "";
            fail(xmpp::Closed::Kind::Error, st.error().message + " (proxy " + proxy_text_ + ")" + hint);
        }
        return;
    }
    write_raw(socks_->take_output());
    if (!socks_->done()) return;
    logs::daemon().info("{}connected to {} through the proxy {}", prefix_,
                        host_port(targets_[target_].host, targets_[target_].port), proxy_text_);
    std::string leftover = socks_->take_leftover();
    socks_.reset();
    handshake_timer_ = false;
    arm_timer(std::nullopt);
    begin_stream(leftover);
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

void XmppConnection::send(std::string_view xml, std::string tag) {
    stream_.send(xml, xmpp::Clock::now(), std::move(tag));
    flush();
    if (!handshake_timer_) arm_timer(stream_.next_deadline());  // an ack request may now be due
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
