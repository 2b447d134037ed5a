#include "protocol/muc.hpp"

#include <charconv>

#include "protocol/base/jid.hpp"
#include "protocol/im.hpp"
#include "protocol/stream.hpp"
#include "protocol/xml_framer.hpp"

namespace xmpp {
namespace {

std::string attr(std::string_view name, std::string_view value) {
    return " " + std::string(name) + "='" + xml_escape(value) + "'";
}

std::string text_element(std::string_view name, std::string_view text) {
    return "<" + std::string(name) + ">" + xml_escape(text) + "</" + std::string(name) + ">";
}

// The occupant JID "room@service/nick" (§4).
std::string occupant(std::string_view room, std::string_view nick) {
    return std::string(room) + "/" + std::string(nick);
}

// Reasons come pretty-printed (XEP-0045 §7.8.2 Example 58): without the outer whitespace.
std::string trimmed(std::string_view text) {
    constexpr std::string_view space = " \t\r\n";
    auto first = text.find_first_not_of(space);
    if (first == std::string_view::npos) return "";
    return std::string(text.substr(first, text.find_last_not_of(space) - first + 1));
}

// XEP-0402 §2, XEP-0048 §2.1: xs:boolean.
bool boolean(std::string_view value) { return value == "true" || value == "1"; }

// The defined condition of a stanza error (RFC 6120 §8.3.3), "" without one.
std::string_view error_condition(pugi::xml_node error) {
    for (auto c : error.children())
        if (c.type() == pugi::node_element && namespace_of(c) == ns_stanzas && local_name(c) != "text")
            return local_name(c);
    return {};
}

// A room's address as bookmarks give it: a bare JID, prepared; "" when unusable.
std::string room_jid(std::string_view text) {
    auto jid = Jid::parse(text);
    if (!jid || !jid.value().is_bare()) return "";
    return jid.value().bare();
}

}  // namespace

std::optional<MucPresence> parse_muc_presence(pugi::xml_node stanza) {
    if (!is(stanza, ns_client, "presence")) return std::nullopt;
    auto from = Jid::parse(stanza.attribute("from").value());
    if (!from || from.value().is_bare()) return std::nullopt;
    MucPresence p;
    p.type = stanza.attribute("type").value();
    // §7.2.2: one muc#user <x/> with an <item/>; an error (§7.2.5-§7.2.11) carries the
    // muc <x/> of our join, or nothing of MUC at all.
    auto x = child(stanza, ns_muc_user, "x");
    if (!x && p.type != "error") return std::nullopt;
    p.room = from.value().bare();
    p.nick = from.value().resource();
    if (auto show = child(stanza, ns_client, "show")) p.show = show.child_value();
    if (auto status = child(stanza, ns_client, "status")) p.status = status.child_value();
    if (p.type == "error") {
        p.error = stanza_error(stanza);
        if (p.error.empty()) p.error = "undefined-condition";  // an error without <error/>
    }
    auto item = child(x, ns_muc_user, "item");
    p.affiliation = item.attribute("affiliation").value();
    p.role = item.attribute("role").value();
    p.jid = item.attribute("jid").value();  // §7.2.3: only where the room shows real JIDs
    // §8.2, §9.1: who kicked or banned, by nick or by bare JID, and why.
    auto actor = child(item, ns_muc_user, "actor");
    p.actor = actor.attribute("nick").value();
    if (p.actor.empty()) p.actor = actor.attribute("jid").value();
    p.reason = trimmed(child(item, ns_muc_user, "reason").child_value());
    for (auto status : x.children()) {
        if (!is(status, ns_muc_user, "status")) continue;
        std::string_view code = status.attribute("code").value();
        int value = 0;
        auto [end, ec] = std::from_chars(code.data(), code.data() + code.size(), value);
        // §12, §16.6: three-digit codes.
        if (ec == std::errc() && end == code.data() + code.size() && code.size() == 3) p.codes.insert(value);
    }
    // §7.6: the unavailable presence of a nick change names the new nick.
    if (p.codes.count(muc_status::new_nick)) p.new_nick = item.attribute("nick").value();
    // §10.9: the room is gone; its reason, when the item gives none.
    if (auto destroy = child(x, ns_muc_user, "destroy")) {
        p.destroyed = true;
        if (p.reason.empty()) p.reason = trimmed(child(destroy, ns_muc_user, "reason").child_value());
    }
    return p;
}

std::optional<Invite> parse_invite(pugi::xml_node message) {
    if (!is(message, ns_client, "message")) return std::nullopt;
    // An error bounces the payload back to us (RFC 6120 §8.3.1): not an invitation.
    if (std::string_view(message.attribute("type").value()) == "error") return std::nullopt;
    std::string_view from = message.attribute("from").value();
    // XEP-0045 §7.8.2 first: a room may add a jabber:x:conference <x/> to its mediated
    // invitation for old clients (the implementation note there).
    if (auto invite = child(child(message, ns_muc_user, "x"), ns_muc_user, "invite")) {
        auto room = Jid::parse(from);  // the room sends it from its own JID
        if (!room) return std::nullopt;
        Invite i;
        i.room = room.value().bare();
        i.from = invite.attribute("from").value();
        i.reason = trimmed(child(invite, ns_muc_user, "reason").child_value());
        i.password = child(child(message, ns_muc_user, "x"), ns_muc_user, "password").child_value();
        return i;
    }
    if (auto x = child(message, ns_conference, "x")) {
        // XEP-0249 §2: 'jid' is the room, and is required.
        std::string room = room_jid(x.attribute("jid").value());
        if (room.empty()) return std::nullopt;
        Invite i;
        i.room = std::move(room);
        i.from = std::string(from);
        i.reason = x.attribute("reason").value();
        i.password = x.attribute("password").value();
        i.direct = true;
        return i;
    }
    return std::nullopt;
}

std::string make_muc_join(std::string_view room, std::string_view nick, std::string_view password,
                          std::string_view presence_extra) {
    // §7.2.1: available presence to the occupant JID with a muc <x/>; §7.2.5: the password
    // in it; §7.2.14: <history maxstanzas='0'/>, no discussion history.
    std::string x = "<x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/>";
    if (!password.empty()) x += text_element("password", password);
    x += "</x>";
    return "<presence" + attr("to", occupant(room, nick)) + ">" + std::string(presence_extra) + x + "</presence>";
}

std::string make_muc_leave(std::string_view room, std::string_view nick, std::string_view reason) {
    // §7.14: unavailable presence to the occupant JID, a custom exit message as <status/>.
    std::string head = "<presence" + attr("to", occupant(room, nick)) + " type='unavailable'";
    if (reason.empty()) return head + "/>";
    return head + ">" + text_element("status", reason) + "</presence>";
}

std::string make_muc_subject(std::string_view room, std::string_view subject, std::string_view id) {
    // §8.1: groupchat with a <subject/> and no <body/>; an empty one clears the subject.
    std::string out = "<message" + attr("to", room) + " type='groupchat'" + (id.empty() ? "" : attr("id", id)) + ">";
    out += subject.empty() ? std::string("<subject/>") : text_element("subject", subject);
    return out + "</message>";
}

std::string make_muc_kick(std::string_view id, std::string_view room, std::string_view nick,
                          std::string_view reason) {
    // §8.2: role 'none' for the nick.
    std::string item = "<item" + attr("nick", nick) + " role='none'";
    item += reason.empty() ? "/>" : ">" + text_element("reason", reason) + "</item>";
    return "<iq type='set'" + attr("to", room) + attr("id", id) +
           "><query xmlns='http://jabber.org/protocol/muc#admin'>" + item + "</query></iq>";
}

std::string make_muc_self_ping(std::string_view id, std::string_view room, std::string_view nick) {
    // XEP-0410 §3.2: a XEP-0199 ping to our own occupant JID.
    return "<iq type='get'" + attr("to", occupant(room, nick)) + attr("id", id) +
           "><ping xmlns='urn:xmpp:ping'/></iq>";
}

SelfPing classify_self_ping(pugi::xml_node iq) {
    // XEP-0410 §3.2, the answers to a self-ping, and §3.3 (a room that answers itself).
    if (!is(iq, ns_client, "iq")) return SelfPing::Unknown;
    std::string_view type = iq.attribute("type").value();
    if (type == "result") return SelfPing::Joined;
    if (type != "error") return SelfPing::Unknown;
    auto error = child(iq, ns_client, "error");
    std::string_view condition = error_condition(error);
    // The room passed the ping on to one of our clients, which does not do pings: joined.
    if (condition == "service-unavailable" || condition == "feature-not-implemented") return SelfPing::Joined;
    // The room or its server cannot be reached: no decision, treat it like a timeout.
    if (condition == "remote-server-not-found" || condition == "remote-server-timeout") return SelfPing::Unknown;
    // A temporary error (RFC 6120 §8.3.2 type 'wait', e.g. a rate limit) says nothing
    // about us either.
    if (std::string_view(error.attribute("type").value()) == "wait") return SelfPing::Unknown;
    // not-acceptable is the recommended answer to a non-occupant; item-not-found means the
    // nick is no longer ours (another client of ours changed it): rejoin either way. §3.2
    // reads any other error (some rooms say not-allowed or bad-request) as "probably not
    // joined any more", to be answered with a rejoin too.
    return SelfPing::NotJoined;
}

std::string make_bookmarks_get(std::string_view id) {
    // XEP-0402 §3.2: all items of the node.
    return "<iq type='get'" + attr("id", id) +
           "><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>";
}

std::vector<Bookmark> parse_bookmarks(pugi::xml_node iq) {
    std::vector<Bookmark> out;
    auto items = child(child(iq, ns_pubsub, "pubsub"), ns_pubsub, "items");
    if (std::string_view(items.attribute("node").value()) != ns_bookmarks) return out;
    for (auto item : items.children()) {
        if (!is(item, ns_pubsub, "item")) continue;
        // XEP-0402 §2: the item id is the room's JID; the <conference/> payload all else.
        auto conference = child(item, ns_bookmarks, "conference");
        if (!conference) continue;
        Bookmark b;
        b.room = room_jid(item.attribute("id").value());
        if (b.room.empty()) continue;
        b.name = conference.attribute("name").value();
        b.autojoin = boolean(conference.attribute("autojoin").value());
        b.nick = child(conference, ns_bookmarks, "nick").child_value();
        b.password = child(conference, ns_bookmarks, "password").child_value();
        out.push_back(std::move(b));
    }
    return out;
}

std::string make_legacy_bookmarks_get(std::string_view id) {
    // XEP-0049 §2.3 (Example 2): the storage:bookmarks element of XEP-0048 §2.
    return "<iq type='get'" + attr("id", id) +
           "><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>";
}

std::vector<Bookmark> parse_legacy_bookmarks(pugi::xml_node iq) {
    std::vector<Bookmark> out;
    auto storage = child(child(iq, ns_private, "query"), ns_legacy_bookmarks, "storage");
    for (auto conference : storage.children()) {
        if (!is(conference, ns_legacy_bookmarks, "conference")) continue;
        // XEP-0048 §2.1: 'jid' required, 'name' and 'autojoin' optional.
        Bookmark b;
        b.room = room_jid(conference.attribute("jid").value());
        if (b.room.empty()) continue;
        b.name = conference.attribute("name").value();
        b.autojoin = boolean(conference.attribute("autojoin").value());
        b.nick = child(conference, ns_legacy_bookmarks, "nick").child_value();
        b.password = child(conference, ns_legacy_bookmarks, "password").child_value();
        out.push_back(std::move(b));
    }
    return out;
}

}  // namespace xmpp
