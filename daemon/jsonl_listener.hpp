#pragma once
// JsonlListener: the JSON-lines Unix socket (docs/json-protocol.md). Accepts any number
// of clients, each a jsonl::Session; feeds their requests to the hub, writes replies and
// events. A client that misbehaves gets errors; one that stops reading while its output
// piles up past max_backlog is disconnected; neither affects anyone else. The socket,
// reads, bounded writes, drops and the paged replay are the shared Listener core's.
// Loop thread only.
#include <uv.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "daemon/hub.hpp"
#include "daemon/listener.hpp"
#include "frontends/jsonl/session.hpp"

namespace stanzad {

class JsonlListener {
public:
    static constexpr std::size_t max_backlog = 64 << 20;  // unwritten bytes per client

    JsonlListener(uv_loop_t* loop, Hub& hub, Store& store);
    ~JsonlListener();

    // Creates the socket (mode 0600). A stale file from a dead daemon is replaced; a live
    // daemon answering on it is an error.
    xmpp::Status listen(const std::string& path);
    // Stops accepting, closes every client and removes the socket file.
    void close();
    std::size_t client_count() const { return core_.client_count(); }

private:
    struct Client;
    void serve(Client& client);
    void answer(int client, std::size_t request, model::Reply reply);
    void send_replies(Client& client);
    void deliver(const model::Event& event);

    Hub& hub_;
    Store& store_;
    Listener core_;
    std::size_t next_request_ = 0;  // numbers requests across clients
};

}  // namespace stanzad
