#pragma once
// Logging: spdlog to stderr, one logger per subsystem. "stanzad" for the daemon and its
// accounts (each line of an account starts "account NAME: "), "wire" for XML on the
// wire (trace level only, SASL payloads already redacted by the stream).
#include <spdlog/spdlog.h>

#include <memory>
#include <string_view>

namespace logs {

void init(std::string_view level);
// Returns false (and changes nothing) for an unknown level name.
bool set_level(std::string_view level);
spdlog::logger& daemon();
spdlog::logger& wire();

}  // namespace logs
