#include <catch2/catch.hpp>

#include <string>

#include "protocol/im.hpp"
#include "protocol/muc.hpp"
#include "protocol/xml_framer.hpp"
#include "stanza_helpers.hpp"

using namespace xmpp;

namespace {

using test::frame;

MucPresence presence(std::string_view xml) {
    auto s = frame(xml);
    auto p = parse_muc_presence(s.root());
    REQUIRE(p);
    return *p;
}

SelfPing ping_answer(std::string_view xml) { return classify_self_ping(frame(xml).root()); }

// A string that needs every XML escape, for the builders.
constexpr std::string_view nasty = "a'b\"c<d>e&f";

}  // namespace

TEST_CASE("muc: occupant presences on entering a room (XEP-0045 §7.2)") {
    // Example 20: an existing occupant.
    auto first = presence("<presence from='coven@chat.shakespeare.lit/firstwitch' id='3DCB0401' to='hag66@shakespeare.lit/pda'>"
                          "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='owner' role='moderator'/></x></presence>");
    CHECK(first.room == "coven@chat.shakespeare.lit");
    CHECK(first.nick == "firstwitch");
    CHECK(first.type.empty());
    CHECK(first.affiliation == "owner");
    CHECK(first.role == "moderator");
    CHECK(first.jid.empty());
    CHECK(first.codes.empty());
    CHECK_FALSE(first.self());
    CHECK_FALSE(first.destroyed);
    CHECK(first.error.empty());

    // Example 24: our own presence, in a non-anonymous room, with a nick the room changed.
    auto self = presence("<presence from='coven@chat.shakespeare.lit/thirdwitch' id='n13mt3l' to='hag66@shakespeare.lit/pda'>"
                         "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' role='participant'/>"
                         "<status code='100'/><status code='110'/><status code='210'/></x></presence>");
    CHECK(self.self());
    CHECK(self.codes == std::set<int>{muc_status::real_jid_public, muc_status::self, muc_status::nick_assigned});
    CHECK(self.nick == "thirdwitch");

    // Example 23: the room tells the occupant's real JID.
    auto real = presence("<presence from='coven@chat.shakespeare.lit/thirdwitch' id='17232D15' to='crone1@shakespeare.lit/desktop'>"
                         "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' jid='hag66@shakespeare.lit/pda' "
                         "role='participant'/></x></presence>");
    CHECK(real.jid == "hag66@shakespeare.lit/pda");

    // Example 55: show and status go along.
    auto away = presence("<presence from='coven@chat.shakespeare.lit/secondwitch' id='86E11ABF' to='crone1@shakespeare.lit/desktop'>"
                         "<show>xa</show><status>gone where the goblins go</status>"
                         "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='admin' jid='wiccarocks@shakespeare.lit/laptop' "
                         "role='moderator'/></x></presence>");
    CHECK(away.show == "xa");
    CHECK(away.status == "gone where the goblins go");
    CHECK(away.affiliation == "admin");

    // Example 201's room: a created room (status 201).
    auto created = presence("<presence from='coven@chat.shakespeare.lit/firstwitch' to='crone1@shakespeare.lit/desktop'>"
                            "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='owner' role='moderator'/>"
                            "<status code='110'/><status code='201'/></x></presence>");
    CHECK(created.codes.count(muc_status::created));
}

TEST_CASE("muc: nick changes, exits, kicks, bans and destruction") {
    // Example 50: the unavailable half of a nick change carries the new nick.
    auto renamed = presence("<presence from='coven@chat.shakespeare.lit/thirdwitch' id='5C1B95B3' to='crone1@shakespeare.lit/desktop' "
                            "type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' "
                            "jid='hag66@shakespeare.lit/pda' nick='oldhag' role='participant'/><status code='303'/></x></presence>");
    CHECK(renamed.type == "unavailable");
    CHECK(renamed.nick == "thirdwitch");
    CHECK(renamed.new_nick == "oldhag");
    CHECK(renamed.codes == std::set<int>{muc_status::new_nick});
    // A nick on an item without 303 is no nick change.
    auto not_renamed = presence("<presence from='coven@chat.shakespeare.lit/a' type='unavailable'>"
                                "<x xmlns='http://jabber.org/protocol/muc#user'><item nick='b' role='none'/></x></presence>");
    CHECK(not_renamed.new_nick.empty());

    // Example 81: our own exit.
    auto left = presence("<presence from='coven@chat.shakespeare.lit/thirdwitch' to='hag66@shakespeare.lit/pda' type='unavailable'>"
                         "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' jid='hag66@shakespeare.lit/pda' "
                         "role='none'/><status code='110'/></x></presence>");
    CHECK(left.self());
    CHECK(left.role == "none");

    // Example 90: kicked, with the actor and a reason.
    auto kicked = presence("<presence from='harfleur@chat.shakespeare.lit/pistol' to='pistol@shakespeare.lit/harfleur' type='unavailable'>"
                           "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'>"
                           "<actor nick='Fluellen'/><reason>Avaunt, you cullion!</reason></item>"
                           "<status code='110'/><status code='307'/></x></presence>");
    CHECK(kicked.self());
    CHECK(kicked.codes.count(muc_status::kicked));
    CHECK(kicked.actor == "Fluellen");
    CHECK(kicked.reason == "Avaunt, you cullion!");

    // Example 113: banned, by an actor whose nick is not ASCII.
    auto banned = presence("<presence from='southampton@chat.shakespeare.lit/cambridge' to='earlofcambridge@shakespeare.lit/stabber' "
                           "type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='outcast' role='none'>"
                           "<actor nick='The \xE2\x99\x9A'/><reason>Treason</reason></item><status code='301'/></x></presence>");
    CHECK(banned.codes == std::set<int>{muc_status::banned});
    CHECK(banned.actor == "The \xE2\x99\x9A");
    CHECK(banned.affiliation == "outcast");
    CHECK(banned.reason == "Treason");
    // An actor known only by JID (§9.1: "the roomnick or bare JID").
    auto by_jid = presence("<presence from='r@muc.example.org/n' type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'>"
                           "<item affiliation='outcast' role='none'><actor jid='admin@example.org'/></item>"
                           "<status code='301'/></x></presence>");
    CHECK(by_jid.actor == "admin@example.org");

    // Example 202: the room was destroyed; the reason is the destruction's.
    auto destroyed = presence("<presence from='heath@chat.shakespeare.lit/thirdwitch' to='hag66@shakespeare.lit/pda' type='unavailable'>"
                              "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'/>"
                              "<destroy jid='coven@chat.shakespeare.lit'><reason>Macbeth doth come.</reason></destroy>"
                              "</x></presence>");
    CHECK(destroyed.destroyed);
    CHECK(destroyed.reason == "Macbeth doth come.");
    CHECK(destroyed.room == "heath@chat.shakespeare.lit");
    // Example 207: the service shuts down.
    auto shutdown = presence("<presence from='harfleur@chat.shakespeare.lit/pistol' to='pistol@shakespeare.lit/client' type='unavailable'>"
                             "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'/>"
                             "<status code='110'/><status code='332'/></x></presence>");
    CHECK(shutdown.codes.count(muc_status::removed_shutdown));
    CHECK_FALSE(shutdown.destroyed);

    // Status codes that are not three digits are ignored.
    auto odd = presence("<presence from='r@muc.example.org/n'><x xmlns='http://jabber.org/protocol/muc#user'>"
                        "<status code='abc'/><status code=''/><status code='1100'/><status code='11'/><status code='+110'/>"
                        "<status code='110 '/><status/><status code='307'/></x></presence>");
    CHECK(odd.codes == std::set<int>{muc_status::kicked});
}

TEST_CASE("muc: error presences from a room, and what is not a room presence") {
    // Example 25: a password is needed (the room echoes our muc <x/>).
    auto password = presence("<presence from='coven@chat.shakespeare.lit/thirdwitch' id='n13mt3l' to='hag66@shakespeare.lit/pda' "
                             "type='error'><x xmlns='http://jabber.org/protocol/muc'/><error by='coven@chat.shakespeare.lit' type='auth'>"
                             "<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>");
    CHECK(password.type == "error");
    CHECK(password.error == "not-authorized");
    CHECK(password.room == "coven@chat.shakespeare.lit");
    CHECK(password.nick == "thirdwitch");
    // Example 29, with a text, and an error without any MUC element.
    auto conflict = presence("<presence from='coven@chat.shakespeare.lit/thirdwitch' type='error'><error type='cancel'>"
                             "<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                             "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Nick in use</text></error></presence>");
    CHECK(conflict.error == "conflict (Nick in use)");
    auto bare_error = presence("<presence from='coven@chat.shakespeare.lit/x' type='error'/>");
    CHECK(bare_error.error == "undefined-condition");  // no <error/> at all

    // Example 19: from the room's bare JID, no nick: not an occupant's presence.
    CHECK_FALSE(parse_muc_presence(frame("<presence from='coven@chat.shakespeare.lit' id='273hs51g' to='hag66@shakespeare.lit/pda' "
                                         "type='error'><error by='coven@chat.shakespeare.lit' type='modify'>"
                                         "<jid-malformed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>").root()));
    // An ordinary presence (no muc#user <x/>), a bad or missing 'from', a message.
    CHECK_FALSE(parse_muc_presence(frame("<presence from='bob@example.org/phone'><show>away</show></presence>").root()));
    CHECK_FALSE(parse_muc_presence(frame("<presence from='bob@example.org/phone'><x xmlns='http://jabber.org/protocol/muc'/></presence>").root()));
    CHECK_FALSE(parse_muc_presence(frame("<presence from='@bad/x'><x xmlns='http://jabber.org/protocol/muc#user'/></presence>").root()));
    CHECK_FALSE(parse_muc_presence(frame("<presence><x xmlns='http://jabber.org/protocol/muc#user'/></presence>").root()));
    CHECK_FALSE(parse_muc_presence(frame("<message from='r@muc/n'><x xmlns='http://jabber.org/protocol/muc#user'/></message>").root()));
    // An <x/> without an item is still a room presence, with nothing known.
    auto empty = presence("<presence from='r@muc.example.org/n'><x xmlns='http://jabber.org/protocol/muc#user'/></presence>");
    CHECK(empty.affiliation.empty());
    CHECK(empty.role.empty());
}

TEST_CASE("muc: mediated and direct invitations") {
    // XEP-0045 Example 57 (the reason comes pretty-printed).
    auto mediated = frame("<message from='coven@chat.shakespeare.lit' id='nzd143v8' to='hecate@shakespeare.lit'>"
                          "<x xmlns='http://jabber.org/protocol/muc#user'><invite from='crone1@shakespeare.lit/desktop'>"
                          "<reason>\n        Hey Hecate, this is the place for all good witches!\n      </reason></invite>"
                          "<password>cauldronburn</password></x></message>");
    auto m = parse_invite(mediated.root());
    REQUIRE(m);
    CHECK_FALSE(m->direct);
    CHECK(m->room == "coven@chat.shakespeare.lit");
    CHECK(m->from == "crone1@shakespeare.lit/desktop");
    CHECK(m->reason == "Hey Hecate, this is the place for all good witches!");
    CHECK(m->password == "cauldronburn");
    // With the old jabber:x:conference element a room may add (§7.8.2 implementation note):
    // still mediated, still the room's address.
    auto both = frame("<message from='coven@chat.shakespeare.lit' to='hecate@shakespeare.lit'>"
                      "<x xmlns='http://jabber.org/protocol/muc#user'><invite from='crone1@shakespeare.lit'/></x>"
                      "<x xmlns='jabber:x:conference' jid='coven@chat.shakespeare.lit'>Hey</x></message>");
    m = parse_invite(both.root());
    REQUIRE(m);
    CHECK_FALSE(m->direct);
    CHECK(m->from == "crone1@shakespeare.lit");
    CHECK(m->reason.empty());
    CHECK(m->password.empty());

    // XEP-0249 Examples 1 and 2.
    auto direct = frame("<message from='crone1@shakespeare.lit/desktop' to='hecate@shakespeare.lit'>"
                        "<x xmlns='jabber:x:conference' jid='darkcave@macbeth.shakespeare.lit' password='cauldronburn' "
                        "reason='Hey Hecate, this is the place for all good witches!'/></message>");
    auto d = parse_invite(direct.root());
    REQUIRE(d);
    CHECK(d->direct);
    CHECK(d->room == "darkcave@macbeth.shakespeare.lit");
    CHECK(d->from == "crone1@shakespeare.lit/desktop");
    CHECK(d->reason == "Hey Hecate, this is the place for all good witches!");
    CHECK(d->password == "cauldronburn");
    auto cont = frame("<message from='crone1@shakespeare.lit/desktop' to='hecate@shakespeare.lit'>"
                      "<x xmlns='jabber:x:conference' continue='true' jid='darkcave@macbeth.shakespeare.lit' "
                      "thread='e0ffe42b28561960c6b12b944a092794b9683a38'/></message>");
    d = parse_invite(cont.root());
    REQUIRE(d);
    CHECK(d->room == "darkcave@macbeth.shakespeare.lit");
    CHECK(d->reason.empty());

    // What we send (escaped), a contact reads back.
    auto ours = frame(make_direct_invite("hecate@shakespeare.lit", "Room@Muc.Example.org", nasty, nasty));
    d = parse_invite(ours.root());
    REQUIRE(d);
    CHECK(d->room == "room@muc.example.org");
    CHECK(d->reason == nasty);
    CHECK(d->password == nasty);

    // No room address, a bad one, an occupant JID; an error bounce; no invitation at all.
    for (auto x : {"<x xmlns='jabber:x:conference'/>", "<x xmlns='jabber:x:conference' jid='@bad'/>",
                   "<x xmlns='jabber:x:conference' jid='room@muc.example.org/nick'/>"}) {
        INFO(x);
        CHECK_FALSE(parse_invite(frame(std::string("<message from='a@b/c'>") + x + "</message>").root()));
    }
    CHECK_FALSE(parse_invite(frame("<message from='a@b/c' type='error'><x xmlns='jabber:x:conference' jid='r@muc.example.org'/>"
                                   "<error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>").root()));
    CHECK_FALSE(parse_invite(frame("<message from='coven@chat.shakespeare.lit'><body>x</body></message>").root()));
    // Example 59: a declined invitation is not an invitation.
    CHECK_FALSE(parse_invite(frame("<message from='coven@chat.shakespeare.lit' id='jk2vs61v' to='crone1@shakespeare.lit/desktop'>"
                                   "<x xmlns='http://jabber.org/protocol/muc#user'><decline from='hecate@shakespeare.lit'>"
                                   "<reason>Sorry, I'm too busy right now.</reason></decline></x></message>").root()));
    // A mediated invitation from an address that is none.
    CHECK_FALSE(parse_invite(frame("<message from='@bad'><x xmlns='http://jabber.org/protocol/muc#user'><invite/></x></message>").root()));
    CHECK_FALSE(parse_invite(frame("<presence from='a@b/c'><x xmlns='jabber:x:conference' jid='r@muc.example.org'/></presence>").root()));
}

TEST_CASE("muc: join, leave, subject, kick and self-ping stanzas") {
    // Examples 18 and 39: enter without history.
    CHECK(make_muc_join("coven@chat.shakespeare.lit", "thirdwitch", "") ==
          "<presence to='coven@chat.shakespeare.lit/thirdwitch'><x xmlns='http://jabber.org/protocol/muc'>"
          "<history maxstanzas='0'/></x></presence>");
    // Example 26: with a password; and our presence and caps along.
    CHECK(make_muc_join("coven@chat.shakespeare.lit", "thirdwitch", "cauldronburn",
                        "<show>away</show><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/>") ==
          "<presence to='coven@chat.shakespeare.lit/thirdwitch'><show>away</show>"
          "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/>"
          "<x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/><password>cauldronburn</password></x></presence>");
    // Examples 80 and 83.
    CHECK(make_muc_leave("coven@chat.shakespeare.lit", "thirdwitch", "") ==
          "<presence to='coven@chat.shakespeare.lit/thirdwitch' type='unavailable'/>");
    CHECK(make_muc_leave("coven@chat.shakespeare.lit", "oldhag", "gone where the goblins go") ==
          "<presence to='coven@chat.shakespeare.lit/oldhag' type='unavailable'><status>gone where the goblins go</status></presence>");
    // Examples 84 and 88.
    CHECK(make_muc_subject("coven@chat.shakespeare.lit", "Fire Burn and Cauldron Bubble!", "lh2bs617") ==
          "<message to='coven@chat.shakespeare.lit' type='groupchat' id='lh2bs617'>"
          "<subject>Fire Burn and Cauldron Bubble!</subject></message>");
    CHECK(make_muc_subject("coven@chat.shakespeare.lit", "", "uj3bs61g") ==
          "<message to='coven@chat.shakespeare.lit' type='groupchat' id='uj3bs61g'><subject/></message>");
    CHECK(make_muc_subject("coven@chat.shakespeare.lit", "s", "") ==
          "<message to='coven@chat.shakespeare.lit' type='groupchat'><subject>s</subject></message>");
    // Example 89, and without a reason.
    CHECK(make_muc_kick("kick1", "harfleur@chat.shakespeare.lit", "pistol", "Avaunt, you cullion!") ==
          "<iq type='set' to='harfleur@chat.shakespeare.lit' id='kick1'><query xmlns='http://jabber.org/protocol/muc#admin'>"
          "<item nick='pistol' role='none'><reason>Avaunt, you cullion!</reason></item></query></iq>");
    CHECK(make_muc_kick("kick2", "harfleur@chat.shakespeare.lit", "pistol", "") ==
          "<iq type='set' to='harfleur@chat.shakespeare.lit' id='kick2'><query xmlns='http://jabber.org/protocol/muc#admin'>"
          "<item nick='pistol' role='none'/></query></iq>");
    // XEP-0410 Example 1.
    CHECK(make_muc_self_ping("s2c1", "characters@chat.shakespeare.lit", "JuliC") ==
          "<iq type='get' to='characters@chat.shakespeare.lit/JuliC' id='s2c1'><ping xmlns='urn:xmpp:ping'/></iq>");

    // Everything escaped; nicks may hold any character.
    for (const auto& xml : {make_muc_join(nasty, nasty, nasty, "<status>x</status>"), make_muc_leave(nasty, nasty, nasty),
                            make_muc_subject(nasty, nasty, nasty), make_muc_kick(nasty, nasty, nasty, nasty),
                            make_muc_self_ping(nasty, nasty, nasty)}) {
        INFO(xml);
        CHECK(check_raw_stanza(xml).ok());
        CHECK(std::string(frame(xml).root().attribute("to").value()).starts_with(std::string(nasty)));
    }
    auto join = frame(make_muc_join("room@muc.example.org", "Nick <&>", "p'w"));
    CHECK(std::string(join.root().attribute("to").value()) == "room@muc.example.org/Nick <&>");
    CHECK(std::string(child(child(join.root(), ns_muc, "x"), ns_muc, "password").child_value()) == "p'w");
    auto kick = frame(make_muc_kick("k", "room@muc.example.org", "a'b", "<why>"));
    auto item = child(child(kick.root(), ns_muc_admin, "query"), ns_muc_admin, "item");
    CHECK(std::string(item.attribute("nick").value()) == "a'b");
    CHECK(std::string(child(item, ns_muc_admin, "reason").child_value()) == "<why>");
}

TEST_CASE("muc: what a self-ping answer says (XEP-0410 §3.2)") {
    auto error = [](std::string_view condition, std::string_view type = "cancel") {
        return "<iq from='characters@chat.shakespeare.lit/JuliC' id='s2c1' type='error' to='juliet@capulet.lit/client'>"
               "<error type='" + std::string(type) + "' by='characters@chat.shakespeare.lit'><" + std::string(condition) +
               " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>";
    };
    // Success: joined.
    CHECK(ping_answer("<iq from='characters@chat.shakespeare.lit/JuliC' id='s2c1' type='result' to='juliet@capulet.lit/client'/>") ==
          SelfPing::Joined);
    // Example 2: not an occupant.
    CHECK(ping_answer(error("not-acceptable")) == SelfPing::NotJoined);
    // The nick is not ours any more.
    CHECK(ping_answer(error("item-not-found")) == SelfPing::NotJoined);
    // One of our clients got the ping and does not do pings: joined.
    CHECK(ping_answer(error("service-unavailable")) == SelfPing::Joined);
    CHECK(ping_answer(error("feature-not-implemented")) == SelfPing::Joined);
    // Unreachable: no decision.
    CHECK(ping_answer(error("remote-server-not-found")) == SelfPing::Unknown);
    CHECK(ping_answer(error("remote-server-timeout", "wait")) == SelfPing::Unknown);
    // Temporary errors say nothing either.
    CHECK(ping_answer(error("resource-constraint", "wait")) == SelfPing::Unknown);
    CHECK(ping_answer(error("policy-violation", "wait")) == SelfPing::Unknown);
    // Any other error: probably not joined (the note of §3.2 names not-allowed and bad-request).
    CHECK(ping_answer(error("not-allowed")) == SelfPing::NotJoined);
    CHECK(ping_answer(error("bad-request", "modify")) == SelfPing::NotJoined);
    CHECK(ping_answer(error("forbidden", "auth")) == SelfPing::NotJoined);
    CHECK(ping_answer("<iq type='error' id='s'><error type='cancel'/></iq>") == SelfPing::NotJoined);
    CHECK(ping_answer("<iq type='error' id='s'/>") == SelfPing::NotJoined);
    // The text does not hide the condition.
    CHECK(ping_answer("<iq type='error' id='s'><error type='cancel'><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>x</text>"
                      "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>") == SelfPing::Joined);
    // Not an answer at all.
    CHECK(ping_answer("<iq type='get' id='s'><ping xmlns='urn:xmpp:ping'/></iq>") == SelfPing::Unknown);
    CHECK(ping_answer("<iq id='s'/>") == SelfPing::Unknown);
    CHECK(ping_answer("<message type='error'/>") == SelfPing::Unknown);
}

TEST_CASE("muc: bookmarks in PEP (XEP-0402)") {
    // Example 4.
    CHECK(make_bookmarks_get("retrieve1") ==
          "<iq type='get' id='retrieve1'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
          "<items node='urn:xmpp:bookmarks:1'/></pubsub></iq>");
    CHECK(check_raw_stanza(make_bookmarks_get(nasty)).ok());
    // Example 5, with items that have to be skipped and the minimal element of Example 2.
    auto iq = frame("<iq type='result' to='juliet@capulet.lit/balcony' id='retrieve1'>"
                    "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'>"
                    "<item id='theplay@conference.shakespeare.lit'><conference xmlns='urn:xmpp:bookmarks:1' "
                    "name='The Play&apos;s the Thing' autojoin='true'><nick>JC</nick></conference></item>"
                    "<item id='orchard@conference.shakespeare.lit'><conference xmlns='urn:xmpp:bookmarks:1' name='The Orcard' "
                    "autojoin='1'><nick>JC</nick><password>secret</password><extensions>"
                    "<state xmlns='http://myclient.example/bookmark/state' minimized='true'/></extensions></conference></item>"
                    "<item id='@bad'><conference xmlns='urn:xmpp:bookmarks:1' autojoin='true'/></item>"
                    "<item id='room@conference.shakespeare.lit/nick'><conference xmlns='urn:xmpp:bookmarks:1'/></item>"
                    "<item><conference xmlns='urn:xmpp:bookmarks:1'/></item>"
                    "<item id='nopayload@conference.shakespeare.lit'/>"
                    "<item id='other@conference.shakespeare.lit'><conference xmlns='storage:bookmarks'/></item>"
                    "<item id='Minimal@Conference.Shakespeare.lit'><conference xmlns='urn:xmpp:bookmarks:1'/></item>"
                    "<item id='off@conference.shakespeare.lit'><conference xmlns='urn:xmpp:bookmarks:1' autojoin='false'/></item>"
                    "</items></pubsub></iq>");
    auto marks = parse_bookmarks(iq.root());
    REQUIRE(marks.size() == 4);
    CHECK(marks[0].room == "theplay@conference.shakespeare.lit");
    CHECK(marks[0].name == "The Play's the Thing");
    CHECK(marks[0].autojoin);
    CHECK(marks[0].nick == "JC");
    CHECK(marks[0].password.empty());
    CHECK(marks[1].room == "orchard@conference.shakespeare.lit");
    CHECK(marks[1].autojoin);
    CHECK(marks[1].password == "secret");
    CHECK(marks[2].room == "minimal@conference.shakespeare.lit");
    CHECK(marks[2].name.empty());
    CHECK_FALSE(marks[2].autojoin);  // the default
    CHECK(marks[3].room == "off@conference.shakespeare.lit");
    CHECK_FALSE(marks[3].autojoin);
    // Another node, no pubsub, an error: no bookmarks.
    CHECK(parse_bookmarks(frame("<iq type='result' id='r'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='other'>"
                                "<item id='a@b'><conference xmlns='urn:xmpp:bookmarks:1'/></item></items></pubsub></iq>").root())
              .empty());
    CHECK(parse_bookmarks(frame("<iq type='result' id='r'/>").root()).empty());
    CHECK(parse_bookmarks(frame("<iq type='error' id='r'><error type='cancel'><item-not-found "
                                "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>").root())
              .empty());
}

TEST_CASE("muc: bookmarks in private XML storage (XEP-0048 via XEP-0049)") {
    CHECK(make_legacy_bookmarks_get("pb1") ==
          "<iq type='get' id='pb1'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>");
    CHECK(check_raw_stanza(make_legacy_bookmarks_get(nasty)).ok());
    // XEP-0048 Example 1 in a XEP-0049 Example 2 answer, with a URL and rooms to skip.
    auto iq = frame("<iq type='result' from='juliet@capulet.lit/balcony' to='juliet@capulet.lit/balcony' id='pb1'>"
                    "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>"
                    "<conference name='Council of Oberon' autojoin='true' jid='council@conference.underhill.org'>"
                    "<nick>Puck</nick><password>pass</password></conference>"
                    "<url name='Complete Works of Shakespeare' url='http://the-tech.mit.edu/Shakespeare/'/>"
                    "<conference name='bad' jid='@bad' autojoin='1'/><conference name='none' autojoin='1'/>"
                    "<conference jid='room@conference.underhill.org/nick'/>"
                    "<conference jid='Other@Conference.Underhill.org' autojoin='1'/>"
                    "<conference jid='off@conference.underhill.org' autojoin='false'/>"
                    "</storage></query></iq>");
    auto marks = parse_legacy_bookmarks(iq.root());
    REQUIRE(marks.size() == 3);
    CHECK(marks[0].room == "council@conference.underhill.org");
    CHECK(marks[0].name == "Council of Oberon");
    CHECK(marks[0].autojoin);
    CHECK(marks[0].nick == "Puck");
    CHECK(marks[0].password == "pass");
    CHECK(marks[1].room == "other@conference.underhill.org");
    CHECK(marks[1].autojoin);
    CHECK(marks[2].room == "off@conference.underhill.org");
    CHECK_FALSE(marks[2].autojoin);
    // The new format's conference in the old place is not the old format, and vice versa.
    CHECK(parse_legacy_bookmarks(frame("<iq type='result' id='r'><query xmlns='jabber:iq:private'>"
                                       "<storage xmlns='storage:bookmarks'><conference xmlns='urn:xmpp:bookmarks:1' jid='a@b'/>"
                                       "</storage></query></iq>").root())
              .empty());
    CHECK(parse_legacy_bookmarks(frame("<iq type='result' id='r'><query xmlns='jabber:iq:private'/></iq>").root()).empty());
    CHECK(parse_legacy_bookmarks(frame("<iq type='result' id='r'><query xmlns='jabber:iq:private'>"
                                       "<storage xmlns='storage:rosternotes'/></query></iq>").root())
              .empty());
}
