#pragma once
// The fixture of the IRC session tests (irc_session*_test.cpp): a session fed lines and
// events, with a fake daemon that answers its commands.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "frontends/irc/session.hpp"

namespace irc_test {
using namespace irc;

// What the daemon would answer, and what the session asked.
struct FakeDaemon {
    std::vector<model::Command> commands;
    std::vector<std::string> clients;  // the client name of each command
    model::Seq cursor = 1;  // a client name seen before
    std::vector<model::RosterItem> roster{{"bob@example.org", "", "both", {}, ""}};
    std::vector<model::Presence> presences{{"bob@example.org/phone", true, "", "", 0}};
    std::vector<model::RoomInfo> rooms;
    std::vector<model::OmemoDeviceInfo> devices;

    model::Reply answer(const model::Command& c) {
        model::Reply r;
        if (std::holds_alternative<model::Hello>(c)) {
            r.cursor = cursor;
            r.accounts.push_back({"home", "alice@example.org", "online", "", "alice@example.org/stanzad", "SCRAM-SHA-1", "localhost:5222 (STARTTLS) at 127.0.0.1:5222"});
        } else if (std::holds_alternative<model::GetRoster>(c)) {
            r.items = roster;
        } else if (std::holds_alternative<model::ListPresences>(c)) {
            r.presences = presences;
        } else if (std::holds_alternative<model::ListRooms>(c)) {
            r.rooms = rooms;
        } else if (auto* s = std::get_if<model::Send>(&c)) {
            r.msg_id = s->client_id;
        } else if (auto* e = std::get_if<model::SetEncryption>(&c)) {
            r.encryption = e->mode.empty() ? "default" : e->mode;
            r.encryption_default = "auto";
        } else if (std::holds_alternative<model::OmemoDevices>(c)) {
            r.omemo_devices = devices;
        }
        return r;
    }
    // Answers everything the session asked until it asks nothing more.
    void serve(Session& s) {
        while (auto req = s.next_request()) {
            commands.push_back(req->command);
            clients.push_back(req->client);
            s.reply(req->id, answer(req->command));
        }
    }
    template <class T>
    std::vector<T> sent() const {
        std::vector<T> out;
        for (const auto& c : commands)
            if (auto* t = std::get_if<T>(&c)) out.push_back(*t);
        return out;
    }
};

inline std::vector<std::string> lines_of(const std::string& out) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (std::size_t end; (end = out.find("\r\n", start)) != std::string::npos; start = end + 2)
        lines.push_back(out.substr(start, end - start));
    return lines;
}

inline bool any_line(const std::vector<std::string>& lines, std::string_view needle) {
    for (const auto& l : lines)
        if (l.find(needle) != std::string::npos) return true;
    return false;
}

struct Fixture {
    NickMap nicks;
    FakeDaemon daemon;
    Session session;

    explicit Fixture(std::string server = "stanzad", std::string prefix = std::string(default_encrypted_prefix))
        : session(SessionOptions{"pw", "9.9", server, [] { return std::int64_t{1795955696}; }, {}, prefix}, nicks, "t") {}

    std::vector<std::string> feed(std::string_view text) {
        session.receive(text);
        daemon.serve(session);
        return lines_of(session.take_output());
    }
    // Registers with the given caps; returns what the session said. Unless `replay`, the
    // replay the daemon would run finds nothing.
    std::vector<std::string> register_with(const std::string& caps, bool replay = false) {
        std::string text = "CAP LS 302\r\nPASS pw\r\nNICK al\r\nUSER al@laptop 0 * :Al\r\n";
        if (!caps.empty()) text += "CAP REQ :" + caps + "\r\n";
        text += "CAP END\r\n";
        auto out = feed(text);
        if (!replay && session.replay_after()) {
            session.replay_end();
            auto more = lines_of(session.take_output());
            out.insert(out.end(), more.begin(), more.end());
        }
        return out;
    }
    model::Event message(model::Seq seq, std::string from, std::string body, bool outgoing = false,
                         std::string type = "chat") {
        model::Message m;
        m.from = outgoing ? "alice@example.org" : std::move(from);
        m.to = outgoing ? "bob@example.org" : "alice@example.org/stanzad";
        m.type = std::move(type);
        if (m.type == "groupchat" && outgoing) m.to = "dev@muc.example.org";
        m.body = std::move(body);
        m.msg_id = "id" + std::to_string(seq);
        m.outgoing = outgoing;
        return model::Event{seq, "home", "2026-11-25T12:34:56.000Z", m};
    }
};

}  // namespace irc_test
