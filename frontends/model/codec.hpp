#pragma once
// The one codec of the model's events: the JSON text that the JSON-lines socket shows
// (docs/json-protocol.md) and that the store keeps in its rows (with format_version beside
// it), so a replayed event is byte-for-byte the event that was first shown. Sans-I/O;
// nlohmann/json.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "frontends/model/model.hpp"
#include "protocol/base/result.hpp"

namespace model::codec {

// The version of the encoding written by encode(). The JSON-lines protocol's version is
// the socket's own (jsonl::protocol_version); a stored row keeps the version it was written
// in, so the socket's protocol can change without rewriting the store.
// 1: rows may lack fields added since they were written (a message's carbon, replaces,
//    history; a presence's priority; a roster item's nick): decode() fills them in.
// 2 (2026-12-07): every field encode() writes today. A replay sends such a row as it is
//    (daemon/jsonl_listener.cpp); a row of format 1 is decoded and encoded again.
inline constexpr int format_version = 2;

nlohmann::ordered_json to_json(const model::Event& event);
nlohmann::ordered_json to_json(const model::AccountInfo& account);
nlohmann::ordered_json to_json(const model::RosterItem& item);
nlohmann::ordered_json to_json(const model::OccupantInfo& occupant);
nlohmann::ordered_json to_json(const model::RoomInfo& room);
// One line of text, without the newline.
std::string encode(const model::Event& event);
// The inverse of encode(); an error names what is wrong.
xmpp::Result<model::Event> decode(std::string_view line);
// Appends `s` as a JSON string, with the bytes nlohmann/json's dump() writes for it; false
// when `s` is not valid UTF-8 (what was appended is then for the caller to drop: the tree's
// serializer replaces what is invalid).
bool append_string(std::string& out, std::string_view s);

}  // namespace model::codec
