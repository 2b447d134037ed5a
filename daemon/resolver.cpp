#include "daemon/resolver.hpp"

#include <algorithm>
#include <cstring>
#include <optional>

namespace stanzad {
namespace {

constexpr int query_timeout_ms = 3000;  // per try; c-ares tries each server `tries` times
constexpr int query_tries = 2;
constexpr std::uint32_t max_ttl_s = 86400;

std::string strip_brackets(const std::string& host) {
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') return host.substr(1, host.size() - 2);
    return host;
}

std::optional<Address> literal(const std::string& host, std::uint16_t port) {
    std::string h = strip_brackets(host);
    Address a;
    if (uv_ip6_addr(h.c_str(), port, reinterpret_cast<sockaddr_in6*>(&a.addr)) == 0) {
        a.v6 = true;
        return a;
    }
    if (uv_ip4_addr(h.c_str(), port, reinterpret_cast<sockaddr_in*>(&a.addr)) == 0) return a;
    return std::nullopt;
}

}  // namespace

std::string Address::text() const {
    char buf[INET6_ADDRSTRLEN] = "?";
    if (v6) {
        const auto* sa = reinterpret_cast<const sockaddr_in6*>(&addr);
        uv_ip6_name(sa, buf, sizeof buf);
        return "[" + std::string(buf) + "]:" + std::to_string(ntohs(sa->sin6_port));
    }
    const auto* sa = reinterpret_cast<const sockaddr_in*>(&addr);
    uv_ip4_name(sa, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(sa->sin_port));
}

bool Resolver::is_literal(const std::string& host) { return literal(host, 0).has_value(); }

// One query in flight. Owned by c-ares until its callback, which deletes it.
struct Resolver::Query {
    Resolver* self;
    std::string name;
    std::uint16_t port = 0;
    Token alive;
    SrvDone srv_done;
    AddrDone addr_done;
};

Resolver::Resolver(uv_loop_t* loop) : loop_(loop), timer_(loop), deliver_timer_(loop) {
    timer_->data = this;
    deliver_timer_->data = this;
}

xmpp::Result<std::unique_ptr<Resolver>> Resolver::create(uv_loop_t* loop, const std::string& server) {
    static const int library = ares_library_init(ARES_LIB_INIT_ALL);
    if (library != ARES_SUCCESS) return xmpp::make_error("dns", std::string("c-ares: ") + ares_strerror(library));
    std::unique_ptr<Resolver> r(new Resolver(loop));
    ares_options opts{};
    opts.sock_state_cb = on_sock_state;
    opts.sock_state_cb_data = r.get();
    opts.timeout = query_timeout_ms;
    opts.tries = query_tries;
    int rc = ares_init_options(&r->channel_, &opts, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) return xmpp::make_error("dns", std::string("cannot start the DNS resolver: ") + ares_strerror(rc));
    if (!server.empty()) {
        rc = ares_set_servers_ports_csv(r->channel_, server.c_str());
        if (rc != ARES_SUCCESS)
            return xmpp::make_error("dns", "resolver " + server + ": " + ares_strerror(rc));
    }
    return r;
}

Resolver::~Resolver() {
    *alive_ = false;
    // Pending callbacks run with ARES_ECANCELLED (then ARES_EDESTRUCTION) and only free
    // their Query; cancelling first keeps c-ares 1.18 from starting new queries while it
    // is destroyed (c-ares issue #532).
    if (channel_) {
        ares_cancel(channel_);
        ares_destroy(channel_);
    }
    for (auto& [fd, poll] : polls_) {
        uv_poll_stop(poll);
        uv_close(reinterpret_cast<uv_handle_t*>(poll), uv::Handle<uv_poll_t>::free_on_close);
    }
}

void Resolver::on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<Resolver*>(data);
    auto it = self->polls_.find(fd);
    if (!readable && !writable) {
        // c-ares closes the socket after this call: stop polling it now.
        if (it != self->polls_.end()) {
            uv_poll_stop(it->second);
            uv_close(reinterpret_cast<uv_handle_t*>(it->second), uv::Handle<uv_poll_t>::free_on_close);
            self->polls_.erase(it);
        }
        return;
    }
    uv_poll_t* poll;
    if (it != self->polls_.end()) {
        poll = it->second;
    } else {
        poll = new uv_poll_t{};
        if (uv_poll_init_socket(self->loop_, poll, fd) != 0) {
            delete poll;
            return;  // c-ares times the query out
        }
        poll->data = self;
        self->polls_[fd] = poll;
    }
    uv_poll_start(poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0),
                  [](uv_poll_t* p, int status, int events) {
                      auto* self = static_cast<Resolver*>(p->data);
                      uv_os_fd_t fd;
                      if (!self || uv_fileno(reinterpret_cast<uv_handle_t*>(p), &fd) != 0) return;
                      bool error = status < 0;
                      ares_process_fd(self->channel_, (error || (events & UV_READABLE)) ? fd : ARES_SOCKET_BAD,
                                      (error || (events & UV_WRITABLE)) ? fd : ARES_SOCKET_BAD);
                      self->reschedule();
                  });
}

void Resolver::reschedule() {
    timeval tv{};
    if (!ares_timeout(channel_, nullptr, &tv)) {
        uv_timer_stop(timer_.get());
        return;
    }
    auto ms = static_cast<std::uint64_t>(tv.tv_sec) * 1000 + (static_cast<std::uint64_t>(tv.tv_usec) + 999) / 1000;
    uv_timer_start(
        timer_.get(),
        [](uv_timer_t* t) {
            auto* self = static_cast<Resolver*>(t->data);
            if (!self) return;
            ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
            self->reschedule();
        },
        ms, 0);
}

void Resolver::later(std::function<void()> deliver) {
    ready_.push_back(std::move(deliver));
    uv_timer_start(
        deliver_timer_.get(),
        [](uv_timer_t* t) {
            auto* self = static_cast<Resolver*>(t->data);
            if (!self) return;
            auto ready = std::exchange(self->ready_, {});
            std::weak_ptr<bool> alive = self->alive_;
            for (auto& deliver : ready) {
                if (alive.expired()) return;  // a callback destroyed the resolver
                deliver();
            }
        },
        0, 0);
}

template <class T>
bool Resolver::cached(std::map<std::string, std::pair<std::chrono::steady_clock::time_point, T>>& cache,
                      const std::string& key, std::function<void(xmpp::Result<T>)>& done, Token& alive) {
    auto it = cache.find(key);
    if (it == cache.end()) return false;
    if (it->second.first <= std::chrono::steady_clock::now()) {
        cache.erase(it);
        return false;
    }
    later([value = it->second.second, done = std::move(done), alive = std::move(alive)]() mutable {
        if (!alive.expired()) done(std::move(value));
    });
    return true;
}

void Resolver::srv(const std::string& name, Token alive, SrvDone done) {
    if (cached(srv_cache_, name, done, alive)) return;
    auto* q = new Query{this, name, 0, std::move(alive), std::move(done), {}};
    // RFC 2782: class IN, type SRV (33). ares_query uses no search domains.
    ares_query(channel_, name.c_str(), 1, 33,
               [](void* arg, int status, int, unsigned char* abuf, int alen) {
                   std::unique_ptr<Query> q(static_cast<Query*>(arg));
                   if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) return;
                   Resolver* self = q->self;
                   xmpp::Result<std::vector<dns::SrvRecord>> result = std::vector<dns::SrvRecord>{};
                   if (status == ARES_SUCCESS) {
                       result = dns::parse_srv_answer(
                           std::string_view(reinterpret_cast<const char*>(abuf), static_cast<std::size_t>(alen)),
                           q->name);
                   } else if (status != ARES_ENODATA && status != ARES_ENOTFOUND) {
                       result = xmpp::make_error("dns", "SRV lookup of " + q->name + ": " + ares_strerror(status));
                   }
                   if (result && !result.value().empty()) {
                       std::uint32_t ttl = max_ttl_s;
                       for (const auto& r : result.value()) ttl = std::min(ttl, r.ttl);
                       if (ttl > 0) {
                           if (self->srv_cache_.size() >= max_cache_entries) self->srv_cache_.clear();
                           self->srv_cache_[q->name] = {std::chrono::steady_clock::now() + std::chrono::seconds(ttl),
                                                        result.value()};
                       }
                   }
                   self->later([q = std::shared_ptr<Query>(std::move(q)), result = std::move(result)]() mutable {
                       if (!q->alive.expired()) q->srv_done(std::move(result));
                   });
               },
               q);
    reschedule();
}

void Resolver::addresses(const std::string& host, std::uint16_t port, Token alive, AddrDone done) {
    if (auto a = literal(host, port)) {
        later([a = *a, done = std::move(done), alive = std::move(alive)] {
            if (!alive.expired()) done(std::vector<Address>{a});
        });
        return;
    }
    std::string key = host + ":" + std::to_string(port);
    if (cached(addr_cache_, key, done, alive)) return;
    auto* q = new Query{this, host, port, std::move(alive), {}, std::move(done)};
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;  // AAAA and A
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = ARES_AI_NOSORT;
    std::string service = std::to_string(port);
    ares_getaddrinfo(
        channel_, host.c_str(), service.c_str(), &hints,
        [](void* arg, int status, int, ares_addrinfo* res) {
            std::unique_ptr<Query> q(static_cast<Query*>(arg));
            std::unique_ptr<ares_addrinfo, void (*)(ares_addrinfo*)> owned(res, ares_freeaddrinfo);
            if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) return;
            Resolver* self = q->self;
            xmpp::Result<std::vector<Address>> result = std::vector<Address>{};
            std::uint32_t ttl = max_ttl_s;
            if (status != ARES_SUCCESS) {
                result = xmpp::make_error("dns", "cannot resolve " + q->name + ": " + ares_strerror(status));
            } else {
                std::vector<Address> found;
                for (auto* n = res ? res->nodes : nullptr; n; n = n->ai_next) {
                    Address a;
                    if (n->ai_family == AF_INET6 && n->ai_addrlen <= sizeof a.addr) a.v6 = true;
                    else if (n->ai_family != AF_INET) continue;
                    std::memcpy(&a.addr, n->ai_addr, std::min<std::size_t>(n->ai_addrlen, sizeof a.addr));
                    found.push_back(a);
                    ttl = std::min(ttl, static_cast<std::uint32_t>(std::max(0, n->ai_ttl)));
                }
                // RFC 8305 §4: IPv6 first, then alternate families.
                std::vector<bool> v6;
                for (const auto& a : found) v6.push_back(a.v6);
                std::vector<Address> ordered;
                for (std::size_t i : dns::interleave_families(v6)) ordered.push_back(found[i]);
                if (ordered.empty()) result = xmpp::make_error("dns", "no address for " + q->name);
                else result = std::move(ordered);
            }
            if (result && ttl > 0) {
                if (self->addr_cache_.size() >= max_cache_entries) self->addr_cache_.clear();
                self->addr_cache_[q->name + ":" + std::to_string(q->port)] = {
                    std::chrono::steady_clock::now() + std::chrono::seconds(ttl), result.value()};
            }
            self->later([q = std::shared_ptr<Query>(std::move(q)), result = std::move(result)]() mutable {
                if (!q->alive.expired()) q->addr_done(std::move(result));
            });
        },
        q);
    reschedule();
}

}  // namespace stanzad
