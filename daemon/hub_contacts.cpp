// The hub's contacts side: the roster (kept with its version, RFC 6121 §2.6, through
// protocol/im/roster), display names from vCards (XEP-0054), presence (kept for contacts
// only) and subscriptions, block list pushes (XEP-0191).
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "daemon/account.hpp"
#include "daemon/hub.hpp"
#include "daemon/log.hpp"

namespace stanzad {

void Hub::load_roster_cache(Account& account) {
    auto& roster = account.roster_state();
    if (roster.known()) return;
    auto cached = store_.meta(account.name(), "roster");
    if (!cached || cached.value().empty()) return;  // nothing kept: the first login asks for it all
    auto j = nlohmann::json::parse(cached.value(), nullptr, false);
    if (!j.is_array()) return;
    std::vector<xmpp::RosterEntry> items;
    for (const auto& i : j) {
        if (!i.is_object()) continue;
        xmpp::RosterEntry e;
        e.jid = i.value("jid", "");
        e.name = i.value("name", "");
        e.subscription = i.value("subscription", "none");
        e.groups = i.value("groups", std::vector<std::string>{});
        e.ask = i.value("ask", false);
        if (!e.jid.empty()) items.push_back(std::move(e));
    }
    auto version = store_.meta(account.name(), "roster_ver");
    std::optional<std::string> ver;
    if (version && !version.value().empty()) ver = version.value();
    roster.restore(std::move(items), std::move(ver));
}

model::Reply Hub::set_roster_cache(Account& account) {
    // RFC 6121 §2.6: the roster and its version go together; a later login asks only for
    // what changed since.
    const auto& roster = account.roster_state();
    nlohmann::json j = nlohmann::json::array();
    for (const auto& e : roster.items())
        j.push_back({{"jid", e.jid}, {"name", e.name}, {"subscription", e.subscription}, {"groups", e.groups},
                     {"ask", e.ask}});
    auto st = store_.set_metas(account.name(),
                               {{"roster", j.dump()}, {"roster_ver", roster.version()}});
    if (!st) {
        logs::daemon().warn("account {}: cannot keep the roster: {}", account.name(), st.error().message);
        return model::Reply::error("internal", st.error().message);
    }
    return {};
}

void Hub::received_presence(Account& account, pugi::xml_node root) {
    if (auto mp = xmpp::parse_muc_presence(root); mp && session(account).room_presence(*mp)) return;
    auto p = xmpp::parse_presence(root);
    if (!p) return;
    auto from = xmpp::Jid::parse(p->from);
    if (p->type == "subscribe" || p->type == "subscribed" || p->type == "unsubscribe" || p->type == "unsubscribed") {
        publish(account.name(), model::Subscription{from ? from.value().bare() : p->from, p->type});
        return;
    }
    if (!p->type.empty() && p->type != "unavailable") return;
    int priority = 0;
    if (auto pr = xmpp::child(root, xmpp::ns_client, "priority")) priority = std::atoi(pr.child_value());
    model::Presence presence{p->from, p->type.empty(), p->show, p->status, priority};
    // Kept for contacts only: anyone can send us presence from any number of JIDs.
    bool contact = from && account.roster_state().contains(from.value().bare());
    if (presence.available && contact) presences_[account.name()][p->from] = presence;
    else presences_[account.name()].erase(p->from);
    // Stored (and replayed) for contacts and our own other clients only; a stranger's
    // is shown to whoever is attached, like a chat state.
    bool ours = from && from.value().bare() == account.config().jid.bare();
    if (contact || ours) publish(account.name(), std::move(presence));
    else transient(account.name(), std::move(presence));
}

void Hub::roster(Account& account, std::vector<xmpp::RosterEntry> items, bool push,
                 std::optional<std::string> version) {
    model::Roster r;
    r.push = push;
    for (const auto& i : items) r.items.push_back(to_model(account.name(), i));
    fetch_vcards(account, items);
    if (push) account.roster_state().push(std::move(items), std::move(version));
    else account.roster_state().result(std::move(items), std::move(version));
    set_roster_cache(account);
    publish(account.name(), std::move(r));
}

std::map<std::string, std::string>& Hub::vcard_nicks(const std::string& account) {
    auto [it, fresh] = vcard_nicks_.try_emplace(account);
    if (fresh) {
        auto saved = store_.meta(account, "vcard_nicks");
        auto j = saved ? nlohmann::json::parse(saved.value(), nullptr, false) : nlohmann::json();
        if (j.is_object())
            for (const auto& [jid, nick] : j.items())
                if (nick.is_string()) it->second[jid] = nick.get<std::string>();
    }
    return it->second;
}

model::RosterItem Hub::to_model(const std::string& account, const xmpp::RosterEntry& e) {
    auto& nicks = vcard_nicks(account);
    auto it = nicks.find(e.jid);
    return {e.jid, e.name, e.subscription, e.groups, it == nicks.end() ? "" : it->second};
}

void Hub::fetch_vcards(Account& account, const std::vector<xmpp::RosterEntry>& items) {
    auto& nicks = vcard_nicks(account.name());
    for (const auto& e : items) {
        if (!e.name.empty() || e.subscription == "remove" || nicks.count(e.jid)) continue;
        nicks[e.jid] = "";  // asked (once): an answer fills it in
        std::string name = account.name(), jid = e.jid;
        account.request(jid, [&](const std::string& id) { return xmpp::make_vcard_get(id, jid); },
                        [this, name, jid](const IqReply& r) {
                            Account* a = find_(name);
                            if (!a) return;
                            auto& known = vcard_nicks(name);
                            if (!r.ok()) {
                                if (r.local()) known.erase(jid);  // ask again next time
                                return;
                            }
                            auto names = xmpp::parse_vcard_names(r.iq);
                            std::string nick = !names.nick.empty() ? names.nick : names.full_name;
                            known[jid] = nick;
                            nlohmann::json j = nlohmann::json::object();
                            for (const auto& [k, v] : known) j[k] = v;
                            (void)store_.set_meta(name, "vcard_nicks", j.dump());
                            if (nick.empty()) return;
                            // Front ends learn the display name as a change of that item.
                            for (const auto& item : a->roster())
                                if (item.jid == jid) {
                                    model::Roster push;
                                    push.push = true;
                                    push.items.push_back(to_model(name, item));
                                    publish(name, std::move(push));
                                }
                        });
    }
}

void Hub::blocklist_push(Account& account, std::vector<std::string> jids, bool blocked) {
    model::Blocklist b;
    (blocked ? b.blocked : b.unblocked) = std::move(jids);
    publish(account.name(), std::move(b));
}

}  // namespace stanzad
