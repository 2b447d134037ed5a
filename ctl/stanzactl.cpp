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

#include "ctl/cli.hpp"
#include "ctl/connection.hpp"
#include "ctl/render.hpp"
#include "ctl/setup.hpp"
#include "ctl/socket_path.hpp"

#ifndef STANZAD_VERSION
#define STANZAD_VERSION "unknown"
#endif

namespace {

using namespace ctl::cli;

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
