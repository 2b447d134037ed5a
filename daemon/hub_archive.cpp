// `history` for an account whose server keeps no archive (XEP-0313 not offered): the page
// from the store. (Archives themselves are the AccountSession's: protocol/im/session_archive.)
#include <charconv>

#include "daemon/account.hpp"
#include "daemon/hub.hpp"
#include "daemon/hub_detail.hpp"
#include "daemon/log.hpp"
#include "protocol/base/rfc3339.hpp"

namespace stanzad {

model::Reply Hub::local_history(Account& account, const model::History& h) {
    // Without an archive (XEP-0313 not offered): the same page from the store, with seqs
    // as the page ids (`first`/`last`, `before`/`after`). One more than asked tells
    // whether there is anything further in that direction.
    auto seq = [](const std::string& text) -> std::optional<model::Seq> {
        model::Seq v = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
        return v;
    };
    MessageRange range;
    bool backwards = h.after.empty();
    if (!h.after.empty()) {
        range.after = seq(h.after);
        if (!range.after) return model::Reply::error("bad-request", "'after': not a page id of the local store");
    }
    if (h.before && !h.before->empty()) {
        range.before = seq(*h.before);
        if (!range.before) return model::Reply::error("bad-request", "'before': not a page id of the local store");
    }
    range.newest = backwards;
    std::size_t max = static_cast<std::size_t>(std::max(1, h.max));
    auto page = store_.messages(account.name(), h.with, range, max + 1);
    if (!page) return model::Reply::error("internal", page.error().message);
    auto messages = std::move(page).value();
    model::Reply reply;
    reply.source = "local";
    reply.complete = messages.size() <= max;
    if (!reply.complete) {
        if (backwards) messages.erase(messages.begin());
        else messages.pop_back();
    }
    for (auto& e : messages)
        if (auto* m = std::get_if<model::Message>(&e.body)) m->history = true;
    if (!messages.empty()) {
        reply.first = std::to_string(messages.front().seq);
        reply.last = std::to_string(messages.back().seq);
    }
    reply.messages = std::move(messages);
    return reply;
}

}  // namespace stanzad
