#pragma once
// Resolver: DNS on the libuv loop through c-ares (never blocking the loop). SRV records
// (parsed by protocol/dns with their TTL) and the addresses of a host (A and AAAA), both
// cached for their TTL. One per daemon, shared by the accounts; `[daemon] resolver`
// points it at one DNS server instead of the system's (/etc/resolv.conf).
// Loop thread only. Memory: the cache (bounded by max_cache_entries) and the queries in
// flight. Results are always delivered on a later loop turn, never inside the call that
// asked, so callers need not guard against re-entry; a caller that goes away first drops
// its interest by letting its `alive` token expire.
#include <ares.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "daemon/uv.hpp"
#include "protocol/base/result.hpp"
#include "protocol/dns.hpp"

namespace stanzad {

struct Address {
    sockaddr_storage addr{};
    bool v6 = false;
    std::string text() const;  // "127.0.0.1:5222", "[::1]:5222"
};

class Resolver {
public:
    using Token = std::weak_ptr<void>;
    using SrvDone = std::function<void(xmpp::Result<std::vector<dns::SrvRecord>>)>;
    using AddrDone = std::function<void(xmpp::Result<std::vector<Address>>)>;

    // `server`: "" for the system's resolver, else "HOST:PORT" (validated by config).
    static xmpp::Result<std::unique_ptr<Resolver>> create(uv_loop_t* loop, const std::string& server);
    ~Resolver();
    Resolver(const Resolver&) = delete;
    Resolver& operator=(const Resolver&) = delete;

    // SRV records of `name` ("_xmpp-client._tcp.example.org"), unordered; none when the
    // name does not exist or has no SRV record.
    void srv(const std::string& name, Token alive, SrvDone done);
    // The addresses of `host` with `port`, AAAA and A together (IPv6 first). An IP literal
    // is answered without a query.
    void addresses(const std::string& host, std::uint16_t port, Token alive, AddrDone done);
    // True when `host` is an IPv4 or IPv6 literal (with or without brackets).
    static bool is_literal(const std::string& host);

    static constexpr std::size_t max_cache_entries = 256;

private:
    struct Poll;
    struct Query;
    explicit Resolver(uv_loop_t* loop);
    static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable);
    void reschedule();
    void later(std::function<void()> deliver);
    template <class T>
    bool cached(std::map<std::string, std::pair<std::chrono::steady_clock::time_point, T>>& cache,
                const std::string& key, std::function<void(xmpp::Result<T>)>& done, Token& alive);

    uv_loop_t* loop_;
    ares_channel channel_ = nullptr;
    std::map<ares_socket_t, uv_poll_t*> polls_;
    uv::Timer timer_;        // c-ares's own timeouts
    uv::Timer deliver_timer_;  // results for the next loop turn
    std::vector<std::function<void()>> ready_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    std::map<std::string, std::pair<std::chrono::steady_clock::time_point, std::vector<dns::SrvRecord>>> srv_cache_;
    std::map<std::string, std::pair<std::chrono::steady_clock::time_point, std::vector<Address>>> addr_cache_;
};

}  // namespace stanzad
