#pragma once
// What the OmemoDevice files share (omemo.cpp, omemo_send.cpp, omemo_receive.cpp) about
// libomemo-c's objects. Internal to daemon/.
#include <string>

extern "C" {
#include <omemo/signal_protocol.h>
}

namespace stanzad::omemo_detail {

// The buffer's bytes; the buffer is wiped and freed.
inline std::string bytes(signal_buffer* b) {
    std::string out(reinterpret_cast<const char*>(signal_buffer_data(b)), signal_buffer_len(b));
    signal_buffer_bzero_free(b);
    return out;
}

// Drops libomemo-c's reference to `p` at the end of the scope.
template <class T>
struct Unref {
    T* p = nullptr;
    ~Unref() {
        if (p) SIGNAL_UNREF(p);
    }
};

}  // namespace stanzad::omemo_detail
