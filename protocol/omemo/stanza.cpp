#include "protocol/omemo/stanza.hpp"

#include <algorithm>
#include <charconv>
#include <tuple>

#include "protocol/base/base64.hpp"
#include "protocol/im.hpp"
#include "protocol/stream.hpp"
#include "protocol/xml_framer.hpp"

namespace xmpp::omemo {
namespace {

Error malformed(std::string message) { return make_error("omemo-malformed", std::move(message)); }

std::string attr(std::string_view name, std::string_view value) {
    return " " + std::string(name) + "='" + xml_escape(value) + "'";
}

// Base64 text as found in the XEP's examples (pretty-printed: whitespace inside); decoded,
// at most `max` bytes.
Result<std::string> decode(std::string_view text, std::size_t max, std::string_view what) {
    if (text.size() > (max + 2) / 3 * 4 + 256) return malformed(std::string(what) + " is too long");
    std::string compact;
    compact.reserve(text.size());
    for (char c : text)
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') compact += c;
    auto bytes = base64_decode(compact);
    if (!bytes) return malformed(std::string(what) + " is not base64");
    if (bytes.value().size() > max) return malformed(std::string(what) + " is too long");
    return bytes;
}

std::string encode(std::string_view bytes) { return base64_encode(bytes); }

bool is_true(std::string_view v) { return v == "true" || v == "1"; }

// Children named {ns}name, at most `max` of them (the rest is an error).
template <class F>
Status each_child(pugi::xml_node parent, std::string_view ns, std::string_view name, std::size_t max,
                  std::string_view what, F f) {
    std::size_t n = 0;
    for (auto c : parent.children()) {
        if (!is(c, ns, name)) continue;
        if (++n > max) return malformed("more than " + std::to_string(max) + " " + std::string(what));
        if (auto st = f(c); !st) return st;
    }
    return Ok{};
}

std::string publish_options(bool max_items) {
    // XEP-0060 §7.1.5 publish-options; XEP-0384 §4.3: access model open, and the bundles
    // node of OMEMO 2 holds one item per device (max_items = max).
    std::string out =
        "<publish-options><x xmlns='jabber:x:data' type='submit'>"
        "<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>";
    if (max_items) out += "<field var='pubsub#max_items'><value>max</value></field>";
    return out + "<field var='pubsub#access_model'><value>open</value></field></x></publish-options>";
}

}  // namespace

std::string_view ns_of(Version v) { return v == Version::Legacy ? ns_legacy : ns_v2; }
std::string_view devices_node(Version v) { return v == Version::Legacy ? node_legacy_devices : node_v2_devices; }

std::pair<std::string, std::string> bundle_location(Version v, std::uint32_t device) {
    if (v == Version::Legacy) return {std::string(node_legacy_bundles) + std::to_string(device), "current"};
    return {std::string(node_v2_bundles), std::to_string(device)};
}

std::optional<std::uint32_t> parse_device_id(std::string_view text) {
    std::uint32_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || v == 0 || v > 0x7FFFFFFFu) return std::nullopt;
    return v;
}

pugi::xml_node find_encrypted(pugi::xml_node message) {
    if (auto e = child(message, ns_v2, "encrypted")) return e;
    return child(message, ns_legacy, "encrypted");
}

Result<Encrypted> parse_encrypted(pugi::xml_node encrypted, const Limits& limits) {
    Encrypted e;
    if (is(encrypted, ns_legacy, "encrypted")) e.version = Version::Legacy;
    else if (is(encrypted, ns_v2, "encrypted")) e.version = Version::V2;
    else return malformed("not an OMEMO <encrypted/> element");
    const std::string_view ns = ns_of(e.version);
    auto header = child(encrypted, ns, "header");
    if (!header) return malformed("no <header/>");
    auto sid = parse_device_id(header.attribute("sid").value());
    if (!sid) return malformed("the sending device id (sid) is missing or not 1..2^31-1");
    e.sid = *sid;
    auto one_key = [&](pugi::xml_node k, std::string jid) -> Status {
        auto rid = parse_device_id(k.attribute("rid").value());
        if (!rid) return malformed("a <key/> without a valid rid");
        auto data = decode(k.child_value(), limits.max_key_bytes, "a <key/>");
        if (!data) return data.error();
        if (data.value().empty()) return malformed("an empty <key/>");
        bool kex = is_true(k.attribute(e.version == Version::Legacy ? "prekey" : "kex").value());
        e.keys.push_back(Key{std::move(jid), *rid, kex, std::move(data).value()});
        return Ok{};
    };
    if (e.version == Version::Legacy) {
        if (auto st = each_child(header, ns, "key", limits.max_keys, "keys",
                                 [&](pugi::xml_node k) { return one_key(k, {}); });
            !st)
            return st.error();
        auto iv = child(header, ns, "iv");
        if (!iv) return malformed("no <iv/>");
        auto bytes = decode(iv.child_value(), limits.max_iv_bytes, "the <iv/>");
        if (!bytes) return bytes.error();
        if (bytes.value().size() < 12) return malformed("the <iv/> is shorter than 12 bytes");
        e.iv = std::move(bytes).value();
    } else {
        // The bound is on keys over all <keys/> elements together.
        if (auto st = each_child(header, ns, "keys", limits.max_keys, "<keys/> elements",
                                 [&](pugi::xml_node keys) -> Status {
                                     std::string jid = keys.attribute("jid").value();
                                     if (jid.empty()) return malformed("<keys/> without a jid");
                                     return each_child(keys, ns, "key", limits.max_keys, "keys", [&](pugi::xml_node k) {
                                         if (e.keys.size() >= limits.max_keys)
                                             return Status(malformed("more than " + std::to_string(limits.max_keys) + " keys"));
                                         return one_key(k, jid);
                                     });
                                 });
            !st)
            return st.error();
    }
    if (e.keys.empty()) return malformed("no <key/> in the header");
    if (auto payload = child(encrypted, ns, "payload")) {
        auto bytes = decode(payload.child_value(), limits.max_payload_bytes, "the <payload/>");
        if (!bytes) return bytes.error();
        e.payload = std::move(bytes).value();
    }
    return e;
}

std::string make_encrypted(const Encrypted& e) {
    const std::string_view ns = ns_of(e.version);
    std::string out = "<encrypted xmlns='" + std::string(ns) + "'><header" + attr("sid", std::to_string(e.sid)) + ">";
    auto key = [&](const Key& k) {
        std::string s = "<key" + attr("rid", std::to_string(k.rid));
        if (k.prekey) s += e.version == Version::Legacy ? " prekey='true'" : " kex='true'";
        return s + ">" + encode(k.data) + "</key>";
    };
    if (e.version == Version::Legacy) {
        for (const auto& k : e.keys) out += key(k);
        out += "<iv>" + encode(e.iv) + "</iv>";
    } else {
        // §4.5: one <keys/> per recipient JID, in the order the JIDs first appear.
        std::vector<std::string> jids;
        for (const auto& k : e.keys)
            if (std::find(jids.begin(), jids.end(), k.jid) == jids.end()) jids.push_back(k.jid);
        for (const auto& jid : jids) {
            out += "<keys" + attr("jid", jid) + ">";
            for (const auto& k : e.keys)
                if (k.jid == jid) out += key(k);
            out += "</keys>";
        }
    }
    out += "</header>";
    if (e.payload) out += "<payload>" + encode(*e.payload) + "</payload>";
    return out + "</encrypted>";
}

const Key* key_for(const Encrypted& e, std::string_view jid, std::uint32_t rid) {
    for (const auto& k : e.keys)
        if (k.rid == rid && (e.version == Version::Legacy || k.jid == jid)) return &k;
    return nullptr;
}

Result<std::vector<std::uint32_t>> parse_device_list(pugi::xml_node list, const Limits& limits) {
    Version v;
    if (is(list, ns_legacy, "list")) v = Version::Legacy;
    else if (is(list, ns_v2, "devices")) v = Version::V2;
    else return malformed("not an OMEMO device list");
    std::vector<std::uint32_t> out;
    auto st = each_child(list, ns_of(v), "device", limits.max_devices, "devices", [&](pugi::xml_node d) -> Status {
        // A bad id is skipped, not fatal: one broken client must not hide the others.
        if (auto id = parse_device_id(d.attribute("id").value());
            id && std::find(out.begin(), out.end(), *id) == out.end())
            out.push_back(*id);
        return Ok{};
    });
    if (!st) return st.error();
    return out;
}

std::string make_device_list(Version v, const std::vector<std::uint32_t>& devices) {
    std::string name = v == Version::Legacy ? "list" : "devices";
    std::string out = "<" + name + " xmlns='" + std::string(ns_of(v)) + "'>";
    for (auto d : devices) out += "<device" + attr("id", std::to_string(d)) + "/>";
    return out + "</" + name + ">";
}

Result<Bundle> parse_bundle(pugi::xml_node bundle, const Limits& limits) {
    Version v;
    if (is(bundle, ns_legacy, "bundle")) v = Version::Legacy;
    else if (is(bundle, ns_v2, "bundle")) v = Version::V2;
    else return malformed("not an OMEMO bundle");
    const bool legacy = v == Version::Legacy;
    const std::string_view ns = ns_of(v);
    Bundle b;
    auto spk = child(bundle, ns, legacy ? "signedPreKeyPublic" : "spk");
    auto spks = child(bundle, ns, legacy ? "signedPreKeySignature" : "spks");
    auto ik = child(bundle, ns, legacy ? "identityKey" : "ik");
    auto prekeys = child(bundle, ns, "prekeys");
    if (!spk || !spks || !ik || !prekeys) return malformed("the bundle lacks a signed pre-key, signature, identity key or pre-keys");
    // §4.3.2: ids are 1..2^31-1; some 0.3 clients number their signed pre-key from 0.
    std::string_view spk_id_text = spk.attribute(legacy ? "signedPreKeyId" : "id").value();
    auto spk_id = spk_id_text == "0" ? std::optional<std::uint32_t>(0) : parse_device_id(spk_id_text);
    if (!spk_id) return malformed("the signed pre-key has no valid id");
    b.spk_id = *spk_id;
    for (auto [node, out, max, what] : {std::tuple{spk, &b.spk, limits.max_public_key_bytes, "the signed pre-key"},
                                        std::tuple{spks, &b.spks, limits.max_signature_bytes, "the signature"},
                                        std::tuple{ik, &b.ik, limits.max_public_key_bytes, "the identity key"}}) {
        auto bytes = decode(node.child_value(), max, what);
        if (!bytes) return bytes.error();
        if (bytes.value().empty()) return malformed(std::string(what) + " is empty");
        *out = std::move(bytes).value();
    }
    auto st = each_child(prekeys, ns, legacy ? "preKeyPublic" : "pk", limits.max_prekeys, "pre-keys",
                         [&](pugi::xml_node pk) -> Status {
                             std::string_view id_text = pk.attribute(legacy ? "preKeyId" : "id").value();
                             auto id = id_text == "0" ? std::optional<std::uint32_t>(0) : parse_device_id(id_text);
                             auto bytes = decode(pk.child_value(), limits.max_public_key_bytes, "a pre-key");
                             if (id && bytes && !bytes.value().empty())  // one bad pre-key is skipped
                                 b.prekeys.push_back(PreKey{*id, std::move(bytes).value()});
                             return Ok{};
                         });
    if (!st) return st.error();
    if (b.prekeys.empty()) return malformed("the bundle has no usable pre-key");
    return b;
}

std::string make_bundle(Version v, const Bundle& b) {
    const bool legacy = v == Version::Legacy;
    std::string out = "<bundle xmlns='" + std::string(ns_of(v)) + "'>";
    if (legacy) {
        out += "<signedPreKeyPublic" + attr("signedPreKeyId", std::to_string(b.spk_id)) + ">" + encode(b.spk) +
               "</signedPreKeyPublic><signedPreKeySignature>" + encode(b.spks) +
               "</signedPreKeySignature><identityKey>" + encode(b.ik) + "</identityKey><prekeys>";
        for (const auto& pk : b.prekeys)
            out += "<preKeyPublic" + attr("preKeyId", std::to_string(pk.id)) + ">" + encode(pk.key) + "</preKeyPublic>";
    } else {
        out += "<spk" + attr("id", std::to_string(b.spk_id)) + ">" + encode(b.spk) + "</spk><spks>" + encode(b.spks) +
               "</spks><ik>" + encode(b.ik) + "</ik><prekeys>";
        for (const auto& pk : b.prekeys) out += "<pk" + attr("id", std::to_string(pk.id)) + ">" + encode(pk.key) + "</pk>";
    }
    return out + "</prekeys></bundle>";
}

std::string make_publish_devices(std::string_view id, Version v, const std::vector<std::uint32_t>& devices) {
    // XEP-0384 §4.3.1: item id "current" (XEP-0060 §12.20 singleton).
    return "<iq type='set'" + attr("id", id) + "><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish" +
           attr("node", devices_node(v)) + "><item id='current'>" + make_device_list(v, devices) + "</item></publish>" +
           publish_options(false) + "</pubsub></iq>";
}

std::string make_publish_bundle(std::string_view id, Version v, std::uint32_t device, const Bundle& b) {
    auto [node, item] = bundle_location(v, device);
    return "<iq type='set'" + attr("id", id) + "><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish" +
           attr("node", node) + "><item" + attr("id", item) + ">" + make_bundle(v, b) + "</item></publish>" +
           publish_options(v == Version::V2) + "</pubsub></iq>";
}

std::string make_fetch_devices(std::string_view id, std::string_view to, Version v) {
    return "<iq type='get'" + (to.empty() ? std::string() : attr("to", to)) + attr("id", id) +
           "><pubsub xmlns='http://jabber.org/protocol/pubsub'><items" + attr("node", devices_node(v)) +
           "/></pubsub></iq>";
}

std::string make_fetch_bundle(std::string_view id, std::string_view to, Version v, std::uint32_t device) {
    auto [node, item] = bundle_location(v, device);
    return "<iq type='get'" + (to.empty() ? std::string() : attr("to", to)) + attr("id", id) +
           "><pubsub xmlns='http://jabber.org/protocol/pubsub'><items" + attr("node", node) + "><item" +
           attr("id", item) + "/></items></pubsub></iq>";
}

std::optional<PepItem> parse_pep_item(pugi::xml_node stanza) {
    pugi::xml_node items;
    if (auto event = child(stanza, ns_pubsub_event, "event")) items = child(event, ns_pubsub_event, "items");
    else if (auto pubsub = child(stanza, ns_pubsub, "pubsub")) items = child(pubsub, ns_pubsub, "items");
    if (!items) return std::nullopt;
    PepItem out;
    out.node = items.attribute("node").value();
    for (auto item : items.children()) {
        if (item.type() != pugi::node_element || local_name(item) != "item") continue;
        out.item_id = item.attribute("id").value();
        for (auto c : item.children())
            if (c.type() == pugi::node_element) {
                out.payload = c;
                break;
            }
        break;
    }
    return out;
}

std::string make_envelope(std::string_view body, std::string_view from, std::string_view rpad) {
    return "<envelope xmlns='urn:xmpp:sce:1'><content><body xmlns='jabber:client'>" + xml_escape(body) +
           "</body></content><rpad>" + xml_escape(rpad) + "</rpad><from" + attr("jid", from) + "/></envelope>";
}

Result<Envelope> parse_envelope(std::string_view xml) {
    pugi::xml_document doc;
    if (!doc.load_buffer(xml.data(), xml.size(), pugi::parse_default & ~pugi::parse_doctype & ~pugi::parse_pi))
        return malformed("the decrypted envelope is not XML");
    auto envelope = doc.document_element();
    if (!is(envelope, ns_sce, "envelope")) return malformed("the decrypted content is not an SCE <envelope/>");
    Envelope out;
    if (auto content = child(envelope, ns_sce, "content"))
        if (auto body = child(content, ns_client, "body")) out.body = body.child_value();
    if (auto from = child(envelope, ns_sce, "from")) out.from = from.attribute("jid").value();
    return out;
}

std::string fallback_body(Version v) {
    return v == Version::Legacy ? "I sent you an OMEMO encrypted message but your client doesn't seem to support that."
                                : "This message is OMEMO encrypted (XEP-0384).";
}

std::string message_extras(Version v) {
    // XEP-0380 §3: which encryption; XEP-0334 §4.4: archive it although the body is a stub.
    return "<encryption xmlns='urn:xmpp:eme:0'" + attr("namespace", ns_of(v)) +
           (v == Version::Legacy ? " name='OMEMO'" : " name='OMEMO 2'") + "/><store xmlns='urn:xmpp:hints'/>";
}

std::string make_encrypted_message(const OutgoingMessage& message, const Encrypted& e) {
    OutgoingMessage m = message;
    m.body = fallback_body(e.version);
    std::string xml = make_message(m);
    xml.insert(xml.rfind("</message>"), make_encrypted(e) + message_extras(e.version));
    return xml;
}

}  // namespace xmpp::omemo
