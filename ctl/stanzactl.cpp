// stanzactl: the command-line front end of stanzad, for shells and scripts
// (docs/stanzactl.md). It speaks the JSON-lines protocol (docs/json-protocol.md) over one
// blocking connection: hello, then at most one request. One thread; memory is bounded by
// one line from the daemon (Connection) and one message read from standard input.
//
// Every failure is one line on stderr and an exit status: 1 the request failed, 2 the
// command line is wrong, 3 the daemon cannot be reached.
#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <sys/random.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "ctl/connection.hpp"
#include "ctl/render.hpp"
#include "ctl/socket_path.hpp"

#ifndef STANZAD_VERSION
#define STANZAD_VERSION "unknown"
#endif

namespace {

using ctl::Json;
using Request = nlohmann::ordered_json;  // keeps "op" first, for people reading traces

constexpr int exit_failed = 1;
constexpr int exit_usage = 2;
constexpr int exit_unreachable = 3;

constexpr std::string_view client_name = "stanzactl";
constexpr int hello_id = 1;
constexpr int request_id = 2;
// The daemon skips longer lines (json-protocol.md, "The socket").
constexpr std::size_t daemon_max_line = 1u << 20;

constexpr std::string_view usage_text =
    R"(Usage: stanzactl [-c CONFIG] [-s SOCKET] [--json] COMMAND ...

Talks to stanzad over its JSON-lines socket.

Commands:
  send [--id ID] ACCOUNT JID TEXT
                      send a chat message; TEXT "-" reads it from standard input
                      (one trailing newline removed); prints the message id
  status              one line per account: name, state, JID, reason
  tail [--since N]    print events as they come; with --since N, first the stored
                      events after seq N
  roster ACCOUNT      one line per contact: JID, name, subscription, groups
  raw ACCOUNT XML     send one <message/>, <presence/> or <iq/>; XML "-" reads stdin

Options:
  -c, --config FILE   the config that names the socket
                      (default $XDG_CONFIG_HOME/stanzad/config.toml)
  -s, --socket PATH   the daemon's socket; overrides $STANZAD_SOCKET and the config
      --json          print the daemon's replies and events as they are (JSON lines)
      --id ID         send: the message id (1 to 128 printable ASCII characters);
                      sending again with the same ID does not send twice
      --since N       tail: replay the stored events after seq N first
  -h, --help          print this help
      --version       print the version

Exit status: 0 done, 1 the request failed, 2 usage error, 3 stanzad is not running.
)";

struct CommandSpec {
    std::string_view name;
    std::size_t arguments;
    std::string_view synopsis;
};

constexpr std::array<CommandSpec, 5> commands = {{
    {"send", 3, "stanzactl send [--id ID] ACCOUNT JID TEXT"},
    {"status", 0, "stanzactl status"},
    {"tail", 0, "stanzactl tail [--since N]"},
    {"roster", 1, "stanzactl roster ACCOUNT"},
    {"raw", 2, "stanzactl raw ACCOUNT XML"},
}};

constexpr std::string_view general_synopsis =
    "stanzactl [-c CONFIG] [-s SOCKET] [--json] send|status|tail|roster|raw ... (see stanzactl --help)";

struct Invocation {
    ctl::SocketOptions socket;
    bool json = false;
    const CommandSpec* command = nullptr;
    std::vector<std::string> arguments;
    std::optional<std::int64_t> since;   // tail --since
    std::optional<std::string> id;       // send --id
};

// ---- failures and output ----------------------------------------------------------------

[[noreturn]] void die(int status, const std::string& message) {
    std::fflush(stdout);
    std::fprintf(stderr, "stanzactl: %s\n", ctl::sanitize(message).c_str());
    std::exit(status);
}

[[noreturn]] void usage_error(const std::string& problem, std::string_view synopsis) {
    die(exit_usage, problem + "; usage: " + std::string(synopsis));
}

// Flushed at once: tail's readers (notify-send loops, grep --line-buffered) want each event
// when it happens. A reader that went away (EPIPE) has seen all it wanted: not an error.
void print(std::string_view text) {
    if (std::fwrite(text.data(), 1, text.size(), stdout) == text.size() && std::fflush(stdout) == 0) return;
    if (errno == EPIPE) std::_Exit(0);
    die(exit_failed, std::string("cannot write to standard output: ") + std::strerror(errno));
}

// ---- the command line -------------------------------------------------------------------

const CommandSpec* find_command(std::string_view name) {
    auto it = std::find_if(commands.begin(), commands.end(), [&](const CommandSpec& c) { return c.name == name; });
    return it == commands.end() ? nullptr : &*it;
}

bool takes_value(std::string_view option) {
    return option == "-c" || option == "--config" || option == "-s" || option == "--socket" ||
           option == "--since" || option == "--id";
}

// Splits "--name=value" and "-cvalue"; takes the next argument when the value is not attached.
std::pair<std::string, std::string> option_and_value(int argc, char** argv, int& i) {
    std::string arg = argv[i];
    std::string name = arg, value;
    bool attached = false;
    if (arg.starts_with("--")) {
        if (auto eq = arg.find('='); eq != std::string::npos) {
            name = arg.substr(0, eq);
            value = arg.substr(eq + 1);
            attached = true;
        }
    } else if (arg.size() > 2) {
        name = arg.substr(0, 2);
        value = arg.substr(2);
        attached = true;
    }
    if (!takes_value(name)) {
        if (attached && (name == "--json" || name == "--help" || name == "--version"))
            usage_error("option " + name + " takes no value", general_synopsis);
        usage_error("unknown option '" + arg + "'", general_synopsis);
    }
    if (!attached) {
        if (i + 1 >= argc) usage_error("option " + name + " needs a value", general_synopsis);
        value = argv[++i];
    }
    return {name, value};
}

std::int64_t parse_seq(const std::string& text) {
    std::int64_t seq = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seq);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || seq < 0 || text[0] == '+')
        usage_error("--since needs a number >= 0, not '" + text + "'", "stanzactl tail [--since N]");
    return seq;
}

// The daemon's rule for client_id (json-protocol.md, send), checked here so that a bad ID
// is a usage error like the others.
bool valid_client_id(const std::string& id) {
    return !id.empty() && id.size() <= 128 &&
           std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

void apply_option(Invocation& inv, const std::string& name, const std::string& value) {
    if (value.empty()) usage_error("option " + name + " needs a non-empty value", general_synopsis);
    if (name == "-c" || name == "--config") inv.socket.config = value;
    else if (name == "-s" || name == "--socket") inv.socket.socket = value;
    else if (name == "--since") inv.since = parse_seq(value);
    else if (!valid_client_id(value))
        usage_error("--id needs 1 to 128 printable ASCII characters without spaces",
                    "stanzactl send [--id ID] ACCOUNT JID TEXT");
    else inv.id = value;
}

void check_arguments(const Invocation& inv, const std::vector<std::string>& positional) {
    const CommandSpec& c = *inv.command;
    std::size_t given = positional.size() - 1;
    if (given != c.arguments) {
        std::string expected = c.arguments == 0   ? "no arguments"
                               : c.arguments == 1 ? "1 argument"
                                                  : std::to_string(c.arguments) + " arguments";
        std::string problem = std::string(c.name) + " takes " + expected + ", got " + std::to_string(given);
        if (given > c.arguments && (c.name == "send" || c.name == "raw")) problem += " (quote the text)";
        usage_error(problem, c.synopsis);
    }
    if (inv.since && c.name != "tail") usage_error("--since is an option of tail", "stanzactl tail [--since N]");
    if (inv.id && c.name != "send") usage_error("--id is an option of send", "stanzactl send [--id ID] ACCOUNT JID TEXT");
}

// Options may come before or after the command (`stanzactl tail --json`); "--" ends them,
// for a TEXT that starts with '-'. "-" alone is an argument (standard input).
Invocation parse_invocation(int argc, char** argv) {
    Invocation inv;
    std::vector<std::string> positional;
    bool options_done = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (options_done || arg.size() < 2 || arg[0] != '-') positional.push_back(arg);
        else if (arg == "--") options_done = true;
        else if (arg == "-h" || arg == "--help") {
            print(usage_text);
            std::exit(0);
        } else if (arg == "--version") {
            print("stanzactl " STANZAD_VERSION "\n");
            std::exit(0);
        } else if (arg == "--json") inv.json = true;
        else {
            auto [name, value] = option_and_value(argc, argv, i);
            apply_option(inv, name, value);
        }
    }
    if (positional.empty()) usage_error("no command", general_synopsis);
    inv.command = find_command(positional[0]);
    if (!inv.command)
        die(exit_usage, "unknown command '" + positional[0] +
                            "' (commands: send, status, tail, roster, raw; see stanzactl --help)");
    check_arguments(inv, positional);
    inv.arguments.assign(positional.begin() + 1, positional.end());
    return inv;
}

// ---- input ------------------------------------------------------------------------------

// All of standard input, one trailing newline removed. Reading stops just past the daemon's
// line limit: the request is then too long whatever the rest holds.
std::string read_stdin() {
    std::string text;
    char chunk[65536];
    while (text.size() <= daemon_max_line) {
        ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die(exit_failed, std::string("cannot read standard input: ") + std::strerror(errno));
        if (n == 0) break;
        text.append(chunk, static_cast<std::size_t>(n));
    }
    if (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
}

// The JSON library refuses to encode invalid UTF-8; say which argument it was.
void require_utf8(const std::string& value, std::string_view what) {
    try {
        (void)Json(value).dump();
    } catch (const Json::type_error&) {
        die(exit_usage, std::string(what) + " is not valid UTF-8");
    }
}

// "stanzactl-" and 16 random hex digits: unique enough that two invocations never share it.
std::string random_client_id() {
    unsigned char bytes[8];
    if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
        std::random_device device;
        for (auto& b : bytes) b = static_cast<unsigned char>(device());
    }
    std::string id(client_name);
    id += '-';
    constexpr char hex[] = "0123456789abcdef";
    for (unsigned char b : bytes) {
        id += hex[b >> 4];
        id += hex[b & 0xF];
    }
    return id;
}

// ---- talking to the daemon --------------------------------------------------------------

ctl::Connection connect_or_die(const ctl::SocketLocation& where) {
    ctl::Connection conn;
    int error = conn.connect_to(where.path);
    if (error == 0) return conn;
    std::string line;
    if (error == ENOENT) line = "stanzad is not running (no socket at " + where.path + ")";
    else if (error == ECONNREFUSED) line = "stanzad is not running (connection refused at " + where.path + ")";
    else if (error == ENAMETOOLONG) line = "cannot connect to " + where.path + ": the path is too long for a Unix socket";
    else line = "cannot connect to " + where.path + ": " + std::strerror(error);
    if (!where.doubt.empty()) line += "; " + where.doubt;
    die(exit_unreachable, line);
}

// The line to send. Checked before connecting, so that nothing reaches the daemon when the
// request cannot be valid.
std::string encode_request(const Request& request) {
    std::string line = request.dump();
    if (line.size() > daemon_max_line)
        die(exit_failed, "line-too-long: the request is longer than the daemon's limit of " +
                             std::to_string(daemon_max_line) + " bytes (1 MiB); nothing was sent");
    return line;
}

void send_line(ctl::Connection& conn, const std::string& line) {
    if (conn.write_line(line)) return;
    if (errno == EPIPE || errno == ECONNRESET) die(exit_failed, "the daemon closed the connection");
    die(exit_failed, std::string("cannot write to the daemon: ") + std::strerror(errno));
}

Json parse_line(const std::string& line) {
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
        std::string excerpt = line.size() > 60 ? line.substr(0, 60) + "..." : line;
        die(exit_failed, "the daemon sent a line that is not a JSON object: " + excerpt);
    }
    return j;
}

// A line that ended the read: the connection closed, a signal, an error.
[[noreturn]] void die_on_read(const ctl::ReadResult& r, const std::string& closed_hint) {
    if (r.kind == ctl::ReadResult::Kind::Stopped) std::exit(0);
    if (r.kind == ctl::ReadResult::Kind::Closed) die(exit_failed, "the daemon closed the connection" + closed_hint);
    die(exit_failed, r.text);
}

struct Reply {
    Json json;
    std::string line;  // as received, for --json
};

[[noreturn]] void die_with_error(const Json& reply) {
    const Json empty = Json::object();
    auto it = reply.find("error");
    const Json& error = it != reply.end() && it->is_object() ? *it : empty;
    auto field = [&](const char* name, const char* fallback) {
        auto f = error.find(name);
        return f != error.end() && f->is_string() ? f->get<std::string>() : std::string(fallback);
    };
    die(exit_failed, field("code", "error") + ": " + field("message", "the daemon gave no reason"));
}

// Reads until the reply to request `id`, dropping events. Replies come in request order
// and we have one request out, so a reply without an id (the daemon could not read our
// line) is ours too.
Reply await_reply(ctl::Connection& conn, int id, const std::string& closed_hint = "") {
    for (;;) {
        ctl::ReadResult r = conn.read_line();
        if (r.kind != ctl::ReadResult::Kind::Line) die_on_read(r, closed_hint);
        Json j = parse_line(r.text);
        if (j.contains("event")) continue;
        auto reply_id = j.find("id");
        if (reply_id != j.end() && *reply_id != Json(id))
            die(exit_failed, "the daemon answered request " + reply_id->dump() + " while stanzactl waited for " +
                                 std::to_string(id));
        auto ok = j.find("ok");
        if (ok == j.end() || !ok->is_boolean() || !ok->get<bool>()) die_with_error(j);
        return {std::move(j), std::move(r.text)};
    }
}

// replay false: a one-shot command wants no backlog. tail --since N asks for the events
// after N. Either way stanzactl never acks, so its cursor stays where it is.
void hello(ctl::Connection& conn, const Invocation& inv) {
    Request request = {{"op", "hello"}, {"id", hello_id}, {"client", client_name}};
    if (inv.since) request["since"] = *inv.since;
    request["replay"] = inv.since.has_value();
    send_line(conn, encode_request(request));
    await_reply(conn, hello_id);
}

const Json& member_or_empty_array(const Json& j, const char* name) {
    static const Json empty = Json::array();
    auto it = j.find(name);
    return it != j.end() && it->is_array() ? *it : empty;
}

// ---- commands ---------------------------------------------------------------------------

// A one-shot command: its request, built (reading standard input if asked) before
// connecting, and what to say when the connection ends before the reply.
struct OneShot {
    Request request;
    std::string closed_hint;
};

std::string text_argument(const std::string& argument) { return argument == "-" ? read_stdin() : argument; }

OneShot send_command(const Invocation& inv) {
    std::string body = text_argument(inv.arguments[2]);
    require_utf8(inv.arguments[0], "ACCOUNT");
    require_utf8(inv.arguments[1], "JID");
    require_utf8(body, "the message");
    std::string client_id = inv.id ? *inv.id : random_client_id();
    Request request = {{"op", "send"},         {"id", request_id}, {"account", inv.arguments[0]},
                       {"to", inv.arguments[1]}, {"body", body},     {"type", "chat"},
                       {"client_id", client_id}};
    // Between our line and the reply the daemon may or may not have stored the message.
    return {std::move(request), " before confirming the message; it may or may not be stored: to retry "
                                "without sending it twice, use --id " + client_id};
}

OneShot raw_command(const Invocation& inv) {
    std::string xml = text_argument(inv.arguments[1]);
    require_utf8(inv.arguments[0], "ACCOUNT");
    require_utf8(xml, "the XML");
    return {{{"op", "raw"}, {"id", request_id}, {"account", inv.arguments[0]}, {"xml", xml}}, ""};
}

OneShot one_shot(const Invocation& inv) {
    std::string_view name = inv.command->name;
    if (name == "send") return send_command(inv);
    if (name == "raw") return raw_command(inv);
    if (name == "roster") {
        require_utf8(inv.arguments[0], "ACCOUNT");
        return {{{"op", "roster"}, {"id", request_id}, {"account", inv.arguments[0]}}, ""};
    }
    return {{{"op", "accounts"}, {"id", request_id}}, ""};
}

// What a successful reply prints: --json, the reply as it came; else the msg_id (send),
// a table (status, roster), or nothing (raw).
std::string reply_text(const Invocation& inv, const Reply& reply) {
    if (inv.json) return reply.line + '\n';
    std::string_view name = inv.command->name;
    if (name == "status") return ctl::render_accounts(member_or_empty_array(reply.json, "accounts"));
    if (name == "roster") return ctl::render_roster(member_or_empty_array(reply.json, "items"));
    if (name == "send") {
        auto msg_id = reply.json.find("msg_id");
        if (msg_id == reply.json.end() || !msg_id->is_string())
            die(exit_failed, "the daemon's reply has no msg_id: " + reply.line);
        return msg_id->get<std::string>() + '\n';
    }
    return "";
}

volatile std::sig_atomic_t stop_requested = 0;
sigset_t wait_mask;

extern "C" void on_stop_signal(int) { stop_requested = 1; }

// SIGINT, SIGTERM and SIGHUP end tail with status 0. They stay blocked except while
// waiting for the daemon (ppoll), so none is lost between checking the flag and waiting.
// A signal the shell set to be ignored (a background job) stays ignored.
void catch_stop_signals(ctl::Connection& conn) {
    sigset_t block;
    sigemptyset(&block);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
        struct sigaction old {};
        sigaction(sig, nullptr, &old);
        if (old.sa_handler == SIG_IGN) continue;
        struct sigaction sa {};
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(sig, &sa, nullptr);
        sigaddset(&block, sig);
    }
    sigprocmask(SIG_BLOCK, &block, &wait_mask);
    conn.set_stop(&stop_requested, &wait_mask);
}

// Never sends ack: a one-off viewer must not move the cursor of the name "stanzactl".
[[noreturn]] void run_tail(ctl::Connection& conn, const Invocation& inv) {
    catch_stop_signals(conn);
    hello(conn, inv);
    for (;;) {
        ctl::ReadResult r = conn.read_line();
        if (r.kind != ctl::ReadResult::Kind::Line) die_on_read(r, "");
        Json j = parse_line(r.text);
        if (!j.contains("event")) continue;  // no request is out: nothing to answer
        print(inv.json ? r.text + '\n' : ctl::render_event(j, std::time(nullptr)));
    }
}

ctl::Connection open_connection(const Invocation& inv) {
    auto where = ctl::find_socket(inv.socket);
    if (!where)
        die(where.error().code == "bad-config" ? exit_usage : exit_unreachable, where.error().message);
    return connect_or_die(where.value());
}

int run(int argc, char** argv) {
    // Writes to a closed pipe or socket are errors to handle where they happen.
    std::signal(SIGPIPE, SIG_IGN);
    Invocation inv = parse_invocation(argc, argv);
    if (inv.command->name == "tail") {
        ctl::Connection conn = open_connection(inv);
        run_tail(conn, inv);
    }
    // Standard input is read before connecting: a slow producer must not hold a
    // connection open, and the daemon may restart meanwhile.
    OneShot command = one_shot(inv);
    std::string line = encode_request(command.request);
    ctl::Connection conn = open_connection(inv);
    hello(conn, inv);
    send_line(conn, line);
    Reply reply = await_reply(conn, request_id, command.closed_hint);
    print(reply_text(inv, reply));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        // Our bug or memory exhaustion; still one line.
        die(exit_failed, std::string("internal error: ") + e.what());
    }
}
