#pragma once
// IrcListener: the IRC front end's socket ([irc] listen: host:port, or a Unix socket path
// created 0600). Each client gets a sans-I/O irc::Session; this class hands the session's
// commands to the hub, feeds it live events and its replay, pings idle clients, and keeps
// the nick map (shared by every IRC client) in the store. The door: [irc] limits on
// unregistered and registered connections, a registration deadline, and each failed login
// answered after auth_delay_ms with reading paused meanwhile; TLS with [irc]
// tls_cert/tls_key (required off loopback, see config). The socket, reads, bounded writes,
// drops and the paged replay are the shared Listener core's (daemon/listener.hpp).
// Loop thread only.
#include <uv.h>

#include <memory>
#include <string>

#include "config/config.hpp"
#include "daemon/hub.hpp"
#include "daemon/irc_tls.hpp"
#include "daemon/listener.hpp"
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

    // "host:port" (TCP) or a path (a Unix socket, mode 0600; refused when a live daemon
    // answers on it, replaced when a dead one left it).
    xmpp::Status listen(const std::string& address);
    void close();
    std::size_t client_count() const { return core_.client_count(); }

private:
    struct Client;
    std::unique_ptr<Listener::Client> accept(Listener& core, uv_stream_t* stream, int number);
    xmpp::Status listen_tcp(const std::string& address);
    void received(Client& client, std::string_view bytes);
    void opened(Client& client);
    void pump(Client& client);
    void deliver(const model::Event& event);
    void keepalive();
    void watch();  // registration deadlines and held clients
    void hold_if_failed(Client& client);
    std::size_t count(bool registered);
    void save_nicks(bool commands);
    template <class F>
    void each(F&& f);

    uv_loop_t* loop_;
    Hub& hub_;
    Store& store_;
    std::string password_;
    config::IrcSection settings_;  // server_name, limits, registration_timeout, TLS files
    std::shared_ptr<IrcTlsContext> tls_;  // loaded by listen() when tls_cert is set
    irc::NickMap nicks_;
    std::string saved_nicks_;
    std::size_t saved_size_ = 0;
    Listener core_;
    uv::Timer ping_timer_, watch_timer_;
};

}  // namespace stanzad
