"""Rooms (XEP-0045) as IRC channels named after the room JID, with Prosody's MUC component
and bob as a slixmpp occupant:

- JOIN #room@conference.localhost creates and joins the room: JOIN echo, NAMES with the
  owner's prefixes (multi-prefix), the channel shown to a client that attaches later;
- bob's entrance and exit as JOIN / PART; his groupchat message as PRIVMSG #room...;
- PRIVMSG to the channel reaches bob once (the room's reflection is not echoed to a client
  without echo-message, but another attached client sees it from the user's nick);
- TOPIC sets the subject (bob sees it) and TOPIC shows it; WHO lists the occupants;
- PART leaves the room (bob sees alice go) and closes the channel in every client;
- JOIN of something that is not a room JID: 403; PART of a channel we are not in: 442;
- MODE shows the channel modes and refuses changes (472); KICK kicks the occupant out of
  the room; INVITE invites a contact (341, the contact gets the invitation); an
  occupant's nick change is a NICK; without multi-prefix only the highest prefix shows;
- with echo-message the room's reflection is the echo, with the PRIVMSG's label; a labeled
  JOIN gets its label back (labeled-response); with draft/read-marker, JOIN is followed
  by MARKREAD for the channel before the end of NAMES;
- a groupchat message received while detached is replayed in a chathistory batch for the
  channel.
"""

import harness
from irc_client import REPLAY_CAPS, IrcTest

ROOM = "lounge@conference.localhost"
CHAN = "#" + ROOM


class IrcRoomsTest(IrcTest):
    PROSODY_OPTIONS = {"muc": True}

    def names_of(self, c, chan, since=0):
        end = c.wait(None, "366", None, chan, since=since)
        names = []
        for l in c.lines[since:c.lines.index(end)]:
            if l.command == "353" and l.params[2] == chan:
                names += l.text.split()
        return names

    def join(self, c, chan=CHAN):
        mark = c.mark()
        c.send(f"JOIN {chan}")
        joined = c.wait(lambda l: l.nick == c.nick, "JOIN", chan, since=mark, timeout=15)
        return joined, self.names_of(c, chan, since=mark)

    def test_join_talk_topic_part(self):
        d = self.start_irc_daemon()
        c = self.irc(d, name="A", user="alice@a", caps=("multi-prefix", "server-time"))
        bob = self.peer("bob")

        _, names = self.join(c)
        mine = [n for n in names if n.lstrip("~&@%+") == "alice"]
        self.assertEqual(len(mine), 1, names)
        self.assertTrue(mine[0].startswith("~"), f"the room's creator is its owner: {names}")
        self.assertIn("@", mine[0], f"multi-prefix shows owner and moderator: {names}")
        c.alive()

        # bob comes in.
        mark = c.mark()
        entered = bob.muc_join(ROOM, "bob")
        self.assertIn("alice", [p.nick for p in entered.occupants])
        c.wait(lambda l: l.nick == "bob", "JOIN", CHAN, since=mark)
        mark = c.mark()
        c.send(f"NAMES {CHAN}")
        self.assertIn("bob", self.names_of(c, CHAN, since=mark))

        # A client attaching now is shown the channel too.
        b = self.irc(d, name="B", user="alice@b")
        b.wait(lambda l: l.nick == "alice", "JOIN", CHAN)
        b.wait(None, "366", None, CHAN)

        # bob talks; alice talks.
        mark, bmark = c.mark(), b.mark()
        bob.muc_send(ROOM, "hello room")
        line = c.wait(None, "PRIVMSG", CHAN, text="hello room", since=mark)
        self.assertEqual(line.nick, "bob", line.raw)
        self.assertIn("time", line.tags)
        b.wait(lambda l: l.nick == "bob", "PRIVMSG", CHAN, text="hello room", since=bmark)

        mark, bmark, bobmark = c.mark(), b.mark(), bob.message_mark()
        c.send(f"PRIVMSG {CHAN} :hi all")
        m = bob.wait_message(body="hi all", since=bobmark)
        self.assertEqual(m.type, "groupchat")
        self.assertEqual(m.from_.split("/")[0], ROOM)
        b.wait(lambda l: l.nick == "alice", "PRIVMSG", CHAN, text="hi all", since=bmark)
        c.alive()
        self.assertEqual(c.find(None, "PRIVMSG", CHAN, text="hi all", since=mark), [],
                         "the room's reflection echoed to a client without echo-message")
        self.assertEqual(len(bob.received(body="hi all", since=bobmark)), 1)

        # /me in a room.
        bobmark = bob.message_mark()
        c.send(f"PRIVMSG {CHAN} :\x01ACTION waves\x01")
        bob.wait_message(body="/me waves", since=bobmark)

        # TOPIC: alice (the owner) sets the subject, bob sees it, the channel shows it.
        mark, bobmark = c.mark(), bob.message_mark()
        c.send(f"TOPIC {CHAN} :the new topic")
        bob.wait_message(lambda x: x.subject == "the new topic", since=bobmark)
        topic = c.wait(None, "TOPIC", CHAN, text="the new topic", since=mark)
        self.assertEqual(topic.nick, "alice", topic.raw)
        mark = c.mark()
        c.send(f"TOPIC {CHAN}")
        c.wait(None, "332", None, CHAN, text="the new topic", since=mark)
        # bob (a participant) may not: the room refuses, and the topic stays.
        bobmark = bob.message_mark()
        bob.send_raw(f"<message to='{ROOM}' type='groupchat' id='bob-subj'>"
                     f"<subject>bob's topic</subject></message>")
        bob.wait_message(lambda x: x.type == "error" and x.id == "bob-subj", since=bobmark)
        mark = c.mark()
        c.send(f"TOPIC {CHAN}")
        c.wait(None, "332", None, CHAN, text="the new topic", since=mark)

        # WHO: both occupants.
        mark = c.mark()
        c.send(f"WHO {CHAN}")
        c.wait(None, "315", None, CHAN, since=mark)
        who = {l.params[5] for l in c.find(None, "352", None, CHAN, since=mark)}
        self.assertEqual(who, {"alice", "bob"})

        # bob leaves; alice parts.
        mark = c.mark()
        bob.muc_leave(ROOM, "bob")
        c.wait(lambda l: l.nick == "bob", "PART", CHAN, since=mark)
        mark, bmark = c.mark(), b.mark()
        bob.muc_join(ROOM, "bob")
        c.wait(lambda l: l.nick == "bob", "JOIN", CHAN, since=mark)
        pmark = bob.presence_mark()
        c.send(f"PART {CHAN} :bye now")
        c.wait(lambda l: l.nick == "alice", "PART", CHAN, since=mark, timeout=15)
        b.wait(lambda l: l.nick == "alice", "PART", CHAN, since=bmark, timeout=15)
        bob.wait_presence(lambda p: p.bare == ROOM and p.type == "unavailable"
                          and p.nick != "bob", since=pmark)
        # The channel is gone: sending to it is refused.
        mark = c.mark()
        c.send(f"PRIVMSG {CHAN} :anyone?")
        c.wait(lambda l: l.command in ("403", "404", "442"), since=mark)

    def test_bad_channel_commands(self):
        d = self.start_irc_daemon()
        c = self.irc(d)
        for chan in ("#not-a-jid@", "#", "#a@b/c"):
            mark = c.mark()
            c.send(f"JOIN {chan}")
            c.wait(None, "403", None, chan, since=mark)
        mark = c.mark()
        c.send(f"PART {CHAN}")
        c.wait(None, "442", None, CHAN, since=mark)
        mark = c.mark()
        c.send(f"TOPIC {CHAN} :x")
        c.wait(None, "442", None, CHAN, since=mark)
        c.alive()

    def test_occupant_message_and_room_history(self):
        # A room joined from IRC: the message bob sent is in CHATHISTORY for the channel.
        d = self.start_irc_daemon()
        c = self.irc(d, caps=("batch", "server-time", "message-tags", "draft/chathistory"))
        bob = self.peer("bob")
        self.join(c)
        bob.muc_join(ROOM, "bob")
        mark = c.mark()
        bob.muc_send(ROOM, "for the record")
        live = c.wait(None, "PRIVMSG", CHAN, text="for the record", since=mark)
        mark = c.mark()
        c.send(f"CHATHISTORY LATEST {CHAN} * 10")
        start, body = c.batch(since=mark, kind="chathistory")
        self.assertEqual(start.params[2:], [CHAN])
        got = [l for l in body if l.text == "for the record"]
        self.assertEqual(len(got), 1, body)
        self.assertEqual(got[0].nick, "bob")
        self.assertEqual(got[0].tags.get("msgid"), live.tags.get("msgid"))

    def test_mode_kick_invite_nick(self):
        self.add_to_roster("carol@localhost")
        d = self.start_irc_daemon()
        c = self.irc(d)  # no multi-prefix: one prefix each
        bob = self.peer("bob")
        carol = self.peer("carol")
        _, names = self.join(c)
        self.assertIn("~alice", names, "the owner's highest prefix alone")
        bob.muc_join(ROOM, "bob")
        c.wait(lambda l: l.nick == "bob", "JOIN", CHAN)

        mark = c.mark()
        c.send(f"MODE {CHAN}")
        c.wait(None, "324", None, CHAN, since=mark)
        c.send(f"MODE {CHAN} +m")
        c.wait(None, "472", since=mark)

        # bob changes his nick in the room.
        mark = c.mark()
        bob.muc_nick(ROOM, "robert")
        c.wait(lambda l: l.nick == "bob", "NICK", "robert", since=mark)
        mark = c.mark()
        c.send(f"NAMES {CHAN}")
        names = self.names_of(c, CHAN, since=mark)
        self.assertIn("robert", names)
        self.assertNotIn("bob", names)

        # INVITE carol.
        mark, cmark = c.mark(), carol.message_mark()
        c.send(f"INVITE carol {CHAN}")
        c.wait(None, "341", None, "carol", CHAN, since=mark)
        # A mediated (XEP-0045 §7.8.2, from the room) or direct (XEP-0249) invitation.
        inv = carol.wait_message(lambda m: ROOM in m.xml and ("muc#user" in m.xml or
                                                               "jabber:x:conference" in m.xml),
                                 since=cmark)
        self.assertIn(ROOM, inv.xml)

        # KICK robert (alice moderates the room she created).
        mark, pmark = c.mark(), bob.presence_mark()
        c.send(f"KICK {CHAN} robert :out you go")
        c.wait(None, "KICK", CHAN, "robert", since=mark)
        gone = bob.wait_presence(lambda p: p.bare == ROOM and p.type == "unavailable"
                                 and p.self_presence, since=pmark)
        self.assertIn(307, gone.muc_codes, gone)
        mark = c.mark()
        c.send(f"KICK {CHAN} nobody")
        c.wait(None, "441", since=mark)

    def test_echo_message_in_a_room(self):
        d = self.start_irc_daemon()
        e = self.irc(d, name="E", user="alice@e",
                     caps=("echo-message", "labeled-response", "message-tags"))
        bob = self.peer("bob")
        self.join(e)
        bob.muc_join(ROOM, "bob")
        mark, bobmark = e.mark(), bob.message_mark()
        e.send(f"@label=r1 PRIVMSG {CHAN} :echo me")
        bob.wait_message(body="echo me", since=bobmark)
        echo = e.wait(None, "PRIVMSG", CHAN, text="echo me", since=mark)
        self.assertEqual(echo.nick, "alice", echo.raw)
        self.assertEqual(echo.tags.get("label"), "r1", echo.raw)
        e.alive()
        self.assertEqual(len(e.find(None, "PRIVMSG", CHAN, text="echo me", since=mark)), 1)

    def test_labeled_join_and_markread(self):
        d = self.start_irc_daemon()
        c = self.irc(d, caps=("labeled-response", "message-tags", "batch",
                              "draft/read-marker"))
        mark = c.mark()
        c.send(f"@label=j1 JOIN {CHAN}")
        c.wait(lambda l: l.nick == "alice", "JOIN", CHAN, since=mark, timeout=15)
        end = c.wait(None, "366", None, CHAN, since=mark)
        c.alive()
        lines = c.lines[mark:]
        markread = [l for l in c.lines[mark:c.lines.index(end)] if l.command == "MARKREAD"]
        labeled = [l for l in lines if l.tags.get("label") == "j1"]
        problems = []
        if not labeled:
            problems.append("no line carries the JOIN's label j1 (labeled-response: the "
                            "response, or an ACK, MUST carry it)")
        if not any(l.params[:1] == [CHAN] and (l.params[1:] == ["*"] or
                   l.params[1].startswith("timestamp=")) for l in markread):
            problems.append(f"no MARKREAD {CHAN} * before 366 (read-marker)")
        self.assertEqual(problems, [], "\n".join(l.raw for l in lines))

    def test_room_message_replayed_after_reattach(self):
        d = self.start_irc_daemon()
        w = self.watch(d)
        bob = self.peer("bob")
        c1 = self.irc(d, name="r1", user="alice@roomer", caps=REPLAY_CAPS)
        self.join(c1)
        bob.muc_join(ROOM, "bob")
        bob.muc_send(ROOM, "marker")
        c1.wait(None, "PRIVMSG", CHAN, text="marker")
        for p in c1.find(None, "PING"):
            c1.send(f"PONG :{p.text}")
        c1.alive()
        c1.send("QUIT")
        c1.wait_closed()

        bob.muc_send(ROOM, "said while you were away")
        w.wait_event("message", body="said while you were away")
        c2 = self.irc(d, name="r2", user="alice@roomer", caps=REPLAY_CAPS)
        c2.wait(lambda l: l.nick == "alice", "JOIN", CHAN)
        start, body = c2.batch(kind="chathistory")
        self.assertEqual(start.params[2:], [CHAN], start.raw)
        texts = [l.text for l in body if l.text != "marker"]
        self.assertEqual(texts, ["said while you were away"], body)
        self.assertEqual([l.nick for l in body if l.text != "marker"], ["bob"])
        self.assertIn("time", body[-1].tags)


if __name__ == "__main__":
    harness.main()
