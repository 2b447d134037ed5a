// OmemoSession's outgoing side (XEP-0384, 0.3 and 2; issue 14 §4) and the trust commands (§5).
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
#include <algorithm>

#include "protocol/im/omemo_session.hpp"

namespace xmpp::im {
namespace {

constexpr omemo::Version kVersions[] = {omemo::Version::Legacy, omemo::Version::V2};

std::string ids_text(const std::vector<std::uint32_t>& ids) {
    std::string out;
    for (auto id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
    return out;
}

std::vector<std::uint32_t> parse_ids(std::string_view list) {
    std::vector<std::uint32_t> out;
    while (!list.empty()) {
        auto comma = list.find(',');
        if (auto id = omemo::parse_device_id(list.substr(0, comma))) out.push_back(*id);
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
    return out;
}

std::string setting_key(const std::string& jid) { return "omemo:encryption:" + jid; }

// The contact a message goes to: OMEMO is per bare JID (sessions are with its devices).
std::string contact_of(const std::string& to) {
    auto jid = Jid::parse(to);
    return jid ? jid.value().bare() : to;
}

}  // namespace

std::string omemo_devices_key(omemo::Version v, const std::string& jid) {
    return (v == omemo::Version::V2 ? "omemo:devices2:" : "omemo:devices:") + jid;
}

std::vector<std::uint32_t> OmemoSession::listed(const std::string& jid, Version v) {
    auto list = store_.kept(omemo_devices_key(v, jid));
    return list ? parse_ids(list.value()) : std::vector<std::uint32_t>{};
}

// The devices of `jid` a message in `v` goes to: listed, with a session, trusted.
std::vector<std::uint32_t> OmemoSession::usable(OmemoCrypto& device, const std::string& jid, Version v) {
    std::vector<std::uint32_t> out;
    for (auto id : listed(jid, v))
        if (id != device.device_id() && device.has_session(jid, id, v) && usable_trust(device.trust(jid, id)))
            out.push_back(id);
    return out;
}

// Issue 14 §1: OMEMO 2 for a contact that announces it (and has a device we can use in
// it), 0.3 otherwise.
OmemoSession::Version OmemoSession::version_for(OmemoCrypto& device, const std::string& contact) {
    return usable(device, contact, Version::V2).empty() ? Version::Legacy : Version::V2;
}

Result<std::optional<bool>> OmemoSession::wanted(const model::Send& s) {
    const std::string contact = contact_of(s.to);
    auto setting = store_.kept(setting_key(contact));
    if (!setting) return setting.error();
    const bool room = s.type == "groupchat" || session_.find_room(s.to) != nullptr;
    if (room) {
        if (setting.value() == "omemo")
            return make_error("feature-not-implemented", "OMEMO in rooms is not supported yet: " + s.to +
                                                             " is set to encryption \"omemo\"; nothing was sent");
        return std::optional<bool>{};  // the account's default is for 1:1 chats
    }
    const std::string account_mode = owner_.encryption();
    const std::string mode = setting.value().empty() ? account_mode : setting.value();
    if (mode == "off") return std::optional<bool>{};
    if (account_mode == "off")
        return make_error("feature-not-implemented",
                          s.to + " is set to encryption \"omemo\" but OMEMO is off for account " + account_ +
                              " (encryption = \"off\" in its configuration); nothing was sent");
    if (mode == "omemo") return std::optional<bool>{true};
    // auto: when either side used OMEMO in this conversation before.
    auto used = store_.kept("omemo:used:" + contact);
    if (!used) return used.error();
    if (used.value().empty()) return std::optional<bool>{};
    return std::optional<bool>{false};
}

void OmemoSession::send(model::Send s, bool required, Respond respond) {
    queue_.push_back({std::move(s), required, std::move(respond)});
    if (queue_.size() == 1) next();
}

void OmemoSession::next() {
    if (queue_.empty()) return;
    const auto& job = queue_.front();
    std::vector<std::string> stale;
    for (const auto& jid : {contact_of(job.send.to), own_.bare()})
        if (!fresh_.count(jid)) stale.push_back(jid);
    if (stale.empty() || !port_.online()) return finish();
    refresh(stale, [this] { finish(); });
}

void OmemoSession::finish() {
    if (queue_.empty()) return;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    OmemoCrypto* device = owner_.crypto();
    const std::string contact = contact_of(job.send.to);
    std::size_t contact_devices = 0;
    if (device)
        for (const auto& r : recipients(contact)) contact_devices += r.first == contact;
    // "auto" with a contact that has devices but none usable (undecided, distrusted):
    // encryption was in use, so it fails as "omemo" would rather than go in clear.
    if (!job.required && device && !listed(contact).empty()) job.required = true;
    model::Reply reply;
    if (contact_devices > 0) {
        // Marked before it is queued: a crash in between leaves a marker for nothing, never
        // an unmarked entry that would go in clear.
        const std::string msg_id = job.send.client_id.empty() ? port_.new_id() : job.send.client_id;
        job.send.client_id = msg_id;
        auto st = store_.keep("omemo:out:" + msg_id, "1");
        if (!st)
            reply = model::Reply::error("internal", "could not store the message: " + st.error().message);
        else
            reply = session_.send(job.send, true);
        if (reply.error_code.empty()) (void)store_.keep("omemo:used:" + contact, "1");
    } else if (job.required) {
        std::string why = !device ? "OMEMO is not available (see the daemon's log)"
                          : !port_.online()
                              ? "account " + account_ + " is offline and no session with a device of " +
                                    job.send.to + " is known yet"
                              : job.send.to +
                                    " has no OMEMO device that can be used (none published, or none trusted: "
                                    "see `stanzactl omemo devices`)";
        reply = model::Reply::error("no-omemo-device", "cannot encrypt to " + job.send.to + ": " + why +
                                                           "; nothing was sent (encryption is on for this contact)");
    } else {
        reply = session_.send(job.send);  // auto, and the contact has no OMEMO device
    }
    std::weak_ptr<int> alive = alive_;
    job.respond(std::move(reply));
    if (!alive.expired()) next();
}

void OmemoSession::refresh(const std::vector<std::string>& jids, std::function<void()> done) {
    // One count per outstanding iq; `done` when the last one answered.
    auto left = std::make_shared<int>(static_cast<int>(jids.size()));
    auto finish = std::make_shared<std::function<void()>>([left, done = std::move(done)] {
        if (--*left == 0) done();
    });
    for (const auto& jid : jids) {
        const std::string to = jid == own_.bare() ? std::string() : jid;
        // Both lists of `jid` (0.3 and 2); once both answered, the bundles of its devices
        // without a session in a version they are listed in.
        auto lists_left = std::make_shared<int>(2);
        for (auto v : kVersions)
            port_.request(
                to, [&](const std::string& id) { return omemo::make_fetch_devices(id, to, v); },
                [this, alive = std::weak_ptr<int>(alive_), jid, v, left, finish, lists_left](const IqReply& r) {
                    if (alive.expired()) return;
                    OmemoCrypto* device = owner_.crypto();
                    // XEP-0384 §5.3.1 (0.3 §4.2): no list (item-not-found) is an empty one.
                    if (device && !r.local() && (r.ok() || r.error.condition == "item-not-found")) {
                        std::vector<std::uint32_t> list;
                        if (r.ok())
                            if (auto item = omemo::parse_pep_item(r.iq); item && item->payload)
                                if (auto parsed = omemo::parse_device_list(item->payload))
                                    list = std::move(parsed).value();
                        fresh_.insert(jid);
                        (void)store_.keep(omemo_devices_key(v, jid), ids_text(list));
                    } else if (device && !r.local()) {
                        log(SessionPort::Level::Info, "cannot read the OMEMO devices (" +
                                                          std::string(omemo::ns_of(v)) + ") of " + jid + ": " +
                                                          r.describe());
                    }
                    if (--*lists_left > 0) return;
                    if (!device || r.local()) return (*finish)();
                    lists_fetched(jid, finish, left);
                });
    }
}

void OmemoSession::lists_fetched(const std::string& jid, const std::shared_ptr<std::function<void()>>& finish,
                                 const std::shared_ptr<int>& left) {
    OmemoCrypto* device = owner_.crypto();
    std::set<std::uint32_t> ids;
    if (device)
        for (auto v : kVersions)
            for (auto id : listed(jid, v))
                if (id != device->device_id() && !device->has_session(jid, id, v)) ids.insert(id);
    for (auto id : ids) {
        ++*left;
        fetch_bundle(jid, id, *finish);
    }
    (*finish)();
}

void OmemoSession::fetch_bundle(const std::string& jid, std::uint32_t id, std::function<void()> done) {
    const std::string to = jid == own_.bare() ? std::string() : jid;
    OmemoCrypto* own = owner_.crypto();
    if (!own) return done();
    // The bundle of each version the device is listed in and we have no session in.
    std::vector<Version> wanted;
    for (auto v : kVersions) {
        auto ids = listed(jid, v);
        if (std::find(ids.begin(), ids.end(), id) != ids.end() && !own->has_session(jid, id, v)) wanted.push_back(v);
    }
    if (wanted.empty()) return done();
    auto left = std::make_shared<std::size_t>(wanted.size());
    auto finish = std::make_shared<std::function<void()>>([left, done = std::move(done)] {
        if (--*left == 0) done();
    });
    for (auto v : wanted)
        port_.request(
            to, [&](const std::string& iq_id) { return omemo::make_fetch_bundle(iq_id, to, v, id); },
            [this, alive = std::weak_ptr<int>(alive_), jid, id, v, finish](const IqReply& r) {
                if (alive.expired()) return;
                bundle_answer(jid, id, v, r);
                (*finish)();
            });
}

void OmemoSession::bundle_answer(const std::string& jid, std::uint32_t id, Version v, const IqReply& r) {
    OmemoCrypto* device = owner_.crypto();
    if (!device) return;
    const std::string where = " (" + std::string(omemo::ns_of(v)) + ") for device " + std::to_string(id) + " of " + jid;
    auto item = r.ok() ? omemo::parse_pep_item(r.iq) : std::nullopt;
    if (!item || !item->payload)
        return log(SessionPort::Level::Info, "no OMEMO bundle" + where + ": " + (r.ok() ? "none published" : r.describe()));
    // 0.3 §4.4 / 2 §4.4 (X3DH): the session, stored at once.
    auto bundle = omemo::parse_bundle(item->payload);
    Status st = bundle ? device->build_session(jid, id, bundle.value(), v) : Status(bundle.error());
    if (st) st = store_.keep(device->pending());
    device->committed(static_cast<bool>(st));
    if (!st)
        log(SessionPort::Level::Info, "no OMEMO session (" + std::string(omemo::ns_of(v)) + ") with device " +
                                          std::to_string(id) + " of " + jid + ": " + st.error().message);
}

std::vector<std::uint32_t> OmemoSession::listed(const std::string& jid) {
    // Every device `jid` announces, in either version.
    std::vector<std::uint32_t> out = listed(jid, Version::Legacy);
    for (auto id : listed(jid, Version::V2))
        if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
    return out;
}

OmemoSession::Recipients OmemoSession::recipients(const std::string& to) {
    // 0.3 §4.5 / 2 §4.5: every device of the contact, and our own other devices (XEP-0280
    // carbons bring them the message), that have a session in the version used for this
    // contact and are trusted (issue 14 §5).
    Recipients out;
    OmemoCrypto* device = owner_.crypto();
    if (!device) return out;
    const Version v = version_for(*device, to);
    for (const auto& jid : {to, own_.bare()})
        for (auto id : usable(*device, jid, v)) out.emplace_back(jid, id);
    return out;
}

bool OmemoSession::encrypted(const std::string& msg_id) {
    auto marker = store_.kept("omemo:out:" + msg_id);
    // A store that cannot say counts as marked: an error then, never clear text.
    bool is_marked = !marker || !marker.value().empty();
    if (is_marked && marker) outbox_.insert(msg_id);  // the marker goes once it is acked
    return is_marked;
}

Result<std::string> OmemoSession::encrypt(const Outgoing& entry, const OutgoingMessage& m) {
    OmemoCrypto* device = owner_.crypto();
    if (!device) return make_error("omemo", "OMEMO is not available (see the daemon's log); not sent in clear");
    const std::string contact = contact_of(entry.to);
    std::vector<OmemoCrypto::Address> to;
    for (auto& [jid, id] : recipients(contact)) to.push_back({jid, id});
    auto e = device->encrypt(entry.body, to, version_for(*device, contact));
    std::size_t for_contact = 0;
    if (e)
        for (const auto& k : e.value().keys)
            for (const auto& a : to)
                if (a.device == k.rid && a.jid == contact) ++for_contact;
    if (!e || for_contact == 0) {
        device->committed(false);
        return make_error("omemo", "cannot encrypt to " + entry.to + ": " +
                                       (e ? "no usable OMEMO device" : e.error().message) + "; not sent in clear");
    }
    // The ratchets' steps are stored before the stanza leaves.
    auto st = store_.keep(device->pending());
    device->committed(static_cast<bool>(st));
    if (!st) return make_error("omemo", "cannot store the OMEMO sessions: " + st.error().message);
    // 0.3 §4.5 / 2 §4.4: the fallback <body/>, the <encrypted/> element, XEP-0380 and
    // XEP-0334 hints.
    return omemo::make_encrypted_message(m, e.value());
}

model::Reply OmemoSession::set_encryption(const model::SetEncryption& c) {
    if (!c.mode.empty()) {
        auto st = store_.keep(setting_key(c.jid), c.mode == "default" ? "" : c.mode);
        if (!st) return model::Reply::error("internal", st.error().message);
    }
    auto setting = store_.kept(setting_key(c.jid));
    if (!setting) return model::Reply::error("internal", setting.error().message);
    model::Reply reply;
    reply.encryption = setting.value().empty() ? "default" : setting.value();
    reply.encryption_default = owner_.encryption();
    return reply;
}

model::Reply OmemoSession::trust(const model::OmemoTrust& c) {
    OmemoCrypto* device = owner_.crypto();
    if (!device) return model::Reply::error("feature-not-implemented", "OMEMO is off for account " + account_);
    auto st = device->set_trust(c.jid, c.device, c.trusted);
    if (st) st = store_.keep(device->pending());
    device->committed(static_cast<bool>(st));
    if (!st)
        return model::Reply::error(st.error().code == "item-not-found" ? "item-not-found" : "internal",
                                   st.error().message);
    log(SessionPort::Level::Info, "OMEMO device " + std::to_string(c.device) + " of " + c.jid + " is now " +
                                      (c.trusted ? "trusted" : "distrusted"));
    return {};
}

void OmemoSession::devices(const model::OmemoDevices& c, Respond respond) {
    if (!owner_.crypto())
        return respond(model::Reply::error("feature-not-implemented", "OMEMO is off for account " + account_));
    std::vector<std::string> jids{own_.bare()};
    if (!c.jid.empty() && c.jid != own_.bare()) jids.push_back(c.jid);
    auto answer = [this, alive = std::weak_ptr<int>(alive_), name = account_, jids, respond] {
        OmemoCrypto* d = alive.expired() ? nullptr : owner_.crypto();
        if (!d) return respond(model::Reply::error("feature-not-implemented", "OMEMO is off for account " + name));
        model::Reply reply;
        reply.omemo_devices.push_back({own_.bare(), d->device_id(), d->fingerprint(), "own", true});
        for (const auto& jid : jids) {
            auto on_list = listed(jid);
            auto known = d->known_devices(jid);
            if (!known) return respond(model::Reply::error("internal", known.error().message));
            for (const auto& k : known.value())
                reply.omemo_devices.push_back({jid, k.device, k.fingerprint, k.trust,
                                               std::find(on_list.begin(), on_list.end(), k.device) != on_list.end()});
        }
        respond(std::move(reply));
    };
    // Online: the lists and bundles as they are now (a session built with each new device,
    // whose identity key and fingerprint we then know).
    if (!port_.online()) return answer();
    refresh(jids, answer);
}

void OmemoSession::abandon(const std::string& why) {
    auto queue = std::exchange(queue_, {});
    alive_ = std::make_shared<int>(0);  // what the first one waited for no longer matters
    for (auto& job : queue)
        if (job.respond) job.respond(model::Reply::error("internal", "message not sent: " + why + "; send it again"));
}

}  // namespace xmpp::im
