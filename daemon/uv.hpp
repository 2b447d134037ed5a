#pragma once
// Small owners for libuv handles and requests (after CMake's cmUVHandlePtr.h).
// A handle's memory lives until libuv's close callback, which may run after its owner
// is gone; so owners call uv_close and the callback frees.
#include <uv.h>

#include <functional>
#include <string>
#include <utility>

#include "daemon/group_commit.hpp"

namespace uv {

template <class T>
class Handle {
public:
    Handle() = default;
    explicit Handle(uv_loop_t* loop) requires std::is_same_v<T, uv_timer_t> : h_(new T{}) {
        uv_timer_init(loop, h_);
    }
    ~Handle() { reset(); }
    Handle(Handle&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
    Handle& operator=(Handle&& o) noexcept {
        if (this != &o) {
            reset();
            h_ = std::exchange(o.h_, nullptr);
        }
        return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;

    // Takes a handle that was allocated with new and initialised by the caller.
    static Handle adopt(T* raw) {
        Handle h;
        h.h_ = raw;
        return h;
    }
    T* get() const { return h_; }
    T* operator->() const { return h_; }
    explicit operator bool() const { return h_ != nullptr; }
    // Gives up ownership: the caller must uv_close it with Handle::free_on_close.
    T* release() { return std::exchange(h_, nullptr); }

    void reset() {
        if (!h_) return;
        auto* h = reinterpret_cast<uv_handle_t*>(std::exchange(h_, nullptr));
        h->data = nullptr;
        if (!uv_is_closing(h)) uv_close(h, free_on_close);
    }
    static void free_on_close(uv_handle_t* h) { delete reinterpret_cast<T*>(h); }

private:
    T* h_ = nullptr;
};

using Timer = Handle<uv_timer_t>;

// Writes `data` to `stream` now. The request owns its buffer and frees itself; it never
// touches the stream's owner, which may be gone when libuv calls back (write errors show
// up as read errors). Returns false when libuv refused the write.
inline bool write_now(uv_stream_t* stream, std::string data) {
    struct Request {
        uv_write_t req;
        std::string data;
    };
    auto* r = new Request{{}, std::move(data)};
    uv_buf_t buf = uv_buf_init(r->data.data(), static_cast<unsigned>(r->data.size()));
    int rc = uv_write(&r->req, stream, &buf, 1, [](uv_write_t* req, int) { delete reinterpret_cast<Request*>(req); });
    if (rc != 0) delete r;
    return rc == 0;
}

// Writes `data` to `stream`: now, or, while the loop's GroupCommit holds (a read is being
// handled), once what this read stored is on disk (daemon/group_commit.hpp).
inline bool write(uv_stream_t* stream, std::string data) {
    if (auto* gc = stanzad::GroupCommit::of(stream->loop); gc && gc->holding()) {
        gc->hold(stream, std::move(data));
        return true;
    }
    return write_now(stream, std::move(data));
}

// Bytes written to `stream` that have not left yet: libuv's queue and the held writes.
inline std::size_t queued(uv_stream_t* stream) {
    std::size_t n = uv_stream_get_write_queue_size(stream);
    if (auto* gc = stanzad::GroupCommit::of(stream->loop); gc && gc->holding()) n += gc->held_bytes(stream);
    return n;
}

// Runs `action` (a shutdown or close that must come after what was written) now, or after
// the held writes.
inline void after_writes(uv_loop_t* loop, std::function<void()> action) {
    if (auto* gc = stanzad::GroupCommit::of(loop); gc && gc->holding()) {
        gc->hold(std::move(action));
        return;
    }
    action();
}

}  // namespace uv
