// protocol/im/session: the catch-up with our own archive (XEP-0313) and history requests.
#include "im_session_fixture.hpp"

using namespace im_session_test;
using xmpp::test::frame;

namespace {

// A page of our own archive as the server sends it (XEP-0313 §4.2), and its end (§4.3).
std::string archive_result(const std::string& query_id, const std::string& archive_id, const std::string& body,
                           const std::string& from = "bob@example.org/x") {
    return "<message to='alice@example.org/s'><result xmlns='urn:xmpp:mam:2' queryid='" + query_id + "' id='" +
           archive_id + "'><forwarded xmlns='urn:xmpp:forward:0'>"
           "<delay xmlns='urn:xmpp:delay' stamp='2026-12-01T10:00:00Z'/>"
           "<message xmlns='jabber:client' from='" + from + "' to='alice@example.org' type='chat' id='a-" +
           archive_id + "'><body>" + body + "</body></message></forwarded></result></message>";
}
std::string fin(const std::string& id, bool complete, const std::string& last, const std::string& from = {}) {
    return "<iq type='result' id='" + id + "'" + (from.empty() ? "" : " from='" + from + "'") +
           "><fin xmlns='urn:xmpp:mam:2' complete='" + (complete ? "true" : "false") +
           "'><set xmlns='http://jabber.org/protocol/rsm'><last>" + last + "</last></set></fin></iq>";
}

}  // namespace

TEST_CASE("session: catch-up pages our archive after the kept position, and the gap rule") {
    Fixture f;
    f.store.values["mam_last"] = "s0";
    f.session.catch_up("2026-12-06T00:00:00.000Z");
    REQUIRE(f.port.sent.size() == 1);
    const std::string& query = f.port.sent[0].first;
    CHECK(query.find("queryid='catchup1'") != std::string::npos);
    CHECK(query.find("<after>s0</after>") != std::string::npos);
    CHECK(query.find("var='start'") == std::string::npos);  // after a known id, no start
    CHECK(f.session.gap_open());

    // A live message during the gap is newer than what the catch-up still brings: it is
    // shown, but does not move the position (else what lies between would be skipped).
    f.receive("<message from='carol@example.org/x' type='chat' id='l1'><body>live</body>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='s9'/></message>");
    CHECK(f.store.values["mam_last"] == "s0");

    f.session.archive_result(test::frame(archive_result("catchup1", "s1", "missed")).root());
    f.session.archive_result(test::frame(archive_result("other", "s2", "not asked")).root());  // dropped
    // An answer from anyone but our account is not the answer.
    CHECK_FALSE(f.session.catch_up_answer(test::frame(fin("catchup1", false, "s1", "mallory@evil.example")).root()));
    // Not complete: the position moves to the page's end and the next page goes out.
    CHECK(f.session.catch_up_answer(test::frame(fin("catchup1", false, "s1")).root()));
    CHECK(f.store.values["mam_last"] == "s1");
    REQUIRE(f.port.sent.size() == 2);
    CHECK(f.port.sent[1].first.find("<after>s1</after>") != std::string::npos);
    CHECK(f.port.sent[1].first.find("queryid='catchup2'") != std::string::npos);
    CHECK(f.session.gap_open());
    // The missed message came once, as a message of its own (not history).
    auto msgs = f.port.messages();
    REQUIRE(msgs.size() == 2);  // the live one and the missed one; the one nobody asked for is dropped
    CHECK(msgs[1].body == "missed");
    CHECK(msgs[1].delayed);
    CHECK_FALSE(msgs[1].history);

    // Complete: the gap closes; live messages move the position again.
    // The live message again (the archive copy of a stanza is that stanza: carol's).
    f.session.archive_result(test::frame(archive_result("catchup2", "s9", "live", "carol@example.org/x")).root());
    CHECK(f.session.catch_up_answer(test::frame(fin("catchup2", true, "s9")).root()));
    CHECK_FALSE(f.session.gap_open());
    CHECK(f.store.values["mam_last"] == "s9");
    CHECK(f.port.sent.size() == 2);
    CHECK(f.port.logs.back() == "account work: archive catch-up: 2 message(s), 1 of them new");
    f.receive("<message from='carol@example.org/x' type='chat' id='l2'><body>later</body>"
              "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.org' id='s10'/></message>");
    CHECK(f.store.values["mam_last"] == "s10");
    // A late answer to a finished query is nobody's.
    CHECK_FALSE(f.session.catch_up_answer(test::frame(fin("catchup2", true, "s9")).root()));
}

TEST_CASE("session: the first catch-up starts when the account was first seen; a failure keeps the gap") {
    Fixture f;
    f.session.catch_up("2026-12-06T08:00:00.000Z");
    REQUIRE(f.port.sent.size() == 1);
    CHECK(f.port.sent[0].first.find("<field var='start'><value>2026-12-06T08:00:00.000Z</value></field>") !=
          std::string::npos);
    CHECK(f.store.values["mam_since"] == "2026-12-06T08:00:00.000Z");
    CHECK(f.session.catch_up_answer(
        test::frame("<iq type='error' id='catchup1'><error type='wait'>"
                    "<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
            .root()));
    CHECK(f.session.gap_open());
    CHECK(f.port.logs.back() == "account work: archive catch-up failed (the server answered error)");
    // The next login starts from the same point in time, not from its own "now".
    f.session.catch_up("2026-12-07T09:00:00.000Z");
    REQUIRE(f.port.sent.size() == 2);
    CHECK(f.port.sent[1].first.find("<value>2026-12-06T08:00:00.000Z</value>") != std::string::npos);
    CHECK(f.port.sent[1].first.find("queryid='catchup2'") != std::string::npos);
}


TEST_CASE("session: a history request brings its page; messages new to us are stored once") {
    Fixture f;
    model::History h;
    h.account = "work";
    h.with = "bob@example.org";
    h.max = 10;
    std::vector<model::Reply> replies;
    f.session.history(h, [&](model::Reply r) { replies.push_back(std::move(r)); });
    REQUIRE(f.port.requests.size() == 1);
    CHECK(f.port.requests[0].xml.find("<field var='with'><value>bob@example.org</value></field>") != std::string::npos);
    CHECK(f.port.requests[0].xml.find("<before/>") != std::string::npos);  // the newest page
    CHECK(f.port.requests[0].xml.find("queryid='history1'") != std::string::npos);
    f.session.archive_result(test::frame(archive_result("history1", "h1", "old one")).root());
    f.session.archive_result(test::frame(archive_result("history1", "h1", "old one")).root());
    auto fin = test::frame("<iq type='result' id='x'><fin xmlns='urn:xmpp:mam:2' complete='true'>"
                           "<set xmlns='http://jabber.org/protocol/rsm'><first>h1</first><last>h1</last></set></fin></iq>");
    f.port.requests[0].done(IqReply{IqReply::Outcome::Result, fin.root(), {}});
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].source == "archive");
    CHECK(replies[0].complete);
    CHECK(replies[0].first == "h1");
    REQUIRE(replies[0].messages.size() == 2);  // as the server sent them
    CHECK(std::get<model::Message>(replies[0].messages[0].body).history);
    CHECK(std::get<model::Message>(replies[0].messages[0].body).body == "old one");
    CHECK(f.store.events.size() == 1);  // stored once, not shown live (it is history)
    CHECK(f.port.messages().empty());

    // A request that gets no answer is answered anyway.
    f.session.history(h, [&](model::Reply r) { replies.push_back(std::move(r)); });
    f.port.requests[1].done(IqReply{IqReply::Outcome::Timeout, {}, {}});
    REQUIRE(replies.size() == 2);
    CHECK(replies[1].error_code == "timeout");
}

