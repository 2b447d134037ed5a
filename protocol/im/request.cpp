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

model::Reply failure_reply(const IqReply& r, const std::string& account) {
    switch (r.outcome) {
    case IqReply::Outcome::Timeout:
        return model::Reply::error("timeout", "the server did not answer within 30 seconds");
    case IqReply::Outcome::NotOnline:
        return model::Reply::error("not-online", "account " + account + " is not online");
    case IqReply::Outcome::Disconnected:
        return model::Reply::error("not-online", "account " + account + ": the connection ended before the answer");
    case IqReply::Outcome::Result:
    case IqReply::Outcome::Remote:
        break;
    }
    return model::Reply::error("refused", r.error.describe());
}

}  // namespace xmpp::im
