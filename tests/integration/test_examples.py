"""contrib/examples against the real daemon: echo_bot.py answers bob's "ping 1" with
"echo: ping 1", never echoes its own answers, and neither loses nor repeats across its own
restart; notify.sh turns an incoming message into a notification (or a printed line).
"""

import re
import stat
import sys

import harness
from harness import REPO, JsonlTest, LineReader, stanzactl_bin

EXAMPLES = REPO / "contrib" / "examples"


class ExamplesTest(JsonlTest):
    def start_bot(self, d, *args):
        # The bot needs only the standard library: any python3 will do; use ours.
        bot = LineReader([sys.executable, EXAMPLES / "echo_bot.py", *args, d.socket_path],
                         name="echo-bot")
        self.addCleanup(bot.kill)
        bot.wait_line(r"attached to ", stream="err", timeout=10)
        return bot

    def test_echo_bot(self):
        d = self.start_daemon()
        full = self.wait_online(d, "home")
        bob = self.peer("bob")
        watch = self.client(d, hello="watcher", replay=False)

        bot = self.start_bot(d)
        bob.send_message(full, "ping 1")
        echo1 = bob.wait_message(body="echo: ping 1")
        self.assertEqual(echo1.type, "chat")
        self.assertTrue(echo1.origin_id, "the bot's answer carries an origin-id")

        # Its own answer comes back to it as an outgoing message event: not echoed. The bot
        # handles events in order, so once "echo: ping 2" is out, any echo of the echo
        # would have been sent already.
        bob.send_message(full, "ping 2")
        bob.wait_message(body="echo: ping 2")
        watch.wait_event("message", body="echo: ping 2", outgoing=True)
        self.assertEqual(watch.find_events(lambda e: e["event"] == "message"
                                           and e["body"].startswith("echo: echo:")), [])

        # Restart: what came while it was away is confirmed but not answered (no
        # --replay), what was answered before is not answered again.
        self.assertEqual(bot.terminate(), 0)
        bob.send_message(full, "ping 3 while away")
        watch.wait_event("message", body="ping 3 while away")
        bot = self.start_bot(d)
        bob.send_message(full, "ping 4")
        bob.wait_message(body="echo: ping 4")
        self.assertEqual(bob.received(body="echo: ping 3 while away"), [])
        self.assertEqual(len(bob.received(body="echo: ping 1")), 1)
        self.assertEqual(len(bob.received(body="echo: ping 2")), 1)

        # With --replay, what came while it was away is answered, once.
        self.assertEqual(bot.terminate(), 0)
        bob.send_message(full, "ping 5 while away")
        watch.wait_event("message", body="ping 5 while away")
        bot = self.start_bot(d, "--replay")
        bob.wait_message(body="echo: ping 5 while away")
        bob.send_message(full, "ping 6")
        bob.wait_message(body="echo: ping 6")
        for n in ("1", "2", "4", "5 while away", "6"):
            self.assertEqual(len(bob.received(body=f"echo: ping {n}")), 1, n)
        self.assertEqual(bob.received(body="echo: ping 3 while away"), [])

    def test_notify_sh(self):
        ctl = stanzactl_bin()
        if not ctl.exists():
            self.fail(f"stanzactl not found at {ctl} (set STANZACTL_BIN)")
        d = self.start_daemon()
        full = self.wait_online(d, "home")
        bob = self.peer("bob")
        # A fake notify-send that prints its arguments: the notification path is taken.
        fake = self.tmp / "notify-send"
        fake.write_text('#!/bin/sh\nprintf "NOTIFY[%s][%s][%s]\\n" "$1" "$2" "$3"\n')
        fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
        for label, notifier, rx in [
                ("notify-send", str(fake),
                 rf"^NOTIFY\[--\]\[{re.escape(bob.full_jid)}\]\[hello notify notify-send\]$"),
                ("no notifier", str(self.tmp / "absent"),
                 rf"^{re.escape(bob.full_jid)}: hello notify no notifier$")]:
            with self.subTest(label):
                # --since: stanzactl tail prints live events only otherwise, and nothing
                # tells when it is attached.
                last = self.client(d, hello="probe", replay=False).hello_reply["last_seq"]
                sh = LineReader(["/bin/sh", EXAMPLES / "notify.sh", "-s", d.socket_path,
                                 "--since", str(last)],
                                env={"STANZACTL": str(ctl), "NOTIFY_SEND": notifier},
                                name=f"notify.sh {label}")
                self.addCleanup(sh.kill)
                bob.send_message(full, f"hello notify {label}")
                sh.wait_line(rx, timeout=10)
                sh.kill()


if __name__ == "__main__":
    harness.main()
