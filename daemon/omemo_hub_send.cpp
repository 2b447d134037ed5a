// The hub's outgoing OMEMO (XEP-0384, 0.3 and 2; issue 14 §4) and the trust ops (§5).
//
// A contact's device lists of both versions are fetched; a message goes in OMEMO 2 when the
// contact announces a :2 device we can use (issue 14 §1: the current namespace where the
// peer announces it), in 0.3 otherwise (version_for), chosen again at every transmit.
//
// A message to a contact that is to be encrypted is prepared first (the contact's and our
// own device lists, bundles of devices without a session, sessions built and stored), then
// enters the durable outbox like any other, with its plaintext (the store holds the
// conversation in clear anyway: docs/encryption.md) and a marker, omemo:out:<msg_id>. Every
// transmit of a marked entry encrypts it afresh for the devices usable then, and stores the
// ratchets' steps before the stanza leaves: a resend after a connection reset is a new
// ratchet message with the same id and origin-id (XEP-0359), which the peer decrypts like
// any other and drops as a duplicate by its id; a message key is never used twice, and no
// resend can put our ratchet behind what the peer saw. A marked entry that can no longer
// be encrypted fails; it never goes in clear.
#include <charconv>

#include "daemon/account.hpp"
#include "daemon/hub.hpp"  // make_uuid
#include "daemon/omemo_hub.hpp"
#include "daemon/log.hpp"
#include "daemon/omemo.hpp"
#include "protocol/base/jid.hpp"

namespace stanzad {
namespace {

using Version = xmpp::omemo::Version;
constexpr auto kLegacy = Version::Legacy;
constexpr auto kV2 = Version::V2;
constexpr Version kVersions[] = {kLegacy, kV2};

std::string ids_text(const std::vector<std::uint32_t>& ids) {
    std::string out;
    for (auto id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
    return out;
}

std::vector<std::uint32_t> parse_ids(std::string_view list) {
    std::vector<std::uint32_t> out;
    while (!list.empty()) {
        auto comma = list.find(',');
        if (auto id = xmpp::omemo::parse_device_id(list.substr(0, comma))) out.push_back(*id);
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
    return out;
}

std::string setting_key(const std::string& jid) { return "omemo:encryption:" + jid; }

// Where a contact's device list of each version is kept (0.3: omemo:devices:<jid>).
std::string devices_key(Version v, const std::string& jid) {
    return (v == kV2 ? "omemo:devices2:" : "omemo:devices:") + jid;
}

std::vector<std::uint32_t> listed(Store& store, const std::string& account, const std::string& jid, Version v) {
    auto list = store.meta(account, devices_key(v, jid));
    return list ? parse_ids(list.value()) : std::vector<std::uint32_t>{};
}

// The devices of `jid` a message in `v` goes to: listed, with a session, trusted.
std::vector<std::uint32_t> usable(Store& store, const std::string& account, OmemoDevice& device, const std::string& jid,
                                  Version v) {
    std::vector<std::uint32_t> out;
    for (auto id : listed(store, account, jid, v))
        if (id != device.device_id() && device.has_session(jid, id, v) &&
            OmemoDevice::usable_trust(device.trust(jid, id)))
            out.push_back(id);
    return out;
}

// Issue 14 §1: OMEMO 2 for a contact that announces it (and has a device we can use in
// it), 0.3 otherwise.
Version version_for(Store& store, const std::string& account, OmemoDevice& device, const std::string& contact) {
    return usable(store, account, device, contact, kV2).empty() ? kLegacy : kV2;
}

// The contact a message goes to: OMEMO is per bare JID (sessions are with its devices).
std::string contact_of(const std::string& to) {
    auto jid = xmpp::Jid::parse(to);
    return jid ? jid.value().bare() : to;
}

}  // namespace

xmpp::Result<std::optional<bool>> OmemoHub::omemo_wanted(Account& account, const model::Send& s) {
    const std::string contact = contact_of(s.to);
    auto setting = store_.meta(account.name(), setting_key(contact));
    if (!setting) return setting.error();
    const bool room = s.type == "groupchat" || session_(account).find_room(s.to) != nullptr;
    if (room) {
        if (setting.value() == "omemo")
            return xmpp::make_error("feature-not-implemented", "OMEMO in rooms is not supported yet: " + s.to +
                                                                   " is set to encryption \"omemo\"; nothing was sent");
        return std::optional<bool>{};  // the account's default is for 1:1 chats
    }
    const std::string mode = setting.value().empty() ? account.config().encryption : setting.value();
    if (mode == "off") return std::optional<bool>{};
    if (account.config().encryption == "off")
        return xmpp::make_error("feature-not-implemented",
                                s.to + " is set to encryption \"omemo\" but OMEMO is off for account " +
                                    account.name() + " (encryption = \"off\" in its configuration); nothing was sent");
    if (mode == "omemo") return std::optional<bool>{true};
    // auto: when either side used OMEMO in this conversation before.
    auto used = store_.meta(account.name(), "omemo:used:" + contact);
    if (!used) return used.error();
    if (used.value().empty()) return std::optional<bool>{};
    return std::optional<bool>{false};
}

void OmemoHub::omemo_send(Account& account, model::Send s, bool required, Respond respond) {
    auto& queue = omemo_queue_[account.name()];
    queue.push_back({std::move(s), required, std::move(respond)});
    if (queue.size() == 1) omemo_next(account.name());
}

void OmemoHub::omemo_next(const std::string& name) {
    Account* account = find_(name);
    auto& queue = omemo_queue_[name];
    if (queue.empty() || !account) return;
    const auto& job = queue.front();
    const std::string own = account->config().jid.bare();
    std::vector<std::string> stale;
    for (const auto& jid : {contact_of(job.send.to), own})
        if (!omemo_fresh_[name].count(jid)) stale.push_back(jid);
    if (stale.empty() || account->state() != Account::State::Online) return omemo_finish(*account);
    omemo_refresh(*account, stale, [this, name] {
        if (Account* a = find_(name)) omemo_finish(*a);
    });
}

void OmemoHub::omemo_finish(Account& account) {
    auto& queue = omemo_queue_[account.name()];
    if (queue.empty()) return;
    OmemoSendJob job = std::move(queue.front());
    queue.pop_front();
    OmemoDevice* device = omemo_device(account);
    const std::string contact = contact_of(job.send.to);
    std::size_t contact_devices = 0;
    if (device)
        for (const auto& r : omemo_recipients(account, *device, contact)) contact_devices += r.first == contact;
    // "auto" with a contact that has devices but none usable (undecided, distrusted):
    // encryption was in use, so it fails as "omemo" would rather than go in clear.
    if (!job.required && device && !omemo_listed(account.name(), contact).empty()) job.required = true;
    model::Reply reply;
    if (contact_devices > 0) {
        // Marked before it is queued: a crash in between leaves a marker for nothing, never
        // an unmarked entry that would go in clear.
        const std::string msg_id = job.send.client_id.empty() ? make_uuid() : job.send.client_id;
        job.send.client_id = msg_id;
        auto st = store_.set_meta(account.name(), "omemo:out:" + msg_id, "1");
        if (!st)
            reply = model::Reply::error("internal", "could not store the message: " + st.error().message);
        else
            reply = session_(account).send(job.send, true);
        if (reply.error_code.empty()) (void)store_.set_meta(account.name(), "omemo:used:" + contact, "1");
    } else if (job.required) {
        std::string why = !device ? "OMEMO is not available (see the daemon's log)"
                          : account.state() != Account::State::Online
                              ? "account " + account.name() + " is offline and no session with a device of " +
                                    job.send.to + " is known yet"
                              : job.send.to +
                                    " has no OMEMO device that can be used (none published, or none trusted: "
                                    "see `stanzactl omemo devices`)";
        reply = model::Reply::error("no-omemo-device", "cannot encrypt to " + job.send.to + ": " + why +
                                                           "; nothing was sent (encryption is on for this contact)");
    } else {
        reply = session_(account).send(job.send);  // auto, and the contact has no OMEMO device
    }
    job.respond(std::move(reply));
    omemo_next(account.name());
}

void OmemoHub::omemo_refresh(Account& account, const std::vector<std::string>& jids, std::function<void()> done) {
    // One count per outstanding iq; `done` when the last one answered.
    auto left = std::make_shared<int>(static_cast<int>(jids.size()));
    auto finish = std::make_shared<std::function<void()>>([left, done = std::move(done)] {
        if (--*left == 0) done();
    });
    auto store_list = [this](const std::string& name, const std::string& jid, Version v, const IqReply& r) {
        // XEP-0384 §5.3.1 (0.3 §4.2): no list (item-not-found) is an empty one.
        std::vector<std::uint32_t> list;
        if (r.ok())
            if (auto item = xmpp::omemo::parse_pep_item(r.iq); item && item->payload)
                if (auto parsed = xmpp::omemo::parse_device_list(item->payload)) list = std::move(parsed).value();
        if (!r.ok() && r.error.condition != "item-not-found") {
            logs::daemon().info("account {}: cannot read the OMEMO devices ({}) of {}: {}", name, xmpp::omemo::ns_of(v),
                                jid, r.describe());
            return;
        }
        omemo_fresh_[name].insert(jid);
        (void)store_.set_meta(name, devices_key(v, jid), ids_text(list));
    };
    const std::string name = account.name();
    const std::string own = account.config().jid.bare();
    for (const auto& jid : jids) {
        const std::string to = jid == own ? std::string() : jid;
        // Both lists of `jid` (0.3 and 2); once both answered, the bundles of its devices
        // without a session in a version they are listed in.
        auto lists_left = std::make_shared<int>(2);
        for (auto v : kVersions)
            account.request(
                to, [&](const std::string& id) { return xmpp::omemo::make_fetch_devices(id, to, v); },
                [this, name, jid, v, left, finish, lists_left, store_list](const IqReply& r) {
                    Account* a = find_(name);
                    OmemoDevice* device = a ? omemo_device(*a) : nullptr;
                    if (device && !r.local()) store_list(name, jid, v, r);
                    if (--*lists_left > 0) return;
                    if (!device || r.local()) return (*finish)();
                    std::set<std::uint32_t> ids;
                    for (auto lv : kVersions)
                        for (auto id : listed(store_, name, jid, lv))
                            if (id != device->device_id() && !device->has_session(jid, id, lv)) ids.insert(id);
                    for (auto id : ids) {
                        ++*left;
                        omemo_fetch_bundle(*a, jid, id, *finish);
                    }
                    (*finish)();
                });
    }
}

void OmemoHub::omemo_fetch_bundle(Account& account, const std::string& jid, std::uint32_t id, std::function<void()> done) {
    const std::string name = account.name();
    const std::string to = jid == account.config().jid.bare() ? std::string() : jid;
    OmemoDevice* own = omemo_device(account);
    if (!own) return done();
    // The bundle of each version the device is listed in and we have no session in.
    std::vector<Version> wanted;
    for (auto v : kVersions) {
        auto ids = listed(store_, name, jid, v);
        if (std::find(ids.begin(), ids.end(), id) != ids.end() && !own->has_session(jid, id, v)) wanted.push_back(v);
    }
    if (wanted.empty()) return done();
    auto left = std::make_shared<std::size_t>(wanted.size());
    auto finish = std::make_shared<std::function<void()>>([left, done = std::move(done)] {
        if (--*left == 0) done();
    });
    for (auto v : wanted)
        account.request(
            to, [&](const std::string& iq_id) { return xmpp::omemo::make_fetch_bundle(iq_id, to, v, id); },
            [this, name, jid, id, v, finish](const IqReply& r) {
                Account* a = find_(name);
                OmemoDevice* device = a ? omemo_device(*a) : nullptr;
                if (!device) return (*finish)();
                auto item = r.ok() ? xmpp::omemo::parse_pep_item(r.iq) : std::nullopt;
                if (!item || !item->payload) {
                    logs::daemon().info("account {}: no OMEMO bundle ({}) for device {} of {}: {}", name,
                                        xmpp::omemo::ns_of(v), id, jid, r.ok() ? "none published" : r.describe());
                    return (*finish)();
                }
                // 0.3 §4.4 / 2 §4.4 (X3DH): the session, stored at once.
                auto bundle = xmpp::omemo::parse_bundle(item->payload);
                xmpp::Status st =
                    bundle ? device->build_session(jid, id, bundle.value(), v) : xmpp::Status(bundle.error());
                if (st) st = store_.set_metas(name, device->pending());
                device->committed(static_cast<bool>(st));
                if (!st)
                    logs::daemon().info("account {}: no OMEMO session ({}) with device {} of {}: {}", name,
                                        xmpp::omemo::ns_of(v), id, jid, st.error().message);
                (*finish)();
            });
}

std::vector<std::uint32_t> OmemoHub::omemo_listed(const std::string& account, const std::string& jid) {
    // Every device `jid` announces, in either version.
    std::vector<std::uint32_t> out = listed(store_, account, jid, kLegacy);
    for (auto id : listed(store_, account, jid, kV2))
        if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
    return out;
}

std::vector<std::pair<std::string, std::uint32_t>> OmemoHub::omemo_recipients(Account& account, OmemoDevice& device,
                                                                         const std::string& to) {
    // 0.3 §4.5 / 2 §4.5: every device of the contact, and our own other devices (XEP-0280
    // carbons bring them the message), that have a session in the version used for this
    // contact and are trusted (issue 14 §5).
    const Version v = version_for(store_, account.name(), device, to);
    std::vector<std::pair<std::string, std::uint32_t>> out;
    for (const auto& jid : {to, account.config().jid.bare()})
        for (auto id : usable(store_, account.name(), device, jid, v)) out.emplace_back(jid, id);
    return out;
}

bool OmemoHub::omemo_marked(const std::string& account, const std::string& msg_id) {
    auto marker = store_.meta(account, "omemo:out:" + msg_id);
    // A store that cannot say counts as marked: an error then, never clear text.
    bool marked = !marker || !marker.value().empty();
    if (marked && marker) omemo_outbox_[account].insert(msg_id);  // the marker goes once it is acked
    return marked;
}

xmpp::Result<std::string> OmemoHub::omemo_message(Account& account, const OutboxEntry& entry, xmpp::OutgoingMessage m) {
    OmemoDevice* device = omemo_device(account);
    if (!device) return xmpp::make_error("omemo", "OMEMO is not available (see the daemon's log); not sent in clear");
    const std::string contact = contact_of(entry.to);
    std::vector<OmemoDevice::Address> to;
    for (auto& [jid, id] : omemo_recipients(account, *device, contact)) to.push_back({jid, id});
    auto e = device->encrypt(entry.body, to, nullptr, version_for(store_, account.name(), *device, contact));
    std::size_t for_contact = 0;
    if (e)
        for (const auto& k : e.value().keys)
            for (const auto& a : to)
                if (a.device == k.rid && a.jid == contact) ++for_contact;
    if (!e || for_contact == 0) {
        device->committed(false);
        return xmpp::make_error("omemo", "cannot encrypt to " + entry.to + ": " +
                                             (e ? "no usable OMEMO device" : e.error().message) +
                                             "; not sent in clear");
    }
    // The ratchets' steps are stored before the stanza leaves.
    auto st = store_.set_metas(account.name(), device->pending());
    device->committed(static_cast<bool>(st));
    if (!st) return xmpp::make_error("omemo", "cannot store the OMEMO sessions: " + st.error().message);
    // 0.3 §4.5 / 2 §4.4: the fallback <body/>, the <encrypted/> element, XEP-0380 and
    // XEP-0334 hints.
    return xmpp::omemo::make_encrypted_message(std::move(m), e.value());
}

model::Reply OmemoHub::omemo_set_encryption(Account& account, const model::SetEncryption& c) {
    if (!c.mode.empty()) {
        auto st = store_.set_meta(account.name(), setting_key(c.jid), c.mode == "default" ? "" : c.mode);
        if (!st) return model::Reply::error("internal", st.error().message);
    }
    auto setting = store_.meta(account.name(), setting_key(c.jid));
    if (!setting) return model::Reply::error("internal", setting.error().message);
    model::Reply reply;
    reply.encryption = setting.value().empty() ? "default" : setting.value();
    reply.encryption_default = account.config().encryption;
    return reply;
}

model::Reply OmemoHub::omemo_trust(Account& account, const model::OmemoTrust& c) {
    OmemoDevice* device = omemo_device(account);
    if (!device) return model::Reply::error("feature-not-implemented", "OMEMO is off for account " + account.name());
    auto st = device->set_trust(c.jid, c.device, c.trusted);
    if (st) st = store_.set_metas(account.name(), device->pending());
    device->committed(static_cast<bool>(st));
    if (!st)
        return model::Reply::error(st.error().code == "item-not-found" ? "item-not-found" : "internal",
                                   st.error().message);
    logs::daemon().info("account {}: OMEMO device {} of {} is now {}", account.name(), c.device, c.jid,
                        c.trusted ? "trusted" : "distrusted");
    return {};
}

void OmemoHub::omemo_devices(Account& account, const model::OmemoDevices& c, Respond respond) {
    OmemoDevice* device = omemo_device(account);
    if (!device)
        return respond(model::Reply::error("feature-not-implemented", "OMEMO is off for account " + account.name()));
    const std::string own = account.config().jid.bare();
    std::vector<std::string> jids{own};
    if (!c.jid.empty() && c.jid != own) jids.push_back(c.jid);
    auto answer = [this, name = account.name(), jids, respond] {
        Account* a = find_(name);
        OmemoDevice* d = a ? omemo_device(*a) : nullptr;
        if (!d) return respond(model::Reply::error("feature-not-implemented", "OMEMO is off for account " + name));
        model::Reply reply;
        reply.omemo_devices.push_back({a->config().jid.bare(), d->device_id(), d->fingerprint(), "own", true});
        for (const auto& jid : jids) {
            auto listed = omemo_listed(name, jid);
            auto known = d->known_devices(jid);
            if (!known) return respond(model::Reply::error("internal", known.error().message));
            for (const auto& k : known.value())
                reply.omemo_devices.push_back({jid, k.device, k.fingerprint, k.trust,
                                               std::find(listed.begin(), listed.end(), k.device) != listed.end()});
        }
        respond(std::move(reply));
    };
    // Online: the lists and bundles as they are now (a session built with each new device,
    // whose identity key and fingerprint we then know).
    if (account.state() != Account::State::Online) return answer();
    omemo_refresh(account, jids, answer);
}

}  // namespace stanzad
