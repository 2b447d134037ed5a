#include "protocol/im/features.hpp"

#include "protocol/im.hpp"
#include "protocol/stream.hpp"
#include "protocol/xml_framer.hpp"

namespace xmpp::im {

DiscoInfo parse_disco_info(pugi::xml_node iq) {
    DiscoInfo out;
    if (std::string_view(iq.attribute("type").value()) != "result") return out;
    for (auto c : child(iq, ns_disco_info, "query").children()) {
        if (is(c, ns_disco_info, "feature")) {
            if (*c.attribute("var").value()) out.features.insert(c.attribute("var").value());
        } else if (is(c, ns_disco_info, "identity")) {
            out.identities.insert(std::string(c.attribute("category").value()) + "/" + c.attribute("type").value());
        }
    }
    return out;
}

Capabilities capabilities(const DiscoInfo& server, const DiscoInfo& account, bool stream_management) {
    auto either = [&](std::string_view var) {
        return server.features.count(std::string(var)) > 0 || account.features.count(std::string(var)) > 0;
    };
    Capabilities c;
    c.known = true;
    c.stream_management = stream_management;
    c.archive = either(ns_mam);          // XEP-0313 §7
    c.carbons = either(ns_carbons);      // XEP-0280 §3
    c.pep = account.identities.count("pubsub/pep") > 0 || server.identities.count("pubsub/pep") > 0;  // XEP-0163 §4
    return c;
}

std::vector<std::string> missing_notes(const Capabilities& caps) {
    std::vector<std::string> out;
    if (!caps.known) return out;
    if (!caps.stream_management)
        out.emplace_back("server has no stream management (XEP-0198 v3): a session cannot be resumed after a "
                         "reconnection");
    if (!caps.archive)
        out.emplace_back("server has no message archive: messages that arrive while the link is down can be "
                         "lost; history is served from the local store");
    if (!caps.carbons)
        out.emplace_back("server has no carbons: messages to and from your other clients are not copied here; "
                         "a client with a higher priority gets messages sent to your bare JID instead (raise this account's "
                         "priority in the config)");
    if (!caps.pep) out.emplace_back("server has no PEP: bookmarks come from private storage (XEP-0048)");
    return out;
}

std::string make_disco_info_get(std::string_view id, std::string_view to) {
    return "<iq type='get' id='" + xml_escape(id) + "' to='" + xml_escape(to) +
           "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>";
}

}  // namespace xmpp::im
