#include "daemon/irc_listener.hpp"

#include <chrono>

#include "daemon/account_keep.hpp"  // make_uuid
#include "daemon/log.hpp"

namespace stanzad {
namespace {

constexpr const char* nicks_meta_account = "";  // the nick map belongs to no one account
constexpr const char* nicks_meta_key = "irc_nicks";
constexpr uint64_t ping_every_ms = 60'000;
constexpr uint64_t watch_every_ms = 250;

}  // namespace

// One IRC client: its session, its TLS, and where it stands at the door.
struct IrcListener::Client : Listener::Client {
    Client(Listener& core, uv_stream_t* stream, int number, IrcListener& owner)
        : Listener::Client(core, stream, number), owner(owner) {}

    IrcListener& owner;
    std::unique_ptr<irc::Session> session;
    bool replay_started = false;
    bool pumping = false;    // inside pump(): answers given at once are picked up by its loop
    bool from_read = false;  // this pump follows what the client sent
    std::uint64_t connected_at = 0;  // uv_now, for the registration deadline
    std::uint64_t hold_until = 0;    // uv_now; while set: no reading, no writing (failed login)
    int auth_failures = 0;           // as last seen from the session
    std::unique_ptr<IrcTlsSession> tls;  // with [irc] tls_cert/tls_key

    void received(std::string_view bytes) override { owner.received(*this, bytes); }
    std::string take_output() override { return session->take_output(); }
    // Plaintext to the client, through TLS when it has it; "" sends what TLS has pending
    // (handshake messages).
    void write(std::string data) override {
        if (closed()) return;
        if (tls) {
            tls->write(data);
            data = tls->take_output();
        }
        Listener::Client::write(std::move(data));
    }
    bool may_write() const override { return hold_until == 0; }
    void replay_event(const model::Event& e) override { session->replay_event(e); }
    // The IRC replay shows messages only (irc::Session::replay_event): the rest is not read.
    std::string_view replay_kind() const override { return "message"; }
    void replay_done() override { session->replay_end(); }
    std::string who() const override { return session->nick(); }
    void opened() override { owner.opened(*this); }
};

IrcListener::IrcListener(uv_loop_t* loop, Hub& hub, Store& store, std::string password,
                         const config::IrcSection& settings)
    : loop_(loop), hub_(hub), store_(store), password_(std::move(password)), settings_(settings),
      core_(loop, store, Listener::Settings{"irc", max_backlog, 16},
            [this](Listener& core, uv_stream_t* stream, int number) { return accept(core, stream, number); }),
      ping_timer_(loop), watch_timer_(loop) {
    ping_timer_->data = watch_timer_->data = this;
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

template <class F>
void IrcListener::each(F&& f) {
    core_.each([&](Listener::Client& c) { f(static_cast<Client&>(c)); });
}

xmpp::Status IrcListener::listen(const std::string& address) {
    bool tcp = address.find('/') == std::string::npos;
    if (tcp && password_.empty())
        return xmpp::make_error("irc", "[irc] listen = \"" + address + "\" is TCP and needs a password ([irc] password or "
                                       "password_command gave none); a Unix socket path may go without");
    if (!settings_.tls_cert.empty()) {
        auto context = IrcTlsContext::load(settings_.tls_cert, settings_.tls_key);
        if (!context) return context.error();
        tls_ = std::move(context).value();
    }
    auto st = tcp ? listen_tcp(address) : core_.listen_unix(address);
    if (!st) return xmpp::make_error("irc", "[irc] listen: " + st.error().message);
    uv_timer_start(ping_timer_.get(), [](uv_timer_t* t) { static_cast<IrcListener*>(t->data)->keepalive(); },
                   ping_every_ms, ping_every_ms);
    uv_timer_start(watch_timer_.get(), [](uv_timer_t* t) { static_cast<IrcListener*>(t->data)->watch(); },
                   watch_every_ms, watch_every_ms);
    logs::daemon().info("stanzad: IRC on {}{}{}", address, tls_ ? " (TLS)" : "",
                        password_.empty() ? " (no password: [irc] password is not set)" : "");
    return xmpp::Ok{};
}

xmpp::Status IrcListener::listen_tcp(const std::string& address) {
    auto colon = address.rfind(':');
    std::string host = colon == std::string::npos ? "127.0.0.1" : address.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    int port = colon == std::string::npos ? 6667 : std::atoi(address.c_str() + colon + 1);
    sockaddr_storage addr{};
    if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
        uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0)
        return xmpp::make_error("irc", "'" + host + "' is not an IP address");
    return core_.listen_tcp(reinterpret_cast<sockaddr*>(&addr), address);
}

void IrcListener::close() {
    core_.close();
    ping_timer_.reset();
    watch_timer_.reset();
}

std::unique_ptr<Listener::Client> IrcListener::accept(Listener& core, uv_stream_t* stream, int number) {
    irc::SessionOptions options;
    options.password = password_;
    options.version = STANZAD_VERSION;
    options.server = settings_.server_name;
    options.encrypted_prefix = settings_.encrypted_prefix;
    options.may_register = [this] { return count(true) < static_cast<std::size_t>(settings_.max_clients); };
    options.clock = [] {
        return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    };
    auto client = std::make_unique<Client>(core, stream, number, *this);
    client->session = std::make_unique<irc::Session>(options, nicks_, "irc" + std::to_string(number) + "-" + make_uuid().substr(0, 8));
    client->connected_at = uv_now(loop_);
    if (tls_) client->tls = std::make_unique<IrcTlsSession>(*tls_);
    return client;
}

void IrcListener::opened(Client& client) {
    // This one is counted already: past the limit, it is told why and closed.
    if (count(false) > static_cast<std::size_t>(settings_.max_unregistered)) {
        client.write("ERROR :Closing link: too many unregistered connections (see [irc] max_unregistered)\r\n");
        return core_.drop(client, "too many unregistered connections", true);
    }
    core_.start_reading(client);
}

std::size_t IrcListener::count(bool registered) {
    std::size_t n = 0;
    each([&](Client& c) { n += c.session->registered() == registered ? 1 : 0; });
    return n;
}

void IrcListener::received(Client& client, std::string_view bytes) {
    std::string plain;
    if (client.tls) {
        if (auto st = client.tls->feed(bytes, plain); !st) return core_.drop(client, st.error().message, false);
        client.write("");  // the handshake's answer
        bytes = plain;
    }
    client.session->receive(bytes);
    client.from_read = true;
    pump(client);
}

void IrcListener::pump(Client& client) {
    // The session's requests; answers may come at once (and ask for more) or later. One
    // loop per client: an answer given at once only hands the reply over, and this loop
    // takes the requests it makes (no recursion however many a read brings).
    if (client.pumping) return;
    client.pumping = true;
    while (!client.closed()) {
        auto request = client.session->next_request();
        if (!request) break;
        auto id = request->id;
        hub_.handle(request->command, request->client, [this, number = client.number(), id](model::Reply reply) {
            auto* c = static_cast<Client*>(core_.find(number));
            if (!c) return;
            c->session->reply(id, reply);
            if (!c->pumping) pump(*c);
        });
    }
    client.pumping = false;
    if (client.closed()) return;
    if (!client.replay_started && client.session->replay_after()) {
        client.replay_started = true;
        core_.start_replay(client, *client.session->replay_after());
    }
    save_nicks(client.from_read);
    client.from_read = false;
    hold_if_failed(client);
    core_.flush(client);
    if (client.session->closing() && client.hold_until == 0) core_.drop(client, "quit", true);
}

void IrcListener::hold_if_failed(Client& client) {
    // A failed login is answered after a delay, and nothing more is read meanwhile: a
    // password cannot be guessed faster than one per auth_delay_ms per connection (and the
    // session closes after Session::max_auth_failures).
    if (client.closed() || client.session->auth_failures() == client.auth_failures) return;
    client.auth_failures = client.session->auth_failures();
    client.hold_until = uv_now(loop_) + auth_delay_ms;
    core_.stop_reading(client);
}

void IrcListener::watch() {
    std::uint64_t now = uv_now(loop_);
    std::uint64_t deadline_ms = static_cast<std::uint64_t>(settings_.registration_timeout) * 1000;
    each([&](Client& c) {
        if (c.hold_until != 0 && now >= c.hold_until) {
            c.hold_until = 0;
            core_.flush(c);
            if (c.session->closing()) return core_.drop(c, "failed login", true);
            core_.start_reading(c);
        }
        if (!c.closed() && !c.session->registered() && now - c.connected_at >= deadline_ms) {
            c.write("ERROR :Closing link: registration timed out\r\n");
            core_.drop(c, "registration timed out", true);
        }
    });
}

void IrcListener::deliver(const model::Event& event) {
    each([&](Client& c) {
        if (!c.session->registered()) return;
        c.session->event(event);
        pump(c);
    });
}

void IrcListener::keepalive() {
    each([&](Client& c) {
        if (!c.session->keepalive()) core_.drop(c, "no answer to PING", false);
        else core_.flush(c);
    });
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

}  // namespace stanzad
