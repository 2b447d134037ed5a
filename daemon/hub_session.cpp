// The hub's side of protocol/im/session: each account's AccountSession and OmemoSession, and
// what they reach through the hub (the SQLite store's rows of that account, the live account
// and its settings, the clock, the OMEMO device). Wiring only: what becomes of a stanza or a
// command is decided in the IM core. Also Hub's constructor, destructor and tick, which need
// AccountLink whole.
#include "daemon/account.hpp"
#include "daemon/account_keep.hpp"
#include "daemon/hub.hpp"
#include "daemon/log.hpp"
#include "protocol/base/rfc3339.hpp"

namespace stanzad {
namespace {

xmpp::im::Outgoing to_outgoing(const OutboxEntry& e) {
    return {e.msg_id, e.to, e.type, e.body, e.state, e.replace_id};
}

OutboxEntry to_entry(const std::string& account, const xmpp::im::Outgoing& o) {
    OutboxEntry e;
    e.account = account;
    e.msg_id = o.msg_id;
    e.to = o.to;
    e.type = o.type;
    e.body = o.body;
    e.state = o.state;
    e.replace_id = o.replace_id;
    return e;
}

std::vector<MetaWrite> to_meta(const std::vector<xmpp::im::KeptWrite>& writes) {
    std::vector<MetaWrite> out;
    out.reserve(writes.size());
    for (const auto& w : writes) out.push_back({w.key, w.value});
    return out;
}

}  // namespace

class Hub::AccountLink final : public xmpp::im::SessionStore,
                               public xmpp::im::SessionPort,
                               public xmpp::im::OmemoPort {
public:
    AccountLink(Hub& hub, const std::string& name, const xmpp::Jid& own)
        : hub_(hub),
          name_(name),
          account_session(name, own, *this, *this),
          omemo_session(name, own, *this, *this, account_session, *this) {
        account_session.set_encryption(omemo_session);
    }

    // SessionStore: the store's rows of this account.
    std::optional<xmpp::im::Outgoing> outgoing(const std::string& msg_id) override {
        auto e = hub_.store_.find(name_, msg_id);
        if (!e) return std::nullopt;
        return to_outgoing(e.value());
    }
    xmpp::Result<std::vector<xmpp::im::Outgoing>> pending() override {
        auto rows = hub_.store_.pending(name_);
        if (!rows) return rows.error();
        std::vector<xmpp::im::Outgoing> out;
        for (const auto& e : rows.value()) out.push_back(to_outgoing(e));
        return out;
    }
    xmpp::Result<bool> enqueue(const xmpp::im::Outgoing& o, std::vector<model::Event>& events) override {
        return hub_.store_.enqueue(to_entry(name_, o), events);
    }
    xmpp::Status set_state(const std::string& msg_id, xmpp::im::Delivery state, const std::string& error,
                           model::Event& event) override {
        return hub_.store_.set_state(name_, msg_id, std::string(xmpp::im::to_string(state)), error, event);
    }
    std::optional<std::string> inbound(const std::string& key) override {
        auto seen = hub_.store_.inbound(name_, key);
        if (!seen || !seen.value()) return std::nullopt;
        return std::move(*seen.value());
    }
    xmpp::Result<std::vector<model::Event>> messages(const std::string& peer, const xmpp::im::MessageRange& r,
                                                     std::size_t limit) override {
        return hub_.store_.messages(name_, peer, MessageRange{r.after, r.before, r.after_stamp, r.before_stamp, r.newest},
                                    limit);
    }
    xmpp::Result<std::optional<model::Seq>> message_seq(const std::string& peer, const std::string& msg_id) override {
        return hub_.store_.message_seq(name_, peer, msg_id);
    }
    std::optional<model::Event> event(model::Seq seq) override {
        auto e = hub_.store_.event(seq);
        if (!e || !e.value()) return std::nullopt;
        return std::move(*e.value());
    }
    xmpp::Status append(model::Event& event) override { return hub_.store_.append(event); }
    xmpp::Result<bool> append_once(model::Event& event, const std::string& key,
                                   const std::vector<std::pair<std::string, std::string>>& aliases,
                                   const std::vector<xmpp::im::KeptWrite>& writes) override {
        return hub_.store_.append_once(event, key, aliases, to_meta(writes));
    }
    xmpp::Status keep(const std::vector<xmpp::im::KeptWrite>& writes) override {
        return hub_.store_.set_metas(name_, to_meta(writes));
    }
    xmpp::Result<std::string> kept(const std::string& key) override { return hub_.store_.meta(name_, key); }
    xmpp::Status keep(const std::string& key, const std::string& value) override {
        return hub_.store_.set_meta(name_, key, value);
    }

    // SessionPort: the live account and the rest of the hub.
    bool send(std::string_view xml, const std::string& tag) override {
        Account* a = hub_.find_(name_);
        return a && a->send(xml, tag);
    }
    bool online() override {
        Account* a = hub_.find_(name_);
        return a && a->state() == Account::State::Online;
    }
    unsigned long session() override {
        Account* a = hub_.find_(name_);
        return a ? a->session() : 0;
    }
    std::string bound_jid() override {
        Account* a = hub_.find_(name_);
        return a ? a->bound_jid() : std::string();
    }
    void request(const std::string& to, const xmpp::im::IqMaker& make, xmpp::im::IqCallback done) override {
        Account* a = hub_.find_(name_);
        if (!a) return done(IqReply{IqReply::Outcome::NotOnline, {}, {}});
        a->request(to, make, std::move(done));
    }
    std::chrono::steady_clock::time_point now() override { return std::chrono::steady_clock::now(); }
    std::chrono::steady_clock::time_point online_at() override {
        Account* a = hub_.find_(name_);
        return a ? a->online_at() : std::chrono::steady_clock::time_point{};
    }
    std::string presence_payload() override {
        Account* a = hub_.find_(name_);
        return a ? a->presence_payload() : std::string();
    }
    const xmpp::im::Capabilities& capabilities() override {
        static const xmpp::im::Capabilities none;
        Account* a = hub_.find_(name_);
        return a ? a->capabilities() : none;
    }
    std::vector<ConfiguredRoom> configured_rooms() override {
        std::vector<ConfiguredRoom> out;
        if (Account* a = hub_.find_(name_))
            for (const auto& r : a->config().rooms) out.push_back({r.jid, r.nick});
        return out;
    }
    std::string state_name() override {
        Account* a = hub_.find_(name_);
        return a ? to_string(a->state()) : "gone";
    }
    std::string wall_clock() override { return xmpp::rfc3339(std::chrono::system_clock::now()); }
    void set_presence(const std::string& show, const std::string& status, std::optional<int> priority) override {
        if (Account* a = hub_.find_(name_)) a->set_presence(show, status, priority);
    }
    bool chat_markers() override {
        Account* a = hub_.find_(name_);
        return a && a->config().chat_markers;
    }
    void deliver(const model::Event& event) override { hub_.deliver(event); }
    void transient(model::EventBody body) override { hub_.transient(name_, std::move(body)); }
    void log(Level level, const std::string& text) override {
        switch (level) {
        case Level::Info: return logs::daemon().info("{}", text);
        case Level::Warn: return logs::daemon().warn("{}", text);
        case Level::Error: return logs::daemon().error("{}", text);
        }
    }
    std::string new_id() override { return make_uuid(); }

    // OmemoPort: the account's device (made on first use) and setting.
    xmpp::im::OmemoCrypto* crypto() override {
        Account* a = hub_.find_(name_);
        if (!a || a->config().encryption == "off") return nullptr;
        return hub_.omemo_.device(name_, a->config().jid.bare());
    }
    std::string encryption() override {
        Account* a = hub_.find_(name_);
        return a ? a->config().encryption : std::string("off");
    }

private:
    Hub& hub_;
    std::string name_;

public:
    xmpp::im::AccountSession account_session;
    xmpp::im::OmemoSession omemo_session;
};

Hub::Hub(Store& store, FindAccount find, ListAccounts list, uv_loop_t* loop, std::chrono::seconds self_ping)
    : store_(store),
      find_(std::move(find)),
      list_(std::move(list)),
      timer_(loop),
      self_ping_(self_ping),
      omemo_(store) {
    timer_->data = this;
    uv_timer_start(timer_.get(), [](uv_timer_t* t) { static_cast<Hub*>(t->data)->tick(); }, 1000, 1000);
    uv_unref(reinterpret_cast<uv_handle_t*>(timer_.get()));  // never what keeps the loop alive
}

Hub::~Hub() = default;

void Hub::tick() {
    for (auto& [name, link] : links_) link->account_session.tick(self_ping_);
}

xmpp::im::AccountSession& Hub::session(Account& account) {
    auto& link = links_[account.name()];
    // A new one also when a reloaded configuration gave the account another JID.
    if (!link || link->account_session.own().bare() != account.config().jid.bare()) {
        if (link) link->omemo_session.abandon("account " + account.name() + " now has another JID");
        link = std::make_unique<AccountLink>(*this, account.name(), account.config().jid);
    }
    return link->account_session;
}

xmpp::im::OmemoSession& Hub::omemo(Account& account) {
    session(account);  // the link, made (or made again) as the session is
    return links_[account.name()]->omemo_session;
}

}  // namespace stanzad
