#pragma once
// stanzactl init and stanzactl doctor: the first run (write a config that validates) and
// the check of a running setup (docs/stanzactl.md, "init" and "doctor"). Blocking, one
// thread; they print to stdout/stderr and return stanzactl's exit status.
#include <optional>
#include <string>

#include "ctl/connection.hpp"
#include "ctl/socket_path.hpp"

namespace ctl {

struct InitOptions {
    std::string config;                    // -c FILE; "" for the daemon's default path
    std::string jid;                       // --jid; "" asks on the terminal
    std::string name;                      // --name; "" derives it from the JID
    std::string password_command;          // --password-command
    std::optional<std::string> password;   // --password ("-" reads standard input)
    bool irc = false;                      // --irc
    bool force = false;                    // --force
};

int run_init(const InitOptions& options);
// Ends `conn`'s waits after `seconds` (read_line() then returns Stopped): for doctor and
// complete, which must not hang on a daemon that accepts and never answers. SIGALRM.
void give_up_after(Connection& conn, unsigned seconds);
int run_doctor(const SocketOptions& options);

}  // namespace ctl
