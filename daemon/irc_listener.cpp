#include "daemon/irc_listener.hpp"

#include <chrono>

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>

#include "daemon/group_commit.hpp"
#include "daemon/log.hpp"

namespace stanzad {
namespace {

constexpr const char* nicks_meta_account = "";  // the nick map belongs to no one account
constexpr const char* nicks_meta_key = "irc_nicks";
constexpr uint64_t ping_every_ms = 60'000;
constexpr uint64_t watch_every_ms = 250;

void close_stream(uv_stream_t* s) {
    if (!s || uv_is_closing(reinterpret_cast<uv_handle_t*>(s))) return;
    uv_close(reinterpret_cast<uv_handle_t*>(s), [](uv_handle_t* h) {
        if (h->type == UV_TCP) delete reinterpret_cast<uv_tcp_t*>(h);
        else delete reinterpret_cast<uv_pipe_t*>(h);
    });
}

}  // namespace

IrcListener::IrcListener(uv_loop_t* loop, Hub& hub, Store& store, std::string password,
                         const config::IrcSection& settings)
    : loop_(loop), hub_(hub), store_(store), password_(std::move(password)), settings_(settings),
      ping_timer_(loop), reap_timer_(loop), replay_timer_(loop), watch_timer_(loop) {
    ping_timer_->data = reap_timer_->data = replay_timer_->data = watch_timer_->data = this;
    // No contact is named like the service or the server (a nick "stanzad" or a dotless
    // server_name would look like the server's own lines).
    std::vector<std::string> reserved = {std::string(irc::service_nick), settings_.server_name};
    nicks_ = irc::NickMap(reserved);
    if (auto saved = store_.meta(nicks_meta_account, nicks_meta_key); saved && !saved.value().empty()) {
        nicks_ = irc::NickMap::deserialize(saved.value(), reserved);
        saved_nicks_ = saved.value();
        saved_size_ = nicks_.size();
    }
    hub_.add_sink([this](const model::Event& e) { deliver(e); });
}

IrcListener::~IrcListener() { close(); }

xmpp::Status IrcListener::listen(const std::string& address) {
    int rc = 0;
    bool tcp = address.find('/') == std::string::npos;
    if (tcp && password_.empty())
        return xmpp::make_error("irc", "[irc] listen = \"" + address + "\" is TCP and needs a password ([irc] password or "
                                       "password_command gave none); a Unix socket path may go without");
    if (!settings_.tls_cert.empty()) {
        auto context = IrcTlsContext::load(settings_.tls_cert, settings_.tls_key);
        if (!context) return context.error();
        tls_ = std::move(context).value();
    }
    if (!tcp) {
        // A Unix socket: only its owner may connect.
        struct stat st{};
        if (::lstat(address.c_str(), &st) == 0) {
            if (!S_ISSOCK(st.st_mode)) return xmpp::make_error("irc", address + " exists and is not a socket");
            ::unlink(address.c_str());
        }
        auto* pipe = new uv_pipe_t{};
        uv_pipe_init(loop_, pipe, 0);
        server_ = reinterpret_cast<uv_stream_t*>(pipe);
        mode_t old = ::umask(0177);
        rc = uv_pipe_bind(pipe, address.c_str());
        ::umask(old);
        if (rc == 0) rc = ::chmod(address.c_str(), 0600) == 0 ? 0 : uv_translate_sys_error(errno);
        path_ = address;
    } else {
        auto colon = address.rfind(':');
        std::string host = colon == std::string::npos ? "127.0.0.1" : address.substr(0, colon);
        if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
        int port = colon == std::string::npos ? 6667 : std::atoi(address.c_str() + colon + 1);
        sockaddr_storage addr{};
        if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
            uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0)
            return xmpp::make_error("irc", "[irc] listen: '" + host + "' is not an IP address");
        auto* tcp = new uv_tcp_t{};
        uv_tcp_init(loop_, tcp);
        server_ = reinterpret_cast<uv_stream_t*>(tcp);
        rc = uv_tcp_bind(tcp, reinterpret_cast<sockaddr*>(&addr), 0);
    }
    server_->data = this;
    if (rc == 0) rc = uv_listen(server_, 16, on_connection);
    if (rc != 0) {
        close_stream(server_);
        server_ = nullptr;
        return xmpp::make_error("irc", "cannot listen on " + address + ": " + uv_strerror(rc));
    }
    address_ = address;
    uv_timer_start(ping_timer_.get(), [](uv_timer_t* t) { static_cast<IrcListener*>(t->data)->keepalive(); },
                   ping_every_ms, ping_every_ms);
    uv_timer_start(watch_timer_.get(), [](uv_timer_t* t) { static_cast<IrcListener*>(t->data)->watch(); },
                   watch_every_ms, watch_every_ms);
    logs::daemon().info("stanzad: IRC on {}{}{}", address, tls_ ? " (TLS)" : "",
                        password_.empty() ? " (no password: [irc] password is not set)" : "");
    return xmpp::Ok{};
}

void IrcListener::close() {
    if (server_) {
        close_stream(server_);
        server_ = nullptr;
        if (!path_.empty()) ::unlink(path_.c_str());
    }
    for (auto& c : clients_) close_stream(c->stream);
    clients_.clear();
    ping_timer_.reset();
    reap_timer_.reset();
    replay_timer_.reset();
    watch_timer_.reset();
}

void IrcListener::on_connection(uv_stream_t* server, int status) {
    auto* self = static_cast<IrcListener*>(server->data);
    if (!self || status < 0) return;
    uv_stream_t* stream;
    if (server->type == UV_TCP) {
        auto* tcp = new uv_tcp_t{};
        uv_tcp_init(self->loop_, tcp);
        stream = reinterpret_cast<uv_stream_t*>(tcp);
    } else {
        auto* pipe = new uv_pipe_t{};
        uv_pipe_init(self->loop_, pipe, 0);
        stream = reinterpret_cast<uv_stream_t*>(pipe);
    }
    if (uv_accept(server, stream) != 0) {
        close_stream(stream);
        return;
    }
    int number = self->next_number_++;
    irc::SessionOptions options;
    options.password = self->password_;
    options.version = STANZAD_VERSION;
    options.server = self->settings_.server_name;
    options.may_register = [self] { return self->count(true) < static_cast<std::size_t>(self->settings_.max_clients); };
    options.clock = [] {
        return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    };
    auto client = std::make_unique<Client>();
    client->owner = self;
    client->stream = stream;
    client->number = number;
    client->session = std::make_unique<irc::Session>(options, self->nicks_, "irc" + std::to_string(number) + "-" + make_uuid().substr(0, 8));
    client->connected_at = uv_now(self->loop_);
    if (self->tls_) client->tls = std::make_unique<IrcTlsSession>(*self->tls_);
    stream->data = client.get();
    bool full = self->count(false) >= static_cast<std::size_t>(self->settings_.max_unregistered);
    self->clients_.push_back(std::move(client));
    if (full) {
        self->write_to(*self->clients_.back(), "ERROR :Closing link: too many unregistered connections (see [irc] max_unregistered)\r\n");
        return self->drop(*self->clients_.back(), "too many unregistered connections");
    }
    start_reading(stream);
    logs::daemon().debug("irc client {}: connected", number);
}

void IrcListener::start_reading(uv_stream_t* stream) {
    uv_read_start(
        stream,
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
            static char storage[65536];
            *buf = uv_buf_init(storage, sizeof storage);
        },
        on_read);
}

std::size_t IrcListener::count(bool registered) const {
    std::size_t n = 0;
    for (const auto& c : clients_)
        if (!c->closed && c->session->registered() == registered) ++n;
    return n;
}

void IrcListener::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* client = static_cast<Client*>(stream->data);
    if (!client || client->closed || nread == 0) return;
    if (nread < 0) {
        client->owner->drop(*client, nread == UV_EOF ? "disconnected" : uv_strerror(static_cast<int>(nread)), false);
        return;
    }
    GroupCommit::Scope batch(stream->loop);  // all lines of this read: one commit (issue 15)
    std::string_view bytes(buf->base, static_cast<std::size_t>(nread));
    std::string plain;
    if (client->tls) {
        if (auto st = client->tls->feed(bytes, plain); !st) return client->owner->drop(*client, st.error().message, false);
        client->owner->write_to(*client, "");  // the handshake's answer
        bytes = plain;
    }
    client->session->receive(bytes);
    client->from_read = true;
    client->owner->pump(*client);
}

void IrcListener::pump(Client& client) {
    // The session's requests; answers may come at once (and ask for more) or later. One
    // loop per client: an answer given at once only hands the reply over, and this loop
    // takes the requests it makes (no recursion however many a read brings).
    if (client.pumping) return;
    client.pumping = true;
    while (!client.closed) {
        auto request = client.session->next_request();
        if (!request) break;
        int number = client.number;
        auto id = request->id;
        hub_.handle(request->command, request->client, [this, number, id](model::Reply reply) {
            for (auto& c : clients_)
                if (c->number == number && !c->closed) {
                    c->session->reply(id, reply);
                    if (!c->pumping) pump(*c);
                    return;
                }
        });
    }
    client.pumping = false;
    if (client.closed) return;
    if (!client.replay_started && client.session->replay_after()) {
        client.replay_started = true;
        client.replay_after = client.session->replay_after();
        continue_replay(client);
    }
    save_nicks(client.from_read);
    client.from_read = false;
    hold_if_failed(client);
    flush(client);
    if (client.session->closing() && client.hold_until == 0) drop(client, "quit");
}

void IrcListener::hold_if_failed(Client& client) {
    // A failed login is answered after a delay, and nothing more is read meanwhile: a
    // password cannot be guessed faster than one per auth_delay_ms per connection (and the
    // session closes after Session::max_auth_failures).
    if (client.session->auth_failures() == client.auth_failures) return;
    client.auth_failures = client.session->auth_failures();
    client.hold_until = uv_now(loop_) + auth_delay_ms;
    uv_read_stop(client.stream);
}

void IrcListener::watch() {
    std::uint64_t now = uv_now(loop_);
    std::uint64_t deadline_ms = static_cast<std::uint64_t>(settings_.registration_timeout) * 1000;
    for (auto& c : clients_) {
        if (c->closed) continue;
        if (c->hold_until != 0 && now >= c->hold_until) {
            c->hold_until = 0;
            flush(*c);
            if (c->session->closing()) {
                drop(*c, "failed login");
                continue;
            }
            start_reading(c->stream);
        }
        if (!c->session->registered() && now - c->connected_at >= deadline_ms) {
            write_to(*c, "ERROR :Closing link: registration timed out\r\n");
            drop(*c, "registration timed out");
        }
    }
}

void IrcListener::continue_replay(Client& client) {
    // A page at a time, as the client reads: a long backlog never stalls the loop.
    constexpr std::size_t page = 500, high_water = 1 << 20;
    while (!client.closed && client.replay_after && uv::queued(client.stream) < high_water) {
        auto sent = hub_.replay(*client.replay_after, page, [&client](const model::Event& e) {
            client.session->replay_event(e);
            client.replay_after = e.seq;
        });
        if (!sent || sent.value() == 0) {
            if (!sent) logs::daemon().error("irc client {}: replay failed: {}", client.number, sent.error().message);
            client.replay_after.reset();
            client.session->replay_end();
            flush(client);
            return;
        }
    }
    if (!client.closed && client.replay_after && !uv_is_active(reinterpret_cast<uv_handle_t*>(replay_timer_.get())))
        uv_timer_start(replay_timer_.get(), [](uv_timer_t* t) {
            auto* self = static_cast<IrcListener*>(t->data);
            bool any = false;
            for (auto& c : self->clients_) {
                if (c->closed || !c->replay_after) continue;
                self->continue_replay(*c);
                any = any || c->replay_after.has_value();
            }
            if (!any) uv_timer_stop(self->replay_timer_.get());
        }, 5, 5);
}

void IrcListener::flush(Client& client) {
    if (client.closed || client.hold_until != 0) return;
    std::string out = client.session->take_output();
    if (out.empty()) return;
    if (uv::queued(client.stream) + out.size() > max_backlog) {
        drop(client, "not reading (more than 16 MiB waiting); disconnected", false);
        return;
    }
    write_to(client, std::move(out));
}

void IrcListener::write_to(Client& client, std::string data) {
    if (client.closed) return;
    if (client.tls) {
        client.tls->write(data);
        data = client.tls->take_output();
    }
    if (!data.empty()) uv::write(client.stream, std::move(data));
}

void IrcListener::deliver(const model::Event& event) {
    for (auto& c : clients_) {
        if (c->closed || !c->session->registered()) continue;
        c->session->event(event);
        pump(*c);
    }
}

void IrcListener::keepalive() {
    for (auto& c : clients_) {
        if (c->closed) continue;
        if (!c->session->keepalive()) drop(*c, "no answer to PING", false);
        else flush(*c);
    }
}

void IrcListener::save_nicks(bool commands) {
    // Nicks change when contacts are named (the map grows) or a client renames one (only
    // after its own commands): no need to look after every event.
    if (!commands && nicks_.size() == saved_size_) return;
    saved_size_ = nicks_.size();
    std::string now = nicks_.serialize();
    if (now == saved_nicks_) return;
    if (auto st = store_.set_meta(nicks_meta_account, nicks_meta_key, now); !st)
        logs::daemon().warn("stanzad: cannot keep the IRC nicks: {}", st.error().message);
    else saved_nicks_ = std::move(now);
}

void IrcListener::drop(Client& client, const std::string& why, bool graceful) {
    if (client.closed) return;
    if (graceful) flush(client);
    client.closed = true;
    logs::daemon().debug("irc client {} ({}): {}", client.number, client.session->nick(), why);
    // Nothing more is read: the Client is freed on the next turn, the stream later.
    uv_stream_t* stream = client.stream;
    client.stream = nullptr;
    uv_read_stop(stream);
    stream->data = nullptr;
    if (!graceful) {
        close_stream(stream);
        uv_timer_start(reap_timer_.get(), [](uv_timer_t* t) { static_cast<IrcListener*>(t->data)->reap(); }, 0, 0);
        return;
    }
    // Let what was written (ERROR, numerics) reach the client before the close: after the
    // writes still held for the read being handled, then after libuv's queue.
    uv::after_writes(stream->loop, [stream] {
        auto* req = new uv_shutdown_t{};
        if (uv_shutdown(req, stream, [](uv_shutdown_t* r, int) {
                close_stream(r->handle);
                delete r;
            }) != 0) {
            delete req;
            close_stream(stream);
        }
    });
    uv_timer_start(reap_timer_.get(), [](uv_timer_t* t) { static_cast<IrcListener*>(t->data)->reap(); }, 0, 0);
}

void IrcListener::reap() {
    clients_.remove_if([](const auto& c) { return c->closed; });
}

}  // namespace stanzad
