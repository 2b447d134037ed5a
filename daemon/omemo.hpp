#pragma once
// OmemoDevice: this account's OMEMO device (XEP-0384): device id, identity key, signed
// pre-key and pre-keys, made on first use with libomemo-c and kept in the store
// (account_meta, a file of mode 0600; see docs/encryption.md for what that protects).
// libomemo-c is given an OpenSSL 3 crypto provider. Loop thread only; memory: one
// libomemo-c context and about 100 pre-keys per account.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "daemon/store.hpp"
#include "protocol/base/result.hpp"
#include "protocol/omemo/stanza.hpp"

struct signal_context;

namespace stanzad {

class OmemoDevice {
public:
    // The device of `account`, made now (and committed before this returns) if it has none.
    static xmpp::Result<std::unique_ptr<OmemoDevice>> open(Store& store, const std::string& account);
    ~OmemoDevice();
    OmemoDevice(const OmemoDevice&) = delete;
    OmemoDevice& operator=(const OmemoDevice&) = delete;

    std::uint32_t device_id() const { return device_id_; }
    // What we publish (XEP-0384 §5.3.2): public keys only.
    const xmpp::omemo::Bundle& bundle() const { return bundle_; }
    // The identity key's fingerprint in the usual grouped hex form (8 groups of 8).
    std::string fingerprint() const;

    static constexpr std::uint32_t pre_key_count = 100;  // §5.3.2: about 100, at least 25

private:
    OmemoDevice() = default;
    xmpp::Status create(Store& store, const std::string& account);
    xmpp::Status load(Store& store, const std::string& account);

    signal_context* ctx_ = nullptr;
    std::uint32_t device_id_ = 0;
    xmpp::omemo::Bundle bundle_;
};

// libomemo-c's crypto provider over OpenSSL 3 (EVP): random, HMAC-SHA-256, SHA-512,
// AES-CBC (PKCS#5) and AES-CTR. Installed on `ctx`.
bool install_openssl_provider(signal_context* ctx);

}  // namespace stanzad
