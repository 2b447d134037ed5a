#pragma once
// The neutral model that every front end speaks: events that happened (numbered by the
// store) and commands that front ends ask for. No XML here, and no JSON: the IM core
// (protocol/im/) turns stanzas into model events and model commands into stanzas, the
// store keeps the events (frontends/model/codec.hpp), and each front end renders them its
// own way (frontends/jsonl/, frontends/irc/).
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace model {

using Seq = std::int64_t;

// A chat message, either received or sent by us (outgoing).
struct Message {
    std::string from, to;
    std::string type = "chat";  // chat | groupchat | normal | headline
    std::string body;
    std::string msg_id;         // our origin-id for outgoing; stanza-id or id for incoming
    bool delayed = false;       // XEP-0203: sent earlier, delivered now
    bool outgoing = false;
    std::string carbon;         // XEP-0280: "sent" | "received" by another of the user's clients; ""
    std::string replaces;       // XEP-0308: the msg_id (else the sender's id) of the message corrected
    bool history = false;       // fetched by a history request: old, not new to the user
    // End-to-end encryption (XEP-0384): "omemo" for a message that came encrypted, else "".
    std::string encryption;
    // An encrypted message that could not be decrypted: why (the body is then empty).
    std::string error;
    // The sending device's trust (encrypted messages): "blind" (its identity key is the one
    // first seen for that device), "changed" (it differs from the one first seen).
    std::string trust;
};

// The conversation a message is filed under: the other side's bare JID (a room's for the
// room's messages), "" when the message names none. The store's index of msg_ids is per
// conversation (daemon/store.cpp), and the IM core looks incoming stanza-ids up in it.
inline std::string_view conversation_of(bool outgoing, std::string_view from, std::string_view to) {
    std::string_view jid = outgoing ? to : from;
    return jid.substr(0, jid.find('/'));
}
inline std::string_view conversation_of(const Message& m) { return conversation_of(m.outgoing, m.from, m.to); }

// What became of a message we send, in the order a message goes through the states;
// Failed is final and may come at any point. Who may move a state, and only forward, is
// the IM core's rule (protocol/im/delivery.hpp). The names (to_string / parse_delivery)
// are the JSON protocol's and the store's.
enum class Delivery {
    Accepted,   // stored, not yet written to a stream
    Sent,       // written to the stream
    Acked,      // the server has it (XEP-0198, or an iq answered after it)
    Delivered,  // a XEP-0184 receipt came back from the recipient, or the room echoed it
    Displayed,  // a XEP-0333 displayed marker came back
    Failed,     // an error came back, or we gave up; `error` says why
};
// The enum value whose name is `name`, given its values' names in order.
template <class Enum, std::size_t N>
std::optional<Enum> from_name(const std::string_view (&names)[N], std::string_view name) {
    for (std::size_t i = 0; i < N; ++i)
        if (names[i] == name) return static_cast<Enum>(i);
    return std::nullopt;
}

inline constexpr std::string_view delivery_names[] = {"accepted", "sent", "acked", "delivered", "displayed", "failed"};
inline std::string_view to_string(Delivery state) { return delivery_names[static_cast<int>(state)]; }
inline std::optional<Delivery> parse_delivery(std::string_view name) { return from_name<Delivery>(delivery_names, name); }

struct MessageState {
    std::string msg_id;
    Delivery state = Delivery::Accepted;
    std::string error;          // for failed: the condition, and text if any
};

struct Presence {
    std::string from;
    bool available = true;
    std::string show;           // "" (online) | away | chat | dnd | xa
    std::string status;
    int priority = 0;           // RFC 6121 §4.7.2.3
};

struct RosterItem {
    std::string jid, name, subscription;  // subscription: none | to | from | both | remove
    std::vector<std::string> groups;
    std::string nick;           // what the contact calls itself: its vCard's NICKNAME, else FN
};

struct Roster {
    std::vector<RosterItem> items;
    bool push = false;          // one changed item (RFC 6121 §2.1.6), else the whole roster
};

// A contact asks for, grants, or withdraws a presence subscription (RFC 6121 §3).
struct Subscription {
    std::string from;
    std::string kind;           // subscribe | subscribed | unsubscribe | unsubscribed
};

struct AccountState {
    std::string state;          // connecting | online | disconnected | failed | stopped
    std::string reason;         // why disconnected or failed
    std::string jid;            // the bound full JID when online
};

// XEP-0085: a contact is typing... Transient: never stored (seq 0), never replayed.
struct ChatState {
    std::string from, to, state;  // active | composing | paused | inactive | gone
};

// Our own state in a room (XEP-0045).
struct RoomState {
    std::string room;
    std::string state;          // joining | joined | left | kicked | banned | removed | destroyed | error
    std::string nick;
    std::string reason, actor;
};

struct OccupantInfo {
    std::string nick, jid, role, affiliation, show, status;
    friend bool operator==(const OccupantInfo&, const OccupantInfo&) = default;
};

// What happened to an occupant: came, went, changed role/affiliation/show/status, changed
// nick, was kicked or banned (XEP-0045 §7.2.3, §7.6, §9.1, §9.2). Its name on the wire:
// to_string() / occupant_change().
enum class OccupantChange { Join, Leave, Update, Nick, Kick, Ban };
inline constexpr std::string_view occupant_change_names[] = {"join", "leave", "update", "nick", "kick", "ban"};
inline std::string_view to_string(OccupantChange c) { return occupant_change_names[static_cast<int>(c)]; }
inline std::optional<OccupantChange> occupant_change(std::string_view name) {
    return from_name<OccupantChange>(occupant_change_names, name);
}

// Someone else in a room changed.
struct Occupant {
    std::string room;
    OccupantInfo who;
    OccupantChange change = OccupantChange::Update;
    std::string new_nick;       // change nick
    std::string actor, reason;  // kick, ban
};

struct Subject {
    std::string room, subject, nick;
};

struct Invite {
    std::string room, from, reason, password;
    bool direct = false;
};

// XEP-0191 push: the server's block list changed.
struct Blocklist {
    std::vector<std::string> blocked, unblocked;
};

// The user has read a conversation up to `stamp` (one marker per conversation, shared by
// every front end; IRCv3 read-marker).
struct ReadMarker {
    std::string peer, stamp;
};

using EventBody = std::variant<Message, MessageState, Presence, Roster, Subscription, AccountState, ChatState,
                               RoomState, Occupant, Subject, Invite, Blocklist, ReadMarker>;

struct Event {
    Seq seq = 0;                // given by the store; increasing, never reused
    std::string account;
    std::string stamp;          // UTC, RFC 3339 with milliseconds: 2026-11-25T12:00:00.000Z
    EventBody body;
};

// The event's name on the wire of every front end: "message", "message-state", ...
inline const char* event_name(const EventBody& body) {
    static constexpr const char* names[] = {"message", "message-state", "presence", "roster",
                                            "subscription", "account-state", "chat-state", "room",
                                            "occupant", "subject", "invite", "blocklist", "read-marker"};
    static_assert(std::size(names) == std::variant_size_v<EventBody>);
    return names[body.index()];
}

// One account as front ends see it.
struct AccountInfo {
    std::string account, jid, state, reason, bound_jid;
    std::string auth;        // while online: "SCRAM-SHA-256-PLUS, tls-exporter", "EXTERNAL", ...
    std::string connection;  // while online: "example.org:5223 (direct TLS) at [2001:db8::1]:5223"
    // While online: what the server offers that matters for reliability (XEP-0198, MAM, carbons).
    struct Capabilities {
        bool known = false;  // false while not online
        bool stream_management = false, archive = false, carbons = false;
    } capabilities = {};
    int priority = 0;        // of our presence: the config's, or the last presence op's
};

// Commands: what a front end asks the daemon to do. Fields are validated by the session
// that parsed them (types, JID syntax); the hub checks what only it knows (accounts).
struct Hello {
    std::string client;            // the name cursors are kept under
    std::optional<Seq> since;      // replay after this seq instead of the cursor
    bool replay = true;
};
struct Ack {
    Seq seq = 0;
    // False: the cursor may reach the disk with the next commit instead of one of its own
    // (IRC's PONG: its replay is at least once anyway, docs/irc.md); the reply then says
    // nothing about the disk. The JSON `ack` is durable before its reply.
    bool durable = true;
};
struct ListAccounts {};
struct Send {
    std::string account, to, body;
    std::string type;              // chat | groupchat | normal; "": groupchat to a room we are in, else chat
    std::string client_id;         // becomes msg_id and origin-id; "" lets the daemon choose
    std::string replace;           // XEP-0308: the msg_id of our earlier message this corrects
};
struct GetRoster {
    std::string account;
};
struct SetPresence {
    std::string account, show, status;
    std::optional<int> priority;   // RFC 6121 §4.7.2.3, -128..127; unset keeps the current one
};
struct ChangeSubscription {
    std::string account, jid;
    std::string kind;              // subscribe | unsubscribe | approve | deny
};
struct Raw {
    std::string account, xml;
};
struct Join {
    std::string account, room, nick, password;  // nick "" = the local part of the account's JID
};
struct Part {
    std::string account, room, reason;
};
struct ListRooms {
    std::string account;
};
struct SetSubject {
    std::string account, room, subject;
};
struct Kick {
    std::string account, room, nick, reason;
};
struct SendInvite {
    std::string account, room, jid, reason;
};
struct History {
    std::string account, with;
    std::optional<std::string> before;  // "" = the newest page
    std::string after;
    int max = 50;
};
struct SendChatState {
    std::string account, to, state;
};
struct Displayed {
    std::string account, to, msg_id;
};
struct RosterSet {
    std::string account, jid, name;
    std::vector<std::string> groups;
};
struct RosterRemove {
    std::string account, jid;
};
struct Block {
    std::string account;
    std::vector<std::string> jids;
    bool block = true;             // false: unblock (no jids: everyone)
};
struct GetBlocklist {
    std::string account;
};
// The contacts' presences as last seen (each available resource).
struct ListPresences {
    std::string account;
};
// Stored messages of one conversation (account, peer's bare JID): within seqs or stamps
// (exclusive), the oldest `limit` or the newest.
struct StoredMessages {
    std::string account, peer;
    std::optional<Seq> after, before;
    std::string after_stamp, before_stamp;
    bool newest = false;
    int limit = 50;
    std::string around_msg_id;     // resolve this msg_id to a seq first (reply.cursor)
};
// Conversations whose last message is between the stamps ("" for open), newest first.
struct Conversations {
    std::string after_stamp, before_stamp;
    int limit = 50;
};
// Read marker: set (stamp given; only forward) or get (stamp empty).
struct SetReadMarker {
    std::string account, peer, stamp;
};
// Turn an account off (close its stream, stay offline) or on again.
struct SetAccountEnabled {
    std::string account;
    bool enabled = true;
};
// Take back a message that has not left the daemon yet (state accepted: queued while the
// account is offline); it becomes failed with the error "cancelled".
struct CancelSend {
    std::string account, msg_id;
};
// `stanzactl pin`: connect as the account would, report the server's certificate, change
// nothing.
struct ProbeCertificate {
    std::string account;
};
// XEP-0384 (issue 14 §4): outgoing encryption with one contact: "omemo" | "off", or
// "default" (the account's `encryption`); mode "" only reads it.
struct SetEncryption {
    std::string account, jid, mode;
};
// Issue 14 §5: our OMEMO device and the known devices of `jid` ("": ours only), with their
// fingerprints and trust.
struct OmemoDevices {
    std::string account, jid;
};
// Issue 14 §5: trust or distrust one device of `jid`.
struct OmemoTrust {
    std::string account, jid;
    std::uint32_t device = 0;
    bool trusted = true;
};
using Command = std::variant<Hello, Ack, ListAccounts, Send, GetRoster, SetPresence, ChangeSubscription, Raw, Join,
                             Part, ListRooms, SetSubject, Kick, SendInvite, History, SendChatState, Displayed,
                             RosterSet, RosterRemove, Block, GetBlocklist, ListPresences, StoredMessages,
                             Conversations, SetReadMarker, SetAccountEnabled, ProbeCertificate, CancelSend,
                             SetEncryption, OmemoDevices, OmemoTrust>;

// What a server presented in its TLS handshake (ProbeCertificate).
struct CertificateInfo {
    std::string server;              // "example.org:5222 (STARTTLS) at 127.0.0.1:5222"
    std::string pin;                 // "sha256/BASE64", the form of tls_pin
    std::string subject, issuer, not_before, not_after;
    std::vector<std::string> names;  // "DNS:example.org", "IP:127.0.0.1"
    std::string verify_error;        // empty: trusted by the account's CAs and name check
};

// One OMEMO device (OmemoDevices): `trust` is "own" for ours, else blind | trusted |
// distrusted | undecided | changed; `listed`: on the device list as last fetched.
struct OmemoDeviceInfo {
    std::string jid;
    std::uint32_t device = 0;
    std::string fingerprint, trust;
    bool listed = false;
};

struct ConversationInfo {
    std::string account, peer, last_stamp;
};

// A room as `rooms` and `join` report it.
struct RoomInfo {
    std::string room, state, nick, reason, subject;
    bool created = false;
    std::vector<OccupantInfo> occupants;
};

// The hub's answer to a command. `error_code` empty means success; the other fields are
// filled as the command calls for.
struct Reply {
    std::string error_code, error_message;
    std::string msg_id;                 // Send
    bool duplicate = false;             // Send: this client_id was already accepted
    Seq cursor = 0, last_seq = 0;       // Hello, Ack
    std::vector<AccountInfo> accounts;  // Hello, ListAccounts
    std::vector<RosterItem> items;      // GetRoster
    std::vector<RoomInfo> rooms;        // ListRooms; Join: the one room
    std::vector<Event> messages;        // History
    std::string first, last;            // History: archive ids at both ends of the page
    bool complete = false;              // History
    std::string source;                 // History: "archive" (XEP-0313) or "local" (the store)
    bool sent = false;                  // Displayed
    std::vector<std::string> jids;      // GetBlocklist
    std::vector<Presence> presences;    // ListPresences
    std::vector<ConversationInfo> conversations;  // Conversations
    std::string stamp;                  // SetReadMarker: the marker now
    CertificateInfo certificate;        // ProbeCertificate
    std::string encryption;             // SetEncryption: "omemo" | "off" | "default"
    std::string encryption_default;     // SetEncryption: the account's (auto | omemo | off)
    std::vector<OmemoDeviceInfo> omemo_devices;  // OmemoDevices

    static Reply error(std::string code, std::string message) {
        Reply r;
        r.error_code = std::move(code);
        r.error_message = std::move(message);
        return r;
    }
    bool ok() const { return error_code.empty(); }
};

}  // namespace model
