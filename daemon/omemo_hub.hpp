#pragma once
// The hub's OMEMO side (XEP-0384, both namespaces): each account's device, made on first use
// and announced at every new session; device lists and bundles; decrypting what comes and
// encrypting what goes (through the account's session), and the encryption commands of
// front ends. daemon/ because the crypto (libomemo-c, daemon/omemo*.cpp) and its keys in the
// store are. Loop thread only.
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/store.hpp"
#include "frontends/model/model.hpp"
#include "protocol/im.hpp"
#include "protocol/im/session.hpp"
#include "protocol/omemo/stanza.hpp"

namespace stanzad {

class Account;
class OmemoDevice;

class OmemoHub {
public:
    using Respond = std::function<void(model::Reply)>;
    using FindAccount = std::function<Account*(std::string_view name)>;
    using SessionOf = std::function<xmpp::im::AccountSession&(Account&)>;

    OmemoHub(Store& store, FindAccount find, SessionOf session);
    ~OmemoHub();  // out of line, where OmemoDevice is complete

    // The account's device (nullptr when encryption is off or the
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
    // Sending (omemo_hub_send.cpp). Whether a message to `to` goes encrypted: nullopt for
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

    // A message that will never be transmitted again: its marker (omemo:out:<msg_id>) goes.
    void omemo_finished(const std::string& account, const std::string& msg_id);

private:
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
    Store& store_;
    FindAccount find_;
    SessionOf session_;
};

}  // namespace stanzad
