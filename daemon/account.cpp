#include "daemon/account.hpp"

#include <algorithm>
#include <cmath>

#include "daemon/hub.hpp"
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

Account::Account(uv_loop_t* loop, config::Account config, Hub& hub, std::function<void()> stopped)
    : loop_(loop),
      config_(std::move(config)),
      prefix_("account " + config_.name + ": "),
      hub_(hub),
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

void Account::set_state(State state, std::string reason) {
    state_ = state;
    reason_ = std::move(reason);
    if (state != State::Online) bound_jid_.clear();
    hub_.account_state(*this);
}

void Account::connect() {
    finished_.reset();
    set_state(State::Connecting);
    connection_ = std::make_unique<XmppConnection>(
        loop_, config_, password_, prefix_,
        ConnectionEvents{
            [this](const xmpp::Online& o) { online(o); },
            [this](xmpp::Stanza& s) { hub_.received(*this, s); },
            [this](const xmpp::Closed& c, bool tls_verify) { closed(c, tls_verify); },
        });
    // RFC 6121 §2.1.6: roster pushes come from our own account (or carry no 'from').
    connection_->on_iq(xmpp::ns_roster, "query", [this](pugi::xml_node iq, pugi::xml_node query) {
        std::string_view from = iq.attribute("from").value();
        if (!from.empty() && from != config_.jid.bare() && from != bound_jid_)
            return xmpp::IqAnswer{"", "service-unavailable", "cancel"};
        if (std::string_view(iq.attribute("type").value()) != "set") return xmpp::IqAnswer{"", "bad-request", "modify"};
        hub_.roster(*this, xmpp::parse_roster(query), true);
        return xmpp::IqAnswer{};
    });
    connection_->start();
}

void Account::online(const xmpp::Online& o) {
    failures_ = 0;
    bound_jid_ = o.jid.full();
    logs::daemon().info("{}online as {} ({})", prefix_, o.jid.full(), o.mechanism);
    set_state(State::Online);
    connection_->send(presence_);  // RFC 6121 §4.2: initial presence
    hub_.online(*this);
}

bool Account::send(std::string_view xml) {
    if (state_ != State::Online || !connection_) return false;
    connection_->send(xml);
    return true;
}

void Account::set_presence(std::string presence_xml) {
    presence_ = std::move(presence_xml);
    send(presence_);
}

void Account::update_roster(std::vector<xmpp::RosterEntry> items, bool push) {
    if (!push) {
        roster_ = std::move(items);
        return;
    }
    for (auto& item : items) {
        std::erase_if(roster_, [&](const xmpp::RosterEntry& e) { return e.jid == item.jid; });
        if (item.subscription != "remove") roster_.push_back(std::move(item));
    }
}

void Account::closed(const xmpp::Closed& c, bool tls_verify) {
    finished_ = std::move(connection_);  // we are inside its call stack: drop it later
    if (stopping_) {
        logs::daemon().info("{}closed ({}{})", prefix_, c.reason, c.clean ? ", clean" : "");
        set_state(State::Stopped, c.reason);
        if (stopped_) stopped_();
        return;
    }
    if (c.kind == xmpp::Closed::Kind::AuthFailed) {
        set_state(State::Failed, "authentication failed: " + c.reason);
        logs::daemon().error("{}authentication failed: {}; not retrying until the config changes", prefix_,
                             c.reason);
        return;
    }
    if (!c.retry()) return give_up(c.reason);
    reason_ = c.reason;
    retry_later(tls_verify ? c.reason : "disconnected: " + c.reason);
}

void Account::retry_later(const std::string& what) {
    set_state(State::Disconnected, reason_);
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
    logs::daemon().error("{}disconnected: {}; not retrying until the config changes", prefix_, reason);
    set_state(State::Failed, std::move(reason));
}

void Account::stop() {
    if (stopping_) return;
    stopping_ = true;
    uv_timer_stop(retry_timer_.get());
    if (connection_) {
        connection_->close();  // calls closed() now or later
        return;
    }
    set_state(State::Stopped, reason_);
    if (stopped_) stopped_();
}

}  // namespace stanzad
