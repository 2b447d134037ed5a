#pragma once
// JsonlSession: one client of the JSON-lines socket, sans-I/O (docs/json-protocol.md).
// Bytes in, lines out. Each complete line becomes a validated Request for the hub, or an
// error reply written here; the hub answers each Request with a model::Reply and pushes
// model events, which this session renders. Replies leave in request order because the
// hub takes requests one at a time with next_request().
// Owned by the daemon's listener, loop thread only. Memory: at most one partial line
// (max_line_bytes; longer lines are skipped as they arrive) plus unread output.
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "frontends/line_splitter.hpp"
#include "frontends/model/model.hpp"

namespace jsonl {

// The version of the JSON-lines protocol, announced in the welcome (docs/json-protocol.md).
inline constexpr int protocol_version = 1;
inline constexpr std::size_t max_line_bytes = 1 << 20;

struct Request {
    nlohmann::ordered_json id;  // null when the request had none
    std::string op;
    model::Command command;
};

class Session {
public:
    explicit Session(std::string daemon_version = "stanzad");

    void receive(std::string_view bytes);
    // The next valid request, or nullopt when no complete line is left. Lines that are not
    // valid requests are answered here, in order.
    std::optional<Request> next_request();
    void reply(const Request& request, const model::Reply& reply);
    // Rendered only once hello has been answered.
    void event(const model::Event& event);
    // The same, for an event already encoded (model::codec::encode: the store's row, or one
    // encoding shared by every client).
    void event(std::string_view encoded);

    std::string take_output() { return std::exchange(output_, {}); }
    std::size_t output_size() const { return output_.size(); }
    bool attached() const { return attached_; }
    const std::string& client() const { return client_; }

private:
    void write(const nlohmann::ordered_json& j);
    void error(const nlohmann::ordered_json& id, std::string_view code, std::string_view message);

    std::string daemon_version_;
    frontends::LineSplitter splitter_{max_line_bytes};
    std::string output_;
    bool hello_sent_ = false;           // a hello is with the hub
    bool attached_ = false;
    std::string client_;
};

}  // namespace jsonl
