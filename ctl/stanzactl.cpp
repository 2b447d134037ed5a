// stanzactl: the command-line front end of stanzad, for shells and scripts
// (docs/stanzactl.md). It speaks the JSON-lines protocol (docs/json-protocol.md) over one
// blocking connection: hello, then at most two requests, one after the other (roster add:
// roster-set, then subscribe). One thread; memory is bounded by one line from the daemon
// (Connection) and one message read from standard input.
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
#include "ctl/setup.hpp"
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
  history [-n N] [--before ID] ACCOUNT JID
                      the last N archived messages with JID (a contact or a room),
                      oldest first, one a line with date and time
  presence ACCOUNT [online|away|chat|dnd|xa] [STATUS...]
                      set our presence (default online); the words after the show
                      are the status text
  raw ACCOUNT XML     send one <message/>, <presence/> or <iq/>; XML "-" reads stdin
  pin ACCOUNT         connect to the account's server as the daemon would, print its
                      certificate's key pin (for tls_pin) and summary; changes nothing

Contacts:
  roster ACCOUNT      one line per contact: JID, name, subscription, groups
  roster add [--group G]... [--no-subscribe] ACCOUNT JID [NAME]
                      add a contact, or replace its name and groups; then ask for
                      its presence (subscribe)
  roster remove ACCOUNT JID
                      remove a contact; cancels the subscriptions both ways
                      ("roster add" and "roster remove" are these subcommands even
                      when an account is named add or remove)
  subscribe|unsubscribe ACCOUNT JID
                      ask to see JID's presence, or stop seeing it
  approve|deny ACCOUNT JID
                      let JID see our presence (also before it asks), or refuse
                      its request or cancel its subscription
  block ACCOUNT JID...
                      block JIDs (XEP-0191)
  unblock ACCOUNT [JID...]
                      unblock JIDs; without any, everyone
  blocklist ACCOUNT   the blocked JIDs, one a line

Encryption (OMEMO, docs/encryption.md):
  encryption ACCOUNT JID [omemo|off|default]
                      show or set whether messages to JID are encrypted
  omemo devices ACCOUNT [JID]
                      our device and JID's (or our other ones), with fingerprints
                      and trust
  omemo trust|distrust ACCOUNT JID DEVICE
                      trust (verified) or distrust one device of JID

Rooms:
  join [--password PW] ACCOUNT ROOM [NICK]
                      join a room (and rejoin it after every new session until
                      part); prints our nick and one line per occupant
  part ACCOUNT ROOM [REASON]
                      leave a room
  rooms ACCOUNT       one line per room: room, state, occupants, nick, subject

Setup:
  init [--jid JID] [--name NAME] [--password-command CMD | --password PW] [--irc] [--force]
                      write a first config (mode 0600) at -c FILE or the default
                      path and check it; without --jid, asks on the terminal
  doctor              check the config, the daemon, each account, the socket and
                      the store, and say what to do about each problem

Help:
  help [COMMAND]      this text, or a command's usage and description
  complete WHAT [ACCOUNT]
                      for shell completion: commands, accounts, contacts ACCOUNT or
                      rooms ACCOUNT, one a line; nothing when stanzad is not running

Options:
  -c, --config FILE   the config that names the socket
                      (default $XDG_CONFIG_HOME/stanzad/config.toml)
  -s, --socket PATH   the daemon's socket; overrides $STANZAD_SOCKET and the config
      --json          print the daemon's replies and events as they are (JSON lines)
      --id ID         send: the message id (1 to 128 printable ASCII characters);
                      sending again with the same ID does not send twice
      --since N       tail: replay the stored events after seq N first
  -n N                history: how many messages, 1 to 200 (default 50)
      --before ID     history: the page before the archive id ID (the "first" of
                      an earlier --json reply)
      --password PW   join: the room's password; PW "-" reads it from standard input
      --group G       roster add: a group of the contact (repeat for more)
      --no-subscribe  roster add: do not ask for the contact's presence
      --jid JID       init: the account's address (else init asks)
      --name NAME     init: the account's short name (default: the JID's local part)
      --password-command CMD
                      init: the command that prints the password
      --password PW   init: the password itself, kept in the file ("-": stdin)
      --irc           init: an IRC listener on 127.0.0.1:6667, generated password
      --force         init: replace an existing config
  -h, --help          print this help
      --version       print the version

Exit status: 0 done, 1 the request failed, 2 usage error, 3 stanzad is not running.
)";

// max_arguments `any`: the last ones are a list (JIDs, words of a status).
constexpr std::size_t any = std::numeric_limits<std::size_t>::max();

struct CommandSpec {
    std::string_view name;       // "roster add": a subcommand
    std::size_t min_arguments, max_arguments;
    std::string_view synopsis;   // as in stanzactl(1), which a test compares
    std::string_view last_text;  // the last argument, when it is free text: "quote ..." hint
    std::string_view description;  // for `stanzactl help COMMAND`, as in stanzactl(1)
};

constexpr std::array<CommandSpec, 28> commands = {{
    {"send", 3, 3, "stanzactl send [--id ID] ACCOUNT JID TEXT", "the text",
     "Send a chat message and print its id once the daemon has stored it (it is then sent,\n"
     "also across reconnections and restarts). TEXT \"-\" reads standard input (one trailing\n"
     "newline removed). With --id ID (1 to 128 printable ASCII characters) sending again\n"
     "with the same ID does not send twice."},
    {"status", 0, 0, "stanzactl status", "",
     "One line per account: name, state (connecting, online, disconnected, failed,\n"
     "stopped), JID, and how it signed in or why it is not online."},
    {"tail", 0, 0, "stanzactl tail [--since N]", "",
     "Print events as they happen, until interrupted; with --since N, first the stored\n"
     "events after sequence number N."},
    {"history", 2, 2, "stanzactl history [-n N] [--before ID] ACCOUNT JID", "",
     "The last N (1 to 200, default 50) archived messages with a contact or in a room,\n"
     "oldest first; --before ID pages back."},
    {"presence", 1, any, "stanzactl presence ACCOUNT [online|away|chat|dnd|xa] [STATUS...]", "",
     "Set our presence (default online); the words after the show are the status text."},
    {"raw", 2, 2, "stanzactl raw ACCOUNT XML", "the XML",
     "Send one <message/>, <presence/> or <iq/>; XML \"-\" reads standard input."},
    {"roster", 1, 1, "stanzactl roster ACCOUNT", "", "One line per contact: JID, name, subscription, groups."},
    {"roster add", 2, 3, "stanzactl roster add [--group G]... [--no-subscribe] ACCOUNT JID [NAME]", "the name",
     "Add a contact, or replace its name and groups; then ask for its presence unless\n"
     "--no-subscribe."},
    {"roster remove", 2, 2, "stanzactl roster remove ACCOUNT JID", "",
     "Remove a contact; cancels the subscriptions both ways."},
    {"subscribe", 2, 2, "stanzactl subscribe ACCOUNT JID", "", "Ask to see JID's presence."},
    {"unsubscribe", 2, 2, "stanzactl unsubscribe ACCOUNT JID", "", "Stop seeing JID's presence."},
    {"approve", 2, 2, "stanzactl approve ACCOUNT JID", "", "Let JID see our presence (also before it asks)."},
    {"deny", 2, 2, "stanzactl deny ACCOUNT JID", "", "Refuse JID's request, or cancel its subscription."},
    {"block", 2, any, "stanzactl block ACCOUNT JID...", "", "Block JIDs (XEP-0191)."},
    {"unblock", 1, any, "stanzactl unblock ACCOUNT [JID...]", "", "Unblock JIDs; without any, everyone."},
    {"blocklist", 1, 1, "stanzactl blocklist ACCOUNT", "", "The blocked JIDs, one a line."},
    {"encryption", 2, 3, "stanzactl encryption ACCOUNT JID [omemo|off|default]", "",
     "Show or set whether messages to JID are encrypted with OMEMO: omemo (always; a send\n"
     "fails rather than go in clear), off, or default (the account's encryption setting)."},
    {"omemo devices", 1, 2, "stanzactl omemo devices ACCOUNT [JID]", "",
     "Our OMEMO device and the devices of JID (and our own other devices) whose keys\n"
     "are known, one a line: JID, device id, trust, fingerprint."},
    {"omemo trust", 3, 3, "stanzactl omemo trust ACCOUNT JID DEVICE", "",
     "Mark a device of JID as trusted, after comparing its fingerprint with the one its\n"
     "owner sees. From then on, new devices of JID are not used until decided."},
    {"omemo distrust", 3, 3, "stanzactl omemo distrust ACCOUNT JID DEVICE", "",
     "Distrust a device of JID: nothing is encrypted for it, its messages are refused."},
    {"join", 2, 3, "stanzactl join [--password PW] ACCOUNT ROOM [NICK]", "the nick",
     "Join a room (and rejoin it after every new session until part); prints our nick\n"
     "and the occupants. PW \"-\" reads the room password from standard input."},
    {"part", 2, 3, "stanzactl part ACCOUNT ROOM [REASON]", "the reason", "Leave a room."},
    {"rooms", 1, 1, "stanzactl rooms ACCOUNT", "", "One line per room: room, state, occupants, nick, subject."},
    {"pin", 1, 1, "stanzactl pin ACCOUNT", "",
     "Connect to the account's server as the daemon would and print its certificate's key\n"
     "pin (for tls_pin) and summary. Changes nothing."},
    {"init", 0, 0, "stanzactl init [--jid JID] [--name NAME] [--password-command CMD | --password PW] [--irc] [--force]",
     "",
     "Write a first configuration (mode 0600) at the -c file or the default path, check\n"
     "it as stanzad --check-config does, and print how to start the daemon. Without\n"
     "--jid it asks, on a terminal, for the JID and how to get the password (pass or\n"
     "secret-tool suggested first; a plain password only on request) and whether to add\n"
     "an IRC listener. --password-command CMD: a command that prints the password;\n"
     "--password PW: the password itself, written to the file (\"-\" reads it from\n"
     "standard input); --irc: an IRC listener on 127.0.0.1:6667 with a generated\n"
     "password, printed once; --name: the account's short name (default: the JID's\n"
     "local part). Refuses to replace an existing file without --force."},
    {"doctor", 0, 0, "stanzactl doctor", "",
     "Check a setup: the configuration is valid and private, the daemon answers, each\n"
     "account's state and last error, the socket's and the store's modes, the store's\n"
     "size. Prints one line per check (ok, warning or problem) with what to do about\n"
     "each problem."},
    {"help", 0, 2, "stanzactl help [COMMAND]", "", "Print the usage, or a command's usage and description."},
    {"complete", 1, 2, "stanzactl complete WHAT [ACCOUNT]", "",
     "For shell completion: the names of the commands, the accounts, the contacts\n"
     "of ACCOUNT or the rooms of ACCOUNT, one a line. Prints nothing, and exits 0,\n"
     "when the daemon is not running."},
}};

constexpr std::string_view general_synopsis =
    "stanzactl [-c CONFIG] [-s SOCKET] [--json] COMMAND ... (see stanzactl --help)";

// The show of `presence`: the word on the command line and the protocol's value.
constexpr std::array<std::pair<std::string_view, std::string_view>, 5> shows = {{
    {"online", ""}, {"away", "away"}, {"chat", "chat"}, {"dnd", "dnd"}, {"xa", "xa"}}};

// The daemon's bounds for history's max (json-protocol.md, history).
constexpr int history_default = 50;
constexpr int history_max = 200;

// complete: how long a shell completion may wait for the daemon.
constexpr unsigned complete_wait_seconds = 2;

struct Invocation {
    ctl::SocketOptions socket;
    bool json = false;
    const CommandSpec* command = nullptr;
    std::vector<std::string> arguments;
    std::optional<std::int64_t> since;   // tail --since
    std::optional<std::string> id;       // send --id
    std::optional<int> max;              // history -n
    std::optional<std::string> before;   // history --before
    std::optional<std::string> password; // join --password
    std::vector<std::string> groups;     // roster add --group
    bool no_subscribe = false;           // roster add --no-subscribe
    ctl::InitOptions init;               // init --jid, --name, --password-command, --irc, --force
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

const CommandSpec& command_named(std::string_view name) {
    const CommandSpec* c = find_command(name);
    if (!c) die(exit_failed, "internal error: no command " + std::string(name));
    return *c;
}

// "send, status, ..." for the unknown-command line: the top-level names, once each.
std::string command_list() {
    std::string out;
    for (const CommandSpec& c : commands) {
        if (c.name.find(' ') != std::string_view::npos) continue;
        if (!out.empty()) out += ", ";
        out += c.name;
    }
    return out + ", omemo devices|trust|distrust";
}

bool takes_value(std::string_view option) {
    return option == "-c" || option == "--config" || option == "-s" || option == "--socket" ||
           option == "--since" || option == "--id" || option == "-n" || option == "--before" ||
           option == "--password" || option == "--group" || option == "--jid" || option == "--name" ||
           option == "--password-command";
}

bool is_flag(std::string_view option) {
    return option == "--json" || option == "--help" || option == "--version" || option == "--no-subscribe" ||
           option == "--irc" || option == "--force";
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
        if (attached && is_flag(name)) usage_error("option " + name + " takes no value", general_synopsis);
        usage_error("unknown option '" + arg + "'", general_synopsis);
    }
    if (!attached) {
        if (i + 1 >= argc) usage_error("option " + name + " needs a value", general_synopsis);
        value = argv[++i];
    }
    return {name, value};
}

// A decimal number from `low` to `high`, without sign or spaces; nullopt otherwise.
std::optional<std::int64_t> parse_number(const std::string& text, std::int64_t low, std::int64_t high) {
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || text[0] == '+' || text[0] == '-' ||
        n < low || n > high)
        return std::nullopt;
    return n;
}

std::int64_t parse_seq(const std::string& text) {
    auto seq = parse_number(text, 0, std::numeric_limits<std::int64_t>::max());
    if (!seq) usage_error("--since needs a number >= 0, not '" + text + "'", "stanzactl tail [--since N]");
    return *seq;
}

int parse_max(const std::string& text) {
    auto n = parse_number(text, 1, history_max);
    if (!n)
        usage_error("-n needs a number from 1 to " + std::to_string(history_max) + ", not '" + text + "'",
                    command_named("history").synopsis);
    return static_cast<int>(*n);
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
    else if (name == "-n") inv.max = parse_max(value);
    else if (name == "--before") inv.before = value;
    else if (name == "--password") inv.password = value;
    else if (name == "--group") inv.groups.push_back(value);
    else if (name == "--jid") inv.init.jid = value;
    else if (name == "--name") inv.init.name = value;
    else if (name == "--password-command") inv.init.password_command = value;
    else if (!valid_client_id(value))
        usage_error("--id needs 1 to 128 printable ASCII characters without spaces",
                    command_named("send").synopsis);
    else inv.id = value;
}

std::string count_of_arguments(std::size_t n) { return n == 1 ? "1 argument" : std::to_string(n) + " arguments"; }

// "no arguments", "2 arguments", "2 or 3 arguments", "at least 1 argument"
std::string expected_arguments(const CommandSpec& c) {
    if (c.max_arguments == 0) return "no arguments";
    if (c.max_arguments == any) return "at least " + count_of_arguments(c.min_arguments);
    if (c.min_arguments == c.max_arguments) return count_of_arguments(c.min_arguments);
    return std::to_string(c.min_arguments) + (c.min_arguments + 1 == c.max_arguments ? " or " : " to ") +
           count_of_arguments(c.max_arguments);
}

void check_arguments(const Invocation& inv, const std::vector<std::string>& arguments) {
    const CommandSpec& c = *inv.command;
    std::size_t given = arguments.size();
    if (given < c.min_arguments || given > c.max_arguments) {
        std::string expected = expected_arguments(c);
        std::string problem = std::string(c.name) + " takes " + expected + ", got " + std::to_string(given);
        if (given > c.max_arguments && !c.last_text.empty()) problem += " (quote " + std::string(c.last_text) + ")";
        if (given > c.max_arguments && c.name == "roster") problem += " (to add a contact: stanzactl roster add ...)";
        // An account named add or remove cannot be listed: the subcommand wins.
        if (c.name.starts_with("roster ") && given == 0)
            problem += " (\"" + std::string(c.name) + "\" is the subcommand, not the roster of an account named " +
                       std::string(c.name.substr(7)) + ")";
        usage_error(problem, c.synopsis);
    }
    // Each option belongs to one command.
    auto only_for = [&](bool given_option, std::string_view option, std::string_view command) {
        if (given_option && c.name != command)
            usage_error(std::string(option) + " is an option of " + std::string(command),
                        command_named(command).synopsis);
    };
    only_for(inv.since.has_value(), "--since", "tail");
    only_for(inv.id.has_value(), "--id", "send");
    only_for(inv.max.has_value(), "-n", "history");
    only_for(inv.before.has_value(), "--before", "history");
    if (inv.password && c.name != "join" && c.name != "init")
        usage_error("--password is an option of join and init", command_named("join").synopsis);
    only_for(!inv.init.jid.empty(), "--jid", "init");
    only_for(!inv.init.name.empty(), "--name", "init");
    only_for(!inv.init.password_command.empty(), "--password-command", "init");
    only_for(inv.init.irc, "--irc", "init");
    only_for(inv.init.force, "--force", "init");
    only_for(!inv.groups.empty(), "--group", "roster add");
    only_for(inv.no_subscribe, "--no-subscribe", "roster add");
}

// Options may come before or after the command (`stanzactl tail --json`); "--" ends them,
// for a TEXT that starts with '-'. "-" alone is an argument (standard input).
// `roster add` and `roster remove` are subcommands: they win over an account named "add"
// or "remove" (docs/stanzactl.md, roster).
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
        else if (arg == "--no-subscribe") inv.no_subscribe = true;
        else if (arg == "--irc") inv.init.irc = true;
        else if (arg == "--force") inv.init.force = true;
        else {
            auto [name, value] = option_and_value(argc, argv, i);
            apply_option(inv, name, value);
        }
    }
    if (positional.empty()) usage_error("no command", general_synopsis);
    std::size_t words = 1;
    if (positional[0] == "roster" && positional.size() >= 2 && (positional[1] == "add" || positional[1] == "remove"))
        words = 2;
    if (positional[0] == "omemo" && positional.size() >= 2) words = 2;
    std::string name = words == 2 ? positional[0] + " " + positional[1] : positional[0];
    inv.command = find_command(name);
    if (!inv.command)
        die(exit_usage, "unknown command '" + positional[0] + "' (commands: " + command_list() +
                            "; see stanzactl --help)");
    inv.arguments.assign(positional.begin() + static_cast<std::ptrdiff_t>(words), positional.end());
    check_arguments(inv, inv.arguments);
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

// `note` follows the daemon's message (what was done before this request failed).
[[noreturn]] void die_with_error(const Json& reply, const std::string& note = "") {
    const Json empty = Json::object();
    auto it = reply.find("error");
    const Json& error = it != reply.end() && it->is_object() ? *it : empty;
    auto field = [&](const char* name, const char* fallback) {
        auto f = error.find(name);
        return f != error.end() && f->is_string() ? f->get<std::string>() : std::string(fallback);
    };
    die(exit_failed, field("code", "error") + ": " + field("message", "the daemon gave no reason") + note);
}

// Reads until the reply to request `id`, dropping events. Replies come in request order
// and we have one request out, so a reply without an id (the daemon could not read our
// line) is ours too.
Reply await_reply(ctl::Connection& conn, int id, const std::string& closed_hint = "",
                  const std::string& error_note = "") {
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
        if (ok == j.end() || !ok->is_boolean() || !ok->get<bool>()) die_with_error(j, error_note);
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

// One request of a command, built (reading standard input if asked) before connecting.
struct Step {
    Request request;
    std::string closed_hint;  // what to say when the connection ends before its reply
    std::string error_note;   // what to add when it fails: what the earlier steps did
};

// The requests of a one-shot command, sent one after the other, each only once the one
// before it succeeded. Their ids are request_id, request_id + 1, ...
using Plan = std::vector<Step>;

std::string text_argument(const std::string& argument) { return argument == "-" ? read_stdin() : argument; }

// The argument `i`, checked: the JSON library cannot encode invalid UTF-8.
const std::string& argument(const Invocation& inv, std::size_t i, std::string_view what) {
    require_utf8(inv.arguments[i], what);
    return inv.arguments[i];
}

Request request_for(std::string_view op, const Invocation& inv) {
    return {{"op", op}, {"id", request_id}, {"account", argument(inv, 0, "ACCOUNT")}};
}

Plan send_command(const Invocation& inv) {
    std::string body = text_argument(inv.arguments[2]);
    Request request = request_for("send", inv);
    request["to"] = argument(inv, 1, "JID");
    require_utf8(body, "the message");
    std::string client_id = inv.id ? *inv.id : random_client_id();
    request["body"] = body;
    request["type"] = "chat";
    request["client_id"] = client_id;
    // Between our line and the reply the daemon may or may not have stored the message.
    return {{std::move(request), " before confirming the message; it may or may not be stored: to retry "
                                 "without sending it twice, use --id " + client_id, ""}};
}

Plan raw_command(const Invocation& inv) {
    std::string xml = text_argument(inv.arguments[1]);
    Request request = request_for("raw", inv);
    require_utf8(xml, "the XML");
    request["xml"] = xml;
    return {{std::move(request), "", ""}};
}

// show: the first word after ACCOUNT, when there is one; the rest is the status, its words
// joined by single spaces.
Plan presence_command(const Invocation& inv) {
    Request request = request_for("presence", inv);
    std::string show;
    if (inv.arguments.size() > 1) {
        const std::string& word = argument(inv, 1, "the show");
        auto it = std::find_if(shows.begin(), shows.end(), [&](const auto& s) { return s.first == word; });
        if (it == shows.end())
            usage_error("'" + word + "' is not a show (online, away, chat, dnd, xa)",
                        command_named("presence").synopsis);
        show = it->second;
    }
    request["show"] = show;
    std::string status;
    for (std::size_t i = 2; i < inv.arguments.size(); ++i)
        status += (i > 2 ? " " : "") + argument(inv, i, "STATUS");
    if (!status.empty()) request["status"] = status;
    return {{std::move(request), "", ""}};
}

// roster-set, then (unless --no-subscribe) subscribe. NAME and the groups are sent only
// when given.
Plan roster_add_command(const Invocation& inv) {
    const std::string& jid = argument(inv, 1, "JID");
    Request set = request_for("roster-set", inv);
    set["jid"] = jid;
    if (inv.arguments.size() > 2) set["name"] = argument(inv, 2, "NAME");
    for (const auto& g : inv.groups) require_utf8(g, "--group");
    if (!inv.groups.empty()) set["groups"] = inv.groups;
    Plan plan{{std::move(set), "", ""}};
    if (inv.no_subscribe) return plan;
    Request subscribe = request_for("subscribe", inv);
    subscribe["id"] = request_id + 1;
    subscribe["jid"] = jid;
    plan.push_back({std::move(subscribe),
                    " after adding " + jid + " to the roster; the subscription request may or may not have been sent",
                    " (" + jid + " was added to the roster; the subscription request was not sent)"});
    return plan;
}

Plan join_command(const Invocation& inv) {
    Request request = request_for("join", inv);
    request["room"] = argument(inv, 1, "ROOM");
    if (inv.arguments.size() > 2) request["nick"] = argument(inv, 2, "NICK");
    if (inv.password) {
        std::string password = text_argument(*inv.password);
        require_utf8(password, "the password");
        request["password"] = password;
    }
    return {{std::move(request), "", ""}};
}

Plan history_command(const Invocation& inv) {
    Request request = request_for("history", inv);
    request["with"] = argument(inv, 1, "JID");
    if (inv.before) {
        require_utf8(*inv.before, "--before");
        request["before"] = *inv.before;
    }
    request["max"] = inv.max.value_or(history_default);
    return {{std::move(request), "", ""}};
}

// block and unblock: the JIDs after ACCOUNT (unblock: none is everyone).
Plan block_command(const Invocation& inv, std::string_view op) {
    Request request = request_for(op, inv);
    Json jids = Json::array();
    for (std::size_t i = 1; i < inv.arguments.size(); ++i) jids.push_back(argument(inv, i, "JID"));
    request["jids"] = std::move(jids);
    return {{std::move(request), "", ""}};
}

// part ACCOUNT ROOM [REASON]
Plan part_command(const Invocation& inv) {
    Request request = request_for("part", inv);
    request["room"] = argument(inv, 1, "ROOM");
    if (inv.arguments.size() > 2) request["reason"] = argument(inv, 2, "REASON");
    return {{std::move(request), "", ""}};
}

// ACCOUNT JID: roster remove, and the subscription commands, whose ops have their names.
Plan jid_command(const Invocation& inv, std::string_view op) {
    Request request = request_for(op, inv);
    request["jid"] = argument(inv, 1, "JID");
    return {{std::move(request), "", ""}};
}

// encryption ACCOUNT JID [MODE]; omemo devices ACCOUNT [JID]; omemo trust|distrust ACCOUNT JID DEVICE.
Plan omemo_command(const Invocation& inv, std::string_view name) {
    if (name == "encryption") {
        Request request = request_for("encryption", inv);
        request["jid"] = argument(inv, 1, "JID");
        if (inv.arguments.size() > 2) {
            std::string mode = argument(inv, 2, "MODE");
            if (mode != "omemo" && mode != "off" && mode != "default")
                usage_error("MODE is omemo, off or default, not '" + mode + "'", inv.command->synopsis);
            request["set"] = mode;
        }
        return {{std::move(request), "", ""}};
    }
    if (name == "omemo devices") {
        Request request = request_for("omemo-devices", inv);
        if (inv.arguments.size() > 1) request["jid"] = argument(inv, 1, "JID");
        return {{std::move(request), "", ""}};
    }
    Request request = request_for(name == "omemo trust" ? "omemo-trust" : "omemo-distrust", inv);
    request["jid"] = argument(inv, 1, "JID");
    auto device = parse_number(argument(inv, 2, "DEVICE"), 1, 2147483647);
    if (!device) usage_error("DEVICE is a device id (1 to 2147483647)", inv.command->synopsis);
    request["device"] = *device;
    return {{std::move(request), "", ""}};
}

Plan plan_for(const Invocation& inv) {
    std::string_view name = inv.command->name;
    if (name == "send") return send_command(inv);
    if (name == "raw") return raw_command(inv);
    if (name == "presence") return presence_command(inv);
    if (name == "roster add") return roster_add_command(inv);
    if (name == "roster remove") return jid_command(inv, "roster-remove");
    if (name == "subscribe" || name == "unsubscribe" || name == "approve" || name == "deny")
        return jid_command(inv, name);
    if (name == "block" || name == "unblock") return block_command(inv, name);
    if (name == "join") return join_command(inv);
    if (name == "part") return part_command(inv);
    if (name == "history") return history_command(inv);
    if (name == "encryption" || name.starts_with("omemo ")) return omemo_command(inv, name);
    if (name == "status") return {{{{"op", "accounts"}, {"id", request_id}}, "", ""}};
    // ACCOUNT only: roster, rooms, blocklist, pin.
    return {{request_for(name, inv), "", ""}};
}

// What the successful replies print: --json, each reply as it came; else the msg_id
// (send), a table (status, roster, rooms), the messages (history), the room (join), the
// JIDs (blocklist), or nothing.
std::string reply_text(const Invocation& inv, const std::vector<Reply>& replies) {
    std::string out;
    if (inv.json) {
        for (const Reply& r : replies) out += r.line + '\n';
        return out;
    }
    const Reply& reply = replies.front();
    std::string_view name = inv.command->name;
    if (name == "status") return ctl::render_accounts(member_or_empty_array(reply.json, "accounts"));
    if (name == "roster") return ctl::render_roster(member_or_empty_array(reply.json, "items"));
    if (name == "rooms") return ctl::render_rooms(member_or_empty_array(reply.json, "rooms"));
    if (name == "blocklist") return ctl::render_jids(member_or_empty_array(reply.json, "jids"));
    if (name == "history") return ctl::render_history(member_or_empty_array(reply.json, "messages"));
    if (name == "join") return ctl::render_join(reply.json, inv.arguments[1]);
    if (name == "pin") return ctl::render_certificate(reply.json);
    if (name == "omemo devices") return ctl::render_omemo_devices(member_or_empty_array(reply.json, "devices"));
    if (name == "encryption") {
        auto text = [&](const char* key) {
            auto it = reply.json.find(key);
            return it != reply.json.end() && it->is_string() ? it->get<std::string>() : std::string();
        };
        std::string mode = text("encryption");
        return mode == "default" ? "default (" + text("default") + ")\n" : mode + '\n';
    }
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

// help [COMMAND]: the whole usage, or one command's synopsis and description.
int run_help(const Invocation& inv) {
    if (inv.arguments.empty()) {
        print(usage_text);
        return 0;
    }
    std::string name = inv.arguments[0];
    if (inv.arguments.size() == 2) name += " " + inv.arguments[1];
    const CommandSpec* c = find_command(name);
    if (!c) die(exit_usage, "unknown command '" + name + "' (commands: " + command_list() + ")");
    std::string out = "Usage: " + std::string(c->synopsis) + "\n\n" + std::string(c->description) + "\n";
    if (name == "roster") out += "\nSee also: stanzactl help roster add, stanzactl help roster remove\n";
    if (name == "encryption")
        out += "\nSee also: stanzactl help omemo devices, stanzactl help omemo trust, stanzactl help omemo distrust\n";
    print(out);
    return 0;
}

// complete WHAT [ACCOUNT]: names for shell completion, one a line. A completion must never
// print an error or wait: when the daemon cannot be asked, nothing, and exit 0.
int run_complete(const Invocation& inv) {
    const std::string& what = inv.arguments[0];
    std::size_t given = inv.arguments.size();
    if (what == "commands" && given == 1) {
        std::string out;
        for (const CommandSpec& c : commands) out += std::string(c.name) + '\n';
        print(out);
        return 0;
    }
    std::string_view op;
    const char* list = nullptr;
    const char* field = nullptr;
    if (what == "accounts" && given == 1) op = "accounts", list = "accounts", field = "account";
    else if (what == "contacts" && given == 2) op = "roster", list = "items", field = "jid";
    else if (what == "rooms" && given == 2) op = "rooms", list = "rooms", field = "room";
    else usage_error("complete takes: commands, accounts, contacts ACCOUNT or rooms ACCOUNT",
                     command_named("complete").synopsis);
    auto where = ctl::find_socket(inv.socket);
    if (!where) return 0;
    ctl::Connection conn;
    if (conn.connect_to(where.value().path) != 0) return 0;
    ctl::give_up_after(conn, complete_wait_seconds);  // a stuck daemon must not hang the shell
    Request hello_request = {{"op", "hello"}, {"id", hello_id}, {"client", client_name}, {"replay", false}};
    Request request = {{"op", op}, {"id", request_id}};
    try {
        if (given == 2) request["account"] = inv.arguments[1];
        if (!conn.write_line(hello_request.dump()) || !conn.write_line(request.dump())) return 0;
    } catch (const Json::type_error&) {  // an ACCOUNT that is not UTF-8 names no account
        return 0;
    }
    for (;;) {
        ctl::ReadResult r = conn.read_line();
        if (r.kind != ctl::ReadResult::Kind::Line) return 0;
        Json j = Json::parse(r.text, nullptr, /*allow_exceptions=*/false);
        if (!j.is_object() || j.contains("event")) continue;
        auto id = j.find("id");
        if (id == j.end() || *id != Json(request_id)) continue;  // hello's reply
        auto ok = j.find("ok");
        if (ok == j.end() || *ok != Json(true)) return 0;
        std::string out;
        for (const Json& item : member_or_empty_array(j, list)) {
            auto name = item.is_object() ? item.find(field) : item.end();
            if (item.is_object() && name != item.end() && name->is_string())
                out += ctl::sanitize(name->get<std::string>()) + '\n';
        }
        print(out);
        return 0;
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
    if (inv.command->name == "help") return run_help(inv);
    if (inv.command->name == "complete") return run_complete(inv);
    if (inv.command->name == "init") {
        inv.init.config = inv.socket.config;
        inv.init.password = inv.password;
        return ctl::run_init(inv.init);
    }
    if (inv.command->name == "doctor") return ctl::run_doctor(inv.socket);
    if (inv.command->name == "tail") {
        ctl::Connection conn = open_connection(inv);
        run_tail(conn, inv);
    }
    // Standard input is read before connecting: a slow producer must not hold a
    // connection open, and the daemon may restart meanwhile.
    Plan plan = plan_for(inv);
    std::vector<std::string> lines;
    for (const Step& step : plan) lines.push_back(encode_request(step.request));
    ctl::Connection conn = open_connection(inv);
    hello(conn, inv);
    std::vector<Reply> replies;
    for (std::size_t i = 0; i < plan.size(); ++i) {
        send_line(conn, lines[i]);
        replies.push_back(await_reply(conn, request_id + static_cast<int>(i), plan[i].closed_hint, plan[i].error_note));
    }
    print(reply_text(inv, replies));
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
