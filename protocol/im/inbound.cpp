#include "protocol/im/inbound.hpp"

#include "frontends/model/model.hpp"
#include "protocol/base/jid.hpp"

namespace xmpp::im {

InboundIdentity identify(const ReceivedMessage& m, const InboundContext& c) {
    InboundIdentity out;
    auto from = Jid::parse(m.from);
    out.outgoing = c.carbon == "sent" ||
                   (c.room.empty() && c.from_archive && (m.from.empty() || (from && from.value().bare() == c.own)));
    std::string sender = !c.room.empty() ? m.from : from ? from.value().bare() : m.from;
    out.sender = out.outgoing ? c.own : sender;
    // XEP-0359 §3.2: a stanza-id is only as good as its 'by'; parse_message kept it for our own
    // account or the room a groupchat message claims, which is only ours to trust in a
    // room we are in.
    if (!(c.room.empty() && m.type == "groupchat")) out.stanza_id = m.stanza_id;
    out.msg_id = !out.stanza_id.empty() ? out.stanza_id : !m.origin_id.empty() ? m.origin_id : m.id;

    out.conversation = model::conversation_of(out.outgoing, m.from, m.to);
    // A trusted stanza-id is the event's msg_id, and the store keeps an index of msg_ids per
    // conversation: every copy of the message (live, resent, from the archive) has the same
    // conversation, so that index finds it and no row of its own is needed. A message with
    // no conversation is not in that index, and one without a 'from' may be filed under
    // another conversation by another copy (live, it is not outgoing; from our archive, it
    // is: RFC 6120 §8.1.2.1 lets a stanza from our own account come without one): for
    // those the stanza-id is a key as before. The copies of one stanza carry the same JIDs,
    // as the server wrote them.
    out.by_msg_id = !out.stanza_id.empty() && !out.conversation.empty() && !m.from.empty();
    std::string sid_key = out.stanza_id.empty() || out.by_msg_id ? ""
                          : c.room.empty()                       ? "sid:" + out.stanza_id
                                                                 : "rsid:" + c.room + ":" + out.stanza_id;
    std::string oid_key = m.origin_id.empty() ? "" : sender_key("oid", out.sender, m.origin_id);
    // An id equal to the origin-id, as most clients send it, is neither looked up nor kept
    // on its own: every copy of the message carries the origin-id (XEP-0359 §2.2: servers
    // MUST preserve it), and a correction naming the id finds the "oid:" row
    // (AccountSession::resolve_replace). One random-key row fewer per such message.
    std::string id_key = m.id.empty() || m.id == m.origin_id ? "" : sender_key("id", out.sender, m.id);
    for (const auto& k : {sid_key, oid_key})
        if (!k.empty()) out.keys.push_back(k);
    if (!id_key.empty() && (out.outgoing || (out.keys.empty() && !out.by_msg_id))) out.keys.push_back(id_key);
    if (out.keys.empty() && !out.by_msg_id) return out;

    // The first key is the one it is stored under; the others are kept beside it (the id
    // too when it is not looked up: a correction may name it, XEP-0308).
    for (const auto& k : {oid_key, id_key})
        if (!k.empty() && (out.keys.empty() || k != out.keys.front())) out.aliases.emplace_back(k, "");
    // XEP-0333 §4: the marker names the message's own id. With markers off the alias is not
    // kept, so a marker sent after they are turned on, for a message that came before, names
    // the msg_id instead (docs/json-protocol.md "displayed").
    if (c.markers && c.room.empty() && !m.id.empty() && m.id != out.msg_id)
        out.aliases.emplace_back("rid:" + out.msg_id, m.id);
    return out;
}

}  // namespace xmpp::im
