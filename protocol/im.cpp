#include "protocol/im.hpp"

#include <openssl/evp.h>

#include <algorithm>

#include "protocol/base/base64.hpp"
#include "protocol/stream.hpp"
#include "protocol/xml_framer.hpp"

namespace xmpp {
namespace {

// XEP-0085 §2: the five chat states. Anything else in the namespace is ignored when parsed
// and never serialized (the state is an element name).
bool is_chat_state(std::string_view state) {
    return state == "active" || state == "composing" || state == "paused" || state == "inactive" ||
           state == "gone";
}

// The prepared bare form of a JID, "" when it does not parse.
std::string bare_of(std::string_view jid) {
    auto parsed = Jid::parse(jid);
    return parsed ? parsed.value().bare() : std::string();
}

// The same address, as written or once prepared (RFC 7622 §3).
bool same_jid(std::string_view a, std::string_view b) {
    if (a == b) return true;
    auto pa = Jid::parse(a), pb = Jid::parse(b);
    return pa && pb && pa.value() == pb.value();
}

std::string attr(std::string_view name, std::string_view value) {
    return " " + std::string(name) + "='" + xml_escape(value) + "'";
}

// The attribute only when it has a value.
std::string optional_attr(std::string_view name, std::string_view value) {
    return value.empty() ? std::string() : attr(name, value);
}

std::string text_element(std::string_view name, std::string_view text) {
    return "<" + std::string(name) + ">" + xml_escape(text) + "</" + std::string(name) + ">";
}

std::string iq_head(std::string_view type, std::string_view id, std::string_view to = {}) {
    return "<iq type='" + std::string(type) + "'" + optional_attr("to", to) + attr("id", id) + ">";
}

// <item jid=.../> children of a XEP-0191 element.
std::string block_items(const std::vector<std::string>& jids) {
    std::string out;
    for (const auto& j : jids) out += "<item" + attr("jid", j) + "/>";
    return out;
}

}  // namespace

std::optional<StanzaError> parse_stanza_error(pugi::xml_node stanza) {
    auto error = child(stanza, ns_client, "error");
    if (!error) return std::nullopt;
    // RFC 6120 §8.3.2: the first element in the stanzas namespace is the defined condition;
    // <text/> (§8.3.2, also in that namespace) is for people.
    StanzaError out;
    for (auto c : error.children()) {
        if (c.type() != pugi::node_element || namespace_of(c) != ns_stanzas) continue;
        if (local_name(c) == "text") out.text = c.child_value();
        else if (out.condition.empty()) out.condition = std::string(local_name(c));
    }
    if (out.condition.empty()) out.condition = "undefined-condition";
    return out;
}

std::string stanza_error(pugi::xml_node stanza) {
    auto error = parse_stanza_error(stanza);
    return error ? error->describe() : "";
}

std::optional<ReceivedMessage> parse_message(pugi::xml_node stanza, const Jid& own) {
    if (!is(stanza, ns_client, "message")) return std::nullopt;
    ReceivedMessage m;
    m.from = stanza.attribute("from").value();
    m.to = stanza.attribute("to").value();
    m.type = stanza.attribute("type").value();
    if (m.type.empty()) m.type = "normal";  // RFC 6121 §5.2.2
    m.id = stanza.attribute("id").value();
    const bool groupchat = m.type == "groupchat";
    const std::string room = groupchat ? bare_of(m.from) : std::string();
    std::string own_sid, room_sid;
    for (auto c : stanza.children()) {
        if (c.type() != pugi::node_element) continue;
        std::string_view ns = namespace_of(c), name = local_name(c);
        if (ns == ns_client) {
            if (name == "body" && m.body.empty()) m.body = c.child_value();
            else if (name == "subject" && !m.has_subject) {
                // XEP-0045 §8.1: an empty <subject/> clears the room's subject.
                m.has_subject = true;
                m.subject = c.child_value();
            }
        } else if (ns == ns_sid) {
            // XEP-0359 §3: 'by' names the entity that assigned the id: our account for our
            // own archive, the room for a groupchat message (§3, XEP-0313 §3.5). A stanza-id
            // by anyone else is not ours to trust (§6). Whether `room` really is a room we
            // joined is for the caller to check.
            if (name == "stanza-id") {
                std::string_view by = c.attribute("by").value();
                if (by == own.bare() && own_sid.empty()) own_sid = c.attribute("id").value();
                else if (groupchat && !room.empty() && by == room && room_sid.empty())
                    room_sid = c.attribute("id").value();
            } else if (name == "origin-id") {
                m.origin_id = c.attribute("id").value();  // §2.2
            }
        } else if (ns == ns_delay && name == "delay") {
            if (m.delay_stamp.empty()) m.delay_stamp = c.attribute("stamp").value();  // XEP-0203
        } else if (ns == ns_receipts) {
            if (name == "received") m.receipt_for = c.attribute("id").value();  // XEP-0184 §7
            else if (name == "request") m.receipt_requested = true;
        } else if (ns == ns_chatstates) {
            // XEP-0085 §5.6: at most one chat state per message.
            if (m.chat_state.empty() && is_chat_state(name)) m.chat_state = std::string(name);
        } else if (ns == ns_correct && name == "replace") {
            m.replace_id = c.attribute("id").value();  // XEP-0308 §3
        } else if (ns == ns_markers) {
            if (name == "markable") m.markable = true;  // XEP-0333 §4.1
            else if (name == "displayed") m.displayed_id = c.attribute("id").value();  // §4.2
        } else if (ns == ns_nick && name == "nick") {
            m.nick = c.child_value();  // XEP-0172
        } else if ((ns == omemo::ns_legacy || ns == omemo::ns_v2) && name == "encrypted" && !m.encrypted()) {
            auto e = omemo::parse_encrypted(c);  // XEP-0384 §4.5 / 0.3 §4.5
            if (e) m.omemo = std::move(e).value();
            else m.omemo_error = e.error().message;
        }
    }
    // In a room, the room's archive id is the one that its archive (which we query for the
    // room's history) knows; our own archive's id only when the room gave none.
    m.stanza_id = !room_sid.empty() ? room_sid : own_sid;
    if (m.type == "error") {
        m.error = stanza_error(stanza);
        if (m.error.empty()) m.error = "undefined-condition";  // an error without <error/>
    }
    return m;
}

std::optional<Carbon> parse_carbon(pugi::xml_node stanza, const Jid& own) {
    if (!is(stanza, ns_client, "message")) return std::nullopt;
    for (auto c : stanza.children()) {
        if (c.type() != pugi::node_element) continue;
        std::string_view name = local_name(c);  // before the namespace: most children are neither
        if ((name != "sent" && name != "received") || namespace_of(c) != ns_carbons) continue;
        Carbon carbon;
        carbon.direction = std::string(name);
        carbon.message = child(child(c, ns_forward, "forwarded"), ns_client, "message");
        // XEP-0280 §7 and §8: the wrapper's 'from' MUST be the user's bare JID; §11: copies
        // from anyone else MUST be ignored. A wrapper without 'from' counts as forged too:
        // RFC 6120 §8.1.2.1 would read it as from our account, but §7/§8 require the
        // server to stamp it, and a rule with no exceptions cannot be tricked.
        carbon.forged = std::string_view(stanza.attribute("from").value()) != own.bare();
        return carbon;
    }
    return std::nullopt;
}

std::string make_carbons_enable(std::string_view id) {
    // XEP-0280 §4
    return iq_head("set", id) + "<enable xmlns='urn:xmpp:carbons:2'/></iq>";
}

std::optional<ReceivedPresence> parse_presence(pugi::xml_node stanza) {
    if (!is(stanza, ns_client, "presence")) return std::nullopt;
    ReceivedPresence p;
    p.from = stanza.attribute("from").value();
    p.type = stanza.attribute("type").value();
    if (auto show = child(stanza, ns_client, "show")) p.show = show.child_value();
    if (auto status = child(stanza, ns_client, "status")) p.status = status.child_value();
    return p;
}

std::vector<RosterEntry> parse_roster(pugi::xml_node query) {
    std::vector<RosterEntry> items;
    for (auto item : query.children()) {
        if (!is(item, ns_roster, "item")) continue;
        auto jid = Jid::parse(item.attribute("jid").value());
        if (!jid) continue;
        RosterEntry e;
        e.jid = jid.value().full();
        e.name = item.attribute("name").value();
        e.subscription = item.attribute("subscription").value();
        if (e.subscription.empty()) e.subscription = "none";
        // RFC 6121 §2.1.2.2: 'subscribe' is the only value 'ask' can have.
        e.ask = std::string_view(item.attribute("ask").value()) == "subscribe";
        for (auto g : item.children())
            if (is(g, ns_roster, "group")) e.groups.emplace_back(g.child_value());
        items.push_back(std::move(e));
    }
    return items;
}

std::optional<std::string> roster_version(pugi::xml_node query) {
    auto ver = query.attribute("ver");  // RFC 6121 §2.6.3: may be empty, which is a version too
    if (!ver) return std::nullopt;
    return std::string(ver.value());
}

std::string make_message(const OutgoingMessage& message) {
    const bool chat = message.type == "chat";
    std::string out = "<message" + attr("to", message.to) + optional_attr("type", message.type) +
                      optional_attr("id", message.id) + ">";
    if (!message.body.empty()) out += text_element("body", message.body);
    if (!message.id.empty()) out += "<origin-id xmlns='urn:xmpp:sid:0'" + attr("id", message.id) + "/>";  // XEP-0359 §2.2
    if (!message.replace_id.empty())
        out += "<replace xmlns='urn:xmpp:message-correct:0'" + attr("id", message.replace_id) + "/>";  // XEP-0308 §3
    if (chat) {
        // XEP-0184 §5.3 discourages receipts in groupchat; XEP-0333 markers and XEP-0085
        // states on our 1:1 messages only (XEP-0085 §5.3: every content message SHOULD
        // say <active/>).
        if (message.request_receipt) out += "<request xmlns='urn:xmpp:receipts'/>";
        if (message.markable) out += "<markable xmlns='urn:xmpp:chat-markers:0'/>";
        if (is_chat_state(message.chat_state))
            out += "<" + message.chat_state + " xmlns='http://jabber.org/protocol/chatstates'/>";
    }
    return out + "</message>";
}

std::string make_message(std::string_view to, std::string_view type, std::string_view body, std::string_view id) {
    OutgoingMessage m;
    m.to = to;
    m.type = type;
    m.body = body;
    m.id = id;
    return make_message(m);
}

std::string make_receipt(std::string_view to, std::string_view for_id, std::string_view id) {
    // XEP-0184 §7: the ack message SHOULD carry only <received/>, so no XEP-0334 hint
    // (chat/normal messages are kept for an offline recipient anyway, RFC 6121 §8.5.2.2;
    // and Prosody 0.12's mod_mam archives every message with a urn:xmpp:receipts child,
    // receipts included, whatever we say). §5.4: never a <request/> in it.
    return "<message" + attr("to", to) + optional_attr("id", id) + "><received xmlns='urn:xmpp:receipts'" +
           attr("id", for_id) + "/></message>";
}

std::string make_chat_state(std::string_view to, std::string_view type, std::string_view state) {
    if (!is_chat_state(state)) return "";
    // XEP-0085 §5.6 standalone notification; §5.8: not to be stored offline, which the
    // XEP-0334 §4.2 <no-store/> hint asks of the servers on the way.
    return "<message" + attr("to", to) + optional_attr("type", type) + "><" + std::string(state) +
           " xmlns='http://jabber.org/protocol/chatstates'/><no-store xmlns='urn:xmpp:hints'/></message>";
}

std::string make_displayed(std::string_view to, std::string_view type, std::string_view for_id,
                           std::string_view id) {
    // XEP-0333 §4.2 (§4.3 in a room: `for_id` is the room's stanza-id). The XEP-0334 §4.4
    // <store/> hint keeps the marker in the archives, so that the user's other clients and
    // the sender's see it when they catch up.
    return "<message" + attr("to", to) + optional_attr("type", type) + optional_attr("id", id) +
           "><displayed xmlns='urn:xmpp:chat-markers:0'" + attr("id", for_id) +
           "/><store xmlns='urn:xmpp:hints'/></message>";
}

std::string make_direct_invite(std::string_view to, std::string_view room, std::string_view reason,
                               std::string_view password) {
    // XEP-0249 §2: 'jid' is required, 'password' and 'reason' optional.
    return "<message" + attr("to", to) + "><x xmlns='jabber:x:conference'" + attr("jid", room) +
           optional_attr("password", password) + optional_attr("reason", reason) + "/></message>";
}

std::optional<ArchivedMessage> parse_mam_result(pugi::xml_node stanza, const Jid& own) {
    return parse_mam_result(stanza, own, own.bare());
}

std::optional<ArchivedMessage> parse_mam_result(pugi::xml_node stanza, const Jid& own, std::string_view archive) {
    if (!is(stanza, ns_client, "message")) return std::nullopt;
    auto result = child(stanza, ns_mam, "result");
    if (!result) return std::nullopt;
    // XEP-0313 §8.2: results must come from the archive we queried. A result without 'from'
    // comes from our own server on behalf of our account (RFC 6120 §8.1.2.1), so it is
    // trusted only when we queried our own archive.
    std::string_view from = stanza.attribute("from").value();
    if (from.empty() ? !same_jid(archive, own.bare()) : !same_jid(from, archive)) return std::nullopt;
    auto forwarded = child(result, ns_forward, "forwarded");
    auto inner = child(forwarded, ns_client, "message");
    if (!inner) return std::nullopt;
    auto m = parse_message(inner, own);
    if (!m) return std::nullopt;
    m->stanza_id = result.attribute("id").value();  // §4.2: the archive id
    if (auto delay = child(forwarded, ns_delay, "delay")) m->delay_stamp = delay.attribute("stamp").value();
    return ArchivedMessage{result.attribute("queryid").value(), std::move(*m)};
}

std::optional<MamFin> parse_mam_fin(pugi::xml_node iq) {
    auto fin = child(iq, ns_mam, "fin");
    if (!fin) return std::nullopt;
    MamFin f;
    std::string_view complete = fin.attribute("complete").value();
    f.complete = complete == "true" || complete == "1";
    auto set = child(fin, ns_rsm, "set");  // XEP-0059 §2.2: first and last of the page
    f.first = child(set, ns_rsm, "first").child_value();
    f.last = child(set, ns_rsm, "last").child_value();
    return f;
}

std::string make_mam_query(std::string_view id, const MamQuery& query) {
    // XEP-0313 §4.1: a data form of filters; §4.3: paged with XEP-0059.
    std::string q = iq_head("set", id, query.to) + "<query xmlns='urn:xmpp:mam:2'" +
                    optional_attr("queryid", query.query_id) +
                    "><x xmlns='jabber:x:data' type='submit'>"
                    "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>";
    if (!query.with.empty()) q += "<field var='with'><value>" + xml_escape(query.with) + "</value></field>";  // §4.1.1
    if (!query.start.empty()) q += "<field var='start'><value>" + xml_escape(query.start) + "</value></field>";  // §4.1.2
    q += "</x><set xmlns='http://jabber.org/protocol/rsm'><max>" + std::to_string(query.max) + "</max>";
    if (!query.after.empty()) q += text_element("after", query.after);  // §4.3.2
    if (query.before) q += query.before->empty() ? "<before/>" : text_element("before", *query.before);  // §4.3.3
    return q + "</set></query></iq>";
}

std::string make_mam_query(std::string_view id, std::string_view query_id, std::string_view after,
                           std::string_view start, int max) {
    MamQuery q;
    q.query_id = query_id;
    q.after = after;
    if (after.empty()) q.start = start;  // the page after a known id needs no start
    q.max = max;
    return make_mam_query(id, q);
}

std::string make_presence(std::string_view show, std::string_view status, int priority, std::string_view extra) {
    std::string out = "<presence>";
    if (!show.empty()) out += text_element("show", show);
    if (!status.empty()) out += text_element("status", status);
    if (priority != 0) out += text_element("priority", std::to_string(priority));
    out += extra;
    return out == "<presence>" ? "<presence/>" : out + "</presence>";
}

std::string make_subscription(std::string_view to, std::string_view type) {
    return "<presence" + attr("to", to) + attr("type", type) + "/>";
}

std::string make_roster_get(std::string_view id, std::optional<std::string_view> ver) {
    // RFC 6121 §2.1.3; §2.6.3: 'ver' only when the server supports versioning, "" for a
    // first fetch.
    return iq_head("get", id) + "<query xmlns='jabber:iq:roster'" + (ver ? attr("ver", *ver) : std::string()) +
           "/></iq>";
}

std::string make_roster_set(std::string_view id, std::string_view jid, std::string_view name,
                            const std::vector<std::string>& groups) {
    // RFC 6121 §2.3.1 (§2.4: an update is the same request, with what is to be kept).
    std::string item = "<item" + attr("jid", jid) + optional_attr("name", name);
    if (groups.empty()) {
        item += "/>";
    } else {
        item += ">";
        for (const auto& g : groups) item += text_element("group", g);
        item += "</item>";
    }
    return iq_head("set", id) + "<query xmlns='jabber:iq:roster'>" + item + "</query></iq>";
}

std::string make_roster_remove(std::string_view id, std::string_view jid) {
    // RFC 6121 §2.5.1
    return iq_head("set", id) + "<query xmlns='jabber:iq:roster'><item" + attr("jid", jid) +
           " subscription='remove'/></query></iq>";
}

std::string make_blocklist_get(std::string_view id) {
    return iq_head("get", id) + "<blocklist xmlns='urn:xmpp:blocking'/></iq>";  // XEP-0191 §3.2
}

std::string make_block(std::string_view id, const std::vector<std::string>& jids) {
    // XEP-0191 §3.3 (a <block/> without items is a bad-request: the caller's to avoid).
    return iq_head("set", id) + "<block xmlns='urn:xmpp:blocking'>" + block_items(jids) + "</block></iq>";
}

std::string make_unblock(std::string_view id, const std::vector<std::string>& jids) {
    // XEP-0191 §3.4; §3.5: no items unblocks everyone.
    if (jids.empty()) return iq_head("set", id) + "<unblock xmlns='urn:xmpp:blocking'/></iq>";
    return iq_head("set", id) + "<unblock xmlns='urn:xmpp:blocking'>" + block_items(jids) + "</unblock></iq>";
}

std::vector<std::string> parse_block_items(pugi::xml_node element) {
    std::vector<std::string> jids;
    for (auto item : element.children()) {
        if (!is(item, ns_blocking, "item")) continue;
        if (auto jid = Jid::parse(item.attribute("jid").value())) jids.push_back(jid.value().full());
    }
    return jids;
}

std::string caps_verification(std::string_view category, std::string_view type, std::string_view name,
                              const std::vector<std::string>& features) {
    // XEP-0115 §5.1. One identity without xml:lang: 'category/type//name<'; then the
    // features in "i;octet" order (std::string compares as unsigned bytes), each followed
    // by '<'; SHA-1, base64.
    std::string s = std::string(category) + "/" + std::string(type) + "//" + std::string(name) + "<";
    std::vector<std::string> sorted = features;
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());  // §5.4: no duplicates
    for (const auto& f : sorted) s += f + "<";
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(s.data(), s.size(), digest, &len, EVP_sha1(), nullptr) != 1) return "";
    return base64_encode(std::string_view(reinterpret_cast<const char*>(digest), len));
}

std::string make_caps(std::string_view node, std::string_view ver) {
    // XEP-0115 §4
    return "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1'" + attr("node", node) + attr("ver", ver) + "/>";
}

std::string make_vcard_get(std::string_view id, std::string_view to) {
    // XEP-0054 §3.3 (another user's vCard, at the bare JID); no 'to': our own (§3.1).
    return iq_head("get", id, to) + "<vCard xmlns='vcard-temp'/></iq>";
}

VcardNames parse_vcard_names(pugi::xml_node iq) {
    auto vcard = child(iq, ns_vcard, "vCard");
    return VcardNames{child(vcard, ns_vcard, "NICKNAME").child_value(), child(vcard, ns_vcard, "FN").child_value()};
}

Status check_raw_stanza(std::string_view xml) {
    XmlFramer framer;
    framer.feed("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
    framer.feed(xml);
    int stanzas = 0;
    while (auto e = framer.next()) {
        if (auto* err = std::get_if<FramerError>(&*e)) return make_error("bad-xml", err->message);
        if (std::holds_alternative<StreamEnd>(*e)) return make_error("bad-xml", "a stream end tag is not a stanza");
        auto* s = std::get_if<Stanza>(&*e);
        if (!s) continue;
        if (++stanzas > 1) return make_error("bad-xml", "more than one element");
        auto root = s->root();
        if (!(is(root, ns_client, "message") || is(root, ns_client, "presence") || is(root, ns_client, "iq")))
            return make_error("bad-xml", "the element must be <message/>, <presence/> or <iq/> in jabber:client, not <" +
                                             std::string(root.name()) + ">");
    }
    // Everything must have been one complete element: nothing left half-open.
    if (stanzas == 0 || framer.buffered_bytes() != 0) return make_error("bad-xml", "not one complete element");
    return Ok{};
}

}  // namespace xmpp
