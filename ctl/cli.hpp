#pragma once
// stanzactl's command line: the commands and their synopses (as in stanzactl(1)), the
// options, how a command line is read and checked, and how stanzactl fails (one line on
// stderr, an exit status). Internal to ctl/; stanzactl.cpp talks to the daemon.
#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ctl/render.hpp"
#include "ctl/setup.hpp"
#include "ctl/socket_path.hpp"

namespace ctl::cli {


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


[[noreturn]] void die(int status, const std::string& message);

[[noreturn]] void usage_error(const std::string& problem, std::string_view synopsis);

// Flushed at once: tail's readers (notify-send loops, grep --line-buffered) want each event
// when it happens. A reader that went away (EPIPE) has seen all it wanted: not an error.
void print(std::string_view text);

const CommandSpec* find_command(std::string_view name);

const CommandSpec& command_named(std::string_view name);

// "send, status, ..." for the unknown-command line: the top-level names, once each.
std::string command_list();

bool takes_value(std::string_view option);

bool is_flag(std::string_view option);

// Splits "--name=value" and "-cvalue"; takes the next argument when the value is not attached.
std::pair<std::string, std::string> option_and_value(int argc, char** argv, int& i);

// A decimal number from `low` to `high`, without sign or spaces; nullopt otherwise.
std::optional<std::int64_t> parse_number(const std::string& text, std::int64_t low, std::int64_t high);

std::int64_t parse_seq(const std::string& text);

int parse_max(const std::string& text);

// The daemon's rule for client_id (json-protocol.md, send), checked here so that a bad ID
// is a usage error like the others.
bool valid_client_id(const std::string& id);

void apply_option(Invocation& inv, const std::string& name, const std::string& value);

std::string count_of_arguments(std::size_t n);

// "no arguments", "2 arguments", "2 or 3 arguments", "at least 1 argument"
std::string expected_arguments(const CommandSpec& c);

void check_arguments(const Invocation& inv, const std::vector<std::string>& arguments);

// Options may come before or after the command (`stanzactl tail --json`); "--" ends them,
// for a TEXT that starts with '-'. "-" alone is an argument (standard input).
// `roster add` and `roster remove` are subcommands: they win over an account named "add"
// or "remove" (docs/stanzactl.md, roster).
Invocation parse_invocation(int argc, char** argv);

// All of standard input, one trailing newline removed. Reading stops just past the daemon's
// line limit: the request is then too long whatever the rest holds.
std::string read_stdin();

// The JSON library refuses to encode invalid UTF-8; say which argument it was.
void require_utf8(const std::string& value, std::string_view what);

// "stanzactl-" and 16 random hex digits: unique enough that two invocations never share it.
std::string random_client_id();

}  // namespace ctl::cli
