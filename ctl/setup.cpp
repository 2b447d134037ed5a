#include "ctl/setup.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "ctl/connection.hpp"
#include "ctl/render.hpp"
#include "protocol/base/jid.hpp"

namespace ctl {
namespace {

using Json = nlohmann::json;

constexpr int exit_failed = 1;
constexpr int exit_usage = 2;
constexpr std::string_view irc_listen = "127.0.0.1:6667";

int fail(int status, const std::string& message) {
    std::fflush(stdout);
    std::fprintf(stderr, "stanzactl: %s\n", message.c_str());
    return status;
}

// ---- init -------------------------------------------------------------------------------

// A TOML basic string (TOML 1.0 §String): quotes, backslashes and controls escaped.
std::string toml_string(std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

// The account's short name from the JID's local part: letters, digits, '_' and '-'.
std::string name_from_jid(const xmpp::Jid& jid) {
    std::string name;
    for (char c : jid.local())
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-')
            name += c;
    return name.empty() ? "xmpp" : name;
}

bool valid_name(const std::string& name) {
    if (name.empty() || name.size() > 64) return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    return true;
}

// 24 letters and digits from getrandom(2): about 143 bits.
std::string generate_password() {
    constexpr std::string_view alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    std::string out;
    while (out.size() < 24) {
        unsigned char bytes[32];
        if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) continue;
        for (unsigned char b : bytes)
            if (b < 256 - 256 % alphabet.size() && out.size() < 24) out += alphabet[b % alphabet.size()];
    }
    return out;
}

// One line from standard input, without its newline; nullopt at the end of input.
// Echo goes off before the prompt is shown, so whatever is typed once the prompt is
// visible is never echoed; TCSANOW keeps what was typed ahead (TCSAFLUSH would drop it).
std::optional<std::string> read_line(std::string_view prompt, bool echo = true) {
    termios saved{};
    bool hidden = !echo && ::tcgetattr(STDIN_FILENO, &saved) == 0;
    if (hidden) {
        termios quiet = saved;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    std::fputs(std::string(prompt).c_str(), stdout);
    std::fflush(stdout);
    std::string line;
    bool got = static_cast<bool>(std::getline(std::cin, line));
    if (hidden) {
        ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        std::fputs("\n", stdout);
    }
    if (!got) return std::nullopt;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

struct Answers {
    xmpp::Jid jid;
    std::string name;
    std::string password_command;
    std::optional<std::string> password;
    bool irc = false;
};

// The questions of an interactive init; nullopt when input ends (the message is printed).
std::optional<Answers> ask(const InitOptions& options) {
    Answers a;
    std::printf("stanzactl init writes a config for stanzad. Ctrl-D stops without writing anything.\n\n");
    for (;;) {
        auto text = read_line("Your XMPP address (JID), for example alice@example.org: ");
        if (!text) return std::nullopt;
        auto jid = xmpp::Jid::parse(*text);
        if (jid && jid.value().is_bare() && !jid.value().local().empty()) {
            a.jid = jid.value();
            break;
        }
        std::printf("  '%s' is not a bare JID (user@domain, no /resource): try again.\n", text->c_str());
    }
    std::string bare = a.jid.bare();
    std::printf("\nHow should stanzad get the password? It is best kept out of the config file:\n"
                "  1) pass show xmpp/%s       (the standard Unix password manager)\n"
                "  2) secret-tool lookup xmpp %s   (GNOME Keyring, KWallet: libsecret)\n"
                "  3) another command that prints it\n"
                "  4) write the password itself into the config file (readable only by you)\n",
                bare.c_str(), bare.c_str());
    for (;;) {
        auto choice = read_line("Choice [1]: ");
        if (!choice) return std::nullopt;
        if (choice->empty() || *choice == "1") a.password_command = "pass show xmpp/" + bare;
        else if (*choice == "2") a.password_command = "secret-tool lookup xmpp " + bare;
        else if (*choice == "3") {
            auto command = read_line("Command: ");
            if (!command) return std::nullopt;
            if (command->empty()) continue;
            a.password_command = *command;
        } else if (*choice == "4") {
            auto password = read_line("Password (not shown): ", /*echo=*/false);
            if (!password) return std::nullopt;
            if (password->empty()) continue;
            a.password = *password;
        } else {
            std::printf("  1, 2, 3 or 4, please.\n");
            continue;
        }
        break;
    }
    a.name = options.name.empty() ? name_from_jid(a.jid) : options.name;
    auto irc = read_line("\nAn IRC listener on " + std::string(irc_listen) +
                         " for irssi, WeeChat, ERC... (with a generated password)? [y/N]: ");
    if (!irc) return std::nullopt;
    a.irc = options.irc || *irc == "y" || *irc == "Y" || *irc == "yes";
    return a;
}

std::string config_text(const Answers& a, const std::string& irc_password) {
    std::string out =
        "# Written by stanzactl init. Every key is described in stanzad.toml(5);\n"
        "# check a change with `stanzad --check-config`, apply it with `systemctl --user reload stanzad`.\n\n"
        "[daemon]\nlog_level = \"info\"\n";
    if (a.irc)
        out += "\n[irc]\nlisten = " + toml_string(irc_listen) + "\npassword = " + toml_string(irc_password) + "\n";
    out += "\n[[account]]\nname = " + toml_string(a.name) + "\njid = " + toml_string(a.jid.bare()) + "\n";
    if (a.password) out += "password = " + toml_string(*a.password) + "\n";
    else out += "password_command = " + toml_string(a.password_command) + "\n";
    out += "# rooms = [ { jid = \"room@conference.example.org\", nick = \"me\" } ]\n";
    return out;
}

// mkdir -p with mode 0700 for the directories it creates.
bool make_parents(const std::string& path, std::string& error) {
    for (std::size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
        std::string dir = path.substr(0, slash);
        if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
            error = "cannot create " + dir + ": " + std::strerror(errno);
            return false;
        }
    }
    return true;
}

// Writes `text` with mode 0600. Without `force`, never replaces a file (O_EXCL); with it,
// replaces it atomically (a temporary file renamed over it).
bool write_config(const std::string& path, const std::string& text, bool force, std::string& error) {
    if (!make_parents(path, error)) return false;
    std::string target = force ? path + ".stanzactl-init.tmp" : path;
    int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && force && errno == EEXIST) {
        ::unlink(target.c_str());
        fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0) {
        error = errno == EEXIST ? path + " already exists; stanzactl init does not replace it: use --force to "
                                         "write a new one, or edit it (see stanzad.toml(5))"
                                : "cannot write " + target + ": " + std::strerror(errno);
        return false;
    }
    ::fchmod(fd, 0600);  // whatever the umask
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    int saved = errno;
    ::close(fd);
    if (ok && force && ::rename(target.c_str(), path.c_str()) != 0) {
        ok = false;
        saved = errno;
    }
    if (!ok) {
        ::unlink(target.c_str());
        error = "cannot write " + path + ": " + std::strerror(saved);
    }
    return ok;
}

bool file_exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

std::string read_all_stdin() {
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
}

}  // namespace

int run_init(const InitOptions& options) {
    std::string path = options.config.empty() ? config::default_path() : options.config;
    if (path.empty()) return fail(exit_usage, "no config path: set HOME or give -c FILE");
    if (file_exists(path) && !options.force)
        return fail(exit_usage, path + " already exists; stanzactl init does not replace it: use --force to write "
                                       "a new one, or edit it (see stanzad.toml(5))");
    if (!options.name.empty() && !valid_name(options.name))
        return fail(exit_usage, "--name '" + options.name + "' must be letters, digits, '_' and '-' (at most 64)");
    Answers a;
    if (options.jid.empty()) {
        if (!::isatty(STDIN_FILENO))
            return fail(exit_usage, "no --jid and standard input is not a terminal to ask on: give --jid JID and "
                                    "--password-command CMD (or --password PW); see stanzactl help init");
        auto asked = ask(options);
        if (!asked) return fail(exit_usage, "input ended; nothing was written");
        a = std::move(*asked);
    } else {
        auto jid = xmpp::Jid::parse(options.jid);
        if (!jid || !jid.value().is_bare() || jid.value().local().empty())
            return fail(exit_usage, "--jid '" + options.jid + "' is not a bare JID like alice@example.org" +
                                        (jid ? "" : ": " + jid.error().message));
        a.jid = jid.value();
        if (options.password_command.empty() && !options.password)
            return fail(exit_usage, "how should stanzad get the password? Give --password-command CMD (for example "
                                    "'pass show xmpp/" + a.jid.bare() + "'), or --password PW to write it into the file");
        if (!options.password_command.empty() && options.password)
            return fail(exit_usage, "--password-command and --password exclude each other: give one");
        a.password_command = options.password_command;
        if (options.password) a.password = *options.password == "-" ? read_all_stdin() : *options.password;
        if (a.password && a.password->empty()) return fail(exit_usage, "--password: the password is empty");
        a.name = options.name.empty() ? name_from_jid(a.jid) : options.name;
        a.irc = options.irc;
    }
    std::string irc_password = a.irc ? generate_password() : "";
    std::string error;
    if (!write_config(path, config_text(a, irc_password), options.force, error)) return fail(exit_usage, error);

    // The same validation as `stanzad --check-config`.
    auto loaded = config::load(path);
    for (const auto& p : loaded.problems) std::fprintf(stderr, "%s\n", p.to_string().c_str());
    if (!loaded.ok())
        return fail(exit_failed, path + " was written but does not validate (above); fix it, then check it with "
                                        "stanzad --check-config -c " + path);

    std::printf("Wrote %s (mode 0600): account '%s' (%s)%s.\n", path.c_str(), a.name.c_str(), a.jid.bare().c_str(),
                a.irc ? (", IRC on " + std::string(irc_listen)).c_str() : "");
    if (a.irc)
        std::printf("IRC: connect to %s with the password %s (it is in the file too).\n",
                    std::string(irc_listen).c_str(), irc_password.c_str());
    if (!a.password_command.empty())
        std::printf("The password comes from: %s\n(make sure it prints the password: run it once yourself).\n",
                    a.password_command.c_str());
    std::printf("\nStart stanzad:\n"
                "  systemctl --user enable --now stanzad   # as a service, now and at every login\n"
                "  stanzad%s%s   # or in a terminal\n"
                "Then: stanzactl status, and stanzactl doctor if something is wrong.\n",
                options.config.empty() ? "" : " -c ", options.config.c_str());
    if (!options.config.empty() && path != config::default_path())
        std::printf("Note: the service reads %s; for this file, run: systemctl --user edit stanzad\n"
                    "and set ExecStart= then ExecStart=stanzad -c %s\n",
                    config::default_path().c_str(), path.c_str());
    return 0;
}

// ---- doctor -----------------------------------------------------------------------------

namespace {

volatile std::sig_atomic_t deadline_passed = 0;
sigset_t deadline_wait_mask;

extern "C" void on_deadline(int) { deadline_passed = 1; }

constexpr unsigned doctor_wait_seconds = 10;

// Collects the findings; problems decide the exit status.
struct Report {
    int problems = 0;
    void ok(const std::string& what) { std::printf("ok       %s\n", sanitize(what).c_str()); }
    void warning(const std::string& what, const std::string& todo = "") { line("warning ", what, todo); }
    void problem(const std::string& what, const std::string& todo) {
        ++problems;
        line("problem ", what, todo);
    }
    void line(const char* kind, const std::string& what, const std::string& todo) {
        std::printf("%s %s\n", kind, sanitize(what).c_str());
        if (!todo.empty()) std::printf("         -> %s\n", sanitize(todo).c_str());
    }
};

std::string octal_mode(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

std::string human_size(long long bytes) {
    char buf[32];
    if (bytes < 1024) std::snprintf(buf, sizeof buf, "%lld bytes", bytes);
    else if (bytes < 1024 * 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
    else std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024 * 1024));
    return buf;
}

std::string field(const Json& j, const char* name) {
    auto it = j.find(name);
    return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// What to do about an account that will not retry, from its reason.
std::string advice_for_failed(const std::string& account, const std::string& reason) {
    if (reason.find("authentication") != std::string::npos || reason.find("not-authorized") != std::string::npos)
        return "check the account's password (or what its password_command prints), then: "
               "systemctl --user reload stanzad";
    if (reason.find("pin") != std::string::npos || reason.find("certificate") != std::string::npos)
        return "the server's certificate is not trusted: see `stanzactl pin " + account +
               "`, ca_file and tls_pin in stanzad.toml(5); then systemctl --user reload stanzad";
    if (reason.find("conflict") != std::string::npos)
        return "another client took the resource: set another resource for the account, then reload";
    return "fix what the reason says in the config, then: systemctl --user reload stanzad";
}

// Asks the daemon for its accounts: hello, then accounts. Fills `error` when it cannot.
std::optional<Json> ask_accounts(const std::string& socket, std::string& version, std::string& error) {
    Connection conn;
    if (int e = conn.connect_to(socket); e != 0) {
        error = e == ENOENT || e == ECONNREFUSED ? "stanzad is not running" : std::strerror(e);
        return std::nullopt;
    }
    give_up_after(conn, doctor_wait_seconds);
    if (!conn.write_line(R"({"op":"hello","id":1,"client":"stanzactl","replay":false})") ||
        !conn.write_line(R"({"op":"accounts","id":2})")) {
        error = std::string("cannot write to the daemon: ") + std::strerror(errno);
        return std::nullopt;
    }
    for (;;) {
        ReadResult r = conn.read_line();
        if (r.kind != ReadResult::Kind::Line) {
            error = r.kind == ReadResult::Kind::Closed    ? "the daemon closed the connection"
                    : r.kind == ReadResult::Kind::Stopped ? "no answer within " + std::to_string(doctor_wait_seconds) +
                                                                " seconds"
                                                          : r.text;
            return std::nullopt;
        }
        Json j = Json::parse(r.text, nullptr, /*allow_exceptions=*/false);
        if (!j.is_object() || j.contains("event")) continue;
        if (j.value("ok", false) != true) {
            error = "the daemon refused: " + r.text;
            return std::nullopt;
        }
        if (j.value("id", 0) == 1) {
            if (auto v = j.find("version"); v != j.end()) version = v->dump();
            continue;
        }
        auto accounts = j.find("accounts");
        if (accounts == j.end() || !accounts->is_array()) {
            error = "the daemon's accounts reply has no accounts";
            return std::nullopt;
        }
        return *accounts;
    }
}

}  // namespace

// SIGALRM stays blocked except inside the connection's ppoll, so the alarm cannot slip in
// between checking the flag and starting to wait.
void give_up_after(Connection& conn, unsigned seconds) {
    struct sigaction sa {};
    sa.sa_handler = on_deadline;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, nullptr);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    sigprocmask(SIG_BLOCK, &block, &deadline_wait_mask);
    sigdelset(&deadline_wait_mask, SIGALRM);
    conn.set_stop(&deadline_passed, &deadline_wait_mask);
    ::alarm(seconds);
}

namespace {

// Doctor step 1. The config: there, valid, private. Returns it when it is valid.
std::optional<config::Config> check_config(Report& report, const SocketOptions& options) {
    std::string path = options.config.empty() ? config::default_path() : options.config;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        report.problem("no config at " + path + " (" + std::strerror(errno) + ")",
                       "write one with: stanzactl init" + (options.config.empty() ? "" : " -c " + path));
    } else {
        auto loaded = config::load(path);
        int errors = 0;
        for (const auto& p : loaded.problems) {
            if (p.severity == config::Problem::Severity::Error) ++errors;
            else report.warning("config: " + p.to_string());
        }
        if (!loaded.ok())
            report.problem("config " + path + " has " + std::to_string(errors) + " error(s)",
                           "see them with: stanzad --check-config -c " + path + "; fix them, then: systemctl "
                           "--user restart stanzad");
        else
            report.ok("config " + path + ": valid, " + std::to_string(loaded.config->accounts.size()) + " account(s)");
        if ((st.st_mode & 077) != 0)
            report.problem("config " + path + " has mode " + octal_mode(st.st_mode) + ": others can read it",
                           "chmod 600 " + path);
        return std::move(loaded.config);
    }
    return std::nullopt;
}

// Doctor step 2. The socket: where the daemon listens, a socket, mode 0600. Returns its path
// when it is there ("" when not).
std::string check_socket(Report& report, const SocketOptions& options, const std::optional<config::Config>& cfg) {
    struct stat st {};
    SocketOptions where = options;
    if (where.config.empty() && where.socket.empty() && cfg) where.socket = cfg->daemon.socket;
    auto socket = find_socket(where);
    std::string socket_path = socket ? socket.value().path : "";
    if (!socket) {
        report.problem("cannot tell where the socket is: " + socket.error().message, "fix the config first");
    } else if (::stat(socket_path.c_str(), &st) != 0) {
        report.problem("no socket at " + socket_path + ": stanzad is not running",
                       "start it: systemctl --user start stanzad (if it stops again: journalctl --user -u stanzad "
                       "-p warning)");
    } else if (!S_ISSOCK(st.st_mode)) {
        report.problem(socket_path + " is not a socket", "remove it, then: systemctl --user restart stanzad");
    } else {
        if ((st.st_mode & 077) != 0 || st.st_uid != ::getuid())
            report.problem("socket " + socket_path + " has mode " + octal_mode(st.st_mode) +
                               (st.st_uid != ::getuid() ? " and another owner" : ""),
                           "others could use your accounts: stop stanzad, remove the socket, start it again");
        else report.ok("socket " + socket_path + ": mode 0600");
        return socket_path;
    }
    return "";
}

// Doctor step 3. The daemon and each account.
void check_daemon(Report& report, const std::string& socket_path, const std::optional<config::Config>& cfg) {
    std::string version, error;
    auto accounts = ask_accounts(socket_path, version, error);
    if (!accounts) {
        report.problem("stanzad does not answer on " + socket_path + ": " + error,
                       "restart it: systemctl --user restart stanzad");
    } else {
        report.ok("stanzad answers (protocol version " + (version.empty() ? "?" : version) + ")");
        for (const Json& a : *accounts) {
            std::string name = field(a, "account"), state = field(a, "state"), reason = field(a, "reason");
            std::string what = "account " + name + ": " + state;
            if (state == "online") {
                std::string jid = field(a, "bound_jid");
                std::string auth = field(a, "auth");
                report.ok(what + (jid.empty() ? "" : " as " + jid) + (auth.empty() ? "" : " (" + auth + ")"));
            } else if (state == "failed") {
                report.problem(what + (reason.empty() ? "" : ": " + reason), advice_for_failed(name, reason));
            } else if (state == "disconnected") {
                report.warning(what + (reason.empty() ? "" : ": " + reason),
                               "it retries by itself; if this lasts, check the network, host and port "
                               "(journalctl --user -u stanzad)");
            } else {
                report.warning(what + (reason.empty() ? "" : ": " + reason), "");
            }
        }
        if (cfg)
            for (const auto& c : cfg->accounts) {
                bool running = false;
                for (const Json& a : *accounts) running = running || field(a, "account") == c.name;
                if (!running)
                    report.warning("account " + c.name + " is in the config but not in the running daemon",
                                   "apply the config: systemctl --user reload stanzad");
            }
    }
}

// Doctor step 4. The store: its directory private, its size.
void check_store(Report& report, const config::Config& cfg, bool socket_there) {
    struct stat st {};
    const std::string& dir = cfg.daemon.state_dir;
    std::string db = dir + "/stanzad.db";
    if (::stat(dir.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
        report.warning("state directory " + dir + " has mode " + octal_mode(st.st_mode), "chmod 700 " + dir);
    if (::stat(db.c_str(), &st) == 0) {
        long long size = st.st_size;
        struct stat wal {};
        if (::stat((db + "-wal").c_str(), &wal) == 0) size += wal.st_size;
        if ((st.st_mode & 077) != 0)
            report.problem("store " + db + " has mode " + octal_mode(st.st_mode), "chmod 600 " + db + "*");
        else report.ok("store " + db + ": " + human_size(size));
    } else if (socket_there) {
        report.warning("no store at " + db + " although stanzad runs", "was it started with another config?");
    }
}

}  // namespace

int run_doctor(const SocketOptions& options) {
    Report report;
    auto cfg = check_config(report, options);
    std::string socket_path = check_socket(report, options, cfg);
    if (!socket_path.empty()) check_daemon(report, socket_path, cfg);
    if (cfg) check_store(report, *cfg, !socket_path.empty());
    if (report.problems == 0) std::printf("\nNo problems found.\n");
    else std::printf("\n%d problem(s) found.\n", report.problems);
    return report.problems == 0 ? 0 : exit_failed;
}

}  // namespace ctl
