#pragma once
// JSON encoding of the model (docs/json-protocol.md): events as the socket shows them.
// The same text is what the store keeps, so a replayed event is byte-for-byte the event
// that was first shown. Sans-I/O; nlohmann/json.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "frontends/model.hpp"
#include "protocol/base/result.hpp"

namespace jsonl {

inline constexpr int protocol_version = 1;

nlohmann::ordered_json to_json(const model::Event& event);
nlohmann::ordered_json to_json(const model::AccountInfo& account);
nlohmann::ordered_json to_json(const model::RosterItem& item);
nlohmann::ordered_json to_json(const model::OccupantInfo& occupant);
nlohmann::ordered_json to_json(const model::RoomInfo& room);
// One line of text, without the newline.
std::string encode(const model::Event& event);
// The inverse of encode(); an error names what is wrong.
xmpp::Result<model::Event> decode(std::string_view line);

}  // namespace jsonl
