#include "daemon/account_link.hpp"

#include "daemon/account.hpp"
#include "daemon/account_keep.hpp"
#include "daemon/log.hpp"
#include "protocol/base/rfc3339.hpp"

namespace stanzad {
namespace {

xmpp::im::Outgoing to_outgoing(const OutboxEntry& e) { return {e.msg_id, e.to, e.type, e.body, e.state, e.replace_id}; }

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

AccountLink::AccountLink(const Shared& shared, const std::string& name, const xmpp::Jid& own)
    : shared_(shared),
      name_(name),
      account_session(name, own, *this, *this),
      omemo_session(name, own, *this, *this, account_session, *this) {
    account_session.set_encryption(omemo_session);
}

std::optional<xmpp::im::Outgoing> AccountLink::outgoing(const std::string& msg_id) {
    auto e = shared_.store.find(name_, msg_id);
    if (!e) return std::nullopt;
    return to_outgoing(e.value());
}

xmpp::Result<std::vector<xmpp::im::Outgoing>> AccountLink::pending() {
    auto rows = shared_.store.pending(name_);
    if (!rows) return rows.error();
    std::vector<xmpp::im::Outgoing> out;
    for (const auto& e : rows.value()) out.push_back(to_outgoing(e));
    return out;
}

xmpp::Result<bool> AccountLink::enqueue(const xmpp::im::Outgoing& o, std::vector<model::Event>& events) {
    return shared_.store.enqueue(to_entry(name_, o), events);
}

xmpp::Status AccountLink::set_state(const std::string& msg_id, xmpp::im::Delivery state, const std::string& error,
                                    model::Event& event) {
    return shared_.store.set_state(name_, msg_id, std::string(xmpp::im::to_string(state)), error, event);
}

std::optional<std::string> AccountLink::inbound(const std::string& key) {
    auto seen = shared_.store.inbound(name_, key);
    if (!seen || !seen.value()) return std::nullopt;
    return std::move(*seen.value());
}

xmpp::Result<std::vector<model::Event>> AccountLink::messages(const std::string& peer, const xmpp::im::MessageRange& r,
                                                              std::size_t limit) {
    return shared_.store.messages(name_, peer, MessageRange{r.after, r.before, r.after_stamp, r.before_stamp, r.newest},
                                  limit);
}

xmpp::Result<std::optional<model::Seq>> AccountLink::message_seq(const std::string& peer, const std::string& msg_id) {
    return shared_.store.message_seq(name_, peer, msg_id);
}

std::optional<model::Event> AccountLink::event(model::Seq seq) {
    auto e = shared_.store.event(seq);
    if (!e || !e.value()) return std::nullopt;
    return std::move(*e.value());
}

xmpp::Status AccountLink::append(model::Event& event) { return shared_.store.append(event); }

xmpp::Result<bool> AccountLink::append_once(model::Event& event, const std::string& key,
                                            const std::vector<std::pair<std::string, std::string>>& aliases,
                                            const std::vector<xmpp::im::KeptWrite>& writes) {
    return shared_.store.append_once(event, key, aliases, to_meta(writes));
}

xmpp::Status AccountLink::keep(const std::vector<xmpp::im::KeptWrite>& writes) {
    return shared_.store.set_metas(name_, to_meta(writes));
}

xmpp::Result<std::string> AccountLink::kept(const std::string& key) { return shared_.store.meta(name_, key); }

xmpp::Status AccountLink::keep(const std::string& key, const std::string& value) {
    return shared_.store.set_meta(name_, key, value);
}

bool AccountLink::send(std::string_view xml, const std::string& tag) {
    Account* a = shared_.find(name_);
    return a && a->send(xml, tag);
}

bool AccountLink::online() {
    Account* a = shared_.find(name_);
    return a && a->can_send();  // online() true: send() takes the stanza (AccountSession::send)
}

unsigned long AccountLink::session() {
    Account* a = shared_.find(name_);
    return a ? a->session() : 0;
}

std::string AccountLink::bound_jid() {
    Account* a = shared_.find(name_);
    return a ? a->bound_jid() : std::string();
}

void AccountLink::request(const std::string& to, const xmpp::im::IqMaker& make, xmpp::im::IqCallback done) {
    Account* a = shared_.find(name_);
    if (!a) return done(IqReply{IqReply::Outcome::NotOnline, {}, {}});
    a->request(to, make, std::move(done));
}

std::chrono::steady_clock::time_point AccountLink::now() { return std::chrono::steady_clock::now(); }

std::chrono::steady_clock::time_point AccountLink::online_at() {
    Account* a = shared_.find(name_);
    return a ? a->online_at() : std::chrono::steady_clock::time_point{};
}

std::string AccountLink::presence_payload() {
    Account* a = shared_.find(name_);
    return a ? a->presence_payload() : std::string();
}

const xmpp::im::Capabilities& AccountLink::capabilities() {
    static const xmpp::im::Capabilities none;
    Account* a = shared_.find(name_);
    return a ? a->capabilities() : none;
}

std::vector<AccountLink::ConfiguredRoom> AccountLink::configured_rooms() {
    std::vector<ConfiguredRoom> out;
    if (Account* a = shared_.find(name_))
        for (const auto& r : a->config().rooms) out.push_back({r.jid, r.nick});
    return out;
}

std::string AccountLink::state_name() {
    Account* a = shared_.find(name_);
    return a ? to_string(a->state()) : "gone";
}

std::string AccountLink::wall_clock() { return xmpp::rfc3339(std::chrono::system_clock::now()); }

void AccountLink::set_presence(const std::string& show, const std::string& status, std::optional<int> priority) {
    if (Account* a = shared_.find(name_)) a->set_presence(show, status, priority);
}

bool AccountLink::chat_markers() {
    Account* a = shared_.find(name_);
    return a && a->config().chat_markers;
}

void AccountLink::deliver(const model::Event& event) { shared_.deliver(event); }

void AccountLink::transient(model::EventBody body) { shared_.transient(name_, std::move(body)); }

void AccountLink::log(Level level, const std::string& text) {
    switch (level) {
    case Level::Info:
        return logs::daemon().info("{}", text);
    case Level::Warn:
        return logs::daemon().warn("{}", text);
    case Level::Error:
        return logs::daemon().error("{}", text);
    }
}

std::string AccountLink::new_id() { return make_time_uuid(); }

xmpp::im::OmemoCrypto* AccountLink::crypto() {
    Account* a = shared_.find(name_);
    if (!a || a->config().encryption == "off") return nullptr;
    return shared_.omemo.device(name_, a->config().jid.bare());
}

std::string AccountLink::encryption() {
    Account* a = shared_.find(name_);
    return a ? a->config().encryption : std::string("off");
}

}  // namespace stanzad
