// How XmppConnection finds and reaches the server: the targets (SRV, RFC 6120 §3.2.1 and
// XEP-0368, or the configured host), each target's addresses raced (Happy Eyeballs, RFC
// 8305), and the SOCKS5 handshake (RFC 1928) when the account has a proxy. Once connected
// it hands over to begin_stream() (connection.cpp).
#include "daemon/connection.hpp"
#include "daemon/connection_detail.hpp"
#include "daemon/log.hpp"

namespace stanzad {
using detail::attempt_delay;
using detail::connect_timeout;
using detail::host_port;
using detail::socks_timeout;

namespace {

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

}  // namespace stanzad
