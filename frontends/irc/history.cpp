// History of irc::Session: IRCv3 chathistory (CHATHISTORY and its batches), IRCv3
// read-marker (MARKREAD), the replay of what a client name has not confirmed (soju's way)
// and the PINGs whose PONGs move that name's cursor.
#include <algorithm>

#include "frontends/irc/session.hpp"
#include "frontends/irc/session_util.hpp"

namespace irc {
using namespace detail;
namespace {

// A reference of CHATHISTORY / MARKREAD: timestamp=... or msgid=... or *.
struct Ref {
    std::string stamp, msgid;
    bool star = false;
    bool ok = false;
};
Ref parse_ref(std::string_view text) {
    Ref r;
    if (text == "*") {
        r.star = r.ok = true;
    } else if (text.starts_with("timestamp=")) {
        r.stamp = std::string(text.substr(10));
        r.ok = r.stamp.size() >= 20 && r.stamp[4] == '-' && r.stamp[10] == 'T';
    } else if (text.starts_with("msgid=")) {
        r.msgid = std::string(text.substr(6));
        r.ok = !r.msgid.empty();
    }
    return r;
}


// The limit at params[i] of a CHATHISTORY command: missing or not positive means the most.
int limit_at(const Message& m, std::size_t i) {
    int n = i < m.params.size() ? std::atoi(m.params[i].c_str()) : 0;
    return std::clamp(n <= 0 ? Session::chathistory_limit : n, 1, Session::chathistory_limit);
}

bool known_subcommand(const std::string& sub) {
    return sub == "LATEST" || sub == "BEFORE" || sub == "AFTER" || sub == "BETWEEN" || sub == "AROUND";
}

// What one replayed message counts against max_replay_bytes.
std::size_t replay_size(const model::Message& m) { return m.body.size() + 256; }

}  // namespace

void Session::markread(const Message& m) {
    // IRCv3 read-marker "Errors and Warnings".
    if (m.params.empty() || m.params[0].empty()) return fail("MARKREAD", "NEED_MORE_PARAMS", {}, "Missing parameters");
    const std::string& t = m.params[0];
    std::string stamp;
    if (m.params.size() > 1) {
        Ref r = parse_ref(m.params[1]);
        if (!r.ok || r.stamp.empty()) return fail("MARKREAD", "INVALID_PARAMS", {m.params[1]}, "Invalid timestamp");
        stamp = r.stamp;
    }
    std::string account, peer;
    if (Channel* ch = channel(t)) {
        account = ch->account;
        peer = ch->room;
    } else if (auto who = nicks_.lookup(t)) {  // a contact, or someone who wrote
        account = who->first;
        peer = who->second;
    } else if (stamp.empty() && (valid_nick(t) || t.starts_with('#'))) {
        // "MARKREAD client get": a conversation we know nothing of has no marker.
        return send(make(options_.server, "MARKREAD", {t, "*"}));
    } else {
        return fail("MARKREAD", "INVALID_PARAMS", {t}, "Unknown target");
    }
    ask(model::SetReadMarker{account, peer, stamp}, [this, t](const model::Reply& r) {
        if (!r.ok()) return fail("MARKREAD", "INTERNAL_ERROR", {t}, r.error_message);
        send(make(options_.server, "MARKREAD", {t, r.stamp.empty() ? "*" : "timestamp=" + r.stamp}));
    }, true);
}

void Session::chathistory(const Message& m) {
    // IRCv3 chathistory: LATEST, BEFORE, AFTER, BETWEEN, AROUND, TARGETS.
    if (m.params.size() < 2) return fail("CHATHISTORY", "INVALID_PARAMS", {}, "Insufficient parameters");
    std::string sub = upper(m.params[0]);
    if (sub == "TARGETS") return chathistory_targets(m);
    if (m.params.size() < 4) return fail("CHATHISTORY", "INVALID_PARAMS", {sub}, "Insufficient parameters");
    const std::string& target = m.params[1];
    HistoryQuery q{sub, target, "", "", 0};
    if (Channel* ch = channel(target)) {
        q.account = ch->account;
        q.peer = ch->room;
    } else if (Contact* c = contact_by_nick(target)) {
        q.account = c->account;
        q.peer = c->jid;
    } else if (target.size() > 1 && target[0] == '#' && !default_account().empty()) {
        q.account = default_account();  // a room we left: its stored history is still ours
        q.peer = target.substr(1);
    } else {
        return fail("CHATHISTORY", "INVALID_TARGET", {sub, target}, "Messages could not be retrieved");
    }
    Ref a = parse_ref(m.params[2]);
    Ref b = sub == "BETWEEN" ? parse_ref(m.params[3]) : Ref{"", "", false, true};
    if (!a.ok || !b.ok || (sub != "LATEST" && a.star))
        return fail("CHATHISTORY", "INVALID_PARAMS", {sub, target}, "Invalid message reference");
    q.limit = limit_at(m, sub == "BETWEEN" ? 4 : 3);
    if (!known_subcommand(sub)) return fail("CHATHISTORY", "INVALID_PARAMS", {sub}, "Unknown command");
    // msgid references become seqs first, then the query runs.
    history_resolve(q, a.msgid, a.stamp, [this, q, b](HistoryPoint pa) {
        history_resolve(q, b.msgid, b.stamp, [this, q, pa](HistoryPoint pb) { history_run(q, pa, pb); });
    });
}

void Session::chathistory_targets(const Message& m) {
    const std::string sub = "TARGETS";
    if (m.params.size() < 4) return fail("CHATHISTORY", "INVALID_PARAMS", {sub}, "Insufficient parameters");
    Ref a = parse_ref(m.params[1]), b = parse_ref(m.params[2]);
    if (!a.ok || !b.ok || a.stamp.empty() || b.stamp.empty())
        return fail("CHATHISTORY", "INVALID_PARAMS", {sub}, "Invalid timestamp");
    std::string lo = std::min(a.stamp, b.stamp), hi = std::max(a.stamp, b.stamp);
    ask(model::Conversations{lo, hi, limit_at(m, 3)}, [this](const model::Reply& r) {
        std::string id = "t" + std::to_string(next_batch_++);
        if (has("batch")) send(make(options_.server, "BATCH", {"+" + id, "draft/chathistory-targets"}));
        for (const auto& c : r.conversations) {
            std::string target = channel(channel_name(c.peer)) ? channel_name(c.peer) : contact_nick(c.account, c.peer);
            Message t = make(options_.server, "CHATHISTORY", {"TARGETS", target, c.last_stamp});
            if (has("batch")) t.tags.emplace_back("batch", id);
            send(std::move(t));
        }
        if (has("batch")) send(make(options_.server, "BATCH", {"-" + id}));
    }, true);
}

void Session::history_resolve(const HistoryQuery& q, const std::string& msgid, const std::string& stamp,
                              std::function<void(HistoryPoint)> then) {
    if (msgid.empty()) return then({std::nullopt, stamp});
    model::StoredMessages find;
    find.account = q.account;
    find.peer = q.peer;
    find.limit = 0;
    find.around_msg_id = msgid;
    ask(std::move(find), [this, then, sub = q.sub, target = q.target](const model::Reply& r) {
        if (!r.ok()) return fail("CHATHISTORY", "INVALID_MSGREFTYPE", {sub, target}, "Unknown msgid");
        then({r.cursor, ""});
    }, true);
}

model::StoredMessages Session::history_request(const HistoryQuery& q, const HistoryPoint& a, const HistoryPoint& b) {
    model::StoredMessages s;
    s.account = q.account;
    s.peer = q.peer;
    s.limit = q.limit;
    if (q.sub == "LATEST") {
        s.after = a.seq;
        s.after_stamp = a.stamp;
        s.newest = true;
    } else if (q.sub == "BEFORE") {
        s.before = a.seq;
        s.before_stamp = a.stamp;
        s.newest = true;
    } else if (q.sub == "AFTER") {
        s.after = a.seq;
        s.after_stamp = a.stamp;
    } else if (q.sub == "AROUND") {
        s.before = a.seq ? std::optional<model::Seq>(*a.seq + 1) : std::nullopt;
        s.before_stamp = a.stamp;
        s.newest = true;
    } else {  // BETWEEN: from the first reference towards the second
        bool forward = a.seq && b.seq ? *a.seq < *b.seq : a.stamp < b.stamp;
        s.after = forward ? a.seq : b.seq;
        s.before = forward ? b.seq : a.seq;
        s.after_stamp = forward ? a.stamp : b.stamp;
        s.before_stamp = forward ? b.stamp : a.stamp;
        s.newest = !forward;
    }
    return s;
}

void Session::history_run(const HistoryQuery& q, const HistoryPoint& a, const HistoryPoint& b) {
    ask(history_request(q, a, b), [this, sub = q.sub, target = q.target](const model::Reply& r) {
        if (!r.ok()) return fail("CHATHISTORY", "MESSAGE_ERROR", {sub, target}, "Messages could not be retrieved");
        history_batch(target, r.messages, 'h');  // a chathistory batch (empty when there is nothing)
    }, true);
}

void Session::history_batch(const std::string& target, const std::vector<model::Event>& events, char kind) {
    std::string id = kind + std::to_string(next_batch_++);
    bool batched = has("batch");
    if (batched) send(make(options_.server, "BATCH", {"+" + id, "chathistory", target}));
    for (const auto& e : events) render_message(e, batched ? id : "", true);
    if (batched) send(make(options_.server, "BATCH", {"-" + id}));
}

// ---- replay -----------------------------------------------------------------------------

void Session::replay_event(const model::Event& e) {
    replay_last_ = std::max(replay_last_, e.seq);
    const auto* m = std::get_if<model::Message>(&e.body);
    if (!m || m->history) return;
    // The client's own name sent it: it has it (a message from another front end it has not).
    if (m->outgoing && m->msg_id.starts_with(name_prefix())) return;
    std::string target = target_of(e, *m);
    replay_[target].push_back(e);
    ++replay_count_;
    replay_bytes_ += replay_size(*m);
    while (replay_count_ > max_replay || replay_bytes_ > max_replay_bytes) {
        // Keep the newest: drop the oldest message of all conversations.
        auto oldest = replay_.end();
        for (auto it = replay_.begin(); it != replay_.end(); ++it)
            if (!it->second.empty() && (oldest == replay_.end() || it->second.front().seq < oldest->second.front().seq))
                oldest = it;
        replay_bytes_ -= replay_size(std::get<model::Message>(oldest->second.front().body));
        oldest->second.erase(oldest->second.begin());
        --replay_count_;
        ++replay_dropped_;
    }
}

void Session::replay_end() {
    replaying_ = false;
    replay_after_.reset();
    if (replay_dropped_ > 0)
        notice_control(std::to_string(replay_dropped_) + " older message(s) not replayed; 'history NICK|#CHANNEL N' shows them");
    for (auto& [target, events] : replay_)
        if (!events.empty()) history_batch(target, events, 'r');
    replay_.clear();
    replay_count_ = replay_dropped_ = replay_bytes_ = 0;
    if (replay_last_ > 0) {
        replay_ping_ = "replay-" + std::to_string(replay_last_);
        send(make(options_.server, "PING", {replay_ping_}));
    }
}

void Session::ping_acks() {
    // Live messages count as seen once the client answers a PING sent after them; one such
    // PING at a time (its PONG asks for the next).
    if (ack_pinged_ != 0 || last_live_ == 0 || last_live_ <= acked_live_ || replaying_ || !replay_ping_.empty()) return;
    ack_pinged_ = acked_live_ = last_live_;
    send(make(options_.server, "PING", {"ack-" + std::to_string(ack_pinged_)}));
}

}  // namespace irc
