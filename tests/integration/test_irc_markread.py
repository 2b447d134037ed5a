"""MARKREAD (IRCv3 draft/read-marker) over the IRC front end: one read marker per
conversation, shared by every front end:

- MARKREAD bob (get) answers `*` while nothing is marked;
- MARKREAD bob timestamp=T (set) answers with T and is sent to the user's other IRC client
  with draft/read-marker (and shows on the JSON socket as a read-marker event);
- a set with an older timestamp is ignored: the answer carries the stored one;
- bad requests: FAIL MARKREAD.
"""

import harness
from irc_client import IrcTest

CAPS = ("draft/read-marker", "server-time", "message-tags")


class IrcMarkreadTest(IrcTest):
    def test_markread_shared(self):
        self.add_to_roster("bob@localhost")
        d = self.start_irc_daemon()
        w = self.watch(d)
        a = self.irc(d, name="A", user="alice@a", caps=CAPS)
        b = self.irc(d, name="B", user="alice@b", caps=CAPS)
        bob = self.peer("bob")
        times = []
        for text in ("m1", "m2"):
            bob.send_message("alice@localhost", text)
            times.append(a.wait(None, "PRIVMSG", "alice", text=text).tags["time"])
        t1, t2 = times

        mark = a.mark()
        a.send("MARKREAD bob")
        got = a.wait(None, "MARKREAD", "bob", since=mark)
        self.assertEqual(got.params[1:], ["*"], got.raw)

        mark, bmark = a.mark(), b.mark()
        a.send(f"MARKREAD bob timestamp={t2}")
        got = a.wait(None, "MARKREAD", "bob", since=mark)
        self.assertEqual(got.params[1:], [f"timestamp={t2}"], got.raw)
        other = b.wait(None, "MARKREAD", "bob", since=bmark)
        self.assertEqual(other.params[1:], [f"timestamp={t2}"], other.raw)
        ev = w.wait_event("read-marker")
        self.assertEqual((ev.get("peer"), ev.get("read_until")), ("bob@localhost", t2), ev)

        # Older: ignored, the stored one comes back.
        mark = a.mark()
        a.send(f"MARKREAD bob timestamp={t1}")
        got = a.wait(None, "MARKREAD", "bob", since=mark)
        self.assertEqual(got.params[1:], [f"timestamp={t2}"], got.raw)
        mark = b.mark()
        b.send("MARKREAD bob")
        got = b.wait(None, "MARKREAD", "bob", since=mark)
        self.assertEqual(got.params[1:], [f"timestamp={t2}"], got.raw)

        for bad in ("MARKREAD nosuchnick *", "MARKREAD bob yesterday", "MARKREAD bob *"):
            mark = a.mark()
            a.send(bad)
            fail = a.wait(lambda l: l.command in ("FAIL", "461"), since=mark)
            if fail.command == "FAIL":
                self.assertEqual(fail.params[0], "MARKREAD", fail.raw)
            a.alive()


if __name__ == "__main__":
    harness.main()
