"""The IRC front end's connection registration and line handling (docs/irc.md; modern-irc
"Connection Registration", IRCv3 capability-negotiation, sasl-3.1, utf8-only,
standard-replies), over a raw TCP socket to the daemon's [irc] listen address:

- with caps (CAP LS 302 / REQ / END): nothing is welcomed before CAP END, then 001-005 with
  the ISUPPORT tokens CASEMAPPING, CHANTYPES, UTF8ONLY, CHATHISTORY; unknown caps NAK'd;
- without caps (PASS, NICK, USER) and with SASL PLAIN instead of PASS (900, 903);
- a wrong password (PASS or SASL) and no password are refused: 464 / 904, ERROR, closed;
- bad lines: tags only / source only (no command), a 10 KB line (417), tags over 8191
  bytes (417), invalid UTF-8 (FAIL INVALID_UTF8), an unknown command (421), commands before
  registration (451), a line split over two writes; the session answers PING after each;
- nicks: a contact's nick or the service's is refused (433), an invalid one 432; a NICK
  change in one client must not free the nick another client of the user still uses.

Messages: test_irc_messages.py. Replay: test_irc_replay.py.
"""

import base64

import harness
from irc_client import ALL_CAPS, IRC_PASSWORD, IrcTest


class IrcRegistrationTest(IrcTest):
    def assert_isupport(self, client, since=0):
        tokens = {}
        for line in client.find(None, "005", since=since):
            for t in line.params[1:-1]:  # the last parameter is the human text
                k, _, v = t.partition("=")
                tokens[k] = v
        self.assertEqual(tokens.get("CASEMAPPING"), "ascii", tokens)
        self.assertIn("#", tokens.get("CHANTYPES", ""), tokens)
        self.assertIn("&", tokens.get("CHANTYPES", ""), tokens)
        self.assertIn("UTF8ONLY", tokens)
        self.assertRegex(tokens.get("CHATHISTORY", ""), r"^\d+$", tokens)
        return tokens

    def test_registration_with_caps(self):
        d = self.start_irc_daemon()
        c = self.irc(d, register=False)
        c.send("CAP LS 302")
        c.send(f"PASS {IRC_PASSWORD}")
        c.send("NICK alice")
        c.send("USER alice@laptop 0 * :Alice")
        ls = c.wait(None, "CAP", None, "LS")
        offered = ls.text.split()
        for cap in ALL_CAPS:
            if cap != "sasl":
                self.assertIn(cap, offered, ls.raw)
        self.assertIn("sasl=PLAIN", offered, "CAP LS 302 lists sasl with its mechanisms")
        # Registration waits for CAP END: a PING answered proves NICK/USER were read.
        c.alive()
        self.assertEqual(c.find(None, "001"), [], "welcomed before CAP END")

        mark = c.mark()
        c.send("CAP REQ :server-time no-such-cap")
        nak = c.wait(None, "CAP", None, "NAK", since=mark)
        self.assertEqual(nak.text, "server-time no-such-cap")
        c.send("CAP REQ :server-time message-tags batch")
        ack = c.wait(None, "CAP", None, "ACK", since=mark)
        self.assertEqual(ack.text.split(), ["server-time", "message-tags", "batch"])
        c.send("CAP LIST")
        listed = c.wait(None, "CAP", None, "LIST", since=mark)
        self.assertTrue({"server-time", "message-tags", "batch"} <= set(listed.text.split()),
                        listed.raw)
        c.send("CAP END")
        for numeric in ("001", "002", "003", "004", "005"):
            line = c.wait(None, numeric)
            self.assertEqual(line.params[0], "alice", line.raw)
        self.assert_isupport(c)
        # The numerics come in order 001..005.
        order = [l.command for l in c.lines if l.command in ("001", "002", "003", "004", "005")]
        self.assertEqual(order[:5], ["001", "002", "003", "004", "005"], order)
        # Then the session is set up: the control channel.
        c.wait(lambda l: l.nick == "alice", "JOIN", "&stanzad")
        c.wait(None, "366", "alice", "&stanzad")
        c.alive()

    def test_registration_without_caps(self):
        d = self.start_irc_daemon()
        c = self.irc(d, register=False)
        c.send(f"PASS {IRC_PASSWORD}")
        c.send("NICK alice")
        c.send("USER alice 0 * :Alice")
        c.wait(None, "001", "alice")
        self.assert_isupport(c)
        c.wait(lambda l: l.nick == "alice", "JOIN", "&stanzad")
        pong = c.alive()
        # Without message-tags no line carries tags.
        self.assertEqual([l.raw for l in c.lines if l.tags], [])
        self.assertEqual(pong.params[-1], "alive-1")

    def test_sasl_plain_instead_of_pass(self):
        d = self.start_irc_daemon()
        c = self.irc(d, register=False)
        c.send("CAP LS 302")
        c.send("NICK alice")
        c.send("USER alice 0 * :Alice")
        c.send("CAP REQ :sasl server-time")
        c.wait(None, "CAP", None, "ACK")
        c.send("AUTHENTICATE PLAIN")
        c.wait(None, "AUTHENTICATE", "+")
        blob = base64.b64encode(f"\0alice@laptop\0{IRC_PASSWORD}".encode()).decode()
        c.send(f"AUTHENTICATE {blob}")
        logged_in = c.wait(None, "900")
        self.assertEqual(logged_in.params[0], "alice", logged_in.raw)
        self.assertIn("alice@laptop", logged_in.params, logged_in.raw)
        c.wait(None, "903")
        self.assertEqual(c.find(None, "001"), [], "welcomed before CAP END")
        c.send("CAP END")
        c.wait(None, "001", "alice")
        c.wait(lambda l: l.nick == "alice", "JOIN", "&stanzad")
        c.alive()

    def test_sasl_wrong_password_refused(self):
        d = self.start_irc_daemon()
        c = self.irc(d, register=False)
        c.send("CAP LS 302")
        c.send("NICK alice")
        c.send("USER alice 0 * :Alice")
        c.send("CAP REQ :sasl")
        c.wait(None, "CAP", None, "ACK")
        c.send("AUTHENTICATE PLAIN")
        c.wait(None, "AUTHENTICATE", "+")
        c.send("AUTHENTICATE " + base64.b64encode(b"\0alice@laptop\0wrong").decode())
        c.wait(None, "904")
        self.assertEqual(c.find(None, "903") + c.find(None, "900"), [])
        # Without a PASS either, CAP END does not let it in.
        c.send("CAP END")
        c.wait(None, "464")
        c.wait(None, "ERROR")
        c.wait_closed()
        self.assertEqual(c.find(None, "001"), [])

    def test_wrong_password_refused(self):
        d = self.start_irc_daemon()
        c = self.irc(d, register=False)
        c.send("PASS not-the-password")
        c.send("NICK alice")
        c.send("USER alice 0 * :Alice")
        c.wait(None, "464", None)
        c.wait(None, "ERROR")
        c.wait_closed()
        self.assertEqual(c.find(None, "001"), [])
        self.assertEqual(c.find(None, "JOIN"), [])

    def test_no_password_refused(self):
        d = self.start_irc_daemon()
        c = self.irc(d, register=False)
        c.send("NICK alice")
        c.send("USER alice 0 * :Alice")
        c.wait(None, "464", None)
        c.wait_closed()
        self.assertEqual(c.find(None, "001"), [])
        # The daemon still takes the next client.
        ok = self.irc(d, name="second")
        ok.alive()

    def test_nick_of_a_contact_is_refused(self):
        self.add_to_roster("bob@localhost")
        d = self.start_irc_daemon()
        self.irc(d, name="first")  # its setup gives the contacts their nicks
        c = self.irc(d, register=False)
        # A contact's nick is told only to a client that gave the password: at the end
        # of registration.
        c.send(f"PASS {IRC_PASSWORD}")
        c.send("NICK bob")
        c.send("USER alice 0 * :Alice")
        c.wait(None, "433", None, "bob")
        c.send("NICK stanzad")
        c.wait(None, "433", None, "stanzad")
        c.send("NICK 1bad")
        c.wait(None, "432", None, "1bad")
        c.send("NICK alice")
        c.wait(None, "001", "alice")
        # After registration too.
        mark = c.mark()
        c.send("NICK bob")
        c.wait(None, "433", None, "bob", since=mark)
        c.send("NICK alicia")
        c.wait(lambda l: l.nick == "alice", "NICK", "alicia", since=mark)
        c.alive()

    def test_nick_change_in_one_client_keeps_the_other_clients_nick(self):
        # Two clients as alice; one renames itself. A new contact must not get the nick
        # the other client still uses.
        d = self.start_irc_daemon()
        a = self.irc(d, name="A", user="alice@a")
        b = self.irc(d, name="B", user="alice@b")
        mark = a.mark()
        a.send("NICK al")
        a.wait(lambda l: l.nick == "alice", "NICK", "al", since=mark)
        bmark = b.mark()
        a.send("PRIVMSG &stanzad :add alice@example.org")
        joined = b.wait(lambda l: "alice@example.org" in l.source or "example.org" in l.source,
                        "JOIN", "&stanzad", since=bmark)
        self.assertNotEqual(joined.nick.lower(), "alice",
                            "a contact got the nick client B is using: " + joined.raw)

    def test_commands_before_registration(self):
        d = self.start_irc_daemon()
        c = self.irc(d, register=False)
        for i, cmd in enumerate(("JOIN #room@conference.localhost", "PRIVMSG bob :hi",
                                 "WHOIS bob", "CHATHISTORY LATEST bob * 10")):
            mark = c.mark()
            c.send(cmd)
            line = c.wait(None, "451", since=mark)
            self.assertEqual(line.params[1], cmd.split()[0], line.raw)
            c.alive(f"pre-{i}")
        # And it can still register.
        c.register()
        c.alive()

    def test_bad_lines(self):
        d = self.start_irc_daemon()
        c = self.irc(d)

        # Tags and no command; a source and no command.
        for i, line in enumerate(("@tag=value", "@a=b :alice!x@y", ":alice!x@y")):
            mark = c.mark()
            c.send(line)
            c.wait(None, "421", since=mark)
            c.alive(f"nocmd-{i}")

        # A 10 KB line: too long, one 417, the line is dropped, the session lives on.
        mark = c.mark()
        c.send("PRIVMSG stanzad :" + "x" * 10240)
        c.wait(None, "417", "alice", since=mark)
        c.alive("long")
        self.assertEqual(len(c.find(None, "417", since=mark)), 1, c.recent())
        self.assertEqual(c.find(lambda l: l.nick == "stanzad", "PRIVMSG", since=mark), [],
                         "the too-long line was acted on")

        # A line that is too long in its tags (8191 bytes max) is refused the same way.
        mark = c.mark()
        c.send("@+big=" + "y" * 9000 + " PING big")
        c.wait(None, "417", "alice", since=mark)
        c.alive("long-tags")

        # Invalid UTF-8 (UTF8ONLY): FAIL <command or *> INVALID_UTF8.
        mark = c.mark()
        c.send(b"PRIVMSG stanzad :caf\xe9 \xff\xfe")
        fail = c.wait(None, "FAIL", since=mark)
        self.assertIn(fail.params[0], ("PRIVMSG", "*"), fail.raw)
        self.assertEqual(fail.params[1], "INVALID_UTF8", fail.raw)
        c.alive("utf8")

        # An unknown command.
        mark = c.mark()
        c.send("FROBNICATE now")
        unknown = c.wait(None, "421", since=mark)
        self.assertEqual(unknown.params[:2], ["alice", "FROBNICATE"], unknown.raw)
        c.alive("unknown")

        # A line in pieces (two TCP writes, TCP_NODELAY), and two lines in one write.
        mark = c.mark()
        c.send_raw(b"PI")
        c.send_raw(b"NG :split\r\nPING :one\r\nPING :two\r\n")
        c.wait(lambda l: l.params[-1:] == ["two"], "PONG", since=mark)
        self.assertEqual([l.params[-1] for l in c.find(None, "PONG", since=mark)],
                         ["split", "one", "two"])

        # A lone LF, empty lines, and a CR LF line are fine.
        c.send_raw(b"\n\r\n   \r\nPING :lf-only\n")
        c.wait(lambda l: l.params[-1:] == ["lf-only"], "PONG")
        self.assertFalse(c.eof)


if __name__ == "__main__":
    harness.main()
