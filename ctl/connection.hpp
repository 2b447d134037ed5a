#pragma once
// Connection: stanzactl's blocking connection to the daemon's JSON-lines socket
// (docs/json-protocol.md). Owned by main, one thread. Memory: the read buffer, at most
// max_line_bytes plus one recv() chunk.
#include <csignal>
#include <cstddef>
#include <string>
#include <string_view>

namespace ctl {

// The daemon reads lines of at most 1 MiB, but the lines it writes can be longer: an event
// may carry a 1 MiB stanza's body JSON-escaped (up to 6 bytes per byte).
inline constexpr std::size_t max_line_bytes = 16u << 20;

struct ReadResult {
    enum class Kind {
        Line,     // `text` is the line, without its '\n'
        Closed,   // the daemon closed the connection (a partial last line is dropped)
        Stopped,  // the stop flag was set by a signal
        Failed,   // `text` says why
    };
    Kind kind = Kind::Failed;
    std::string text;
};

class Connection {
public:
    Connection() = default;
    ~Connection();
    Connection(Connection&& other) noexcept;
    Connection& operator=(Connection&& other) noexcept;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // 0 when connected, else the errno of socket() or connect(); ENAMETOOLONG when the path
    // does not fit in sockaddr_un.
    int connect_to(const std::string& path);

    // Writes `line` and a '\n'. False, with errno set, when the write failed (EPIPE when the
    // daemon is gone). Never raises SIGPIPE.
    bool write_line(std::string_view line);

    // Blocks until a whole line, the end of the connection, or the stop flag.
    ReadResult read_line();

    // For tail: while read_line() waits, the signals blocked by the caller are unblocked
    // (`wait_mask` replaces the signal mask, as in ppoll), and a handler that sets `*flag`
    // ends the wait with Stopped. Blocking them outside the wait closes the race between
    // testing the flag and starting to wait.
    void set_stop(const volatile std::sig_atomic_t* flag, const sigset_t* wait_mask) {
        stop_flag_ = flag;
        wait_mask_ = wait_mask;
    }

private:
    bool stopped() const { return stop_flag_ && *stop_flag_; }
    // True when readable; false with `result` filled when the wait ended otherwise.
    bool wait_readable(ReadResult& result);

    int fd_ = -1;
    std::string buffer_;      // received bytes not yet returned as lines
    std::size_t scanned_ = 0; // buffer_[0, scanned_) holds no '\n'
    const volatile std::sig_atomic_t* stop_flag_ = nullptr;
    const sigset_t* wait_mask_ = nullptr;
};

}  // namespace ctl
