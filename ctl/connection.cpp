#include "ctl/connection.hpp"

#include <cerrno>
#include <cstring>
#include <utility>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace ctl {

Connection::~Connection() {
    if (fd_ >= 0) ::close(fd_);
}

Connection::Connection(Connection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      buffer_(std::move(other.buffer_)),
      scanned_(other.scanned_),
      stop_flag_(other.stop_flag_),
      wait_mask_(other.wait_mask_) {}

Connection& Connection::operator=(Connection&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
        buffer_ = std::move(other.buffer_);
        scanned_ = other.scanned_;
        stop_flag_ = other.stop_flag_;
        wait_mask_ = other.wait_mask_;
    }
    return *this;
}

int Connection::connect_to(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof address.sun_path) return ENAMETOOLONG;
    std::memcpy(address.sun_path, path.data(), path.size());

    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    int rc;
    do {
        rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        int e = errno;
        ::close(fd);
        return e;
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
    return 0;
}

bool Connection::write_line(std::string_view line) {
    std::string data(line);
    data += '\n';
    std::size_t done = 0;
    while (done < data.size()) {
        // MSG_NOSIGNAL: a daemon that went away is an error to report, not a signal.
        ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

bool Connection::wait_readable(ReadResult& result) {
    for (;;) {
        if (stopped()) {
            result.kind = ReadResult::Kind::Stopped;
            return false;
        }
        pollfd p{fd_, POLLIN, 0};
        int rc = ::ppoll(&p, 1, nullptr, wait_mask_);
        if (rc > 0) return true;  // POLLHUP and POLLERR too: recv() tells which
        if (rc < 0 && errno != EINTR) {
            result.kind = ReadResult::Kind::Failed;
            result.text = std::string("cannot wait for the daemon: ") + std::strerror(errno);
            return false;
        }
        // EINTR: our handler (checked above), or a stop and SIGCONT, after which Linux does
        // not restart poll.
    }
}

ReadResult Connection::read_line() {
    ReadResult result;
    char chunk[65536];
    for (;;) {
        std::size_t newline = buffer_.find('\n', scanned_);
        if (newline != std::string::npos) {
            result.kind = ReadResult::Kind::Line;
            result.text = buffer_.substr(0, newline);
            buffer_.erase(0, newline + 1);
            scanned_ = 0;
            return result;
        }
        scanned_ = buffer_.size();
        if (buffer_.size() > max_line_bytes) {
            result.kind = ReadResult::Kind::Failed;
            result.text = "the daemon sent a line longer than " + std::to_string(max_line_bytes) + " bytes";
            return result;
        }
        if (!wait_readable(result)) return result;
        ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            result.kind = ReadResult::Kind::Closed;
            return result;
        }
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            result.kind = ReadResult::Kind::Failed;
            result.text = std::string("cannot read from the daemon: ") + std::strerror(errno);
            return result;
        }
        buffer_.append(chunk, static_cast<std::size_t>(n));
    }
}

}  // namespace ctl
