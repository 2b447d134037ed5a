#pragma once
// The systemd service manager's notification protocol (sd_notify(3)) without libsystemd:
// one datagram of "KEY=VALUE" lines to the Unix socket named by $NOTIFY_SOCKET (a path, or
// '@' for the abstract namespace). Nothing happens when the variable is not set, so the
// daemon behaves the same outside systemd. Loop thread only.
#include <functional>
#include <string>
#include <string_view>

#include <uv.h>

#include "daemon/uv.hpp"

namespace stanzad {

// Sends `state` ("READY=1", "STATUS=...", "STOPPING=1"). False when $NOTIFY_SOCKET is
// set but the datagram could not be sent; true otherwise. Never blocks.
bool sd_notify(std::string_view state);

// Tells systemd READY=1 at construction (the caller builds it once its sockets listen),
// then STATUS= with what `status` returns whenever that text changes, checked once a
// second (the timer does not keep the loop alive). Owned by Daemon::run().
class ServiceNotifier {
public:
    ServiceNotifier(uv_loop_t* loop, std::function<std::string()> status);
    ServiceNotifier(const ServiceNotifier&) = delete;
    ServiceNotifier& operator=(const ServiceNotifier&) = delete;

private:
    void update();

    std::function<std::string()> status_;
    std::string last_;
    uv::Timer timer_;
};

}  // namespace stanzad
