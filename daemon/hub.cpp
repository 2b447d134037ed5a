#include "daemon/hub.hpp"

#include <openssl/rand.h>

#include <cstdlib>

#include "daemon/account.hpp"
#include "daemon/log.hpp"
#include "daemon/omemo.hpp"
#include "protocol/base/rfc3339.hpp"

namespace stanzad {

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

// Hub::Hub and Hub::~Hub are in hub_session.cpp, where AccountLink is complete.

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
    // A new session: the roster (and its version) and presences from the start.
    if (!resumed) session(account).contacts_online(account.roster_versioning());
    // After a daemon restart the resumed session is in its rooms, but we no longer know who
    // is there: joining again brings the occupant list (Prosody answers as to a rejoin).
    session(account).rooms_online(resumed && !restored);
    if (!resumed || restored) omemo(account).online();  // a restarted daemon checks its device again
    // XEP-0191 §3.2: the server pushes block list changes only to clients that asked for it.
    if (!resumed)
        account.request({}, [](const std::string& id) { return xmpp::make_blocklist_get(id); }, [](const IqReply&) {});
    // The outbox (protocol/im/session): what was accepted, and after a gap what was sent but
    // never acknowledged.
    session(account).online(resumed, restored);
    // XEP-0313: whatever came while we were away, after the last archive id up to which we
    // have everything, or else since this account first came online here. A resumed
    // session has no gap, unless an earlier catch-up was cut off, or we were restarted.
    if (resumed && !restored && !session(account).gap_open()) return;
    if (account.capabilities().known && !account.capabilities().archive) return;  // XEP-0313 §7: not offered
    session(account).catch_up(xmpp::rfc3339(std::chrono::system_clock::now()));
}

void Hub::acked(Account& account, const std::vector<std::string>& msg_ids) { session(account).acked(msg_ids); }

void Hub::received(Account& account, xmpp::Stanza& stanza) {
    auto root = stanza.root();
    if (xmpp::is(root, xmpp::ns_client, "iq")) {
        if (!account.answered(root)) session(account).catch_up_answer(root);
    } else if (xmpp::is(root, xmpp::ns_client, "message")) {
        received_message(account, root);
    } else if (xmpp::is(root, xmpp::ns_client, "presence")) {
        received_presence(account, root);
    }
}

void Hub::received_message(Account& account, pugi::xml_node root) {
    const xmpp::Jid& own = account.config().jid;
    if (session(account).carbon(root)) return;  // XEP-0280
    if (xmpp::child(root, xmpp::ns_mam, "result")) return session(account).archive_result(root);
    if (omemo(account).event(root)) return;
    if (auto invite = xmpp::parse_invite(root)) {
        publish(account.name(),
                model::Invite{invite->room, invite->from, invite->reason, invite->password, invite->direct});
        return;
    }
    if (auto m = xmpp::parse_message(root, own)) session(account).message(*m);
}

void Hub::received_presence(Account& account, pugi::xml_node root) {
    if (auto mp = xmpp::parse_muc_presence(root); mp && session(account).room_presence(*mp)) return;
    session(account).presence(root);
}

void Hub::roster(Account& account, std::vector<xmpp::RosterEntry> items, bool push,
                 std::optional<std::string> version) {
    session(account).roster(std::move(items), push, std::move(version));
}

void Hub::blocklist_push(Account& account, std::vector<std::string> jids, bool blocked) {
    model::Blocklist b;
    (blocked ? b.blocked : b.unblocked) = std::move(jids);
    publish(account.name(), std::move(b));
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

}  // namespace stanzad
