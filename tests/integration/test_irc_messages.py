"""Messages through the IRC front end, with a real Prosody and bob as a slixmpp peer:

- bob -> alice shows as PRIVMSG from bob's nick to the client's nick, with server-time
  (time=) and msgid= (the stored msg_id) when negotiated, without tags otherwise;
- PRIVMSG to bob's nick reaches bob once, as a chat message;
- /me as CTCP ACTION both ways ("/me waves" in XMPP); multi-line and long XMPP bodies
  become several PRIVMSG lines;
- echo to a second attached IRC client: what client A sends appears at client B as a
  PRIVMSG from the user's own nick; A with echo-message gets its echo, with the label of
  the PRIVMSG it sent as @label=...; a message sent from the JSON socket appears in both;
- a stranger (not in the roster) who writes can be answered by nick.
"""

import time

import harness
from harness import parse_stamp
from irc_client import RFC3339_MS_Z, IrcTest


class IrcMessagesTest(IrcTest):
    def setUp(self):
        super().setUp()
        self.add_to_roster("bob@localhost")

    def test_message_each_way_with_tags(self):
        d = self.start_irc_daemon()
        w = self.watch(d)
        c = self.irc(d, caps=("server-time", "message-tags"), user="alice@laptop")
        bob = self.peer("bob")

        mark = c.mark()
        t0 = time.time()
        bob.send_message("alice@localhost", "hello from xmpp", id="bob-m1")
        line = c.wait(None, "PRIVMSG", "alice", text="hello from xmpp", since=mark)
        ev = w.wait_event("message", body="hello from xmpp")
        self.assertEqual(line.nick, "bob", line.raw)
        self.assertTrue(line.source.startswith("bob!"), line.raw)
        self.assertRegex(line.tags.get("time", ""), RFC3339_MS_Z, line.raw)
        self.assertLess(abs(parse_stamp(line.tags["time"]) - t0), 5, line.raw)
        self.assertEqual(line.tags["time"], ev["stamp"], (line.raw, ev))
        self.assertEqual(line.tags.get("msgid"), ev["msg_id"], (line.raw, ev))

        # alice answers bob by nick; bob gets it once.
        bmark = bob.message_mark()
        c.send("PRIVMSG bob :hello from irc")
        m = bob.wait_message(body="hello from irc", since=bmark)
        self.assertEqual(m.type, "chat", m.xml)
        self.assertTrue(m.from_.startswith("alice@localhost/"), m.from_)
        c.send("PRIVMSG bob :second from irc")
        bob.wait_message(body="second from irc", since=bmark)
        self.assertEqual(len(bob.received(body="hello from irc", since=bmark)), 1)
        # No echo without echo-message.
        c.alive()
        self.assertEqual(c.find(None, "PRIVMSG", "bob", since=mark), [], c.recent())
        # The message arrived once at the IRC client.
        self.assertEqual(len(c.find(None, "PRIVMSG", "alice", text="hello from xmpp")), 1)

    def test_message_without_caps_has_no_tags(self):
        d = self.start_irc_daemon()
        c = self.irc(d, cap_ls=False)
        bob = self.peer("bob")
        bob.send_message("alice@localhost", "plain hello")
        line = c.wait(None, "PRIVMSG", "alice", text="plain hello")
        self.assertEqual(line.tags, {}, line.raw)
        self.assertEqual(line.nick, "bob")
        self.assertFalse(line.raw.startswith("@"), line.raw)

    def test_me_as_ctcp_action_both_ways(self):
        d = self.start_irc_daemon()
        c = self.irc(d, caps=("server-time",))
        bob = self.peer("bob")
        bob.send_message("alice@localhost", "/me waves")
        line = c.wait(None, "PRIVMSG", "alice", text="\x01ACTION waves\x01")
        self.assertEqual(line.nick, "bob")

        mark = bob.message_mark()
        c.send("PRIVMSG bob :\x01ACTION dances\x01")
        m = bob.wait_message(body="/me dances", since=mark)
        self.assertEqual(m.type, "chat")
        # Other CTCP (VERSION) is not sent to the contact as a message.
        c.send("PRIVMSG bob :\x01VERSION\x01")
        c.send("PRIVMSG bob :after the ctcp")
        bob.wait_message(body="after the ctcp", since=mark)
        self.assertEqual([x.body for x in bob.received(since=mark) if x.body],
                         ["/me dances", "after the ctcp"])

    def test_multiline_and_long_bodies_are_split(self):
        d = self.start_irc_daemon()
        c = self.irc(d, caps=("message-tags",))
        bob = self.peer("bob")
        mark = c.mark()
        bob.send_message("alice@localhost", "first line\nsecond line")
        c.wait(None, "PRIVMSG", "alice", text="second line", since=mark)
        texts = [l.text for l in c.find(None, "PRIVMSG", "alice", since=mark)]
        self.assertEqual(texts, ["first line", "second line"])

        mark = c.mark()
        long_body = "é" * 300 + " " + "word " * 200 + "end"
        bob.send_message("alice@localhost", long_body)
        c.wait(lambda l: l.text.endswith("end"), "PRIVMSG", "alice", since=mark)
        pieces = c.find(None, "PRIVMSG", "alice", since=mark)
        self.assertGreater(len(pieces), 1)
        for p in pieces:
            self.assertLessEqual(len(p.raw_bytes) - (p.raw_bytes.index(b" :") if p.tags else 0),
                                 512, "a line over 512 bytes")
        self.assertEqual("".join(p.text for p in pieces), long_body)
        # The msgid goes on the first piece only.
        self.assertIn("msgid", pieces[0].tags, pieces[0].raw)
        self.assertEqual([p for p in pieces[1:] if "msgid" in p.tags], [])

    def test_echo_to_second_client_and_echo_message_label(self):
        d = self.start_irc_daemon()
        a = self.irc(d, name="A", user="alice@a",
                     caps=("echo-message", "labeled-response", "message-tags",
                           "server-time"))
        b = self.irc(d, name="B", user="alice@b")  # no caps
        bob = self.peer("bob")

        amark, bmark, bobmark = a.mark(), b.mark(), bob.message_mark()
        a.send("@label=abc123 PRIVMSG bob :from client A")
        bob.wait_message(body="from client A", since=bobmark)
        echo = a.wait(None, "PRIVMSG", "bob", text="from client A", since=amark)
        self.assertEqual(echo.nick, "alice", echo.raw)
        self.assertEqual(echo.tags.get("label"), "abc123", echo.raw)
        self.assertIn("msgid", echo.tags, echo.raw)
        self.assertIn("time", echo.tags, echo.raw)
        other = b.wait(None, "PRIVMSG", "bob", text="from client A", since=bmark)
        self.assertEqual(other.nick, "alice", other.raw)
        self.assertEqual(other.tags, {})
        # Nothing else carries the label (labeled-response: one response).
        a.alive()
        self.assertEqual([l.raw for l in a.lines[amark:] if l.tags.get("label")], [echo.raw])

        # B sends: A sees it (from alice to bob), B gets no echo.
        amark, bmark = a.mark(), b.mark()
        b.send("PRIVMSG bob :from client B")
        bob.wait_message(body="from client B", since=bobmark)
        seen = a.wait(None, "PRIVMSG", "bob", text="from client B", since=amark)
        self.assertEqual(seen.nick, "alice", seen.raw)
        self.assertNotIn("label", seen.tags)
        b.alive()
        self.assertEqual(b.find(None, "PRIVMSG", "bob", since=bmark), [])

        # Sent from the JSON socket: both IRC clients see it.
        amark, bmark = a.mark(), b.mark()
        j = self.client(d, hello="json-front-end", replay=False)
        r = j.request("send", account="home", to="bob@localhost", body="from json",
                      type="chat", client_id="json-1")
        self.assertIs(r.get("ok"), True, r)
        a.wait(lambda l: l.nick == "alice", "PRIVMSG", "bob", text="from json", since=amark)
        b.wait(lambda l: l.nick == "alice", "PRIVMSG", "bob", text="from json", since=bmark)

        # Every message reached bob exactly once.
        bob.wait_message(body="from json", since=bobmark)
        for body in ("from client A", "from client B", "from json"):
            self.assertEqual(len(bob.received(body=body, since=bobmark)), 1, body)

    def test_labeled_response_without_echo(self):
        # labeled-response without echo-message: the PRIVMSG's label comes back as ACK.
        d = self.start_irc_daemon()
        a = self.irc(d, caps=("labeled-response", "message-tags"))
        bob = self.peer("bob")
        mark = a.mark()
        a.send("@label=x1 PRIVMSG bob :labeled")
        bob.wait_message(body="labeled")
        ack = a.wait(lambda l: l.tags.get("label") == "x1", since=mark)
        self.assertEqual(ack.command, "ACK", ack.raw)
        # A labeled PING: the PONG carries the label.
        mark = a.mark()
        a.send("@label=x2 PING tok")
        pong = a.wait(None, "PONG", since=mark)
        self.assertEqual(pong.tags.get("label"), "x2", pong.raw)

    def test_reply_to_a_stranger(self):
        # carol is not in alice's roster; she writes, and alice answers her nick.
        d = self.start_irc_daemon()
        c = self.irc(d)
        carol = self.peer("carol")
        carol.send_message("alice@localhost", "hi, I am carol")
        line = c.wait(None, "PRIVMSG", "alice", text="hi, I am carol")
        self.assertEqual(line.nick, "carol", line.raw)
        mark = c.mark()
        c.send("PRIVMSG carol :hello stranger")
        try:
            carol.wait_message(body="hello stranger", timeout=5)
        except harness.PeerError:
            c.alive()
            self.fail("a reply to the nick of a stranger who wrote did not reach them; "
                      "the client got:\n" + "\n".join(l.raw for l in c.lines[mark:]))


if __name__ == "__main__":
    harness.main()
