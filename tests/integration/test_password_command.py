"""password_command: the password comes from a command's output (trailing newline
dropped); a failing command is an error for that account only, and a slow one (a password
manager waiting for its pinentry) holds up nobody else: the daemon runs it beside its loop.
A stop while it runs ends it. The same for [irc] password_command: the IRC socket listens
once the command has answered, the rest of the daemon runs meanwhile, and a failing one
stops the daemon with status 1, saying why."""

import shlex

import harness
from harness import IntegrationTest, rx_online
from irc_client import IRC_PASSWORD, IrcTest, rx_irc_on


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


class IrcPasswordCommandTest(IrcTest):
    def test_slow_irc_password_command_holds_up_nothing_else(self):
        flag = self.tmp / "unlock"
        config = self.irc_config(password=None)
        config["irc"]["password_command"] = (f"while [ ! -e {shlex.quote(str(flag))} ]; do sleep 0.05; done; "
                                             f"echo {shlex.quote(IRC_PASSWORD)}")
        address = config["irc"]["listen"]
        d = self.start_stanzad(config)
        # While the command waits, the loop runs: the account gets online, the JSON socket
        # answers; only the IRC socket is not there yet.
        self.wait_online(d, "home")
        d.socket_path = config["daemon"]["socket"]
        self.client(d, hello="meanwhile", replay=False)
        self.assertEqual(d.count(rx_irc_on(address)), 0)
        flag.touch()
        d.wait_for(rx_irc_on(address), timeout=10)
        d.irc_port = int(address.rsplit(":", 1)[1])
        c = self.irc(d)  # registers with PASS IRC_PASSWORD: the command's line
        c.send("PING :after")
        c.wait(None, "PONG")
        self.assertEqual(d.stop(), 0)

    def test_failing_irc_password_command_stops_the_daemon(self):
        config = self.irc_config(password=None)
        config["irc"]["password_command"] = "echo 'no such entry' >&2; exit 3"
        d = self.start_stanzad(config)
        self.assertEqual(d.wait_exit(20), 1)
        self.assertIn("[irc] password_command exited with status 3", d.output())
        self.assertEqual(d.count(rx_irc_on(config["irc"]["listen"])), 0)


if __name__ == "__main__":
    harness.main()
