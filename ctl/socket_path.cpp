#include "ctl/socket_path.hpp"

#include <cerrno>
#include <cstdlib>

#include <sys/stat.h>

#include "config/config.hpp"

namespace ctl {

namespace {

bool file_absent(const std::string& path) {
    struct stat st {};
    // Anything but "not there" (EACCES, say) is for config::load to report.
    return ::stat(path.c_str(), &st) != 0 && (errno == ENOENT || errno == ENOTDIR);
}

// The first error, and how many more there are: one line.
std::string first_error(const config::LoadResult& loaded, const std::string& path) {
    std::string line;
    int errors = 0;
    for (const auto& problem : loaded.problems) {
        if (problem.severity != config::Problem::Severity::Error) continue;
        // Without a line (an unreadable file) the message already names the file.
        if (++errors == 1) line = problem.line > 0 ? problem.to_string() : problem.message;
    }
    if (errors > 1)
        line += " (and " + std::to_string(errors - 1) + " more; see stanzad --check-config -c " + path + ")";
    return line;
}

// The daemon's default, computed by the daemon's own code: an empty config is valid and
// gets every default applied.
xmpp::Result<SocketLocation> default_socket(std::string doubt) {
    auto defaults = config::parse("", "(defaults)");
    if (!defaults.ok() || defaults.config->daemon.socket.empty())
        return xmpp::make_error("no-default",
                                "cannot tell where the socket is: none of $XDG_RUNTIME_DIR, "
                                "$XDG_STATE_HOME and $HOME is set; use -s PATH");
    return SocketLocation{defaults.config->daemon.socket, std::move(doubt)};
}

}  // namespace

xmpp::Result<SocketLocation> find_socket(const SocketOptions& options) {
    if (!options.socket.empty()) return SocketLocation{options.socket, ""};
    if (!options.config.empty()) {
        // Named on the command line: its problems are the user's to hear about.
        auto loaded = config::load(options.config);
        if (!loaded.ok()) return xmpp::make_error("bad-config", first_error(loaded, options.config));
        return SocketLocation{loaded.config->daemon.socket, ""};
    }
    // The command line beats the environment, which beats the default config.
    if (const char* env = std::getenv("STANZAD_SOCKET"); env && *env) return SocketLocation{env, ""};

    std::string path = config::default_path();
    if (file_absent(path)) return default_socket("");
    auto loaded = config::load(path);
    if (loaded.ok()) return SocketLocation{loaded.config->daemon.socket, ""};
    // The daemon may have started before the file broke, or with another file: try the
    // default, and mention the broken file only if that fails.
    return default_socket(path + " has errors, so its socket setting was not used; see stanzad --check-config");
}

}  // namespace ctl
