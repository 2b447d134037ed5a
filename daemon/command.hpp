#pragma once
// A shell command run without blocking the event loop: `password_command`,
// `client_key_password_command` and the IRC listener's `password_command`. Config only names
// them (config/ runs nothing); the daemon runs them here, while every other account and
// front end goes on.
//
// The command runs as `/bin/sh -c COMMAND` in its own session (so a timeout stops everything
// it started), with stdin from /dev/null, stdout read by us (at most 64 KiB) and stderr the
// daemon's. Its result is the first line of its output (without the newline and a trailing
// CR); errors say what went wrong in words a user can act on.
#include <uv.h>

#include <chrono>
#include <functional>
#include <string>

#include "protocol/base/result.hpp"

namespace stanzad {

class ShellCommand {
public:
    using Done = std::function<void(xmpp::Result<std::string>)>;

    // Starts it; `done` is called once, from the loop (never from inside this constructor).
    // `what` names the command in errors: "password_command".
    ShellCommand(uv_loop_t* loop, std::string what, const std::string& command, std::chrono::milliseconds timeout,
                 Done done);
    // A command still running is killed; `done` is not called.
    ~ShellCommand();
    ShellCommand(const ShellCommand&) = delete;
    ShellCommand& operator=(const ShellCommand&) = delete;

    static constexpr std::size_t max_output = 64 * 1024;

    struct Run;  // one run; lives until the process has exited and its pipe is closed

private:
    Run* run_;
};

}  // namespace stanzad
