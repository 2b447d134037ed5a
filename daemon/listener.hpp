#pragma once
// Listener: the core shared by the downstream sockets, the JSON-lines socket
// (JsonlListener) and the IRC socket (IrcListener). It listens on a Unix socket (created
// mode 0600; a stale file left by a dead daemon is replaced, a live daemon's is refused) or
// on TCP; accepts clients; reads, each read handled inside one GroupCommit::Scope (one
// commit per read, writes held until it: daemon/group_commit.hpp); flushes a client's
// output bounded by max_backlog (past it the client is dropped, nobody else is affected);
// drops clients (gracefully: after what was written, through uv::after_writes); and
// replays stored events from the store a page at a time, as the client reads
// (backpressure: a client that does not read is given no more pages, and is not dropped
// for it). What the bytes mean is the front end's: its Client subclass holds the sans-I/O
// session.
// Owned by the front end's listener; loop thread only. Memory per client: what libuv and
// the group commit hold for it (at most max_backlog before it is dropped); while it
// replays, at most replay_high_water() plus one page (replay_page_bytes() and one event),
// and what its session gathers (IRC's: at most 5,000 messages or 4 MiB, its history.cpp).
#include <uv.h>

#include <algorithm>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/store.hpp"
#include "daemon/uv.hpp"
#include "frontends/model/model.hpp"
#include "protocol/base/result.hpp"

namespace stanzad {

class Listener {
public:
    // One connection. The front end's subclass says what its bytes mean.
    class Client {
    public:
        virtual ~Client() = default;
        Client(const Client&) = delete;
        Client& operator=(const Client&) = delete;

        int number() const { return number_; }
        bool closed() const { return closed_; }
        uv_stream_t* stream() const { return stream_; }  // nullptr once closed

        // Replaying stored events after this seq (start_replay); live events wait meanwhile.
        std::optional<model::Seq> replay_after;

        // What the client sent, inside the read's GroupCommit::Scope.
        virtual void received(std::string_view bytes) = 0;
        // What the session has to write (flush() writes it, bounded).
        virtual std::string take_output() = 0;
        // Writes to the socket now (or when the group commit lets it); a TLS client
        // encrypts first. Nothing once closed.
        virtual void write(std::string data);
        // False while nothing may leave (IRC: a failed login being answered after a delay).
        virtual bool may_write() const { return true; }
        virtual void replay_event(const model::Event& event) = 0;
        // A stored row to replay: by default decoded and given to replay_event (a JSON
        // client sends the row's JSON as it is). An error (a row that does not decode) ends
        // the replay.
        virtual xmpp::Status replay_row(const StoredRow& row);
        // The one kind of event the replay reads ("message"), or all kinds ("").
        virtual std::string_view replay_kind() const { return {}; }
        virtual void replay_done() {}
        // Who this is, for the log ("alice", "'emacs'").
        virtual std::string who() const = 0;
        // Accepted and listed: starts reading (a front end may refuse here instead).
        virtual void opened();

    protected:
        Client(Listener& listener, uv_stream_t* stream, int number)
            : listener_(listener), stream_(stream), number_(number) {}
        Listener& listener_;

    private:
        friend class Listener;
        uv_stream_t* stream_;
        int number_;
        bool closed_ = false;
    };

    // Makes the front end's Client for an accepted stream.
    using Accept = std::function<std::unique_ptr<Client>(Listener& listener, uv_stream_t* stream, int number)>;

    struct Settings {
        std::string kind;         // "irc", "json": in log lines
        std::size_t max_backlog;  // unwritten bytes per client before it is dropped
        int listen_backlog = 64;  // pending connections (listen(2))
    };

    Listener(uv_loop_t* loop, Store& store, Settings settings, Accept accept);
    ~Listener();
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    // A Unix socket at `path`, mode 0600. A file there that is no socket is kept (error);
    // a socket that answers belongs to a live daemon (error); one that does not is a dead
    // daemon's and is replaced.
    xmpp::Status listen_unix(const std::string& path);
    // TCP on `address` (an IPv4 or IPv6 socket address); `shown` names it in errors.
    xmpp::Status listen_tcp(const sockaddr* address, const std::string& shown);
    // Stops accepting, closes every client and removes the socket file.
    void close();

    void start_reading(Client& client);
    void stop_reading(Client& client);
    // Writes what the client's session has; past max_backlog the client is dropped instead.
    void flush(Client& client);
    // `graceful`: what is pending is written (and the held writes leave) before the close.
    // The Client stays (closed) until the next loop turn: it may be on the stack.
    void drop(Client& client, const std::string& why, bool graceful);
    // Replays stored events after `after`, a page at a time while the client reads; then
    // Client::replay_done().
    void start_replay(Client& client, model::Seq after);
    // A page is read while less than this waits to be written to the client: a quarter of
    // max_backlog, at most 1 MiB (issue 13: replay with backpressure).
    std::size_t replay_high_water() const { return std::min<std::size_t>(settings_.max_backlog / 4, 1 << 20); }
    // A page is at most 500 events and ends once their stored rows come to this.
    std::size_t replay_page_bytes() const { return replay_high_water() / 4; }

    // The open client with this number, or nullptr (an answer that comes after a drop).
    Client* find(int number);
    // Every client not closed, in the order they came.
    template <class F>
    void each(F&& f) {
        for (auto& c : clients_)
            if (!c->closed_) f(*c);
    }
    std::size_t client_count() const { return clients_.size(); }

private:
    static void on_connection(uv_stream_t* server, int status);
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
    xmpp::Status start_listening(int rc, const std::string& shown);
    void continue_replay(Client& client);
    void continue_replays();
    void reap();

    uv_loop_t* loop_;
    Store& store_;
    Settings settings_;
    Accept accept_;
    uv_stream_t* server_ = nullptr;  // tcp or pipe, freed on close
    std::string path_;               // of the Unix socket we made
    std::list<std::unique_ptr<Client>> clients_;
    uv::Timer reap_timer_;
    uv::Timer replay_timer_;  // ticks while a replay waits for its client to read
    int next_number_ = 1;
};

}  // namespace stanzad
