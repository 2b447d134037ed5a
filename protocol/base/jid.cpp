#include "protocol/base/jid.hpp"

#include <stringprep.h>

#include <cstdlib>
#include <optional>
#include <string_view>

namespace xmpp {
namespace {

constexpr std::size_t max_part_bytes = 1023;  // RFC 7622 §3.2, §3.3, §3.4

enum class Profile { Nodeprep, Nameprep, Resourceprep };

const char* name(Profile profile) {
    switch (profile) {
    case Profile::Nodeprep: return "Nodeprep";
    case Profile::Nameprep: return "Nameprep";
    case Profile::Resourceprep: return "Resourceprep";
    }
    return "Resourceprep";
}

// What stringprep gives for a part of visible ASCII (U+0021..U+007E) that it accepts, without
// libidn (whose full preparation costs about 10,000 instructions a part, and every received
// stanza has several JIDs; docs/performance.md): the RFC 3454 tables map no visible ASCII but
// the upper-case letters (B.2 case folding, used by Nodeprep and Nameprep; Resourceprep does
// not fold) and prohibit none of it, except Nodeprep's " & ' / : < > @ (RFC 3920 A.5), which
// go the slow way so that the error says what libidn says. nullopt: not such a part.
std::optional<std::string> prepare_ascii(std::string_view part, Profile profile) {
    std::string out(part);
    for (char& c : out) {
        if (c < 0x21 || c > 0x7e) return std::nullopt;
        if (profile == Profile::Nodeprep && std::string_view("\"&'/:<>@").find(c) != std::string_view::npos)
            return std::nullopt;
        if (profile != Profile::Resourceprep && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

Result<std::string> prepare(std::string_view part, Profile profile, const char* what) {
    if (part.empty()) return make_error("bad-jid", std::string(what) + " is empty");
    if (part.size() > max_part_bytes)
        return make_error("bad-jid", std::string(what) + " is longer than 1023 bytes");
    if (auto ascii = prepare_ascii(part, profile)) return std::move(*ascii);
    char* out = nullptr;
    std::string in(part);
    int rc = stringprep_profile(in.c_str(), &out, name(profile), STRINGPREP_NO_UNASSIGNED);
    if (rc != STRINGPREP_OK) {
        std::free(out);
        return make_error("bad-jid", std::string(what) + " '" + in + "' is not allowed: " +
                                         stringprep_strerror(static_cast<Stringprep_rc>(rc)));
    }
    std::string prepared(out);
    std::free(out);
    if (prepared.empty() || prepared.size() > max_part_bytes)
        return make_error("bad-jid", std::string(what) + " '" + in + "' is empty after preparation");
    return prepared;
}

}  // namespace

Result<Jid> Jid::parse(std::string_view text) {
    // RFC 7622 §3.1: the first '/' ends the domain, the '@' before it ends the localpart.
    Jid jid;
    std::string_view rest = text;
    std::string_view resource;
    bool has_resource = false;
    if (auto slash = rest.find('/'); slash != std::string_view::npos) {
        resource = rest.substr(slash + 1);
        rest = rest.substr(0, slash);
        has_resource = true;
    }
    std::string_view local;
    bool has_local = false;
    if (auto at = rest.find('@'); at != std::string_view::npos) {
        local = rest.substr(0, at);
        rest = rest.substr(at + 1);
        has_local = true;
    }
    std::string_view domain = rest;
    if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);  // §3.2
    if (domain.empty()) return make_error("bad-jid", "'" + std::string(text) + "' has no domain");
    if (has_local) {
        auto l = prepare(local, Profile::Nodeprep, "localpart");
        if (!l) return l.error();
        jid.local_ = std::move(l).value();
    }
    auto d = prepare(domain, Profile::Nameprep, "domain");
    if (!d) return d.error();
    jid.domain_ = std::move(d).value();
    for (char c : jid.domain_)
        if (c == '@' || c == '/' || static_cast<unsigned char>(c) <= ' ')
            return make_error("bad-jid", "domain '" + jid.domain_ + "' has a forbidden character");
    if (has_resource) {
        auto r = prepare(resource, Profile::Resourceprep, "resource");
        if (!r) return r.error();
        jid.resource_ = std::move(r).value();
    }
    return jid;
}

std::string Jid::bare() const { return local_.empty() ? domain_ : local_ + "@" + domain_; }

std::string Jid::full() const { return resource_.empty() ? bare() : bare() + "/" + resource_; }

Jid Jid::with_resource(std::string_view resource) const {
    Jid j = *this;
    j.resource_ = std::string(resource);
    return j;
}

}  // namespace xmpp
