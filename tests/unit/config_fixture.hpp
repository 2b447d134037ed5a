#pragma once
// The helpers of the config::parse / load tests (config_*_test.cpp): expected lines are found
// in the input text itself (line_of), so editing a fixture cannot silently shift an assertion;
// environment variables and files set up for one test; client certificates made once per run.
#include "config/config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

namespace config_test {

using config::Problem;

// 1-based line of the `nth` (1-based) occurrence of `needle` in `text`.
inline int line_of(std::string_view text, std::string_view needle, int nth = 1) {
    std::size_t pos = std::string_view::npos;
    for (int i = 0; i < nth; ++i) {
        pos = text.find(needle, pos == std::string_view::npos ? 0 : pos + 1);
        REQUIRE(pos != std::string_view::npos);
    }
    return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(pos), '\n'));
}

// Sets or unsets an environment variable for one test and restores it afterwards.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value)
            ::setenv(name, value, 1);
        else
            ::unsetenv(name);
    }
    ~ScopedEnv() {
        if (old_)
            ::setenv(name_.c_str(), old_->c_str(), 1);
        else
            ::unsetenv(name_.c_str());
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    std::string name_;
    std::optional<std::string> old_;
};

// A mkdtemp directory, removed with its contents at the end of the test.
class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "stanzad-config-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    std::string write(const std::string& name, std::string_view content, mode_t mode) const {
        std::string file = path_ + "/" + name;
        {
            std::ofstream out(file, std::ios::binary);
            out << content;
        }
        REQUIRE(::chmod(file.c_str(), mode) == 0);
        return file;
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

inline const Problem* find_problem(const config::LoadResult& r, std::string_view key) {
    for (const Problem& p : r.problems)
        if (p.key == key) return &p;
    return nullptr;
}

inline std::size_t count_errors(const config::LoadResult& r) {
    return static_cast<std::size_t>(std::count_if(r.problems.begin(), r.problems.end(), [](const Problem& p) {
        return p.severity == Problem::Severity::Error;
    }));
}

inline std::string all_problems(const config::LoadResult& r) {
    std::string out;
    for (const Problem& p : r.problems) out += p.to_string() + "\n";
    return out;
}

// The one problem a fixture must cause.
inline const Problem& only_problem(const config::LoadResult& r) {
    INFO(all_problems(r));
    REQUIRE(r.problems.size() == 1);
    return r.problems[0];
}

inline constexpr std::string_view minimal_account = R"(
[[account]]
name = "home"
jid = "alice@example.org"
password = "secret"
)";

inline std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// Client certificates and keys, made with the openssl CLI once per run (as tls_test's Pki):
// alice.pem/alice.key (EC P-256, self-signed), other.key (unrelated), alice-p8.key and
// alice-trad.key (alice.key encrypted as PKCS#8 and as a traditional PEM, passphrase "x"),
// expired.pem (alice's key, notAfter yesterday: `x509 -days -1`, since OpenSSL 3.0's req
// refuses -days 0 and has no -not_after) and expired.date ("notAfter=YYYY-MM-DD HH:MM:SSZ").
// Every key is 0600.
struct Pki {
    std::string dir;
    Pki() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "stanzad-config-pki-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        dir = tmpl;
        std::string cmd =
            "cd " + dir + " && "
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=alice "
            "-keyout alice.key -out alice.pem && "
            "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key && "
            "openssl pkey -in alice.key -aes256 -passout pass:x -out alice-p8.key && "
            "openssl ec -in alice.key -aes256 -passout pass:x -out alice-trad.key && "
            "openssl x509 -in alice.pem -signkey alice.key -days -1 -out expired.pem && "
            "openssl x509 -in expired.pem -noout -enddate -dateopt iso_8601 > expired.date && "
            "chmod 600 alice.key other.key alice-p8.key alice-trad.key";
        REQUIRE(std::system(("(" + cmd + ") >/dev/null 2>&1").c_str()) == 0);
    }
    ~Pki() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    std::string path(const char* file) const { return dir + "/" + file; }
};

inline const Pki& pki() {
    static Pki p;
    return p;
}

// A 0600 config file in `dir` with one account that uses `cert` and `key`, plus `extra`.
inline std::string cert_config(const TempDir& dir, const std::string& cert, const std::string& key,
                        const std::string& extra = "") {
    return dir.write("cert.toml",
                     "[[account]]\nname = \"cert\"\njid = \"alice@example.org\"\nclient_cert = \"" + cert +
                         "\"\nclient_key = \"" + key + "\"\n" + extra,
                     0600);
}

}  // namespace config_test
