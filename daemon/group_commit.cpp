#include "daemon/group_commit.hpp"

#include <unistd.h>

#include <cstdlib>
#include <utility>

#include "daemon/log.hpp"
#include "daemon/store.hpp"
#include "daemon/uv.hpp"

namespace stanzad {

GroupCommit::GroupCommit(uv_loop_t* loop, Store& store, OnFailure on_failure)
    : loop_(loop), store_(store), on_failure_(std::move(on_failure)) {
    loop_->data = this;
}

GroupCommit::~GroupCommit() {
    if (loop_->data == this) loop_->data = nullptr;
    if (later_) {
        later_->data = nullptr;
        uv_close(reinterpret_cast<uv_handle_t*>(later_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    }
}

void GroupCommit::open() {
    if (depth_++ == 0) store_.begin_batch();
}

void GroupCommit::close() {
    if (depth_ == 1) {
        // Index by index: a function may add another (a stanza sent from inside one).
        for (std::size_t i = 0; i < before_commit_.size(); ++i) std::exchange(before_commit_[i], {})();
        before_commit_.clear();
    }
    if (--depth_ > 0) return;
    if (auto st = store_.end_batch(); !st) {
        // Nothing that depended on the batch has left (it is all in held_): drop it. After the
        // rollback the store no longer has what the daemon's memory says it has: start over
        // from the store, as after a kill -9.
        held_.clear();
        if (on_failure_) on_failure_(st.error().message);
        logs::daemon().critical("stanzad: cannot write to the store ({}); stopping without acknowledging "
                                "anything unsaved: start stanzad again once the disk can be written",
                                st.error().message);
        logs::daemon().flush();
        ::_exit(75);  // EX_TEMPFAIL
    }
    // Writes and actions may hold again (a write's failure closes a client, say): take the
    // list first.
    auto held = std::exchange(held_, {});
    for (auto& h : held) {
        if (!h.stream) {
            h.action();
            continue;
        }
        // Streams closed while holding are still allocated (freed in libuv's close callback,
        // on a later phase of this loop turn); what was written to them is dropped, as a
        // close drops libuv's own queue.
        if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(h.stream))) uv::write_now(h.stream, std::move(h.data));
    }
    if (store_.writes_later()) write_later_soon();
}

void GroupCommit::write_later_soon() {
    if (!later_) {
        later_ = new uv_timer_t{};
        uv_timer_init(loop_, later_);
        later_->data = this;
        uv_unref(reinterpret_cast<uv_handle_t*>(later_));
    }
    if (uv_is_active(reinterpret_cast<uv_handle_t*>(later_))) return;
    // A second: in a burst the next read commits long before (and takes them along); after
    // the last one, one commit instead of one per IRC client's PONG.
    uv_timer_start(
        later_,
        [](uv_timer_t* t) {
            auto* self = static_cast<GroupCommit*>(t->data);
            if (!self) return;
            Scope batch(self->loop_);
            if (auto st = self->store_.write_later(); !st)
                logs::daemon().warn("stanzad: cannot move the front ends' cursors: {}", st.error().message);
        },
        1000, 0);
}

void GroupCommit::hold(uv_stream_t* stream, std::string data) {
    // One write per stream and turn: appended to what is held for the same stream, unless an
    // action (a shutdown, say) came after that. What goes to one stream keeps its order; writes
    // to different streams have none to keep (a reply, then a stanza, then an event for the
    // same client: two writes to the client's socket before, one now).
    for (auto it = held_.rbegin(); it != held_.rend() && it->stream; ++it) {
        if (it->stream == stream) {
            it->data += data;
            return;
        }
    }
    held_.push_back({stream, std::move(data), {}});
}

void GroupCommit::before_commit(std::function<void()> fn) {
    if (!holding()) return fn();  // no batch to wait for
    before_commit_.push_back(std::move(fn));
}

void GroupCommit::hold(std::function<void()> action) { held_.push_back({nullptr, {}, std::move(action)}); }

std::size_t GroupCommit::held_bytes(uv_stream_t* stream) const {
    std::size_t n = 0;
    for (const auto& h : held_)
        if (h.stream == stream) n += h.data.size();
    return n;
}

}  // namespace stanzad
