#include "protocol/im/request.hpp"

namespace xmpp::im {

std::string IqReply::describe() const {
    switch (outcome) {
    case Outcome::Result: return "ok";
    case Outcome::Remote: return error.describe();
    case Outcome::Timeout: return "timeout";
    case Outcome::NotOnline: return "not online";
    case Outcome::Disconnected: return "disconnected";
    }
    return "";
}

}  // namespace xmpp::im
