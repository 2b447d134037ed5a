// frontends/irc/nicks: the nicks given to JIDs, collisions, reserved nicks, renames, and the
// map serialized and read back.
#include "irc_message_fixture.hpp"

using namespace irc_message_test;

// --- Nicks --------------------------------------------------------------------------

TEST_CASE("irc nicks: the nick a JID starts from") {
    CHECK(irc::nick_base("alice@example.org") == "alice");
    CHECK(irc::nick_base("example.org") == "example");           // host only: first label
    CHECK(irc::nick_base("irc.example.org") == "irc");
    CHECK(irc::nick_base("localhost") == "localhost");
    CHECK(irc::nick_base("jürgen@x.de") == "j_rgen");             // one '_' per character
    CHECK(irc::nick_base("züüürich@x.de") == "z_rich");           // and per run
    CHECK(irc::nick_base("张伟@example.cn") == "user");            // nothing usable
    CHECK(irc::nick_base("john.doe@x") == "john_doe");
    CHECK(irc::nick_base("123@x") == "_123");
    CHECK(irc::nick_base("-x@y") == "_-x");
    CHECK(irc::nick_base("[a]{b}|c^d`e\\f_g-h@x") == "[a]{b}|c^d`e\\f_g-h");
    CHECK(irc::nick_base(std::string(40, 'l') + "@x") == std::string(30, 'l'));
    CHECK(irc::nick_base("9" + std::string(40, 'l') + "@x") == "_9" + std::string(28, 'l'));
    CHECK(irc::nick_base("room@conference.example.org/Bob Smith") == "Bob_Smith");  // occupant
    CHECK(irc::nick_base("room@conference.example.org/a@b") == "a_b");
    CHECK(irc::nick_base("room@conference.example.org/") == "user");
    CHECK(irc::nick_base("") == "user");
    CHECK(irc::nick_base("@x") == "user");
    CHECK(irc::nick_base("$pecial:#chan,*?!@x") == "_pecial_chan_");
    for (auto jid : {"alice@example.org", "example.org", "jürgen@x", "123@x", "-@x", "#@x", ":x@y",
                     "$x@y", "~x@y", "&x@y", "+x@y", "%x@y", "@", "/", "a b@c", "\xff\xfe@x", "r@c/9 lives"})
        CHECK(irc::valid_nick(irc::nick_base(jid)));
}

TEST_CASE("irc nicks: what a nick may be") {
    CHECK(irc::valid_nick("alice"));
    CHECK(irc::valid_nick("[away]`_|^{}\\-9"));
    CHECK(irc::valid_nick(std::string(30, 'a')));
    CHECK_FALSE(irc::valid_nick(std::string(31, 'a')));
    CHECK_FALSE(irc::valid_nick(""));
    CHECK_FALSE(irc::valid_nick("9lives"));
    CHECK_FALSE(irc::valid_nick("-dash"));
    for (auto bad : {"a b", "a,b", "a*", "a?", "a!b", "a@b", "a.b", "$a", ":a", "#a", "&a", "~a", "+a", "%a", "jürgen"})
        CHECK_FALSE(irc::valid_nick(bad));
    CHECK(irc::fold("AliCE[]\\~") == "alice[]\\~");  // ascii: only A-Z fold
}

TEST_CASE("irc nicks: collisions across accounts and domains") {
    irc::NickMap m;
    CHECK(m.nick_for("home", "alice@a.org") == "alice");
    CHECK(m.nick_for("work", "alice@b.org") == "alice_b");       // domain's first label
    CHECK(m.nick_for("work", "alice@a.org") == "alice_work");    // same JID, other account
    CHECK(m.nick_for("home", "alice@b.net") == "alice_home");    // alice_b is taken
    CHECK(m.nick_for("home", "alice@b.com") == "alice2");
    CHECK(m.nick_for("home", "alice@b.de") == "alice3");
    CHECK(m.nick_for("home", "alice@a.org") == "alice");         // kept
    CHECK(m.nick_for("work", "alice@b.org") == "alice_b");
    CHECK(m.size() == 6);

    auto who = m.lookup("alice_work");
    REQUIRE(who);
    CHECK(who->first == "work");
    CHECK(who->second == "alice@a.org");
    CHECK_FALSE(m.lookup("alice4"));
    CHECK(m.find_nick("home", "alice@b.de") == std::optional<std::string>("alice3"));
    CHECK_FALSE(m.find_nick("home", "nobody@b.de"));
}

TEST_CASE("irc nicks: nicks differ in more than case (CASEMAPPING=ascii)") {
    irc::NickMap m;
    CHECK(m.nick_for("home", "Alice@x.org") == "Alice");
    CHECK(m.nick_for("home", "alice@y.org") == "alice_y");
    CHECK(m.lookup("ALICE")->second == "Alice@x.org");
    CHECK(m.lookup("ALICE_Y")->second == "alice@y.org");
    CHECK(m.taken("aLiCe"));
    // Long nicks keep their suffix inside NICKLEN.
    std::string l(30, 'l');
    CHECK(m.nick_for("home", l + "@a.org") == l);
    auto second = m.nick_for("home", l + "@b.org");
    CHECK(second == std::string(28, 'l') + "_b");
    CHECK(irc::valid_nick(second));
}

TEST_CASE("irc nicks: reserved nicks are never given to a contact") {
    irc::NickMap m({"stanzad", "Me"});
    CHECK(m.nick_for("home", "stanzad@example.org") == "stanzad_example");
    CHECK(m.nick_for("home", "me@example.org") == "me_example");
    CHECK(m.is_reserved("STANZAD"));
    CHECK_FALSE(m.lookup("stanzad"));
    CHECK(m.reserve("bob"));
    CHECK(m.nick_for("home", "bob@x.org") == "bob_x");
    CHECK_FALSE(m.reserve("BOB_X"));  // a contact has it
    CHECK_FALSE(m.is_reserved("bob_x"));
    m.release("bob");
    CHECK_FALSE(m.is_reserved("bob"));
    CHECK(m.nick_for("home", "bob@y.org") == "bob");
    // The default reserves the service nick.
    irc::NickMap d;
    CHECK(d.is_reserved(irc::service_nick));
    CHECK(d.nick_for("a", "stanzad.example.org") == "stanzad_a");
}

TEST_CASE("irc nicks: rename") {
    irc::NickMap m;
    CHECK(m.nick_for("home", "alice@a.org") == "alice");
    CHECK(m.nick_for("home", "bob@a.org") == "bob");
    CHECK(m.rename("home", "alice@a.org", "Ally"));
    CHECK(m.find_nick("home", "alice@a.org") == std::optional<std::string>("Ally"));
    CHECK(m.lookup("ally")->second == "alice@a.org");
    CHECK_FALSE(m.lookup("alice"));                       // the old nick is free again
    CHECK(m.rename("home", "alice@a.org", "ALLY"));       // a change of case
    CHECK(m.find_nick("home", "alice@a.org") == std::optional<std::string>("ALLY"));

    auto r = m.rename("home", "alice@a.org", "Bob");
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "nick-in-use");
    r = m.rename("home", "alice@a.org", "stanzad");
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "nick-in-use");
    for (auto bad : {"", "9x", "a b", "a.b", "jürgen", "#x"}) {
        r = m.rename("home", "alice@a.org", bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == "erroneous-nick");
    }
    r = m.rename("home", "alice@a.org", std::string(31, 'x'));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "erroneous-nick");
    CHECK(m.find_nick("home", "alice@a.org") == std::optional<std::string>("ALLY"));

    // A contact without a nick yet gets the one asked for.
    CHECK(m.rename("work", "carol@c.org", "caz"));
    CHECK(m.nick_for("work", "carol@c.org") == "caz");
    // A freed nick goes to the next contact that wants it.
    CHECK(m.nick_for("home", "alice@z.org") == "alice");

    m.forget("home", "bob@a.org");
    CHECK_FALSE(m.lookup("bob"));
    CHECK(m.rename("work", "carol@c.org", "bob"));
}

TEST_CASE("irc nicks: the same calls give the same nicks") {
    auto run = [] {
        irc::NickMap m;
        for (auto jid : {"alice@a.org", "alice@b.org", "bob@a.org", "Alice@c.org", "a.org", "alice@a.org"})
            for (auto acct : {"home", "work"}) m.nick_for(acct, jid);
        return m.serialize();
    };
    CHECK(run() == run());
}

TEST_CASE("irc nicks: serialize and deserialize") {
    irc::NickMap m;
    m.nick_for("home", "alice@a.org");
    m.nick_for("work", "alice@b.org");
    m.nick_for("we%ird\tacct", "x@y.org/res\nwith%0Anewline\r");
    REQUIRE(m.rename("home", "bob@a.org", "Bobby"));
    auto text = m.serialize();
    CHECK(text.rfind("stanzad-nicks 1\n", 0) == 0);
    CHECK(text.find("Bobby\thome\tbob@a.org\n") != std::string::npos);

    auto back = irc::NickMap::deserialize(text);
    CHECK(back.serialize() == text);
    CHECK(back.size() == 4);
    CHECK(back.nick_for("work", "alice@b.org") == "alice_b");
    CHECK(back.lookup("bobby")->second == "bob@a.org");
    CHECK(back.nick_for("we%ird\tacct", "x@y.org/res\nwith%0Anewline\r") ==
          m.nick_for("we%ird\tacct", "x@y.org/res\nwith%0Anewline\r"));
    // New contacts after a restart get what they would have got without one.
    CHECK(back.nick_for("home", "alice@c.org") == m.nick_for("home", "alice@c.org"));
    CHECK(irc::NickMap::deserialize(irc::NickMap().serialize()).size() == 0);
    // CR LF line ends (a file edited elsewhere) read the same.
    std::string crlf;
    for (char c : text) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    CHECK(irc::NickMap::deserialize(crlf).serialize() == text);
}

TEST_CASE("irc nicks: garbage in, an empty or partial map out") {
    CHECK(irc::NickMap::deserialize("").size() == 0);
    CHECK(irc::NickMap::deserialize("\n\n\t\t\n").size() == 0);
    CHECK(irc::NickMap::deserialize("stanzad-nicks 2\nalice\thome\ta@b\n").size() == 0);  // unknown version
    CHECK(irc::NickMap::deserialize("alice\thome\ta@b\n").size() == 0);                   // no header
    std::string text =
        "stanzad-nicks 1\n"
        "alice\thome\talice@a.org\n"      // good
        "ALICE\thome\talice@b.org\n"      // same nick, other case: skipped
        "al\thome\talice@a.org\n"         // same contact again: skipped
        "9bad\thome\tc@d\n"               // invalid nick
        "bad nick\thome\tc@d\n"
        "stanzad\thome\ts@d\n"            // reserved
        "two\tfields\n"
        "four\ta\tb\tc\n"
        "esc\thome\tbad%zz\n"             // bad escape
        "\n"
        "\xff\xfe";
    text += std::string(1, '\0');
    text +=
        "garbage"
        "bob\thome\tbob@a.org\n"          // joined to the garbage line: skipped
        "carol\thome\tcarol@a.org";       // no final LF: still read
    auto m = irc::NickMap::deserialize(text);
    CHECK(m.size() == 2);
    CHECK(m.find_nick("home", "alice@a.org") == std::optional<std::string>("alice"));
    CHECK(m.find_nick("home", "carol@a.org") == std::optional<std::string>("carol"));
    CHECK(m.nick_for("home", "alice@b.org") == "alice_b");
    // Cut anywhere: never a crash, always a map that serializes.
    irc::NickMap full;
    for (auto jid : {"alice@a.org", "bob@a.org", "carol@b.org", "dave@c.org"}) full.nick_for("home", jid);
    auto good = full.serialize();
    for (std::size_t n = 0; n <= good.size(); ++n) {
        auto part = irc::NickMap::deserialize(good.substr(0, n));
        CHECK(part.size() <= full.size());
        CHECK(irc::NickMap::deserialize(part.serialize()).serialize() == part.serialize());
    }
}
