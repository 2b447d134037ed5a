#include "daemon/hub.hpp"

#include <openssl/rand.h>

#include <cstdlib>

#include "daemon/account.hpp"
#include "daemon/hub_detail.hpp"
#include "daemon/log.hpp"
#include "daemon/omemo.hpp"
#include "protocol/base/rfc3339.hpp"
#include "protocol/im/delivery.hpp"
#include "protocol/im/inbound.hpp"

namespace stanzad {
namespace {

const std::string empty_string;

constexpr std::size_t kMaxBodyXml = 65'536;
constexpr int kMaxAttempts = 5;

}  // namespace

bool normalize_stamp(std::string& stamp) {
    if (stamp.empty()) return true;
    auto ms = xmpp::parse_datetime(stamp);
    if (!ms) return false;
    stamp = xmpp::rfc3339(std::chrono::system_clock::time_point(std::chrono::milliseconds(*ms)));
    return true;
}

model::Reply failure_reply(const IqReply& r, const std::string& account) {
    switch (r.outcome) {
    case IqReply::Outcome::Timeout:
        return model::Reply::error("timeout", "the server did not answer within 30 seconds");
    case IqReply::Outcome::NotOnline:
        return model::Reply::error("not-online", "account " + account + " is not online");
    case IqReply::Outcome::Disconnected:
        return model::Reply::error("not-online", "account " + account + ": the connection ended before the answer");
    case IqReply::Outcome::Result:
    case IqReply::Outcome::Remote:
        break;
    }
    return model::Reply::error("refused", r.error.describe());
}

std::string make_uuid() {
    unsigned char b[16];
    RAND_bytes(b, sizeof b);
    b[6] = (b[6] & 0x0F) | 0x40;  // RFC 9562 §5.4: version 4
    b[8] = (b[8] & 0x3F) | 0x80;  // variant 10
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += hex[b[i] >> 4];
        out += hex[b[i] & 15];
    }
    return out;
}

Hub::Hub(Store& store, FindAccount find, ListAccounts list, uv_loop_t* loop, std::chrono::seconds self_ping)
    : store_(store), find_(std::move(find)), list_(std::move(list)), timer_(loop), self_ping_(self_ping) {
    timer_->data = this;
    uv_timer_start(timer_.get(), [](uv_timer_t* t) { static_cast<Hub*>(t->data)->tick(); }, 1000, 1000);
    uv_unref(reinterpret_cast<uv_handle_t*>(timer_.get()));  // never what keeps the loop alive
}

Hub::~Hub() = default;

void Hub::deliver(const model::Event& event) {
    for (const auto& sink : sinks_) sink(event);
}

void Hub::publish(const std::string& account, model::EventBody body, std::string stamp) {
    model::Event event{0, account, std::move(stamp), std::move(body)};
    if (auto st = store_.append(event); !st)
        // Front ends still hear of it; only a later replay will miss it.
        logs::daemon().error("stanzad: cannot store a {} event: {}", model::event_name(event.body), st.error().message);
    deliver(event);
}

void Hub::transient(const std::string& account, model::EventBody body) {
    deliver(model::Event{0, account, xmpp::rfc3339(std::chrono::system_clock::now()), std::move(body)});
}

void Hub::account_state(Account& account) {
    publish(account.name(), model::AccountState{to_string(account.state()), account.reason(), account.bound_jid()});
}

void Hub::save_checkpoint(Account& account, const std::optional<xmpp::SmCheckpoint>& cp) {
    std::string value = cp ? cp->id + "\n" + cp->location + "\n" + cp->jid + "\n" + std::to_string(cp->inbound) : "";
    if (auto st = store_.set_meta(account.name(), "sm", value); !st)
        logs::daemon().warn("account {}: cannot keep the stream management state: {}", account.name(),
                            st.error().message);
}

std::optional<xmpp::SmCheckpoint> Hub::load_checkpoint(const std::string& account) {
    auto value = store_.meta(account, "sm");
    if (!value || value.value().empty()) return std::nullopt;
    std::vector<std::string> parts;
    std::string_view rest = value.value();
    for (std::size_t nl; (nl = rest.find('\n')) != std::string_view::npos; rest.remove_prefix(nl + 1))
        parts.emplace_back(rest.substr(0, nl));
    parts.emplace_back(rest);
    if (parts.size() != 4 || parts[0].empty()) return std::nullopt;
    return xmpp::SmCheckpoint{parts[0], parts[1], parts[2], static_cast<std::uint32_t>(std::strtoul(parts[3].c_str(), nullptr, 10))};
}

void Hub::save_fast_token(Account& account, const std::optional<xmpp::sasl::FastToken>& token) {
    std::string value = token ? token->mechanism + "\n" + token->secret + "\n" + token->expiry : "";
    if (auto st = store_.set_meta(account.name(), "fast", value); !st)
        logs::daemon().warn("account {}: cannot keep the FAST token: {}", account.name(), st.error().message);
}

std::optional<xmpp::sasl::FastToken> Hub::load_fast_token(const std::string& account) {
    auto value = store_.meta(account, "fast");
    if (!value) return std::nullopt;
    std::string_view v = value.value();
    auto first = v.find('\n'), second = v.find('\n', first == v.npos ? v.npos : first + 1);
    if (second == v.npos || first == 0 || second == first + 1) return std::nullopt;
    return xmpp::sasl::FastToken{std::string(v.substr(0, first)), std::string(v.substr(first + 1, second - first - 1)),
                                 std::string(v.substr(second + 1))};
}

std::string Hub::user_agent_id(const std::string& account) {
    if (auto kept = store_.meta(account, "user_agent"); kept && kept.value().size() == 36) return kept.value();
    std::string id = make_uuid();
    if (auto st = store_.set_meta(account, "user_agent", id); !st) return {};  // unstable ids are worse than none
    return id;
}

void Hub::online(Account& account, bool resumed, bool /*stream_management*/, bool restored) {
    if (!resumed) presences_.erase(account.name());  // a new session: the server sends them all again
    if (!resumed) {
        // RFC 6121 §2.1.3, with §2.6.3 versioning when the server offers it and we still
        // have the roster that goes with the version.
        load_roster_cache(account);
        auto ver = account.roster_state().request_version(account.roster_versioning());
        std::string name = account.name();
        account.request({}, [&](const std::string& id) { return xmpp::make_roster_get(id, ver); },
                        [this, name](const IqReply& r) {
                            Account* a = find_(name);
                            if (!a) return;
                            if (!r.ok()) {
                                logs::daemon().warn("account {}: roster request failed: {}", name, r.describe());
                                return;
                            }
                            auto query = xmpp::child(r.iq, xmpp::ns_roster, "query");
                            if (!query) {
                                logs::daemon().info("account {}: roster unchanged since the last login", name);
                                return;  // §2.6.3: pushes bring the changes, if any
                            }
                            roster(*a, xmpp::parse_roster(query), false, xmpp::roster_version(query));
                        });
    }
    // After a daemon restart the resumed session is in its rooms, but we no longer know who
    // is there: joining again brings the occupant list (Prosody answers as to a rejoin).
    rooms_online(account, resumed && !restored);
    if (!resumed || restored) omemo_online(account);  // a restarted daemon checks its device again
    // XEP-0191 §3.2: the server pushes block list changes only to clients that asked for it.
    if (!resumed)
        account.request({}, [](const std::string& id) { return xmpp::make_blocklist_get(id); }, [](const IqReply&) {});
    auto pending = store_.pending(account.name());
    if (!pending) {
        logs::daemon().error("account {}: cannot read the outbox: {}", account.name(), pending.error().message);
        return;
    }
    // Resumed: the stream itself resent what the server had not acknowledged. New session:
    // what was sent but never acknowledged (by XEP-0198, or by a ping without it, issue 18)
    // goes again with its origin-id, so receivers can drop a copy; but not what a front end
    // sent while this session was starting (after bind, before the disco#info answers): that
    // went out on this very stream, and its acknowledgement is still to come.
    const auto& tried = attempts_[account.name()];
    auto sent_on_this_session = [&](const std::string& msg_id) {
        auto it = tried.find(msg_id);
        return it != tried.end() && it->second.session == account.session();
    };
    for (const auto& entry : pending.value())
        if (entry.state == "accepted" ||
            ((!resumed || restored) && entry.state == "sent" && !sent_on_this_session(entry.msg_id)))
            transmit(account, entry);
    // XEP-0313: whatever came while we were away, after the last archive id up to which we
    // have everything, or else since this account first came online here. A resumed
    // session has no gap, unless an earlier catch-up was cut off, or we were restarted.
    if (resumed && !restored && !own_gap_open(account.name())) return;
    if (account.capabilities().known && !account.capabilities().archive) return;  // XEP-0313 §7: not offered
    auto last = store_.meta(account.name(), "mam_last");
    if (!last) {
        logs::daemon().error("account {}: cannot read the archive position: {}", account.name(), last.error().message);
        return;
    }
    catch_up(account, last.value());
}

void Hub::acked(Account& account, const std::vector<std::string>& msg_ids) {
    for (const auto& id : msg_ids) advance(account, id, xmpp::im::Delivery::Acked);
}

void Hub::advance(Account& account, const std::string& msg_id, xmpp::im::Delivery next, const std::string& error,
                  const std::string& from) {
    auto entry = store_.find(account.name(), msg_id);
    if (!entry) return;
    auto current = xmpp::im::parse_delivery(entry.value().state);
    if (!current || !xmpp::im::may_advance(*current, next)) return;
    const std::string state(xmpp::im::to_string(next));
    if (!from.empty() && !xmpp::im::may_report(from, entry.value().to, account.config().jid.domain())) {
        logs::daemon().warn("account {}: ignored a {} for message {} from {}, not its recipient", account.name(), state,
                            msg_id, from);
        return;
    }
    if (next != xmpp::im::Delivery::Sent) {
        attempts_[account.name()].erase(msg_id);  // acked or beyond, or failed
        // Never transmitted again: its OMEMO marker (hub_omemo_send.cpp) can go.
        if (omemo_outbox_[account.name()].erase(msg_id))
            (void)store_.set_metas(account.name(), {{"omemo:out:" + msg_id, std::nullopt}});
    }
    model::Event event{0, account.name(), {}, model::MessageState{msg_id, state, error}};
    if (auto st = store_.set_state(account.name(), msg_id, state, error, event); !st) {
        logs::daemon().error("account {}: cannot record message {} as {}: {}", account.name(), msg_id, state,
                             st.error().message);
        return;
    }
    deliver(event);
}

void Hub::transmit(Account& account, const OutboxEntry& entry) {
    // A message that went out on this many sessions without an acknowledgement is one the
    // server will not take (a stream error each time, say, for a stanza it finds too large).
    Attempts& tried = attempts_[account.name()][entry.msg_id];
    if (++tried.count > kMaxAttempts) {
        advance(account, entry.msg_id, xmpp::im::Delivery::Failed,
                "the server did not accept it on " + std::to_string(kMaxAttempts) +
                    " connections in a row; not sending it again");
        return;
    }
    tried.session = account.session();
    xmpp::OutgoingMessage m;
    m.to = entry.to;
    m.type = entry.type;
    m.body = entry.body;
    m.id = entry.msg_id;
    m.replace_id = entry.replace_id;
    // XEP-0085 §5.1: no <active/> to a contact who replied without chat states.
    if (auto to = xmpp::Jid::parse(entry.to); to && !chat_states_[account.name()].wanted(to.value().bare()))
        m.chat_state.clear();
    std::string xml;
    if (omemo_marked(account.name(), entry.msg_id)) {
        // XEP-0384: encrypted afresh at each transmit (hub_omemo_send.cpp), never in clear.
        auto encrypted = omemo_message(account, entry, m);
        if (!encrypted) {
            advance(account, entry.msg_id, xmpp::im::Delivery::Failed, encrypted.error().message);
            return;
        }
        xml = std::move(encrypted).value();
    } else {
        xml = xmpp::make_message(m);
    }
    if (!account.send(xml, entry.msg_id)) return;
    if (entry.state == "accepted") advance(account, entry.msg_id, xmpp::im::Delivery::Sent);
}

bool Hub::incoming(Account& account, const xmpp::ReceivedMessage& m, bool from_archive, const std::string& carbon,
                   const std::string& room, model::Event* out) {
    const std::string own = account.config().jid.bare();
    auto id = xmpp::im::identify(m, {own, room, carbon, from_archive});
    bool outgoing = id.outgoing;
    if ((outgoing || !room.empty()) && !m.origin_id.empty() && store_.find(account.name(), m.origin_id)) {
        outgoing = true;
        // Ours, sent through this daemon: its event is the outgoing message we stored.
        if (out) {
            model::Message msg;
            msg.from = own;
            msg.to = room.empty() ? m.to : room;
            msg.type = m.type;
            msg.body = m.body;
            msg.msg_id = m.origin_id;
            msg.outgoing = true;
            msg.replaces = m.replace_id;
            std::string stamp;
            if (auto when = xmpp::parse_datetime(m.delay_stamp)) {
                msg.delayed = true;
                stamp = xmpp::rfc3339(std::chrono::system_clock::time_point(std::chrono::milliseconds(*when)));
            }
            *out = model::Event{0, account.name(), std::move(stamp), std::move(msg)};
        }
        return false;
    }
    // Live messages move the archive position only while no gap is open: one that arrives
    // during a catch-up is newer than what the catch-up still has to bring.
    if (!from_archive && room.empty() && !id.stanza_id.empty() && !own_gap_open(account.name()))
        remember_archive_id(account, id.stanza_id);
    model::Message msg;
    msg.from = outgoing ? (carbon == "sent" ? m.from : own) : m.from;
    msg.to = m.to;
    msg.type = m.type;
    msg.body = m.body;
    msg.msg_id = id.msg_id;
    msg.outgoing = outgoing;
    msg.carbon = carbon;
    msg.history = out != nullptr;
    if (!m.replace_id.empty()) msg.replaces = resolve_replace(account, id.sender, m.replace_id);
    // XEP-0203: a delayed message keeps its original time, in our one format.
    std::string stamp;
    if (auto when = xmpp::parse_datetime(m.delay_stamp)) {
        msg.delayed = true;
        stamp = xmpp::rfc3339(std::chrono::system_clock::time_point(std::chrono::milliseconds(*when)));
    }
    // One event per message, however often the server hands it over (im::identify).
    for (const auto& key : id.keys) {
        auto seen = store_.inbound(account.name(), key);
        if (seen && seen.value()) {
            if (out) {
                auto stored = store_.event(std::strtoll(seen.value()->c_str(), nullptr, 10));
                if (stored && stored.value()) *out = std::move(*stored.value());
            }
            return false;
        }
    }
    // XEP-0384: decrypted here, after the duplicate check (a message seen before is not
    // decrypted again: its message key is spent) and before the store: the plaintext and
    // the session state it moved are committed in one transaction.
    OmemoDevice* device = m.encrypted() ? omemo_decrypt(account, m, msg, room) : nullptr;
    const std::vector<MetaWrite> writes = device ? device->pending() : std::vector<MetaWrite>{};
    model::Event event{0, account.name(), std::move(stamp), std::move(msg)};
    if (id.keys.empty()) {
        auto st = store_.append(event);
        if (!st) logs::daemon().error("account {}: cannot store a message: {}", account.name(), st.error().message);
        if (device) omemo_committed(account, *device, st && store_.set_metas(account.name(), writes));
        if (out) *out = event;
        else deliver(event);
        return true;
    }
    auto stored = store_.append_once(event, id.keys.front(), id.aliases, writes);
    if (device) omemo_committed(account, *device, stored && stored.value());
    if (!stored) {
        logs::daemon().error("account {}: cannot store a message: {}", account.name(), stored.error().message);
        if (!out) deliver(event);
        return true;
    }
    if (out) *out = event;
    else if (stored.value()) deliver(event);
    return stored.value();
}

std::string Hub::resolve_replace(Account& account, const std::string& sender, const std::string& replace_id) {
    // Ours: the msg_id is the id we gave it.
    if (sender == account.config().jid.bare() && store_.find(account.name(), replace_id)) return replace_id;
    for (const char* kind : {"id:", "oid:"}) {
        auto seq = store_.inbound(account.name(), kind + sender + ":" + replace_id);
        if (!seq || !seq.value()) continue;
        auto event = store_.event(std::strtoll(seq.value()->c_str(), nullptr, 10));
        if (event && event.value())
            if (auto* msg = std::get_if<model::Message>(&event.value()->body)) return msg->msg_id;
    }
    return replace_id;
}

void Hub::maybe_receipt(Account& account, const xmpp::ReceivedMessage& m) {
    // XEP-0184 §8: receipts only to contacts who see our presence anyway (no presence leak),
    // never in rooms (nor to their occupants), never for our own archive or carbons.
    if (!m.receipt_requested || m.id.empty() || m.type == "groupchat" || m.type == "error") return;
    auto from = xmpp::Jid::parse(m.from);
    if (!from) return;
    std::string bare = from.value().bare();
    if (rooms_.count(account.name()) && rooms_[account.name()].count(bare)) return;
    for (const auto& item : account.roster())
        if (item.jid == bare && (item.subscription == "from" || item.subscription == "both")) {
            account.send(xmpp::make_receipt(m.from, m.id, make_uuid()));
            return;
        }
}

void Hub::message(Account& account, const xmpp::ReceivedMessage& m, const std::string& carbon) {
    if (m.type == "error") {
        // An error about a message we sent: the same id comes back (RFC 6120 §8.3.1).
        if (carbon.empty()) advance(account, m.id, xmpp::im::Delivery::Failed, m.error, m.from);
        return;
    }
    if (carbon.empty()) {
        if (!m.receipt_for.empty()) advance(account, m.receipt_for, xmpp::im::Delivery::Delivered, {}, m.from);   // XEP-0184
        if (!m.displayed_id.empty()) advance(account, m.displayed_id, xmpp::im::Delivery::Displayed, {}, m.from);  // XEP-0333
    }
    if (carbon.empty() && m.type != "groupchat")
        if (auto from = xmpp::Jid::parse(m.from))
            chat_states_[account.name()].received(from.value().bare(), !m.body.empty(), m.chat_state);
    if (carbon.empty() && m.type == "groupchat" && room_message(account, m)) return;
    // XEP-0384 (0.3) §4.6: an OMEMO message without payload (key transport, heartbeat)
    // moves the session on and is not shown.
    if (m.omemo && !m.omemo->payload) omemo_key_transport(account, m);
    if (!m.has_content()) {
        // XEP-0085: typing notifications are for live front ends only.
        if (!m.chat_state.empty() && carbon.empty())
            transient(account.name(), model::ChatState{m.from, m.to, m.chat_state});
        return;
    }
    incoming(account, m, false, carbon);
    if (carbon.empty()) maybe_receipt(account, m);
}

void Hub::received(Account& account, xmpp::Stanza& stanza) {
    auto root = stanza.root();
    if (xmpp::is(root, xmpp::ns_client, "iq")) {
        if (!account.answered(root)) catch_up_answer(account, root);
    } else if (xmpp::is(root, xmpp::ns_client, "message")) {
        received_message(account, root);
    } else if (xmpp::is(root, xmpp::ns_client, "presence")) {
        received_presence(account, root);
    }
}

void Hub::received_message(Account& account, pugi::xml_node root) {
    const xmpp::Jid& own = account.config().jid;
    // XEP-0280 §11: only our own account may send us carbons.
    if (auto carbon = xmpp::parse_carbon(root, own)) {
        if (carbon->forged) {
            logs::daemon().warn("account {}: dropped a forged carbon from {}", account.name(),
                                root.attribute("from").value());
            return;
        }
        if (auto m = carbon->message ? xmpp::parse_message(carbon->message, own) : std::nullopt)
            message(account, *m, carbon->direction);
        return;
    }
    if (auto result = xmpp::child(root, xmpp::ns_mam, "result")) return archive_result(account, root, result);
    if (omemo_event(account, root)) return;
    if (auto invite = xmpp::parse_invite(root)) {
        publish(account.name(),
                model::Invite{invite->room, invite->from, invite->reason, invite->password, invite->direct});
        return;
    }
    if (auto m = xmpp::parse_message(root, own)) message(account, *m, {});
}

std::vector<model::AccountInfo> Hub::account_infos() const {
    std::vector<model::AccountInfo> out;
    for (Account* a : list_()) {
        model::AccountInfo::Capabilities caps;
        if (const auto& c = a->capabilities(); c.known && a->state() == Account::State::Online)
            caps = {true, c.stream_management, c.archive, c.carbons};
        out.push_back({a->name(), a->config().jid.bare(), to_string(a->state()), a->reason(), a->bound_jid(),
                       a->auth(), a->connection_text(), caps, a->priority()});
    }
    return out;
}

xmpp::Result<std::size_t> Hub::replay(model::Seq after, std::size_t limit, const Sink& out) {
    auto batch = store_.events_after(after, limit);
    if (!batch) return batch.error();
    for (const auto& e : batch.value()) out(e);
    return batch.value().size();
}

model::Reply Hub::send(const model::Send& s, bool encrypted) {
    Account* account = find_(s.account);
    // Prosody and ejabberd refuse stanzas over 256 KiB by ending the stream; a body of at most
    // 64 KiB as XML leaves room for everything around it.
    if (auto size = xmpp::xml_escape(s.body).size(); size > kMaxBodyXml)
        return model::Reply::error("bad-request", "the body is " + std::to_string(size) +
                                                      " bytes as XML (<, > and & count 4 or 5); at most " +
                                                      std::to_string(kMaxBodyXml) + " go in one message: split it");
    if (!s.replace.empty()) {
        // XEP-0308 §4: only our own last messages, to the same conversation.
        auto original = store_.find(s.account, s.replace);
        if (!original || original.value().to != s.to)
            return model::Reply::error("bad-request", "'replace': no message '" + s.replace + "' sent to " + s.to +
                                                          " on " + s.account);
    }
    OutboxEntry entry;
    entry.replace_id = s.replace;
    const std::string type = !s.type.empty() ? s.type : find_room(s.account, s.to) ? "groupchat" : "chat";
    entry.account = s.account;
    entry.msg_id = s.client_id.empty() ? make_uuid() : s.client_id;
    entry.to = s.to;
    entry.type = type;
    entry.body = s.body;
    entry.state = "accepted";
    model::Message m;
    m.from = account->config().jid.bare();
    m.to = s.to;
    m.type = type;
    m.body = s.body;
    m.msg_id = entry.msg_id;
    m.outgoing = true;
    m.replaces = s.replace;
    if (encrypted) m.encryption = "omemo";
    std::vector<model::Event> events{{0, s.account, {}, std::move(m)},
                                     {0, s.account, {}, model::MessageState{entry.msg_id, "accepted", ""}}};
    auto inserted = store_.enqueue(entry, events);
    if (!inserted) return model::Reply::error("internal", "could not store the message: " + inserted.error().message);
    model::Reply reply;
    reply.msg_id = entry.msg_id;
    if (!inserted.value()) {
        reply.duplicate = true;
        return reply;
    }
    for (const auto& e : events) deliver(e);
    if (account->state() == Account::State::Online) transmit(*account, entry);
    return reply;
}

}  // namespace stanzad
