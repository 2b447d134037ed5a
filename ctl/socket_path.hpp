#pragma once
// Where stanzactl looks for the daemon's socket (docs/stanzactl.md, "Finding the socket"):
// -s PATH, else $STANZAD_SOCKET, else the config's daemon.socket, else the daemon's own
// default. Reads the config file; no other I/O.
#include <string>

#include "protocol/base/result.hpp"

namespace ctl {

struct SocketLocation {
    std::string path;
    // Why `path` may not be the daemon's socket, for the line that reports a failed
    // connection; "" when there is no doubt.
    std::string doubt;
};

struct SocketOptions {
    std::string socket;        // -s PATH, "" when not given
    std::string config;        // -c FILE, "" when not given
};

// Errors: "bad-config" (the -c file has errors; the message is its first one) and
// "no-default" (no option, and no environment to build the default from).
xmpp::Result<SocketLocation> find_socket(const SocketOptions& options);

}  // namespace ctl
