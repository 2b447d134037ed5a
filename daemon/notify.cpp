#include "daemon/notify.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/log.hpp"

namespace stanzad {

bool sd_notify(std::string_view state) {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || !*path) return true;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::size_t length = std::strlen(path);
    if ((path[0] != '/' && path[0] != '@') || length >= sizeof addr.sun_path) {
        logs::daemon().warn("stanzad: NOTIFY_SOCKET '{}' is not a socket path; not notifying systemd", path);
        return false;
    }
    std::memcpy(addr.sun_path, path, length);
    if (path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    auto size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length);
    ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                            reinterpret_cast<const sockaddr*>(&addr), size);
    int error = errno;
    ::close(fd);
    if (sent == static_cast<ssize_t>(state.size())) return true;
    logs::daemon().warn("stanzad: cannot notify systemd at {}: {}", path, std::strerror(error));
    return false;
}

ServiceNotifier::ServiceNotifier(uv_loop_t* loop, std::function<std::string()> status)
    : status_(std::move(status)), timer_(loop) {
    update();
    sd_notify("READY=1");
    timer_->data = this;
    // The status is only ever told to systemd: without it, no wakeup each second for it.
    const char* socket = std::getenv("NOTIFY_SOCKET");
    if (socket && *socket)
        uv_timer_start(timer_.get(), [](uv_timer_t* t) { static_cast<ServiceNotifier*>(t->data)->update(); }, 1000,
                       1000);
    uv_unref(reinterpret_cast<uv_handle_t*>(timer_.get()));
}

void ServiceNotifier::update() {
    std::string now = status_();
    if (now == last_) return;
    last_ = now;
    sd_notify("STATUS=" + now);
}

}  // namespace stanzad
