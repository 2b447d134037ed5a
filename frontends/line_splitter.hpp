#pragma once
// Cuts a front-end client's byte stream into lines, with memory bounded whatever it sends:
// LF ends a line, one CR before it is dropped, empty lines are skipped. A line longer than
// max_line_bytes (CR included) gives one "line-too-long" error as soon as it is seen; its
// remaining bytes are dropped up to the next LF. Used by the JSON-lines and IRC sessions.
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/base/result.hpp"

namespace frontends {

class LineSplitter {
public:
    explicit LineSplitter(std::size_t max_line_bytes) : max_(max_line_bytes) {}

    void feed(std::string_view bytes);
    // The next line (without CR LF) or a "line-too-long" error, oldest first.
    std::optional<xmpp::Result<std::string>> next();

    std::size_t partial_size() const { return partial_.size(); }

private:
    std::size_t max_;
    std::string partial_;    // the line being received
    bool skipping_ = false;  // inside a line that was too long
    std::deque<xmpp::Result<std::string>> ready_;
};

}  // namespace frontends
