#pragma once
// IrcListener: the IRC front end's socket ([irc] listen: host:port, or a Unix socket path
// created 0600). Each client gets a sans-I/O irc::Session; this class moves bytes, hands
// the session's commands to the hub, feeds it live events and its replay, pings idle
// clients, and keeps the nick map (shared by every IRC client) in the store. The door:
// [irc] limits on unregistered and registered connections, a registration deadline, and
// each failed login answered after auth_delay_ms with reading paused meanwhile; TLS with
// [irc] tls_cert/tls_key (required off loopback, see config).
// Loop thread only.
#include <uv.h>

#include <list>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "daemon/hub.hpp"
#include "daemon/irc_tls.hpp"
#include "daemon/store.hpp"
#include "daemon/uv.hpp"
#include "frontends/irc/nicks.hpp"
#include "frontends/irc/session.hpp"

namespace stanzad {

class IrcListener {
public:
    static constexpr std::size_t max_backlog = 16 << 20;  // unwritten bytes per client

    static constexpr std::uint64_t auth_delay_ms = 1000;  // before the answer to a failed login

    IrcListener(uv_loop_t* loop, Hub& hub, Store& store, std::string password, const config::IrcSection& settings);
    ~IrcListener();

    // "host:port" (TCP) or a path (a Unix socket, mode 0600).
    xmpp::Status listen(const std::string& address);
    void close();
    std::size_t client_count() const { return clients_.size(); }

private:
    struct Client {
        IrcListener* owner;
        uv_stream_t* stream = nullptr;  // tcp or pipe, freed on close
        std::unique_ptr<irc::Session> session;
        int number;
        bool closed = false;
        bool replay_started = false;
        bool pumping = false;  // inside pump(): answers given at once are picked up by its loop
        bool from_read = false;  // this pump follows what the client sent
        std::optional<model::Seq> replay_after;
        std::uint64_t connected_at = 0;  // uv_now, for the registration deadline
        std::uint64_t hold_until = 0;    // uv_now; while set: no reading, no writing (failed login)
        int auth_failures = 0;           // as last seen from the session
        std::unique_ptr<IrcTlsSession> tls;  // with [irc] tls_cert/tls_key
    };
    static void on_connection(uv_stream_t* server, int status);
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);

    void pump(Client& client);
    void continue_replay(Client& client);
    void flush(Client& client);
    // Writes `data` (plaintext) to the client, through TLS when it has it; "" sends what
    // TLS has pending (handshake messages).
    void write_to(Client& client, std::string data);
    // `graceful`: write what is pending, then close; else close at once.
    void drop(Client& client, const std::string& why, bool graceful = true);
    void deliver(const model::Event& event);
    void keepalive();
    void watch();  // registration deadlines and held clients
    void hold_if_failed(Client& client);
    std::size_t count(bool registered) const;
    static void start_reading(uv_stream_t* stream);
    void save_nicks(bool commands);
    void reap();

    uv_loop_t* loop_;
    Hub& hub_;
    Store& store_;
    std::string password_;
    config::IrcSection settings_;  // server_name, limits, registration_timeout, TLS files
    std::shared_ptr<IrcTlsContext> tls_;  // loaded by listen() when tls_cert is set
    std::string address_, path_;
    uv_stream_t* server_ = nullptr;
    irc::NickMap nicks_;
    std::string saved_nicks_;
    std::size_t saved_size_ = 0;
    std::list<std::unique_ptr<Client>> clients_;
    uv::Timer ping_timer_, reap_timer_, replay_timer_, watch_timer_;
    int next_number_ = 1;
};

}  // namespace stanzad
