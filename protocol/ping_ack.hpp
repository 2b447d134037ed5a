#pragma once
// Acknowledgement by ping on a stream without XEP-0198 v3 (issue 18). A server handles a
// client's stanzas in order (RFC 6120 §10.1), so the answer to an iq we sent after some
// stanzas (a XEP-0199 ping), result or error alike, proves that the server has all of
// them. Pure: no I/O, no clock. Memory: the tags of unacknowledged stanzas plus one entry
// per ping out (at most max_pings).
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xmpp {

class PingAckQueue {
public:
    static constexpr std::size_t max_pings = 64;

    // One stanza went out; `tag` ("" for none) comes back once a ping answer covers it.
    void push(std::string tag);
    // Stanzas sent since the last ping (the burst a new ping would cover).
    std::uint64_t since_ping() const { return sent_ - pinged_; }
    // A ping with this id went out after everything pushed so far. False (and nothing
    // recorded) when max_pings are already out: wait for an answer first.
    bool pinged(std::string id);
    // The answer to one of our pings (result or error): the tags it covers, oldest first
    // (empty when an answer to a later ping covered them already). nullopt: not our ping.
    std::optional<std::vector<std::string>> answered(std::string_view id);
    // A ping is out that covers stanzas not yet acknowledged: its answer is awaited.
    bool waiting() const;
    std::size_t unacked() const { return static_cast<std::size_t>(sent_ - acked_); }

private:
    std::deque<std::pair<std::uint64_t, std::string>> tags_;  // (seq, tag) not yet acked
    std::map<std::string, std::uint64_t, std::less<>> out_;   // ping id -> seq it covers
    std::uint64_t sent_ = 0, pinged_ = 0, acked_ = 0;
};

}  // namespace xmpp
