#pragma once
// GroupCommit (issue 15): "accepted means on disk" at one fsync per read instead of one per
// message. A Scope is opened around the handling of one read: all stanzas of one read from
// the server, all lines of one read from a front end. While it is open, every store write
// joins one transaction (Store::begin_batch) and every socket write through uv::write waits
// here: replies with their msg_id, events to front ends, the XEP-0198 <a/> and stanzas alike.
// When the outermost Scope closes, the transaction commits (one fsync) and only then do the
// held writes leave: in the order they were made for each socket, and as one write per
// socket unless an action (a shutdown) came between. So nothing that depends on a write can
// be seen outside before that write is durable, as before, and a burst of N messages costs
// one fsync per read instead of N.
//
// A failed commit (disk full, say) has acknowledged nothing: the writes that depended on it
// were held, and they are dropped, so no XEP-0198 <a/>, no reply with a msg_id and no event
// leaves. But the daemon's memory now disagrees with the store, so `on_failure` is called and
// must not return to the loop: the daemon starts over from what is on disk (Daemon::
// store_failed, the path a kill -9 takes; docs/reliability.md "When the disk is full").
// Without one it logs and exits with status 75 (EX_TEMPFAIL).
//
// Installed as the loop's data (uv_loop_t::data); loop thread only. Without one (unit tests,
// tools), uv::write writes at once.
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace stanzad {

class Store;

class GroupCommit {
public:
    using OnFailure = std::function<void(const std::string& reason)>;
    GroupCommit(uv_loop_t* loop, Store& store, OnFailure on_failure = {});
    ~GroupCommit();
    GroupCommit(const GroupCommit&) = delete;
    GroupCommit& operator=(const GroupCommit&) = delete;

    static GroupCommit* of(uv_loop_t* loop) { return static_cast<GroupCommit*>(loop->data); }

    // One read's worth of work; a no-op when the loop has no GroupCommit.
    class Scope {
    public:
        explicit Scope(uv_loop_t* loop) : gc_(of(loop)) {
            if (gc_) gc_->open();
        }
        ~Scope() {
            if (gc_) gc_->close();
        }
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;

    private:
        GroupCommit* gc_;
    };

    bool holding() const { return depth_ > 0; }
    // While holding: queues `data` for `stream` (uv::write).
    void hold(uv_stream_t* stream, std::string data);
    // While holding: runs `action` (a shutdown, say) after the writes held before it.
    void hold(std::function<void()> action);
    // Bytes held for `stream` (backpressure counts them with libuv's write queue).
    std::size_t held_bytes(uv_stream_t* stream) const;
    // While holding: runs `fn` when the outermost Scope closes, before the commit and still
    // holding, so what it writes and stores joins this batch (XmppConnection: the stanzas of
    // a batch encrypted together, in one TLS record where they fit, instead of one each).
    // `fn` must check that what it captured is still alive. Not holding: runs it at once.
    void before_commit(std::function<void()> fn);

private:
    void open();
    void close();
    void write_later_soon();

    struct Held {
        uv_stream_t* stream = nullptr;  // nullptr: an action
        std::string data;
        std::function<void()> action;
    };
    uv_loop_t* loop_;
    Store& store_;
    OnFailure on_failure_;
    int depth_ = 0;
    std::vector<Held> held_;
    std::vector<std::function<void()>> before_commit_;
    // Store::set_cursor_later: what no commit took along is written a second later, in a
    // commit of its own. Made on first use; unreferenced (it never keeps the loop alive).
    uv_timer_t* later_ = nullptr;  // (daemon/uv.hpp includes this header)
};

}  // namespace stanzad
