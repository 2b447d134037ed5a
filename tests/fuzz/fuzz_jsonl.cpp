// Fuzzes the JSON-lines session and codec as a hostile local client would drive them:
// any bytes, in any split; every request gets a reply and nothing crashes.
#include <cstddef>
#include <cstdint>

#include "frontends/model/codec.hpp"
#include "frontends/jsonl/session.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    (void)model::codec::decode(in);
    jsonl::Session s("stanzad fuzz");
    s.receive("{\"op\":\"hello\",\"client\":\"fuzz\"}\n");
    while (!in.empty()) {
        std::size_t n = std::min<std::size_t>(in.size(), 1 + static_cast<unsigned char>(in[0]) % 97);
        s.receive(in.substr(0, n));
        in.remove_prefix(n);
        while (auto r = s.next_request()) s.reply(*r, model::Reply{});
        (void)s.take_output();
    }
    return 0;
}
