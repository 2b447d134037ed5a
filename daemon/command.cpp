#include "daemon/command.hpp"

#include <csignal>
#include <cstring>
#include <utility>

namespace stanzad {

// One run of the command. It owns its libuv handles and deletes itself once libuv is done
// with them: when the process has exited and its pipe is closed, whether or not anyone is
// still waiting for the result (a cancelled run is killed, then reaped here).
struct ShellCommand::Run {
    std::string what;
    Done done;  // empty once called or cancelled
    Run** owner = nullptr;    // the ShellCommand's pointer to us, cleared when we go
    std::string spawn_error;  // uv_spawn failed: nothing ran
    uv_process_t process{};
    uv_pipe_t out{};
    uv_timer_t timer{};
    int open_handles = 0;
    bool exited = false, pipe_closed = false, timed_out = false, truncated = false;
    std::int64_t exit_status = 0;
    int term_signal = 0;
    std::string output;

    void close(uv_handle_t* h) {
        if (uv_is_closing(h)) return;
        uv_close(h, [](uv_handle_t* handle) {
            auto* self = static_cast<Run*>(handle->data);
            if (--self->open_handles == 0) {
                if (self->owner) *self->owner = nullptr;
                delete self;
            }
        });
    }
    void kill_all() {
        if (!exited && process.pid > 0) ::kill(-process.pid, SIGKILL);  // its session: all it started
    }
    void close_pipe() {
        if (pipe_closed) return;
        pipe_closed = true;
        uv_read_stop(reinterpret_cast<uv_stream_t*>(&out));
        close(reinterpret_cast<uv_handle_t*>(&out));
    }
    bool finished = false;
    void finish_if_done() {
        if (!exited || !pipe_closed || finished) return;
        finished = true;
        close(reinterpret_cast<uv_handle_t*>(&timer));
        close(reinterpret_cast<uv_handle_t*>(&process));
        if (done) std::exchange(done, {})(result());
    }
    xmpp::Result<std::string> fail(std::string message) const {
        return xmpp::make_error("password-command", std::move(message));
    }
    xmpp::Result<std::string> result() const;
};

namespace {

constexpr std::uint64_t exit_grace_ms = 1000;

// The time allowed ran out (the command is killed), or the command exited and its stdout
// is still open after the grace (closed now: we have what it wrote).
void on_timer(uv_timer_t* t) {
    auto* self = static_cast<ShellCommand::Run*>(t->data);
    if (self->exited) {
        self->close_pipe();
        self->finish_if_done();
        return;
    }
    self->timed_out = true;
    self->kill_all();
}

}  // namespace

xmpp::Result<std::string> ShellCommand::Run::result() const {
    if (!spawn_error.empty()) return fail(spawn_error);
    if (timed_out) return fail(what + " did not finish within the time allowed; it was stopped");
    // After we cut a runaway command off, its death is our doing: SIGPIPE, or (libuv's pipe
    // is a socket pair) a write error it exits on.
    if (!truncated && term_signal != 0)
        return fail(what + " was killed by signal " + std::to_string(term_signal) + " (" + strsignal(term_signal) + ")");
    if (!truncated && exit_status != 0) {
        std::string message = what + " exited with status " + std::to_string(exit_status);
        if (exit_status == 127) message += " (command not found)";
        if (exit_status == 126) message += " (not executable)";
        return fail(std::move(message));
    }
    auto newline = output.find('\n');
    if (newline == std::string::npos && truncated) return fail(what + " printed more than 64 KiB without a newline");
    std::string line = output.substr(0, newline);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) return fail(what + " printed nothing");
    return line;
}

ShellCommand::ShellCommand(uv_loop_t* loop, std::string what, const std::string& command,
                           std::chrono::milliseconds timeout, Done done)
    : run_(new Run) {
    Run* r = run_;
    r->what = std::move(what);
    r->done = std::move(done);
    r->process.data = r->out.data = r->timer.data = r;
    uv_timer_init(loop, &r->timer);
    uv_pipe_init(loop, &r->out, 0);

    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;  // /dev/null: a command that asks stays unanswered, not stuck on our stdin
    stdio[1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
    stdio[1].data.stream = reinterpret_cast<uv_stream_t*>(&r->out);
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    std::string shell = "/bin/sh", dash_c = "-c", cmd = command;
    char* args[] = {shell.data(), dash_c.data(), cmd.data(), nullptr};
    uv_process_options_t options{};
    options.file = "/bin/sh";
    options.args = args;
    options.stdio = stdio;
    options.stdio_count = 3;
    // Its own session, hence its own process group, for the timeout's kill. libuv resets
    // the signal mask and dispositions in the child, so a password manager does not inherit
    // the daemon's.
    options.flags = UV_PROCESS_DETACHED;
    options.exit_cb = [](uv_process_t* p, std::int64_t status, int term_signal) {
        auto* self = static_cast<Run*>(p->data);
        self->exited = true;
        self->exit_status = status;
        self->term_signal = term_signal;
        self->finish_if_done();
        // Something it started in the background (an agent) may still hold its stdout:
        // what the command wrote is read within the grace, then the pipe is closed.
        if (!self->finished) uv_timer_start(&self->timer, on_timer, exit_grace_ms, 0);
    };
    r->owner = &run_;
    r->open_handles = 3;  // the process handle needs closing even when uv_spawn fails
    if (int rc = uv_spawn(loop, &r->process, &options); rc != 0) {
        r->spawn_error = r->what + ": cannot run /bin/sh: " + uv_strerror(rc);
        r->exited = true;
        r->close_pipe();
        // Reported from the loop, like every other result.
        uv_timer_start(&r->timer, [](uv_timer_t* t) { static_cast<Run*>(t->data)->finish_if_done(); }, 0, 0);
        return;
    }
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&r->out),
        [](uv_handle_t*, std::size_t suggested, uv_buf_t* buf) {
            buf->base = new char[suggested];
            buf->len = suggested;
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
            auto* self = static_cast<Run*>(s->data);
            if (n > 0) {
                std::size_t room = max_output - self->output.size();
                self->output.append(buf->base, std::min(room, static_cast<std::size_t>(n)));
                if (static_cast<std::size_t>(n) > room) self->truncated = true;  // closing the pipe: SIGPIPE
            }
            delete[] buf->base;
            if (n < 0 || self->truncated) {
                self->close_pipe();
                self->finish_if_done();
            }
        });
    uv_timer_start(&r->timer, on_timer, static_cast<std::uint64_t>(timeout.count()), 0);
}

ShellCommand::~ShellCommand() {
    if (!run_) return;
    run_->owner = nullptr;
    run_->done = {};
    run_->kill_all();  // the exit callback then reaps it and the Run goes away
}

}  // namespace stanzad
