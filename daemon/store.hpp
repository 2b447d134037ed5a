#pragma once
// Store: the daemon's SQLite database (WAL mode, synchronous=FULL), one per state_dir.
//   events   the event log: every model event gets the next sequence number. A row keeps the
//            event as model::codec JSON with the codec's format version beside it; what the
//            queries select by (conversation, msg_id, direction) is in columns of its own.
//   cursors  per named front-end client, the last seq it confirmed
//   outbox   the durable outbound queue: a message is "accepted" once its row is committed
//   conversations  per account and peer, the last seq and latest stamp of its messages (the
//            conversation list), kept with every insert of a message and by prune
//   events_floor  one row: the highest seq given before prune deleted it (seqs never repeat)
// The schema is versioned with PRAGMA user_version and migrated forward at open.
// An advisory lock (flock on PATH.lock) keeps a second daemon off the same store.
// Loop thread only; every call is synchronous and commits before it returns, except inside a
// batch (begin_batch), where the calls share one transaction that end_batch commits.
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "frontends/model/model.hpp"
#include "protocol/base/result.hpp"

struct sqlite3;

namespace stanzad {
namespace store_detail {
class HeldConversations;
}

class Checkpointer;  // daemon/store_checkpoint.hpp

struct OutboxEntry {
    std::int64_t id = 0;       // queue order
    std::string account;
    std::string msg_id;        // origin-id; unique per account
    std::string to;
    std::string type;          // chat | groupchat | normal
    std::string body;
    std::string state;         // accepted | sent | acked | delivered | failed
    std::string error;
    std::string created;       // RFC 3339 UTC
    std::string replace_id;    // XEP-0308: the msg_id of the earlier message this corrects
};

// One change of an account_meta value, for writes that go together (set_metas, or
// append_once with the event they belong to): a value, or nullopt to delete the key.
struct MetaWrite {
    std::string key;
    std::optional<std::string> value;
};

// A conversation: the account and the other side (a contact's or a room's bare JID).
struct Conversation {
    std::string account, peer, last_stamp;
};

// Which messages of a conversation: between seqs and/or stamps (all bounds exclusive); the
// oldest `limit` of them, or the newest.
struct MessageRange {
    std::optional<model::Seq> after, before;
    std::string after_stamp, before_stamp;  // RFC 3339 UTC as stored
    bool newest = false;
};

// The conversation a stored event belongs to ("" for anything but a message).
std::string conversation_of(const model::Event& event);

// A stored event as its row holds it: its JSON, as model::codec::encode wrote it in the
// codec's format `format`.
struct StoredRow {
    model::Seq seq = 0;
    std::int64_t format = 0;
    std::string json;
};
// The row's event (its seq set). A row in a format newer than this stanzad's codec, or one
// that does not decode, is an error naming the row.
xmpp::Result<model::Event> decode(const StoredRow& row);

class Store {
public:
    // Opens (creating the file and its directory, mode 0700, if needed) and migrates.
    // Errors: cannot create/open, another daemon holds the lock, a schema newer than this
    // program knows.
    static xmpp::Result<std::unique_ptr<Store>> open(const std::string& path);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    static constexpr int schema_version = 8;

    // Gives `event` the next seq (and a stamp, now, if it has none) and commits it.
    xmpp::Status append(model::Event& event);
    // Stored events with seq > `after`, oldest first, at most `limit`, and no more once
    // their stored rows come to `max_bytes` (a page holds at least one event, however big);
    // only those of one `kind` (model::event_name: "message", ...) when it is not empty,
    // selected in SQL so that the others are never read or decoded.
    xmpp::Result<std::vector<model::Event>> events_after(model::Seq after, std::size_t limit,
                                                         std::string_view kind = {},
                                                         std::size_t max_bytes = SIZE_MAX);
    // The same rows, not decoded: a replay to a JSON client sends the stored JSON as it is.
    xmpp::Result<std::vector<StoredRow>> rows_after(model::Seq after, std::size_t limit, std::string_view kind = {},
                                                    std::size_t max_bytes = SIZE_MAX);
    model::Seq last_seq() const { return last_seq_; }

    // The last seq `client` confirmed; 0 for a client never seen.
    xmpp::Result<model::Seq> cursor(const std::string& client);
    // Moves the cursor forward to `seq` (never back); creates the client if new. `now` is
    // when the client confirmed it (a cursor unused for history_days stops holding back
    // pruning).
    xmpp::Status set_cursor(const std::string& client, model::Seq seq,
                            std::chrono::system_clock::time_point now = std::chrono::system_clock::now());
    // The same, written with the next batch that commits other writes (end_batch), or by
    // write_later() (GroupCommit calls it a second after a batch left it; ~Store too): no
    // commit of its own. cursor() sees it at once. For moves whose loss only replays events
    // again (IRC's PONG).
    xmpp::Status set_cursor_later(const std::string& client, model::Seq seq,
                                  std::chrono::system_clock::time_point now = std::chrono::system_clock::now());
    bool writes_later() const { return !later_cursors_.empty(); }
    xmpp::Status write_later();

    // In one transaction: inserts the outbox row (state "accepted", or "sent" for a message
    // whose stanza goes in the same batch; "" is "accepted") and appends `events`
    // (assigning their seq). Returns false, and stores nothing, when the account already
    // has a message with this msg_id (a retried send).
    xmpp::Result<bool> enqueue(const OutboxEntry& entry, std::vector<model::Event>& events);
    // Messages of `account` not yet acked, delivered or failed, in queue order.
    xmpp::Result<std::vector<OutboxEntry>> pending(const std::string& account);
    // In one transaction: sets the row's state (and error) and appends `event`.
    xmpp::Status set_state(const std::string& account, const std::string& msg_id, const std::string& state,
                           const std::string& error, model::Event& event);
    xmpp::Result<OutboxEntry> find(const std::string& account, const std::string& msg_id);

    // Appends `event` unless an event was already stored under `key` for its account (an
    // incoming message's origin-id or id, or a stanza-id without a conversation): one
    // transaction; false when seen before. An empty `key`: appended in any case (the caller
    // found it new by its msg_id, message_seq).
    // The key then points at the event's seq; `aliases` (other ids of the same message,
    // with what they stand for, "" for the event's seq) are recorded in the same transaction.
    // `meta`: account_meta changes committed in the same transaction (OMEMO session state
    // that the event's plaintext depends on), and only when the event is stored.
    xmpp::Result<bool> append_once(model::Event& event, const std::string& key,
                                   const std::vector<std::pair<std::string, std::string>>& aliases = {},
                                   const std::vector<MetaWrite>& meta = {});
    // What an inbound key or alias points at (a seq as text, or a msg_id); nullopt if unknown.
    xmpp::Result<std::optional<std::string>> inbound(const std::string& account, const std::string& key);
    // Message events of one conversation, oldest first (at most `limit`, within `range`).
    xmpp::Result<std::vector<model::Event>> messages(const std::string& account, const std::string& peer,
                                                     const MessageRange& range, std::size_t limit);
    // The seq of the message `msg_id` in that conversation.
    xmpp::Result<std::optional<model::Seq>> message_seq(const std::string& account, const std::string& peer,
                                                        const std::string& msg_id);
    // Conversations whose last message is between the stamps ("" for no bound), newest first.
    xmpp::Result<std::vector<Conversation>> conversations(const std::string& after_stamp,
                                                          const std::string& before_stamp, std::size_t limit);
    // The stored event `seq`; nullopt when there is none (pruned).
    xmpp::Result<std::optional<model::Event>> event(model::Seq seq);
    // Small per-account values (the last archive id seen, ...); "" when unset.
    xmpp::Result<std::string> meta(const std::string& account, const std::string& key);
    // Inside a batch the value is written when the batch ends (only the last of a key), and
    // meta() reads it at once; a write that then fails fails the batch (end_batch).
    xmpp::Status set_meta(const std::string& account, const std::string& key, const std::string& value);
    // Several changes in one transaction: all of them or none.
    xmpp::Status set_metas(const std::string& account, const std::vector<MetaWrite>& writes);
    // The keys starting with `prefix` and their values, in key order, at most `limit`.
    xmpp::Result<std::vector<std::pair<std::string, std::string>>> metas(const std::string& account,
                                                                          const std::string& prefix,
                                                                          std::size_t limit);

    // Deletes events older than `history_days` that every known client has confirmed, and
    // finished outbox rows (acked, delivered, failed) older than that. Returns how many
    // events went. Events go from the log's front, in seq order: one that is older than
    // the cutoff stays while an event before it is younger (after the clock went back).
    xmpp::Result<std::int64_t> prune(std::chrono::system_clock::time_point now, int history_days);

    // Group commit (issue 15): from begin_batch() to the matching end_batch(), every write
    // joins one transaction, and end_batch() commits it, with one fsync for all of them.
    // Reads see what the batch wrote, but nothing of it is durable, so nothing that depends
    // on it may leave the process, until end_batch() succeeds (GroupCommit holds the socket
    // writes until then). Batches nest; the outermost end_batch() commits. A call that fails
    // before it changed a row leaves the batch as it was; one that fails part way (a disk
    // error after its first row) fails the batch: later calls are refused and end_batch()
    // rolls it all back and fails (calls have no savepoints: store_detail.hpp Transaction).
    // A failed end_batch() leaves nothing of the batch: the caller must then forget what it
    // was told in between (GroupCommit stops the daemon, which restarts from the store).
    void begin_batch();
    xmpp::Status end_batch();
    // Transactions committed since open (each is one fsync of the WAL): for benchmarks.
    std::int64_t commits() const { return commits_; }
    // Gives SQLite's page cache back to the allocator (the pages are read again from the
    // OS's cache when needed): for quiet times, docs/performance.md "Memory".
    void release_memory();
    // The JSON stored for event `seq` by a write of the current batch (or, outside a batch,
    // of the last few writes); nullptr for any other. The same text as codec::encode of the
    // event that write was given: the JSON socket sends it as the event's line instead of
    // encoding the event again (issue 15: an encode per event and client, 5-6 % of a
    // relayed message's instructions). Valid until the next write or end_batch().
    const std::string* stored_json(model::Seq seq) const;
    // Bytes SQLite's page cache holds now.
    std::int64_t cache_bytes() const;
    // The worker that checkpoints the WAL beside the loop (daemon/store_checkpoint.hpp);
    // nullptr when it could not start (SQLite then checkpoints inside commits).
    const Checkpointer* checkpointer() const { return checkpointer_.get(); }

    // What open found and did, for the daemon's log: the schema version of the file before
    // open migrated it (0 for a new store, schema_version when nothing was to do), and why
    // the file could not be compacted after a migration that copied tables ("" if it was,
    // or none was needed; the store works either way).
    int migrated_from() const { return migrated_from_; }
    const std::string& compact_error() const { return compact_error_; }

private:
    Store() = default;
    struct Statements;  // prepared once at open for the hot paths (store_detail.hpp)
    sqlite3* db_ = nullptr;
    std::unique_ptr<Statements> stmts_;
    std::unique_ptr<Checkpointer> checkpointer_;
    int lock_fd_ = -1;
    int migrated_from_ = schema_version;
    std::string compact_error_;
    model::Seq last_seq_ = 0;
    int batch_depth_ = 0;
    bool batch_open_ = false;    // BEGIN done for the current batch
    bool batch_failed_ = false;  // a call failed part way: end_batch() rolls back (Transaction)
    std::int64_t commits_ = 0;
    // stored_json: (seq, JSON) of the latest writes, seq 0 for a free slot; events over
    // 64 KiB are not kept (encoded again), so the ring stays under a MiB.
    static constexpr std::size_t kRecentJsonMax = 64 * 1024;
    std::array<std::pair<model::Seq, std::string>, 16> recent_json_;
    std::size_t recent_next_ = 0;
    void remember_json(model::Seq seq, std::string json);
    // set_meta inside a batch: written by write_deferred_meta() at its end, or before any
    // other write or SQL read of account_meta, so that they keep their order.
    struct DeferredMeta {
        std::string account, key, value;
    };
    std::vector<DeferredMeta> deferred_meta_;
    xmpp::Status write_deferred_rows();  // inside the caller's transaction
    struct LaterCursor {
        std::string client;
        model::Seq seq = 0;
        std::chrono::system_clock::time_point when;
    };
    std::vector<LaterCursor> later_cursors_;  // set_cursor_later: a few clients at most
    xmpp::Status write_deferred_meta();
    bool join_batch();         // the batch's BEGIN, on its first write
    // The conversations' rows that the batch's messages move, written when it ends or before
    // the table is read (store_detail::HeldConversations).
    std::unique_ptr<store_detail::HeldConversations> held_conversations_;
    store_detail::HeldConversations* held() { return batch_open_ ? held_conversations_.get() : nullptr; }
    xmpp::Status write_held_conversations();
};

}  // namespace stanzad
