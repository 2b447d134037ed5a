#include "protocol/sm_queue.hpp"

#include <iterator>
#include <utility>

namespace xmpp {

SmQueue::SmQueue(std::uint32_t acked) : head_(acked), tail_(acked) {}

std::uint32_t SmQueue::push(std::string xml, std::string tag) {
    ++head_;  // uint32_t: wraps from 2^32-1 to 0 (XEP-0198 §4)
    queue_.push_back(Entry{head_, std::move(xml), std::move(tag)});
    return head_;
}

Result<std::vector<SmQueue::Entry>> SmQueue::ack(std::uint32_t h) {
    // Distances from tail, modulo 2^32: h is valid iff it lies in [tail, head].
    const std::uint32_t covered = h - tail_;
    const std::uint32_t pending = head_ - tail_;
    if (covered > pending) {
        // Outside the window; say which side it is nearer to, as smqueue.lua does.
        const bool behind = static_cast<std::uint32_t>(tail_ - h) <= static_cast<std::uint32_t>(h - head_);
        return make_error("sm-bad-h", "server acknowledged h=" + std::to_string(h) +
                                          (behind ? ", behind tail=" : ", beyond head=") +
                                          std::to_string(behind ? tail_ : head_) + " (tail=" +
                                          std::to_string(tail_) + ", head=" + std::to_string(head_) +
                                          ")");
    }
    std::vector<Entry> done;
    done.reserve(covered);
    auto end = queue_.begin() + static_cast<std::ptrdiff_t>(covered);
    std::move(queue_.begin(), end, std::back_inserter(done));
    queue_.erase(queue_.begin(), end);
    tail_ = h;
    return done;
}

const std::deque<SmQueue::Entry>& SmQueue::unacked() const { return queue_; }

std::vector<SmQueue::Entry> SmQueue::take_unacked() {
    std::vector<Entry> out(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
    queue_.clear();
    head_ = tail_ = inbound_ = 0;
    return out;
}

std::uint32_t SmQueue::head() const { return head_; }
std::uint32_t SmQueue::tail() const { return tail_; }

}  // namespace xmpp
