// The IRC session and encrypted messages: what an OMEMO message looks like to every
// client, one that did not decrypt, and the &stanzad encryption and omemo commands.
#include <catch2/catch.hpp>

#include "irc_session_fixture.hpp"

using namespace irc;
using namespace irc_test;

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
