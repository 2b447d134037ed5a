// The IRC session fed lines and events, with a fake daemon that answers its commands.
#include <catch2/catch.hpp>

#include <cctype>

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

TEST_CASE("irc: [irc] server_name is the source of 001-004, PONG and every server message") {
    Fixture f("irc.home.example");
    auto out = f.register_with("batch labeled-response");
    CHECK(any_line(out, ":irc.home.example 001 al :Welcome"));
    // modern-irc RPL_MYINFO: servername, version, user modes, channel modes in their places.
    CHECK(any_line(out, ":irc.home.example 004 al irc.home.example stanzad-9.9 i nt"));
    CHECK(any_line(out, ":irc.home.example 005 al "));
    out = f.feed("PING :tok\r\n");
    CHECK(out == std::vector<std::string>{":irc.home.example PONG irc.home.example tok"});
    f.session.event(model::Event{3, "home", "", model::Presence{"bob@example.org/phone", false, "", "", 0}});
    out = lines_of(f.session.take_output());
    CHECK(out == std::vector<std::string>{":irc.home.example MODE &stanzad -v bob"});
    out = f.feed("@label=x WHOIS bob\r\n");  // a labeled batch: BATCH, 311, 312, 301, 318, BATCH
    CHECK(out.size() == 6);
    for (const auto& l : out) CHECK(l.find(":irc.home.example ") != std::string::npos);
    CHECK_FALSE(any_line(f.feed("VERSION\r\n"), ":stanzad "));
}

TEST_CASE("irc: PING needs its token and echoes an empty one") {
    Fixture f;
    auto out = f.feed("PING\r\n");
    CHECK(out == std::vector<std::string>{":stanzad 461 * PING :Not enough parameters"});
    f.register_with("");
    out = f.feed("PING :\r\n");
    CHECK(out == std::vector<std::string>{":stanzad PONG stanzad :"});
    out = f.feed("PING\r\n");
    CHECK(out == std::vector<std::string>{":stanzad 461 al PING :Not enough parameters"});
}

TEST_CASE("irc: TIME, HELP and HELPOP, LIST of what exists") {
    Fixture f;
    f.register_with("");
    auto out = f.feed("TIME\r\n");
    // 1795955696 is 2026-11-29T12:34:56Z.
    CHECK(out == std::vector<std::string>{":stanzad 391 al stanzad 1795955696 0 :Sunday November 29 2026 -- 12:34:56 +00:00"});
    out = f.feed("HELP\r\n");
    REQUIRE(out.size() >= 3);
    CHECK(out.front().starts_with(":stanzad 704 al * :"));
    CHECK(out[1] == ":stanzad 705 al * :");
    CHECK(out.back().starts_with(":stanzad 706 al * :"));
    out = f.feed("HELPOP privmsg\r\n");
    REQUIRE(out.size() >= 3);
    CHECK(out.front().starts_with(":stanzad 704 al PRIVMSG :"));
    CHECK(out.back().starts_with(":stanzad 706 al PRIVMSG :"));
    CHECK(f.feed("HELP NOSUCHTHING\r\n") == std::vector<std::string>{":stanzad 524 al NOSUCHTHING :No help available on this topic"});
    CHECK(f.feed("LIST #nope@muc.example.org\r\n") == std::vector<std::string>{":stanzad 323 al :End of /LIST"});
    out = f.feed("LIST &stanzad,#nope\r\n");
    REQUIRE(out.size() == 2);
    CHECK(out[0].starts_with(":stanzad 322 al &stanzad "));
    out = f.feed("LIST\r\n");
    REQUIRE(out.size() == 3);
    CHECK(out[0].starts_with(":stanzad 321 "));
}

TEST_CASE("irc: NOTICE never gets an error reply; PRIVMSG does") {
    Fixture f;
    f.register_with("");
    CHECK(f.feed("NOTICE #nope@muc.example.org :hi\r\nNOTICE nobody :hi\r\nNOTICE\r\nNOTICE bob\r\n").empty());
    CHECK(any_line(f.feed("PRIVMSG #nope@muc.example.org :hi\r\n"), " 403 al #nope@muc.example.org "));
    CHECK(any_line(f.feed("PRIVMSG nobody :hi\r\n"), " 401 al nobody "));
    CHECK(f.daemon.sent<model::Send>().empty());
    f.feed("NOTICE bob :still sent\r\n");
    CHECK(f.daemon.sent<model::Send>().at(0).body == "still sent");
}

TEST_CASE("irc: USER needs a realname; a username that is not UTF-8 is refused, never in 001") {
    Fixture f;
    auto out = f.feed("PASS pw\r\nNICK al\r\nUSER al 0 * :\r\n");
    CHECK(out == std::vector<std::string>{":stanzad 461 al USER :Not enough parameters"});
    out = f.feed("USER \xff\xfe 0 * :Al\r\n");
    CHECK(out == std::vector<std::string>{":stanzad FAIL USER INVALID_UTF8 :Message rejected, your IRC software MUST use UTF-8 encoding on this network"});
    CHECK_FALSE(f.session.registered());
    out = f.feed("USER \xc3\xa9t\xc3\xa9 0 * :Al\r\n");  // "été": UTF-8, not a username
    REQUIRE_FALSE(out.empty());
    CHECK(out[0] == ":stanzad 001 al :Welcome to stanzad, al: your XMPP accounts as an IRC network");
    f.feed("JOIN &stanzad\r\n");
    CHECK(any_line(f.feed("JOIN &stanzad\r\n"), ":al!_t_@stanzad JOIN &stanzad"));
}

TEST_CASE("irc: CAP REQ multi-prefix and userhost-in-names, together, in turns, after registration") {
    Fixture f;
    model::RoomInfo room{"dev@muc.example.org", "joined", "alice", "", "", false,
                         {{"alice", "", "participant", "member", "", ""}, {"carol", "", "moderator", "owner", "", ""}}};
    f.daemon.rooms.push_back(room);
    auto out = f.register_with("multi-prefix userhost-in-names");
    CHECK(any_line(out, "CAP al ACK :multi-prefix userhost-in-names"));
    CHECK(any_line(out, " 353 al = &stanzad :@stanzad!stanzad@stanzad al!al@stanzad +bob!bob@example.org"));
    CHECK(any_line(out, " 353 al = #dev@muc.example.org :+al!al@stanzad ~@carol!dev@muc.example.org"));
    out = f.feed("WHO #dev@muc.example.org\r\n");
    CHECK(any_line(out, " 352 al #dev@muc.example.org dev muc.example.org stanzad carol H~@ :0 "));

    Fixture turns;
    turns.register_with("");
    CHECK(turns.feed("CAP REQ :userhost-in-names\r\n") == std::vector<std::string>{":stanzad CAP al ACK userhost-in-names"});
    CHECK(turns.feed("CAP REQ multi-prefix\r\n") == std::vector<std::string>{":stanzad CAP al ACK multi-prefix"});
    CHECK(any_line(turns.feed("CAP LIST\r\n"), "CAP al LIST :cap-notify multi-prefix userhost-in-names"));
    CHECK(any_line(turns.feed("NAMES &stanzad\r\n"), "+bob!bob@example.org"));
    CHECK(turns.feed("CAP REQ :-userhost-in-names\r\n") == std::vector<std::string>{":stanzad CAP al ACK -userhost-in-names"});
    CHECK(any_line(turns.feed("NAMES &stanzad\r\n"), " +bob"));
}

TEST_CASE("irc: labeled errors carry the label; a labeled message to ourselves gets its labeled echo") {
    Fixture f;
    f.register_with("labeled-response echo-message batch");
    CHECK(f.feed("@label=a1 FLY\r\n") == std::vector<std::string>{"@label=a1 :stanzad 421 al FLY :Unknown command"});
    CHECK(f.feed("@label=a2 MARKREAD\r\n") == std::vector<std::string>{"@label=a2 :stanzad FAIL MARKREAD NEED_MORE_PARAMS :Missing parameters"});
    CHECK(f.feed("@label=a3 PRIVMSG nobody :x\r\n").at(0).starts_with("@label=a3 :stanzad 401 al nobody "));
    // Lines that do not parse answer the label too.
    CHECK(f.feed("@label=a4 PRIVMSG bob :\xff\r\n").at(0).starts_with("@label=a4 :stanzad FAIL PRIVMSG INVALID_UTF8 "));
    CHECK(f.feed("@label=a5 :src\r\n").at(0).starts_with("@label=a5 :stanzad 421 al * "));
    // To our own nick: the delivery, and the echo that is the labeled response.
    auto out = f.feed("@label=a6 PRIVMSG al :me, myself\r\n");
    REQUIRE(out.size() == 2);
    CHECK(out[0] == ":al!al@stanzad PRIVMSG al :me, myself");
    CHECK(out[1] == "@label=a6 :al!al@stanzad PRIVMSG al :me, myself");
    out = f.feed("@label=a7 NOTICE AL :note\r\n");
    REQUIRE(out.size() == 2);
    CHECK(out[1] == "@label=a7 :al!al@stanzad NOTICE al :note");
    CHECK(f.daemon.sent<model::Send>().empty());

    Fixture plain;  // without echo-message the delivery is the response
    plain.register_with("labeled-response");
    CHECK(plain.feed("@label=b1 PRIVMSG al :hi\r\n") == std::vector<std::string>{"@label=b1 :al!al@stanzad PRIVMSG al :hi"});
}

TEST_CASE("irc: MARKREAD without a timestamp answers the marker; without a target it FAILs") {
    Fixture f;
    f.register_with("draft/read-marker");
    CHECK(f.feed("MARKREAD\r\n") == std::vector<std::string>{":stanzad FAIL MARKREAD NEED_MORE_PARAMS :Missing parameters"});
    CHECK(f.feed("MARKREAD bob\r\n") == std::vector<std::string>{":stanzad MARKREAD bob *"});
    CHECK(f.daemon.sent<model::SetReadMarker>().at(0).peer == "bob@example.org");
    CHECK(f.daemon.sent<model::SetReadMarker>().at(0).stamp.empty());
    // A conversation never seen has no marker.
    CHECK(f.feed("MARKREAD stranger\r\n") == std::vector<std::string>{":stanzad MARKREAD stranger *"});
    CHECK(f.daemon.sent<model::SetReadMarker>().size() == 1);
    CHECK(any_line(f.feed("MARKREAD stranger timestamp=2026-11-25T12:00:00.000Z\r\n"), "FAIL MARKREAD INVALID_PARAMS"));
}

TEST_CASE("irc: MONITOR follows the contacts' presence") {
    Fixture f;
    f.daemon.roster.push_back({"carol@example.org", "", "both", {}, ""});
    auto out = f.register_with("extended-monitor away-notify");
    CHECK(any_line(out, "CAP al ACK :extended-monitor away-notify"));
    for (const char* token : {" MONITOR=100 ", " TARGMAX=", " CHATHISTORY=", " UTF8ONLY ", " NETWORK=stanzad "})
        CHECK(any_line(out, token));
    // bob is online, carol and strangers offline; a list is cut at commas.
    out = f.feed("MONITOR + bob,Carol,nobody,not!a!nick\r\n");
    CHECK(out == std::vector<std::string>{":stanzad 730 al :bob!bob@example.org", ":stanzad 731 al :Carol,nobody"});
    f.session.event(model::Event{3, "home", "", model::Presence{"carol@example.org/pc", true, "away", "lunch", 0}});
    out = lines_of(f.session.take_output());
    CHECK(out == std::vector<std::string>{":stanzad MODE &stanzad +v carol", ":stanzad 730 al :carol!carol@example.org",
                                          ":carol!carol@example.org AWAY :away: lunch"});
    f.session.event(model::Event{4, "home", "", model::Presence{"bob@example.org/phone", false, "", "", 0}});
    out = lines_of(f.session.take_output());
    CHECK(out == std::vector<std::string>{":stanzad MODE &stanzad -v bob", ":stanzad 731 al :bob"});
    CHECK(f.feed("MONITOR L\r\n") == std::vector<std::string>{":stanzad 732 al :bob,Carol,nobody", ":stanzad 733 al :End of MONITOR list"});
    CHECK(f.feed("MONITOR S\r\n") == std::vector<std::string>{":stanzad 730 al :carol!carol@example.org", ":stanzad 731 al :bob,nobody"});
    CHECK(f.feed("MONITOR - bob,nobody\r\n").empty());
    f.session.event(model::Event{5, "home", "", model::Presence{"bob@example.org/phone", true, "", "", 0}});
    CHECK(lines_of(f.session.take_output()) == std::vector<std::string>{":stanzad MODE &stanzad +v bob"});
    CHECK(f.feed("MONITOR C\r\n").empty());
    CHECK(f.feed("MONITOR L\r\n") == std::vector<std::string>{":stanzad 733 al :End of MONITOR list"});
    CHECK(any_line(f.feed("MONITOR\r\n"), " 461 al MONITOR "));
    CHECK(any_line(f.feed("MONITOR +\r\n"), " 461 al MONITOR "));
    CHECK(f.feed("SETNAME :New Name\r\n").at(0).starts_with(":stanzad FAIL SETNAME CANNOT_CHANGE_REALNAME :"));
}

TEST_CASE("irc: the MONITOR list is bounded: ERR_MONLISTFULL names what was refused") {
    Fixture f;
    f.register_with("");
    // 99 long nicks, 11 to a line (each line under 512 bytes).
    for (std::size_t i = 0; i < Session::max_monitor - 1; i += 11) {
        std::string some;
        for (std::size_t j = i; j < i + 11; ++j) some += (some.empty() ? "" : ",") + std::string("a_monitored_nick_") + std::to_string(j);
        auto out = f.feed("MONITOR + " + some + "\r\n");
        REQUIRE(out.size() == 1);
        CHECK(out[0].starts_with(":stanzad 731 al :a_monitored_nick_"));
    }
    auto out = f.feed("MONITOR + last,over1,over2\r\n");
    CHECK(out == std::vector<std::string>{":stanzad 734 al 100 over1,over2 :Monitor list is full.", ":stanzad 731 al :last"});
    out = f.feed("MONITOR L\r\n");
    CHECK(out.size() >= 3);  // 732 lines cut to fit, then 733
    for (const auto& l : out) CHECK(l.size() <= 510);
    CHECK(out.back() == ":stanzad 733 al :End of MONITOR list");
}

TEST_CASE("irc: before the password nothing tells a contact's nick; after it, 433") {
    Fixture f;
    f.nicks.nick_for("home", "bob@example.org");
    CHECK(f.feed("NICK bob\r\nUSER al 0 * :Al\r\n").size() == 2);  // 464 and ERROR only
    CHECK(f.session.closing());

    Fixture g;
    g.nicks.nick_for("home", "bob@example.org");
    CHECK(g.feed("NICK bob\r\n").empty());
    CHECK(any_line(g.feed("NICK stanzad\r\n"), " 433 bob stanzad :"));
    auto out = g.feed("PASS pw\r\nNICK bob\r\nUSER al 0 * :Al\r\n");
    CHECK(out == std::vector<std::string>{":stanzad 433 * bob :Nickname is already in use (by a contact; rename it with: rename NICK NEWNICK)"});
    CHECK_FALSE(g.session.registered());
    CHECK(any_line(g.feed("NICK al\r\n"), " 001 al "));
}

TEST_CASE("irc: failed SASL logins are counted; the third closes the connection") {
    Fixture f;
    f.feed("CAP LS 302\r\nNICK al\r\nUSER al 0 * :Al\r\nCAP REQ :sasl\r\n");
    for (int i = 1; i <= Session::max_auth_failures; ++i) {
        f.feed("AUTHENTICATE PLAIN\r\n");
        auto out = f.feed("AUTHENTICATE AGFsAG5vcGU=\r\n");  // "\0al\0nope"
        CHECK(any_line(out, " 904 "));
        CHECK(f.session.auth_failures() == i);
        CHECK(f.session.closing() == (i == Session::max_auth_failures));
    }
    CHECK(f.daemon.commands.empty());
}

TEST_CASE("irc: [irc] max_clients: no room, no registration") {
    NickMap nicks;
    SessionOptions options{"pw", "9.9", "stanzad", nullptr, [] { return false; }};
    Session s(options, nicks, "t");
    s.receive("PASS pw\r\nNICK al\r\nUSER al 0 * :Al\r\n");
    auto out = lines_of(s.take_output());
    CHECK(out == std::vector<std::string>{"ERROR :Closing link: too many IRC clients (see [irc] max_clients in the config)"});
    CHECK(s.closing());
    CHECK_FALSE(s.registered());
}

TEST_CASE("irc: remote text never looks like the server, and is cut at 512 bytes") {
    Fixture f("home");
    model::RoomInfo room{"dev@muc.example.org", "joined", "alice", "", "", false,
                         {{"alice", "", "participant", "member", "", ""}, {"home", "", "moderator", "owner", "", ""},
                          {"stanzad", "", "moderator", "owner", "", ""}}};
    f.daemon.rooms.push_back(room);
    auto out = f.register_with("");
    CHECK(any_line(out, " 353 al = #dev@muc.example.org :+al ~home_ ~stanzad_"));
    std::string long_text;
    for (int i = 0; i < 400; ++i) long_text += "\xc3\xa9";  // 800 bytes of "é"
    f.session.event(model::Event{3, "home", "", model::Occupant{"dev@muc.example.org", {"dave", "", "participant", "none", "", ""}, "kick", "", "stanzad", long_text}});
    f.session.event(model::Event{4, "home", "", model::Subject{"dev@muc.example.org", long_text, "home"}});
    f.session.event(model::Event{5, "home", "", model::Invite{"dev@muc.example.org", "home@evil.example", "", "", true}});
    f.session.event(model::Event{6, "home", "", model::RoomState{"dev@muc.example.org", "kicked", "alice", long_text, "home"}});
    out = lines_of(f.session.take_output());
    REQUIRE(out.size() >= 4);
    CHECK(out[0].starts_with(":stanzad_ KICK #dev@muc.example.org dave :kick: \xc3\xa9"));
    CHECK(out[1].starts_with(":home_ TOPIC #dev@muc.example.org :\xc3\xa9"));
    CHECK(out[2].starts_with(":home_!home@evil.example INVITE al "));
    CHECK(any_line(out, ":home_ KICK #dev@muc.example.org al :kicked: \xc3\xa9"));
    for (const auto& l : out) {
        CHECK(l.size() <= 510);
        CHECK(valid_utf8(l));
    }
    out = f.feed("TOPIC #dev@muc.example.org\r\n");  // the channel is gone: kicked
    CHECK(any_line(out, " 442 "));
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
                                                sends[0].client_id, false, true, "", "", false, "", "", ""}});
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
                                                send.client_id, false, true, "", "", false, "", "", ""}});
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

TEST_CASE("irc: a replay is bounded in bytes: the newest are shown, the rest announced, all acked") {
    // 200 messages of 60 KiB are 12 MiB of bodies: written at once, they would go over the
    // listener's 16 MiB backlog with the IRC framing and get the client dropped, for good.
    Fixture f;
    f.daemon.cursor = 1;
    f.register_with("batch server-time message-tags", true);
    const std::string big(60 * 1024, 'x');
    constexpr int n = 200;
    for (int i = 0; i < n; ++i)
        f.session.replay_event(f.message(2 + i, "bob@example.org/phone", "start-" + std::to_string(i) + " " + big));
    f.session.replay_end();
    std::string written = f.session.take_output();
    CHECK(written.size() < 2 * Session::max_replay_bytes);
    auto out = lines_of(written);
    // The newest is there, the oldest is not, and the control channel says how many were left.
    CHECK(any_line(out, "start-" + std::to_string(n - 1) + " "));
    CHECK_FALSE(any_line(out, "start-0 "));
    std::size_t kept = Session::max_replay_bytes / (big.size() + 256);
    CHECK(any_line(out, std::to_string(n - kept) + " older message(s) not replayed"));
    // The cursor still moves past all of them on the PONG: nothing waits to be replayed again.
    CHECK(any_line(out, "PING replay-" + std::to_string(1 + n)));
    f.feed("PONG stanzad :replay-" + std::to_string(1 + n) + "\r\n");
    REQUIRE(f.daemon.sent<model::Ack>().size() == 1);
    CHECK(f.daemon.sent<model::Ack>()[0].seq == 1 + n);
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

TEST_CASE("irc: the control channel's help is its command table, and every entry runs") {
    Fixture f;
    f.register_with("");
    auto out = f.feed("PRIVMSG stanzad :help\r\n");
    const std::string prefix = ":stanzad!stanzad@stanzad PRIVMSG al :";
    REQUIRE(out.size() > 1);
    CHECK(out[0] == prefix + "commands (in &stanzad, or /msg stanzad):");
    // One line per command: two spaces, the name and its arguments, then what it does.
    std::vector<std::string> names;
    for (std::size_t i = 1; i < out.size(); ++i) {
        REQUIRE(out[i].starts_with(prefix + "  "));
        std::string entry = out[i].substr(prefix.size() + 2);
        std::string name = entry.substr(0, entry.find(' '));
        CHECK(entry.size() > name.size() + 3);  // a line of help follows the usage
        names.push_back(name);
    }
    CHECK(names == std::vector<std::string>{"help", "account", "roster", "add", "remove", "rename", "allow", "deny",
                                            "join", "history", "status", "encryption", "omemo"});
    CHECK(any_line(out, "  add [ACCOUNT] JID [NICK]    add a contact and ask for its presence"));
    // Every listed command is known (any case), and one that needs arguments says its usage
    // as help shows it.
    for (const auto& name : names) {
        std::string shouted = name;
        for (char& c : shouted) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        auto answer = f.feed("PRIVMSG &stanzad :" + shouted + "\r\n");
        CHECK_FALSE(any_line(answer, "unknown command"));
    }
    CHECK(any_line(f.feed("PRIVMSG &stanzad :rename bob\r\n"), "PRIVMSG &stanzad :usage: rename NICK NEWNICK"));
    CHECK(any_line(f.feed("PRIVMSG &stanzad :deny\r\n"), "PRIVMSG &stanzad :usage: deny NICK|JID"));
    CHECK(any_line(f.feed("PRIVMSG &stanzad :account frob\r\n"), "usage: account list | account on NAME | account off NAME"));
    CHECK(f.feed("PRIVMSG &stanzad :   \r\n").empty());  // nothing said: no answer
}

TEST_CASE("irc: commands by table: parameters counted, unknown ones named, the rest answered") {
    Fixture f;
    f.register_with("");
    CHECK(f.feed("KICK #x\r\n") == std::vector<std::string>{":stanzad 461 al KICK :Not enough parameters"});
    CHECK(f.feed("JOIN\r\n") == std::vector<std::string>{":stanzad 461 al JOIN :Not enough parameters"});
    CHECK(f.feed("FROB x\r\n") == std::vector<std::string>{":stanzad 421 al FROB :Unknown command"});
    CHECK(f.feed("NAMES\r\n") == std::vector<std::string>{":stanzad 366 al * :End of /NAMES list"});
    CHECK(f.feed("USER a 0 * :b\r\n") == std::vector<std::string>{":stanzad 462 al :You may not reregister"});
    CHECK(f.feed("MOTD\r\n") == std::vector<std::string>{":stanzad 422 al :No MOTD"});
    CHECK(f.feed("VERSION\r\n") == std::vector<std::string>{":stanzad 351 al stanzad-9.9 stanzad :XMPP to IRC"});
    CHECK(f.feed("ISON bob nobody\r\n") == std::vector<std::string>{":stanzad 303 al :bob"});
    CHECK(f.feed("USERHOST bob\r\n") == std::vector<std::string>{":stanzad 302 al :bob=+bob@example.org"});
    CHECK(f.feed("NICK al2\r\n") == std::vector<std::string>{":al!al@stanzad NICK al2"});
    // Before registration: only registration verbs.
    Fixture g;
    CHECK(g.feed("JOIN #x\r\n") == std::vector<std::string>{":stanzad 451 * JOIN :You have not registered"});
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

TEST_CASE("irc: an encrypted message that did not decrypt says so instead of an empty line") {
    Fixture f;
    f.register_with("");
    auto e = f.message(20, "bob@example.org/phone", "");
    auto& m = std::get<model::Message>(e.body);
    m.encryption = "omemo";
    m.error = "not encrypted for this device";
    f.session.event(e);
    auto out = lines_of(f.session.take_output());
    REQUIRE_FALSE(out.empty());
    CHECK(out[0].find("PRIVMSG") != std::string::npos);
    CHECK(out[0].ends_with(":[OMEMO message not decrypted: not encrypted for this device]"));
}

namespace {
model::Event encrypted(Fixture& f, model::Seq seq, std::string body, std::string trust = "blind") {
    auto e = f.message(seq, "bob@example.org/phone", std::move(body));
    auto& m = std::get<model::Message>(e.body);
    m.encryption = "omemo";
    m.trust = std::move(trust);
    return e;
}
}  // namespace

TEST_CASE("irc: an encrypted message has the prefix for every client and the tags for message-tags ones") {
    Fixture f;
    f.register_with("message-tags");
    f.session.event(encrypted(f, 30, "hello"));
    auto out = lines_of(f.session.take_output());
    REQUIRE_FALSE(out.empty());
    CHECK(out[0] == "@msgid=id30;+stanzad/encryption=omemo :bob!bob@example.org PRIVMSG al :[OMEMO] hello");
    // A device that is not used as usual is named, in the tag and in the text.
    f.session.event(encrypted(f, 31, "new key", "changed"));
    out = lines_of(f.session.take_output());
    CHECK(any_line(out, "@msgid=id31;+stanzad/encryption=omemo;+stanzad/trust=changed :bob!bob@example.org PRIVMSG al "
                        ":[OMEMO] [device changed] new key"));
    // Trusted is as usual; /me keeps the prefix inside the action; a clear message has neither.
    f.session.event(encrypted(f, 32, "/me waves", "trusted"));
    f.session.event(f.message(33, "bob@example.org/phone", "in clear"));
    out = lines_of(f.session.take_output());
    CHECK(any_line(out, "@msgid=id32;+stanzad/encryption=omemo :bob!bob@example.org PRIVMSG al :\x01" "ACTION [OMEMO] waves\x01"));
    CHECK(any_line(out, "@msgid=id33 :bob!bob@example.org PRIVMSG al :in clear"));
    // One that did not decrypt carries the tag; its text says why, without the prefix.
    auto failed = encrypted(f, 34, "", "");
    std::get<model::Message>(failed.body).error = "no session";
    f.session.event(failed);
    out = lines_of(f.session.take_output());
    CHECK(any_line(out, "+stanzad/encryption=omemo :bob!bob@example.org PRIVMSG al :[OMEMO message not decrypted: no session]"));
    // Every piece of a long message is marked, and stays within the line limit.
    f.session.event(encrypted(f, 35, std::string(900, 'x')));
    out = lines_of(f.session.take_output());
    int pieces = 0;
    for (const auto& l : out) {
        if (l.find(" PRIVMSG al :") == std::string::npos) continue;
        ++pieces;
        CHECK(l.find("PRIVMSG al :[OMEMO] x") != std::string::npos);
        CHECK(l.find(":bob!") + 512 >= l.size());
    }
    CHECK(pieces == 3);
}

TEST_CASE("irc: without message-tags only the prefix marks it; [irc] encrypted_prefix = \"\" turns that off") {
    Fixture f;
    f.register_with("");
    f.session.event(encrypted(f, 40, "hi", "undecided"));
    auto out = lines_of(f.session.take_output());
    REQUIRE_FALSE(out.empty());
    CHECK(out[0] == ":bob!bob@example.org PRIVMSG al :[OMEMO] [device undecided] hi");
    Fixture lock("stanzad", "\xf0\x9f\x94\x92 ");
    lock.register_with("");
    lock.session.event(encrypted(lock, 41, "hi"));
    CHECK(lines_of(lock.session.take_output()).at(0) == ":bob!bob@example.org PRIVMSG al :\xf0\x9f\x94\x92 hi");
    Fixture none("stanzad", "");
    none.register_with("message-tags");
    none.session.event(encrypted(none, 42, "hi"));
    CHECK(lines_of(none.session.take_output()).at(0) ==
          "@msgid=id42;+stanzad/encryption=omemo :bob!bob@example.org PRIVMSG al :hi");
}

TEST_CASE("irc: &stanzad encryption shows and sets OMEMO with a contact, by nick or JID") {
    Fixture f;
    f.register_with("");
    auto out = f.feed("PRIVMSG &stanzad :encryption bob omemo\r\n");
    auto sets = f.daemon.sent<model::SetEncryption>();
    REQUIRE(sets.size() == 1);
    CHECK(sets[0].account == "home");
    CHECK(sets[0].jid == "bob@example.org");
    CHECK(sets[0].mode == "omemo");
    CHECK(any_line(out, "PRIVMSG &stanzad :encryption with bob@example.org: omemo"));
    out = f.feed("PRIVMSG &stanzad :encryption home carol@example.org/phone\r\n");
    sets = f.daemon.sent<model::SetEncryption>();
    REQUIRE(sets.size() == 2);
    CHECK(sets[1].jid == "carol@example.org");
    CHECK(sets[1].mode.empty());
    CHECK(any_line(out, "encryption with carol@example.org: default (the account's: auto)"));
    CHECK(any_line(f.feed("PRIVMSG &stanzad :encryption bob always\r\n"), "'always' is not omemo, off or default"));
    CHECK(any_line(f.feed("PRIVMSG &stanzad :encryption @@ off\r\n"), "'@@' is neither a nick nor a JID"));
    CHECK(any_line(f.feed("PRIVMSG &stanzad :encryption\r\n"), "usage: encryption [ACCOUNT] NICK|JID [omemo|off|default]"));
    CHECK(f.daemon.sent<model::SetEncryption>().size() == 2);
}

TEST_CASE("irc: &stanzad omemo lists devices with fingerprints, trusts and distrusts one") {
    Fixture f;
    f.daemon.devices = {{"alice@example.org", 1378143812, "2f6a912d ff38fa41", "own", true},
                        {"bob@example.org", 986534208, "05c3b1e2 7a7a0011", "blind", true},
                        {"bob@example.org", 77, "aabbccdd 00112233", "distrusted", false}};
    f.register_with("");
    auto out = f.feed("PRIVMSG &stanzad :omemo devices bob\r\n");
    REQUIRE(f.daemon.sent<model::OmemoDevices>().size() == 1);
    CHECK(f.daemon.sent<model::OmemoDevices>()[0].jid == "bob@example.org");
    CHECK(any_line(out, "PRIVMSG &stanzad :alice@example.org  1378143812  own  2f6a912d ff38fa41"));
    CHECK(any_line(out, "PRIVMSG &stanzad :bob@example.org  986534208  blind  05c3b1e2 7a7a0011"));
    CHECK(any_line(out, "PRIVMSG &stanzad :bob@example.org  77  distrusted (not listed)  aabbccdd 00112233"));
    CHECK(any_line(out, "PRIVMSG &stanzad :3 device(s)"));
    f.feed("PRIVMSG stanzad :omemo devices\r\n");
    CHECK(f.daemon.sent<model::OmemoDevices>().at(1).jid.empty());
    out = f.feed("PRIVMSG &stanzad :omemo trust bob 986534208\r\nPRIVMSG &stanzad :omemo distrust bob@example.org 77\r\n");
    auto trusts = f.daemon.sent<model::OmemoTrust>();
    REQUIRE(trusts.size() == 2);
    CHECK(trusts[0].jid == "bob@example.org");
    CHECK(trusts[0].device == 986534208u);
    CHECK(trusts[0].trusted);
    CHECK(trusts[1].device == 77u);
    CHECK_FALSE(trusts[1].trusted);
    CHECK(any_line(out, "PRIVMSG &stanzad :omemo trust bob@example.org 986534208"));
    CHECK(any_line(out, "PRIVMSG &stanzad :omemo distrust bob@example.org 77"));
    for (const char* bad : {"x1", "0", "2147483648", "99999999999"})
        CHECK(any_line(f.feed(std::string("PRIVMSG &stanzad :omemo trust bob ") + bad + "\r\n"), "is not a device id"));
    CHECK(any_line(f.feed("PRIVMSG &stanzad :omemo trust bob\r\n"), "usage: omemo devices"));
    CHECK(any_line(f.feed("PRIVMSG &stanzad :omemo frob\r\n"), "usage: omemo devices"));
    CHECK(f.daemon.sent<model::OmemoTrust>().size() == 2);
}
