#pragma once
// JsonlListener: the JSON-lines Unix socket (docs/json-protocol.md). Accepts any number
// of clients, each a jsonl::Session; feeds their requests to the hub, writes replies and
// events. A client that misbehaves gets errors; one that stops reading while its output
// piles up past max_backlog is disconnected; neither affects anyone else.
// Loop thread only.
#include <uv.h>

#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>

#include "daemon/hub.hpp"
#include "daemon/uv.hpp"
#include "frontends/jsonl/session.hpp"

namespace stanzad {

class JsonlListener {
public:
    static constexpr std::size_t max_backlog = 64 << 20;  // unwritten bytes per client

    JsonlListener(uv_loop_t* loop, Hub& hub);
    ~JsonlListener();

    // Creates the socket (mode 0600). A stale file from a dead daemon is replaced; a live
    // daemon answering on it is an error.
    xmpp::Status listen(const std::string& path);
    // Stops accepting, closes every client and removes the socket file.
    void close();
    std::size_t client_count() const { return clients_.size(); }

private:
    struct Client {
        JsonlListener* owner;
        uv::Handle<uv_pipe_t> pipe;
        jsonl::Session session;
        int number;
        bool closed = false;
        // Replaying stored events after this seq; live events wait (they are in the store
        // too, and come in order when the replay reaches them).
        std::optional<model::Seq> replay_after;
        // Requests in the order they came, each with its reply once the hub gave it: replies
        // go out in request order, so a slow one (join, history) holds back later ones.
        struct Pending {
            std::size_t number;
            std::optional<jsonl::Request> request;  // none: `errors` only
            std::optional<model::Reply> reply;
            std::string errors;  // error lines for unreadable requests that came before it
        };
        std::deque<Pending> pending;
    };
    static void on_connection(uv_stream_t* server, int status);
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);

    void serve(Client& client);
    void answer(int client, std::size_t request, model::Reply reply);
    void send_replies(Client& client);
    void flush(Client& client);
    void drop(Client& client, const std::string& why);
    void deliver(const model::Event& event);
    void reap();
    void continue_replay(Client& client);
    void continue_replays();

    uv_loop_t* loop_;
    Hub& hub_;
    std::string path_;
    uv::Handle<uv_pipe_t> server_;
    std::list<std::unique_ptr<Client>> clients_;
    uv::Timer reap_timer_;
    uv::Timer replay_timer_;  // ticks while a replay waits for its client to read
    int next_number_ = 1;
    std::size_t next_request_ = 0;  // numbers requests across clients
};

}  // namespace stanzad
