// Fuzzes the IRC session with whatever a client may send, registered or not, with a
// daemon that answers every command: no crash, no hang, output always well-formed lines.
#include <cstddef>
#include <cstdint>
#include <string>

#include "frontends/irc/session.hpp"

namespace {

model::Reply answer(const model::Command& c) {
    model::Reply r;
    if (std::holds_alternative<model::Hello>(c)) {
        r.accounts.push_back({"home", "alice@example.org", "online", "", "alice@example.org/stanzad", "", "", {}, 0});
    } else if (std::holds_alternative<model::GetRoster>(c)) {
        r.items.push_back({"bob@example.org", "Bob", "both", {"F"}, ""});
    } else if (std::holds_alternative<model::ListRooms>(c)) {
        r.rooms.push_back({"dev@muc.example.org", "joined", "al", "", "topic", false,
                           {{"al", "", "moderator", "owner", "", ""}, {"bob", "", "participant", "none", "", ""}}});
    } else if (std::holds_alternative<model::StoredMessages>(c)) {
        model::Message m;
        m.from = "bob@example.org/x";
        m.to = "alice@example.org";
        m.body = "old\nlines";
        m.msg_id = "m1";
        r.messages.push_back({1, "home", "2026-11-25T12:00:00.000Z", m});
        m.msg_id = "m2";
        m.encryption = "omemo";
        m.trust = "changed";
        r.messages.push_back({2, "home", "2026-11-25T12:00:01.000Z", m});
    } else if (std::holds_alternative<model::OmemoDevices>(c)) {
        r.omemo_devices.push_back({"bob@example.org", 7, "05c3b1e2 7a7a0011", "blind", false});
    } else if (std::holds_alternative<model::SetEncryption>(c)) {
        r.encryption = "default";
        r.encryption_default = "auto";
    }
    return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    irc::NickMap nicks;
    irc::Session s(irc::SessionOptions{"", "0", "stanzad", {}, {}, std::string(irc::default_encrypted_prefix)}, nicks, "f");
    std::string_view input(reinterpret_cast<const char*>(data), size);
    // Registered first half the time, so commands after registration get fuzzed too.
    if (size > 0 && (data[0] & 1)) s.receive("CAP LS 302\r\nCAP REQ :batch server-time message-tags echo-message labeled-response draft/chathistory\r\nNICK al\r\nUSER al@x 0 * :A\r\nCAP END\r\n");
    for (std::size_t off = 0; off < input.size(); off += 97) {
        s.receive(input.substr(off, 97));
        for (int guard = 0; guard < 1000; ++guard) {
            auto req = s.next_request();
            if (!req) break;
            s.reply(req->id, answer(req->command));
        }
        std::string out = s.take_output();
        // Every line we write ends in CR LF and holds no other CR, LF or NUL.
        std::size_t start = 0;
        for (std::size_t end; (end = out.find("\r\n", start)) != std::string::npos; start = end + 2)
            for (std::size_t i = start; i < end; ++i)
                if (out[i] == '\r' || out[i] == '\n' || out[i] == '\0') __builtin_trap();
        if (start != out.size()) __builtin_trap();
        if (s.closing()) break;
    }
    if (s.replay_after()) s.replay_end();
    (void)s.keepalive();
    return 0;
}
