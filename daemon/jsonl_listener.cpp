#include "daemon/jsonl_listener.hpp"

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

JsonlListener::JsonlListener(uv_loop_t* loop, Hub& hub)
    : loop_(loop), hub_(hub), reap_timer_(loop), replay_timer_(loop) {
    reap_timer_->data = this;
    replay_timer_->data = this;
    hub_.add_sink([this](const model::Event& e) { deliver(e); });
}

JsonlListener::~JsonlListener() { close(); }

xmpp::Status JsonlListener::listen(const std::string& path) {
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
    pipe->data = this;
    server_ = uv::Handle<uv_pipe_t>::adopt(pipe);
    mode_t old = ::umask(0177);  // the socket is created 0600: only its owner may connect
    int rc = uv_pipe_bind(pipe, path.c_str());
    ::umask(old);
    if (rc == 0) rc = ::chmod(path.c_str(), 0600) == 0 ? 0 : uv_translate_sys_error(errno);
    if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(pipe), 64, on_connection);
    if (rc != 0) {
        server_.reset();
        return xmpp::make_error("socket", "cannot listen on " + path + ": " + uv_strerror(rc));
    }
    path_ = path;
    logs::daemon().info("stanzad: listening on {}", path);
    return xmpp::Ok{};
}

void JsonlListener::close() {
    if (server_) {
        server_.reset();
        ::unlink(path_.c_str());
    }
    for (auto& c : clients_) c->pipe.reset();
    clients_.clear();
    reap_timer_.reset();
    replay_timer_.reset();
}

void JsonlListener::on_connection(uv_stream_t* server, int status) {
    auto* self = static_cast<JsonlListener*>(server->data);
    if (!self || status < 0) return;
    auto client = std::make_unique<Client>(Client{self, {}, jsonl::Session("stanzad " STANZAD_VERSION), self->next_number_++, false, std::nullopt, {}});
    auto* pipe = new uv_pipe_t{};
    uv_pipe_init(self->loop_, pipe, 0);
    client->pipe = uv::Handle<uv_pipe_t>::adopt(pipe);
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(pipe)) != 0) return;
    pipe->data = client.get();
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(pipe),
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
            static char storage[65536];  // one thread; each read is consumed before the next
            *buf = uv_buf_init(storage, sizeof storage);
        },
        on_read);
    logs::daemon().debug("json client {}: connected", client->number);
    self->clients_.push_back(std::move(client));
}

void JsonlListener::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* client = static_cast<Client*>(stream->data);
    if (!client || client->closed || nread == 0) return;
    if (nread < 0) {
        client->owner->drop(*client, nread == UV_EOF ? "disconnected" : uv_strerror(static_cast<int>(nread)));
        return;
    }
    GroupCommit::Scope batch(stream->loop);  // all lines of this read: one commit (issue 15)
    client->session.receive(std::string_view(buf->base, static_cast<std::size_t>(nread)));
    client->owner->serve(*client);
}

void JsonlListener::serve(Client& client) {
    for (;;) {
        auto request = client.session.next_request();
        // Errors for lines that were no request (bad JSON, too long) are replies too: they
        // wait behind slower replies, so that replies keep the order of the requests.
        if (std::string errors = client.session.take_output(); !errors.empty()) {
            if (client.pending.empty()) uv::write(reinterpret_cast<uv_stream_t*>(client.pipe.get()), std::move(errors));
            else client.pending.push_back({next_request_++, std::nullopt, model::Reply{}, std::move(errors)});
        }
        if (!request) break;
        std::size_t number = next_request_++;
        client.pending.push_back({number, std::move(*request), std::nullopt, {}});
        // The hub may answer at once (inside this call) or later; either way through answer().
        hub_.handle(client.pending.back().request->command, client.session.client(),
                    [this, client_number = client.number, number](model::Reply reply) {
                        answer(client_number, number, std::move(reply));
                    });
        if (client.closed) return;
    }
    flush(client);
}

void JsonlListener::answer(int client_number, std::size_t request, model::Reply reply) {
    for (auto& c : clients_) {
        if (c->number != client_number || c->closed) continue;
        for (auto& p : c->pending)
            if (p.number == request) p.reply = std::move(reply);
        send_replies(*c);
        return;
    }
    // The client is gone: nobody to tell.
}

void JsonlListener::send_replies(Client& client) {
    while (!client.closed && !client.pending.empty() && client.pending.front().reply) {
        auto p = std::move(client.pending.front());
        client.pending.pop_front();
        if (!p.request) {
            flush(client);
            if (!client.closed) uv::write(reinterpret_cast<uv_stream_t*>(client.pipe.get()), std::move(p.errors));
            continue;
        }
        client.session.reply(*p.request, *p.reply);
        if (auto* hello = std::get_if<model::Hello>(&p.request->command); hello && p.reply->ok()) {
            logs::daemon().debug("json client {}: hello from '{}'", client.number, hello->client);
            if (hello->replay) {
                flush(client);  // the reply first
                client.replay_after = hello->since.value_or(p.reply->cursor);
                continue_replay(client);
            }
        }
        flush(client);
    }
}

void JsonlListener::continue_replay(Client& client) {
    // A page at a time, as the client reads: a long history never sits in memory whole.
    constexpr std::size_t page = 500, high_water = 1 << 20;
    auto* stream = reinterpret_cast<uv_stream_t*>(client.pipe.get());
    while (!client.closed && client.replay_after && uv::queued(stream) < high_water) {
        auto sent = hub_.replay(*client.replay_after, page, [&client](const model::Event& e) {
            client.session.event(e);
            client.replay_after = e.seq;
        });
        if (!sent) {
            logs::daemon().error("json client {}: replay failed: {}", client.number, sent.error().message);
            client.replay_after.reset();
        } else if (sent.value() == 0) {
            client.replay_after.reset();  // caught up: live events from here on
        }
        flush(client);
    }
    if (!client.closed && client.replay_after && !uv_is_active(reinterpret_cast<uv_handle_t*>(replay_timer_.get())))
        uv_timer_start(replay_timer_.get(), [](uv_timer_t* t) { static_cast<JsonlListener*>(t->data)->continue_replays(); },
                       5, 5);
}

void JsonlListener::continue_replays() {
    bool any = false;
    for (auto& c : clients_) {
        if (c->closed || !c->replay_after) continue;
        continue_replay(*c);
        any = any || c->replay_after.has_value();
    }
    if (!any) uv_timer_stop(replay_timer_.get());
}

void JsonlListener::flush(Client& client) {
    if (client.closed) return;
    std::string out = client.session.take_output();
    if (out.empty()) return;
    auto* stream = reinterpret_cast<uv_stream_t*>(client.pipe.get());
    if (uv::queued(stream) + out.size() > max_backlog) {
        drop(client, "not reading its events (more than 64 MiB waiting); disconnected");
        return;
    }
    uv::write(stream, std::move(out));
}

void JsonlListener::deliver(const model::Event& event) {
    for (auto& c : clients_) {
        if (c->closed || !c->session.attached() || c->replay_after) continue;
        c->session.event(event);
        flush(*c);
    }
}

void JsonlListener::drop(Client& client, const std::string& why) {
    if (client.closed) return;
    client.closed = true;
    logs::daemon().debug("json client {} ('{}'): {}", client.number, client.session.client(), why);
    client.pipe.reset();  // closes; the memory is freed in libuv's close callback
    // The Client object itself may be on the stack (in a callback): drop it next turn.
    uv_timer_start(reap_timer_.get(), [](uv_timer_t* t) { static_cast<JsonlListener*>(t->data)->reap(); }, 0, 0);
}

void JsonlListener::reap() {
    clients_.remove_if([](const auto& c) { return c->closed; });
}

}  // namespace stanzad
