#include "protocol/im/catchup.hpp"

namespace xmpp::im {

CatchUp::Page CatchUp::begin(const std::string& position) {
    if (!running_) count_ = fresh_ = 0;
    open_ = running_ = true;
    paging_ = !position.empty();
    Page page;
    page.after = position;
    page.max = archive_ == Archive::Own ? own_page : room_page;
    if (position.empty()) {
        if (archive_ == Archive::Room) page.newest = true;
        else page.since = true;
    }
    return page;
}

void CatchUp::counted(bool fresh) {
    ++count_;
    if (fresh) ++fresh_;
}

CatchUp::Fin CatchUp::fin(bool complete, const std::string& last) {
    Fin out;
    out.keep = last;  // everything up to it is ours now, even if more pages follow
    // A room's newest page is all we want of an archive we have never read; after a
    // position, page until the archive says there is no more (XEP-0059 §2.2).
    bool more = !complete && !last.empty() && (archive_ == Archive::Own || paging_);
    if (more) {
        Page next;
        next.after = last;
        next.max = archive_ == Archive::Own ? own_page : room_page;
        paging_ = true;
        out.next = next;
        return out;
    }
    open_ = running_ = false;
    return out;
}

void CatchUp::failed(std::string_view condition, bool answered) {
    running_ = false;
    // A room whose service has no archive (XEP-0313 §7: feature-not-implemented, or
    // service-unavailable from older services), or that answers without a <fin/>: there is
    // nothing to catch up with. Our own server's failures are worth another try.
    if (archive_ == Archive::Room &&
        ((answered && condition.empty()) || condition == "feature-not-implemented" || condition == "service-unavailable"))
        open_ = false;
}

}  // namespace xmpp::im
