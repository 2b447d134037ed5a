// stanzad [-c FILE] [--check-config] [--version] [--help]: runs in the foreground, logs to stderr.
#include <cstdio>
#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include <malloc.h>
#include <openssl/ssl.h>
#include <sqlite3.h>

#include "config/config.hpp"
#include "daemon/daemon.hpp"
#include "daemon/log.hpp"

namespace {

// As in stanzad(1), which a test compares.
void usage(FILE* out) {
    std::fprintf(out,
                 "Usage: stanzad [-c FILE] [--check-config] [--version] [--help]\n"
                 "\n"
                 "Keeps XMPP sessions alive and serves them to IRC clients, Emacs and scripts.\n"
                 "Runs in the foreground and logs to stderr.\n"
                 "\n"
                 "  -c, --config FILE  the configuration (default: %s)\n"
                 "      --check-config validate the configuration, print every problem, exit 0 or 2\n"
                 "      --version      print the version and exit\n"
                 "  -h, --help         print this help and exit\n"
                 "\n"
                 "Signals: SIGTERM/SIGINT shut down cleanly, SIGHUP reloads the configuration.\n"
                 "Exit status: 0 stopped cleanly, 1 fatal error (see the log), 2 usage or config error.\n"
                 "See stanzad(1) and stanzad.toml(5); stanzactl init writes a first configuration.\n",
                 config::default_path().c_str());
}

// Process-wide sizes, set before anything allocates or opens the store. Each is measured
// and explained in docs/performance.md ("Memory" and "Where the instructions go").
void tune_process() {
    // glibc raises its mmap threshold to the size of the largest block freed (up to 32 MiB)
    // and its trim threshold to twice that, so after one large buffer the heap never gives
    // pages back. Fixed values keep the dynamic adjustment off: blocks of 128 KiB and more
    // are mmapped and unmapped on free. Free memory at the top of the heap goes back past
    // 2 MiB: at 128 KiB (and at 512 KiB) the heap shrank and grew again with the parsed
    // stanzas of a burst (0.18 brk and 0.49 page faults per incoming message; on-CPU 97 ->
    // 83 us per message in a calm pair of runs). Between bursts Daemon::trim_when_quiet
    // gives everything back.
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 2 * 1024 * 1024);
    // One event-loop thread uses SQLite: the per-connection mutexes (about 230 lock/unlock
    // pairs per relayed message) and SQLite's memory statistics protect nothing here.
    // MULTITHREAD keeps SQLite safe for any thread that uses its own connection.
    sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

}  // namespace

int main(int argc, char** argv) {
    std::string path;
    bool check_only = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if ((arg == "-c" || arg == "--config") && i + 1 < argc) {
            path = argv[++i];
        } else if (arg.starts_with("--config=")) {
            path = arg.substr(9);
        } else if (arg == "--check-config") {
            check_only = true;
        } else if (arg == "--version") {
            std::printf("stanzad %s\n", STANZAD_VERSION);
            return 0;
        } else if (arg == "-h" || arg == "--help") {
            usage(stdout);
            return 0;
        } else {
            std::fprintf(stderr, "stanzad: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (path.empty()) path = config::default_path();

    auto loaded = config::load(path);
    for (const auto& p : loaded.problems) std::fprintf(stderr, "%s\n", p.to_string().c_str());
    if (!loaded.ok()) {
        if (!check_only) std::fprintf(stderr, "stanzad: not starting: %s has errors\n", path.c_str());
        return 2;
    }
    if (check_only) {
        std::printf("%s: ok (%zu account(s))\n", path.c_str(), loaded.config->accounts.size());
        return 0;
    }

    tune_process();
    logs::init(loaded.config->daemon.log_level);
    logs::daemon().info("stanzad {} starting", STANZAD_VERSION);
    OPENSSL_init_ssl(0, nullptr);
    std::signal(SIGPIPE, SIG_IGN);  // a peer that goes away is an error value, not a signal
    std::signal(SIGXFSZ, SIG_IGN);  // a file size limit is a failed write (EFBIG), not the end
    stanzad::Daemon daemon(std::move(*loaded.config), std::vector<std::string>(argv, argv + argc));
    return daemon.run();
}
