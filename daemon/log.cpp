#include "daemon/log.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/stat.h>

namespace logs {
namespace {

std::shared_ptr<spdlog::logger> make(const char* name, std::shared_ptr<spdlog::sinks::sink> sink) {
    auto logger = std::make_shared<spdlog::logger>(name, std::move(sink));
    spdlog::register_logger(logger);
    return logger;
}

std::shared_ptr<spdlog::logger>& daemon_logger() {
    static std::shared_ptr<spdlog::logger> l;
    return l;
}
std::shared_ptr<spdlog::logger>& wire_logger() {
    static std::shared_ptr<spdlog::logger> l;
    return l;
}

// Under systemd, stderr is a journal stream when $JOURNAL_STREAM ("DEV:INODE") names it
// (systemd.exec(5)); then the journal stamps each line and reads its priority from a
// "<N>" prefix (sd-daemon(3)), so `journalctl -p warning` works.
bool stderr_is_journal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    struct stat st {};
    if (!stream || ::fstat(fileno(stderr), &st) != 0) return false;
    return std::string(stream) ==
           std::to_string(static_cast<unsigned long long>(st.st_dev)) + ":" +
               std::to_string(static_cast<unsigned long long>(st.st_ino));
}

// %* in a pattern: the syslog priority of the line's level (RFC 5424 severities).
class SyslogPriority : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        char digit = '6';
        switch (msg.level) {
        case spdlog::level::trace:
        case spdlog::level::debug: digit = '7'; break;
        case spdlog::level::info: digit = '6'; break;
        case spdlog::level::warn: digit = '4'; break;
        case spdlog::level::err: digit = '3'; break;
        case spdlog::level::critical: digit = '2'; break;
        default: break;
        }
        dest.push_back(digit);
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<SyslogPriority>(); }
};

std::shared_ptr<spdlog::sinks::sink> make_sink() {
    if (stderr_is_journal()) {
        auto sink = std::make_shared<spdlog::sinks::stderr_sink_st>();
        auto formatter = std::make_unique<spdlog::pattern_formatter>();
        formatter->add_flag<SyslogPriority>('*').set_pattern("<%*>%v");
        sink->set_formatter(std::move(formatter));
        return sink;
    }
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_st>();
    sink->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
    return sink;
}

}  // namespace

void init(std::string_view level) {
    if (daemon_logger()) return;
    auto sink = make_sink();
    daemon_logger() = make("stanzad", sink);
    wire_logger() = make("wire", sink);
    // Log lines must not wait for a buffer: tests and people read them as they happen.
    daemon_logger()->flush_on(spdlog::level::trace);
    wire_logger()->flush_on(spdlog::level::trace);
    set_level(level);
}

bool set_level(std::string_view level) {
    auto l = spdlog::level::from_str(std::string(level));
    if (l == spdlog::level::off && level != "off") return false;
    daemon_logger()->set_level(l);
    wire_logger()->set_level(l);
    return true;
}

spdlog::logger& daemon() { return *daemon_logger(); }
spdlog::logger& wire() { return *wire_logger(); }

}  // namespace logs
