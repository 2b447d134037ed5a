#include "daemon/jsonl_listener.hpp"

#include "daemon/log.hpp"
#include "daemon/store.hpp"
#include "frontends/model/codec.hpp"

namespace stanzad {

// One JSON client: its session, and its requests waiting for their replies.
struct JsonlListener::Client : Listener::Client {
    Client(Listener& core, uv_stream_t* stream, int number, JsonlListener& owner)
        : Listener::Client(core, stream, number), owner(owner), session("stanzad " STANZAD_VERSION) {}

    JsonlListener& owner;
    jsonl::Session session;
    // Requests in the order they came, each with its reply once the hub gave it: replies
    // go out in request order, so a slow one (join, history) holds back later ones.
    struct Pending {
        std::size_t number;
        std::optional<jsonl::Request> request;  // none: `errors` only
        std::optional<model::Reply> reply;
        std::string errors;  // error lines for unreadable requests that came before it
    };
    std::deque<Pending> pending;

    void received(std::string_view bytes) override {
        session.receive(bytes);
        owner.serve(*this);
    }
    std::string take_output() override { return session.take_output(); }
    void replay_event(const model::Event& e) override { session.event(e); }
    // The stored JSON as it is, when this codec's format wrote it (every field present): the
    // same line as encoding the decoded event, without the decode and the encode (issue 15:
    // a third of a replay). An older row may lack fields: it goes through the event.
    xmpp::Status replay_row(const StoredRow& row) override {
        if (row.format != model::codec::format_version) return Listener::Client::replay_row(row);
        session.event(std::string_view(row.json));
        return xmpp::Ok{};
    }
    std::string who() const override { return "'" + session.client() + "'"; }
};

JsonlListener::JsonlListener(uv_loop_t* loop, Hub& hub, Store& store)
    : hub_(hub),
      store_(store),
      core_(loop, store, Listener::Settings{"json", max_backlog, 64},
            [this](Listener& core, uv_stream_t* stream, int number) {
                return std::make_unique<Client>(core, stream, number, *this);
            }) {
    hub_.add_sink([this](const model::Event& e) { deliver(e); });
}

JsonlListener::~JsonlListener() { close(); }

xmpp::Status JsonlListener::listen(const std::string& path) {
    if (auto st = core_.listen_unix(path); !st) return st;
    logs::daemon().info("stanzad: listening on {}", path);
    return xmpp::Ok{};
}

void JsonlListener::close() { core_.close(); }

void JsonlListener::serve(Client& client) {
    for (;;) {
        auto request = client.session.next_request();
        // Errors for lines that were no request (bad JSON, too long) are replies too: they
        // wait behind slower replies, so that replies keep the order of the requests.
        if (std::string errors = client.session.take_output(); !errors.empty()) {
            if (client.pending.empty()) client.write(std::move(errors));
            else client.pending.push_back({next_request_++, std::nullopt, model::Reply{}, std::move(errors)});
        }
        if (!request) break;
        std::size_t number = next_request_++;
        client.pending.push_back({number, std::move(*request), std::nullopt, {}});
        // The hub may answer at once (inside this call) or later; either way through answer().
        hub_.handle(client.pending.back().request->command, client.session.client(),
                    [this, client_number = client.number(), number](model::Reply reply) {
                        answer(client_number, number, std::move(reply));
                    });
        if (client.closed()) return;
    }
    core_.flush(client);
}

void JsonlListener::answer(int client_number, std::size_t request, model::Reply reply) {
    auto* c = static_cast<Client*>(core_.find(client_number));
    if (!c) return;  // the client is gone: nobody to tell
    for (auto& p : c->pending)
        if (p.number == request) p.reply = std::move(reply);
    send_replies(*c);
}

void JsonlListener::send_replies(Client& client) {
    while (!client.closed() && !client.pending.empty() && client.pending.front().reply) {
        auto p = std::move(client.pending.front());
        client.pending.pop_front();
        if (!p.request) {
            core_.flush(client);
            client.write(std::move(p.errors));
            continue;
        }
        client.session.reply(*p.request, *p.reply);
        if (auto* hello = std::get_if<model::Hello>(&p.request->command); hello && p.reply->ok()) {
            logs::daemon().debug("json client {}: hello from '{}'", client.number(), hello->client);
            if (hello->replay) {
                core_.flush(client);  // the reply first
                core_.start_replay(client, hello->since.value_or(p.reply->cursor));
            }
        }
        core_.flush(client);
    }
}

void JsonlListener::deliver(const model::Event& event) {
    // One encoding for every client: the row the store just wrote when it has it (the
    // same text as encoding the event), else encoded here on the first client that takes it.
    std::string line;
    core_.each([&](Listener::Client& base) {
        auto& c = static_cast<Client&>(base);
        if (!c.session.attached() || c.replay_after) return;
        if (line.empty()) {
            const std::string* stored = store_.stored_json(event.seq);
            line = stored ? *stored : model::codec::encode(event);
        }
        c.session.event(std::string_view(line));
        core_.flush(c);
    });
}

}  // namespace stanzad
