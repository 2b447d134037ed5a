"""The control channel &stanzad and contacts as nicks (docs/irc.md):

- `help` in &stanzad (answers in the channel) and by /msg stanzad (answers in private);
  `roster` lists the contacts with nick, JID and presence; an unknown command says so;
- `add JID`: the contact joins &stanzad under its nick and gets a subscription request;
  `remove NICK`: the contact leaves &stanzad; `history NICK N`, `account list`, `status`;
  AWAY (306 / 305);
- a subscription request from a new contact arrives as a NOTICE in &stanzad, and
  `allow JID` approves it (the contact gets `subscribed`);
- contacts online are voiced in &stanzad (+v when they come, -v when they go); WHOIS of a
  contact's nick shows the JID, the account and its resources; WHOIS of no one: 401;
- nick stability: the same contact has the same nick after a daemon restart (a nick won
  in a collision, and one given with `rename`).
"""

import harness
from irc_client import IrcTest


def service_lines(c, since=0, to="&stanzad"):
    return [l.text for l in c.find(lambda l: l.nick == "stanzad", "PRIVMSG", to, since=since)]


class IrcControlTest(IrcTest):
    def control(self, c, command, until, to="&stanzad", reply_to=None):
        """Send a command to the service; wait for a service line containing `until`."""
        mark = c.mark()
        c.send(f"PRIVMSG {to} :{command}")
        c.wait(lambda l: l.nick == "stanzad" and until in l.text, "PRIVMSG",
               reply_to or to, since=mark)
        return service_lines(c, mark, reply_to or to)

    def names(self, c, chan="&stanzad"):
        mark = c.mark()
        c.send(f"NAMES {chan}")
        end = c.wait(None, "366", None, chan, since=mark)
        out = []
        for l in c.lines[mark:c.lines.index(end)]:
            if l.command == "353":
                out += l.text.split()
        return out

    def test_help_roster_add(self):
        self.add_to_roster("bob@localhost")
        d = self.start_irc_daemon()
        c = self.irc(d)
        self.assertEqual(sorted(self.names(c)), sorted(["@stanzad", "alice", "bob"]))

        lines = self.control(c, "help", "status")
        text = "\n".join(lines)
        for cmd in ("roster", "add", "remove", "rename", "allow", "deny", "join", "history",
                    "account"):
            self.assertIn(cmd, text, text)
        # By /msg stanzad: the answer comes in private, to the user's nick.
        lines = self.control(c, "help", "status", to="stanzad", reply_to="alice")
        self.assertIn("roster", "\n".join(lines))

        lines = self.control(c, "roster", "contact(s)")
        self.assertTrue(any(l.startswith("bob ") and "bob@localhost" in l for l in lines), lines)
        self.assertIn("1 contact(s)", lines[-1])

        lines = self.control(c, "frobnicate", "unknown command")
        self.assertIn("frobnicate", lines[-1])

        # add: carol joins the channel under her nick and is asked for her presence.
        carol = self.peer("carol")
        pmark, mark = carol.presence_mark(), c.mark()
        self.control(c, "add carol@localhost", "carol@localhost")
        c.wait(lambda l: l.nick == "carol", "JOIN", "&stanzad", since=mark)
        carol.wait_presence(lambda p: p.type == "subscribe" and p.bare == "alice@localhost",
                            since=pmark)
        self.assertIn("carol", [n.lstrip("+@") for n in self.names(c)])
        self.assertIn("2 contact(s)", self.control(c, "roster", "contact(s)")[-1])
        # Not a JID.
        self.assertIn("not a bare JID", self.control(c, "add not/a@jid", "JID")[-1])
        # remove: carol leaves the channel.
        mark = c.mark()
        c.send("PRIVMSG &stanzad :remove carol")
        c.wait(lambda l: l.nick == "carol", "PART", "&stanzad", since=mark)
        self.assertNotIn("carol", [n.lstrip("+@") for n in self.names(c)])
        self.assertIn("1 contact(s)", self.control(c, "roster", "contact(s)")[-1])

    def test_history_account_status_away(self):
        self.add_to_roster("bob@localhost")
        d = self.start_irc_daemon()
        c = self.irc(d, caps=("server-time", "batch"))
        bob = self.peer("bob")
        for text in ("one", "two", "three"):
            bob.send_message("alice@localhost", text)
            c.wait(None, "PRIVMSG", "alice", text=text)
        # history NICK N: the last N messages with bob, as a chathistory batch.
        mark = c.mark()
        c.send("PRIVMSG &stanzad :history bob 2")
        _, body = c.batch(since=mark, kind="chathistory")
        self.assertEqual([l.text for l in body], ["two", "three"])
        lines = self.control(c, "account list", "alice@localhost")
        self.assertTrue(any("home" in l and "online" in l for l in lines), lines)
        lines = self.control(c, "status", "contact(s)")
        self.assertTrue(any("home" in l for l in lines), lines)
        # AWAY sets the XMPP presence; 306 / 305.
        mark = c.mark()
        c.send("AWAY :at lunch")
        c.wait(None, "306", since=mark)
        c.send("AWAY")
        c.wait(None, "305", since=mark)

    def test_subscription_request_and_allow(self):
        d = self.start_irc_daemon()
        c = self.irc(d)
        carol = self.peer("carol")
        carol.manual_subscriptions()
        carol.roster_get()  # Prosody tells `subscribed` only to resources that did
        mark = c.mark()
        pmark = carol.presence_mark()
        carol.send_presence(to="alice@localhost", ptype="subscribe")
        notice = c.wait(lambda l: l.nick == "stanzad" and "carol@localhost" in l.text,
                        "NOTICE", "&stanzad", since=mark)
        self.assertIn("allow carol@localhost", notice.text)
        self.control(c, "allow carol@localhost", "allow")
        carol.wait_presence(lambda p: p.type == "subscribed" and p.bare == "alice@localhost",
                            since=pmark)

    def test_whois_and_voice(self):
        # alice is subscribed to bob's presence (bob's slixmpp approves).
        bob = self.peer("bob")
        alice = self.peer("alice", presence=False)
        alice.roster_set("bob@localhost")
        alice.roster_get()  # Prosody tells `subscribed` only to resources that did
        pmark = alice.presence_mark()
        alice.send_presence(to="bob@localhost", ptype="subscribe")
        alice.wait_presence(lambda p: p.type == "subscribed" and p.bare == "bob@localhost",
                            since=pmark)
        alice.close()
        bob.close()

        d = self.start_irc_daemon()
        c = self.irc(d, caps=("away-notify",), members=("bob",))
        self.assertIn("bob", self.names(c), "bob is offline: not voiced")
        mark = c.mark()
        c.send("WHOIS bob")
        c.wait(None, "318", None, "bob", since=mark)
        whois = c.find(None, "311", None, "bob", since=mark)[0]
        self.assertEqual(whois.params[2:4], ["bob", "localhost"], whois.raw)
        self.assertIn("bob@localhost", whois.text)
        self.assertTrue(c.find(None, "312", None, "bob", since=mark))
        self.assertTrue(c.find(None, "301", None, "bob", since=mark), "offline shown as away")

        # bob comes online: voiced; WHOIS shows his resource.
        mark = c.mark()
        bob = self.peer("bob", resource="laptop")
        c.wait(None, "MODE", "&stanzad", "+v", "bob", since=mark)
        self.assertIn("+bob", self.names(c))
        mark = c.mark()
        c.send("WHOIS bob")
        c.wait(None, "318", None, "bob", since=mark)
        self.assertEqual(c.find(None, "301", None, "bob", since=mark), [])
        self.assertTrue(any("laptop" in l.text for l in c.find(None, "320", None, "bob",
                                                                 since=mark)), c.recent())
        # away: away-notify.
        mark = c.mark()
        bob.send_presence(show="away", status="lunch")
        away = c.wait(lambda l: l.nick == "bob", "AWAY", since=mark)
        self.assertIn("lunch", away.text)
        # bob leaves: devoiced.
        mark = c.mark()
        bob.close()
        c.wait(None, "MODE", "&stanzad", "-v", "bob", since=mark)

        mark = c.mark()
        c.send("WHOIS nobody")
        c.wait(None, "401", None, "nobody", since=mark)
        c.wait(None, "318", None, "nobody", since=mark)

    def test_nicks_stable_across_restart(self):
        self.add_to_roster("bob@localhost", "carol@localhost")
        d = self.start_irc_daemon()
        c = self.irc(d)
        self.assertEqual(sorted(n for n in self.names(c) if n not in ("@stanzad", "alice")),
                         ["bob", "carol"])
        # A second bob: the nick "bob" is taken, so he gets another one.
        mark = c.mark()
        self.control(c, "add bob@alpha.example", "bob@alpha.example")
        other = c.wait(lambda l: l.nick != "bob", "JOIN", "&stanzad", since=mark).nick
        self.assertTrue(other.startswith("bob") and other != "bob", other)
        # carol renamed.
        mark = c.mark()
        c.send("PRIVMSG &stanzad :rename carol caroline")
        c.wait(lambda l: l.nick == "carol", "NICK", since=mark, text="caroline")
        before = sorted(n for n in self.names(c) if n not in ("@stanzad", "alice"))
        self.assertEqual(before, sorted(["bob", other, "caroline"]))
        c.send("QUIT")
        c.wait_closed()

        # Restart: same state dir, same port.
        d.stop()
        d = self.start_irc_daemon(config=d.config)
        c = self.irc(d, name="after-restart", members=("bob", "caroline", other))
        after = sorted(n.lstrip("+") for n in self.names(c) if n not in ("@stanzad", "alice"))
        self.assertEqual(after, before)
        mark = c.mark()
        c.send(f"WHOIS {other}")
        c.wait(None, "318", since=mark)
        self.assertIn("bob@alpha.example", c.find(None, "311", since=mark)[0].text)
        bob = self.peer("bob")
        bob.send_message("alice@localhost", "same nick?")
        line = c.wait(None, "PRIVMSG", "alice", text="same nick?")
        self.assertEqual(line.nick, "bob")
        carol = self.peer("carol")
        carol.send_message("alice@localhost", "still caroline?")
        line = c.wait(None, "PRIVMSG", "alice", text="still caroline?")
        self.assertEqual(line.nick, "caroline")
        mark = c.mark()
        c.send("PRIVMSG caroline :yes")
        carol.wait_message(body="yes")


if __name__ == "__main__":
    harness.main()
