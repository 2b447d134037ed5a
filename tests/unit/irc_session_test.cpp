// The IRC session fed lines and events, with a fake daemon that answers its commands
// (irc_session_fixture.hpp). Replay and CHATHISTORY are in irc_session_history_test.cpp,
// encrypted messages and OMEMO in irc_session_omemo_test.cpp.
#include <catch2/catch.hpp>

#include <cctype>

#include "irc_session_fixture.hpp"

using namespace irc;
using namespace irc_test;

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
    f.session.event(model::Event{3, "home", "", model::Occupant{"dev@muc.example.org", {"dave", "", "participant", "none", "", ""}, model::OccupantChange::Kick, "", "stanzad", long_text}});
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
    CHECK_FALSE(f.daemon.sent<model::Ack>()[0].durable);  // a PONG: no commit of its own (issue 15)
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
    f.session.event(model::Event{4, "home", "", model::Occupant{"dev@muc.example.org", {"dave", "", "participant", "none", "", ""}, model::OccupantChange::Join, "", "", ""}});
    f.session.event(model::Event{5, "home", "", model::Subject{"dev@muc.example.org", "Friday", "carol"}});
    f.session.event(model::Event{6, "home", "", model::Occupant{"dev@muc.example.org", {"dave", "", "participant", "none", "", ""}, model::OccupantChange::Kick, "", "carol", "spam"}});
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
