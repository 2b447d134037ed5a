#pragma once
// The IM core's end-to-end encryption (XEP-0384 OMEMO, 0.3 and 2; issue 14): one
// OmemoSession per account, next to its AccountSession, which meets it as its Encryption
// (session.hpp). Sans-I/O like it: our device is
// announced at every new session, device lists and bundles are fetched (once per JID and
// session), sessions built, messages to encrypt queued in order and marked in the outbox,
// encrypted at every transmit, and the encryption commands of front ends answered. The
// crypto (libomemo-c in daemon/omemo*.cpp) is behind OmemoCrypto; the account's rows
// through SessionStore (kept values), the stream through SessionPort. Loop thread only;
// memory: the queue of messages waiting for device lists, the JIDs whose lists were
// fetched this session, and the msg_ids of marked messages transmitted.
// Files: omemo_session.cpp (devices, bundles, receiving), omemo_session_send.cpp.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "frontends/model/model.hpp"
#include "protocol/base/jid.hpp"
#include "protocol/base/result.hpp"
#include "protocol/im.hpp"
#include "protocol/im/session.hpp"
#include "protocol/omemo/stanza.hpp"

namespace xmpp::im {

// Our OMEMO device: its keys and its sessions with other devices. What a call changes
// (sessions, identity keys, trust, used pre-keys) is pending until committed(): the caller
// takes pending() to store it (with the message it goes with) first.
class OmemoCrypto {
public:
    using Version = omemo::Version;
    struct Address {
        std::string jid;  // bare
        std::uint32_t device = 0;
    };
    // What became of one <encrypted/> (XEP-0384 §4.6).
    struct Decrypted {
        enum class Kind { Message, KeyTransport, Failed };
        Kind kind = Kind::Failed;
        std::string body;   // Message: the plaintext
        std::string error;  // Failed: a short reason, for people
        std::string trust;  // the sender device's: "blind" | "changed" ("" when unknown)
    };
    struct KnownDevice {
        std::uint32_t device = 0;
        std::string fingerprint, trust;
    };
    virtual ~OmemoCrypto() = default;
    virtual std::uint32_t device_id() const = 0;
    virtual std::string fingerprint() const = 0;  // of our identity key
    virtual omemo::Bundle bundle(Version v) const = 0;  // §5.3.2: public keys only
    virtual bool has_session(const std::string& jid, std::uint32_t device, Version v) = 0;
    // 0.3 §4.4 / 2 §4.4 (X3DH): a session with `device` of `jid` from its bundle.
    virtual Status build_session(const std::string& jid, std::uint32_t device, const omemo::Bundle& bundle,
                                 Version v) = 0;
    // 0.3 §4.5 / 2 §4.4: the payload sealed once, its key for each address with a session.
    virtual Result<omemo::Encrypted> encrypt(std::string_view plaintext, const std::vector<Address>& to,
                                             Version v) = 0;
    virtual Decrypted decrypt(const omemo::Encrypted& e, const std::string& sender) = 0;
    // Issue 14 §5: blind | trusted | distrusted | undecided | changed ("" when unknown).
    virtual std::string trust(const std::string& jid, std::uint32_t device) = 0;
    virtual Status set_trust(const std::string& jid, std::uint32_t device, bool trusted) = 0;
    virtual Result<std::vector<KnownDevice>> known_devices(const std::string& jid) = 0;
    virtual std::vector<KeptWrite> pending() = 0;
    // True when the bundle changed (a used pre-key replaced, stored): publish it again.
    virtual bool committed(bool stored) = 0;
};

// Messages go to devices whose trust is "blind" or "trusted" (issue 14 §5).
inline bool usable_trust(std::string_view trust) { return trust == "blind" || trust == "trusted"; }

// What only the owner knows: the device (made on first use) and the account's setting.
class OmemoPort {
public:
    virtual ~OmemoPort() = default;
    // Our device; nullptr when encryption is off or the keys cannot be had.
    virtual OmemoCrypto* crypto() = 0;
    virtual std::string encryption() = 0;  // the account's default: auto | omemo | off
};

class OmemoSession final : public Encryption {
public:
    using Respond = std::function<void(model::Reply)>;
    using Version = omemo::Version;
    using Recipients = std::vector<std::pair<std::string, std::uint32_t>>;

    OmemoSession(std::string account, Jid own, SessionStore& store, SessionPort& port, AccountSession& session,
                 OmemoPort& owner);

    // --- Devices and bundles (omemo_session.cpp) ---
    // A new session: lists are fetched again, our id put on our device lists (§5.3.1), our
    // bundle published (§5.3.2).
    void online() override;
    // XEP-0163 §4.3: true when `message` is a PEP notification of a device list (handled).
    bool event(pugi::xml_node message) override;
    // Publishes our bundle in both versions; one publish out at a time, a second asked
    // meanwhile goes once after it.
    void publish_bundle();

    // --- Receiving (omemo_session.cpp) ---
    // Fills `msg` from the <encrypted/> of `m` (the plaintext, or an empty body and the
    // error; never the fallback body). The session changes to store with it, or nullopt
    // when there is no device (then decrypted() need not be called).
    std::optional<std::vector<KeptWrite>> decrypt(const ReceivedMessage& m, model::Message& msg,
                                                  const std::string& room) override;
    void decrypted(bool stored) override;
    void key_transport(const ReceivedMessage& m) override;  // an <encrypted/> without payload

    // --- Sending (omemo_session_send.cpp) ---
    // Whether a message goes encrypted: nullopt for in clear, else whether it must (true:
    // it fails rather than go in clear; false, "auto": encrypted if the contact has
    // devices). An error for a setting that cannot be honoured.
    Result<std::optional<bool>> wanted(const model::Send& s);
    // Queued in order: device lists and bundles fetched, sessions built, then stored in the
    // outbox marked (omemo:out:<msg_id>) to be encrypted at every transmit.
    void send(model::Send s, bool required, Respond respond);
    // The addresses a message to `contact` is encrypted for: its usable devices, and our
    // own other ones.
    Recipients recipients(const std::string& contact);
    std::vector<std::uint32_t> listed(const std::string& jid);  // in either version
    // Whether the outbox entry is marked to go encrypted.
    bool encrypted(const std::string& msg_id) override;
    // The stanza of a marked outbox entry, encrypted now (sessions stored first), or why not.
    Result<std::string> encrypt(const Outgoing& entry, const OutgoingMessage& m) override;
    // A message that will never be transmitted again: its marker goes.
    void finished(const std::string& msg_id) override;
    std::size_t queued() const { return queue_.size(); }
    // The session is about to be replaced (the account's JID changed): every queued send is
    // answered with an error, none left without a reply.
    void abandon(const std::string& why);

    // --- Commands (omemo_session_send.cpp) ---
    model::Reply set_encryption(const model::SetEncryption& c);
    model::Reply trust(const model::OmemoTrust& c);
    void devices(const model::OmemoDevices& c, Respond respond);

private:
    struct Job {
        model::Send send;
        bool required = true;
        Respond respond;
    };
    void device_list(const std::optional<omemo::PepItem>& item);
    void publish(Version v, std::function<void()> then);
    void next();
    void finish();
    // Fetches the device lists of `jids` and the bundles of devices without a session;
    // `done` when all answered.
    void refresh(const std::vector<std::string>& jids, std::function<void()> done);
    void lists_fetched(const std::string& jid, const std::shared_ptr<std::function<void()>>& finish,
                       const std::shared_ptr<int>& left);
    void fetch_bundle(const std::string& jid, std::uint32_t id, std::function<void()> done);
    void bundle_answer(const std::string& jid, std::uint32_t id, Version v, const IqReply& r);
    std::vector<std::uint32_t> listed(const std::string& jid, Version v);
    std::vector<std::uint32_t> usable(OmemoCrypto& device, const std::string& jid, Version v);
    Version version_for(OmemoCrypto& device, const std::string& contact);
    void log(SessionPort::Level level, const std::string& text);

    std::string account_;
    Jid own_;
    SessionStore& store_;
    SessionPort& port_;
    AccountSession& session_;
    OmemoPort& owner_;
    std::deque<Job> queue_;
    std::set<std::string> fresh_;   // JIDs whose lists were fetched this session
    std::set<std::string> outbox_;  // marked msg_ids transmitted
    int publishing_ = 0;            // the bundle: 0 idle, 1 out, 2 out + again
    OmemoCrypto* decrypting_ = nullptr;  // the device of the decryption in progress
    // Held by the callbacks of requests: they do nothing once the session is gone.
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

// Where a contact's device list of each version is kept (0.3: omemo:devices:<jid>).
std::string omemo_devices_key(omemo::Version v, const std::string& jid);

}  // namespace xmpp::im
