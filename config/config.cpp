// The TOML configuration (DESIGN.md, "Config (TOML)"): toml++ parses, a Validator walks
// the tree once and collects every problem instead of stopping at the first, so that a
// user fixes a file in one round trip. Runs at startup, before the loop exists.
#include "config/config.hpp"

#include <sys/stat.h>

#include "config/validator.hpp"

namespace config {

using namespace detail;

std::string Problem::to_string() const {
    std::string out = file;
    if (line > 0) {
        out += ':' + std::to_string(line);
        if (column > 0) out += ':' + std::to_string(column);
    }
    out += severity == Severity::Error ? ": error: " : ": warning: ";
    if (!key.empty()) out += key + ": ";
    out += message;
    return out;
}

LoadResult parse(std::string_view text, const std::string& source_name) {
    return Validator(source_name).run(text);
}

LoadResult load(const std::string& path) {
    auto fail = [&](std::string message) {
        Problem p;
        p.file = path;
        p.message = std::move(message);
        LoadResult r;
        r.problems.push_back(std::move(p));
        return r;
    };
    auto file = read_small_file(path);
    if (!file) {
        std::string message = file.error().message;
        if (file.error().code == "too-large") message += "; that is not a configuration file";
        return fail(std::move(message));
    }

    Validator validator(path, /*check_files=*/true);
    LoadResult result = validator.run(file.value().text);
    if (validator.saw_password() && (file.value().mode & (S_IRGRP | S_IROTH))) {
        Problem p;
        p.severity = Problem::Severity::Warning;
        p.file = path;
        p.message = path + " is readable by others (mode " + file_mode(file.value().mode) +
                    ") and holds a password; chmod 600 " + path + " or use password_command";
        // No line: it goes first, like the other whole-file problems.
        result.problems.insert(result.problems.begin(), std::move(p));
    }
    return result;
}

std::string default_path() {
    if (std::string xdg = xdg_dir("XDG_CONFIG_HOME"); !xdg.empty()) return xdg + "/stanzad/config.toml";
    return home_dir() + "/.config/stanzad/config.toml";
}

}  // namespace config
