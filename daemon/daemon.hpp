#pragma once
// Daemon: the libuv loop (one thread), the accounts, and the signals. SIGTERM/SIGINT close
// every stream cleanly and end the loop; SIGHUP reloads the config and touches only the
// accounts that changed. When the store cannot be written (disk full), the daemon starts
// over in place from what is on disk, once the store can be written again (store_failed).
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "daemon/account.hpp"
#include "daemon/command.hpp"
#include "daemon/group_commit.hpp"
#include "daemon/hub.hpp"
#include "daemon/irc_listener.hpp"
#include "daemon/jsonl_listener.hpp"
#include "daemon/resolver.hpp"
#include "daemon/store.hpp"
#include "daemon/trim_clock.hpp"
#include "daemon/uv.hpp"

namespace stanzad {

class Daemon {
public:
    // `argv`: the command line, to start over with after a store failure.
    Daemon(config::Config config, std::vector<std::string> argv);
    ~Daemon();
    // Opens the store and the socket, connects the accounts, and runs until shut down.
    // Returns the process exit status: 0 after a clean shutdown, 1 when it cannot start.
    int run();

private:
    // Opens the store and checks that it can be written.
    enum class StoreCheck { Ok, CannotOpen, CannotWrite };
    StoreCheck open_store();
    // Until the store opens and can be written (after a store failure): tries again every
    // `delay_ms`; then serve().
    void wait_for_store(std::uint64_t delay_ms);
    // The hub, the front-end sockets and the accounts, over an open store.
    bool serve();
    // A group commit failed: nothing it covered has left the process, but memory and disk
    // disagree. Starts this program again in place (same pid, same pipes); the new process
    // waits with a growing delay until the store can be written, then resumes every session
    // from the store. Does not return.
    // The IRC listener, with its password; false (logged) when it cannot listen.
    bool start_irc(std::string password);
    [[noreturn]] void store_failed(const std::string& reason);
    void on_signal(int signum);
    void shutdown(const char* why);
    void reload();
    void add_account(const config::Account& account);
    void stop_account(std::unique_ptr<Account> account);
    void reap();
    void schedule_reap();
    void prune();
    void start_trim_clock();  // trim_timer_, unless it runs
    // Gives freed heap back to the system once a burst is over (trim_timer_).
    void trim_when_quiet();
    Account* find_account(std::string_view name) const;

    config::Config config_;
    std::vector<std::string> argv_;
    int store_failures_ = 0;  // in a row, from the environment (store_failed)
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
    std::unique_ptr<ShellCommand> irc_password_;  // [irc] password_command, while it runs
    uv::Timer reap_timer_;
    uv::Timer prune_timer_;
    uv::Timer deadline_timer_;
    uv::Timer store_timer_;  // waiting for the store to be writable
    uv::Timer trim_timer_;
    TrimClock trim_clock_;
    std::uint64_t store_retry_ms_ = 0;
    std::chrono::steady_clock::time_point serving_since_{};
    bool shutting_down_ = false;
    int exit_status_ = 0;
};

}  // namespace stanzad
