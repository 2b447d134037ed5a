#pragma once
// What the SASL mechanisms share (sasl.cpp, sasl_scram.cpp): wiping secrets, SASLprep
// (RFC 4013), bounded server text for error messages, the SCRAM hashes. Internal to
// protocol/: nothing outside includes it.
#include <openssl/evp.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/sasl.hpp"

namespace xmpp::sasl::detail {

void wipe(std::string& s);

// Key material that is wiped when it goes out of scope, so a reused heap block or a core
// dump does not hand it to someone else.
class Secret {
public:
    explicit Secret(std::size_t size = 0) : bytes_(size) {}
    ~Secret() { clear(); }
    Secret(Secret&& other) noexcept : bytes_(std::move(other.bytes_)) {}
    Secret& operator=(Secret&& other) noexcept {
        clear();
        bytes_ = std::move(other.bytes_);
        return *this;
    }
    Secret(const Secret&) = delete;
    Secret& operator=(const Secret&) = delete;

    unsigned char* data() { return bytes_.data(); }
    const unsigned char* data() const { return bytes_.data(); }
    std::size_t size() const { return bytes_.size(); }
    std::string_view view() const {
        return {reinterpret_cast<const char*>(bytes_.data()), bytes_.size()};
    }
    void clear() {
        if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
        bytes_.clear();
    }

private:
    std::vector<unsigned char> bytes_;
};

// Server-supplied text put into an error message: printable ASCII only and bounded, so a
// hostile server cannot inject control characters or megabytes into our logs.
std::string sanitize(std::string_view text, std::size_t limit = 64);

// SASLprep (RFC 4013) of a username or password. `what` names the field ("username",
// "password") and is the only part of the input an error message reveals.
Result<std::string> prepare(std::string_view text, std::string_view what);

struct Hash {
    std::string_view mechanism;
    std::string_view plus;  // the channel-binding variant (RFC 5802 §4)
    const EVP_MD* md;
};

Hash hash_info(ScramHash hash);

bool hmac(const EVP_MD* md, const Secret& key, std::string_view data, Secret& out);

bool contains(const std::vector<std::string>& list, std::string_view item);

}  // namespace xmpp::sasl::detail
