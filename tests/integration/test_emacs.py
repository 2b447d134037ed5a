"""contrib/emacs (stanza.el) against the real daemon, a real Prosody and a slixmpp peer.

The tests themselves are ERT tests (contrib/emacs/test/stanza-test.el, and
stanza-test-fake.el with a fake daemon; their helpers in stanza-test-lib.el) run by
`emacs -Q --batch`; this file sets the scene and plays the other side:

- Prosody (with MUC) and stanzad with alice as account "home"; bob, a slixmpp peer on
  alice's roster (group Friends, mutual subscription) that answers receipts.
- A control socket (a Unix socket in the test dir): the ERT side writes one JSON array
  per line, ["command", args...], and reads one JSON object per line, {"ok": true,
  "value": ...} or {"ok": false, "error": "..."}. Commands run on the main thread (the
  harness spawns children only from there): the peer sends and waits for messages, the
  daemon is stopped and started again, a throwaway JSON client checks what is stored.
- Emacs gets the paths in $STANZA_TEST_SOCKET and $STANZA_TEST_CTL (and the peer and
  room in $STANZA_TEST_PEER, $STANZA_TEST_ROOM); its output is echoed with an [emacs]
  prefix; the test passes when every ERT test passed (exit status 0).

Needs emacs (Debian's emacs-nox, 28 or later).
"""

import itertools
import json
import os
import select
import shutil
import socket
import tempfile
import time
from pathlib import Path

import harness
from harness import REPO, JsonClient, JsonlTest, LineReader, rx_listening

EMACS_DIR = REPO / "contrib" / "emacs"
ROOM = "lounge@conference.localhost"
BOB = "bob@localhost"
ALICE = "alice@localhost"
TIMEOUT = 150  # the whole ERT run; it takes about 30 s


class CommandError(Exception):
    pass


class EmacsModeTest(JsonlTest):
    PROSODY_OPTIONS = {"muc": True}

    def befriend(self):
        """bob on alice's roster as "Bob" in Friends, subscribed both ways, before the
        daemon starts (slixmpp approves and asks back by itself). Returns bob."""
        alice = self.peer("alice", presence=False)
        bob = self.peer("bob")
        alice.roster_set(BOB, name="Bob", groups=["Friends"])
        for p in (alice, bob):
            p.roster_get()  # "interested": Prosody sends subscription answers only then
        alice.send_presence(to=BOB, ptype="subscribe")

        def subscription():
            q = alice.roster_get().find(f"{{{harness.ROSTER_NS}}}query")
            items = q.findall(f"{{{harness.ROSTER_NS}}}item") if q is not None else []
            return next((i.get("subscription") for i in items if i.get("jid") == BOB), None)

        def both():
            state = subscription()
            if state == "to":  # bob asked back (alice is not available: answer by hand)
                alice.send_presence(to=BOB, ptype="subscribed")
            return state == "both"

        harness.poll_until(both, 10, "bob subscribed both ways on alice's roster",
                           lambda: f"subscription: {subscription()}")
        alice.close()
        return bob

    def control_path(self) -> Path:
        path = self.tmp / "ctl.sock"
        if len(str(path).encode()) < 100:
            return path
        short = Path(tempfile.mkdtemp(prefix="stanza-ctl-"))
        self.addCleanup(shutil.rmtree, short, True)
        return short / "ctl.sock"

    # -- commands of the ERT side
    def command(self, argv: list):
        name, args = argv[0], argv[1:]
        bob = self.bob
        if name == "peer-send":            # [body]: bob -> alice (bare JID), chat
            return bob.send_message(ALICE, args[0])
        if name == "peer-wait":            # [body]: bob has received it
            m = bob.wait_message(body=args[0], timeout=20)
            return {"from": m.from_, "type": m.type, "id": m.id}
        if name == "peer-count":           # [body]: how often bob has received it
            return len(bob.received(body=args[0]))
        if name == "peer-jid":
            return bob.full_jid
        if name == "stored":               # [body]: the daemon has stored a message event
            c = JsonClient(self.d.socket_path, name=f"probe-{next(self.probes)}")
            try:                          # a name that never acks holds nothing back
                c.hello(c.name, since=0)
                c.wait_event("message", body=args[0], timeout=20)
            finally:
                c.close()
            return True
        if name == "daemon-stop":
            rc = self.d.stop()
            if rc != 0:
                raise CommandError(f"stanzad exited with {rc} on SIGTERM")
            return True
        if name == "daemon-start":
            config, sock = self.d.config, self.d.socket_path
            self.d = self.start_stanzad(config, "stanzad")
            self.d.socket_path, self.d.config = sock, config
            self.d.wait_for(rx_listening(self.d.socket_path), timeout=10)
            self.wait_online(self.d, "home", timeout=20)
            return True
        if name == "peer-muc-join":        # [room, nick]
            return bob.muc_join(args[0], args[1]).nick
        if name == "peer-muc-send":        # [room, body]
            return bob.muc_send(args[0], args[1])
        if name == "peer-wait-room":       # [room, body]: bob got it from the room
            m = bob.wait_message(lambda m: m.from_.split("/")[0] == args[0]
                                 and m.body == args[1], timeout=20)
            return m.from_
        if name == "peer-wait-subject":    # [room, subject]
            m = bob.wait_message(lambda m: m.from_.split("/")[0] == args[0]
                                 and m.subject == args[1], timeout=20)
            return m.from_
        if name == "peer-wait-left":       # [room, nick]: the room says nick left
            p = bob.wait_presence(lambda p: p.bare == args[0] and p.nick == args[1]
                                  and p.type == "unavailable", timeout=20)
            return p.from_
        raise CommandError(f"unknown command {name!r}")

    def answer(self, line: bytes) -> bytes:
        try:
            argv = json.loads(line)
            value = self.command(argv)
            reply = {"ok": True, "value": value}
        except Exception as e:  # the ERT side reports it as the test's failure
            harness._say("[control] ", f"{line[:200]!r} failed: {e!r}")
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        return json.dumps(reply).encode() + b"\n"

    def serve(self, server: socket.socket, emacs: LineReader) -> None:
        """Answer the ERT side's commands until Emacs exits."""
        conns: "dict[socket.socket, bytearray]" = {}
        deadline = time.monotonic() + TIMEOUT
        try:
            while emacs.proc.poll() is None:
                if time.monotonic() > deadline:
                    self.fail(f"the ERT run did not finish within {TIMEOUT}s")
                ready, _, _ = select.select([server, *conns], [], [], 0.2)
                for s in ready:
                    if s is server:
                        conn, _ = server.accept()
                        conns[conn] = bytearray()
                        continue
                    data = s.recv(1 << 16)
                    if not data:
                        conns.pop(s).clear()
                        s.close()
                        continue
                    buf = conns[s]
                    buf += data
                    while b"\n" in buf:
                        line, _, rest = bytes(buf).partition(b"\n")
                        buf[:] = rest
                        if line.strip():
                            reply = self.answer(line)
                            try:
                                s.sendall(reply)
                            except OSError as e:  # Emacs went away: its exit says why
                                harness._say("[control] ", f"cannot answer: {e}")
                                break
        finally:
            for s in conns:
                s.close()

    def test_emacs_mode(self):
        emacs = shutil.which("emacs")
        if emacs is None:
            self.fail("emacs is not installed (Debian: apt-get install emacs-nox)")
        self.bob = self.befriend()
        self.bob.answer_receipts()
        self.probes = itertools.count(1)
        self.d = self.start_daemon()

        ctl = self.control_path()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(server.close)
        server.bind(str(ctl))
        server.listen(4)

        home = self.tmp / "emacs-home"
        home.mkdir()
        env = {"STANZA_TEST_SOCKET": str(self.d.socket_path), "STANZA_TEST_CTL": str(ctl),
               "STANZA_TEST_PEER": BOB, "STANZA_TEST_ROOM": ROOM, "HOME": str(home),
               "TZ": os.environ.get("TZ", "UTC")}
        # SIGPIPE ignored, as in an interactive Emacs: a batch Emacs keeps the default
        # action and dies when it writes to a socket the daemon has just closed (before
        # it has read the end of file). stanza-proto reads before it writes, which
        # narrows that window but cannot close it.
        emacs_proc = LineReader(
            ["/bin/sh", "-c", "trap '' PIPE; exec \"$0\" \"$@\"",
             emacs, "-Q", "--batch", "-L", EMACS_DIR, "-l", "ert",
             "-l", EMACS_DIR / "test" / "stanza-test.el",
             "-l", EMACS_DIR / "test" / "stanza-test-fake.el",
             "-f", "ert-run-tests-batch-and-exit"],
            env=env, name="emacs", cwd=self.tmp)
        self.addCleanup(emacs_proc.kill)
        started = time.monotonic()
        self.serve(server, emacs_proc)
        rc = emacs_proc.terminate()
        harness._say("[emacs] ", f"ERT run took {time.monotonic() - started:.1f}s")
        out = "\n".join(emacs_proc.lines + emacs_proc.err_lines)
        self.assertEqual(rc, 0, "ERT tests failed (the [emacs] lines above say which)")
        self.assertRegex(out, r"Ran \d+ tests, \d+ results as expected, 0 unexpected")


if __name__ == "__main__":
    harness.main()
