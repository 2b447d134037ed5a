#pragma once
// The IM core: what became of an iq we sent (RFC 6120 §8.2.3): the result, the server's
// error, or why no answer came. The owner of the stream tracks the requests and their
// deadlines; the IM core reads the answers.
#include <functional>
#include <string>

#include "frontends/model/model.hpp"
#include "protocol/im.hpp"

namespace xmpp::im {

struct IqReply {
    enum class Outcome {
        Result,        // type='result'
        Remote,        // type='error': `error` says what the server (or the addressee) said
        Timeout,       // no answer within 30 s
        NotOnline,     // the account was not online: nothing was sent
        Disconnected,  // the connection ended before the answer came
    };
    Outcome outcome = Outcome::Result;
    pugi::xml_node iq;         // the answer (Result, Remote); valid during the callback
    StanzaError error;         // Remote only

    bool ok() const { return outcome == Outcome::Result; }
    // Our side failed, not the server: asking again later may work.
    bool local() const { return outcome != Outcome::Result && outcome != Outcome::Remote; }
    // For people: "timeout", "not online", "disconnected" or "condition (text)".
    std::string describe() const;
};
using IqCallback = std::function<void(const IqReply&)>;
// Makes the <iq/> to send with the id the owner chose.
using IqMaker = std::function<std::string(const std::string& id)>;

// A request that got no result, as the reply to the front end that asked: `not-online`,
// `timeout`, or `refused` with what the server said.
model::Reply failure_reply(const IqReply& r, const std::string& account);

}  // namespace xmpp::im
