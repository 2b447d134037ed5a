// The IRC session fed lines and events, with a fake daemon that answers its commands.
#include <catch2/catch.hpp>

#include "frontends/irc/session.hpp"

using namespace irc;

namespace {

// What the daemon would answer, and what the session asked.
struct FakeDaemon {
    std::vector<model::Command> commands;
    std::vector<std::string> clients;  // the client name of each command
    model::Seq cursor = 1;  // a client name seen before
    std::vector<model::RosterItem> roster{{"bob@example.org", "", "both", {}, ""}};
    std::vector<model::Presence> presences{{"bob@example.org/phone", true, "", "", 0}};
    std::vector<model::RoomInfo> rooms;

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

std::vector<std::string> lines_of(const std::string& out) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (std::size_t end; (end = out.find("\r\n", start)) != std::string::npos; start = end + 2)
        lines.push_back(out.substr(start, end - start));
    return lines;
}

bool any_line(const std::vector<std::string>& lines, std::string_view needle) {
    for (const auto& l : lines)
        if (l.find(needle) != std::string::npos) return true;
    return false;
}

struct Fixture {
    NickMap nicks;
    FakeDaemon daemon;
    Session session{SessionOptions{"pw", "9.9", "stanzad"}, nicks, "t"};

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

}  // namespace

TEST_CASE("irc: registration with caps: welcome, ISUPPORT, the control channel with the roster") {
    Fixture f;
    auto out = f.register_with("server-time message-tags batch");
    CHECK(any_line(out, "CAP * LS :away-notify batch"));
    CHECK(any_line(out, "sasl=PLAIN"));
    CHECK(any_line(out, "CAP al ACK :server-time message-tags batch"));
    CHECK(any_line(out, " 001 al "));
    CHECK(any_line(out, "CASEMAPPING=ascii"));
    CHECK(any_line(out, "UTF8ONLY"));
    CHECK(any_line(out, "JOIN &stanzad"));
    CHECK(any_line(out, " 353 al = &stanzad :@stanzad al +bob"));  // bob is online: voiced
    CHECK(f.session.registered());
    // The client name from USER al@laptop names the replay cursor.
    REQUIRE_FALSE(f.daemon.sent<model::Hello>().empty());
    CHECK(f.daemon.sent<model::Hello>()[0].client == "irc-laptop");
}

TEST_CASE("irc: registration without caps, and a wrong or missing password is refused") {
    {
        Fixture f;
        auto out = f.feed("PASS pw\r\nNICK al\r\nUSER al 0 * :Al\r\n");
        CHECK(any_line(out, " 001 al "));
        CHECK(f.daemon.sent<model::Hello>().at(0).client == "irc-irc");
    }
    for (std::string pass : {"PASS nope\r\n", ""}) {
        Fixture f;
        auto out = f.feed(pass + "NICK al\r\nUSER al 0 * :Al\r\n");
        CHECK(any_line(out, " 464 "));
        CHECK(any_line(out, "ERROR :Closing link"));
        CHECK(f.session.closing());
        CHECK_FALSE(f.session.registered());
        CHECK(f.daemon.commands.empty());  // nothing reached the daemon
    }
}

TEST_CASE("irc: SASL PLAIN instead of PASS, and its client name") {
    Fixture f;
    // base64("\0al@phone\0pw")
    auto out = f.feed("CAP LS 302\r\nNICK al\r\nUSER al 0 * :Al\r\nCAP REQ :sasl\r\nAUTHENTICATE PLAIN\r\n");
    CHECK(any_line(out, "AUTHENTICATE +"));
    out = f.feed("AUTHENTICATE AGFsQHBob25lAHB3\r\nCAP END\r\n");
    CHECK(any_line(out, " 900 "));
    CHECK(any_line(out, " 903 "));
    CHECK(any_line(out, " 001 al "));
    CHECK(f.daemon.sent<model::Hello>().at(0).client == "irc-phone");

    Fixture bad;
    bad.feed("CAP LS 302\r\nNICK al\r\nUSER al 0 * :Al\r\nCAP REQ :sasl\r\nAUTHENTICATE PLAIN\r\n");
    out = bad.feed("AUTHENTICATE AGFsAG5vcGU=\r\n");  // "\0al\0nope"
    CHECK(any_line(out, " 904 "));
    out = bad.feed("CAP END\r\n");
    CHECK(any_line(out, " 464 "));
}

TEST_CASE("irc: messages both ways, with tags only for the caps asked, /me as ACTION") {
    Fixture f;
    f.register_with("server-time message-tags");
    f.session.event(f.message(5, "bob@example.org/phone", "hello\nsecond line"));
    auto out = lines_of(f.session.take_output());
    REQUIRE(out.size() == 3);
    CHECK(out[0] == "@time=2026-11-25T12:34:56.000Z;msgid=id5 :bob!bob@example.org PRIVMSG al :hello");
    CHECK(out[1] == "@time=2026-11-25T12:34:56.000Z :bob!bob@example.org PRIVMSG al :second line");
    // Seen once the client answers the PING after it: then the cursor of its name moves.
    CHECK(out[2] == ":stanzad PING ack-5");
    f.session.event(f.message(6, "bob@example.org/phone", "/me waves"));
    out = lines_of(f.session.take_output());
    REQUIRE(out.size() == 1);  // one confirmation PING at a time
    CHECK(out[0].ends_with("PRIVMSG al :\x01" "ACTION waves\x01"));
    CHECK(f.daemon.sent<model::Ack>().empty());
    out = f.feed("PONG stanzad ack-5\r\n");
    REQUIRE(f.daemon.sent<model::Ack>().size() == 1);
    CHECK(f.daemon.sent<model::Ack>()[0].seq == 5);
    CHECK(out == std::vector<std::string>{":stanzad PING ack-6"});
    f.feed("PONG stanzad ack-6\r\n");
    CHECK(f.daemon.sent<model::Ack>().at(1).seq == 6);

    f.feed("PRIVMSG bob :hi there\r\nPRIVMSG bob :\x01" "ACTION nods\x01\r\n");
    auto sends = f.daemon.sent<model::Send>();
    REQUIRE(sends.size() == 2);
    CHECK(sends[0].to == "bob@example.org");
    CHECK(sends[0].type == "chat");
    CHECK(sends[0].body == "hi there");
    CHECK(sends[1].body == "/me nods");
    // IRC formatting is dropped, never sent as control characters.
    f.feed("PRIVMSG bob :\x02" "bold\x02 \x03" "04,05red\x0f \x1d" "it\x1d \x04" "ff0000hex\r\n");
    CHECK(f.daemon.sent<model::Send>().at(2).body == "bold red it hex");
    f.daemon.commands.pop_back();
    // Without echo-message our own message is not echoed; from another front end it is shown.
    f.session.event(model::Event{7, "home", "2026-11-25T12:35:00.000Z",
                                 model::Message{"alice@example.org", "bob@example.org", "chat", "hi there",
                                                sends[0].client_id, false, true, "", "", false}});
    // Not shown (no echo-message), but counted as seen once the PING after it is answered.
    CHECK(lines_of(f.session.take_output()) == std::vector<std::string>{":stanzad PING ack-7"});
    f.session.event(f.message(8, "", "from emacs", true));
    out = lines_of(f.session.take_output());
    REQUIRE(out.size() == 1);
    CHECK(out[0].find(":al!al@stanzad PRIVMSG bob :from emacs") != std::string::npos);
}

TEST_CASE("irc: echo-message with labeled-response carries the label") {
    Fixture f;
    f.register_with("echo-message labeled-response message-tags");
    auto out = f.feed("@label=L1 PRIVMSG bob :labeled\r\n");
    CHECK(out.empty());  // the echo is the response, once the daemon has the message
    auto send = f.daemon.sent<model::Send>().at(0);
    f.session.event(model::Event{9, "home", "2026-11-25T12:35:00.000Z",
                                 model::Message{"alice@example.org", "bob@example.org", "chat", "labeled",
                                                send.client_id, false, true, "", "", false}});
    out = lines_of(f.session.take_output());
    REQUIRE(out.size() == 2);
    CHECK(out[0].starts_with("@label=L1;msgid="));
    CHECK(out[0].ends_with("PRIVMSG bob :labeled"));
    CHECK(out[1] == ":stanzad PING ack-9");
    // Our ids name the client name that sent them: a replay to that name skips them.
    CHECK(send.client_id.starts_with("irc-laptop-"));
    // A labeled command with no output is ACKed; with several lines, a labeled batch.
    out = f.feed("@label=L2 PONG :x\r\n");
    REQUIRE(out.size() == 1);
    CHECK(out[0] == "@label=L2 :stanzad ACK");
}

TEST_CASE("irc: bad lines get their numerics and the session goes on") {
    Fixture f;
    auto out = f.feed("PRIVMSG bob :early\r\n");
    CHECK(any_line(out, " 451 "));
    f.register_with("");
    out = f.feed("FLY away\r\n");
    CHECK(any_line(out, " 421 al FLY :Unknown command"));
    out = f.feed(std::string(10000, 'x') + "\r\n");
    CHECK(any_line(out, " 417 "));
    out = f.feed("PRIVMSG bob :\xff\xfe\r\n");
    CHECK(any_line(out, "FAIL PRIVMSG INVALID_UTF8"));
    out = f.feed("@a=b\r\n");
    CHECK(any_line(out, " 421 "));
    out = f.feed("PRIVMSG nobody :x\r\n");
    CHECK(any_line(out, " 401 al nobody "));
    out = f.feed("PING :still-here\r\n");
    CHECK(any_line(out, "PONG stanzad still-here"));
    CHECK(f.daemon.sent<model::Send>().empty());
}

TEST_CASE("irc: replay in chathistory batches, cursor acked on the PONG after it") {
    Fixture f;
    f.daemon.cursor = 3;
    f.register_with("batch server-time message-tags", true);
    REQUIRE(f.session.replay_after() == std::optional<model::Seq>(3));
    f.session.replay_event(f.message(4, "bob@example.org/phone", "missed one"));
    f.session.replay_event(model::Event{5, "home", "", model::MessageState{"x", "acked", ""}});
    f.session.replay_event(f.message(6, "bob@example.org/phone", "missed two"));
    // A live message while replaying is left to the replay.
    f.session.event(f.message(6, "bob@example.org/phone", "missed two"));
    f.session.replay_end();
    auto out = lines_of(f.session.take_output());
    REQUIRE(out.size() == 5);
    CHECK(out[0].starts_with(":stanzad BATCH +"));
    CHECK(out[0].ends_with(" chathistory bob"));
    CHECK(out[1].find("missed one") != std::string::npos);
    CHECK(out[1].find(";batch=") != std::string::npos);
    CHECK(out[2].find("missed two") != std::string::npos);
    CHECK(out[3].starts_with(":stanzad BATCH -"));
    CHECK(out[4] == ":stanzad PING replay-6");
    CHECK(f.daemon.sent<model::Ack>().empty());
    f.feed("PONG stanzad :replay-6\r\n");
    REQUIRE(f.daemon.sent<model::Ack>().size() == 1);
    CHECK(f.daemon.sent<model::Ack>()[0].seq == 6);
}

TEST_CASE("irc: without server-time a replay has [HH:MM]; with draft/chathistory none at all") {
    Fixture fresh;  // a client name never seen: it starts from now, and is recorded at once
    fresh.daemon.cursor = 0;
    fresh.register_with("", true);
    CHECK_FALSE(fresh.session.replay_after());
    CHECK(fresh.daemon.sent<model::Ack>().size() == 1);

    Fixture plain;
    plain.daemon.cursor = 1;
    plain.register_with("", true);
    plain.session.replay_event(plain.message(2, "bob@example.org/phone", "old"));
    plain.session.replay_end();
    auto out = lines_of(plain.session.take_output());
    CHECK(any_line(out, "PRIVMSG al :[12:34] old"));
    CHECK_FALSE(any_line(out, "BATCH"));

    Fixture asks;
    asks.daemon.cursor = 1;
    asks.register_with("draft/chathistory batch");
    CHECK_FALSE(asks.session.replay_after());
}

TEST_CASE("irc: the control channel takes commands") {
    Fixture f;
    f.register_with("");
    auto out = f.feed("PRIVMSG &stanzad :help\r\n");
    CHECK(any_line(out, ":stanzad!stanzad@stanzad PRIVMSG &stanzad :commands"));
    f.feed("PRIVMSG stanzad :add carol@example.org\r\n");
    auto sets = f.daemon.sent<model::RosterSet>();
    REQUIRE(sets.size() == 1);
    CHECK(sets[0].jid == "carol@example.org");
    CHECK(f.daemon.sent<model::ChangeSubscription>().at(0).kind == "subscribe");
    f.feed("PRIVMSG &stanzad :allow carol@example.org\r\n");
    CHECK(f.daemon.sent<model::ChangeSubscription>().at(1).kind == "approve");
    out = f.feed("PRIVMSG &stanzad :rename bob bobby\r\n");
    CHECK(any_line(out, ":bob!bob@example.org NICK bobby"));
    CHECK(f.nicks.lookup("bobby"));
    out = f.feed("WHOIS bobby\r\n");
    CHECK(any_line(out, " 311 al bobby bob example.org * :bob@example.org"));
    out = f.feed("PRIVMSG &stanzad :frobnicate\r\n");
    CHECK(any_line(out, "unknown command 'frobnicate'"));
}

TEST_CASE("irc: rooms are channels: JOIN, messages, occupants, topic") {
    Fixture f;
    model::RoomInfo room{"dev@muc.example.org", "joined", "alice", "", "Release day", false,
                         {{"alice", "", "participant", "member", "", ""}, {"carol", "", "moderator", "owner", "", ""}}};
    f.daemon.rooms.push_back(room);
    auto out = f.register_with("multi-prefix");
    CHECK(any_line(out, "JOIN #dev@muc.example.org"));
    CHECK(any_line(out, " 332 al #dev@muc.example.org :Release day"));
    CHECK(any_line(out, " 353 al = #dev@muc.example.org :+al ~@carol"));
    f.session.event(f.message(3, "dev@muc.example.org/carol", "hi all", false, "groupchat"));
    out = lines_of(f.session.take_output());
    REQUIRE(out.size() == 2);
    CHECK(out[1] == ":stanzad PING ack-3");
    CHECK(out[0] == ":carol!dev@muc.example.org PRIVMSG #dev@muc.example.org :hi all");
    f.feed("PRIVMSG #dev@muc.example.org :hello room\r\n");
    auto send = f.daemon.sent<model::Send>().at(0);
    CHECK(send.to == "dev@muc.example.org");
    CHECK(send.type == "groupchat");
    f.session.event(model::Event{4, "home", "", model::Occupant{"dev@muc.example.org", {"dave", "", "participant", "none", "", ""}, "join", "", "", ""}});
    f.session.event(model::Event{5, "home", "", model::Subject{"dev@muc.example.org", "Friday", "carol"}});
    f.session.event(model::Event{6, "home", "", model::Occupant{"dev@muc.example.org", {"dave", "", "participant", "none", "", ""}, "kick", "", "carol", "spam"}});
    out = lines_of(f.session.take_output());
    REQUIRE(out.size() == 3);
    CHECK(out[0] == ":dave!dev@muc.example.org JOIN #dev@muc.example.org");
    CHECK(out[1] == ":carol TOPIC #dev@muc.example.org :Friday");
    CHECK(out[2] == ":carol KICK #dev@muc.example.org dave :kick: spam");
    f.feed("JOIN #new@muc.example.org\r\n");
    auto join = f.daemon.sent<model::Join>().at(0);
    CHECK(join.room == "new@muc.example.org");
    out = f.feed("JOIN #not a room\r\n");
    CHECK(any_line(out, " 403 "));
}

TEST_CASE("irc: CHATHISTORY asks the store and answers in a batch; bad ones FAIL") {
    Fixture f;
    f.register_with("draft/chathistory batch server-time");
    f.feed("CHATHISTORY LATEST bob * 10\r\n");
    auto q = f.daemon.sent<model::StoredMessages>();
    REQUIRE(q.size() == 1);
    CHECK(q[0].peer == "bob@example.org");
    CHECK(q[0].newest);
    CHECK(q[0].limit == 10);
    f.feed("CHATHISTORY BEFORE bob timestamp=2026-11-25T12:00:00.000Z 5\r\n");
    q = f.daemon.sent<model::StoredMessages>();
    CHECK(q.back().before_stamp == "2026-11-25T12:00:00.000Z");
    auto out = f.feed("CHATHISTORY LATEST nobody * 10\r\n");
    CHECK(any_line(out, "FAIL CHATHISTORY INVALID_TARGET"));
    out = f.feed("CHATHISTORY BEFORE bob yesterday 10\r\n");
    CHECK(any_line(out, "FAIL CHATHISTORY INVALID_PARAMS"));
}
