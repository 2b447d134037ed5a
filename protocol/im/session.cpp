#include "protocol/im/session.hpp"

#include <chrono>
#include <cstdlib>

#include "protocol/base/rfc3339.hpp"
#include "protocol/im/inbound.hpp"
#include "protocol/stream.hpp"

namespace xmpp::im {
namespace {

// XEP-0203: a delayed message keeps its original time, in our one format ("" when none).
std::string delay_stamp(const ReceivedMessage& m, bool& delayed) {
    auto when = parse_datetime(m.delay_stamp);
    if (!when) return {};
    delayed = true;
    return rfc3339(std::chrono::system_clock::time_point(std::chrono::milliseconds(*when)));
}

// Before set_encryption(): nothing is marked to go encrypted, and an <encrypted/> received
// is shown as such, never with its fallback body (XEP-0384 §4.5).
class Unencrypted final : public Encryption {
public:
    std::optional<std::vector<KeptWrite>> decrypt(const ReceivedMessage&, model::Message& msg,
                                                  const std::string&) override {
        msg.encryption = "omemo";
        msg.body.clear();
        msg.error = "OMEMO is not available for this account";
        return std::nullopt;
    }
    void decrypted(bool) override {}
    void key_transport(const ReceivedMessage&) override {}
    bool encrypted(const std::string&) override { return false; }
    Result<std::string> encrypt(const Outgoing&, const OutgoingMessage&) override {
        return make_error("internal-server-error", "no end-to-end encryption for this account");
    }
    void finished(const std::string&) override {}
    void online() override {}
    bool event(pugi::xml_node) override { return false; }
};

Unencrypted unencrypted;

}  // namespace

AccountSession::AccountSession(std::string account, Jid own, SessionStore& store, SessionPort& port)
    : account_(std::move(account)), own_(std::move(own)), store_(store), port_(port), encryption_(&unencrypted) {}

void AccountSession::log(SessionPort::Level level, const std::string& text) {
    port_.log(level, "account " + account_ + ": " + text);
}

// --- The stream ---

void AccountSession::started(bool resumed, bool restored, bool roster_versioning) {
    // A new session: the roster (and its version) and presences from the start.
    if (!resumed) contacts_online(roster_versioning);
    // After a daemon restart the resumed session is in its rooms, but we no longer know who
    // is there: joining again brings the occupant list (Prosody answers as to a rejoin).
    rooms_online(resumed && !restored);
    if (!resumed || restored) encryption_->online();  // a restarted daemon checks its device again
    // XEP-0191 §3.2: the server pushes block list changes only to clients that asked for it.
    if (!resumed)
        port_.request({}, [](const std::string& id) { return make_blocklist_get(id); }, [](const IqReply&) {});
    // The outbox: what was accepted, and after a gap what was sent but never acknowledged.
    online(resumed, restored);
    // XEP-0313: whatever came while we were away, after the last archive id up to which we
    // have everything, or else since this account first came online here. A resumed
    // session has no gap, unless an earlier catch-up was cut off, or we were restarted.
    if (resumed && !restored && !gap_open()) return;
    if (const auto& caps = port_.capabilities(); caps.known && !caps.archive) return;  // XEP-0313 §7: not offered
    catch_up(port_.wall_clock());
}

void AccountSession::received(pugi::xml_node stanza) {
    if (is(stanza, ns_client, "presence")) {
        if (auto mp = parse_muc_presence(stanza); mp && room_presence(*mp)) return;
        return presence(stanza);
    }
    if (!is(stanza, ns_client, "message")) return;
    if (carbon(stanza)) return;  // XEP-0280
    if (child(stanza, ns_mam, "result")) return archive_result(stanza);
    if (encryption_->event(stanza)) return;
    if (auto invite = parse_invite(stanza))
        return publish(model::Invite{invite->room, invite->from, invite->reason, invite->password, invite->direct});
    if (auto m = parse_message(stanza, own_)) message(*m);
}

// --- Sending ---

model::Reply AccountSession::send(const model::Send& s, bool encrypted) {
    if (auto size = xml_escape(s.body).size(); size > kMaxBodyXml)
        return model::Reply::error("bad-request", "the body is " + std::to_string(size) +
                                                      " bytes as XML (<, > and & count 4 or 5); at most " +
                                                      std::to_string(kMaxBodyXml) + " go in one message: split it");
    if (!s.replace.empty()) {
        // XEP-0308 §4: only our own last messages, to the same conversation.
        auto original = store_.outgoing(s.replace);
        if (!original || original->to != s.to)
            return model::Reply::error("bad-request", "'replace': no message '" + s.replace + "' sent to " + s.to +
                                                          " on " + s.account);
    }
    Outgoing entry;
    entry.msg_id = s.client_id.empty() ? port_.new_id() : s.client_id;
    entry.to = s.to;
    entry.type = !s.type.empty() ? s.type : find_room(s.to) ? "groupchat" : "chat";
    entry.body = s.body;
    entry.state = std::string(to_string(Delivery::Accepted));
    entry.replace_id = s.replace;
    model::Message m;
    m.from = own_.bare();
    m.to = s.to;
    m.type = entry.type;
    m.body = s.body;
    m.msg_id = entry.msg_id;
    m.outgoing = true;
    m.replaces = s.replace;
    if (encrypted) m.encryption = "omemo";
    std::vector<model::Event> events{{0, account_, {}, std::move(m)},
                                     {0, account_, {}, model::MessageState{entry.msg_id, Delivery::Accepted, ""}}};
    // Online, the stanza is made before the row, so that the row is written once, as
    // "sent", with the events of both states (issue 15: one UPDATE fewer per message). An
    // encrypted message is encrypted at its transmit, after its row is stored.
    std::string xml;
    // Only a front end's client_id can be marked to go encrypted already (a retry of an
    // encrypted send whose row did not make it): an id new_id() just made was never given,
    // and is not looked up (issue 15: a store read per message).
    if (!encrypted && port_.online() && (s.client_id.empty() || !encryption_->encrypted(entry.msg_id))) {
        xml = make_message(outgoing_message(entry));
        entry.state = std::string(to_string(Delivery::Sent));
        events.push_back({0, account_, {}, model::MessageState{entry.msg_id, Delivery::Sent, ""}});
    }
    auto inserted = store_.enqueue(entry, events);
    if (!inserted) return model::Reply::error("internal", "could not store the message: " + inserted.error().message);
    model::Reply reply;
    reply.msg_id = entry.msg_id;
    if (!inserted.value()) {
        reply.duplicate = true;
        return reply;
    }
    for (const auto& e : events) port_.deliver(e);
    if (xml.empty()) {
        if (port_.online()) transmit(entry);
        return reply;
    }
    attempts_[entry.msg_id] = {1, port_.session(), Delivery::Sent};
    if (!port_.send(xml, entry.msg_id)) {
        // Not while online() holds (the same condition, and nothing between changes it).
        // Should it happen, the row says "sent" for a stanza no stream took, and states never
        // move back: the next session sends it, even a resumed one (online()).
        attempts_[entry.msg_id].session = 0;
        log(SessionPort::Level::Error, "message " + entry.msg_id + " was stored as sent but no stream took it; "
                                       "it goes with the next session");
    }
    return reply;
}

OutgoingMessage AccountSession::outgoing_message(const Outgoing& entry) {
    OutgoingMessage m;
    m.to = entry.to;
    m.type = entry.type;
    m.body = entry.body;
    m.id = entry.msg_id;
    m.replace_id = entry.replace_id;
    // XEP-0333 §4.1: <markable/> asks the contact's client to tell when it was read; we ask
    // only when the user tells contacts the same (chat_markers). A marker that comes anyway
    // still counts.
    m.markable = port_.chat_markers();
    // XEP-0085 §5.1: no <active/> to a contact who replied without chat states.
    if (auto to = Jid::parse(entry.to); to && !chat_states_.wanted(to.value().bare())) m.chat_state.clear();
    return m;
}

model::Reply AccountSession::cancel(const std::string& msg_id) {
    auto entry = store_.outgoing(msg_id);
    if (!entry)
        return model::Reply::error("item-not-found", "no message '" + msg_id + "' sent from account " + account_);
    if (entry->state != to_string(Delivery::Accepted))
        return model::Reply::error("too-late", "message '" + msg_id + "' is " + entry->state +
                                                   ": it has left stanzad and cannot be taken back");
    advance(msg_id, Delivery::Failed, "cancelled");
    return {};
}

void AccountSession::online(bool resumed, bool restored) {
    auto pending = store_.pending();
    if (!pending) return log(SessionPort::Level::Error, "cannot read the outbox: " + pending.error().message);
    // Resumed: the stream itself resent what the server had not acknowledged. New session:
    // what was sent but never acknowledged (by XEP-0198, or by a ping without it, issue 18)
    // goes again with its origin-id, so receivers can drop a copy; but not what a front end
    // sent while this session was starting (after bind, before the disco#info answers): that
    // went out on this very stream, and its acknowledgement is still to come. And on any
    // session, what was stored as sent but no stream took (AccountSession::send).
    const unsigned long session = port_.session();
    for (const auto& entry : pending.value()) {
        auto it = attempts_.find(entry.msg_id);
        const bool went_here = it != attempts_.end() && it->second.session == session;
        const bool went_nowhere = it != attempts_.end() && it->second.session == 0;
        if (entry.state == to_string(Delivery::Accepted) ||
            (entry.state == to_string(Delivery::Sent) && !went_here && (!resumed || restored || went_nowhere)))
            transmit(entry);
    }
}

void AccountSession::acked(const std::vector<std::string>& msg_ids) {
    for (const auto& id : msg_ids) advance(id, Delivery::Acked);
}

void AccountSession::advance(const std::string& msg_id, Delivery next, const std::string& error,
                             const std::string& from) {
    // An acknowledgement (no `from`: only a reporter's check reads the recipient) of a
    // message in flight: its state is known without the outbox.
    if (auto it = attempts_.find(msg_id); from.empty() && it != attempts_.end() && it->second.state) {
        Outgoing entry;
        entry.msg_id = msg_id;
        entry.state = std::string(to_string(*it->second.state));
        return advance(entry, next, error, from);
    }
    if (auto entry = store_.outgoing(msg_id)) advance(*entry, next, error, from);
}

void AccountSession::advance(const Outgoing& entry, Delivery next, const std::string& error, const std::string& from) {
    const std::string& msg_id = entry.msg_id;
    auto current = parse_delivery(entry.state);
    if (!current || !may_advance(*current, next)) return;
    const std::string state(to_string(next));
    if (!from.empty() && !may_report(from, entry.to, own_.domain())) {
        log(SessionPort::Level::Warn,
            "ignored a " + state + " for message " + msg_id + " from " + from + ", not its recipient");
        return;
    }
    if (next != Delivery::Sent) {
        attempts_.erase(msg_id);  // acked or beyond, or failed
        encryption_->finished(msg_id);
    }
    model::Event event{0, account_, {}, model::MessageState{msg_id, next, error}};
    if (auto st = store_.set_state(msg_id, next, error, event); !st)
        return log(SessionPort::Level::Error,
                   "cannot record message " + msg_id + " as " + state + ": " + st.error().message);
    if (auto it = attempts_.find(msg_id); it != attempts_.end()) it->second.state = next;  // Sent: still in flight
    port_.deliver(event);
}

void AccountSession::transmit(const Outgoing& entry) {
    // A message that went out on this many sessions without an acknowledgement is one the
    // server will not take (a stream error each time, say, for a stanza it finds too large).
    Attempts& tried = attempts_[entry.msg_id];
    tried.state = parse_delivery(entry.state);
    if (++tried.count > kMaxAttempts)
        return advance(entry, Delivery::Failed,
                       "the server did not accept it on " + std::to_string(kMaxAttempts) +
                           " connections in a row; not sending it again");
    tried.session = port_.session();
    const OutgoingMessage m = outgoing_message(entry);
    std::string xml;
    if (encryption_->encrypted(entry.msg_id)) {
        // XEP-0384: encrypted afresh at each transmit, never in clear.
        auto encrypted = encryption_->encrypt(entry, m);
        if (!encrypted) return advance(entry, Delivery::Failed, encrypted.error().message);
        xml = std::move(encrypted).value();
    } else {
        xml = make_message(m);
    }
    if (!port_.send(xml, entry.msg_id)) return;
    if (entry.state == to_string(Delivery::Accepted)) advance(entry, Delivery::Sent);
}

// --- Receiving ---

bool AccountSession::carbon(pugi::xml_node stanza) {
    auto c = parse_carbon(stanza, own_);
    if (!c) return false;
    // XEP-0280 §11: only our own account may send us carbons.
    if (c->forged) {
        log(SessionPort::Level::Warn, std::string("dropped a forged carbon from ") + stanza.attribute("from").value());
        return true;
    }
    if (auto m = c->message ? parse_message(c->message, own_) : std::nullopt) message(*m, c->direction);
    return true;
}

void AccountSession::message(const ReceivedMessage& m, const std::string& carbon) {
    if (m.type == "error") {
        // An error about a message we sent: the same id comes back (RFC 6120 §8.3.1).
        if (carbon.empty()) advance(m.id, Delivery::Failed, m.error, m.from);
        return;
    }
    if (carbon.empty()) {
        if (!m.receipt_for.empty()) advance(m.receipt_for, Delivery::Delivered, {}, m.from);   // XEP-0184
        if (!m.displayed_id.empty()) advance(m.displayed_id, Delivery::Displayed, {}, m.from);  // XEP-0333
    }
    if (carbon.empty() && m.type != "groupchat")
        if (auto from = Jid::parse(m.from)) chat_states_.received(from.value().bare(), !m.body.empty(), m.chat_state);
    if (carbon.empty() && m.type == "groupchat" && room_message(m)) return;
    // XEP-0384 (0.3) §4.6: an OMEMO message without payload (key transport, heartbeat)
    // moves the session on and is not shown.
    if (m.omemo && !m.omemo->payload) encryption_->key_transport(m);
    if (!m.has_content()) {
        // XEP-0085: typing notifications are for live front ends only.
        if (!m.chat_state.empty() && carbon.empty()) port_.transient(model::ChatState{m.from, m.to, m.chat_state});
        return;
    }
    incoming(m, false, carbon);
    if (carbon.empty()) maybe_receipt(m);
}

model::Event AccountSession::own_echo(const ReceivedMessage& m, const std::string& room) const {
    model::Message msg;
    msg.from = own_.bare();
    msg.to = room.empty() ? m.to : room;
    msg.type = m.type;
    msg.body = m.body;
    msg.msg_id = m.origin_id;
    msg.outgoing = true;
    msg.replaces = m.replace_id;
    std::string stamp = delay_stamp(m, msg.delayed);
    return model::Event{0, account_, std::move(stamp), std::move(msg)};
}

bool AccountSession::incoming(const ReceivedMessage& m, bool from_archive, const std::string& carbon,
                              const std::string& room, model::Event* out) {
    const std::string own = own_.bare();
    auto id = identify(m, {own, room, carbon, from_archive, port_.chat_markers()});
    bool outgoing = id.outgoing;
    if ((outgoing || !room.empty()) && !m.origin_id.empty() && store_.outgoing(m.origin_id)) {
        // Ours, sent through this daemon: its event is the outgoing message we stored.
        if (out) *out = own_echo(m, room);
        return false;
    }
    // Live messages move the archive position only while no gap is open: one that arrives
    // during a catch-up is newer than what the catch-up still has to bring.
    if (!from_archive && room.empty() && !id.stanza_id.empty() && !gap_open()) keep_position(id.stanza_id);
    model::Message msg;
    msg.from = outgoing ? (carbon == "sent" ? m.from : own) : m.from;
    msg.to = m.to;
    msg.type = m.type;
    msg.body = m.body;
    msg.msg_id = id.msg_id;
    msg.outgoing = outgoing;
    msg.carbon = carbon;
    msg.history = out != nullptr;
    if (!m.replace_id.empty()) msg.replaces = resolve_replace(id.sender, m.replace_id);
    std::string stamp = delay_stamp(m, msg.delayed);
    // One event per message, however often the server hands it over (im::identify).
    std::optional<model::Event> seen = id.by_msg_id ? stored_copy(msg, id) : std::nullopt;
    bool known = seen.has_value();
    // A live message in clear with one key: append_once below finds the key taken itself
    // and stores nothing, so it is not looked up first (issue 15: a read per incoming
    // message). The history path wants the stored event, an encrypted message must not be
    // decrypted twice (its message key is spent), and a second key is checked only here.
    const bool look_up = out != nullptr || m.encrypted() || id.keys.size() > 1;
    for (std::size_t i = 0; !known && look_up && i < id.keys.size(); ++i)
        if (auto value = store_.inbound(id.keys[i])) {  // the seq of the event, as text
            known = true;
            if (out) seen = store_.event(std::strtoll(value->c_str(), nullptr, 10));
        }
    if (known) {
        if (out && seen) *out = std::move(*seen);
        return false;
    }
    // XEP-0384: decrypted here, after the duplicate check (a message seen before is not
    // decrypted again: its message key is spent) and before the store: the plaintext and
    // the session state it moved are committed in one transaction.
    std::optional<std::vector<KeptWrite>> writes;
    if (m.encrypted()) writes = encryption_->decrypt(m, msg, room);
    model::Event event{0, account_, std::move(stamp), std::move(msg)};
    if (id.keys.empty() && !id.by_msg_id) {
        auto st = store_.append(event);
        if (!st) log(SessionPort::Level::Error, "cannot store a message: " + st.error().message);
        if (writes) encryption_->decrypted(st && store_.keep(*writes));
        if (out) *out = event;
        else port_.deliver(event);
        return true;
    }
    auto stored = store_.append_once(event, id.keys.empty() ? std::string() : id.keys.front(), id.aliases,
                                     writes ? *writes : std::vector<KeptWrite>{});
    if (writes) encryption_->decrypted(stored && stored.value());
    if (!stored) {
        log(SessionPort::Level::Error, "cannot store a message: " + stored.error().message);
        if (!out) port_.deliver(event);
        return true;
    }
    if (out) *out = event;
    else if (stored.value()) port_.deliver(event);
    return stored.value();
}

std::optional<model::Event> AccountSession::stored_copy(const model::Message& msg, const InboundIdentity& id) {
    auto found = store_.message_seq(id.conversation, id.msg_id);
    if (!found) {
        // Not known to be new, nor seen: it is stored (a copy may show twice, none is lost).
        log(SessionPort::Level::Error, "cannot look up message " + id.msg_id + ": " + found.error().message);
        return std::nullopt;
    }
    if (!found.value()) return std::nullopt;
    auto event = store_.event(*found.value());
    const auto* stored = event ? std::get_if<model::Message>(&event->body) : nullptr;
    if (!stored) return std::nullopt;
    // Other messages of the conversation have msg_ids of other origins: ours (a front end's
    // client_id), a sender's id or origin-id where the server gave no stanza-id, a room's
    // archive id where this is a private message in the same room. Only a copy is the same
    // message: the same direction and type, from the same occupant in a room, not one we
    // sent, and not one whose msg_id its sender chose (kept under that id's key).
    if (stored->outgoing != msg.outgoing || stored->type != msg.type) return std::nullopt;
    if (msg.type == "groupchat" && !msg.outgoing && stored->from != msg.from) return std::nullopt;
    if (stored->outgoing && store_.outgoing(stored->msg_id)) return std::nullopt;
    const std::string seq = std::to_string(event->seq);
    for (const char* kind : {"oid", "id"})
        if (store_.inbound(sender_key(kind, id.sender, id.msg_id)) == seq) return std::nullopt;
    return event;
}

std::string AccountSession::resolve_replace(const std::string& sender, const std::string& replace_id) {
    // Ours: the msg_id is the id we gave it.
    if (sender == own_.bare() && store_.outgoing(replace_id)) return replace_id;
    for (const char* kind : {"id", "oid"}) {
        auto seq = store_.inbound(sender_key(kind, sender, replace_id));
        if (!seq) continue;
        if (auto event = store_.event(std::strtoll(seq->c_str(), nullptr, 10)))
            if (auto* msg = std::get_if<model::Message>(&event->body)) return msg->msg_id;
    }
    return replace_id;
}

void AccountSession::maybe_receipt(const ReceivedMessage& m) {
    // XEP-0184 §8: receipts only to contacts who see our presence anyway (no presence leak),
    // never in rooms (nor to their occupants), never for our own archive or carbons.
    if (!m.receipt_requested || m.id.empty() || m.type == "groupchat" || m.type == "error") return;
    auto from = Jid::parse(m.from);
    if (!from) return;
    const std::string bare = from.value().bare();
    if (find_room(bare) || !sees_our_presence(bare)) return;
    port_.send(make_receipt(m.from, m.id, port_.new_id()), {});
}

}  // namespace xmpp::im
