"""Smoke test with a real IRC client: WeeChat from Debian (weechat-headless), driven by its
own configuration (--run-command, and the server's `command` option, which WeeChat runs
once it is registered) and read through its logger plugin's files. (The FIFO plugin is
not in weechat-headless: it comes with weechat-plugins.)

WeeChat connects to stanzad's IRC port with the [irc] password (PASS) and the username
alice@weechat, /msg's bob (a slixmpp peer on alice's roster), who receives it; bob
replies, and the reply is in WeeChat's log of its query buffer with bob, from bob.

Skipped (exit 0) only when weechat-headless is not installed:
    apt-get install -y --no-install-recommends weechat-headless

Waits: WeeChat's log files are polled with a short backoff (harness.poll_until), like
Prosody's log; the logger writes every line at once (logger.file.flush_delay 0).
"""

import shutil
import subprocess
import unittest
from pathlib import Path

import harness
from irc_client import IRC_PASSWORD, IrcTest

WEECHAT = shutil.which("weechat-headless")


@unittest.skipUnless(WEECHAT, "weechat-headless is not installed "
                              "(apt-get install -y weechat-headless): no real-client smoke test")
class IrcRealClientTest(IrcTest):
    def start_weechat(self, port: int, on_connect: str) -> "tuple[subprocess.Popen, Path]":
        home = self.tmp / "weechat"
        home.mkdir()
        commands = ";".join([
            "/set logger.file.flush_delay 0",
            "/set logger.file.auto_log on",
            "/set irc.look.smart_filter off",
            f"/server add stanzad {harness.LOOPBACK}/{port} -notls -password={IRC_PASSWORD}"
            " -nicks=alice -username=alice@weechat -realname=Alice",
            f"/set irc.server.stanzad.command \"{on_connect}\"",
            "/connect stanzad",
        ])
        out = open(self.tmp / "weechat.out", "wb")
        self.addCleanup(out.close)
        proc = harness._spawn([WEECHAT, "--dir", str(home), "--stdout", "--no-script",
                               "--run-command", commands],
                              stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                              cwd=home)

        def stop() -> None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.addCleanup(stop)
        return proc, home

    def log_of(self, home: Path, buffer: str) -> str:
        p = home / "logs" / f"irc.{buffer}.weechatlog"
        return p.read_text(errors="replace") if p.exists() else ""

    def wait_log(self, proc, home: Path, buffer: str, predicate, what: str,
                 timeout: float = 20.0) -> str:
        def found():
            if proc.poll() is not None:
                raise AssertionError(f"weechat exited with {proc.returncode}:\n"
                                     + (self.tmp / "weechat.out").read_text(errors="replace"))
            text = self.log_of(home, buffer)
            return text if predicate(text) else None
        try:
            return harness.poll_until(found, timeout, what)
        except AssertionError:
            logs = sorted((home / "logs").glob("*")) if (home / "logs").exists() else []
            dump = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
                             for p in logs)
            raise AssertionError(f"weechat: no {what}; its logs:\n{dump}") from None

    def test_weechat_message_to_contact_and_reply(self):
        self.add_to_roster("bob@localhost")
        d = self.start_irc_daemon()
        bob = self.peer("bob")
        mark = bob.message_mark()
        proc, home = self.start_weechat(d.irc_port, "/msg bob hello from weechat")

        # Registered: the welcome is in the server buffer's log, &stanzad was joined.
        self.wait_log(proc, home, "server.stanzad", lambda t: "Welcome to stanzad" in t,
                      "welcome (001) in the server buffer")
        self.wait_log(proc, home, "stanzad.&stanzad", lambda t: "has joined &stanzad" in t,
                      "&stanzad joined")

        # Its /msg bob, run once registered: bob receives it.
        m = bob.wait_message(body="hello from weechat", since=mark, timeout=15)
        self.assertEqual(m.type, "chat", m.xml)
        self.assertTrue(m.from_.startswith("alice@localhost/"), m.from_)

        # bob replies: WeeChat shows it in its query with bob, from bob.
        bob.send_message("alice@localhost", "reply from bob")
        text = self.wait_log(proc, home, "stanzad.bob", lambda t: "reply from bob" in t,
                             "reply from bob in the query buffer")
        line = next(l for l in text.splitlines() if "reply from bob" in l)
        fields = line.split("\t")
        self.assertEqual(len(fields), 3, line)
        self.assertEqual(fields[1].lstrip("@+~&%"), "bob", line)
        self.assertEqual(fields[2], "reply from bob", line)
        # WeeChat showed our /msg (sent from the server buffer) there.
        self.assertIn("MSG(bob): hello from weechat", self.log_of(home, "server.stanzad"))
        self.assertEqual(len(bob.received(body="hello from weechat", since=mark)), 1)


if __name__ == "__main__":
    harness.main()
