// ShellCommand: password commands run beside the event loop, with the sync version's rules
// (first line, 64 KiB, timeout, errors a user can act on).
#include <catch2/catch.hpp>

#include <optional>
#include <string>

#include "daemon/command.hpp"

using namespace stanzad;
using namespace std::chrono_literals;

namespace {

// Runs `command` on a fresh loop until its result comes.
xmpp::Result<std::string> run(const std::string& command, std::chrono::milliseconds timeout = 10s) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    std::optional<xmpp::Result<std::string>> result;
    {
        ShellCommand c(&loop, "password_command", command, timeout,
                       [&](xmpp::Result<std::string> r) { result = std::move(r); });
        CHECK_FALSE(result);  // never from inside the constructor
        while (!result && uv_run(&loop, UV_RUN_ONCE)) {}
    }
    uv_run(&loop, UV_RUN_DEFAULT);  // the handles' close callbacks
    CHECK(uv_loop_close(&loop) == 0);
    REQUIRE(result);
    return std::move(*result);
}

std::string error_of(const std::string& command, std::chrono::milliseconds timeout = 10s) {
    auto r = run(command, timeout);
    REQUIRE_FALSE(r);
    return r.error().message;
}

}  // namespace

TEST_CASE("command: the first line of the output, without its newline or a CR") {
    CHECK(run("printf 'secret\\nsecond line\\n'").value() == "secret");
    CHECK(run("printf 'crlf\\r\\n'").value() == "crlf");
    CHECK(run("printf 'no newline'").value() == "no newline");
    CHECK(run("read x; echo \"stdin:$x.\"").value() == "stdin:.");  // stdin is /dev/null
}

TEST_CASE("command: failures say what happened") {
    CHECK(error_of("exit 3") == "password_command exited with status 3");
    CHECK(error_of("echo leaked-secret; exit 3") == "password_command exited with status 3");  // never the output
    CHECK(error_of("no-such-command-stanzad 2>/dev/null") ==
          "password_command exited with status 127 (command not found)");
    CHECK(error_of("true") == "password_command printed nothing");
    CHECK(error_of("kill -TERM $$") == "password_command was killed by signal 15 (Terminated)");
    CHECK(error_of("sleep 30", 100ms) == "password_command did not finish within the time allowed; it was stopped");
}

TEST_CASE("command: something it leaves running with its stdout does not hold the result") {
    // `pass` may start gpg-agent, which keeps the output pipe open: the line is read anyway.
    CHECK(run("(sleep 3 &); echo from-agent-user").value() == "from-agent-user");
}

TEST_CASE("command: a runaway output is cut at 64 KiB") {
    // With a newline within the first 64 KiB the line is fine, whatever follows.
    CHECK(run("echo short; yes 2>/dev/null").value() == "short");
    CHECK(error_of("yes 2>/dev/null | tr -d '\\n'") == "password_command printed more than 64 KiB without a newline");
}

TEST_CASE("command: destroyed while running, it is killed and never calls back") {
    uv_loop_t loop;
    uv_loop_init(&loop);
    bool called = false;
    {
        ShellCommand c(&loop, "password_command", "sleep 30", 30s, [&](xmpp::Result<std::string>) { called = true; });
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    uv_run(&loop, UV_RUN_DEFAULT);  // returns once the killed shell is reaped and the handles closed
    CHECK_FALSE(called);
    CHECK(uv_loop_close(&loop) == 0);
}
