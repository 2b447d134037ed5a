// The hub's OMEMO devices (omemo_hub.hpp): libomemo-c's OmemoDevice behind the IM core's
// OmemoCrypto. Wiring only.
#include "daemon/omemo_hub.hpp"
#include "daemon/log.hpp"
#include "daemon/omemo.hpp"

namespace stanzad {

OmemoDeviceCrypto::OmemoDeviceCrypto(std::unique_ptr<OmemoDevice> device) : device_(std::move(device)) {}
OmemoDeviceCrypto::~OmemoDeviceCrypto() = default;

std::uint32_t OmemoDeviceCrypto::device_id() const { return device_->device_id(); }
std::string OmemoDeviceCrypto::fingerprint() const { return device_->fingerprint(); }
xmpp::omemo::Bundle OmemoDeviceCrypto::bundle(Version v) const { return device_->bundle(v); }

bool OmemoDeviceCrypto::has_session(const std::string& jid, std::uint32_t device, Version v) {
    return device_->has_session(jid, device, v);
}

xmpp::Status OmemoDeviceCrypto::build_session(const std::string& jid, std::uint32_t device,
                                              const xmpp::omemo::Bundle& bundle, Version v) {
    return device_->build_session(jid, device, bundle, v);
}

xmpp::Result<xmpp::omemo::Encrypted> OmemoDeviceCrypto::encrypt(std::string_view plaintext,
                                                                const std::vector<Address>& to, Version v) {
    std::vector<OmemoDevice::Address> addresses;
    addresses.reserve(to.size());
    for (const auto& a : to) addresses.push_back({a.jid, a.device});
    return device_->encrypt(plaintext, addresses, nullptr, v);
}

OmemoDeviceCrypto::Decrypted OmemoDeviceCrypto::decrypt(const xmpp::omemo::Encrypted& e, const std::string& sender) {
    auto r = device_->decrypt(e, sender);
    Decrypted out;
    switch (r.kind) {
    case OmemoDevice::Decrypted::Kind::Message: out.kind = Decrypted::Kind::Message; break;
    case OmemoDevice::Decrypted::Kind::KeyTransport: out.kind = Decrypted::Kind::KeyTransport; break;
    case OmemoDevice::Decrypted::Kind::Failed: out.kind = Decrypted::Kind::Failed; break;
    }
    out.body = std::move(r.body);
    out.error = std::move(r.error);
    out.trust = std::move(r.trust);
    return out;
}

std::string OmemoDeviceCrypto::trust(const std::string& jid, std::uint32_t device) {
    return device_->trust(jid, device);
}

xmpp::Status OmemoDeviceCrypto::set_trust(const std::string& jid, std::uint32_t device, bool trusted) {
    return device_->set_trust(jid, device, trusted);
}

xmpp::Result<std::vector<OmemoDeviceCrypto::KnownDevice>> OmemoDeviceCrypto::known_devices(const std::string& jid) {
    auto known = device_->known_devices(jid);
    if (!known) return known.error();
    std::vector<KnownDevice> out;
    for (auto& k : known.value()) out.push_back({k.device, std::move(k.fingerprint), std::move(k.trust)});
    return out;
}

std::vector<xmpp::im::KeptWrite> OmemoDeviceCrypto::pending() {
    std::vector<xmpp::im::KeptWrite> out;
    for (auto& w : device_->pending()) out.push_back({std::move(w.key), std::move(w.value)});
    return out;
}

bool OmemoDeviceCrypto::committed(bool stored) { return device_->committed(stored); }

OmemoHub::OmemoHub(Store& store) : store_(store) {}

OmemoHub::~OmemoHub() = default;

OmemoDeviceCrypto* OmemoHub::device(const std::string& account, const std::string& own) {
    auto& slot = devices_[account];
    if (!slot) {
        auto device = OmemoDevice::open(store_, account);
        if (!device) {
            logs::daemon().error("account {}: OMEMO is not available: {}", account, device.error().message);
            return nullptr;
        }
        device.value()->set_own_jid(own);
        slot = std::make_unique<OmemoDeviceCrypto>(std::move(device).value());
        logs::daemon().info("account {}: OMEMO device {}, fingerprint {}", account, slot->device_id(),
                            slot->fingerprint());
    }
    return slot.get();
}

}  // namespace stanzad
