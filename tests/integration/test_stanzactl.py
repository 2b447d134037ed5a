"""stanzactl, the command-line front end over the JSON socket: send (argument and stdin),
status, roster, raw, tail --json; exit status 0 on success, and non-zero with one line on
stderr otherwise (1: the daemon said no, e.g. unknown-account; 2: the command line is
wrong, found before connecting; 3: no daemon to talk to). For the commands of rooms,
archives, contacts and blocking (join, history, roster add, block, ...), only what needs no
server: usage errors, and the daemon's refusals of an unknown account or a bad JID.

The binary: $STANZACTL_BIN, else ctl/stanzactl in $STANZAD_BUILD_DIR, else build/ctl/.
"""

import json
import socket
import unittest

import harness
from harness import JsonlTest, LineReader, run_stanzactl, stanzactl_bin


class StanzactlTest(JsonlTest):
    def ctl(self, d, *args, input=None, expect=0):
        p = run_stanzactl(["-s", d.socket_path, *args], input=input)
        self.assertEqual(p.returncode, expect,
                         f"stanzactl {' '.join(map(str, args))}: exit {p.returncode}\n"
                         f"stdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def assertOneErrorLine(self, p, rx):
        lines = p.stderr.splitlines()
        self.assertEqual(len(lines), 1, f"expected one line on stderr:\n{p.stderr}")
        self.assertRegex(lines[0], rx)

    def test_send_status_roster_raw(self):
        # bob on alice's roster, so `roster` has something to show.
        alice = self.peer("alice", presence=False)
        alice.raw_iq("alice@localhost", "<query xmlns='jabber:iq:roster'><item "
                     "jid='bob@localhost' name='Bob'><group>Friends</group></item></query>",
                     type="set")
        alice.close()
        d = self.start_daemon()
        bob = self.peer("bob")

        p = self.ctl(d, "send", "home", "bob@localhost", "text from ctl")
        msg_id = p.stdout.strip()
        self.assertTrue(msg_id and "\n" not in msg_id, f"expected the msg_id: {p.stdout!r}")
        self.assertEqual(bob.wait_message(body="text from ctl").origin_id, msg_id)

        p = self.ctl(d, "send", "home", "bob@localhost", "-", input="text from stdin\n")
        m = bob.wait_message(lambda m: (m.body or "").startswith("text from stdin"))
        self.assertEqual(m.body.rstrip("\n"), "text from stdin")
        self.assertEqual(m.origin_id, p.stdout.strip())

        # send --id: a retry with the same id is not sent twice (and still exits 0).
        for _ in range(2):
            p = self.ctl(d, "send", "--id", "ctl-retry-1", "home", "bob@localhost", "retried")
            self.assertEqual(p.stdout.strip(), "ctl-retry-1")
        self.ctl(d, "send", "home", "bob@localhost", "after the retry")
        bob.wait_message(body="after the retry")  # later than any second copy
        self.assertEqual(len(bob.received(origin_id="ctl-retry-1")), 1)

        # --json prints the reply as the daemon sent it.
        p = self.ctl(d, "--json", "send", "home", "bob@localhost", "json reply")
        reply = json.loads(p.stdout)
        self.assertIs(reply["ok"], True, reply)
        self.assertEqual(bob.wait_message(body="json reply").origin_id, reply["msg_id"])

        p = self.ctl(d, "status")
        row = next((l for l in p.stdout.splitlines() if l.startswith("home ")), "")
        # Online: how the account authenticated and where it is connected.
        self.assertRegex(row, r"^home\s+online\s+alice@localhost/\S+\s+\(SCRAM-SHA-1\) "
                              r"127\.0\.0\.1:\d+ \(STARTTLS\) at 127\.0\.0\.1:\d+$",
                         f"status does not show home online with its login:\n{p.stdout}")

        p = self.ctl(d, "roster", "home")
        row = next((l for l in p.stdout.splitlines() if "bob@localhost" in l), "")
        self.assertTrue("Bob" in row and "Friends" in row and "none" in row,
                        f"roster row for bob: {p.stdout!r}")

        p = self.ctl(d, "raw", "home", "<message to='bob@localhost'><body>raw</body></message>")
        bob.wait_message(body="raw")

        # The config file finds the socket too.
        p = run_stanzactl(["-c", d.config_path, "status"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("online", p.stdout)

    def test_errors_exit_non_zero_with_one_line(self):
        d = self.start_daemon()
        p = self.ctl(d, "send", "nohome", "bob@localhost", "x", expect=1)
        self.assertOneErrorLine(p, r"^stanzactl: unknown-account: ")
        self.assertEqual(p.stdout, "")

        p = self.ctl(d, "send", "home", "bob@@localhost", "x", expect=1)
        self.assertOneErrorLine(p, r"^stanzactl: bad-jid: ")

        p = self.ctl(d, "raw", "home", "<foo/>", expect=1)
        self.assertOneErrorLine(p, r"^stanzactl: bad-xml: ")

        # No daemon: nothing at the path, or a stale socket file nobody listens on.
        p = run_stanzactl(["-s", self.tmp / "nothing-here.sock", "status"])
        self.assertEqual(p.returncode, 3, p)
        self.assertOneErrorLine(p, r"^stanzactl: ")
        stale = self.tmp / "stale.sock"
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(stale))
        s.close()  # bound, never listened: connect() is refused
        p = run_stanzactl(["-s", stale, "send", "home", "bob@localhost", "x"])
        self.assertEqual(p.returncode, 3, p)
        self.assertOneErrorLine(p, r"^stanzactl: ")

    def test_tail_json_prints_events(self):
        d = self.start_daemon()
        full = self.wait_online(d, "home")
        bob = self.peer("bob")
        # tail alone prints live events only, and nothing says when it is attached: start
        # it with --since the last stored event, so what comes next is printed either way.
        last = self.client(d, hello="probe", replay=False).hello_reply["last_seq"]
        tail = LineReader([stanzactl_bin(), "-s", d.socket_path, "tail", "--json",
                           "--since", str(last)], name="stanzactl tail")
        self.addCleanup(tail.kill)
        bob.send_message(full, "for tail")
        tail.wait_line(r'"body":\s*"for tail"', timeout=10)
        tail.kill()
        for line in tail.lines:
            ev = json.loads(line)  # every line is one JSON event
            self.assertIn("event", ev, line)
        ev = next(json.loads(l) for l in tail.lines if '"for tail"' in l)
        self.assertEqual((ev["event"], ev["from"], ev["outgoing"]),
                         ("message", bob.full_jid, False))


    def test_unknown_account_and_bad_jid_in_the_older_ops(self):
        # presence and the subscription ops existed before the rooms and archives.
        d = self.start_daemon()
        for args in (["presence", "nohome", "away", "lunch"],
                     ["subscribe", "nohome", "bob@localhost"],
                     ["unsubscribe", "nohome", "bob@localhost"],
                     ["approve", "nohome", "bob@localhost"],
                     ["deny", "nohome", "bob@localhost"]):
            with self.subTest(args=args):
                p = self.ctl(d, *args, expect=1)
                self.assertOneErrorLine(p, r"^stanzactl: unknown-account: .*nohome")
                self.assertEqual(p.stdout, "")
        p = self.ctl(d, "approve", "home", "bob@@localhost", expect=1)
        self.assertOneErrorLine(p, r"^stanzactl: bad-jid: ")

    def test_unknown_account_and_bad_jid_in_the_new_ops(self):
        # Refused by the daemon before it asks the server anything.
        d = self.start_daemon()
        for args in (["join", "nohome", "room@conference.localhost"],
                     ["part", "nohome", "room@conference.localhost"],
                     ["rooms", "nohome"],
                     ["history", "nohome", "bob@localhost"],
                     ["roster", "add", "nohome", "carol@localhost"],
                     ["roster", "remove", "nohome", "carol@localhost"],
                     ["block", "nohome", "spam@localhost"],
                     ["unblock", "nohome"],
                     ["blocklist", "nohome"]):
            with self.subTest(args=args):
                p = self.ctl(d, *args, expect=1)
                self.assertOneErrorLine(p, r"^stanzactl: unknown-account: .*nohome")
                self.assertEqual(p.stdout, "")
        for args in (["join", "home", "room@conference.localhost/alice"],
                     ["history", "home", "bob@localhost/phone"],
                     ["block", "home", "bob@@localhost"],
                     ["roster", "add", "home", "bob@@localhost"]):
            with self.subTest(args=args):
                p = self.ctl(d, *args, expect=1)
                self.assertOneErrorLine(p, r"^stanzactl: bad-jid: ")
                self.assertEqual(p.stdout, "")


class StanzactlUsageTest(unittest.TestCase):
    """Command lines that are wrong exit 2 with one line, `stanzactl: PROBLEM; usage: ...`,
    before looking for the daemon: no daemon and no server are needed (the socket path
    names nothing, so a command that got as far as connecting would exit 3)."""

    def usage_error(self, *args, rx=None):
        p = run_stanzactl(["-s", "/nonexistent/stanzactl-usage-test.sock", *args])
        what = f"stanzactl {' '.join(args)}"
        self.assertEqual(p.returncode, 2, f"{what}: exit {p.returncode}\nstderr: {p.stderr}")
        self.assertEqual(p.stdout, "", what)
        lines = p.stderr.splitlines()
        self.assertEqual(len(lines), 1, f"{what}: expected one line on stderr:\n{p.stderr}")
        self.assertRegex(lines[0], r"^stanzactl: .*; usage: stanzactl ", what)
        if rx:
            self.assertRegex(lines[0], rx, what)

    def test_argument_counts(self):
        for args, rx in [
                (["join"], r"join takes 2 or 3 arguments, got 0; usage: stanzactl join "),
                (["join", "home"], r"join takes 2 or 3 arguments, got 1"),
                (["join", "home", "room@conference.localhost", "al", "ice"], r"\(quote the nick\)"),
                (["part", "home"], r"part takes 2 or 3 arguments, got 1"),
                (["part", "home", "room@conference.localhost", "bye", "now"], r"\(quote the reason\)"),
                (["rooms"], r"rooms takes 1 argument, got 0"),
                (["history", "home"], r"history takes 2 arguments, got 1"),
                (["presence"], r"presence takes at least 1 argument, got 0"),
                (["roster"], r"roster takes 1 argument, got 0"),
                (["roster", "home", "carol@localhost"], r"roster add"),
                (["roster", "add"], r"roster add takes 2 or 3 arguments, got 0 .*subcommand"),
                (["roster", "add", "home"], r"roster add takes 2 or 3 arguments, got 1"),
                (["roster", "remove", "home"], r"roster remove takes 2 arguments, got 1"),
                (["subscribe", "home"], r"subscribe takes 2 arguments"),
                (["unsubscribe", "home"], r"unsubscribe takes 2 arguments"),
                (["approve", "home"], r"approve takes 2 arguments"),
                (["deny", "home", "a@localhost", "b@localhost"], r"deny takes 2 arguments, got 3"),
                (["block", "home"], r"block takes at least 2 arguments, got 1"),
                (["unblock"], r"unblock takes at least 1 argument, got 0"),
                (["blocklist"], r"blocklist takes 1 argument, got 0")]:
            with self.subTest(args=args):
                self.usage_error(*args, rx=rx)

    def test_option_values(self):
        for args, rx in [
                (["history", "home", "bob@localhost", "-n", "0"], r"-n needs a number from 1 to 200, not '0'"),
                (["history", "home", "bob@localhost", "-n", "201"], r"-n needs a number from 1 to 200"),
                (["history", "home", "bob@localhost", "-nten"], r"-n needs a number from 1 to 200"),
                (["history", "home", "bob@localhost", "-n", "-5"], r"-n needs a number"),
                (["history", "home", "bob@localhost", "-n"], r"-n needs a value"),
                (["history", "home", "bob@localhost", "--before="], r"--before needs a non-empty value"),
                (["presence", "home", "lunch"], r"'lunch' is not a show \(online, away, chat, dnd, xa\)"),
                (["roster", "add", "home", "carol@localhost", "--no-subscribe=yes"],
                 r"--no-subscribe takes no value")]:
            with self.subTest(args=args):
                self.usage_error(*args, rx=rx)

    def test_options_of_other_commands(self):
        for args, rx in [
                (["join", "home", "room@conference.localhost", "--group", "x"], r"--group is an option of roster add"),
                (["roster", "home", "--no-subscribe"], r"--no-subscribe is an option of roster add"),
                (["roster", "add", "home", "carol@localhost", "--password", "x"],
                 r"--password is an option of join"),
                (["status", "-n", "5"], r"-n is an option of history"),
                (["tail", "--before", "a1"], r"--before is an option of history"),
                (["join", "home", "room@conference.localhost", "--since", "3"], r"--since is an option of tail")]:
            with self.subTest(args=args):
                self.usage_error(*args, rx=rx)


if __name__ == "__main__":
    harness.main()
