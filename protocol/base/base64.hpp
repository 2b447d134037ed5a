#pragma once
// base64 (RFC 4648 §4) for SASL payloads, OMEMO keys, entity caps, pins and the IRC
// front end's AUTHENTICATE: one encoder, one strict decoder.
#include <string>
#include <string_view>

#include "protocol/base/result.hpp"

namespace xmpp {

std::string base64_encode(std::string_view bytes);
// Strict: no whitespace, padding only at the end, zero pad bits (RFC 4648 §3.5), so every
// byte string has exactly one accepted encoding. Error code "bad-base64".
Result<std::string> base64_decode(std::string_view text);

}  // namespace xmpp
