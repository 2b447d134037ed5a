#pragma once
// The neutral model that every front end speaks: events that happened (numbered by the
// store) and commands that front ends ask for. No XML here, and no JSON: the daemon's hub
// turns protocol events into model events and model commands into stanzas; each front end
// renders them its own way (frontends/jsonl/, frontends/irc/).
#include <cstdint>
#include <optional>
#include <string>
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
};

// What became of a message we send: accepted (on disk), sent (written to the stream),
// acked (the server has it, XEP-0198), delivered (XEP-0184), failed (with the error).
struct MessageState {
    std::string msg_id;
    std::string state;
    std::string error;          // for failed: the condition, and text if any
};

struct Presence {
    std::string from;
    bool available = true;
    std::string show;           // "" (online) | away | chat | dnd | xa
    std::string status;
};

struct RosterItem {
    std::string jid, name, subscription;  // subscription: none | to | from | both | remove
    std::vector<std::string> groups;
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

using EventBody = std::variant<Message, MessageState, Presence, Roster, Subscription, AccountState>;

struct Event {
    Seq seq = 0;                // given by the store; increasing, never reused
    std::string account;
    std::string stamp;          // UTC, RFC 3339 with milliseconds: 2026-11-25T12:00:00.000Z
    EventBody body;
};

// The event's name on the wire of every front end: "message", "message-state", ...
inline const char* event_name(const EventBody& body) {
    static constexpr const char* names[] = {"message", "message-state", "presence",
                                            "roster", "subscription", "account-state"};
    return names[body.index()];
}

// One account as front ends see it.
struct AccountInfo {
    std::string account, jid, state, reason, bound_jid;
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
};
struct ListAccounts {};
struct Send {
    std::string account, to, body;
    std::string type = "chat";
    std::string client_id;         // becomes msg_id and origin-id; "" lets the daemon choose
};
struct GetRoster {
    std::string account;
};
struct SetPresence {
    std::string account, show, status;
};
struct ChangeSubscription {
    std::string account, jid;
    std::string kind;              // subscribe | approve | deny
};
struct Raw {
    std::string account, xml;
};
using Command = std::variant<Hello, Ack, ListAccounts, Send, GetRoster, SetPresence, ChangeSubscription, Raw>;

// The hub's answer to a command. `error_code` empty means success; the other fields are
// filled as the command calls for.
struct Reply {
    std::string error_code, error_message;
    std::string msg_id;                 // Send
    bool duplicate = false;             // Send: this client_id was already accepted
    Seq cursor = 0, last_seq = 0;       // Hello, Ack
    std::vector<AccountInfo> accounts;  // Hello, ListAccounts
    std::vector<RosterItem> items;      // GetRoster

    static Reply error(std::string code, std::string message) {
        Reply r;
        r.error_code = std::move(code);
        r.error_message = std::move(message);
        return r;
    }
    bool ok() const { return error_code.empty(); }
};

}  // namespace model
