#pragma once
// OMEMO stanza codecs (XEP-0384): the <encrypted/> element, the device list and the bundle,
// in both namespaces clients use: eu.siacs.conversations.axolotl (OMEMO 0.3, what most
// deployed clients speak) and urn:xmpp:omemo:2 (the current XEP, with XEP-0420 envelopes).
// Sans-I/O and stateless. Everything parsed here comes from the network: counts and sizes
// are bounded (Limits), base64 is decoded here, ids are checked to be 1..2^31-1.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pugixml.hpp>

#include "protocol/base/result.hpp"

namespace xmpp {
struct OutgoingMessage;  // protocol/im.hpp
}

namespace xmpp::omemo {

inline constexpr std::string_view ns_legacy = "eu.siacs.conversations.axolotl";
inline constexpr std::string_view node_legacy_devices = "eu.siacs.conversations.axolotl.devicelist";
inline constexpr std::string_view node_legacy_bundles = "eu.siacs.conversations.axolotl.bundles:";  // + device id
inline constexpr std::string_view ns_v2 = "urn:xmpp:omemo:2";
inline constexpr std::string_view node_v2_devices = "urn:xmpp:omemo:2:devices";
inline constexpr std::string_view node_v2_bundles = "urn:xmpp:omemo:2:bundles";  // item id = device id
inline constexpr std::string_view ns_sce = "urn:xmpp:sce:1";
inline constexpr std::string_view ns_eme = "urn:xmpp:eme:0";
inline constexpr std::string_view ns_pubsub = "http://jabber.org/protocol/pubsub";
inline constexpr std::string_view ns_pubsub_event = "http://jabber.org/protocol/pubsub#event";

enum class Version { Legacy, V2 };  // OMEMO 0.3 (axolotl) | OMEMO 2
std::string_view ns_of(Version v);
std::string_view devices_node(Version v);
// The node and item id a device's bundle lives at (0.3: a node per device; 2: one node,
// the item id is the device id).
std::pair<std::string, std::string> bundle_location(Version v, std::uint32_t device);

// What untrusted input may contain at most.
struct Limits {
    std::size_t max_keys = 256;            // <key/> elements in one header (devices of a room)
    std::size_t max_devices = 64;          // devices in one list
    std::size_t max_prekeys = 200;         // the XEP asks for about 100
    std::size_t max_key_bytes = 512;       // one encrypted key (a pre-key message is ~150)
    std::size_t max_public_key_bytes = 64;  // 33 (0.3, type byte + key) or 32 (2)
    std::size_t max_signature_bytes = 128;
    std::size_t max_payload_bytes = 96 * 1024;
    std::size_t max_iv_bytes = 16;
};

// A device id as the XEP defines it: 1..2^31-1 (§5.1 Setup). nullopt otherwise.
std::optional<std::uint32_t> parse_device_id(std::string_view text);

struct Key {
    std::string jid;             // OMEMO 2: the <keys jid=.../> it sits in; 0.3: ""
    std::uint32_t rid = 0;       // recipient device
    bool prekey = false;         // 0.3 prekey='true' / 2 kex='true': a key exchange
    std::string data;            // decoded bytes: a (PreKey)SignalMessage / OMEMOKeyExchange
};

struct Encrypted {
    Version version = Version::Legacy;
    std::uint32_t sid = 0;       // sending device
    std::vector<Key> keys;
    std::string iv;              // 0.3 only: decoded
    std::optional<std::string> payload;  // decoded; absent: an empty (key transport / heartbeat) message
};

// The <encrypted/> child of a message in either namespace, or an empty node.
pugi::xml_node find_encrypted(pugi::xml_node message);
// XEP-0384 §4.5 (2) / 0.3 §4.5: the element. Errors ("omemo-malformed") say what is wrong.
Result<Encrypted> parse_encrypted(pugi::xml_node encrypted, const Limits& limits = {});
std::string make_encrypted(const Encrypted& e);
// The keys addressed to device `rid` (of `jid` in OMEMO 2, where <keys/> name the JID).
const Key* key_for(const Encrypted& e, std::string_view jid, std::uint32_t rid);

// §4.3.1 device list (2: <devices/>, 0.3: <list/>); labels are not kept.
Result<std::vector<std::uint32_t>> parse_device_list(pugi::xml_node list, const Limits& limits = {});
std::string make_device_list(Version v, const std::vector<std::uint32_t>& devices);

struct PreKey {
    std::uint32_t id = 0;
    std::string key;             // public key bytes
};
struct Bundle {
    std::uint32_t spk_id = 0;
    std::string spk, spks, ik;   // signed pre-key, its signature, identity key (bytes)
    std::vector<PreKey> prekeys;
};
// §4.3.2 bundles.
Result<Bundle> parse_bundle(pugi::xml_node bundle, const Limits& limits = {});
std::string make_bundle(Version v, const Bundle& b);

// XEP-0060 §7.1 publish with §7.1.5 publish-options: pubsub#access_model = open (both
// nodes, XEP-0384 §4.3), and pubsub#max_items = max for the OMEMO 2 bundles node.
std::string make_publish_devices(std::string_view id, Version v, const std::vector<std::uint32_t>& devices);
std::string make_publish_bundle(std::string_view id, Version v, std::uint32_t device, const Bundle& b);
// XEP-0060 §6.5 retrieve items: a device list, a bundle.
std::string make_fetch_devices(std::string_view id, std::string_view to, Version v);
std::string make_fetch_bundle(std::string_view id, std::string_view to, Version v, std::uint32_t device);

// The payload element of the first item of a PEP notification (<event/> in a message,
// XEP-0163 §4.3) or of an items result (<pubsub/> in an iq result); the node it came from.
struct PepItem {
    std::string node, item_id;
    pugi::xml_node payload;      // empty when the item has none (a retraction)
};
std::optional<PepItem> parse_pep_item(pugi::xml_node stanza);

// XEP-0420 SCE envelope as XEP-0384 §5.4.1 profiles it: the body in <content/>, <rpad/>
// of random length, <from/>. parse returns the body ("" for none) and checks the <from/>.
std::string make_envelope(std::string_view body, std::string_view from, std::string_view rpad);
struct Envelope {
    std::string body, from;
};
Result<Envelope> parse_envelope(std::string_view xml);

// The fallback body and hints an encrypted message carries (XEP-0380 <encryption/>,
// XEP-0334 <store/>), to be put inside the <message/> next to <encrypted/>.
std::string fallback_body(Version v);
std::string message_extras(Version v);

// XEP-0384 0.3 §4.5 / §4.4 (2): the whole <message/> of an encrypted chat message: `m` as
// make_message() builds it (origin-id, correction, receipt request, marker, chat state) with
// the fallback <body/> in place of m.body, the <encrypted/> element and message_extras().
std::string make_encrypted_message(const OutgoingMessage& m, const Encrypted& e);

}  // namespace xmpp::omemo
