"""A real IRC client: irssi (Debian's irssi 1.4) in a tmux pane, against stanzad's IRC
listener, with a real Prosody (with MUC) and bob as a slixmpp peer on alice's roster.

irssi gets its own home with a config written by the test (IRSSI_CONFIG): it connects
with the [irc] password and the user name alice@irssi, and logs every window to files
(autolog, one file per conversation, each line written at once). The test types
commands into the pane (tmux send-keys) and reads irssi's log files:

- /msg bob: bob receives it, once, as a chat message with an origin-id;
- bob's reply is in irssi's query with bob, from bob; what alice sends from the JSON
  socket is there too, as hers;
- /join of a room bob is in: bob's groupchat message is in the channel's log, alice's
  /msg to the channel reaches bob once;
- /disconnect; bob writes to alice (once plainly, once with a XEP-0203 delay stamp an
  hour and some back) and to the room; /connect again: each is replayed once, in its
  conversation, and the delayed one at its original time (irssi asks for server-time, so
  the daemon sends `time=` and no `[HH:MM]` prefix; with show_server_time on, irssi
  shows and logs the line at that time);
- a second reconnect replays nothing again (the cursor moved on irssi's PONG): live
  messages after it arrive, and the replayed ones are still there once each; what irssi
  sent is in its windows once (it shows its own lines; no echo, no replay of them).

irssi 1.4 syncs every channel it joins (MODE, WHO, MODE b): a line typed while that is
under way was seen queued and never sent, so the test types only once irssi has logged
"Join to CHANNEL was synced".

Waits: irssi's log files are polled with a short backoff (harness.poll_until), like
Prosody's log; the daemon's log is waited on for the end of a connection. On failure the
pane (tmux capture-pane) and irssi's logs are printed. The tmux server runs in the
foreground (-D) as the test's child, on its own socket in the test dir.

Skipped (exit 0) only when irssi or tmux is not installed:
    apt-get install -y --no-install-recommends irssi tmux
"""

import datetime
import os
import secrets
import shutil
import subprocess
import unittest
from pathlib import Path
from typing import Callable, Optional

import harness
from irc_client import IRC_PASSWORD, IrcTest

IRSSI = shutil.which("irssi")
TMUX = shutil.which("tmux")
ROOM = "lounge@conference.localhost"
CHAN = "#" + ROOM
BOB = "bob@localhost"
ALICE = "alice@localhost"


# irssi's config: the network and server of docs/irc.md (connected at start, PASS with the
# [irc] password, user name alice@irssi), no pacing of commands (cmdspeed/cmdmax: irssi
# otherwise sends one line every 2.2 s after the first five), server-time shown (off by
# default in irssi 1.4: replayed lines would carry the time they were replayed), and
# autolog of every window with the time to the second.
IRSSI_CONFIG = """\
servers = (
  {{ address = "{host}"; chatnet = "stanzad"; port = "{port}"; password = "{password}";
    use_tls = "no"; autoconnect = "yes"; }}
);
chatnets = {{
  stanzad = {{ type = "IRC"; nick = "alice"; username = "alice@irssi";
    cmdspeed = "10"; cmdmax = "100"; }};
}};
settings = {{
  core = {{ real_name = "Alice"; settings_autosave = "no"; log_timestamp = "%H:%M:%S "; }};
  "fe-common/core" = {{
    autolog = "yes";
    autolog_path = "{logs}/$tag/$0.log";
    autolog_level = "all -clientcrap";
    autolog_colors = "no";
  }};
  "fe-text" = {{ show_server_time = "yes"; }};
}};
"""


class Tmux:
    """A private tmux server (its own socket in the test dir, no config file) that runs in
    the foreground (-D) as our child, so it dies with the test (PDEATHSIG) like every
    other child; the programs in its panes go with it."""

    def __init__(self, directory: Path):
        self.socket = directory / "tmux.sock"
        self.log = open(directory / "tmux.out", "wb")
        self.server = harness._spawn([TMUX, "-D", "-S", self.socket, "-f", "/dev/null"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        harness._track(self)
        harness.poll_until(lambda: self.socket.exists() or self.server.poll() is not None,
                           10, "the tmux server's socket")
        if self.server.poll() is not None:
            raise AssertionError(f"tmux exited with {self.server.returncode}: "
                                 + (directory / "tmux.out").read_text(errors="replace"))

    # The tmux commands of a test that itself runs inside tmux must not mean that one.
    ENV = {k: v for k, v in os.environ.items() if k != "TMUX"}

    def run(self, *args: str) -> str:
        r = subprocess.run([TMUX, "-S", str(self.socket), *args], capture_output=True,
                           text=True, timeout=10, env=self.ENV)
        if r.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def new_session(self, name: str, argv: "list[str]", env: "dict[str, str]") -> None:
        envs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
        self.run("new-session", "-d", "-s", name, "-x", "200", "-y", "50", *envs, "--",
                 *argv)

    def type(self, target: str, text: str) -> None:
        """Type a line into the pane and press Enter."""
        self.run("send-keys", "-t", target, "-l", text)
        self.run("send-keys", "-t", target, "Enter")

    def has_session(self, name: str) -> bool:
        return subprocess.run([TMUX, "-S", str(self.socket), "has-session", "-t", name],
                              capture_output=True, timeout=10, env=self.ENV).returncode == 0

    def capture(self, target: str) -> str:
        try:
            return self.run("capture-pane", "-p", "-t", target)
        except (AssertionError, subprocess.TimeoutExpired) as e:
            return f"(no pane: {e})"

    def kill(self) -> None:
        if self.server.poll() is None:
            try:
                self.run("kill-server")
            except (AssertionError, subprocess.TimeoutExpired):
                pass
            try:
                self.server.wait(5)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.log.close()
        harness._untrack(self)


class Irssi:
    """irssi in a tmux session, with its home (IRSSI_CONFIG) and logs in the test dir.
    type() types a line into it; log(window) is irssi's log of that window (the
    conversation's name: "bob", "#room@service", "&stanzad")."""

    def __init__(self, test: IrcTest, port: int):
        self.test = test
        self.home = test.tmp / "irssi"
        self.logs = self.home / "logs"
        self.logs.mkdir(parents=True)
        (self.home / "config").write_text(IRSSI_CONFIG.format(
            logs=self.logs, host=harness.LOOPBACK, port=port, password=IRC_PASSWORD))
        self.tmux = Tmux(test.tmp)
        test.addCleanup(self.tmux.kill)
        self.tmux.new_session("irssi", [IRSSI, f"--home={self.home}", "-n", "alice"],
                              {"TZ": "UTC", "TERM": "screen", "LANG": "C.UTF-8"})
        test.addCleanup(self.quit)

    def quit(self) -> None:
        """/quit, and wait for irssi to be gone (the tmux server reaps it) before the
        server itself is killed."""
        try:
            self.type("/quit")
            harness.poll_until(lambda: not self.tmux.has_session("irssi"), 5, "irssi to quit")
        except (AssertionError, subprocess.TimeoutExpired):
            pass  # Tmux.kill ends it anyway

    def type(self, line: str) -> None:
        self.tmux.type("irssi", line)

    def log_path(self, window: str) -> Path:
        return self.logs / "stanzad" / f"{window.lower()}.log"

    def log(self, window: str) -> str:
        p = self.log_path(window)
        return p.read_text(errors="replace") if p.exists() else ""

    def lines(self, window: str, text: str) -> "list[str]":
        """The lines of `window`'s log that contain `text`."""
        return [l for l in self.log(window).splitlines() if text in l]

    def dump(self) -> str:
        files = sorted(p for p in self.logs.rglob("*") if p.is_file())
        parts = [f"--- pane\n{self.tmux.capture('irssi')}"]
        parts += [f"--- {p.relative_to(self.logs)}\n{p.read_text(errors='replace')[-3000:]}"
                  for p in files]
        return "\n".join(parts)

    def wait(self, window: str, predicate: Callable[[str], bool], what: str,
             timeout: float = 20.0) -> str:
        def found() -> Optional[str]:
            text = self.log(window)
            return text if predicate(text) else None
        try:
            return harness.poll_until(found, timeout, what)
        except AssertionError:
            raise AssertionError(f"irssi: no {what} in {window}; what it shows:\n"
                                 + self.dump()) from None

    def explain(self, call: Callable, *args, **kwargs):
        """call(*args, **kwargs); when it fails (a peer's wait), what irssi shows too."""
        try:
            return call(*args, **kwargs)
        except AssertionError as e:
            raise AssertionError(f"{e}\nirssi shows:\n{self.dump()}") from None

    def wait_line(self, window: str, text: str, what: str, timeout: float = 20.0) -> str:
        self.wait(window, lambda t: text in t, what, timeout)
        return self.lines(window, text)[0]


def delayed_message(to: str, body: str, stamp: str, msg_id: str) -> str:
    return (f"<message to='{to}' type='chat' id='{msg_id}'><body>{body}</body>"
            f"<delay xmlns='urn:xmpp:delay' stamp='{stamp}'/></message>")


@unittest.skipUnless(IRSSI and TMUX, "irssi or tmux is not installed (apt-get install -y "
                                     "irssi tmux): no irssi test")
class IrssiTest(IrcTest):
    PROSODY_OPTIONS = {"muc": True}

    def test_irssi_message_room_reconnect_replay(self):
        tok = secrets.token_hex(3)
        self.add_to_roster(BOB)
        d = self.start_irc_daemon()
        bob = self.peer("bob")
        bob.muc_join(ROOM, "bob")
        watch = self.watch(d)
        irssi = Irssi(self, d.irc_port)

        # Registered: &stanzad is joined and synced (irssi's MODE, WHO and ban list
        # queries answered; see the module docstring).
        irssi.wait("&stanzad", lambda t: t.count("Join to &stanzad was synced") == 1,
                   "&stanzad joined and synced")

        # /msg bob: bob gets it once, a chat message with an origin-id.
        mark = bob.message_mark()
        irssi.type(f"/msg bob hello from irssi {tok}")
        m = irssi.explain(bob.wait_message, body=f"hello from irssi {tok}", since=mark,
                          timeout=15)
        self.assertEqual(m.type, "chat", m.xml)
        self.assertTrue(m.from_.startswith(ALICE + "/"), m.from_)
        # ... with the id the daemon stored it under (what its other front ends see).
        sent = watch.wait_event("message", body=f"hello from irssi {tok}", outgoing=True,
                                timeout=10)
        self.assertEqual(m.origin_id, sent["msg_id"], m.xml)

        # bob replies: irssi's query with bob shows it, from bob.
        bob.send_message(ALICE, f"reply from bob {tok}")
        line = irssi.wait_line("bob", f"reply from bob {tok}", "bob's reply")
        self.assertRegex(line, rf"^\d\d:\d\d:\d\d < ?bob> reply from bob {tok}$")
        # Our own /msg is in the same query (irssi shows what it sent itself).
        self.assertRegex(irssi.log("bob"), rf"< ?alice> hello from irssi {tok}")

        # What alice sends from another front end (the JSON socket) shows in the query as
        # hers: the daemon sends it as a PRIVMSG from alice to bob.
        watch.ok("send", account="home", to=BOB, body=f"from the json socket {tok}",
                 type="chat")
        line = irssi.wait_line("bob", f"from the json socket {tok}", "alice's other message")
        self.assertRegex(line, rf"^\d\d:\d\d:\d\d < ?alice> from the json socket {tok}$")
        bob.wait_message(body=f"from the json socket {tok}", timeout=15)

        # The room: /join, bob talks, alice talks.
        irssi.type(f"/join {CHAN}")
        irssi.wait(CHAN, lambda t: f"Join to {CHAN} was synced" in t, "the room joined and synced")
        bob.muc_send(ROOM, f"hello room {tok}")
        line = irssi.wait_line(CHAN, f"hello room {tok}", "bob's groupchat message")
        self.assertRegex(line, rf"< ?[~&@%+ ]?bob> hello room {tok}$")
        mark = bob.message_mark()
        irssi.type(f"/msg {CHAN} hi room from irssi {tok}")
        m = irssi.explain(bob.wait_message, lambda m: m.from_ == f"{ROOM}/alice",
                          body=f"hi room from irssi {tok}", since=mark, timeout=15)
        self.assertEqual(m.type, "groupchat", m.xml)
        sent = watch.wait_event("message", body=f"hi room from irssi {tok}", outgoing=True,
                                timeout=10)
        self.assertEqual(m.origin_id, sent["msg_id"], m.xml)

        # Away: /disconnect (irssi says QUIT); the daemon drops the client.
        mark_d = d.mark()
        irssi.type("/disconnect stanzad")
        d.wait_for(r"irc client \d+ \(alice\): ", timeout=10, since=mark_d)

        # While irssi is away: two chat messages (one delayed by its sender, XEP-0203)
        # and one in the room. The watcher shows them stored.
        then = (datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
                - datetime.timedelta(hours=1, minutes=7, seconds=13))
        stamp = then.strftime("%Y-%m-%dT%H:%M:%SZ")
        wmark = watch.mark()
        bob.send_message(ALICE, f"while away {tok}")
        bob.send_raw(delayed_message(ALICE, f"written earlier {tok}", stamp, f"dl-{tok}"))
        bob.muc_send(ROOM, f"room while away {tok}")
        for body in (f"while away {tok}", f"written earlier {tok}", f"room while away {tok}"):
            watch.wait_event("message", body=body, since=wmark, timeout=15)

        # Back: the replay brings each once, in its conversation.
        irssi.type("/connect stanzad")
        irssi.wait("&stanzad", lambda t: t.count("Join to &stanzad was synced") == 2,
                   "&stanzad joined and synced again")
        line = irssi.wait_line("bob", f"while away {tok}", "the replayed message")
        self.assertRegex(line, rf"^\d\d:\d\d:\d\d < ?bob> while away {tok}$")
        line = irssi.wait_line("bob", f"written earlier {tok}", "the replayed delayed message")
        # server-time: the line has the message's time, and no [HH:MM] prefix.
        self.assertEqual(line, f"{then:%H:%M:%S} <bob> written earlier {tok}")
        line = irssi.wait_line(CHAN, f"room while away {tok}", "the replayed room message")
        self.assertRegex(line, rf"< ?[~&@%+ ]?bob> room while away {tok}$")

        # Once more: /disconnect and /connect replays nothing again. bob's next message is
        # live; the replay would have come before it.
        mark_d = d.mark()
        irssi.type("/disconnect stanzad")
        d.wait_for(r"irc client \d+ \(alice\): ", timeout=10, since=mark_d)
        irssi.type("/connect stanzad")
        irssi.wait("&stanzad", lambda t: t.count("Join to &stanzad was synced") == 3,
                   "&stanzad joined and synced a third time")
        bob.send_message(ALICE, f"after the second reconnect {tok}")
        irssi.wait_line("bob", f"after the second reconnect {tok}", "the live message")
        bob.muc_send(ROOM, f"room after the second reconnect {tok}")
        irssi.wait_line(CHAN, f"room after the second reconnect {tok}", "the live room message")
        for window, body in (("bob", f"while away {tok}"), ("bob", f"written earlier {tok}"),
                             (CHAN, f"room while away {tok}")):
            self.assertEqual(len(irssi.lines(window, body)), 1, irssi.dump())
        # irssi shows what it sent itself, once (no echo-message, and the daemon replays
        # nothing a client name sent itself).
        self.assertEqual(len(irssi.lines("bob", f"hello from irssi {tok}")), 1, irssi.dump())
        self.assertEqual(len(irssi.lines(CHAN, f"hi room from irssi {tok}")), 1, irssi.dump())
        self.assertEqual(len(bob.received(body=f"hello from irssi {tok}")), 1)
        self.assertEqual(len(watch.find_events("message", body=f"hello from irssi {tok}")), 1)
        self.assertEqual(len(bob.received(body=f"hi room from irssi {tok}")), 1)


if __name__ == "__main__":
    harness.main()
