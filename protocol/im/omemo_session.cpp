// OmemoSession (omemo_session.hpp): our device announced at every new session, our device
// lists and bundle, and decryption. Sending and the commands: omemo_session_send.cpp.
#include <algorithm>

#include "protocol/im/omemo_session.hpp"

namespace xmpp::im {

OmemoSession::OmemoSession(std::string account, Jid own, SessionStore& store, SessionPort& port,
                           AccountSession& session, OmemoPort& owner)
    : account_(std::move(account)), own_(std::move(own)), store_(store), port_(port), session_(session),
      owner_(owner) {}

void OmemoSession::log(SessionPort::Level level, const std::string& text) {
    port_.log(level, "account " + account_ + ": " + text);
}

void OmemoSession::finished(const std::string& msg_id) {
    if (outbox_.erase(msg_id)) (void)store_.keep({{"omemo:out:" + msg_id, std::nullopt}});
}

void OmemoSession::online() {
    if (!owner_.crypto()) return;
    fresh_.clear();   // device lists are fetched again in this session
    publishing_ = 0;  // a new session: nothing of the old one is out
    publish_bundle();
    // §5.3.1: our id on the device list of each version (0.3 and 2), next to those of our
    // other clients; added again when another client overwrote the list without it.
    for (auto v : {Version::Legacy, Version::V2}) {
        port_.request(
            {}, [&](const std::string& id) { return omemo::make_fetch_devices(id, {}, v); },
            [this, alive = std::weak_ptr<int>(alive_), v](const IqReply& r) {
                if (alive.expired()) return;
                // No list yet (item-not-found) is an empty one; any other failure
                // leaves the list alone rather than drop the other clients' devices.
                if (r.ok()) {
                    auto item = omemo::parse_pep_item(r.iq);
                    if (!item) item = omemo::PepItem{};
                    item->node = omemo::devices_node(v);
                    device_list(item);
                } else if (r.outcome == IqReply::Outcome::Remote && r.error.condition == "item-not-found") {
                    device_list(omemo::PepItem{std::string(omemo::devices_node(v)), {}, {}});
                } else {
                    log(SessionPort::Level::Warn, "cannot read the OMEMO device list (" +
                                                      std::string(omemo::ns_of(v)) + "): " + r.describe());
                }
            });
    }
}

void OmemoSession::publish_bundle() {
    if (!owner_.crypto() || !port_.online()) return;
    // One publish out at a time; pre-keys used meanwhile go with one more after it.
    if (publishing_ > 0) {
        publishing_ = 2;
        return;
    }
    publishing_ = 1;
    // XEP-0384 §5.3.2: the bundle (public keys only) with access model open, in both
    // versions: 0.3's node per device, then OMEMO 2's item in urn:xmpp:omemo:2:bundles.
    publish(Version::Legacy, [this] {
        publish(Version::V2, [this] {
            bool again = publishing_ == 2;
            publishing_ = 0;
            if (again) publish_bundle();
        });
    });
}

void OmemoSession::publish(Version v, std::function<void()> then) {
    OmemoCrypto* d = owner_.crypto();
    if (!d) return then();
    port_.request(
        {}, [&](const std::string& id) { return omemo::make_publish_bundle(id, v, d->device_id(), d->bundle(v)); },
        [this, alive = std::weak_ptr<int>(alive_), v, then = std::move(then)](const IqReply& r) {
            if (alive.expired()) return;
            if (!r.ok())
                log(SessionPort::Level::Warn,
                    "cannot publish the OMEMO bundle (" + std::string(omemo::ns_of(v)) + "): " + r.describe());
            then();
        });
}

std::optional<std::vector<KeptWrite>> OmemoSession::decrypt(const ReceivedMessage& m, model::Message& msg,
                                                            const std::string& room) {
    decrypting_ = nullptr;
    // Whatever happens, the <body/> of an encrypted message is the fallback text (XEP-0384
    // §4.5, 0.3 §4.5): never stored, never shown.
    msg.encryption = "omemo";
    msg.body.clear();
    if (!m.omemo) {
        msg.error = "a malformed OMEMO element (" + m.omemo_error + ")";
        return std::nullopt;
    }
    if (!room.empty()) {
        msg.error = "OMEMO in rooms is not supported yet";
        return std::nullopt;
    }
    OmemoCrypto* device = owner_.crypto();
    if (!device) {
        msg.error = owner_.encryption() == "off" ? "OMEMO is off for this account (encryption = \"off\")"
                                                 : "OMEMO is not available (see the daemon's log)";
        return std::nullopt;
    }
    auto from = Jid::parse(m.from);
    if (!from) {
        msg.error = "no sender";
        return std::nullopt;
    }
    // Issue 14 §4: "auto" encrypts once either side used OMEMO in the conversation.
    const auto to = Jid::parse(m.to);
    const std::string peer = from.value().bare() == own_.bare() && to ? to.value().bare() : from.value().bare();
    if (auto used = store_.kept("omemo:used:" + peer); used && used.value().empty())
        (void)store_.keep("omemo:used:" + peer, "1");
    auto r = device->decrypt(*m.omemo, from.value().bare());
    msg.trust = r.trust;
    if (r.kind == OmemoCrypto::Decrypted::Kind::Message) {
        msg.body = std::move(r.body);
    } else {
        msg.error = r.kind == OmemoCrypto::Decrypted::Kind::Failed ? r.error : "no payload";
        log(SessionPort::Level::Info, "an OMEMO message from " + from.value().bare() + " (device " +
                                          std::to_string(m.omemo->sid) + ") does not decrypt: " + msg.error);
    }
    decrypting_ = device;
    return device->pending();
}

void OmemoSession::decrypted(bool stored) {
    OmemoCrypto* device = std::exchange(decrypting_, nullptr);
    // XEP-0384 §5.3.2 / 0.3 §4.6: a used pre-key was replaced: the bundle says so.
    if (device && device->committed(stored)) publish_bundle();
}

void OmemoSession::key_transport(const ReceivedMessage& m) {
    OmemoCrypto* device = owner_.crypto();
    auto from = Jid::parse(m.from);
    if (!device || !from || !m.omemo) return;
    auto r = device->decrypt(*m.omemo, from.value().bare());
    if (r.kind == OmemoCrypto::Decrypted::Kind::Failed)
        log(SessionPort::Level::Info, "an OMEMO key transport message from " + from.value().bare() + " (device " +
                                          std::to_string(m.omemo->sid) + ") does not decrypt: " + r.error);
    auto st = store_.keep(device->pending());
    if (!st) log(SessionPort::Level::Error, "cannot store the OMEMO session: " + st.error().message);
    if (device->committed(static_cast<bool>(st))) publish_bundle();
}

void OmemoSession::device_list(const std::optional<omemo::PepItem>& item) {
    OmemoCrypto* device = owner_.crypto();
    if (!device) return;
    // The version is the node's (§5.3.1: urn:xmpp:omemo:2:devices; 0.3: ...devicelist).
    const auto v = item && item->node == omemo::node_v2_devices ? Version::V2 : Version::Legacy;
    std::vector<std::uint32_t> devices;
    if (item && item->payload)
        if (auto list = omemo::parse_device_list(item->payload)) devices = std::move(list).value();
    if (std::find(devices.begin(), devices.end(), device->device_id()) != devices.end()) return;
    devices.push_back(device->device_id());
    port_.request(
        {}, [&](const std::string& id) { return omemo::make_publish_devices(id, v, devices); },
        [this, alive = std::weak_ptr<int>(alive_), v](const IqReply& r) {
            if (!alive.expired() && !r.ok())
                log(SessionPort::Level::Warn,
                    "cannot publish the OMEMO device list (" + std::string(omemo::ns_of(v)) + "): " + r.describe());
        });
}

bool OmemoSession::event(pugi::xml_node message) {
    // XEP-0163 §4.3: a PEP notification. Ours (from our bare JID) about a device list (0.3
    // or 2): is our device still on it?
    auto item = omemo::parse_pep_item(message);
    if (!item || (item->node != omemo::node_legacy_devices && item->node != omemo::node_v2_devices)) return false;
    auto from = Jid::parse(message.attribute("from").value());
    if (from && from.value().bare() == own_.bare()) device_list(item);
    return true;
}

}  // namespace xmpp::im
