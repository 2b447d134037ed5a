#pragma once
// GroupCommit (issue 15): "accepted means on disk" at one fsync per read instead of one per
// message. A Scope is opened around the handling of one read: all stanzas of one read from
// the server, all lines of one read from a front end. While it is open, every store write
// joins one transaction (Store::begin_batch) and every socket write through uv::write waits
// here: replies with their msg_id, events to front ends, the XEP-0198 <a/> and stanzas alike.
// When the outermost Scope closes, the transaction commits (one fsync) and only then do the
// held writes leave, in the order they were made. So nothing that depends on a write can be
// seen outside before that write is durable, as before, and a burst of N messages costs one
// fsync per read instead of N.
//
// A failed commit has acknowledged nothing (the writes that depended on it were held), but
// the daemon's memory now disagrees with the store; so the daemon stops at once with exit
// status 75 (EX_TEMPFAIL) and, started again, resumes from what is on disk: the path a kill -9
// takes (docs/reliability.md).
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
    GroupCommit(uv_loop_t* loop, Store& store);
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

private:
    void open();
    void close();

    struct Held {
        uv_stream_t* stream = nullptr;  // nullptr: an action
        std::string data;
        std::function<void()> action;
    };
    uv_loop_t* loop_;
    Store& store_;
    int depth_ = 0;
    std::vector<Held> held_;
};

}  // namespace stanzad
