#include "frontends/line_splitter.hpp"

namespace frontends {

void LineSplitter::feed(std::string_view bytes) {
    while (!bytes.empty()) {
        auto nl = bytes.find('\n');
        std::string_view piece = bytes.substr(0, nl);
        if (!skipping_) {
            if (partial_.size() + piece.size() > max_) {
                // Reported now, not at the LF that may never come (ERR_INPUTTOOLONG).
                ready_.emplace_back(xmpp::make_error(
                    "line-too-long", "line longer than " + std::to_string(max_) + " bytes; skipped"));
                skipping_ = true;
                partial_.clear();
                partial_.shrink_to_fit();
            } else {
                partial_.append(piece);
            }
        }
        if (nl == std::string_view::npos) return;
        bytes.remove_prefix(nl + 1);
        if (!skipping_) {
            // A single LF ends a line too (modern-irc "Compatibility with incorrect
            // software"); empty lines are ignored.
            if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
            if (!partial_.empty()) ready_.emplace_back(std::exchange(partial_, {}));
        }
        skipping_ = false;
    }
}

std::optional<xmpp::Result<std::string>> LineSplitter::next() {
    if (ready_.empty()) return std::nullopt;
    auto r = std::move(ready_.front());
    ready_.pop_front();
    return r;
}

}  // namespace frontends
