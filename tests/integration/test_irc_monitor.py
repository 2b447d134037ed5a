"""MONITOR (IRCv3 monitor.md) over the IRC front end, mapped onto XMPP presence:

- MONITOR + bob answers 731 while bob (a contact with a presence subscription) is offline;
- bob's slixmpp session goes online: 730 bob!bob@localhost; it goes away: AWAY (away-notify
  with extended-monitor); it goes offline: 731 bob;
- MONITOR S reports the current state, MONITOR L the list; after MONITOR - bob, bob's
  presence changes bring no 730/731 (only the &stanzad voice);
- the ISUPPORT tokens MONITOR=, TARGMAX=, CHATHISTORY=, UTF8ONLY and NETWORK=, and a
  configured [irc] server_name as the source of the server's lines.
"""

import harness
from irc_client import IrcTest

SERVER_NAME = "irc.stanzad.test"


class IrcMonitorTest(IrcTest):
    def subscribe_alice_to_bob(self):
        """alice's roster has bob with a subscription to his presence (bob approves)."""
        bob = self.peer("bob")
        alice = self.peer("alice", presence=False)
        alice.roster_set("bob@localhost")
        alice.roster_get()
        pmark = alice.presence_mark()
        alice.send_presence(to="bob@localhost", ptype="subscribe")
        alice.wait_presence(lambda p: p.type == "subscribed" and p.bare == "bob@localhost",
                            since=pmark)
        alice.close()
        bob.close()

    def test_monitor_follows_presence(self):
        self.subscribe_alice_to_bob()
        config = self.irc_config()
        config["irc"]["server_name"] = SERVER_NAME
        d = self.start_irc_daemon(config)
        c = self.irc(d, caps=("extended-monitor", "away-notify"), members=("bob",))

        isupport = " ".join(" ".join(l.params[1:-1]) for l in c.find(None, "005"))
        for token in ("MONITOR=", "TARGMAX=", "CHATHISTORY=", "UTF8ONLY", "NETWORK="):
            self.assertIn(token, isupport)
        self.assertEqual(c.find(None, "001")[0].source, SERVER_NAME)

        mark = c.mark()
        c.send("MONITOR + bob")
        off = c.wait(None, "731", since=mark)
        self.assertEqual((off.source, off.text), (SERVER_NAME, "bob"), off.raw)

        mark = c.mark()
        bob = self.peer("bob", resource="laptop")
        on = c.wait(None, "730", since=mark)
        self.assertEqual(on.text, "bob!bob@localhost", on.raw)

        mark = c.mark()
        bob.send_presence(show="away", status="lunch")
        away = c.wait(lambda l: l.nick == "bob", "AWAY", since=mark)
        self.assertIn("lunch", away.text)

        mark = c.mark()
        c.send("MONITOR S")
        self.assertEqual(c.wait(None, "730", since=mark).text, "bob!bob@localhost")
        mark = c.mark()
        c.send("MONITOR L")
        c.wait(None, "733", since=mark)
        self.assertEqual([l.text for l in c.find(None, "732", since=mark)], ["bob"])

        mark = c.mark()
        bob.close()
        self.assertEqual(c.wait(None, "731", since=mark).text, "bob")

        # Unmonitored: bob's return is a voice in &stanzad, and no 730.
        c.send("MONITOR - bob")
        mark = c.mark()
        bob = self.peer("bob", resource="phone")
        c.wait(None, "MODE", "&stanzad", "+v", "bob", since=mark)
        c.alive()
        self.assertEqual(c.find(lambda l: l.command in ("730", "731"), since=mark), [])
        bob.close()


if __name__ == "__main__":
    harness.main()
