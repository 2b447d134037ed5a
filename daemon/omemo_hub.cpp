// The hub's OMEMO side (omemo_hub.hpp): our device made on first use and announced at every
// new session, device lists, decryption. Sending and the trust ops: omemo_hub_send.cpp.
#include "daemon/account.hpp"
#include "daemon/omemo_hub.hpp"
#include "daemon/log.hpp"
#include "daemon/omemo.hpp"
#include "protocol/xml_framer.hpp"

namespace stanzad {

OmemoHub::OmemoHub(Store& store, FindAccount find, SessionOf session)
    : store_(store), find_(std::move(find)), session_(std::move(session)) {}

OmemoHub::~OmemoHub() = default;

void OmemoHub::omemo_finished(const std::string& account, const std::string& msg_id) {
    if (omemo_outbox_[account].erase(msg_id))
        (void)store_.set_metas(account, {{"omemo:out:" + msg_id, std::nullopt}});
}

OmemoDevice* OmemoHub::omemo_device(Account& account) {
    if (account.config().encryption == "off") return nullptr;
    auto& slot = omemo_[account.name()];
    if (!slot) {
        auto device = OmemoDevice::open(store_, account.name());
        if (!device) {
            logs::daemon().error("account {}: OMEMO is not available: {}", account.name(), device.error().message);
            return nullptr;
        }
        slot = std::move(device).value();
        slot->set_own_jid(account.config().jid.bare());
        logs::daemon().info("account {}: OMEMO device {}, fingerprint {}", account.name(), slot->device_id(),
                            slot->fingerprint());
    }
    return slot.get();
}

void OmemoHub::omemo_online(Account& account) {
    OmemoDevice* device = omemo_device(account);
    if (!device) return;
    std::string name = account.name();
    omemo_fresh_.erase(name);            // device lists are fetched again in this session
    omemo_bundle_publishing_[name] = 0;  // a new session: nothing of the old one is out
    omemo_publish_bundle(account);
    // §5.3.1: our id on the device list of each version (0.3 and 2), next to those of our
    // other clients; added again when another client overwrote the list without it.
    for (auto v : {xmpp::omemo::Version::Legacy, xmpp::omemo::Version::V2}) {
        account.request(
            {}, [&](const std::string& id) { return xmpp::omemo::make_fetch_devices(id, {}, v); },
            [this, name, v](const IqReply& r) {
                Account* a = find_(name);
                if (!a) return;
                // No list yet (item-not-found) is an empty one; any other failure
                // leaves the list alone rather than drop the other clients' devices.
                if (r.ok()) {
                    auto item = xmpp::omemo::parse_pep_item(r.iq);
                    if (!item) item = xmpp::omemo::PepItem{};
                    item->node = xmpp::omemo::devices_node(v);
                    omemo_device_list(*a, item);
                } else if (r.outcome == IqReply::Outcome::Remote && r.error.condition == "item-not-found") {
                    omemo_device_list(*a, xmpp::omemo::PepItem{std::string(xmpp::omemo::devices_node(v)), {}, {}});
                } else {
                    logs::daemon().warn("account {}: cannot read the OMEMO device list ({}): {}", name,
                                        xmpp::omemo::ns_of(v), r.describe());
                }
            });
    }
}

void OmemoHub::omemo_publish_bundle(Account& account) {
    OmemoDevice* device = omemo_device(account);
    if (!device || account.state() != Account::State::Online) return;
    // One publish out at a time; pre-keys used meanwhile go with one more after it.
    int& state = omemo_bundle_publishing_[account.name()];
    if (state > 0) {
        state = 2;
        return;
    }
    state = 1;
    // XEP-0384 §5.3.2: the bundle (public keys only) with access model open, in both
    // versions: 0.3's node per device, then OMEMO 2's item in urn:xmpp:omemo:2:bundles.
    std::string name = account.name();
    auto publish = [this, name](xmpp::omemo::Version v, std::function<void()> then) {
        Account* a = find_(name);
        OmemoDevice* d = a ? omemo_device(*a) : nullptr;
        if (!d) return then();
        a->request(
            {},
            [&](const std::string& id) {
                return xmpp::omemo::make_publish_bundle(id, v, d->device_id(), d->bundle(v));
            },
            [name, v, then = std::move(then)](const IqReply& r) {
                if (!r.ok())
                    logs::daemon().warn("account {}: cannot publish the OMEMO bundle ({}): {}", name,
                                        xmpp::omemo::ns_of(v), r.describe());
                then();
            });
    };
    publish(xmpp::omemo::Version::Legacy, [this, name, publish] {
        publish(xmpp::omemo::Version::V2, [this, name] {
            int& st = omemo_bundle_publishing_[name];
            bool again = st == 2;
            st = 0;
            if (Account* a = find_(name); a && again) omemo_publish_bundle(*a);
        });
    });
}

OmemoDevice* OmemoHub::omemo_decrypt(Account& account, const xmpp::ReceivedMessage& m, model::Message& msg,
                                const std::string& room) {
    // Whatever happens, the <body/> of an encrypted message is the fallback text (XEP-0384
    // §4.5, 0.3 §4.5): never stored, never shown.
    msg.encryption = "omemo";
    msg.body.clear();
    if (!m.omemo) {
        msg.error = "a malformed OMEMO element (" + m.omemo_error + ")";
        return nullptr;
    }
    if (!room.empty()) {
        msg.error = "OMEMO in rooms is not supported yet";
        return nullptr;
    }
    OmemoDevice* device = omemo_device(account);
    if (!device) {
        msg.error = account.config().encryption == "off" ? "OMEMO is off for this account (encryption = \"off\")"
                                                         : "OMEMO is not available (see the daemon's log)";
        return nullptr;
    }
    auto from = xmpp::Jid::parse(m.from);
    if (!from) {
        msg.error = "no sender";
        return nullptr;
    }
    // Issue 14 §4: "auto" encrypts once either side used OMEMO in the conversation.
    const auto to = xmpp::Jid::parse(m.to);
    const std::string peer =
        from.value().bare() == account.config().jid.bare() && to ? to.value().bare() : from.value().bare();
    if (auto used = store_.meta(account.name(), "omemo:used:" + peer); used && used.value().empty())
        (void)store_.set_meta(account.name(), "omemo:used:" + peer, "1");
    auto r = device->decrypt(*m.omemo, from.value().bare());
    msg.trust = r.trust;
    if (r.kind == OmemoDevice::Decrypted::Kind::Message) {
        msg.body = std::move(r.body);
    } else {
        msg.error = r.kind == OmemoDevice::Decrypted::Kind::Failed ? r.error : "no payload";
        logs::daemon().info("account {}: an OMEMO message from {} (device {}) does not decrypt: {}", account.name(),
                            from.value().bare(), m.omemo->sid, msg.error);
    }
    return device;
}

void OmemoHub::omemo_committed(Account& account, OmemoDevice& device, bool stored) {
    // XEP-0384 §5.3.2 / 0.3 §4.6: a used pre-key was replaced: the bundle says so.
    if (device.committed(stored)) omemo_publish_bundle(account);
}

void OmemoHub::omemo_key_transport(Account& account, const xmpp::ReceivedMessage& m) {
    OmemoDevice* device = omemo_device(account);
    auto from = xmpp::Jid::parse(m.from);
    if (!device || !from || !m.omemo) return;
    auto r = device->decrypt(*m.omemo, from.value().bare());
    if (r.kind == OmemoDevice::Decrypted::Kind::Failed)
        logs::daemon().info("account {}: an OMEMO key transport message from {} (device {}) does not decrypt: {}",
                            account.name(), from.value().bare(), m.omemo->sid, r.error);
    auto st = store_.set_metas(account.name(), device->pending());
    if (!st) logs::daemon().error("account {}: cannot store the OMEMO session: {}", account.name(), st.error().message);
    omemo_committed(account, *device, static_cast<bool>(st));
}

void OmemoHub::omemo_device_list(Account& account, const std::optional<xmpp::omemo::PepItem>& item) {
    OmemoDevice* device = omemo_device(account);
    if (!device) return;
    // The version is the node's (§5.3.1: urn:xmpp:omemo:2:devices; 0.3: ...devicelist).
    const auto v =
        item && item->node == xmpp::omemo::node_v2_devices ? xmpp::omemo::Version::V2 : xmpp::omemo::Version::Legacy;
    std::vector<std::uint32_t> devices;
    if (item && item->payload)
        if (auto list = xmpp::omemo::parse_device_list(item->payload)) devices = std::move(list).value();
    if (std::find(devices.begin(), devices.end(), device->device_id()) != devices.end()) return;
    devices.push_back(device->device_id());
    std::string name = account.name();
    account.request(
        {}, [&](const std::string& id) { return xmpp::omemo::make_publish_devices(id, v, devices); },
        [name, v](const IqReply& r) {
            if (!r.ok())
                logs::daemon().warn("account {}: cannot publish the OMEMO device list ({}): {}", name,
                                    xmpp::omemo::ns_of(v), r.describe());
        });
}

bool OmemoHub::omemo_event(Account& account, pugi::xml_node message) {
    // XEP-0163 §4.3: a PEP notification. Ours (from our bare JID) about a device list (0.3
    // or 2): is our device still on it?
    auto item = xmpp::omemo::parse_pep_item(message);
    if (!item || (item->node != xmpp::omemo::node_legacy_devices && item->node != xmpp::omemo::node_v2_devices))
        return false;
    auto from = xmpp::Jid::parse(message.attribute("from").value());
    if (from && from.value().bare() == account.config().jid.bare()) omemo_device_list(account, item);
    return true;
}

}  // namespace stanzad
