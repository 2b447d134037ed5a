#include "protocol/ping_ack.hpp"

namespace xmpp {

void PingAckQueue::push(std::string tag) {
    ++sent_;
    if (!tag.empty()) tags_.emplace_back(sent_, std::move(tag));
}

bool PingAckQueue::pinged(std::string id) {
    if (out_.size() >= max_pings) return false;
    out_[std::move(id)] = sent_;
    pinged_ = sent_;
    return true;
}

std::optional<std::vector<std::string>> PingAckQueue::answered(std::string_view id) {
    auto it = out_.find(id);
    if (it == out_.end()) return std::nullopt;
    std::uint64_t covered = it->second;
    out_.erase(it);
    std::vector<std::string> done;
    if (covered <= acked_) return done;  // a later ping's answer came first
    acked_ = covered;
    while (!tags_.empty() && tags_.front().first <= covered) {
        done.push_back(std::move(tags_.front().second));
        tags_.pop_front();
    }
    return done;
}

bool PingAckQueue::waiting() const {
    for (const auto& [id, covered] : out_)
        if (covered > acked_) return true;
    return false;
}

}  // namespace xmpp
