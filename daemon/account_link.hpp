#pragma once
// AccountLink: one account's IM core (protocol/im/: its AccountSession and OmemoSession)
// wired to what the core reaches through its three ports: the SQLite store's rows of that
// account, the live account and its settings, the clock, the OMEMO device, and the front
// ends (through the hub). Wiring only: what becomes of a stanza or a command is decided in
// the IM core. Loop thread only.
#include <functional>
#include <string>
#include <string_view>

#include "daemon/omemo_hub.hpp"
#include "daemon/store.hpp"
#include "protocol/im/omemo_session.hpp"
#include "protocol/im/session.hpp"

namespace stanzad {

class Account;

class AccountLink final : public xmpp::im::SessionStore, public xmpp::im::SessionPort, public xmpp::im::OmemoPort {
public:
    // What the links of all accounts share; the hub owns it and outlives them.
    struct Shared {
        Store& store;
        std::function<Account*(std::string_view name)> find;  // the live account, if any
        OmemoHub& omemo;                                      // the accounts' OMEMO devices
        std::function<void(const model::Event&)> deliver;     // a stored event to the front ends
        std::function<void(const std::string& account, model::EventBody)> transient;  // not stored
    };

    AccountLink(const Shared& shared, const std::string& name, const xmpp::Jid& own);
    AccountLink(const AccountLink&) = delete;
    AccountLink& operator=(const AccountLink&) = delete;

    // SessionStore: the store's rows of this account.
    std::optional<xmpp::im::Outgoing> outgoing(const std::string& msg_id) override;
    xmpp::Result<std::vector<xmpp::im::Outgoing>> pending() override;
    xmpp::Result<bool> enqueue(const xmpp::im::Outgoing& o, std::vector<model::Event>& events) override;
    xmpp::Status set_state(const std::string& msg_id, xmpp::im::Delivery state, const std::string& error,
                           model::Event& event) override;
    std::optional<std::string> inbound(const std::string& key) override;
    xmpp::Result<std::vector<model::Event>> messages(const std::string& peer, const xmpp::im::MessageRange& r,
                                                     std::size_t limit) override;
    xmpp::Result<std::optional<model::Seq>> message_seq(const std::string& peer, const std::string& msg_id) override;
    std::optional<model::Event> event(model::Seq seq) override;
    xmpp::Status append(model::Event& event) override;
    xmpp::Result<bool> append_once(model::Event& event, const std::string& key,
                                   const std::vector<std::pair<std::string, std::string>>& aliases,
                                   const std::vector<xmpp::im::KeptWrite>& writes) override;
    xmpp::Status keep(const std::vector<xmpp::im::KeptWrite>& writes) override;
    xmpp::Result<std::string> kept(const std::string& key) override;
    xmpp::Status keep(const std::string& key, const std::string& value) override;

    // SessionPort: the live account, the clock, the front ends.
    bool send(std::string_view xml, const std::string& tag) override;
    bool online() override;
    unsigned long session() override;
    std::string bound_jid() override;
    void request(const std::string& to, const xmpp::im::IqMaker& make, xmpp::im::IqCallback done) override;
    std::chrono::steady_clock::time_point now() override;
    std::chrono::steady_clock::time_point online_at() override;
    std::string presence_payload() override;
    const xmpp::im::Capabilities& capabilities() override;
    std::vector<ConfiguredRoom> configured_rooms() override;
    std::string state_name() override;
    std::string wall_clock() override;
    void set_presence(const std::string& show, const std::string& status, std::optional<int> priority) override;
    bool chat_markers() override;
    void deliver(const model::Event& event) override;
    void transient(model::EventBody body) override;
    void log(Level level, const std::string& text) override;
    std::string new_id() override;

    // OmemoPort: the account's device (made on first use) and setting.
    xmpp::im::OmemoCrypto* crypto() override;
    std::string encryption() override;

private:
    const Shared& shared_;
    std::string name_;

public:
    xmpp::im::AccountSession account_session;
    xmpp::im::OmemoSession omemo_session;
};

}  // namespace stanzad
