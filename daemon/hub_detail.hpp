#pragma once
// What the hub's files share (hub.cpp, hub_commands.cpp). Internal to daemon/.
#include <string>

#include "daemon/account.hpp"
#include "frontends/model/model.hpp"

namespace stanzad {

// A front end's time (XEP-0082 / RFC 3339, any offset and precision) in the one form the
// store uses, so that comparisons as text are comparisons of times. False when it is no time.
bool normalize_stamp(std::string& stamp);

using xmpp::im::failure_reply;

}  // namespace stanzad
