#pragma once
// Hub: where the XMPP side and the front ends meet. It turns what accounts receive into
// model events (numbered and stored by the Store, then handed to every front end), and
// front ends' commands into stanzas (through the durable outbox for messages).
// Loop thread only; owns nothing but references to the store and the accounts.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "daemon/store.hpp"
#include "frontends/model.hpp"
#include "protocol/im.hpp"
#include "protocol/stream.hpp"
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
    // After the stream is up. A new session: roster, the outbox (with stream management,
    // also what was sent but never acknowledged), and archive catch-up. A resumed one:
    // only what was accepted meanwhile.
    // `restored`: a session resumed after a daemon restart, where it is unknown which
    // messages the server has: everything unacknowledged goes again.
    void online(Account& account, bool resumed, bool stream_management, bool restored = false);
    // The XEP-0198 session to resume after a restart (nullopt: none), kept in the store.
    void save_checkpoint(Account& account, const std::optional<xmpp::SmCheckpoint>& checkpoint);
    std::optional<xmpp::SmCheckpoint> load_checkpoint(const std::string& account);
    // XEP-0198: the server has these messages.
    void acked(Account& account, const std::vector<std::string>& msg_ids);
    void received(Account& account, xmpp::Stanza& stanza);
    void roster(Account& account, std::vector<xmpp::RosterEntry> items, bool push);

    // From front ends. `client` is the name given in hello (for hello and ack).
    model::Reply handle(const model::Command& command, const std::string& client);
    // Up to `limit` stored events with seq > `after`, oldest first; returns how many.
    xmpp::Result<std::size_t> replay(model::Seq after, std::size_t limit, const Sink& out);

private:
    void publish(const std::string& account, model::EventBody body, std::string stamp = {});
    void deliver(const model::Event& event);
    void transmit(Account& account, const OutboxEntry& entry);
    // Moves a message's delivery state forward (accepted < sent < acked < delivered; failed
    // is final), with its event; never back.
    void advance(Account& account, const std::string& msg_id, const std::string& state, const std::string& error = {});
    // Stores and shows a message unless it was seen before; true when it was new.
    bool incoming(Account& account, const xmpp::ReceivedMessage& m, bool from_archive);
    void catch_up(Account& account, const std::string& after);
    void remember_archive_id(Account& account, const std::string& id);
    model::Reply send(const model::Send& send);
    std::vector<model::AccountInfo> account_infos() const;

    Store& store_;
    FindAccount find_;
    ListAccounts list_;
    std::vector<Sink> sinks_;
    struct CatchUp {
        std::string query_id;
        int count = 0;   // archived messages looked at
        int fresh = 0;   // of which not seen before
    };
    // By account: a gap in what we have from the archive, and the query filling it.
    std::map<std::string, CatchUp> catch_ups_;
    unsigned long next_query_ = 1;
};

// A random (version 4) UUID, for message ids.
std::string make_uuid();

}  // namespace stanzad
