#include "daemon/listener.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/group_commit.hpp"
#include "daemon/log.hpp"

namespace stanzad {
namespace {

void close_stream(uv_stream_t* s) {
    if (!s || uv_is_closing(reinterpret_cast<uv_handle_t*>(s))) return;
    uv_close(reinterpret_cast<uv_handle_t*>(s), [](uv_handle_t* h) {
        if (h->type == UV_TCP) delete reinterpret_cast<uv_tcp_t*>(h);
        else delete reinterpret_cast<uv_pipe_t*>(h);
    });
}

// True when something accepts connections on `path` (a live daemon).
bool socket_answers(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return live;
}

}  // namespace

void Listener::Client::write(std::string data) {
    if (closed_ || data.empty()) return;
    uv::write(stream_, std::move(data));
}

void Listener::Client::opened() { listener_.start_reading(*this); }

Listener::Listener(uv_loop_t* loop, Store& store, Settings settings, Accept accept)
    : loop_(loop), store_(store), settings_(std::move(settings)), accept_(std::move(accept)), reap_timer_(loop),
      replay_timer_(loop) {
    reap_timer_->data = this;
    replay_timer_->data = this;
}

Listener::~Listener() { close(); }

xmpp::Status Listener::listen_unix(const std::string& path) {
    if (path.size() >= sizeof(sockaddr_un::sun_path))
        return xmpp::make_error("socket", "socket path is too long (" + std::to_string(path.size()) +
                                              " bytes; at most " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                                              "): " + path);
    struct stat st{};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return xmpp::make_error("socket", path + " exists and is not a socket; not replacing it");
        if (socket_answers(path))
            return xmpp::make_error("socket", "another stanzad is already listening on " + path);
        ::unlink(path.c_str());  // left behind by a daemon that died
    }
    auto* pipe = new uv_pipe_t{};
    uv_pipe_init(loop_, pipe, 0);
    server_ = reinterpret_cast<uv_stream_t*>(pipe);
    mode_t old = ::umask(0177);  // the socket is created 0600: only its owner may connect
    int rc = uv_pipe_bind(pipe, path.c_str());
    ::umask(old);
    if (rc == 0) rc = ::chmod(path.c_str(), 0600) == 0 ? 0 : uv_translate_sys_error(errno);
    auto st_listen = start_listening(rc, path);
    if (st_listen) path_ = path;
    return st_listen;
}

xmpp::Status Listener::listen_tcp(const sockaddr* address, const std::string& shown) {
    auto* tcp = new uv_tcp_t{};
    uv_tcp_init(loop_, tcp);
    server_ = reinterpret_cast<uv_stream_t*>(tcp);
    return start_listening(uv_tcp_bind(tcp, address, 0), shown);
}

xmpp::Status Listener::start_listening(int rc, const std::string& shown) {
    server_->data = this;
    if (rc == 0) rc = uv_listen(server_, settings_.listen_backlog, on_connection);
    if (rc != 0) {
        close_stream(server_);
        server_ = nullptr;
        return xmpp::make_error("socket", "cannot listen on " + shown + ": " + uv_strerror(rc));
    }
    return xmpp::Ok{};
}

void Listener::close() {
    if (server_) {
        close_stream(server_);
        server_ = nullptr;
        if (!path_.empty()) ::unlink(path_.c_str());
    }
    for (auto& c : clients_) close_stream(c->stream_);
    clients_.clear();
    reap_timer_.reset();
    replay_timer_.reset();
}

void Listener::on_connection(uv_stream_t* server, int status) {
    auto* self = static_cast<Listener*>(server->data);
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
    // Replies are small and answer what the client just sent: without this, Nagle's
    // algorithm holds one back until the client's delayed ACK (about 40 ms on Linux).
    if (server->type == UV_TCP) uv_tcp_nodelay(reinterpret_cast<uv_tcp_t*>(stream), 1);
    int number = self->next_number_++;
    auto client = self->accept_(*self, stream, number);
    stream->data = client.get();
    Client& c = *client;
    self->clients_.push_back(std::move(client));
    logs::daemon().debug("{} client {}: connected", self->settings_.kind, number);
    c.opened();
}

void Listener::start_reading(Client& client) {
    if (client.closed_) return;
    uv_read_start(
        client.stream_,
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
            static char storage[65536];  // one thread; each read is consumed before the next
            *buf = uv_buf_init(storage, sizeof storage);
        },
        on_read);
}

void Listener::stop_reading(Client& client) {
    if (!client.closed_) uv_read_stop(client.stream_);
}

void Listener::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* client = static_cast<Client*>(stream->data);
    if (!client || client->closed_ || nread == 0) return;
    if (nread < 0) {
        client->listener_.drop(*client, nread == UV_EOF ? "disconnected" : uv_strerror(static_cast<int>(nread)), false);
        return;
    }
    GroupCommit::Scope batch(stream->loop);  // all lines of this read: one commit (issue 15)
    client->received(std::string_view(buf->base, static_cast<std::size_t>(nread)));
}

void Listener::flush(Client& client) {
    if (client.closed_ || !client.may_write()) return;
    std::string out = client.take_output();
    if (out.empty()) return;
    if (uv::queued(client.stream_) + out.size() > settings_.max_backlog) {
        drop(client, "not reading (more than " + std::to_string(settings_.max_backlog >> 20) + " MiB waiting); disconnected",
             false);
        return;
    }
    client.write(std::move(out));
}

void Listener::drop(Client& client, const std::string& why, bool graceful) {
    if (client.closed_) return;
    if (graceful) flush(client);
    if (client.closed_) return;  // the flush found it past its backlog and dropped it
    client.closed_ = true;
    logs::daemon().debug("{} client {} ({}): {}", settings_.kind, client.number_, client.who(), why);
    // Nothing more is read: the Client is freed on the next turn, the stream later.
    uv_stream_t* stream = std::exchange(client.stream_, nullptr);
    uv_read_stop(stream);
    stream->data = nullptr;
    uv_timer_start(reap_timer_.get(), [](uv_timer_t* t) { static_cast<Listener*>(t->data)->reap(); }, 0, 0);
    if (!graceful) return close_stream(stream);
    // Let what was written (an ERROR line, say) reach the client before the close: after
    // the writes still held for the read being handled, then after libuv's queue.
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
}

void Listener::reap() {
    clients_.remove_if([](const auto& c) { return c->closed_; });
}

void Listener::start_replay(Client& client, model::Seq after) {
    client.replay_after = after;
    continue_replay(client);
}

void Listener::continue_replay(Client& client) {
    // A page at a time, as the client reads: a client that reads slowly holds at most the
    // high water and a page. At most a few pages per turn of the loop, the rest on the
    // timer's next tick: a long backlog never stalls the loop, not even for a client whose
    // session gathers its replay before writing it (IRC).
    constexpr std::size_t page = 500;
    constexpr int pages_per_turn = 4;
    for (int pages = 0; pages < pages_per_turn && !client.closed_ && client.replay_after &&
                        uv::queued(client.stream_) < replay_high_water();
         ++pages) {
        auto batch = store_.rows_after(*client.replay_after, page, client.replay_kind(), replay_page_bytes());
        xmpp::Status replayed = batch ? xmpp::Status(xmpp::Ok{}) : xmpp::Status(batch.error());
        if (batch)
            for (const auto& row : batch.value()) {
                if (replayed = client.replay_row(row); !replayed) break;
                client.replay_after = row.seq;
            }
        if (!replayed)
            logs::daemon().error("{} client {}: replay failed: {}", settings_.kind, client.number_,
                                 replayed.error().message);
        if (!replayed || batch.value().empty()) {
            client.replay_after.reset();  // caught up: live events from here on
            client.replay_done();
        }
        flush(client);
    }
    if (!client.closed_ && client.replay_after && !uv_is_active(reinterpret_cast<uv_handle_t*>(replay_timer_.get())))
        uv_timer_start(
            replay_timer_.get(), [](uv_timer_t* t) { static_cast<Listener*>(t->data)->continue_replays(); }, 5, 5);
}

xmpp::Status Listener::Client::replay_row(const StoredRow& row) {
    auto event = decode(row);
    if (!event) return event.error();
    replay_event(event.value());
    return xmpp::Ok{};
}

void Listener::continue_replays() {
    bool any = false;
    for (auto& c : clients_) {
        if (c->closed_ || !c->replay_after) continue;
        continue_replay(*c);
        any = any || c->replay_after.has_value();
    }
    if (!any) uv_timer_stop(replay_timer_.get());
}

Listener::Client* Listener::find(int number) {
    for (auto& c : clients_)
        if (c->number_ == number && !c->closed_) return c.get();
    return nullptr;
}

}  // namespace stanzad
