#include "daemon/daemon.hpp"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "daemon/log.hpp"
#include "daemon/notify.hpp"

namespace stanzad {
namespace {

// After SIGTERM every stream has its own bounded close (ClientStream::close_timeout); this
// is the backstop for the whole process.
constexpr uint64_t shutdown_deadline_ms = 4500;
constexpr uint64_t prune_every_ms = 6 * 3600 * 1000;
constexpr std::chrono::seconds secret_command_timeout{30};  // as the accounts' (account.cpp)
constexpr uint64_t trim_every_ms = 4000;

// Store failures in a row, handed to the process that starts over (store_failed); a failure
// later than `store_failure_window` after serving began counts as the first again.
constexpr const char* store_failures_env = "STANZAD_STORE_FAILURES";
constexpr auto store_failure_window = std::chrono::minutes(10);

// How long to wait before using the store again: 5 s after the first failure, doubling up to
// 5 minutes, so a disk that stays full costs a reconnection every few minutes, not a loop.
std::uint64_t store_retry_ms(int failures) {
    std::uint64_t ms = 5000;
    for (int i = 1; i < failures && ms < 300'000; ++i) ms *= 2;
    return std::min<std::uint64_t>(ms, 300'000);
}

}  // namespace

Daemon::Daemon(config::Config config, std::vector<std::string> argv)
    : config_(std::move(config)), argv_(std::move(argv)) {
    if (const char* failures = std::getenv(store_failures_env)) store_failures_ = std::max(0, std::atoi(failures));
    ::unsetenv(store_failures_env);  // not for the commands we run
    uv_loop_init(&loop_);
    store_timer_ = uv::Timer(&loop_);
    store_timer_->data = this;
    trim_timer_ = uv::Timer(&loop_);
    trim_timer_->data = this;
    reap_timer_ = uv::Timer(&loop_);
    reap_timer_->data = this;
    deadline_timer_ = uv::Timer(&loop_);
    deadline_timer_->data = this;
    prune_timer_ = uv::Timer(&loop_);
    prune_timer_->data = this;
    for (int signum : {SIGTERM, SIGINT, SIGHUP}) {
        auto* s = new uv_signal_t{};
        uv_signal_init(&loop_, s);
        s->data = this;
        uv_signal_start(s, [](uv_signal_t* h, int n) { static_cast<Daemon*>(h->data)->on_signal(n); }, signum);
        signals_.push_back(s);
    }
}

Daemon::~Daemon() {
    accounts_.clear();
    stopping_.clear();
    listener_.reset();
    irc_password_.reset();
    irc_.reset();
    hub_.reset();
    group_commit_.reset();
    store_.reset();
    resolver_.reset();
    reap_timer_.reset();
    deadline_timer_.reset();
    prune_timer_.reset();
    store_timer_.reset();
    trim_timer_.reset();
    for (auto* s : signals_)
        if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(s)))
            uv_close(reinterpret_cast<uv_handle_t*>(s), uv::Handle<uv_signal_t>::free_on_close);
    signals_.clear();
    uv_run(&loop_, UV_RUN_DEFAULT);  // let close callbacks free what they own
    uv_loop_close(&loop_);
}

int Daemon::run() {
    logs::daemon().info("stanzad: {} account(s) from {}", config_.accounts.size(), config_.path);
    auto resolver = Resolver::create(&loop_, config_.daemon.resolver);
    if (!resolver) {
        logs::daemon().critical("stanzad: {}", resolver.error().message);
        return 1;
    }
    resolver_ = std::move(resolver).value();
    if (!config_.daemon.resolver.empty()) logs::daemon().info("stanzad: DNS through {}", config_.daemon.resolver);
    if (store_failures_ > 0) {
        // Started again by store_failed(): wait before touching the store, so a disk that is
        // still full does not make a loop of it.
        wait_for_store(store_retry_ms(store_failures_));
    } else {
        switch (open_store()) {
        case StoreCheck::Ok: break;
        case StoreCheck::CannotOpen: return 1;
        case StoreCheck::CannotWrite: wait_for_store(store_retry_ms(1)); break;
        }
        if (store_ && !serve()) return 1;
    }
    // systemd (Type=notify): READY=1 now that the sockets listen; STATUS= the accounts' states.
    ServiceNotifier systemd(&loop_, [this] {
        std::string status;
        for (const auto& a : accounts_) status += (status.empty() ? "" : ", ") + a->name() + ": " + to_string(a->state());
        if (!hub_ && !shutting_down_) return std::string("waiting for the store to be writable");
        return shutting_down_ ? std::string("stopping") : status.empty() ? std::string("no accounts") : status;
    });
    uv_run(&loop_, UV_RUN_DEFAULT);
    logs::daemon().info("stanzad: stopped");
    return exit_status_;
}

Daemon::StoreCheck Daemon::open_store() {
    std::string db = config_.daemon.state_dir + "/stanzad.db";
    const auto opening = std::chrono::steady_clock::now();
    auto store = Store::open(db);
    if (!store) {
        logs::daemon().critical("stanzad: cannot open the store: {}", store.error().message);
        return StoreCheck::CannotOpen;
    }
    // One write that reaches the disk: a store that opens may still be unable to take one.
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    if (auto st = store.value()->set_meta("", "store-check", std::to_string(now.count())); !st) {
        logs::daemon().error("stanzad: cannot write to the store: {}", st.error().message);
        return StoreCheck::CannotWrite;
    }
    store_ = std::move(store).value();
    if (store_->migrated_from() != 0 && store_->migrated_from() != Store::schema_version)
        logs::daemon().info("stanzad: store migrated from schema {} to {} in {} ms", store_->migrated_from(),
                            Store::schema_version,
                            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                                  opening)
                                .count());
    if (!store_->compact_error().empty())
        logs::daemon().warn("stanzad: could not compact the store after its migration ({}); it works as it is, "
                            "and its free pages take new events (docs/reliability.md, \"Store migrations\")",
                            store_->compact_error());
    logs::daemon().info("stanzad: store {} (last event {})", db, store_->last_seq());
    return StoreCheck::Ok;
}

void Daemon::wait_for_store(std::uint64_t delay_ms) {
    logs::daemon().warn("stanzad: waiting {} s for the store to be writable (free some disk space); no account "
                        "connects and no front end is served until then",
                        delay_ms / 1000);
    store_retry_ms_ = delay_ms;
    uv_timer_start(
        store_timer_.get(),
        [](uv_timer_t* t) {
            auto* self = static_cast<Daemon*>(t->data);
            if (self->shutting_down_) return;
            if (self->open_store() != StoreCheck::Ok) {
                self->wait_for_store(self->store_retry_ms_);
            } else if (!self->serve()) {
                self->exit_status_ = 1;
                uv_stop(t->loop);
            }
        },
        delay_ms, 0);
}

bool Daemon::serve() {
    serving_since_ = std::chrono::steady_clock::now();
    group_commit_ = std::make_unique<GroupCommit>(&loop_, *store_,
                                                  [this](const std::string& reason) { store_failed(reason); });
    hub_ = std::make_unique<Hub>(
        *store_, [this](std::string_view name) { return find_account(name); },
        [this] {
            std::vector<Account*> out;
            for (auto& a : accounts_) out.push_back(a.get());
            return out;
        },
        &loop_, std::chrono::seconds(config_.daemon.ping_interval));
    hub_->on_activity([this] { start_trim_clock(); });
    listener_ = std::make_unique<JsonlListener>(&loop_, *hub_, *store_);
    if (auto st = listener_->listen(config_.daemon.socket); !st) {
        logs::daemon().critical("stanzad: {}", st.error().message);
        return false;
    }
    if (!config_.irc.listen.empty()) {
        if (!config_.irc.password_command) {
            if (!start_irc(config_.irc.password.value_or(""))) return false;
        } else {
            // Beside the loop, as the accounts' commands (a password manager may wait for a
            // pinentry); the IRC socket listens once the password is known.
            irc_password_ = std::make_unique<ShellCommand>(
                &loop_, "password_command", *config_.irc.password_command, secret_command_timeout,
                [this](xmpp::Result<std::string> password) {
                    if (!password) {
                        logs::daemon().critical("stanzad: [irc] {}", password.error().message);
                    } else if (start_irc(std::move(password).value())) {
                        return;
                    }
                    exit_status_ = 1;
                    if (!shutting_down_) shutdown("no IRC listener");
                });
        }
    }
    prune();
    uv_timer_start(prune_timer_.get(), [](uv_timer_t* t) { static_cast<Daemon*>(t->data)->prune(); }, prune_every_ms,
                   prune_every_ms);
    for (const auto& a : config_.accounts) add_account(a);
    start_trim_clock();
    return true;
}

void Daemon::trim_when_quiet() {
    if (!store_) return;
    if (trim_clock_.tick(store_->commits())) {
        store_->release_memory();  // SQLite's page cache, filled by the burst: 1 MiB
        ::malloc_trim(0);
    }
    // Trimmed and nothing committed since: no tick until a stanza or a command reaches an
    // account (Hub::on_activity), so an idle daemon does not wake every 4 s for nothing.
    if (!trim_clock_.due()) uv_timer_stop(trim_timer_.get());
}

void Daemon::start_trim_clock() {
    if (trim_timer_ && !uv_is_active(reinterpret_cast<uv_handle_t*>(trim_timer_.get())))
        uv_timer_start(trim_timer_.get(), [](uv_timer_t* t) { static_cast<Daemon*>(t->data)->trim_when_quiet(); },
                       trim_every_ms, trim_every_ms);
}

bool Daemon::start_irc(std::string password) {
    irc_ = std::make_unique<IrcListener>(&loop_, *hub_, *store_, std::move(password), config_.irc);
    if (auto st = irc_->listen(config_.irc.listen); !st) {
        logs::daemon().critical("stanzad: {}", st.error().message);
        return false;
    }
    return true;
}

void Daemon::store_failed(const std::string& reason) {
    int failures = std::chrono::steady_clock::now() - serving_since_ > store_failure_window ? 1 : store_failures_ + 1;
    logs::daemon().critical("stanzad: cannot write to the store ({}): nothing unsaved was acknowledged; starting "
                            "over from the store",
                            reason);
    logs::daemon().flush();
    ::setenv(store_failures_env, std::to_string(failures).c_str(), 1);
    std::vector<char*> args;
    for (auto& a : argv_) args.push_back(a.data());
    args.push_back(nullptr);
    // Every socket and the store's files are close-on-exec: the new process starts clean.
    ::execv("/proc/self/exe", args.data());
    logs::daemon().critical("stanzad: cannot start again ({}); exiting: start stanzad again once the disk can be "
                            "written",
                            std::strerror(errno));
    logs::daemon().flush();
    ::_exit(75);  // EX_TEMPFAIL
}

Account* Daemon::find_account(std::string_view name) const {
    for (const auto& a : accounts_)
        if (a->name() == name) return a.get();
    return nullptr;
}

void Daemon::prune() {
    auto pruned = store_->prune(std::chrono::system_clock::now(), config_.daemon.history_days);
    if (!pruned) logs::daemon().error("stanzad: pruning the store failed: {}", pruned.error().message);
    else if (pruned.value() > 0)
        logs::daemon().info("stanzad: pruned {} event(s) older than {} days", pruned.value(), config_.daemon.history_days);
}

void Daemon::add_account(const config::Account& account) {
    accounts_.push_back(
        std::make_unique<Account>(&loop_, *resolver_, account, config_.daemon, *hub_, *store_, [this] { schedule_reap(); }));
    accounts_.back()->start();  // after push_back: the hub may look it up by name
}

void Daemon::stop_account(std::unique_ptr<Account> account) {
    Account* a = account.get();
    stopping_.push_back(std::move(account));
    a->stop();
}

void Daemon::on_signal(int signum) {
    if (signum == SIGHUP) {
        if (!hub_) logs::daemon().warn("stanzad: SIGHUP ignored while waiting for the store; send it once stanzad serves");
        else if (!shutting_down_) reload();
        return;
    }
    if (shutting_down_) {
        // A second SIGTERM/SIGINT: the person means it.
        logs::daemon().warn("stanzad: second signal, exiting without waiting");
        uv_stop(&loop_);
        return;
    }
    shutdown(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

void Daemon::shutdown(const char* why) {
    shutting_down_ = true;
    sd_notify("STOPPING=1");
    logs::daemon().info("stanzad: shutting down ({})", why);
    uv_timer_start(
        deadline_timer_.get(),
        [](uv_timer_t* t) {
            logs::daemon().warn("stanzad: streams still open after {} ms; exiting anyway", shutdown_deadline_ms);
            uv_stop(t->loop);
        },
        shutdown_deadline_ms, 0);
    waiting_.clear();
    auto accounts = std::move(accounts_);
    accounts_.clear();
    for (auto& a : accounts) stop_account(std::move(a));
    schedule_reap();
}

void Daemon::schedule_reap() {
    // Accounts report "stopped" from inside their own callbacks; drop them on the next turn.
    uv_timer_start(reap_timer_.get(), [](uv_timer_t* t) { static_cast<Daemon*>(t->data)->reap(); }, 0, 0);
}

void Daemon::reap() {
    std::erase_if(stopping_, [](const auto& a) { return a->state() == Account::State::Stopped; });
    // Changed accounts start again once their old stream is closed (never two sessions).
    for (auto it = waiting_.begin(); it != waiting_.end();) {
        bool still_closing = std::any_of(stopping_.begin(), stopping_.end(),
                                         [&](const auto& a) { return a->name() == it->name; });
        if (still_closing) {
            ++it;
            continue;
        }
        add_account(*it);
        it = waiting_.erase(it);
    }
    if (shutting_down_ && stopping_.empty()) {
        // Everything is closed: let the loop run dry.
        if (listener_) listener_->close();
        if (irc_) irc_->close();
        irc_password_.reset();
        trim_timer_.reset();
        reap_timer_.reset();
        store_timer_.reset();
        deadline_timer_.reset();
        prune_timer_.reset();
        for (auto* s : signals_) uv_close(reinterpret_cast<uv_handle_t*>(s), uv::Handle<uv_signal_t>::free_on_close);
        signals_.clear();
    }
}

void Daemon::reload() {
    auto loaded = config::load(config_.path);
    for (const auto& p : loaded.problems) {
        if (p.severity == config::Problem::Severity::Error) logs::daemon().error("{}", p.to_string());
        else logs::daemon().warn("{}", p.to_string());
    }
    if (!loaded.ok()) {
        logs::daemon().error("stanzad: config not reloaded: {} has errors; keeping the running config",
                             config_.path);
        return;
    }
    config::Config next = std::move(*loaded.config);
    if (next.daemon.log_level != config_.daemon.log_level) logs::set_level(next.daemon.log_level);
    if (next.daemon.socket != config_.daemon.socket || next.daemon.state_dir != config_.daemon.state_dir ||
        next.daemon.resolver != config_.daemon.resolver) {
        logs::daemon().warn("stanzad: daemon.socket, daemon.state_dir and daemon.resolver take effect at the next start");
        next.daemon.socket = config_.daemon.socket;
        next.daemon.state_dir = config_.daemon.state_dir;
        next.daemon.resolver = config_.daemon.resolver;
    }

    int unchanged = 0, added = 0, removed = 0, changed = 0;
    auto in_next = [&](const std::string& name) {
        return std::find_if(next.accounts.begin(), next.accounts.end(),
                            [&](const config::Account& n) { return n.name == name; });
    };
    std::vector<std::unique_ptr<Account>> kept;
    std::vector<config::Account> waiting;  // starts once any old stream of the name is closed
    for (auto& a : accounts_) {
        auto it = in_next(a->name());
        if (it == next.accounts.end()) {
            ++removed;
            stop_account(std::move(a));
            continue;
        }
        config::Account old = a->config(), fresh = *it;
        old.line = fresh.line = 0;  // moving a block in the file is not a change
        if (old == fresh && a->state() != Account::State::Failed) {
            ++unchanged;
            kept.push_back(std::move(a));
        } else {
            // A failed account is retried on reload: the person may have fixed the password.
            ++changed;
            waiting.push_back(*it);
            stop_account(std::move(a));
        }
    }
    // Accounts still waiting from an earlier reload take the newest settings, or go.
    for (const auto& w : waiting_) {
        auto it = in_next(w.name);
        if (it == next.accounts.end()) {
            ++removed;
        } else if (std::none_of(waiting.begin(), waiting.end(), [&](const auto& x) { return x.name == w.name; })) {
            ++changed;
            waiting.push_back(*it);
        }
    }
    for (const auto& n : next.accounts) {
        bool known = std::any_of(kept.begin(), kept.end(), [&](const auto& a) { return a->name() == n.name; }) ||
                     std::any_of(waiting.begin(), waiting.end(), [&](const auto& w) { return w.name == n.name; });
        if (!known) {
            ++added;
            waiting.push_back(n);
        }
    }
    waiting_ = std::move(waiting);
    accounts_ = std::move(kept);
    // Keep config order for the accounts that stay; new ones join as they start.
    config_ = std::move(next);
    logs::daemon().info("stanzad: config reloaded: {} unchanged, {} added, {} removed, {} changed", unchanged,
                        added, removed, changed);
    schedule_reap();
}

}  // namespace stanzad
