"""stanzactl init writes a config that stanzad accepts: from flags, and interactively
through a terminal (a pty); it never replaces a file without --force. stanzactl doctor
checks a running daemon with one healthy and one failing account and says what to do.
The shell completion asks the same daemon for account names, and says nothing when it
is down."""

import os
import pty
import re
import select
import shlex
import socket
import tempfile
import unittest
import shutil
import stat
import subprocess
import time
from pathlib import Path

import harness
from harness import IntegrationTest

BUILD_DIR = Path(os.environ.get("STANZAD_BUILD_DIR", Path(__file__).resolve().parents[2] / "build"))
STANZACTL = BUILD_DIR / "ctl" / "stanzactl"
SOURCE = Path(__file__).resolve().parents[2]


def stanzactl(*args, input=None, env=None):
    return subprocess.run([str(STANZACTL), *map(str, args)], input=input, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=30)


def check_config(path):
    return harness.run_stanzad(["--check-config", "-c", str(path)])


class Pty:
    """stanzactl on a pseudo-terminal: expect() reads until a pattern, send() types a line."""

    def __init__(self, argv, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execve(argv[0], argv, env)
        self.output = ""

    def expect(self, pattern, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.output):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise AssertionError(f"no {pattern!r} in:\n{self.output}")
            try:
                data = os.read(self.fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                data = b""
            if not data:
                raise AssertionError(f"stanzactl ended before {pattern!r}:\n{self.output}")
            self.output += data.decode(errors="replace")

    def send(self, line):
        os.write(self.fd, (line + "\n").encode())

    def wait(self):
        while True:  # drain what is left, so the child never blocks on a full terminal
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                break
            if not data:
                break
            self.output += data.decode(errors="replace")
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


class InitTest(IntegrationTest):
    def test_flags(self):
        path = self.tmp / "new" / "dir" / "config.toml"
        run = stanzactl("init", "-c", path, "--jid", "alice@example.org", "--password-command",
                        "pass show xmpp/alice", "--irc")
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(path.parent.stat().st_mode), 0o700)
        text = path.read_text()
        self.assertIn('name = "alice"\njid = "alice@example.org"\npassword_command = "pass show xmpp/alice"\n', text)
        irc_password = re.search(r"with the password (\S+) ", run.stdout).group(1)
        self.assertRegex(irc_password, r"^[A-Za-z0-9]{24}$")
        self.assertIn(f'listen = "127.0.0.1:6667"\npassword = "{irc_password}"\n', text)
        self.assertIn("systemctl --user enable --now stanzad", run.stdout)
        checked = check_config(path)
        self.assertEqual(checked.returncode, 0, checked.stderr)
        self.assertEqual(checked.stderr, "")

        # Never replaces a file without --force; with it, writes the new one.
        again = stanzactl("init", "-c", path, "--jid", "bob@example.org", "--password-command", "true")
        self.assertEqual(again.returncode, 2)
        self.assertIn("already exists", again.stderr)
        self.assertIn("--force", again.stderr)
        self.assertEqual(path.read_text(), text)
        forced = stanzactl("init", "-c", path, "--jid", "bob@example.org", "--name", "work",
                           "--password-command", "true", "--force")
        self.assertEqual(forced.returncode, 0, forced.stderr)
        self.assertIn('name = "work"\njid = "bob@example.org"\n', path.read_text())
        self.assertNotIn("[irc]", path.read_text())
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        self.assertEqual([p.name for p in path.parent.iterdir()], ["config.toml"])

    def test_plain_password_from_stdin_is_escaped(self):
        path = self.tmp / "config.toml"
        run = stanzactl("init", "-c", path, "--jid", "alice@example.org", "--password", "-",
                        input='se"cr\\et\n')
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn('password = "se\\"cr\\\\et"\n', path.read_text())
        self.assertEqual(check_config(path).returncode, 0)

    def test_refusals(self):
        path = self.tmp / "config.toml"
        cases = [
            (["--jid", "alice@example.org/phone", "--password-command", "x"], "not a bare JID"),
            (["--jid", "alice@example.org"], "--password-command CMD"),
            (["--jid", "alice@example.org", "--password-command", "x", "--password", "y"], "exclude each other"),
            (["--jid", "alice@example.org", "--password-command", "x", "--name", "a b"], "--name"),
            ([], "standard input is not a terminal"),  # stdin is a pipe here
            (["--irc", "--jid", "a@b.example", "--password-command", "x", "tail"], "usage"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                run = stanzactl("init", "-c", path, *args, input="")
                self.assertEqual(run.returncode, 2, run.stderr)
                self.assertIn(message, run.stderr)
                self.assertFalse(path.exists())
        # Options of init belong to init.
        run = stanzactl("status", "--irc")
        self.assertEqual(run.returncode, 2)
        self.assertIn("--irc is an option of init", run.stderr)

    def test_interactive(self):
        path = self.tmp / "conf" / "config.toml"
        env = {**os.environ, "TERM": "dumb"}
        t = Pty([str(STANZACTL), "init", "-c", str(path)], env)
        t.expect(r"JID\), for example alice@example.org: ")
        t.send("alice@example.org/phone")
        t.expect(r"not a bare JID.*\r?\n.*JID\), for example alice@example.org: ")
        t.send("alice@example.org")
        t.expect(r"1\) pass show xmpp/alice@example.org")
        # The menu may reach the terminal in more than one read: wait for each line.
        t.expect(r"2\) secret-tool lookup xmpp alice@example\.org")
        t.expect(r"Choice \[1\]: ")
        t.send("4")
        t.expect(r"Password \(not shown\): ")
        t.send("Typed-Secret-7")
        t.expect(r"\[y/N\]: ")
        t.send("y")
        t.expect(r"Then: stanzactl status")
        self.assertEqual(t.wait(), 0, t.output)
        self.assertNotIn("Typed-Secret-7", t.output)  # no echo
        text = path.read_text()
        self.assertIn('jid = "alice@example.org"\npassword = "Typed-Secret-7"\n', text)
        self.assertIn("[irc]", text)
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        self.assertEqual(check_config(path).returncode, 0)

    def test_interactive_default_is_pass(self):
        path = self.tmp / "config.toml"
        t = Pty([str(STANZACTL), "init", "-c", str(path)], dict(os.environ))
        t.expect(r"example.org: ")
        t.send("carol@example.net")
        t.expect(r"Choice \[1\]: ")
        t.send("")
        t.expect(r"\[y/N\]: ")
        t.send("")
        self.assertEqual(t.wait(), 0, t.output)
        text = path.read_text()
        self.assertIn('password_command = "pass show xmpp/carol@example.net"\n', text)
        self.assertNotIn("[irc]", text)


class DoctorTest(IntegrationTest):
    def test_one_healthy_one_failing_account(self):
        config = self.config([self.account("home", "alice"),
                              self.account("bad", "bob", password="wrong-password")])
        d = self.start_stanzad(config)
        self.wait_online(d, "home")
        d.wait_for(r"account bad: authentication failed")
        run = stanzactl("doctor", "-c", d.config_path)
        self.assertEqual(run.returncode, 1, run.stdout + run.stderr)
        out = run.stdout
        self.assertRegex(out, rf"(?m)^ok +config {re.escape(str(d.config_path))}: valid, 2 account\(s\)$")
        self.assertRegex(out, r"(?m)^ok +socket .*: mode 0600$")
        self.assertRegex(out, r"(?m)^ok +stanzad answers")
        self.assertRegex(out, r"(?m)^ok +account home: online as alice@localhost/stanzad")
        self.assertRegex(out, r"(?m)^problem +account bad: failed: authentication failed")
        self.assertRegex(out, r"account bad: failed.*\n +-> check the account's password.*reload stanzad")
        self.assertRegex(out, r"(?m)^ok +store .*/stanzad.db: [0-9.]+ (bytes|KiB|MiB)$")
        self.assertIn("1 problem(s) found.", out)

        # The shell completion asks the daemon for account names.
        self.assertEqual(stanzactl("complete", "accounts", "-c", d.config_path).stdout, "home\nbad\n")
        self.assertEqual(bash_complete(["stanzactl", "-c", str(d.config_path), "send", ""]), ["bad", "home"])
        self.assertEqual(bash_complete(["stanzactl", "-c", str(d.config_path), "ros"]), ["roster"])
        if shutil.which("fish"):
            self.assertEqual(fish_complete(f"stanzactl -c {d.config_path} send "), ["bad", "home"])
            self.assertEqual(fish_complete(f"stanzactl -c {d.config_path} presence home "),
                             ["away", "chat", "dnd", "online", "xa"])

        # Stopped: doctor says so and what to do; completion says nothing.
        d.stop()
        run = stanzactl("doctor", "-c", d.config_path)
        self.assertEqual(run.returncode, 1)
        self.assertRegex(run.stdout, r"(?m)^problem +no socket at .*: stanzad is not running\n +-> start it: "
                                     r"systemctl --user start stanzad")
        quiet = stanzactl("complete", "accounts", "-c", d.config_path)
        self.assertEqual((quiet.returncode, quiet.stdout, quiet.stderr), (0, "", ""))
        self.assertEqual(bash_complete(["stanzactl", "-c", str(d.config_path), "send", ""]), [])
        if shutil.which("fish"):
            self.assertEqual(fish_complete(f"stanzactl -c {d.config_path} send "), [])

    def test_no_config(self):
        run = stanzactl("doctor", "-c", self.tmp / "missing.toml")
        self.assertEqual(run.returncode, 1)
        self.assertRegex(run.stdout, r"problem +no config at .*missing.toml.*\n +-> write one with: stanzactl init")

    def test_private_config(self):
        config = self.config([self.account("home", "alice")])
        d = self.start_stanzad(config)
        self.wait_online(d, "home")
        os.chmod(d.config_path, 0o644)
        run = stanzactl("doctor", "-c", d.config_path)
        self.assertEqual(run.returncode, 1)
        self.assertIn(f"-> chmod 600 {d.config_path}", run.stdout)


class SilentDaemonTest(unittest.TestCase):
    """A socket that accepts and never answers (a stopped or stuck daemon): complete gives
    up quietly within its 2 seconds, doctor within 10, each saying what it should."""

    def test_no_hang(self):
        tmp = Path(tempfile.mkdtemp(prefix="stanzactl-silent-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        path = str(tmp / "stanzad.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(8)
        self.addCleanup(server.close)
        os.chmod(path, 0o600)

        start = time.monotonic()
        run = stanzactl("complete", "accounts", "-s", path)
        self.assertEqual((run.returncode, run.stdout, run.stderr), (0, "", ""))
        self.assertLess(time.monotonic() - start, 8)

        config = tmp / "config.toml"
        config.write_text(f'[daemon]\nsocket = "{path}"\nstate_dir = "{tmp}"\n\n'
                          '[[account]]\nname = "home"\njid = "a@example.org"\npassword_command = "true"\n')
        config.chmod(0o600)
        run = stanzactl("doctor", "-c", config)
        self.assertEqual(run.returncode, 1, run.stdout)
        self.assertRegex(run.stdout, r"problem +stanzad does not answer on .*: no answer within 10 seconds\n"
                                     r" +-> restart it: systemctl --user restart stanzad")


def bash_complete(words):
    """What the bash completion offers for the last of `words` (sorted)."""
    quoted = " ".join(shlex.quote(w) for w in words)
    script = (f"source {SOURCE}/contrib/completions/stanzactl.bash\n"
              f"COMP_WORDS=({quoted})\nCOMP_CWORD={len(words) - 1}\n"
              "_stanzactl\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    env = {**os.environ, "PATH": f"{STANZACTL.parent}:{os.environ['PATH']}"}
    run = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=30)
    assert run.stderr == "", run.stderr
    return sorted(l for l in run.stdout.splitlines() if l)


def fish_complete(line):
    """What the fish completion offers for `line` (sorted; descriptions dropped)."""
    script = f"source {SOURCE}/contrib/completions/stanzactl.fish; complete -C{shlex.quote(line)}"
    env = {**os.environ, "PATH": f"{STANZACTL.parent}:{os.environ['PATH']}"}
    run = subprocess.run(["fish", "--no-config", "-c", script], capture_output=True, text=True, env=env,
                         timeout=30)
    assert run.stderr == "", run.stderr
    return sorted(l.split("\t")[0] for l in run.stdout.splitlines() if l)


if __name__ == "__main__":
    import unittest
    unittest.main()
