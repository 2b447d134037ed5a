#include <catch2/catch.hpp>

#include "frontends/model/codec.hpp"
#include "frontends/jsonl/session.hpp"

using Json = nlohmann::ordered_json;

namespace {

std::vector<Json> lines(const std::string& out) {
    std::vector<Json> v;
    std::size_t start = 0;
    while (start < out.size()) {
        auto nl = out.find('\n', start);
        REQUIRE(nl != std::string::npos);
        v.push_back(Json::parse(out.substr(start, nl - start)));
        start = nl + 1;
    }
    return v;
}

// Feeds one line and returns the request it produced, if any.
std::optional<jsonl::Request> request(jsonl::Session& s, const std::string& line) {
    s.receive(line + "\n");
    return s.next_request();
}

jsonl::Session attached_session() {
    jsonl::Session s("stanzad 9.9");
    auto r = request(s, R"({"op":"hello","id":1,"client":"emacs"})");
    REQUIRE(r);
    model::Reply reply;
    reply.cursor = 3;
    reply.last_seq = 7;
    reply.accounts.push_back({"home", "alice@example.org", "online", "", "alice@example.org/stanzad", "SCRAM-SHA-1", "localhost:5222 (STARTTLS) at 127.0.0.1:5222"});
    s.reply(*r, reply);
    s.take_output();
    return s;
}

model::Event message_event() {
    model::Message m;
    m.from = "bob@example.org/phone";
    m.to = "alice@example.org/stanzad";
    m.body = "hello \"there\"\n\u263A";
    m.msg_id = "m1";
    return model::Event{42, "home", "2026-11-25T12:00:00.000Z", m};
}

}  // namespace

TEST_CASE("jsonl: every event encodes as documented and decodes back") {
    auto e = message_event();
    CHECK(model::codec::encode(e) ==
          R"({"event":"message","seq":42,"account":"home","stamp":"2026-11-25T12:00:00.000Z","from":"bob@example.org/phone",)"
          R"("to":"alice@example.org/stanzad","type":"chat","body":"hello \"there\"\n☺","msg_id":"m1","delayed":false,"outgoing":false,"carbon":"","replaces":"","history":false})");
    std::vector<model::EventBody> bodies = {
        e.body,
        model::MessageState{"m1", model::Delivery::Failed, "service-unavailable"},
        model::Presence{"bob@example.org/phone", false, "away", "lunch"},
        model::Roster{{{"bob@example.org", "Bob", "both", {"Friends", "Work"}, ""}}, true},
        model::Subscription{"carol@example.org", "subscribe"},
        model::AccountState{"online", "", "alice@example.org/stanzad"},
        model::ChatState{"bob@example.org/phone", "alice@example.org", "composing"},
        model::RoomState{"dev@conference.example.org", "kicked", "alice", "spam", "bob"},
        model::Occupant{"dev@conference.example.org", {"bob", "", "moderator", "owner", "away", "x"}, model::OccupantChange::Nick, "bobby", "", ""},
        model::Subject{"dev@conference.example.org", "Release", "bob"},
        model::Invite{"dev@conference.example.org", "bob@example.org", "come", "pw", true},
        model::Blocklist{{"spam@example.net"}, {}},
        model::ReadMarker{"bob@example.org", "2026-11-25T12:00:00.000Z"},
    };
    static_assert(std::variant_size_v<model::EventBody> == 13, "a new event needs a line above");
    for (const auto& b : bodies) {
        model::Event in{7, "home", "2026-11-25T12:00:00.000Z", b};
        auto text = model::codec::encode(in);
        INFO(text);
        CHECK(Json::parse(text)["event"] == model::event_name(b));
        auto out = model::codec::decode(text);
        REQUIRE(out);
        CHECK(model::codec::encode(out.value()) == text);
    }
    CHECK_FALSE(model::codec::decode("{\"event\":\"nope\",\"seq\":1,\"account\":\"a\",\"stamp\":\"\"}"));
    CHECK_FALSE(model::codec::decode("{\"event\":\"message\",\"seq\":\"1\"}"));
    CHECK_FALSE(model::codec::decode("[1]"));
    CHECK_FALSE(model::codec::decode("{"));
    // A message stored before the carbon/replaces/history fields existed still reads.
    auto old = model::codec::decode(R"({"event":"message","seq":1,"account":"a","stamp":"","from":"b@c","to":"a@c",)"
                             R"("type":"chat","body":"x","msg_id":"m","delayed":false,"outgoing":false})");
    REQUIRE(old);
    CHECK(std::get<model::Message>(old.value().body).carbon.empty());
}

TEST_CASE("jsonl: encode writes the JSON tree's bytes, for every kind of event and every character") {
    // The hot kinds are written without a tree (codec.cpp, Writer); the tree is the reference.
    std::string ascii;
    for (int c = 0; c < 0x80; ++c) ascii += static_cast<char>(c);
    const std::vector<std::string> texts = {
        "", "plain", ascii, "\"\\/\b\f\n\r\t", "é ☺ 😀 \xF4\x8F\xBF\xBF",
        // Not UTF-8: the tree replaces it with U+FFFD, and so must encode.
        "cut \xC3", "surrogate \xED\xA0\x80", "\xFF", "overlong \xC0\xAF", "above \xF4\x90\x80\x80 end",
    };
    int compared = 0;
    for (const auto& t : texts) {
        model::Message m{t, t, t, t, t, true, false, t, t, true, "", "", ""};
        model::Message encrypted = m;
        encrypted.encryption = "omemo";
        encrypted.error = t;
        encrypted.trust = t;
        const std::vector<model::EventBody> bodies = {
            m,
            encrypted,
            model::MessageState{t, model::Delivery::Delivered, t},
            model::Presence{t, false, t, t, -5},
            model::ChatState{t, t, t},
            model::Roster{{{t, t, t, {t, t}, t}}, false},
            model::Subscription{t, t},
            model::AccountState{t, t, t},
            model::RoomState{t, t, t, t, t},
            model::Occupant{t, {t, t, t, t, t, t}, model::OccupantChange::Ban, t, t, t},
            model::Subject{t, t, t},
            model::Invite{t, t, t, t, false},
            model::Blocklist{{t}, {t, t}},
            model::ReadMarker{t, t},
        };
        for (const auto& b : bodies) {
            model::Event e{9007199254740993, t, t, b};
            INFO(model::event_name(b) << " with " << Json(t).dump(-1, ' ', true, Json::error_handler_t::replace));
            CHECK(model::codec::encode(e) == model::codec::to_json(e).dump(-1, ' ', false, Json::error_handler_t::replace));
            ++compared;
        }
    }
    CHECK(compared == 140);
}

TEST_CASE("jsonl: encode finds each character that needs care at every place in a run of plain ones") {
    // Writer::quoted copies runs of plain characters at once: every other character, at
    // every place in a run of 24, must come out as the tree writes it.
    const std::vector<std::string> specials = {"\"", "\\", std::string(1, '\0'), "\x1f", "\n", "\x7f", "\x20",
                                               "!", "\x7e", "\x5b", "\x5d", "\xC3\xA9", "\xE2\x98\xBA", "\xFF",
                                               "\xC3"};
    int compared = 0;
    for (const auto& special : specials) {
        for (std::size_t at = 0; at <= 24; ++at) {
            std::string t(24, 'a');
            t.insert(at, special);
            model::Event e{7, "home", "2026-12-07T00:00:00.000Z", model::MessageState{t, model::Delivery::Sent, t}};
            INFO("at " << at << ": " << Json(t).dump(-1, ' ', true, Json::error_handler_t::replace));
            CHECK(model::codec::encode(e) == model::codec::to_json(e).dump(-1, ' ', false, Json::error_handler_t::replace));
            ++compared;
        }
    }
    CHECK(compared == 15 * 25);
}

TEST_CASE("jsonl: an occupant's change is one of six names, and a row with another does not decode") {
    for (auto change : {model::OccupantChange::Join, model::OccupantChange::Leave, model::OccupantChange::Update,
                        model::OccupantChange::Nick, model::OccupantChange::Kick, model::OccupantChange::Ban}) {
        model::Event in{1, "home", "", model::Occupant{"dev@conference.example.org", {"bob", "", "", "", "", ""}, change, "", "", ""}};
        auto text = model::codec::encode(in);
        CHECK(Json::parse(text)["change"] == std::string(model::to_string(change)));
        auto out = model::codec::decode(text);
        REQUIRE(out);
        CHECK(std::get<model::Occupant>(out.value().body).change == change);
    }
    auto bad = model::codec::decode(R"({"event":"occupant","seq":1,"account":"a","stamp":"","room":"r@c","nick":"n",)"
                                    R"("jid":"","role":"","affiliation":"","show":"","status":"","change":"teleport",)"
                                    R"("new_nick":"","actor":"","reason":""})");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("teleport") != std::string::npos);
}

TEST_CASE("jsonl: encrypted messages carry encryption, error and trust; others do not") {
    auto e = message_event();
    CHECK(model::codec::encode(e).find("encryption") == std::string::npos);
    auto& m = std::get<model::Message>(e.body);
    m.encryption = "omemo";
    m.trust = "blind";
    auto text = model::codec::encode(e);
    CHECK(text.ends_with(R"("history":false,"encryption":"omemo","trust":"blind"})"));
    m.body.clear();
    m.error = "not encrypted for this device";
    m.trust.clear();
    text = model::codec::encode(e);
    CHECK(text.ends_with(R"("body":"","msg_id":"m1","delayed":false,"outgoing":false,"carbon":"","replaces":"",)"
                         R"("history":false,"encryption":"omemo","error":"not encrypted for this device"})"));
    auto back = model::codec::decode(text);
    REQUIRE(back);
    const auto& b = std::get<model::Message>(back.value().body);
    CHECK(b.encryption == "omemo");
    CHECK(b.error == "not encrypted for this device");
    CHECK(b.trust.empty());
    CHECK(model::codec::encode(back.value()) == text);
}

TEST_CASE("jsonl: invalid UTF-8 from the network is replaced, not a crash") {
    auto e = message_event();
    std::get<model::Message>(e.body).body = "bad \xC3\x28 byte";
    auto text = model::codec::encode(e);
    CHECK(Json::parse(text)["body"] == "bad \xEF\xBF\xBD( byte");
}

TEST_CASE("jsonl: hello is required first, and answered with version, cursor and accounts") {
    jsonl::Session s("stanzad 9.9");
    CHECK_FALSE(request(s, R"({"op":"accounts","id":"a"})"));
    auto out = lines(s.take_output());
    REQUIRE(out.size() == 1);
    CHECK(out[0] == Json::parse(R"({"id":"a","ok":false,"error":{"code":"hello-required","message":"send hello first"}})"));

    s.event(message_event());
    CHECK(s.take_output().empty());  // nothing before hello

    auto r = request(s, R"({"op":"hello","id":1,"client":"emacs","since":5,"replay":false})");
    REQUIRE(r);
    auto& h = std::get<model::Hello>(r->command);
    CHECK(h.client == "emacs");
    CHECK(h.since == 5);
    CHECK_FALSE(h.replay);
    model::Reply reply;
    reply.cursor = 3;
    reply.last_seq = 7;
    reply.accounts.push_back({"home", "alice@example.org", "online", "", "alice@example.org/stanzad", "SCRAM-SHA-1", "localhost:5222 (STARTTLS) at 127.0.0.1:5222"});
    s.reply(*r, reply);
    CHECK(s.attached());
    CHECK(s.take_output() ==
          R"({"id":1,"ok":true,"version":1,"daemon":"stanzad 9.9","client":"emacs","cursor":3,"last_seq":7,)"
          R"("accounts":[{"account":"home","jid":"alice@example.org","state":"online","bound_jid":"alice@example.org/stanzad","reason":"","auth":"SCRAM-SHA-1","connection":"localhost:5222 (STARTTLS) at 127.0.0.1:5222","priority":0}]})"
          "\n");
    s.event(message_event());
    CHECK(lines(s.take_output())[0]["seq"] == 42);

    CHECK_FALSE(request(s, R"({"op":"hello","id":2,"client":"again"})"));
    CHECK(lines(s.take_output())[0]["error"]["code"] == "bad-request");
}

TEST_CASE("jsonl: each bad input gets its own error and the session goes on") {
    auto s = attached_session();
    struct Case {
        std::string line, code, needle;
    };
    const Case cases[] = {
        {"not json", "bad-json", "not valid JSON"},
        {"[1,2]", "bad-json", "not a JSON object"},
        {R"({"id":1})", "unknown-op", "missing field 'op'"},
        {R"({"id":1,"op":7})", "unknown-op", "must be a string"},
        {R"({"id":1,"op":"fly"})", "unknown-op", "unknown op 'fly'"},
        {R"({"id":1,"op":"send","account":"home","to":"bob@example.org"})", "bad-request", "missing field 'body'"},
        {R"({"id":1,"op":"send","account":"home","to":"bob@example.org","body":5})", "bad-request",
         "field 'body' must be a string, not an integer"},
        {R"({"id":1,"op":"send","account":"home","to":"@example.org","body":"x"})", "bad-jid", "localpart"},
        {R"({"id":1,"op":"send","account":"home","to":"b@example.org","body":"x","type":"shout"})", "bad-request",
         "field 'type' must be one of"},
        {R"({"id":1,"op":"send","account":"home","to":"b@example.org","body":"x","client_id":"a b"})", "bad-request",
         "client_id"},
        {R"({"id":1,"op":"send","to":"b@example.org","body":"x"})", "bad-request", "missing field 'account'"},
        {R"({"id":1,"op":"ack","seq":-1})", "bad-request", "integer >= 0"},
        {R"({"id":1,"op":"ack","seq":"3"})", "bad-request", "integer >= 0"},
        {R"({"id":1,"op":"subscribe","account":"home","jid":"carol@example.org/res"})", "bad-jid", "bare JID"},
        {R"({"id":1,"op":"presence","account":"home","show":"sleeping"})", "bad-request", "'show'"},
        {R"({"id":1,"op":"presence","account":"home","priority":128})", "bad-request", "-128 to 127"},
        {R"({"id":1,"op":"presence","account":"home","priority":-129})", "bad-request", "-128 to 127"},
        {R"({"id":1,"op":"presence","account":"home","priority":"5"})", "bad-request", "'priority'"},
        {R"({"id":1,"op":"presence","account":"home","priority":1.5})", "bad-request", "'priority'"},
        // Unsigned in JSON, -1 if it wrapped to a signed 64-bit integer.
        {R"({"id":1,"op":"presence","account":"home","priority":18446744073709551615})", "bad-request",
         "-128 to 127"},
        {R"({"id":1,"op":"history","account":"home","with":"b@example.org","max":18446744073709551615})",
         "bad-request", "1 to 200"},
        {R"({"id":1,"op":"join","account":"home","room":"r@c.example.org/nick"})", "bad-jid", "bare JID"},
        {R"({"id":1,"op":"join","account":"home","room":"r@c.example.org","nick":""})", "bad-request", "nick"},
        {R"({"id":1,"op":"history","account":"home"})", "bad-request", "missing field 'with'"},
        {R"({"id":1,"op":"history","account":"home","with":"b@example.org","max":0})", "bad-request", "1 to 200"},
        {R"({"id":1,"op":"history","account":"home","with":"b@example.org","max":"5"})", "bad-request", "1 to 200"},
        {R"({"id":1,"op":"history","account":"home","with":"b@example.org","before":"a","after":"b"})", "bad-request",
         "not both"},
        {R"({"id":1,"op":"chat-state","account":"home","to":"b@example.org","state":"dancing"})", "bad-request",
         "'state'"},
        {R"({"id":1,"op":"block","account":"home","jids":[]})", "bad-request", "must not be empty"},
        {R"({"id":1,"op":"block","account":"home","jids":["@x"]})", "bad-jid", "'@x'"},
        {R"({"id":1,"op":"roster-set","account":"home","jid":"c@example.org","groups":[1]})", "bad-request",
         "only strings"},
        {R"({"id":1,"op":"kick","account":"home","room":"r@c.example.org"})", "bad-request", "missing field 'nick'"},
        {R"({"id":1,"op":"accounts","x":)" + std::string(100000, '[') + std::string(100000, ']') + "}", "bad-json",
         "nested deeper than 32"},
    };
    for (const auto& c : cases) {
        INFO(c.line);
        CHECK_FALSE(request(s, c.line));
        auto out = lines(s.take_output());
        REQUIRE(out.size() == 1);
        CHECK(out[0]["ok"] == false);
        CHECK(out[0]["error"]["code"] == c.code);
        CHECK(out[0]["error"]["message"].get<std::string>().find(c.needle) != std::string::npos);
    }
    // Still working after all of that.
    auto r = request(s, R"({"op":"send","id":9,"account":"home","to":"Bob@Example.org","body":"hi","client_id":"c-1"})");
    REQUIRE(r);
    auto& send = std::get<model::Send>(r->command);
    CHECK(send.to == "bob@example.org");
    CHECK(send.type.empty());  // the hub decides: groupchat to a room we are in, else chat
    CHECK(send.client_id == "c-1");
    model::Reply reply;
    reply.msg_id = "c-1";
    s.reply(*r, reply);
    CHECK(s.take_output() == "{\"id\":9,\"ok\":true,\"msg_id\":\"c-1\"}\n");

    // RFC 6121 §4.7.2.3: the priority's whole range; absent means "keep the current one".
    for (int priority : {-128, 0, 127}) {
        auto p = request(s, R"({"op":"presence","id":10,"account":"home","priority":)" + std::to_string(priority) + "}");
        REQUIRE(p);
        CHECK(std::get<model::SetPresence>(p->command).priority == priority);
    }
    auto keep = request(s, R"({"op":"presence","id":11,"account":"home","show":"away"})");
    REQUIRE(keep);
    CHECK_FALSE(std::get<model::SetPresence>(keep->command).priority.has_value());
}

TEST_CASE("jsonl: a line over 1 MiB is refused and skipped, whatever the split") {
    auto s = attached_session();
    std::string big = R"({"op":"send","id":1,"account":"home","to":"b@example.org","body":")" +
                      std::string(jsonl::max_line_bytes, 'x') + "\"}\n";
    for (std::size_t off = 0; off < big.size(); off += 65536) s.receive(std::string_view(big).substr(off, 65536));
    s.receive(R"({"op":"accounts","id":2})" "\n");
    auto r = s.next_request();
    REQUIRE(r);
    CHECK(std::holds_alternative<model::ListAccounts>(r->command));
    auto out = lines(s.take_output());
    REQUIRE(out.size() == 1);
    CHECK(out[0]["error"]["code"] == "line-too-long");
}

TEST_CASE("jsonl: requests split across reads, several per read, in order") {
    auto s = attached_session();
    std::string two = R"({"op":"accounts","id":1})" "\n" "garbage\n" R"({"op":"roster","id":2,"account":"home"})" "\r\n";
    for (char c : two) s.receive(std::string_view(&c, 1));
    auto a = s.next_request();
    REQUIRE(a);
    CHECK(a->id == 1);
    s.reply(*a, model::Reply{});
    auto b = s.next_request();  // the bad line in between is answered before it
    REQUIRE(b);
    CHECK(b->id == 2);
    auto out = lines(s.take_output());
    REQUIRE(out.size() == 2);
    CHECK(out[0]["id"] == 1);
    CHECK(out[1]["error"]["code"] == "bad-json");
    CHECK_FALSE(s.next_request());
}

TEST_CASE("jsonl: hub errors are rendered with the request's id") {
    auto s = attached_session();
    auto r = request(s, R"({"op":"roster","id":"x","account":"hme"})");
    REQUIRE(r);
    s.reply(*r, model::Reply::error("unknown-account", "no account named 'hme'"));
    CHECK(s.take_output() ==
          R"({"id":"x","ok":false,"error":{"code":"unknown-account","message":"no account named 'hme'"}})" "\n");
}

// A send's reply is written without a tree (Session::reply): the same bytes as the tree's
// dump, for every form of id, a msg_id with characters that need escaping or that are not
// UTF-8 (then the tree writes it, replacing them), and a duplicate.
TEST_CASE("jsonl: a send's reply has the bytes the JSON tree would write") {
    const std::vector<std::string> ids = {"",  "1", "-7", "1.5", "true", "null", R"("x")", R"("a\"b\\c\u0001é")",
                                          R"({"k":[1,"v"]})", "[]"};
    const std::vector<std::string> msg_ids = {"m1", "0190c0de-7a3b-7c11-9f00-0123456789ab", "a\"b\\c\n\x01\u263A",
                                              std::string("bad \xff utf-8"), ""};
    int compared = 0;
    for (const auto& id : ids) {
        for (const auto& msg_id : msg_ids) {
            for (bool duplicate : {false, true}) {
                INFO("id " << id << ", msg_id " << msg_id << ", duplicate " << duplicate);
                auto s = attached_session();
                const std::string line = R"({"op":"send",)" + (id.empty() ? "" : R"("id":)" + id + ",") +
                                         R"("account":"home","to":"bob@example.org","body":"hi"})";
                auto r = request(s, line);
                REQUIRE(r);
                REQUIRE(std::holds_alternative<model::Send>(r->command));
                model::Reply reply;
                reply.msg_id = msg_id;
                reply.duplicate = duplicate;
                s.reply(*r, reply);
                Json tree;
                if (!id.empty() && id != "null") tree["id"] = Json::parse(id);
                tree["ok"] = true;
                tree["msg_id"] = msg_id;
                if (duplicate) tree["duplicate"] = true;
                CHECK(s.take_output() == tree.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n");
                ++compared;
            }
        }
    }
    CHECK(compared == 100);
}
