#pragma once
// The hub's OMEMO side (XEP-0384): each account's device (OmemoDevice, libomemo-c), made on
// first use and kept for the daemon's life, seen by the IM core through its narrow crypto
// interface (xmpp::im::OmemoCrypto). The protocol itself (device lists, bundles, the send
// queue, markers, trust commands) is the IM core's: protocol/im/omemo_session.hpp. Wiring
// only. Loop thread only; memory: one device per account with encryption on.
#include <map>
#include <memory>
#include <string>

#include "daemon/store.hpp"
#include "protocol/im/omemo_session.hpp"

namespace stanzad {

class OmemoDevice;

// OmemoDevice as the IM core sees it.
class OmemoDeviceCrypto final : public xmpp::im::OmemoCrypto {
public:
    explicit OmemoDeviceCrypto(std::unique_ptr<OmemoDevice> device);
    ~OmemoDeviceCrypto() override;
    OmemoDevice& device() { return *device_; }

    std::uint32_t device_id() const override;
    std::string fingerprint() const override;
    xmpp::omemo::Bundle bundle(Version v) const override;
    bool has_session(const std::string& jid, std::uint32_t device, Version v) override;
    xmpp::Status build_session(const std::string& jid, std::uint32_t device, const xmpp::omemo::Bundle& bundle,
                               Version v) override;
    xmpp::Result<xmpp::omemo::Encrypted> encrypt(std::string_view plaintext, const std::vector<Address>& to,
                                                 Version v) override;
    Decrypted decrypt(const xmpp::omemo::Encrypted& e, const std::string& sender) override;
    std::string trust(const std::string& jid, std::uint32_t device) override;
    xmpp::Status set_trust(const std::string& jid, std::uint32_t device, bool trusted) override;
    xmpp::Result<std::vector<KnownDevice>> known_devices(const std::string& jid) override;
    std::vector<xmpp::im::KeptWrite> pending() override;
    bool committed(bool stored) override;

private:
    std::unique_ptr<OmemoDevice> device_;
};

class OmemoHub {
public:
    explicit OmemoHub(Store& store);
    ~OmemoHub();
    // The device of `account` (our bare JID `own`), opened (made on first use) now if it is
    // not yet; nullptr when its keys cannot be had (logged).
    OmemoDeviceCrypto* device(const std::string& account, const std::string& own);

private:
    std::map<std::string, std::unique_ptr<OmemoDeviceCrypto>> devices_;  // by account
    Store& store_;
};

}  // namespace stanzad
