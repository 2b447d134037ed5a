// stanzactl's command line; see cli.hpp.
#include "ctl/cli.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

#include <sys/random.h>
#include <unistd.h>

namespace ctl::cli {

// ---- failures and output ----------------------------------------------------------------

[[noreturn]] void die(int status, const std::string& message) {
    std::fflush(stdout);
    std::fprintf(stderr, "stanzactl: %s\n", ctl::sanitize(message).c_str());
    std::exit(status);
}

[[noreturn]] void usage_error(const std::string& problem, std::string_view synopsis) {
    die(exit_usage, problem + "; usage: " + std::string(synopsis));
}

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

void require_utf8(const std::string& value, std::string_view what) {
    try {
        (void)Json(value).dump();
    } catch (const Json::type_error&) {
        die(exit_usage, std::string(what) + " is not valid UTF-8");
    }
}

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

}  // namespace ctl::cli
