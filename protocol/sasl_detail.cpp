// Helpers shared by the SASL mechanisms; see sasl_detail.hpp.
#include "protocol/sasl_detail.hpp"

#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include <idn-free.h>
#include <stringprep.h>

#include <algorithm>
#include <climits>

namespace xmpp::sasl::detail {

void wipe(std::string& s) {
    if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
    s.clear();
}

std::string sanitize(std::string_view text, std::size_t limit) {
    std::string out;
    for (char c : text.substr(0, limit)) {
        out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
    }
    if (text.size() > limit) out += "...";
    return out;
}

Result<std::string> prepare(std::string_view text, std::string_view what) {
    // libidn takes a C string: an embedded NUL would silently truncate the input, and
    // RFC 4013 §2.3 prohibits U+0000 anyway (RFC 3454 C.2.1).
    if (text.find('\0') != std::string_view::npos) {
        return make_error("saslprep", std::string(what) +
                                          " is not allowed by SASLprep (RFC 4013): it "
                                          "contains a NUL character");
    }
    std::string input(text);
    char* out = nullptr;
    // Flags 0: a "query" string in RFC 3454 §7 terms; RFC 5802 §5.1 asks for that for
    // both username and password, and unassigned code points stay allowed.
    int rc = stringprep_profile(input.c_str(), &out, "SASLprep",
                                static_cast<Stringprep_profile_flags>(0));
    wipe(input);
    if (rc != STRINGPREP_OK) {
        if (out != nullptr) idn_free(out);
        return make_error("saslprep",
                          std::string(what) + " is not allowed by SASLprep (RFC 4013): " +
                              stringprep_strerror(static_cast<Stringprep_rc>(rc)));
    }
    std::string result(out);
    OPENSSL_cleanse(out, result.size());
    idn_free(out);
    return result;
}

Hash hash_info(ScramHash hash) {
    switch (hash) {
        case ScramHash::Sha1: return {"SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", EVP_sha1()};
        case ScramHash::Sha256: return {"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", EVP_sha256()};
        case ScramHash::Sha512: return {"SCRAM-SHA-512", "SCRAM-SHA-512-PLUS", EVP_sha512()};
    }
    return {"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", EVP_sha256()};
}

bool hmac(const EVP_MD* md, const Secret& key, std::string_view data, Secret& out) {
    out = Secret(static_cast<std::size_t>(EVP_MD_get_size(md)));
    unsigned int length = 0;
    if (key.size() > INT_MAX) return false;
    if (HMAC(md, key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
             &length) == nullptr) {
        return false;
    }
    return length == out.size();
}

bool contains(const std::vector<std::string>& list, std::string_view item) {
    return std::find(list.begin(), list.end(), item) != list.end();
}

}  // namespace xmpp::sasl::detail
