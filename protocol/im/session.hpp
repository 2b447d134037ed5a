#pragma once
// The IM core: one account as front ends see it (issue 13's AccountSession): its messages
// both ways, its archives, rooms and contacts, and the front-end commands about them.
// Sans-I/O: the owner hands it what the stream brought (parsed stanzas, acks, iq answers),
// what front ends ask, and the time; the session decides what is stored, what front ends
// see, and which stanzas go out, through two narrow interfaces (SessionStore for the
// account's rows, SessionPort for the stream, the clock and everything else the owner
// does) and a third for end-to-end encryption (Encryption: the account's OmemoSession).
// daemon/account_link.cpp implements the first two over the SQLite store and the live
// account; tests/unit/im_session_fixture.hpp all three over memory. Files: session.cpp (messages), session_
// archive.cpp, session_rooms.cpp, session_contacts.cpp, session_commands.cpp.
//
// Inbound: every path a message can take (live, a carbon, offline storage, a resumption,
// an archive page) becomes one event (im::identify, then the store's de-duplication keys);
// forged carbons are dropped (XEP-0280 §11). Outbound: the outbox entry is on disk before
// the reply, then it goes out; its state only moves forward (im/delivery.hpp), and a message
// that went out on kMaxAttempts sessions without an ack fails instead of going again.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "frontends/model/model.hpp"
#include "protocol/base/jid.hpp"
#include "protocol/base/result.hpp"
#include "protocol/im.hpp"
#include "protocol/im/catchup.hpp"
#include "protocol/im/chat_states.hpp"
#include "protocol/im/delivery.hpp"
#include "protocol/im/features.hpp"
#include "protocol/im/inbound.hpp"
#include "protocol/im/request.hpp"
#include "protocol/im/room.hpp"
#include "protocol/im/roster.hpp"
#include "protocol/muc.hpp"

namespace xmpp::im {

template <class C, class... Kinds>
constexpr bool is_one_of = (std::is_same_v<C, Kinds> || ...);

// One message of the outbox as the store keeps it.
struct Outgoing {
    std::string msg_id;      // origin-id (XEP-0359 §5); unique per account
    std::string to, type, body;
    std::string state;       // to_string(Delivery)
    std::string replace_id;  // XEP-0308: the msg_id of the earlier message this corrects
};

// One change of a value kept for the account (nullopt deletes it), stored together with
// the message it goes with (the OMEMO session state a decryption moved).
struct KeptWrite {
    std::string key;
    std::optional<std::string> value;
};

// Which messages of a conversation: between seqs and/or stamps (all bounds exclusive); the
// oldest `limit` of them, or the newest.
struct MessageRange {
    std::optional<model::Seq> after, before;
    std::string after_stamp, before_stamp;  // RFC 3339 UTC as stored
    bool newest = false;
};

// A front end's time (XEP-0082 / RFC 3339, any offset and precision) in the one form the
// store uses, so that comparisons as text are comparisons of times. False when it is no time.
bool normalize_stamp(std::string& stamp);

// The account's rows. Answers at once (the store is local); an error is logged by the
// session, which then goes on as safely as it can (never acknowledging what is not stored).
class SessionStore {
public:
    virtual ~SessionStore() = default;
    virtual std::optional<Outgoing> outgoing(const std::string& msg_id) = 0;
    virtual Result<std::vector<Outgoing>> pending() = 0;  // accepted or sent, in queue order
    // Stores `entry` and its events in one transaction; false when its msg_id was there.
    virtual Result<bool> enqueue(const Outgoing& entry, std::vector<model::Event>& events) = 0;
    virtual Status set_state(const std::string& msg_id, Delivery state, const std::string& error,
                             model::Event& event) = 0;
    // What is stored under a de-duplication key or alias: the seq of the event (as text),
    // or for "rid:MSG_ID" the id a marker must carry. And an event by its seq.
    virtual std::optional<std::string> inbound(const std::string& key) = 0;
    virtual std::optional<model::Event> event(model::Seq seq) = 0;
    virtual Status append(model::Event& event) = 0;
    // Stores `event` under `key` (with its aliases and `writes`) unless the key is known:
    // true when stored now. An empty key: stored in any case (the caller found it new by its
    // msg_id, message_seq).
    virtual Result<bool> append_once(model::Event& event, const std::string& key,
                                     const std::vector<std::pair<std::string, std::string>>& aliases,
                                     const std::vector<KeptWrite>& writes) = 0;
    virtual Status keep(const std::vector<KeptWrite>& writes) = 0;
    // A value kept for the account ("" when there is none), and a change of one.
    virtual Result<std::string> kept(const std::string& key) = 0;
    virtual Status keep(const std::string& key, const std::string& value) = 0;
    // Stored messages of a conversation (`peer`: a contact's or room's bare JID), and the
    // seq of one by its msg_id.
    virtual Result<std::vector<model::Event>> messages(const std::string& peer, const MessageRange& range,
                                                       std::size_t limit) = 0;
    virtual Result<std::optional<model::Seq>> message_seq(const std::string& peer, const std::string& msg_id) = 0;
};

// What the owner does for the session: the stream and its requests, the clock, front ends,
// logs and the account's settings.
class SessionPort {
public:
    enum class Level { Info, Warn, Error };
    virtual ~SessionPort() = default;
    // Writes a stanza to the current stream; false when there is none (nothing written).
    // `tag`: the msg_id whose acknowledgement (XEP-0198) the stanza carries, or "".
    virtual bool send(std::string_view xml, const std::string& tag) = 0;
    // True when send() takes a stanza now (AccountSession::send stores a message as sent
    // on the strength of it, before it calls send()).
    virtual bool online() = 0;
    // Counts the account's sessions (new or resumed): which one the stream is.
    virtual unsigned long session() = 0;
    virtual std::string bound_jid() = 0;  // our full JID on the current stream
    virtual std::string state_name() = 0;  // the account's state for people: online, connecting, ...
    virtual std::string wall_clock() = 0;  // now, RFC 3339 UTC as stored
    // Our presence for this and later sessions (RFC 6121 §4.7), sent by the owner.
    virtual void set_presence(const std::string& show, const std::string& status, std::optional<int> priority) = 0;
    // The user lets us send XEP-0333 displayed markers (and so asks contacts for theirs).
    virtual bool chat_markers() = 0;
    // An <iq/> to `to` ("" for our server) with an id the owner chooses; `done` is called
    // once: with the answer, or with why none came (timeout, not online, disconnected).
    virtual void request(const std::string& to, const IqMaker& make, IqCallback done) = 0;
    // The time, for join timeouts, self-pings and rejoins (a monotonic clock).
    virtual std::chrono::steady_clock::time_point now() = 0;
    virtual std::chrono::steady_clock::time_point online_at() = 0;  // when this session came online
    virtual std::string presence_payload() = 0;  // what our presences carry (caps, priority, status)
    virtual const Capabilities& capabilities() = 0;  // what the server offers (im/features.hpp)
    struct ConfiguredRoom {
        std::string jid, nick;  // nick "" for the default
    };
    virtual std::vector<ConfiguredRoom> configured_rooms() = 0;  // the configuration's [[account.room]]
    // A stored event, for every attached front end.
    virtual void deliver(const model::Event& event) = 0;
    // An event that is not kept (chat states): to live front ends only, stamped now.
    virtual void transient(model::EventBody body) = 0;
    virtual void log(Level level, const std::string& text) = 0;
    virtual std::string new_id() = 0;  // a fresh random id (UUID v4) for msg_ids and receipts
};

// End-to-end encryption as the session meets it (XEP-0384): the account's OmemoSession
// (omemo_session.hpp), given with AccountSession::set_encryption. Until one is given, the
// session sends in clear and shows received <encrypted/> messages as undecryptable.
class Encryption {
public:
    virtual ~Encryption() = default;
    // Fills `msg` from the <encrypted/> of `m` (the plaintext, or an empty body and the
    // error); the state changes to store with it, or nullopt when there is no device (then
    // decrypted() is not called). decrypted(): whether the message (and those changes) got
    // stored.
    virtual std::optional<std::vector<KeptWrite>> decrypt(const ReceivedMessage& m, model::Message& msg,
                                                          const std::string& room) = 0;
    virtual void decrypted(bool stored) = 0;
    virtual void key_transport(const ReceivedMessage& m) = 0;  // an <encrypted/> without payload
    // Whether an outbox entry is to go encrypted, and its stanza encrypted now (or why not).
    virtual bool encrypted(const std::string& msg_id) = 0;
    virtual Result<std::string> encrypt(const Outgoing& entry, const OutgoingMessage& m) = 0;
    // A message that will never be transmitted again (acked, beyond, or failed).
    virtual void finished(const std::string& msg_id) = 0;
    // A new session (or a restarted daemon's): our device and the lists are checked again.
    virtual void online() = 0;
    // XEP-0163 §4.3: true when `message` is a PEP notification it handles (device lists).
    virtual bool event(pugi::xml_node message) = 0;
};

class AccountSession {
public:
    using Respond = std::function<void(model::Reply)>;
    // A room (im/room.hpp), with what only the session holds.
    struct Room : im::Room {
        using im::Room::Room;
        std::vector<Respond> waiters;  // join and nick-change requests to answer
        std::string catch_up_query;    // the room's archive page query out ("" for none)
    };

    // A stanza the server keeps refusing (a stream error for its size, say) must not keep the
    // account reconnecting: after this many sessions without an ack it fails.
    static constexpr int kMaxAttempts = 5;
    // Prosody and ejabberd end the stream for stanzas over 256 KiB; a body of at most 64 KiB
    // as XML leaves room for everything around it.
    static constexpr std::size_t kMaxBodyXml = 65'536;

    AccountSession(std::string account, Jid own, SessionStore& store, SessionPort& port);
    // The account's end-to-end encryption; it must outlive this session.
    void set_encryption(Encryption& encryption) { encryption_ = &encryption; }

    // --- Front-end commands (session_commands.cpp) ---
    // The message, contact and room commands; the owner keeps the daemon's own, the
    // account's, and end-to-end encryption's (XEP-0384 decides how a `send` goes).
    template <class C>
    static constexpr bool handles =
        is_one_of<C, model::Send, model::CancelSend, model::SendChatState, model::Displayed, model::History,
                  model::StoredMessages, model::SetReadMarker, model::GetRoster, model::SetPresence,
                  model::ChangeSubscription, model::RosterSet, model::RosterRemove, model::Block,
                  model::GetBlocklist, model::ListPresences, model::Join, model::Part, model::ListRooms,
                  model::SetSubject, model::Kick, model::SendInvite>;
    // Answers through `respond` exactly once, at once or when the server has answered.
    void handle(const model::Command& command, Respond respond);

    // --- The stream (session.cpp) ---
    // The stream is up. A new session: the roster and presences, rooms, our encryption
    // device, the block list, the outbox and the archive catch-up. A resumed one: what was
    // accepted meanwhile, and a catch-up only where one was cut off. `restored`: resumed
    // after a daemon restart, where it is unknown what the server has and who is in the
    // rooms. `roster_versioning`: RFC 6121 §2.6, offered by the server.
    void started(bool resumed, bool restored, bool roster_versioning);
    // A <message/> or <presence/> the stream handed up (iq answers go to their requests).
    void received(pugi::xml_node stanza);

    // --- Sending ---
    // A front end's `send`: stored (with its `message` and `message-state` events) before the
    // reply, which carries the msg_id; then out when online. `encrypted`: marked for OMEMO
    // by the owner; its event says so.
    model::Reply send(const model::Send& s, bool encrypted = false);
    // `cancel`: an entry not yet written to a stream fails as "cancelled".
    model::Reply cancel(const std::string& msg_id);
    // The stream is up. New session (or a restarted daemon's resumption): what was accepted,
    // and what was sent but never acknowledged, goes (again, with its origin-id), except what
    // already went out on this very session. A resumed one: only what was accepted meanwhile.
    void online(bool resumed, bool restored);
    void transmit(const Outgoing& entry);
    // The stanza's parts for an outbox entry (markable, chat state: as this session has them).
    OutgoingMessage outgoing_message(const Outgoing& entry);
    // Moves a message's state forward, with its event; never back. `from`: who says so (a
    // receipt, marker or error), which must be its recipient or a server (im::may_report).
    void advance(const std::string& msg_id, Delivery next, const std::string& error = {},
                 const std::string& from = {});
    // The same for an entry just read from the store (transmit's: no second read).
    void advance(const Outgoing& entry, Delivery next, const std::string& error = {}, const std::string& from = {});
    void acked(const std::vector<std::string>& msg_ids);

    // --- Receiving ---
    // XEP-0280: true when `stanza` is a carbon (handled, or dropped when forged, §11).
    bool carbon(pugi::xml_node stanza);
    // A live message (or the one a carbon wraps, `carbon` "sent" | "received").
    void message(const ReceivedMessage& m, const std::string& carbon = {});
    // Stores and shows a message unless it was seen before; true when it was new. `room`:
    // the room it was said in. `out` (for a history request): stored but not shown; the
    // event (new, or the one stored before) is put there.
    bool incoming(const ReceivedMessage& m, bool from_archive, const std::string& carbon = {},
                  const std::string& room = {}, model::Event* out = nullptr);

    // --- Archives (XEP-0313, paged with XEP-0059; session_archive.cpp) ---
    // Catching up with our own archive (im/catchup.hpp).
    // After a gap: the pages after the position kept ("mam_last"), or without one since
    // this account was first seen here ("mam_since", which `now`, RFC 3339, starts).
    void catch_up(const std::string& now);
    // While true, live messages do not move the kept position (the gap rule).
    bool gap_open() const { return archive_.pager.gap_open(); }
    // `history` (XEP-0313 §4): a page of our archive with a contact, or of a room's; the
    // reply carries the messages (stored if new) and the page's ids.
    void history(const model::History& h, Respond respond);
    // A <message/> with a XEP-0313 <result/>: for a history request, a room's catch-up or
    // ours; dropped when nobody asked.
    void archive_result(pugi::xml_node stanza);
    // An <iq/> answering our catch-up's page query (true: it was that answer).
    bool catch_up_answer(pugi::xml_node iq);

    // --- Rooms (XEP-0045; session_rooms.cpp) ---
    // The stream is up: leaves asked while offline go; a new session joins the rooms to be
    // in (configured, remembered, bookmarked with autojoin); a resumed one restarts the
    // archive catch-ups the lost link cut off.
    void rooms_online(bool resumed);
    // `join` and `part` of front ends; a join (or nick change) is answered when the room is.
    void join(std::string room, std::string nick, std::string password, Respond respond);
    model::Reply part(const std::string& room, const std::string& reason);
    // A presence from a room we are in or joining (true: it was one).
    bool room_presence(const MucPresence& p);
    // A XEP-0313 result of a room's catch-up (true: it was one).
    bool room_archive_result(pugi::xml_node stanza);
    // Once a second: join requests unanswered for 30 s, and, online, rejoins and
    // self-pings (XEP-0410) every `self_ping`.
    void tick(std::chrono::seconds self_ping);
    Room* find_room(const std::string& jid);
    const std::map<std::string, Room>& rooms() const { return rooms_; }

    // --- Contacts (RFC 6121; session_contacts.cpp) ---
    // A new session: presences start over, and the roster is asked for (§2.1.3; with §2.6
    // versioning when the server offers it, `versioning`, and the kept roster goes with it).
    void contacts_online(bool versioning);
    // A roster result (§2.1.4) or push (§2.1.6), with its version if any: kept and shown.
    void roster(std::vector<RosterEntry> items, bool push, std::optional<std::string> version);
    // A presence that is not a room's: subscriptions, and contacts' availability.
    void presence(pugi::xml_node stanza);
    // The roster as front ends see it (display names from vCards), and who is online.
    std::vector<model::RosterItem> roster_items();
    std::vector<model::Presence> presences() const;

    ChatStates& chat_states() { return chat_states_; }
    const std::string& account() const { return account_; }
    const Jid& own() const { return own_; }

private:
    void maybe_receipt(const ReceivedMessage& m);
    // What `replace_id` from `sender` (bare JID, or occupant JID in a room) points at.
    std::string resolve_replace(const std::string& sender, const std::string& replace_id);
    // The stored event `msg` is a copy of, found by its stanza-id (id.by_msg_id).
    std::optional<model::Event> stored_copy(const model::Message& msg, const InboundIdentity& id);
    // Our own message coming back (a room's echo, our archive): the outgoing event.
    model::Event own_echo(const ReceivedMessage& m, const std::string& room) const;
    void log(SessionPort::Level level, const std::string& text);
    void send_page(const CatchUp::Page& page, const std::string& now);
    bool catch_up_result(pugi::xml_node stanza);  // true: a result for our catch-up's query
    void keep_position(const std::string& id);
    // A stored event (logged when it cannot be stored; front ends hear of it anyway).
    void publish(model::EventBody body);
    bool room_message(const ReceivedMessage& m);
    void autojoin(const std::vector<Bookmark>& marks);
    void send_join(Room& room);
    void joined(Room& room);
    void room_gone(const std::string& jid, const std::string& state, const std::string& reason,
                   const std::string& actor);
    void send_room_page(Room& room, const CatchUp::Page& page);
    void room_page_answer(const std::string& jid, const std::string& query_id, const IqReply& r);
    void remember_rooms();
    std::string default_nick() const;
    // Commands, one per kind (handles<C>).
    void command(const model::Send& c, Respond respond);
    void command(const model::CancelSend& c, Respond respond);
    void command(const model::SendChatState& c, Respond respond);
    void command(const model::Displayed& c, Respond respond);
    void command(const model::History& c, Respond respond);
    void command(const model::StoredMessages& c, Respond respond);
    void command(const model::SetReadMarker& c, Respond respond);
    void command(const model::GetRoster& c, Respond respond);
    void command(const model::SetPresence& c, Respond respond);
    void command(const model::ChangeSubscription& c, Respond respond);
    void command(const model::RosterSet& c, Respond respond);
    void command(const model::RosterRemove& c, Respond respond);
    void command(const model::Block& c, Respond respond);
    void command(const model::GetBlocklist& c, Respond respond);
    void command(const model::ListPresences& c, Respond respond);
    void command(const model::Join& c, Respond respond);
    void command(const model::Part& c, Respond respond);
    void command(const model::ListRooms& c, Respond respond);
    void command(const model::SetSubject& c, Respond respond);
    void command(const model::Kick& c, Respond respond);
    void command(const model::SendInvite& c, Respond respond);
    std::optional<model::Reply> need_online();  // the `not-online` reply, when offline
    // An iq whose answer is the reply: ok (filled by `fill` from the result), or what the
    // server said.
    void ask(const std::string& to, const IqMaker& make, Respond respond,
             std::function<void(model::Reply&, pugi::xml_node)> fill = {});
    // `history` without an archive: the page from the store, "source":"local".
    model::Reply local_history(const model::History& h);
    bool in_room(const std::string& jid);  // joined (not only joining)
    void load_roster();
    void keep_roster();
    // RFC 6121: the contact sees our presence (subscription from or both).
    bool sees_our_presence(const std::string& bare);
    std::map<std::string, std::string>& vcard_nicks();  // by bare JID; "" asked, no name
    model::RosterItem to_model(const RosterEntry& e);
    void fetch_vcards(const std::vector<RosterEntry>& items);
    void vcard_answer(const std::string& jid, const IqReply& r);

    std::string account_;
    Jid own_;
    SessionStore& store_;
    SessionPort& port_;
    Encryption* encryption_;  // never null: a stand-in that sends in clear until set_encryption()
    ChatStates chat_states_;  // XEP-0085 §5.1
    // How often each unacknowledged message went out on a new session, and on which session
    // it last went: one sent on the current session is in its stream already. Hashed: a
    // burst faster than the server keeps tens of thousands in flight, and a tree of them
    // (random UUIDs, a cache miss per level) cost a sixth of the daemon's time.
    // While a message is in flight its state is here too (every change of a state is
    // advance()'s, which keeps this in step with the store): the server's acknowledgement of
    // each sent message then needs no read of the outbox (issue 15: 4 % of a sent message).
    struct Attempts {
        int count = 0;
        unsigned long session = 0;  // the last it went on; 0: stored as sent, but no stream took it
        std::optional<Delivery> state;  // as the store has it; none: read the outbox
    };
    std::unordered_map<std::string, Attempts> attempts_;
    struct OwnArchive {
        CatchUp pager{CatchUp::Archive::Own};
        std::string query_id;  // the page query out ("" for none)
        unsigned long queries = 0;
    } archive_;
    // A history request waiting for its page: by query id.
    struct HistoryQuery {
        std::string archive;  // our bare JID or the room
        std::vector<model::Event> messages;
    };
    std::map<std::string, HistoryQuery> histories_;
    unsigned long history_queries_ = 0;
    std::map<std::string, Room> rooms_;        // by room JID
    std::vector<std::string> pending_leaves_;  // parted while offline
    unsigned long room_queries_ = 0;
    im::Roster roster_;
    std::optional<std::map<std::string, std::string>> vcard_nicks_;  // read from the store once
    std::map<std::string, model::Presence> presences_;                // contacts', by full JID
    // Held by the callbacks of requests: they do nothing once the session is gone.
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace xmpp::im
