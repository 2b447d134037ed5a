"""A real IRC client: ERC, the IRC client that comes with Emacs (Debian's emacs-nox 28.2,
ERC 5.4), in `emacs -Q --batch`, against stanzad's IRC listener, with a real Prosody and
bob as a slixmpp peer on alice's roster.

ERC's side is test_irc_erc.el: it connects the way a user's ERC does (PASS, user name
alice@erc through `erc-email-userid`) and says on stderr what its buffers show, one
`ERC-...` line per step; this file plays bob and answers each `ERC-STEP NAME` by
creating go-NAME in the test dir once bob has done his part:

- ERC connects once (the daemon learns the client name alice@erc) and quits;
- bob writes to alice twice while ERC is away, once with a XEP-0203 delay stamp an hour
  and some back; ERC connects again and shows both in bob's query. ERC 5.4 does not
  negotiate capabilities (no CAP LS, so no server-time): the daemon puts the message's
  own time in front of the text as `[HH:MM] `, and for the delayed one that is the
  stamp's time;
- ERC sends a line typed in bob's query: bob receives it once, as a chat message with an
  origin-id;
- bob's next message is live, after the replay: ERC shows it, and the replayed ones once
  each; a line alice sends from the JSON socket is in bob's query, from her nick.

Waits: Emacs's stderr is read line by line (harness.LineReader); ERC waits on the test's
files with a short poll while it runs its connection (accept-process-output).
"""

import datetime
import secrets
import shutil
import unittest

import harness
from irc_client import IRC_PASSWORD, IrcTest

EMACS = shutil.which("emacs")
HERE = harness.HERE
BOB = "bob@localhost"
ALICE = "alice@localhost"


def delayed_message(to: str, body: str, stamp: str, msg_id: str) -> str:
    return (f"<message to='{to}' type='chat' id='{msg_id}'><body>{body}</body>"
            f"<delay xmlns='urn:xmpp:delay' stamp='{stamp}'/></message>")


@unittest.skipUnless(EMACS, "emacs is not installed (apt-get install -y emacs-nox): "
                            "no ERC test")
class ErcTest(IrcTest):
    def shows(self, emacs: harness.LineReader, text: str, since: int = 0) -> "list[tuple]":
        """The (buffer, line) pairs ERC reported for `text` (ERC-SHOWS lines)."""
        out = []
        for l in emacs.err_lines[since:]:
            if l.startswith("ERC-SHOWS ") and text in l:
                buffer, _, line = l[len("ERC-SHOWS "):].partition("\t")
                out.append((buffer, line))
        return out

    def step(self, emacs: harness.LineReader, name: str, since: int = 0,
             timeout: float = 30) -> int:
        emacs.wait_line(rf"^ERC-STEP {name}$|^ERC-FAIL ", timeout, since=since, stream="err")
        failed = [l for l in emacs.err_lines[since:] if l.startswith("ERC-FAIL ")]
        self.assertEqual(failed, [], "ERC failed (the [emacs stderr] lines say why)")
        return emacs.mark("err")

    def go(self, name: str) -> None:
        (self.tmp / f"go-{name}").touch()

    def test_erc_replay_and_send(self):
        tok = secrets.token_hex(3)
        self.add_to_roster(BOB)
        d = self.start_irc_daemon()
        bob = self.peer("bob")
        watch = self.watch(d)
        home = self.tmp / "emacs-home"
        home.mkdir()
        emacs = harness.LineReader(
            [EMACS, "-Q", "--batch", "-l", HERE / "test_irc_erc.el"],
            env={"ERC_TEST_DIR": str(self.tmp), "ERC_TEST_PORT": str(d.irc_port),
                 "ERC_TEST_PASSWORD": IRC_PASSWORD, "ERC_TEST_TOKEN": tok,
                 "HOME": str(home), "TZ": "UTC"},
            name="emacs", cwd=self.tmp)
        self.addCleanup(emacs.kill)

        # 1. ERC was connected once and has quit: the daemon has dropped that client.
        mark = self.step(emacs, "registered")
        d.wait_for(r"irc client \d+ \(alice\): ", timeout=10)

        # 2. bob writes while ERC is away; the watcher shows both stored.
        then = (datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
                - datetime.timedelta(hours=1, minutes=7))
        wmark = watch.mark()
        bob.send_message(ALICE, f"while away {tok}")
        bob.send_raw(delayed_message(ALICE, f"written earlier {tok}",
                                     then.strftime("%Y-%m-%dT%H:%M:%SZ"), f"dl-{tok}"))
        live = watch.wait_event("message", body=f"while away {tok}", since=wmark, timeout=15)
        watch.wait_event("message", body=f"written earlier {tok}", since=wmark, timeout=15)
        self.go("registered")

        # 3. ERC is back and showed the replay, in bob's query, each with the time of the
        # message in front ([HH:MM], UTC: ERC asked for no server-time).
        mark = self.step(emacs, "replayed", since=mark)
        replayed = self.shows(emacs, f"while away {tok}")
        self.assertEqual([b for b, _ in replayed], ["bob"], replayed)
        self.assertRegex(replayed[0][1],
                         rf"<bob> \[{live['stamp'][11:16]}\] while away {tok}\b")
        earlier = self.shows(emacs, f"written earlier {tok}")
        self.assertEqual([b for b, _ in earlier], ["bob"], earlier)
        self.assertRegex(earlier[0][1], rf"<bob> \[{then:%H:%M}\] written earlier {tok}\b")
        self.go("replayed")

        # 4. What ERC sent from bob's query reaches bob, once.
        bmark = bob.message_mark()
        mark = self.step(emacs, "sent", since=mark)
        m = bob.wait_message(body=f"sent from erc {tok}", since=bmark, timeout=15)
        self.assertEqual(m.type, "chat", m.xml)
        self.assertTrue(m.from_.startswith(ALICE + "/"), m.from_)
        self.assertTrue(m.origin_id, m.xml)
        stored = watch.wait_event("message", body=f"sent from erc {tok}", outgoing=True,
                                  timeout=10)
        self.assertEqual(m.origin_id, stored["msg_id"], m.xml)
        sent = self.shows(emacs, f"sent from erc {tok}")
        self.assertEqual([b for b, _ in sent], ["bob"], sent)
        self.assertRegex(sent[0][1], rf"<alice> sent from erc {tok}\b")

        # 5. A live message after the replay; the replayed ones are there once each.
        bob.send_message(ALICE, f"live after the replay {tok}")
        watch.ok("send", account="home", to=BOB, body=f"from the json socket {tok}",
                 type="chat")
        self.go("sent")
        self.step(emacs, "done", since=mark)
        live_shown = self.shows(emacs, f"live after the replay {tok}")
        self.assertEqual([b for b, _ in live_shown], ["bob"], live_shown)
        # What alice sent from the JSON socket: in bob's query, from her nick.
        other = self.shows(emacs, f"from the json socket {tok}")
        self.assertEqual([b for b, _ in other], ["bob"], other)
        self.assertRegex(other[0][1], rf"<alice> from the json socket {tok}\b")
        counts = [l for l in emacs.err_lines if l.startswith("ERC-COUNT ")]
        self.assertEqual(counts, [f"ERC-COUNT 1\twhile away {tok}",
                                  f"ERC-COUNT 1\twritten earlier {tok}"])
        self.assertEqual(emacs.proc.wait(10), 0)
        self.assertEqual(len(bob.received(body=f"sent from erc {tok}")), 1)


if __name__ == "__main__":
    harness.main()
