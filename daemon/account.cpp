#include "daemon/account.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "daemon/hub.hpp"
#include "daemon/log.hpp"
#include "protocol/base/rfc3339.hpp"

namespace stanzad {
namespace {

constexpr double backoff_first_s = 1.0;
constexpr double backoff_max_s = 300.0;
// As long as a password manager may take to ask for and get a passphrase.
constexpr std::chrono::seconds secret_command_timeout{30};

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

Account::Account(uv_loop_t* loop, Resolver& resolver, config::Account config, const config::DaemonSection& daemon,
                 Hub& hub, Store& store, std::function<void()> stopped)
    : loop_(loop),
      resolver_(resolver),
      config_(std::move(config)),
      ping_interval_(std::chrono::seconds(daemon.ping_interval)),
      ping_timeout_(std::chrono::seconds(daemon.ping_timeout)),
      prefix_("account " + config_.name + ": "),
      hub_(hub),
      keep_(store, config_.name),
      stopped_(std::move(stopped)),
      iq_timer_(loop),
      random_(std::random_device{}()),
      retry_timer_(loop) {
    retry_timer_->data = this;
    iq_timer_->data = this;
    priority_ = config_.priority;
    last_direct_tls_ = config_.tls == config::TlsMode::Direct;
}

Account::~Account() {
    pending_iqs_.clear();  // their callbacks may point at what is being torn down
    // A front end waits for every reply, in order: a probe cut short still answers.
    for (auto& waiter : probe_waiters_)
        if (*waiter) std::exchange(*waiter, {})(xmpp::make_error("unreachable", "the account was removed"));
}

void Account::start() {
    if (config_.password) password_ = *config_.password;  // else a command, or a certificate alone
    password_pending_ = config_.password_command.has_value();
    key_password_pending_ = config_.client_key_password_command.has_value();
    set_state(State::Connecting);
    run_secret_commands();
}

// password_command, then client_key_password_command, each without blocking the loop (a
// password manager may wait for a pinentry for seconds; every other account goes on).
void Account::run_secret_commands() {
    auto run = [this](const char* what, const std::string& command, std::string& into, bool& pending) {
        secret_command_ = std::make_unique<ShellCommand>(
            loop_, what, command, secret_command_timeout, [this, &into, &pending](xmpp::Result<std::string> r) {
                if (stopping_) return;
                if (!r) return give_up(r.error().message);
                into = std::move(r).value();
                pending = false;
                run_secret_commands();
            });
    };
    if (password_pending_) return run("password_command", *config_.password_command, password_, password_pending_);
    if (key_password_pending_)
        return run("client_key_password_command", *config_.client_key_password_command, key_password_,
                   key_password_pending_);
    secret_command_.reset();
    start_session();
}

void Account::start_session() {
    user_agent_id_ = keep_.user_agent_id();
    fast_token_ = keep_.fast_token();
    // XEP-0198 across a restart of the daemon: resume the session the server may still hold.
    if (auto cp = keep_.checkpoint()) {
        if (auto jid = xmpp::Jid::parse(cp->jid); jid && jid.value().bare() == config_.jid.bare()) {
            xmpp::SmSession session{cp->id, cp->location, jid.value(), xmpp::SmQueue(), 0, true};
            session.queue.set_inbound(cp->inbound);
            resume_ = std::move(session);
        }
    }
    connect();
}

void Account::probe(std::function<void(xmpp::Result<Probe>)> done) {
    // Finished probes are dropped here, never inside their own callbacks.
    std::erase_if(probes_, [](const auto& p) { return p->finished(); });
    if (probes_.size() >= 4) {
        done(xmpp::make_error("busy", "a certificate probe of " + config_.name + " is already running"));
        return;
    }
    auto result = std::make_shared<std::optional<Probe>>();
    auto once = std::make_shared<std::function<void(xmpp::Result<Probe>)>>(std::move(done));
    std::erase_if(probe_waiters_, [](const auto& w) { return !*w; });
    probe_waiters_.push_back(once);
    xmpp::StreamOptions options;  // no credentials: the probe never authenticates
    options.jid = config_.jid;
    options.resource = config_.resource;
    options.direct_tls = config_.tls == config::TlsMode::Direct;
    options.negotiation_timeout = std::chrono::seconds(30);
    probes_.push_back(std::make_unique<XmppConnection>(
        loop_, resolver_, config_, std::move(options), prefix_ + "pin: ",
        ConnectionEvents{
            {}, {}, {}, {},
            [result, once](const xmpp::Closed& c, bool) {
                if (!*once) return;
                auto done = std::exchange(*once, {});
                if (*result) done(std::move(**result));
                else done(xmpp::make_error("unreachable", c.reason));
            },
            [result](const tls::PeerCertificate& cert, const std::string& server) { *result = Probe{cert, server}; },
            {},
        },
        ConnectOptions{{}, 0, false, true, key_password_, {}}));
    probes_.back()->start();
}

void Account::set_state(State state, std::string reason) {
    state_ = state;
    reason_ = std::move(reason);
    if (state != State::Online) {
        bound_jid_.clear();
        auth_.clear();
        connection_text_.clear();
    }
    hub_.account_state(*this);
}

void Account::connect() {
    finished_.reset();
    set_state(State::Connecting);
    xmpp::StreamOptions options;
    options.jid = config_.jid;
    options.resource = config_.resource;
    options.password = password_;
    options.sasl_order = config_.sasl;
    options.client_certificate = !config_.client_cert.empty();
    options.channel_binding = config_.channel_binding == config::ChannelBinding::Required
                                  ? xmpp::ChannelBindingPolicy::Required
                                  : xmpp::ChannelBindingPolicy::Auto;
    options.direct_tls = config_.tls == config::TlsMode::Direct;
    options.software_version = STANZAD_VERSION;
    options.user_agent_id = user_agent_id_;
    options.fast_token = usable_fast_token();
    options.ping_interval = ping_interval_;
    options.ping_timeout = ping_timeout_;
    // A login that stalls is a dead link too: give it a few ping timeouts, at most 30 s.
    options.negotiation_timeout = std::min<std::chrono::milliseconds>(std::chrono::seconds(30), 5 * ping_timeout_);
    // XEP-0198 §5: past the server's 'max', the session is gone; do not ask for it.
    if (resume_ && resume_->max &&
        std::chrono::steady_clock::now() - resume_since_ > std::chrono::seconds(resume_->max)) {
        logs::daemon().info("{}the previous session expired ({} s); not resuming it", prefix_, resume_->max);
        resume_.reset();
    }
    // XEP-0198 §5: resume where the last connection left off, at the server's location.
    std::pair<std::string, int> location;
    if (resume_) {
        location = xmpp::split_location(resume_->location);
        options.resume = std::exchange(resume_, std::nullopt);
    }
    connection_ = std::make_unique<XmppConnection>(
        loop_, resolver_, config_, std::move(options), prefix_,
        ConnectionEvents{
            [this](const xmpp::Online& o) { online(o); },
            [this](xmpp::Stanza& s) { hub_.received(*this, s); },
            [this](const std::vector<std::string>& tags) { hub_.acked(*this, tags); },
            [this](const std::optional<xmpp::SmCheckpoint>& cp) { keep_.save_checkpoint(cp); },
            [this](const xmpp::Closed& c, bool tls_verify) { closed(c, tls_verify); },
            {},
            [this](const xmpp::FastTokenChanged& t) { fast_token_changed(t); },
        },
        ConnectOptions{location.first, location.second, location.first.empty() ? false : last_direct_tls_, false,
                       key_password_, tls_ctx_});
    // RFC 6121 §2.1.6: roster pushes come from our own account (or carry no 'from').
    connection_->on_iq(xmpp::ns_roster, "query", [this](pugi::xml_node iq, pugi::xml_node query) {
        std::string_view from = iq.attribute("from").value();
        if (!from.empty() && from != config_.jid.bare() && from != bound_jid_)
            return xmpp::IqAnswer{"", "service-unavailable", "cancel"};
        if (std::string_view(iq.attribute("type").value()) != "set") return xmpp::IqAnswer{"", "bad-request", "modify"};
        hub_.roster(*this, xmpp::parse_roster(query), true, xmpp::roster_version(query));
        return xmpp::IqAnswer{};
    });
    // XEP-0191 §3.3, §3.4: the block list changed (from any of our clients).
    for (const char* element : {"block", "unblock"}) {
        connection_->on_iq(xmpp::ns_blocking, element, [this, element](pugi::xml_node iq, pugi::xml_node payload) {
            std::string_view from = iq.attribute("from").value();
            if (!from.empty() && from != config_.jid.bare() && from != bound_jid_)
                return xmpp::IqAnswer{"", "service-unavailable", "cancel"};
            if (std::string_view(iq.attribute("type").value()) != "set") return xmpp::IqAnswer{"", "bad-request", "modify"};
            hub_.blocklist_push(*this, xmpp::parse_block_items(payload), std::string_view(element) == "block");
            return xmpp::IqAnswer{};
        });
    }
    // What we understand in messages, for disco#info and the XEP-0115 caps hash.
    for (std::string_view f : {xmpp::ns_caps, xmpp::ns_carbons, xmpp::ns_chatstates, xmpp::ns_receipts,
                               xmpp::ns_correct, xmpp::ns_markers, xmpp::ns_muc, xmpp::ns_conference,
                               xmpp::ns_sid, xmpp::ns_nick})
        connection_->add_feature(f);
    connection_->start();
    if (connection_ && !tls_ctx_) tls_ctx_ = connection_->tls_context();  // reused by the next connections
}

void Account::online(const xmpp::Online& o) {
    failures_ = 0;
    bound_jid_ = o.jid.full();
    auth_ = o.mechanism;
    connection_text_ = connection_ ? connection_->endpoint() : "";
    logs::daemon().info("{}online as {} ({})", prefix_, o.jid.full(), o.mechanism);
    if (!o.setup.empty()) logs::daemon().info("{}session set up with {}", prefix_, o.setup);
    resume_since_ = {};
    if (o.resumed) logs::daemon().info("{}resumed the previous session", prefix_);
    else if (!o.resume_failure.empty()) logs::daemon().info("{}could not resume ({}); new session", prefix_, o.resume_failure);
    if (o.stream_management && !o.resumed) logs::daemon().info("{}stream management enabled", prefix_);
    if (!o.stream_management) keep_.save_checkpoint(std::nullopt);  // nothing to resume
    roster_versioning_ = o.roster_versioning;
    online_at_ = std::chrono::steady_clock::now();
    ++sessions_;
    set_state(State::Online);
    // A resumed session whose start completed goes on; one whose link broke before the
    // disco#info answers came (no presence, no roster yet) is started now.
    if (o.resumed && started_) {
        capabilities_.stream_management = o.stream_management;
        hub_.online(*this, true, o.restored);
        return;
    }
    started_ = false;
    // XEP-0030 §3.1: what the server (its domain) and the account (our bare JID) offer,
    // before asking for any of it.
    auto server = std::make_shared<xmpp::im::DiscoInfo>();
    std::string domain = config_.jid.domain(), bare = config_.jid.bare();
    request(domain, [&](const std::string& id) { return xmpp::im::make_disco_info_get(id, domain); },
            [this, o, server, bare](const IqReply& r) {
                if (r.local() && r.outcome != IqReply::Outcome::Timeout) return;  // the session ended
                if (r.ok()) *server = xmpp::im::parse_disco_info(r.iq);
                request(bare, [&](const std::string& id) { return xmpp::im::make_disco_info_get(id, bare); },
                        [this, o, server](const IqReply& a) {
                            if (a.local() && a.outcome != IqReply::Outcome::Timeout) return;
                            start_features(o, *server, a.ok() ? xmpp::im::parse_disco_info(a.iq)
                                                              : xmpp::im::DiscoInfo{});
                        });
            });
}

void Account::start_features(const xmpp::Online& o, const xmpp::im::DiscoInfo& server,
                             const xmpp::im::DiscoInfo& account) {
    capabilities_ = xmpp::im::capabilities(server, account, o.stream_management);
    for (auto& note : xmpp::im::missing_notes(capabilities_))
        if (said_.insert(note).second) logs::daemon().info("{}{}", prefix_, note);
    // XEP-0280 §4.1: carbons before initial presence, so nothing falls between them
    // (already on when Bind2 enabled them in the login); only where offered (§3).
    if (!o.carbons && capabilities_.carbons)
        request({}, [](const std::string& id) { return xmpp::make_carbons_enable(id); },
                [this](const IqReply& r) {
                    if (!r.ok()) logs::daemon().warn("{}could not enable carbons: {}", prefix_, r.describe());
                });
    send("<presence>" + presence_payload() + "</presence>");  // RFC 6121 §4.2: initial presence
    started_ = true;
    hub_.account_state(*this);  // front ends see the capabilities
    hub_.online(*this, false, o.restored);
}

// XEP-0484: a token past its expiry is not offered (the server would refuse it and we would
// lose the connection's one FAST attempt); one without a readable expiry is tried.
std::optional<xmpp::sasl::FastToken> Account::usable_fast_token() {
    if (!fast_token_) return std::nullopt;
    auto expiry = xmpp::parse_datetime(fast_token_->expiry);
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch()).count();
    if (expiry && *expiry <= now) {
        logs::daemon().info("{}the FAST token expired at {}; logging in with the password", prefix_, fast_token_->expiry);
        fast_token_.reset();
        keep_.save_fast_token(std::nullopt);
    }
    return fast_token_;
}

void Account::fast_token_changed(const xmpp::FastTokenChanged& change) {
    if (change.token)
        logs::daemon().info("{}got a FAST token for {} (valid until {})", prefix_, change.token->mechanism,
                            change.token->expiry.empty() ? "unknown" : change.token->expiry);
    else
        logs::daemon().info("{}the FAST token was refused ({}); logging in with {}", prefix_, change.refused,
                            password_.empty() ? "the certificate" : "the password");
    fast_token_ = change.token;
    keep_.save_fast_token(change.token);
}

std::string Account::presence_payload() const {
    std::string out = xmpp::make_presence(show_, status_, priority_);  // <presence>...</presence> or <presence/>
    out = out == "<presence/>" ? "" : out.substr(10, out.size() - 10 - 11);
    if (connection_) out += connection_->caps_element();
    return out;
}

void Account::request(const std::string& to, const std::function<std::string(const std::string& id)>& make,
                      IqCallback done) {
    std::string id = "stanzad-iq-" + std::to_string(next_iq_++);
    if (!send(make(id))) {
        done(IqReply{IqReply::Outcome::NotOnline, {}, {}});
        return;
    }
    pending_iqs_[id] = PendingIq{to, std::move(done), std::chrono::steady_clock::now() + std::chrono::seconds(30)};
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(iq_timer_.get())))
        uv_timer_start(
            iq_timer_.get(),
            [](uv_timer_t* t) { static_cast<Account*>(t->data)->expire_iqs(false, IqReply::Outcome::Timeout); },
            1000, 1000);
}

bool Account::answered(pugi::xml_node iq) {
    std::string_view type = iq.attribute("type").value();
    if (type != "result" && type != "error") return false;
    auto it = pending_iqs_.find(iq.attribute("id").value());
    if (it == pending_iqs_.end()) return false;
    // RFC 6120 §8.1.2.1: only the entity we asked may answer.
    std::string_view from = iq.attribute("from").value();
    // RFC 6120 §10.3.3: what our own account answers (no 'to', or our bare JID) may come
    // without 'from', from the bare JID or from our full JID (jabberd2 does the latter).
    bool own = it->second.to.empty() || it->second.to == config_.jid.bare();
    bool ok_from = own ? from.empty() || from == config_.jid.bare() || from == bound_jid_ : from == it->second.to;
    if (!ok_from) return false;
    IqCallback done = std::move(it->second.done);
    pending_iqs_.erase(it);
    if (type == "result") done(IqReply{IqReply::Outcome::Result, iq, {}});
    else done(IqReply{IqReply::Outcome::Remote, iq, xmpp::parse_stanza_error(iq).value_or(xmpp::StanzaError{"undefined-condition", ""})});
    return true;
}

void Account::expire_iqs(bool all, IqReply::Outcome why) {
    auto now = std::chrono::steady_clock::now();
    std::vector<IqCallback> expired;
    for (auto it = pending_iqs_.begin(); it != pending_iqs_.end();) {
        if (all || it->second.deadline <= now) {
            expired.push_back(std::move(it->second.done));
            it = pending_iqs_.erase(it);
        } else {
            ++it;
        }
    }
    if (pending_iqs_.empty()) uv_timer_stop(iq_timer_.get());
    for (auto& done : expired) done(IqReply{why, {}, {}});
}

bool Account::send(std::string_view xml, std::string tag) {
    return can_send() && connection_->send(xml, std::move(tag));
}

void Account::set_presence(std::string show, std::string status, std::optional<int> priority) {
    show_ = std::move(show);
    status_ = std::move(status);
    if (priority) priority_ = *priority;
    send("<presence>" + presence_payload() + "</presence>");
}

void Account::closed(const xmpp::Closed& c, bool tls_verify) {
    finished_ = std::move(connection_);  // we are inside its call stack: drop it later
    last_direct_tls_ = finished_->direct_tls();
    expire_iqs(true, IqReply::Outcome::Disconnected);
    resume_ = stopping_ ? std::nullopt : finished_->take_resumable();
    if (resume_ && !resume_->restored && resume_since_ == std::chrono::steady_clock::time_point{})
        resume_since_ = std::chrono::steady_clock::now();
    if (stopping_ || disabled_) {
        keep_.save_checkpoint(std::nullopt);  // a closed stream cannot be resumed
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

void Account::disable() {
    logs::daemon().info("{}turned off", prefix_);
    disabled_ = true;
    stop();
}

void Account::enable() {
    if (!disabled_ && state_ != State::Failed) return;
    logs::daemon().info("{}turned on", prefix_);
    disabled_ = false;
    stopping_ = false;
    failures_ = 0;
    if (connection_) return;  // still closing: closed() reconnects
    start();
}

void Account::stop() {
    if (stopping_) return;
    stopping_ = true;
    uv_timer_stop(retry_timer_.get());
    secret_command_.reset();  // a password command still running is killed
    if (connection_) {
        connection_->close();  // calls closed() now or later
        return;
    }
    set_state(State::Stopped, reason_);
    if (stopped_) stopped_();
}

}  // namespace stanzad
