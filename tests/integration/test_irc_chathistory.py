"""CHATHISTORY (IRCv3 draft/chathistory) over the IRC front end, from the daemon's store:
LATEST, BEFORE, AFTER, AROUND, BETWEEN (both directions) with msgid= and timestamp= references,
TARGETS; answers are `chathistory` batches in ascending order with the same msgid and time
tags as the live lines (outgoing "self messages" included, from the user's nick), an empty
batch when there is nothing, FAIL for bad requests, and the label of a labeled request
(labeled-response) on the answer.
"""

import datetime
import time

import harness
from irc_client import IrcTest

CAPS = ("batch", "server-time", "message-tags", "draft/chathistory", "echo-message")


def shift(stamp: str, seconds: float) -> str:
    t = datetime.datetime.fromtimestamp(harness.parse_stamp(stamp) + seconds,
                                        datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class IrcChathistoryTest(IrcTest):
    def setUp(self):
        super().setUp()
        self.add_to_roster("bob@localhost", "carol@localhost")
        self.d = self.start_irc_daemon()
        self.c = self.irc(self.d, user="alice@hist", caps=CAPS)
        self.bob = self.peer("bob")
        self.carol = self.peer("carol")
        # carol first, then bob and alice: b1 b2 a1 b3 b4. Each waited for, so each has a
        # later stamp than the one before.
        self.msgs = {}
        self.receive(self.carol, "c1")
        for name in ("b1", "b2", "a1", "b3", "b4"):
            # Stamps have milliseconds: let the clock pass the last one, so that each
            # message has its own (timestamp= references must tell them apart).
            last = max(harness.parse_stamp(m.tags["time"]) for m in self.msgs.values())
            while time.time() < last + 0.003:
                time.sleep(0.001)
            if name.startswith("a"):
                self.send_to_bob(name)
            else:
                self.receive(self.bob, name)
        stamps = [self.msgs[n].tags["time"] for n in ("c1", "b1", "b2", "a1", "b3", "b4")]
        self.assertEqual(stamps, sorted(stamps))
        self.assertEqual(len(set(stamps)), len(stamps), f"two messages share a stamp: {stamps}")

    def receive(self, peer, text):
        mark = self.c.mark()
        peer.send_message("alice@localhost", text)
        self.msgs[text] = self.c.wait(None, "PRIVMSG", "alice", text=text, since=mark)

    def send_to_bob(self, text):
        mark = self.c.mark()
        self.c.send(f"PRIVMSG bob :{text}")
        self.msgs[text] = self.c.wait(None, "PRIVMSG", "bob", text=text, since=mark)
        self.bob.wait_message(body=text)

    def query(self, *args):
        mark = self.c.mark()
        self.c.send("CHATHISTORY " + " ".join(args))
        start, body = self.c.batch(since=mark)
        return start, body

    def texts(self, *args):
        start, body = self.query(*args)
        self.assertEqual(start.params[1:], ["chathistory", args[1]], start.raw)
        for line in body:
            live = self.msgs.get(line.text)
            self.assertIsNotNone(live, line.raw)
            self.assertEqual(line.tags.get("msgid"), live.tags["msgid"], line.raw)
            self.assertEqual(line.tags.get("time"), live.tags["time"], line.raw)
            self.assertEqual(line.source, live.source, line.raw)
            self.assertEqual(line.params[0], live.params[0], line.raw)
        return [l.text for l in body]

    def ref(self, name, kind="msgid"):
        tag = "msgid" if kind == "msgid" else "time"
        return f"{kind}={self.msgs[name].tags[tag]}"

    def test_latest(self):
        self.assertEqual(self.texts("LATEST", "bob", "*", "3"), ["a1", "b3", "b4"])
        self.assertEqual(self.texts("LATEST", "bob", "*", "100"), ["b1", "b2", "a1", "b3", "b4"])
        self.assertEqual(self.texts("LATEST", "bob", self.ref("b2"), "100"), ["a1", "b3", "b4"])
        self.assertEqual(self.texts("LATEST", "bob", self.ref("a1", "timestamp"), "100"),
                         ["b3", "b4"])
        self.assertEqual(self.texts("LATEST", "carol", "*", "10"), ["c1"])
        # Nick case does not matter (CASEMAPPING=ascii).
        _, body = self.query("LATEST", "BOB", "*", "1")
        self.assertEqual([l.text for l in body], ["b4"])

    def test_before_and_after(self):
        self.assertEqual(self.texts("BEFORE", "bob", self.ref("b4"), "2"), ["a1", "b3"])
        self.assertEqual(self.texts("BEFORE", "bob", self.ref("b3", "timestamp"), "10"),
                         ["b1", "b2", "a1"])
        self.assertEqual(self.texts("AFTER", "bob", self.ref("b1"), "2"), ["b2", "a1"])
        self.assertEqual(self.texts("AFTER", "bob", self.ref("a1", "timestamp"), "10"),
                         ["b3", "b4"])
        # Nothing after the last one: an empty batch, not silence.
        self.assertEqual(self.texts("AFTER", "bob", self.ref("b4"), "10"), [])
        self.assertEqual(self.texts("BEFORE", "bob", self.ref("b1"), "10"), [])
        # AROUND: a window of at most `limit` that holds the reference (the split is the
        # server's choice).
        every = ["b1", "b2", "a1", "b3", "b4"]
        around = self.texts("AROUND", "bob", self.ref("a1"), "3")
        self.assertIn("a1", around)
        self.assertLessEqual(len(around), 3)
        start = every.index(around[0])
        self.assertEqual(around, every[start:start + len(around)], "not a contiguous window")

    def test_between(self):
        self.assertEqual(self.texts("BETWEEN", "bob", self.ref("b1"), self.ref("b4"), "10"),
                         ["b2", "a1", "b3"])
        # Backwards in time: the same messages, still in ascending order.
        self.assertEqual(self.texts("BETWEEN", "bob", self.ref("b4"), self.ref("b1"), "10"),
                         ["b2", "a1", "b3"])
        # The limit counts from the first reference.
        self.assertEqual(self.texts("BETWEEN", "bob", self.ref("b1"), self.ref("b4"), "2"),
                         ["b2", "a1"])
        self.assertEqual(self.texts("BETWEEN", "bob", self.ref("b4"), self.ref("b1"), "2"),
                         ["a1", "b3"])
        self.assertEqual(self.texts("BETWEEN", "bob", self.ref("b1", "timestamp"),
                                    self.ref("b4", "timestamp"), "10"), ["b2", "a1", "b3"])
        self.assertEqual(self.texts("BETWEEN", "bob", self.ref("b1"),
                                    self.ref("b3", "timestamp"), "10"), ["b2", "a1"])

    def test_targets(self):
        c1, b4 = self.msgs["c1"].tags["time"], self.msgs["b4"].tags["time"]
        mark = self.c.mark()
        self.c.send(f"CHATHISTORY TARGETS timestamp={shift(c1, -3600)} "
                    f"timestamp={shift(b4, 3600)} 10")
        start, body = self.c.batch(since=mark)
        self.assertEqual(start.params[1:], ["draft/chathistory-targets"], start.raw)
        got = [(l.params[1], l.params[2]) for l in body if l.command == "CHATHISTORY"]
        self.assertEqual(len(body), len(got), body)
        self.assertEqual(sorted(got), sorted([("bob", b4), ("carol", c1)]), body)
        self.assertIn(got, ([("carol", c1), ("bob", b4)], [("bob", b4), ("carol", c1)]),
                      "not ordered by the time of the latest message")
        self.assertTrue(all(l.params[0] == "TARGETS" for l in body), body)
        # bob's latest message is outside this window: only carol.
        mark = self.c.mark()
        self.c.send(f"CHATHISTORY TARGETS timestamp={shift(c1, -1)} "
                    f"timestamp={self.msgs['b3'].tags['time']} 10")
        _, body = self.c.batch(since=mark)
        self.assertEqual([(l.params[1], l.params[2]) for l in body], [("carol", c1)])

    def test_errors(self):
        c = self.c
        for args, code in ((["LATEST", "nosuchnick", "*", "10"], "INVALID_TARGET"),
                           (["BEFORE", "bob", "*", "10"], "INVALID_PARAMS"),
                           (["FROB", "bob", "*", "10"], "INVALID_PARAMS"),
                           (["LATEST", "bob"], "INVALID_PARAMS"),
                           (["BEFORE", "bob", "timestamp=yesterday", "10"], "INVALID_PARAMS"),
                           (["TARGETS", "msgid=x", "msgid=y", "10"], "INVALID_PARAMS")):
            mark = c.mark()
            c.send("CHATHISTORY " + " ".join(args))
            fail = c.wait(None, "FAIL", "CHATHISTORY", since=mark)
            self.assertEqual(fail.params[1], code, f"{args}: {fail.raw}")
            c.alive()
        # An unknown msgid: a FAIL (or an empty batch), never silence.
        mark = c.mark()
        c.send("CHATHISTORY BEFORE bob msgid=no-such-id 10")
        c.wait(lambda l: (l.command == "FAIL" and l.params[:1] == ["CHATHISTORY"])
               or (l.command == "BATCH" and l.params[0].startswith("-")), since=mark)

    def test_labeled_request(self):
        # labeled-response: the answer carries the label (on the batch, or in a
        # labeled-response batch around it); no ACK for a command that has a response.
        c = self.irc(self.d, name="labeled", user="alice@labeled",
                     caps=CAPS + ("labeled-response",))
        mark = c.mark()
        c.send("@label=q1 CHATHISTORY LATEST bob * 2")
        c.wait(lambda l: l.params[:1] == ["-" + l.params[0][1:]] and l.params[0][0] == "-",
               "BATCH", since=mark)
        c.alive()
        labeled = [l for l in c.lines[mark:] if l.tags.get("label") == "q1"]
        self.assertTrue(labeled, "no line carries the label:\n" + c.recent())
        self.assertEqual([l for l in labeled if l.command == "ACK"], [],
                         "ACK for a command that has a response:\n" + c.recent())
        self.assertEqual(labeled[0].command, "BATCH", labeled[0].raw)


if __name__ == "__main__":
    harness.main()
