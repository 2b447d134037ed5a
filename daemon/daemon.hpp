#pragma once
// Daemon: the libuv loop (one thread), the accounts, and the signals. SIGTERM/SIGINT close
// every stream cleanly and end the loop; SIGHUP reloads the config and touches only the
// accounts that changed.
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "daemon/account.hpp"
#include "daemon/group_commit.hpp"
#include "daemon/hub.hpp"
#include "daemon/irc_listener.hpp"
#include "daemon/jsonl_listener.hpp"
#include "daemon/resolver.hpp"
#include "daemon/store.hpp"
#include "daemon/uv.hpp"

namespace stanzad {

class Daemon {
public:
    explicit Daemon(config::Config config);
    ~Daemon();
    // Opens the store and the socket, connects the accounts, and runs until shut down.
    // Returns the process exit status: 0 after a clean shutdown, 1 when it cannot start.
    int run();

private:
    void on_signal(int signum);
    void shutdown(const char* why);
    void reload();
    void add_account(const config::Account& account);
    void stop_account(std::unique_ptr<Account> account);
    void reap();
    void schedule_reap();
    void prune();
    Account* find_account(std::string_view name) const;

    config::Config config_;
    uv_loop_t loop_{};
    std::vector<uv_signal_t*> signals_;
    std::vector<std::unique_ptr<Account>> accounts_;   // configured, in config order
    std::vector<std::unique_ptr<Account>> stopping_;   // removed or changed, closing
    std::vector<config::Account> waiting_;             // changed: starts once the old one stopped
    std::unique_ptr<Resolver> resolver_;
    std::unique_ptr<Store> store_;
    std::unique_ptr<GroupCommit> group_commit_;  // after store_: it writes to it
    std::unique_ptr<Hub> hub_;
    std::unique_ptr<JsonlListener> listener_;
    std::unique_ptr<IrcListener> irc_;
    uv::Timer reap_timer_;
    uv::Timer prune_timer_;
    uv::Timer deadline_timer_;
    bool shutting_down_ = false;
};

}  // namespace stanzad
