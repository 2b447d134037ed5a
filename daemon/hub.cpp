#include "daemon/hub.hpp"

#include "daemon/account.hpp"
#include "daemon/log.hpp"
#include "protocol/base/rfc3339.hpp"

namespace stanzad {

Hub::Hub(Store& store, FindAccount find, ListAccounts list, uv_loop_t* loop, std::chrono::seconds self_ping)
    : store_(store),
      find_(std::move(find)),
      timer_(loop),
      self_ping_(self_ping),
      omemo_(store),
      shared_{store_, find_, omemo_, [this](const model::Event& e) { deliver(e); },
              [this](const std::string& account, model::EventBody body) { transient(account, std::move(body)); }},
      dispatch_(store_, find_, std::move(list), [this](Account& a) -> AccountLink& { return link(a); }) {
    timer_->data = this;
    uv_timer_start(timer_.get(), [](uv_timer_t* t) { static_cast<Hub*>(t->data)->tick(); }, 1000, 1000);
    uv_unref(reinterpret_cast<uv_handle_t*>(timer_.get()));  // never what keeps the loop alive
}

Hub::~Hub() = default;

void Hub::tick() {
    bool rooms = false;
    for (auto& [name, link] : links_) {
        link->account_session.tick(self_ping_);
        rooms = rooms || !link->account_session.rooms().empty();
    }
    // Without rooms nothing is due: no wakeup each second for an idle daemon. Whatever adds
    // a room reaches its account through link(), which starts the ticks again.
    if (!rooms) uv_timer_stop(timer_.get());
}

void Hub::wake() {
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(timer_.get())))
        uv_timer_start(timer_.get(), [](uv_timer_t* t) { static_cast<Hub*>(t->data)->tick(); }, 1000, 1000);
    if (on_activity_) on_activity_();
}

AccountLink& Hub::link(Account& account) {
    wake();
    auto& link = links_[account.name()];
    // A new one also when a reloaded configuration gave the account another JID.
    if (!link || link->account_session.own().bare() != account.config().jid.bare()) {
        if (link) link->omemo_session.abandon("account " + account.name() + " now has another JID");
        link = std::make_unique<AccountLink>(shared_, account.name(), account.config().jid);
    }
    return *link;
}

void Hub::deliver(const model::Event& event) {
    for (const auto& sink : sinks_) sink(event);
}

void Hub::publish(const std::string& account, model::EventBody body, std::string stamp) {
    model::Event event{0, account, std::move(stamp), std::move(body)};
    if (auto st = store_.append(event); !st)
        // Front ends still hear of it; only a later replay will miss it. (Inside a group
        // commit, a write that failed part way fails the commit, which shows nothing.)
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
    link(account).account_session.started(resumed, restored, account.roster_versioning());
}

void Hub::acked(Account& account, const std::vector<std::string>& msg_ids) {
    link(account).account_session.acked(msg_ids);
}

void Hub::received(Account& account, xmpp::Stanza& stanza) {
    auto root = stanza.root();
    if (!xmpp::is(root, xmpp::ns_client, "iq")) return link(account).account_session.received(root);
    if (!account.answered(root)) link(account).account_session.catch_up_answer(root);
}

void Hub::roster(Account& account, std::vector<xmpp::RosterEntry> items, bool push,
                 std::optional<std::string> version) {
    link(account).account_session.roster(std::move(items), push, std::move(version));
}

void Hub::blocklist_push(Account& account, std::vector<std::string> jids, bool blocked) {
    model::Blocklist b;
    (blocked ? b.blocked : b.unblocked) = std::move(jids);
    publish(account.name(), std::move(b));
}

}  // namespace stanzad
