#pragma once
// Hub: where the XMPP side and the front ends meet. Wiring: each account's stanzas go to its
// AccountSession (protocol/im/session.hpp), which decides what becomes of them; the hub
// gives the session the store's rows and the live account (an AccountLink), hands the
// events to every front end, and hands front ends' commands to Dispatch (dispatch.hpp).
// Loop thread only; owns the accounts' links (their sessions), their OMEMO devices
// (omemo_hub.hpp), the Dispatch, the sinks and a timer; the store and the accounts it only
// refers to.
#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/account_link.hpp"
#include "daemon/dispatch.hpp"
#include "daemon/omemo_hub.hpp"
#include "daemon/store.hpp"
#include "daemon/uv.hpp"
#include "frontends/model/model.hpp"
#include "protocol/im.hpp"
#include "protocol/im/session.hpp"
#include "protocol/stream.hpp"
#include "protocol/xml_framer.hpp"

namespace stanzad {

class Account;

class Hub {
public:
    using Sink = std::function<void(const model::Event&)>;
    using FindAccount = std::function<Account*(std::string_view name)>;
    using ListAccounts = std::function<std::vector<Account*>()>;
    using Respond = std::function<void(model::Reply)>;

    // `self_ping`: how often to check that we are still in each room (XEP-0410).
    Hub(Store& store, FindAccount find, ListAccounts list, uv_loop_t* loop, std::chrono::seconds self_ping);
    ~Hub();

    // Front ends that want live events (the JSON and IRC listeners).
    void add_sink(Sink sink) { sinks_.push_back(std::move(sink)); }

    // From accounts.
    void account_state(Account& account);
    // After the stream is up: what the account's session starts (AccountSession::started).
    // `restored`: a session resumed after a daemon restart, where it is unknown which
    // messages the server has: everything unacknowledged goes again.
    void online(Account& account, bool resumed, bool restored = false);
    // XEP-0198: the server has these messages.
    void acked(Account& account, const std::vector<std::string>& msg_ids);
    void received(Account& account, xmpp::Stanza& stanza);
    void roster(Account& account, std::vector<xmpp::RosterEntry> items, bool push,
                std::optional<std::string> version = std::nullopt);
    // XEP-0191 push.
    void blocklist_push(Account& account, std::vector<std::string> jids, bool blocked);

    // Called whenever a stanza, a command or a connection event reaches an account: the
    // daemon's idle timers start again from it.
    void on_activity(std::function<void()> f) { on_activity_ = std::move(f); }

    // From front ends. `client` is the name given in hello (for hello and ack). `respond` is
    // called once, at once or when the server has answered (join, history, ...): Dispatch
    // (dispatch.hpp).
    void handle(const model::Command& command, const std::string& client, Respond respond) {
        dispatch_.handle(command, client, std::move(respond));
    }

private:
    void publish(const std::string& account, model::EventBody body, std::string stamp = {});
    // Events that are not kept (chat states): to live front ends only, seq 0.
    void transient(const std::string& account, model::EventBody body);
    void deliver(const model::Event& event);
    // The account's IM core (its AccountSession and OmemoSession, protocol/im/), wired to
    // the store and the account by an AccountLink (account_link.hpp). Made on first use.
    AccountLink& link(Account& account);
    void tick();  // once a second while any account has rooms: join timeouts, self-pings
    void wake();  // something reached an account: ticks again, and on_activity

    Store& store_;
    FindAccount find_;
    std::vector<Sink> sinks_;
    uv::Timer timer_;  // join timeouts and self-pings
    std::function<void()> on_activity_;
    std::chrono::seconds self_ping_;
    OmemoHub omemo_;  // XEP-0384: the accounts' devices (omemo_hub.hpp)
    AccountLink::Shared shared_;  // what every AccountLink reaches through the hub
    Dispatch dispatch_;           // front ends' commands
    // Last, so destroyed first: the links refer to everything above.
    std::map<std::string, std::unique_ptr<AccountLink>> links_;  // by account
};

}  // namespace stanzad
