#pragma once
// XEP-0198 stream-management counters and the queue of unacknowledged outbound stanzas,
// after Prosody's util/smqueue.lua: a small pure container, no I/O, no stream knowledge.
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "protocol/base/result.hpp"

namespace xmpp {

// Outbound stanzas not yet acknowledged by the server, and both counters of XEP-0198,
// modulo 2^32 (§4: h wraps to 0). Pure: no I/O. Memory: the unacked stanzas.
class SmQueue {
public:
    struct Entry {
        std::uint32_t seq;      // this stanza's outbound count (1 for the first after enable)
        std::string xml;        // as sent, to resend after a failed resumption
        std::string tag;        // the caller's id for it (our msg_id for messages), may be ""
    };
    // Starts counting at `acked` (normally 0; after a restart, what the server last acked).
    explicit SmQueue(std::uint32_t acked = 0);
    // Counts one outbound stanza; returns its seq.
    std::uint32_t push(std::string xml, std::string tag = {});
    // The server's <a h='h'/> or <resumed h='h'/>: drops and returns the entries it covers,
    // oldest first. h older than what was already acked ("tail") or newer than what we
    // sent ("head") is an Error (code "sm-bad-h", message with h, tail and head): the
    // caller treats it as a stream error, never a crash. h equal to the last acked is fine
    // (returns nothing).
    Result<std::vector<Entry>> ack(std::uint32_t h);
    const std::deque<Entry>& unacked() const;
    // Moves the unacked entries out (for resending on a new session) and resets the
    // counters to 0 (outbound head and tail, and the inbound h: a new session counts afresh).
    std::vector<Entry> take_unacked();
    std::uint32_t head() const;    // stanzas sent (mod 2^32)
    std::uint32_t tail() const;    // stanzas acknowledged (mod 2^32)
    std::uint32_t unacked_count() const { return head() - tail(); }

    // Inbound: stanzas we handled, the h we report.
    void count_inbound() { ++inbound_; }
    std::uint32_t inbound() const { return inbound_; }
    void set_inbound(std::uint32_t h) { inbound_ = h; }

private:
    // Invariant: queue_.size() == head_ - tail_ (mod 2^32), and queue_[i].seq == tail_ + 1 + i.
    std::deque<Entry> queue_;
    std::uint32_t head_;
    std::uint32_t tail_;
    std::uint32_t inbound_ = 0;
};

}  // namespace xmpp
