#pragma once
// An XMPP address (RFC 7622): localpart@domainpart/resourcepart, each part prepared
// (nodeprep, nameprep, resourceprep via libidn's stringprep) and length-checked (1023 bytes).
#include <string>
#include <string_view>

#include "protocol/base/result.hpp"

namespace xmpp {

class Jid {
public:
    Jid() = default;
    // Parses and prepares; the error message names the part that is wrong.
    static Result<Jid> parse(std::string_view text);

    const std::string& local() const { return local_; }
    const std::string& domain() const { return domain_; }
    const std::string& resource() const { return resource_; }
    bool empty() const { return domain_.empty(); }
    bool is_bare() const { return resource_.empty(); }

    std::string bare() const;  // local@domain (or domain)
    std::string full() const;  // bare()/resource (or bare() without a resource)
    Jid with_resource(std::string_view resource) const;  // resource must already be prepared

    friend bool operator==(const Jid&, const Jid&) = default;

private:
    std::string local_, domain_, resource_;
};

}  // namespace xmpp
