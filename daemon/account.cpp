#include "daemon/account.hpp"

#include <algorithm>
#include <cmath>

#include "daemon/log.hpp"

namespace stanzad {
namespace {

constexpr double backoff_first_s = 1.0;
constexpr double backoff_max_s = 300.0;

}  // namespace

const char* to_string(Account::State state) {
    switch (state) {
    case Account::State::Connecting: return "connecting";
    case Account::State::Online: return "online";
    case Account::State::Disconnected: return "disconnected";
    case Account::State::Failed: return "failed";
    case Account::State::Stopped: return "stopped";
    }
    return "?";
}

Account::Account(uv_loop_t* loop, config::Account config, std::function<void()> stopped)
    : loop_(loop),
      config_(std::move(config)),
      prefix_("account " + config_.name + ": "),
      stopped_(std::move(stopped)),
      random_(std::random_device{}()),
      retry_timer_(loop) {
    retry_timer_->data = this;
}

Account::~Account() = default;

void Account::start() {
    if (!config_.proxy.empty())
        return give_up("proxy is set but SOCKS5 is not supported yet; refusing to connect without it");
    if (!config_.password && !config_.password_command)
        return give_up("client certificates (SASL EXTERNAL) are not supported yet; set a password");
    auto password = config::resolve_password(config_);
    if (!password) return give_up(password.error().message);
    password_ = std::move(password).value();
    connect();
}

void Account::connect() {
    finished_.reset();
    state_ = State::Connecting;
    connection_ = std::make_unique<XmppConnection>(
        loop_, config_, password_, prefix_,
        ConnectionEvents{
            [this](const xmpp::Online& o) { online(o); },
            [this](xmpp::Stanza& s) {
                logs::daemon().debug("{}received <{}> from {} (no front end handles it yet)", prefix_,
                                     s.root().name(), s.root().attribute("from").value());
            },
            [this](const xmpp::Closed& c, bool tls_verify) { closed(c, tls_verify); },
        });
    connection_->start();
}

void Account::online(const xmpp::Online& o) {
    state_ = State::Online;
    reason_.clear();
    failures_ = 0;
    logs::daemon().info("{}online as {} ({})", prefix_, o.jid.full(), o.mechanism);
    connection_->send("<presence/>");  // RFC 6121 §4.2: initial presence
}

void Account::closed(const xmpp::Closed& c, bool tls_verify) {
    finished_ = std::move(connection_);  // we are inside its call stack: drop it later
    reason_ = c.reason;
    if (stopping_) {
        state_ = State::Stopped;
        logs::daemon().info("{}closed ({}{})", prefix_, c.reason, c.clean ? ", clean" : "");
        if (stopped_) stopped_();
        return;
    }
    if (c.kind == xmpp::Closed::Kind::AuthFailed) {
        state_ = State::Failed;
        logs::daemon().error("{}authentication failed: {}; not retrying until the config changes", prefix_,
                             c.reason);
        return;
    }
    if (!c.retry()) return give_up(c.reason);
    retry_later(tls_verify ? c.reason : "disconnected: " + c.reason);
}

void Account::retry_later(const std::string& what) {
    state_ = State::Disconnected;
    // Exponential backoff with jitter: spread reconnections after a server restart.
    double ceiling = std::min(backoff_max_s, backoff_first_s * std::pow(2.0, std::min(failures_, 16)));
    ++failures_;
    double delay = std::uniform_real_distribution<double>(ceiling / 2, ceiling)(random_);
    logs::daemon().warn("{}{}; reconnecting in {:.1f}s", prefix_, what, delay);
    uv_timer_start(
        retry_timer_.get(),
        [](uv_timer_t* t) {
            auto* self = static_cast<Account*>(t->data);
            if (self && !self->stopping_) self->connect();
        },
        static_cast<uint64_t>(delay * 1000), 0);
}

void Account::give_up(std::string reason) {
    state_ = State::Failed;
    reason_ = std::move(reason);
    logs::daemon().error("{}disconnected: {}; not retrying until the config changes", prefix_, reason_);
}

void Account::stop() {
    if (stopping_) return;
    stopping_ = true;
    uv_timer_stop(retry_timer_.get());
    if (connection_) {
        connection_->close();  // calls closed() now or later
        return;
    }
    state_ = State::Stopped;
    if (stopped_) stopped_();
}

}  // namespace stanzad
