#include "daemon/hub.hpp"

#include "daemon/account.hpp"
#include "daemon/log.hpp"
#include "protocol/base/rfc3339.hpp"

namespace stanzad {

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

void Hub::online(Account& account, bool resumed, bool restored) {
    session(account).started(resumed, restored, account.roster_versioning());
}

void Hub::acked(Account& account, const std::vector<std::string>& msg_ids) { session(account).acked(msg_ids); }

void Hub::received(Account& account, xmpp::Stanza& stanza) {
    auto root = stanza.root();
    if (!xmpp::is(root, xmpp::ns_client, "iq")) return session(account).received(root);
    if (!account.answered(root)) session(account).catch_up_answer(root);
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
