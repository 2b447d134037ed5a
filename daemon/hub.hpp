#pragma once
// Hub: where the XMPP side and the front ends meet. It turns what accounts receive into
// model events (numbered and stored by the Store, then handed to every front end), and
// front ends' commands into stanzas (through the durable outbox for messages).
// Loop thread only; owns nothing but references to the store and the accounts.
#include <uv.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/store.hpp"
#include "daemon/uv.hpp"
#include "frontends/model/model.hpp"
#include "protocol/im.hpp"
#include "protocol/im/catchup.hpp"
#include "protocol/im/session.hpp"
#include "protocol/im/room.hpp"
#include "protocol/muc.hpp"
#include "protocol/omemo/stanza.hpp"
#include "protocol/stream.hpp"
#include "protocol/xml_framer.hpp"

namespace stanzad {

class Account;
class OmemoDevice;

class Hub {
public:
    using Sink = std::function<void(const model::Event&)>;
    using FindAccount = std::function<Account*(std::string_view name)>;
    using ListAccounts = std::function<std::vector<Account*>()>;
    using Respond = std::function<void(model::Reply)>;

    // `self_ping`: how often to check that we are still in each room (XEP-0410).
    Hub(Store& store, FindAccount find, ListAccounts list, uv_loop_t* loop, std::chrono::seconds self_ping);
    ~Hub();

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
    // XEP-0484: the account's FAST token (nullopt: forget it), kept like the password it
    // replaces: in the store (mode 0600), never in a log.
    void save_fast_token(Account& account, const std::optional<xmpp::sasl::FastToken>& token);
    std::optional<xmpp::sasl::FastToken> load_fast_token(const std::string& account);
    // XEP-0388 <user-agent id/>: a UUID v4 made on first use and kept, so the server knows
    // this installation across connections (FAST tokens are bound to it).
    std::string user_agent_id(const std::string& account);
    // XEP-0198: the server has these messages.
    void acked(Account& account, const std::vector<std::string>& msg_ids);
    void received(Account& account, xmpp::Stanza& stanza);
    void roster(Account& account, std::vector<xmpp::RosterEntry> items, bool push,
                std::optional<std::string> version = std::nullopt);
    // XEP-0191 push.
    void blocklist_push(Account& account, std::vector<std::string> jids, bool blocked);

    // From front ends. `client` is the name given in hello (for hello and ack). `respond` is
    // called once, at once or when the server has answered (join, history, ...).
    void handle(const model::Command& command, const std::string& client, Respond respond);
    // Up to `limit` stored events with seq > `after`, oldest first; returns how many.
    xmpp::Result<std::size_t> replay(model::Seq after, std::size_t limit, const Sink& out);

private:
    // Front-end commands by group (hub_commands.cpp); each answers through `respond` once.
    template <class C>
    model::Reply daemon_command(const C& c, const std::string& client);
    template <class C>
    void encryption_command(Account& a, const C& c, Respond respond);
    template <class C>
    void account_command(Account& a, const C& c, Respond respond);
    // What received() hands on, by stanza kind.
    void received_message(Account& account, pugi::xml_node root);
    void received_presence(Account& account, pugi::xml_node root);
    void publish(const std::string& account, model::EventBody body, std::string stamp = {});
    // Events that are not kept (chat states): to live front ends only, seq 0.
    void transient(const std::string& account, model::EventBody body);
    void deliver(const model::Event& event);
    // The account's messages both ways (protocol/im/session), wired to the store and the
    // account by an AccountLink (hub_session.cpp). Made on first use.
    class AccountLink;
    xmpp::im::AccountSession& session(Account& account);
    std::map<std::string, std::unique_ptr<AccountLink>> links_;  // by account

    // OMEMO (hub_omemo.cpp): the account's device (nullptr when encryption is off or the
    // keys cannot be had), announced at every new session; PEP notifications.
    OmemoDevice* omemo_device(Account& account);
    void omemo_online(Account& account);
    void omemo_device_list(Account& account, const std::optional<xmpp::omemo::PepItem>& item);
    bool omemo_event(Account& account, pugi::xml_node message);
    void omemo_publish_bundle(Account& account);
    // Fills `msg` from the <encrypted/> of `m` (the plaintext, or an empty body and the
    // error; never the fallback body). Returns the device whose pending session changes
    // go with the message (nullptr: none); omemo_committed() once it is stored (or not).
    OmemoDevice* omemo_decrypt(Account& account, const xmpp::ReceivedMessage& m, model::Message& msg,
                               const std::string& room);
    void omemo_committed(Account& account, OmemoDevice& device, bool stored);
    void omemo_key_transport(Account& account, const xmpp::ReceivedMessage& m);
    // Sending (hub_omemo_send.cpp). Whether a message to `to` goes encrypted: nullopt for
    // in clear, else whether it must (true: it fails rather than go in clear; false, for
    // "auto": encrypted if the contact turns out to have devices). An error for a setting
    // that cannot be honoured.
    xmpp::Result<std::optional<bool>> omemo_wanted(Account& account, const model::Send& s);
    // Queued per account, in order: device lists and bundles fetched, sessions built, then
    // stored in the outbox marked (omemo:out:<msg_id>) to be encrypted at every transmit.
    void omemo_send(Account& account, model::Send s, bool required, Respond respond);
    void omemo_next(const std::string& account);
    void omemo_finish(Account& account);
    // Fetches the device lists of `jids` and the bundles of devices without a session (one
    // fetch per JID and session); `done` when all answered.
    void omemo_refresh(Account& account, const std::vector<std::string>& jids, std::function<void()> done);
    // 0.3 §4.4: the bundle of device `id` of `jid`, and a session built from it; `done` then.
    void omemo_fetch_bundle(Account& account, const std::string& jid, std::uint32_t id, std::function<void()> done);
    std::vector<std::uint32_t> omemo_listed(const std::string& account, const std::string& jid);
    // The addresses a message to `to` is encrypted for: the usable devices of `to`, and our
    // own other ones.
    std::vector<std::pair<std::string, std::uint32_t>> omemo_recipients(Account& account, OmemoDevice& device,
                                                                        const std::string& to);
    bool omemo_marked(const std::string& account, const std::string& msg_id);
    // The stanza of an outbox entry marked for OMEMO, encrypted now (sessions stored first),
    // or why it cannot be.
    xmpp::Result<std::string> omemo_message(Account& account, const OutboxEntry& entry, xmpp::OutgoingMessage m);
    void omemo_devices(Account& account, const model::OmemoDevices& c, Respond respond);
    model::Reply omemo_set_encryption(Account& account, const model::SetEncryption& c);
    model::Reply omemo_trust(Account& account, const model::OmemoTrust& c);
    struct OmemoSendJob {
        model::Send send;
        bool required = true;
        Respond respond;
    };
    std::map<std::string, std::deque<OmemoSendJob>> omemo_queue_;  // by account
    std::map<std::string, std::set<std::string>> omemo_fresh_;     // by account: lists fetched this session
    std::map<std::string, std::set<std::string>> omemo_outbox_;    // by account: marked msg_ids transmitted
    std::map<std::string, int> omemo_bundle_publishing_;  // by account: 0 idle, 1 out, 2 out + again
    std::map<std::string, std::unique_ptr<OmemoDevice>> omemo_;  // by account

    void tick();  // once a second: each account's rooms (join timeouts, self-pings)
    std::vector<model::AccountInfo> account_infos() const;

    Store& store_;
    FindAccount find_;
    ListAccounts list_;
    std::vector<Sink> sinks_;

    uv::Timer timer_;  // join timeouts and self-pings
    std::chrono::seconds self_ping_;
};

// A random (version 4) UUID, for message ids.
std::string make_uuid();

}  // namespace stanzad
