#include "protocol/im.hpp"

#include "protocol/stream.hpp"
#include "protocol/xml_framer.hpp"

namespace xmpp {

std::optional<ReceivedMessage> parse_message(pugi::xml_node stanza, const Jid& own) {
    if (!is(stanza, ns_client, "message")) return std::nullopt;
    ReceivedMessage m;
    m.from = stanza.attribute("from").value();
    m.to = stanza.attribute("to").value();
    m.type = stanza.attribute("type").value();
    if (m.type.empty()) m.type = "normal";  // RFC 6121 §5.2.2
    m.id = stanza.attribute("id").value();
    if (auto body = child(stanza, ns_client, "body")) m.body = body.child_value();
    for (auto c : stanza.children()) {
        // XEP-0359 §3.2: trust a stanza-id only when 'by' is our own account.
        if (is(c, ns_sid, "stanza-id") && std::string_view(c.attribute("by").value()) == own.bare())
            m.stanza_id = c.attribute("id").value();
        else if (is(c, ns_sid, "origin-id"))
            m.origin_id = c.attribute("id").value();
        else if (is(c, ns_delay, "delay") && m.delay_stamp.empty())
            m.delay_stamp = c.attribute("stamp").value();
        else if (is(c, ns_receipts, "received"))
            m.receipt_for = c.attribute("id").value();
        else if (is(c, ns_receipts, "request"))
            m.receipt_requested = true;
    }
    if (m.type == "error") {
        auto error = child(stanza, ns_client, "error");
        std::string condition, text;
        for (auto c : error.children()) {
            if (namespace_of(c) != ns_stanzas) continue;
            if (local_name(c) == "text") text = c.child_value();
            else if (condition.empty()) condition = std::string(local_name(c));
        }
        m.error = (condition.empty() ? "undefined-condition" : condition) + (text.empty() ? "" : " (" + text + ")");
    }
    return m;
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
        for (auto g : item.children())
            if (is(g, ns_roster, "group")) e.groups.emplace_back(g.child_value());
        items.push_back(std::move(e));
    }
    return items;
}

std::string make_message(std::string_view to, std::string_view type, std::string_view body, std::string_view id) {
    return "<message to='" + xml_escape(to) + "' type='" + xml_escape(type) + "' id='" + xml_escape(id) +
           "'><body>" + xml_escape(body) + "</body><origin-id xmlns='urn:xmpp:sid:0' id='" + xml_escape(id) +
           "'/>" + (type == "chat" ? "<request xmlns='urn:xmpp:receipts'/>" : "") + "</message>";
}

std::optional<ArchivedMessage> parse_mam_result(pugi::xml_node stanza, const Jid& own) {
    if (!is(stanza, ns_client, "message")) return std::nullopt;
    auto result = child(stanza, ns_mam, "result");
    if (!result) return std::nullopt;
    std::string_view from = stanza.attribute("from").value();
    if (!from.empty() && from != own.bare()) return std::nullopt;  // §4.2: only our archive
    auto forwarded = child(result, ns_forward, "forwarded");
    auto inner = child(forwarded, ns_client, "message");
    if (!inner) return std::nullopt;
    auto m = parse_message(inner, own);
    if (!m) return std::nullopt;
    m->stanza_id = result.attribute("id").value();
    if (auto delay = child(forwarded, ns_delay, "delay")) m->delay_stamp = delay.attribute("stamp").value();
    return ArchivedMessage{result.attribute("queryid").value(), std::move(*m)};
}

std::optional<MamFin> parse_mam_fin(pugi::xml_node iq) {
    auto fin = child(iq, ns_mam, "fin");
    if (!fin) return std::nullopt;
    MamFin f;
    std::string_view complete = fin.attribute("complete").value();
    f.complete = complete == "true" || complete == "1";
    f.last = child(child(fin, ns_rsm, "set"), ns_rsm, "last").child_value();
    return f;
}

std::string make_mam_query(std::string_view id, std::string_view query_id, std::string_view after,
                           std::string_view start, int max) {
    std::string q = "<iq type='set' id='" + xml_escape(id) + "'><query xmlns='urn:xmpp:mam:2' queryid='" +
                    xml_escape(query_id) + "'><x xmlns='jabber:x:data' type='submit'>"
                    "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>";
    if (after.empty() && !start.empty())
        q += "<field var='start'><value>" + xml_escape(start) + "</value></field>";
    q += "</x><set xmlns='http://jabber.org/protocol/rsm'><max>" + std::to_string(max) + "</max>";
    if (!after.empty()) q += "<after>" + xml_escape(after) + "</after>";
    return q + "</set></query></iq>";
}

std::string make_presence(std::string_view show, std::string_view status) {
    std::string out = "<presence>";
    if (!show.empty()) out += "<show>" + xml_escape(show) + "</show>";
    if (!status.empty()) out += "<status>" + xml_escape(status) + "</status>";
    return out == "<presence>" ? "<presence/>" : out + "</presence>";
}

std::string make_subscription(std::string_view to, std::string_view type) {
    return "<presence to='" + xml_escape(to) + "' type='" + xml_escape(type) + "'/>";
}

std::string make_roster_get(std::string_view id) {
    return "<iq type='get' id='" + xml_escape(id) + "'><query xmlns='jabber:iq:roster'/></iq>";
}

std::optional<std::int64_t> parse_datetime(std::string_view t) {
    auto digits = [&t](std::size_t pos, std::size_t n) -> std::optional<int> {
        if (pos + n > t.size()) return std::nullopt;
        int v = 0;
        for (std::size_t i = pos; i < pos + n; ++i) {
            if (t[i] < '0' || t[i] > '9') return std::nullopt;
            v = v * 10 + (t[i] - '0');
        }
        return v;
    };
    auto Y = digits(0, 4), M = digits(5, 2), D = digits(8, 2), h = digits(11, 2), m = digits(14, 2), s = digits(17, 2);
    if (!Y || !M || !D || !h || !m || !s || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' ||
        t[16] != ':' || *M < 1 || *M > 12 || *D < 1 || *D > 31 || *h > 23 || *m > 59 || *s > 60)
        return std::nullopt;
    std::size_t pos = 19;
    int ms = 0;
    if (pos < t.size() && t[pos] == '.') {
        std::size_t start = ++pos;
        while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') ++pos;
        if (pos == start) return std::nullopt;
        for (std::size_t i = start; i < start + 3; ++i) ms = ms * 10 + (i < pos ? t[i] - '0' : 0);
    }
    int offset_min = 0;
    if (pos < t.size() && t[pos] == 'Z') {
        ++pos;
    } else if (pos < t.size() && (t[pos] == '+' || t[pos] == '-')) {
        auto oh = digits(pos + 1, 2), om = digits(pos + 4, 2);
        if (!oh || !om || t[pos + 3] != ':') return std::nullopt;
        offset_min = (t[pos] == '-' ? -1 : 1) * (*oh * 60 + *om);
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != t.size()) return std::nullopt;
    // Days from the civil date (Howard Hinnant's algorithm), no time zone database needed.
    int y = *Y - (*M <= 2);
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (*M + (*M > 2 ? -3 : 9)) + 2) / 5 + *D - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    std::int64_t days = static_cast<std::int64_t>(era) * 146097 + doe - 719468;
    std::int64_t secs = days * 86400 + *h * 3600 + *m * 60 + *s - offset_min * 60;
    return secs * 1000 + ms;
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
