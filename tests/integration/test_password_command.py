"""password_command: the password comes from a command's output (trailing newline
dropped); a failing command is an error for that account only, and a slow one (a password
manager waiting for its pinentry) holds up nobody else: the daemon runs it beside its loop.
A stop while it runs ends it."""

import shlex

import harness
from harness import IntegrationTest, rx_online


class PasswordCommandTest(IntegrationTest):
    def command_for(self, user):
        return f"printf '%s\\n' {shlex.quote(self.USERS[user])}"

    def test_password_from_command(self):
        d = self.start_stanzad([self.account("home", "alice",
                                             password_command=self.command_for("alice"))])
        full = self.wait_online(d, "home")
        self.peer("bob").ping(full)

    def test_failing_command(self):
        d = self.start_stanzad([
            self.account("broken", "bob", password_command="echo 'no such entry' >&2; exit 3"),
            self.account("home", "alice", password_command=self.command_for("alice")),
        ])
        d.wait_for(r"(?i)account broken: .*password.command", 15)
        full = self.wait_online(d, "home")
        self.peer("carol").ping(full)
        self.assertEqual(d.count(rx_online("broken")), 0)
        self.assertNotIn("Authenticated as bob@", self.prosody.log_text())
        self.assertTrue(d.running, "the daemon must survive a failing password_command")
        self.assertEqual(d.stop(), 0)

    def test_slow_command_blocks_nobody(self):
        flag = self.tmp / "unlock"
        slow = (f"while [ ! -e {shlex.quote(str(flag))} ]; do sleep 0.05; done; "
                + self.command_for("bob"))
        d = self.start_stanzad([
            self.account("slow", "bob", password_command=slow),
            self.account("home", "alice", password_command=self.command_for("alice")),
        ])
        # alice gets online while bob's command is still waiting: nothing blocks the loop.
        full = self.wait_online(d, "home")
        self.peer("carol").ping(full)
        self.assertEqual(d.count(rx_online("slow")), 0)
        flag.touch()
        self.wait_online(d, "slow")
        self.assertEqual(d.stop(), 0)

    def test_stop_during_command(self):
        flag = self.tmp / "never"
        d = self.start_stanzad([self.account(
            "slow", "bob", password_command=f"while [ ! -e {shlex.quote(str(flag))} ]; do sleep 0.05; done")])
        d.wait_for(harness.rx_listening(), 10)
        self.assertEqual(d.stop(), 0)  # at once, not after the command's 30 s


if __name__ == "__main__":
    harness.main()
