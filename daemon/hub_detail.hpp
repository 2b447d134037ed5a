#pragma once
// What the hub's files share (hub.cpp, hub_commands.cpp). Internal to daemon/.
#include <string>

#include "daemon/account.hpp"
#include "frontends/model/model.hpp"

namespace stanzad {

using xmpp::im::normalize_stamp;

using xmpp::im::failure_reply;

}  // namespace stanzad
