#include "daemon/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

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

}  // namespace

void init(std::string_view level) {
    if (daemon_logger()) return;
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_st>();
    sink->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
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
