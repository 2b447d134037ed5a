#include "daemon/hub.hpp"

#include <openssl/rand.h>

#include <cstdlib>

#include "daemon/account.hpp"
#include "daemon/log.hpp"

namespace stanzad {
namespace {

constexpr const char* roster_query_id = "roster";

model::RosterItem to_model(const xmpp::RosterEntry& e) { return {e.jid, e.name, e.subscription, e.groups}; }

}  // namespace

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

Hub::Hub(Store& store, FindAccount find, ListAccounts list)
    : store_(store), find_(std::move(find)), list_(std::move(list)) {}

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

void Hub::online(Account& account, bool resumed, bool stream_management, bool restored) {
    if (!resumed) account.send(xmpp::make_roster_get(roster_query_id));  // RFC 6121 §2.1.3
    auto pending = store_.pending(account.name());
    if (!pending) {
        logs::daemon().error("account {}: cannot read the outbox: {}", account.name(), pending.error().message);
        return;
    }
    // Resumed: the stream itself resent what the server had not acknowledged. New session:
    // what was sent but never acknowledged goes again with its origin-id, so receivers can
    // drop a copy; without stream management we cannot know, and send nothing twice.
    for (const auto& entry : pending.value())
        if (entry.state == "accepted" || ((!resumed || restored) && stream_management && entry.state == "sent"))
            transmit(account, entry);
    // XEP-0313: whatever came while we were away, after the last archive id up to which we
    // have everything, or else since this account first came online here. A resumed
    // session has no gap, unless an earlier catch-up was cut off, or we were restarted.
    bool gap_open = catch_ups_.count(account.name()) > 0;
    if (resumed && !restored && !gap_open) return;
    auto last = store_.meta(account.name(), "mam_last");
    if (!last) {
        logs::daemon().error("account {}: cannot read the archive position: {}", account.name(), last.error().message);
        return;
    }
    catch_up(account, last.value());
}

void Hub::catch_up(Account& account, const std::string& after) {
    CatchUp& c = catch_ups_[account.name()];  // open until a page says complete
    c.query_id = "catchup" + std::to_string(next_query_++);
    // Without a position yet: from when this account first came online here (the first
    // time, that is now, and the archive has nothing newer).
    std::string start;
    if (after.empty()) {
        auto since = store_.meta(account.name(), "mam_since");
        start = since && !since.value().empty() ? since.value() : rfc3339(std::chrono::system_clock::now());
        if (since && since.value().empty()) (void)store_.set_meta(account.name(), "mam_since", start);
    }
    account.send(xmpp::make_mam_query(c.query_id, c.query_id, after, start, 100));
}

void Hub::remember_archive_id(Account& account, const std::string& id) {
    // Catch-up starts after it next time; losing it only means fetching more (de-duplicated).
    if (auto st = store_.set_meta(account.name(), "mam_last", id); !st)
        logs::daemon().warn("account {}: cannot remember archive id: {}", account.name(), st.error().message);
}

void Hub::acked(Account& account, const std::vector<std::string>& msg_ids) {
    for (const auto& id : msg_ids) advance(account, id, "acked");
}

void Hub::advance(Account& account, const std::string& msg_id, const std::string& state, const std::string& error) {
    static constexpr std::string_view order[] = {"accepted", "sent", "acked", "delivered"};
    auto rank = [](std::string_view s) {
        for (int i = 0; i < 4; ++i)
            if (order[i] == s) return i;
        return 99;  // failed: final
    };
    auto entry = store_.find(account.name(), msg_id);
    if (!entry || (state != "failed" && rank(state) <= rank(entry.value().state)) || entry.value().state == "failed")
        return;
    model::Event event{0, account.name(), {}, model::MessageState{msg_id, state, error}};
    if (auto st = store_.set_state(account.name(), msg_id, state, error, event); !st) {
        logs::daemon().error("account {}: cannot record message {} as {}: {}", account.name(), msg_id, state,
                             st.error().message);
        return;
    }
    deliver(event);
}

void Hub::transmit(Account& account, const OutboxEntry& entry) {
    if (!account.send(xmpp::make_message(entry.to, entry.type, entry.body, entry.msg_id), entry.msg_id)) return;
    if (entry.state == "accepted") advance(account, entry.msg_id, "sent");
}

bool Hub::incoming(Account& account, const xmpp::ReceivedMessage& m, bool from_archive) {
    const std::string own = account.config().jid.bare();
    auto from = xmpp::Jid::parse(m.from);
    bool outgoing = from_archive && (m.from.empty() || (from && from.value().bare() == own));
    if (outgoing && !m.origin_id.empty() && store_.find(account.name(), m.origin_id)) return false;  // ours: known
    // Live messages move the archive position only while no gap is open: one that arrives
    // during a catch-up is newer than what the catch-up still has to bring.
    if (!from_archive && !m.stanza_id.empty() && !catch_ups_.count(account.name()))
        remember_archive_id(account, m.stanza_id);
    model::Message msg;
    msg.from = outgoing ? own : m.from;
    msg.to = m.to;
    msg.type = m.type;
    msg.body = m.body;
    msg.msg_id = !m.stanza_id.empty() ? m.stanza_id : !m.id.empty() ? m.id : m.origin_id;
    msg.outgoing = outgoing;
    // XEP-0203: a delayed message keeps its original time, in our one format.
    std::string stamp;
    if (auto when = xmpp::parse_datetime(m.delay_stamp)) {
        msg.delayed = true;
        stamp = rfc3339(std::chrono::system_clock::time_point(std::chrono::milliseconds(*when)));
    }
    // One event per message, however often the server hands it over (resumption, offline
    // storage, archive): keyed by the ids that survive those paths.
    std::string key = !m.stanza_id.empty()   ? "sid:" + m.stanza_id
                      : !m.origin_id.empty() ? "oid:" + (from ? from.value().bare() : m.from) + ":" + m.origin_id
                      : !m.id.empty()        ? "id:" + (from ? from.value().bare() : m.from) + ":" + m.id
                                             : "";
    model::Event event{0, account.name(), std::move(stamp), std::move(msg)};
    if (key.empty()) {
        if (auto st = store_.append(event); !st)
            logs::daemon().error("account {}: cannot store a message: {}", account.name(), st.error().message);
        deliver(event);
        return true;
    }
    auto stored = store_.append_once(event, key);
    if (!stored) {
        logs::daemon().error("account {}: cannot store a message: {}", account.name(), stored.error().message);
        deliver(event);
        return true;
    }
    if (stored.value()) deliver(event);
    return stored.value();
}

void Hub::received(Account& account, xmpp::Stanza& stanza) {
    auto root = stanza.root();
    if (auto archived = xmpp::parse_mam_result(root, account.config().jid)) {
        auto it = catch_ups_.find(account.name());
        if (it == catch_ups_.end() || archived->query_id != it->second.query_id) return;  // not asked for
        ++it->second.count;
        if (!archived->message.body.empty() && archived->message.type != "error" &&
            incoming(account, archived->message, true))
            ++it->second.fresh;
        return;
    }
    if (auto m = xmpp::parse_message(root, account.config().jid)) {
        if (m->type == "error") {
            // An error about a message we sent: the same id comes back (RFC 6120 §8.3.1).
            advance(account, m->id, "failed", m->error);
            return;
        }
        if (!m->receipt_for.empty()) advance(account, m->receipt_for, "delivered");  // XEP-0184
        if (m->body.empty()) return;  // chat states, receipts: not messages for people
        incoming(account, *m, false);
        return;
    }
    if (auto p = xmpp::parse_presence(root)) {
        if (p->type.empty() || p->type == "unavailable") {
            publish(account.name(), model::Presence{p->from, p->type.empty(), p->show, p->status});
        } else if (p->type == "subscribe" || p->type == "subscribed" || p->type == "unsubscribe" ||
                   p->type == "unsubscribed") {
            auto from = xmpp::Jid::parse(p->from);
            publish(account.name(), model::Subscription{from ? from.value().bare() : p->from, p->type});
        }
        return;
    }
    if (!xmpp::is(root, xmpp::ns_client, "iq")) return;
    std::string_view id = root.attribute("id").value();
    std::string_view type = root.attribute("type").value();
    std::string_view from = root.attribute("from").value();
    bool from_own_account = from.empty() || from == account.config().jid.bare() || from == account.bound_jid();
    if (id == roster_query_id && type == "result" && from_own_account) {  // RFC 6121 §2.1.3
        roster(account, xmpp::parse_roster(xmpp::child(root, xmpp::ns_roster, "query")), false);
        return;
    }
    auto it = catch_ups_.find(account.name());
    if (it == catch_ups_.end() || id != it->second.query_id || !from_own_account) return;
    auto fin = xmpp::parse_mam_fin(root);
    if (type != "result" || !fin) {
        // The gap stays open: the next login tries again from the same position.
        logs::daemon().warn("account {}: archive catch-up failed (the server answered {})", account.name(), type);
        it->second.query_id.clear();
        return;
    }
    if (!fin->last.empty()) remember_archive_id(account, fin->last);
    if (!fin->complete && !fin->last.empty()) {
        catch_up(account, fin->last);  // XEP-0059: the next page
        return;
    }
    logs::daemon().info("account {}: archive catch-up: {} message(s), {} of them new", account.name(),
                        it->second.count, it->second.fresh);
    catch_ups_.erase(it);
}

void Hub::roster(Account& account, std::vector<xmpp::RosterEntry> items, bool push) {
    model::Roster r;
    r.push = push;
    for (const auto& i : items) r.items.push_back(to_model(i));
    account.update_roster(std::move(items), push);
    publish(account.name(), std::move(r));
}

std::vector<model::AccountInfo> Hub::account_infos() const {
    std::vector<model::AccountInfo> out;
    for (Account* a : list_())
        out.push_back({a->name(), a->config().jid.bare(), to_string(a->state()), a->reason(), a->bound_jid()});
    return out;
}

xmpp::Result<std::size_t> Hub::replay(model::Seq after, std::size_t limit, const Sink& out) {
    auto batch = store_.events_after(after, limit);
    if (!batch) return batch.error();
    for (const auto& e : batch.value()) out(e);
    return batch.value().size();
}

model::Reply Hub::send(const model::Send& s) {
    Account* account = find_(s.account);
    OutboxEntry entry;
    entry.account = s.account;
    entry.msg_id = s.client_id.empty() ? make_uuid() : s.client_id;
    entry.to = s.to;
    entry.type = s.type;
    entry.body = s.body;
    entry.state = "accepted";
    model::Message m;
    m.from = account->config().jid.bare();
    m.to = s.to;
    m.type = s.type;
    m.body = s.body;
    m.msg_id = entry.msg_id;
    m.outgoing = true;
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

model::Reply Hub::handle(const model::Command& command, const std::string& client) {
    auto need_account = [this](const std::string& name, Account** out) -> std::optional<model::Reply> {
        *out = find_(name);
        if (*out) return std::nullopt;
        std::string known;
        for (Account* a : list_()) known += (known.empty() ? "" : ", ") + a->name();
        return model::Reply::error("unknown-account",
                                   "no account named '" + name + "' (known: " + (known.empty() ? "none" : known) + ")");
    };
    auto need_online = [](Account& a) -> std::optional<model::Reply> {
        if (a.state() == Account::State::Online) return std::nullopt;
        return model::Reply::error("not-online", "account " + a.name() + " is " + to_string(a.state()));
    };
    Account* account = nullptr;
    return std::visit(
        [&](const auto& c) -> model::Reply {
            using C = std::decay_t<decltype(c)>;
            model::Reply reply;
            if constexpr (std::is_same_v<C, model::Hello>) {
                auto cursor = store_.cursor(c.client);
                if (!cursor) return model::Reply::error("internal", cursor.error().message);
                reply.cursor = cursor.value();
                reply.last_seq = store_.last_seq();
                reply.accounts = account_infos();
            } else if constexpr (std::is_same_v<C, model::Ack>) {
                if (c.seq > store_.last_seq())
                    return model::Reply::error("bad-request", "seq " + std::to_string(c.seq) +
                                                                  " is past the last event (" +
                                                                  std::to_string(store_.last_seq()) + ")");
                if (auto st = store_.set_cursor(client, c.seq); !st)
                    return model::Reply::error("internal", st.error().message);
                auto cursor = store_.cursor(client);
                reply.cursor = cursor ? cursor.value() : c.seq;
            } else if constexpr (std::is_same_v<C, model::ListAccounts>) {
                reply.accounts = account_infos();
            } else if constexpr (std::is_same_v<C, model::Send>) {
                if (auto e = need_account(c.account, &account)) return *e;
                return send(c);
            } else if constexpr (std::is_same_v<C, model::GetRoster>) {
                if (auto e = need_account(c.account, &account)) return *e;
                for (const auto& i : account->roster()) reply.items.push_back(to_model(i));
            } else if constexpr (std::is_same_v<C, model::SetPresence>) {
                if (auto e = need_account(c.account, &account)) return *e;
                account->set_presence(xmpp::make_presence(c.show, c.status));  // kept for reconnections
            } else if constexpr (std::is_same_v<C, model::ChangeSubscription>) {
                if (auto e = need_account(c.account, &account)) return *e;
                if (auto e = need_online(*account)) return *e;
                const char* type = c.kind == "subscribe" ? "subscribe" : c.kind == "approve" ? "subscribed" : "unsubscribed";
                account->send(xmpp::make_subscription(c.jid, type));
            } else if constexpr (std::is_same_v<C, model::Raw>) {
                if (auto e = need_account(c.account, &account)) return *e;
                if (auto st = xmpp::check_raw_stanza(c.xml); !st) return model::Reply::error("bad-xml", st.error().message);
                if (auto e = need_online(*account)) return *e;
                account->send(c.xml);
            }
            return reply;
        },
        command);
}

}  // namespace stanzad
