// AccountSession's contacts side: the roster (RFC 6121 §2, kept with its version §2.6 through
// im/roster.hpp), display names from vCards (XEP-0054), presence (kept for contacts only)
// and subscriptions.
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "protocol/im/session.hpp"
#include "protocol/stream.hpp"
#include "protocol/xml_framer.hpp"

namespace xmpp::im {

void AccountSession::load_roster() {
    if (roster_.known()) return;
    auto cached = store_.kept("roster");
    if (!cached || cached.value().empty()) return;  // nothing kept: the first login asks for it all
    auto j = nlohmann::json::parse(cached.value(), nullptr, false);
    if (!j.is_array()) return;
    std::vector<RosterEntry> items;
    for (const auto& i : j) {
        if (!i.is_object()) continue;
        RosterEntry e;
        e.jid = i.value("jid", "");
        e.name = i.value("name", "");
        e.subscription = i.value("subscription", "none");
        e.groups = i.value("groups", std::vector<std::string>{});
        e.ask = i.value("ask", false);
        if (!e.jid.empty()) items.push_back(std::move(e));
    }
    auto version = store_.kept("roster_ver");
    std::optional<std::string> ver;
    if (version && !version.value().empty()) ver = version.value();
    roster_.restore(std::move(items), std::move(ver));
}

void AccountSession::keep_roster() {
    // RFC 6121 §2.6: the roster and its version go together; a later login asks only for
    // what changed since.
    nlohmann::json j = nlohmann::json::array();
    for (const auto& e : roster_.items())
        j.push_back({{"jid", e.jid}, {"name", e.name}, {"subscription", e.subscription}, {"groups", e.groups},
                     {"ask", e.ask}});
    if (auto st = store_.keep({{"roster", j.dump()}, {"roster_ver", roster_.version()}}); !st)
        log(SessionPort::Level::Warn, "cannot keep the roster: " + st.error().message);
}

void AccountSession::contacts_online(bool versioning) {
    presences_.clear();  // a new session: the server sends them all again
    // RFC 6121 §2.1.3, with §2.6.3 versioning when the server offers it and we still have
    // the roster that goes with the version.
    load_roster();
    auto ver = roster_.request_version(versioning);
    port_.request({}, [&](const std::string& id) { return make_roster_get(id, ver); },
                  [this, alive = std::weak_ptr<int>(alive_)](const IqReply& r) {
                      if (!alive.lock()) return;
                      if (!r.ok()) return log(SessionPort::Level::Warn, "roster request failed: " + r.describe());
                      auto query = child(r.iq, ns_roster, "query");
                      if (!query)  // §2.6.3: pushes bring the changes, if any
                          return log(SessionPort::Level::Info, "roster unchanged since the last login");
                      roster(parse_roster(query), false, roster_version(query));
                  });
}

void AccountSession::roster(std::vector<RosterEntry> items, bool push, std::optional<std::string> version) {
    load_roster();  // a push before the login's result changes the kept roster, not an empty one
    model::Roster r;
    r.push = push;
    for (const auto& i : items) r.items.push_back(to_model(i));
    fetch_vcards(items);
    if (push) roster_.push(std::move(items), std::move(version));
    else roster_.result(std::move(items), std::move(version));
    keep_roster();
    publish(std::move(r));
}

std::vector<model::RosterItem> AccountSession::roster_items() {
    load_roster();
    std::vector<model::RosterItem> out;
    for (const auto& i : roster_.items()) out.push_back(to_model(i));
    return out;
}

std::vector<model::Presence> AccountSession::presences() const {
    std::vector<model::Presence> out;
    for (const auto& [jid, p] : presences_) out.push_back(p);
    return out;
}

bool AccountSession::sees_our_presence(const std::string& bare) {
    load_roster();
    for (const auto& item : roster_.items())
        if (item.jid == bare) return item.subscription == "from" || item.subscription == "both";
    return false;
}

void AccountSession::presence(pugi::xml_node stanza) {
    auto p = parse_presence(stanza);
    if (!p) return;
    auto from = Jid::parse(p->from);
    if (p->type == "subscribe" || p->type == "subscribed" || p->type == "unsubscribe" || p->type == "unsubscribed")
        return publish(model::Subscription{from ? from.value().bare() : p->from, p->type});
    if (!p->type.empty() && p->type != "unavailable") return;
    int priority = 0;
    if (auto pr = child(stanza, ns_client, "priority")) priority = std::atoi(pr.child_value());
    model::Presence presence{p->from, p->type.empty(), p->show, p->status, priority};
    // Kept for contacts only: anyone can send us presence from any number of JIDs.
    load_roster();
    bool contact = from && roster_.contains(from.value().bare());
    if (presence.available && contact) presences_[p->from] = presence;
    else presences_.erase(p->from);
    // Stored (and replayed) for contacts and our own other clients only; a stranger's is
    // shown to whoever is attached, like a chat state.
    bool ours = from && from.value().bare() == own_.bare();
    if (contact || ours) publish(std::move(presence));
    else port_.transient(std::move(presence));
}

std::map<std::string, std::string>& AccountSession::vcard_nicks() {
    if (!vcard_nicks_) {
        vcard_nicks_.emplace();
        auto saved = store_.kept("vcard_nicks");
        auto j = saved ? nlohmann::json::parse(saved.value(), nullptr, false) : nlohmann::json();
        if (j.is_object())
            for (const auto& [jid, nick] : j.items())
                if (nick.is_string()) (*vcard_nicks_)[jid] = nick.get<std::string>();
    }
    return *vcard_nicks_;
}

model::RosterItem AccountSession::to_model(const RosterEntry& e) {
    auto& nicks = vcard_nicks();
    auto it = nicks.find(e.jid);
    return {e.jid, e.name, e.subscription, e.groups, it == nicks.end() ? "" : it->second};
}

void AccountSession::fetch_vcards(const std::vector<RosterEntry>& items) {
    auto& nicks = vcard_nicks();
    for (const auto& e : items) {
        if (!e.name.empty() || e.subscription == "remove" || nicks.count(e.jid)) continue;
        nicks[e.jid] = "";  // asked (once): an answer fills it in
        port_.request(e.jid, [&](const std::string& id) { return make_vcard_get(id, e.jid); },
                      [this, alive = std::weak_ptr<int>(alive_), jid = e.jid](const IqReply& r) {
                          if (alive.lock()) vcard_answer(jid, r);
                      });
    }
}

void AccountSession::vcard_answer(const std::string& jid, const IqReply& r) {
    auto& known = vcard_nicks();
    if (!r.ok()) {
        if (r.local()) known.erase(jid);  // ask again next time
        return;
    }
    auto names = parse_vcard_names(r.iq);
    std::string nick = !names.nick.empty() ? names.nick : names.full_name;
    known[jid] = nick;
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : known) j[k] = v;
    (void)store_.keep("vcard_nicks", j.dump());
    if (nick.empty()) return;
    // Front ends learn the display name as a change of that item.
    for (const auto& item : roster_.items())
        if (item.jid == jid) {
            model::Roster push;
            push.push = true;
            push.items.push_back(to_model(item));
            publish(std::move(push));
        }
}

}  // namespace xmpp::im
