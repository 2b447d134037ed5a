#include "protocol/im/delivery.hpp"

#include "protocol/base/jid.hpp"

namespace xmpp::im {

bool may_advance(Delivery current, Delivery next) {
    if (current == Delivery::Failed) return false;
    if (next == Delivery::Failed) return true;
    return static_cast<int>(next) > static_cast<int>(current);
}

bool may_report(std::string_view reporter, std::string_view to, std::string_view own_domain) {
    auto sender = Jid::parse(reporter);
    auto recipient = Jid::parse(to);
    if (!sender || !recipient) return false;
    if (sender.value().bare() == recipient.value().bare()) return true;
    return sender.value().local().empty() &&
           (sender.value().domain() == recipient.value().domain() || sender.value().domain() == own_domain);
}

}  // namespace xmpp::im
