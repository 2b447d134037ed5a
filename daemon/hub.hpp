#pragma once
// Hub: where the XMPP side and the front ends meet. It turns what accounts receive into
// model events (numbered and stored by the Store, then handed to every front end), and
// front ends' commands into stanzas (through the durable outbox for messages).
// Loop thread only; owns nothing but references to the store and the accounts.
#include <functional>
#include <string>
#include <vector>

#include "daemon/store.hpp"
#include "frontends/model.hpp"
#include "protocol/im.hpp"
#include "protocol/xml_framer.hpp"

namespace stanzad {

class Account;

class Hub {
public:
    using Sink = std::function<void(const model::Event&)>;
    using FindAccount = std::function<Account*(std::string_view name)>;
    using ListAccounts = std::function<std::vector<Account*>()>;

    Hub(Store& store, FindAccount find, ListAccounts list);

    // Front ends that want live events (the JSON listener, later IRC).
    void add_sink(Sink sink) { sinks_.push_back(std::move(sink)); }

    // From accounts.
    void account_state(Account& account);
    void online(Account& account);  // after the stream is up: roster, then the outbox
    void received(Account& account, xmpp::Stanza& stanza);
    void roster(Account& account, std::vector<xmpp::RosterEntry> items, bool push);

    // From front ends. `client` is the name given in hello (for hello and ack).
    model::Reply handle(const model::Command& command, const std::string& client);
    // Stored events with seq > `after`, oldest first, in batches.
    xmpp::Status replay(model::Seq after, const Sink& out);

private:
    void publish(const std::string& account, model::EventBody body, std::string stamp = {});
    void deliver(const model::Event& event);
    void transmit(Account& account, const OutboxEntry& entry);
    model::Reply send(const model::Send& send);
    std::vector<model::AccountInfo> account_infos() const;

    Store& store_;
    FindAccount find_;
    ListAccounts list_;
    std::vector<Sink> sinks_;
};

// A random (version 4) UUID, for message ids.
std::string make_uuid();

}  // namespace stanzad
