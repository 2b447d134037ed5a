#pragma once
// Account: one configured XMPP account and its life: connecting, online, disconnected
// (with the reason), reconnection with exponential backoff and jitter, and no retry after
// an authentication failure until the config changes. Owns at most one live
// XmppConnection. Loop thread only.
#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>

#include "config/config.hpp"
#include "daemon/account_keep.hpp"
#include "daemon/command.hpp"
#include "daemon/connection.hpp"
#include "daemon/uv.hpp"
#include "protocol/im.hpp"
#include "protocol/im/features.hpp"
#include "protocol/im/request.hpp"
#include "protocol/im/roster.hpp"

namespace stanzad {

class Hub;

// What became of an iq we sent (protocol/im/request.hpp).
using IqReply = xmpp::im::IqReply;
using IqCallback = xmpp::im::IqCallback;

class Account {
public:
    enum class State { Connecting, Online, Disconnected, Failed, Stopped };

    // `stopped` is called once stop() has finished; the caller must not destroy the
    // Account from inside that call.
    Account(uv_loop_t* loop, Resolver& resolver, config::Account config, const config::DaemonSection& daemon,
            Hub& hub, Store& store, std::function<void()> stopped);
    ~Account();

    void start();
    // Closes the stream cleanly; calls `stopped` when done.
    void stop();
    // Turned off by the user (closes the stream, stays offline), and on again.
    void disable();
    void enable();

    const config::Account& config() const { return config_; }
    const std::string& name() const { return config_.name; }
    State state() const { return state_; }
    // When the current session came online (its start may still be waiting for disco#info).
    std::chrono::steady_clock::time_point online_at() const { return online_at_; }
    // Which session is the current one: counts every time the account comes online (new or
    // resumed), so a stanza can be told apart from one sent on an earlier session.
    unsigned long session() const { return sessions_; }
    const std::string& reason() const { return reason_; }  // why disconnected or failed
    const std::string& bound_jid() const { return bound_jid_; }  // full JID while online
    const std::string& auth() const { return auth_; }            // how we logged in, while online
    const std::string& connection_text() const { return connection_text_; }  // where, while online

    // Sends a stanza if online; false otherwise. `tag` (a msg_id) comes back to the hub
    // when the server acknowledges the stanza (XEP-0198).
    bool send(std::string_view xml, std::string tag = {});
    // Whether send() would take a stanza now: online, with a connection whose stream is
    // online (closed() runs callbacks before the state leaves Online, and a stream the
    // server closed hands over what came before the close while it is no longer online).
    bool can_send() const { return state_ == State::Online && connection_ && connection_->stream_online(); }
    // Sends the iq that `make(id)` builds, addressed to `to` ("" for our own account), and
    // calls `done` once: with the answer from that JID, or with an error after 30 s or when
    // the connection ends. Calls `done` at once with "not-online" when offline.
    void request(const std::string& to, const std::function<std::string(const std::string& id)>& make, IqCallback done);
    // From the hub: true when `iq` answered one of our requests (and was consumed).
    bool answered(pugi::xml_node iq);
    // Our presence: sent now if online, and at every login from now on. A priority given
    // replaces the config's `priority` until the daemon restarts.
    void set_presence(std::string show, std::string status, std::optional<int> priority = std::nullopt);
    int priority() const { return priority_; }
    // What goes inside every presence we send, to the server and to rooms: show, status,
    // priority (when not 0) and the XEP-0115 caps of this connection.
    std::string presence_payload() const;
    bool roster_versioning() const { return roster_versioning_; }
    // What the server and the account offer (XEP-0030), from the last new session.
    const xmpp::im::Capabilities& capabilities() const { return capabilities_; }

    // `stanzactl pin`: connects the way the account would (SRV, proxy, STARTTLS or direct
    // TLS), takes the server's certificate from the TLS handshake and closes, without
    // authenticating and without touching the account's own session. `done` runs once.
    struct Probe {
        tls::PeerCertificate certificate;
        std::string server;  // "example.org:5222 (STARTTLS) at 127.0.0.1:5222"
    };
    void probe(std::function<void(xmpp::Result<Probe>)> done);

private:
    void connect();
    void online(const xmpp::Online& online);
    // After the disco#info answers: use only what is offered, then start the session.
    void start_features(const xmpp::Online& online, const xmpp::im::DiscoInfo& server,
                        const xmpp::im::DiscoInfo& account);
    void closed(const xmpp::Closed& closed, bool tls_verify);
    void retry_later(const std::string& what);
    void give_up(std::string reason);
    void set_state(State state, std::string reason = {});

    uv_loop_t* loop_;
    Resolver& resolver_;
    config::Account config_;
    std::chrono::milliseconds ping_interval_, ping_timeout_;
    std::string prefix_;  // "account NAME: "
    Hub& hub_;
    AccountKeep keep_;  // the session to resume, the FAST token, the user-agent id
    std::function<void()> stopped_;
    std::string password_;
    std::string key_password_;  // client_key_password_command's output
    std::unique_ptr<ShellCommand> secret_command_;    // password_command or client_key_password_command
    bool password_pending_ = false, key_password_pending_ = false;
    void run_secret_commands();
    void start_session();
    std::shared_ptr<SSL_CTX> tls_ctx_;                // made by the first connection, then shared
    std::string user_agent_id_;                       // XEP-0388, from the store
    std::optional<xmpp::sasl::FastToken> fast_token_; // XEP-0484, from the store
    std::optional<xmpp::sasl::FastToken> usable_fast_token();
    void fast_token_changed(const xmpp::FastTokenChanged& change);
    State state_ = State::Disconnected;
    std::string reason_;
    std::string bound_jid_;
    std::string auth_, connection_text_;
    std::string show_, status_;
    int priority_ = 0;
    bool roster_versioning_ = false;
    xmpp::im::Capabilities capabilities_;
    bool started_ = false;  // the session's start (disco, carbons, presence, hub) completed
    std::set<std::string> said_;  // notes about missing features, each logged once
    struct PendingIq {
        std::string to;
        IqCallback done;
        std::chrono::steady_clock::time_point deadline;
    };
    std::map<std::string, PendingIq> pending_iqs_;
    unsigned long next_iq_ = 1;
    uv::Timer iq_timer_;  // ticks while requests wait
    void expire_iqs(bool all, IqReply::Outcome why);
    std::optional<xmpp::SmSession> resume_;  // the XEP-0198 session the next connection resumes
    std::chrono::steady_clock::time_point online_at_{};
    unsigned long sessions_ = 0;
    std::chrono::steady_clock::time_point resume_since_;  // when that session lost its link
    bool stopping_ = false;
    bool disabled_ = false;  // turned off by the user
    int failures_ = 0;  // consecutive, for the backoff
    std::mt19937 random_;
    std::unique_ptr<XmppConnection> connection_;
    bool last_direct_tls_ = false;  // how the last connection spoke TLS, for its location
    std::vector<std::unique_ptr<XmppConnection>> probes_;  // finished ones go at the next probe
    std::vector<std::shared_ptr<std::function<void(xmpp::Result<Probe>)>>> probe_waiters_;  // unanswered
    std::unique_ptr<XmppConnection> finished_;  // dropped on a later loop turn
    uv::Timer retry_timer_;
};

const char* to_string(Account::State state);

}  // namespace stanzad
