#pragma once
// One request of the JSON-lines protocol (docs/json-protocol.md) read into a model command:
// the op's fields checked (types, ranges, JIDs, nicks) with an error that names the field.
// Pure: no I/O, no state.
#include <string>

#include <nlohmann/json.hpp>

#include "frontends/model/model.hpp"
#include "protocol/base/result.hpp"

namespace jsonl {

// `op` and the request object `j`; errors: "unknown-op", "bad-request", "bad-jid".
xmpp::Result<model::Command> parse_command(const std::string& op, const nlohmann::ordered_json& j);

}  // namespace jsonl
