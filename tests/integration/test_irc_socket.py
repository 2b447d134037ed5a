"""The IRC listener on a Unix socket path ([irc] listen = PATH, docs/irc.md): the socket is
made mode 0600 and needs no password; a second daemon whose [irc] listen names the socket
of a live daemon refuses to start and says why, and leaves that socket alone (the first
daemon's IRC clients still connect); a stale socket file left by a daemon killed with
SIGKILL is replaced at the next start. The same rules as the JSON socket's
(test_jsonl_socket.py): both go through one listener core (daemon/listener.cpp).
"""

import os
import signal
import socket
import stat
import time

import harness
from harness import Stanzad
from irc_client import IrcTest, rx_irc_on


def register_on(path, nick="al"):
    """Registers on the IRC socket at `path`; returns the lines up to RPL_WELCOME (001).
    Every wait is a socket read with a deadline."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(path))
        s.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
        data, deadline = b"", time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            lines = data.decode("utf-8", "replace").split("\r\n")
            if any(l.split(" ")[1:2] == ["001"] for l in lines if l.startswith(":")):
                return lines
        raise AssertionError(f"no 001 on {path}:\n{data.decode('utf-8', 'replace')}")


class IrcSocketTest(IrcTest):
    def irc_path(self):
        path = self.socket_path_for("irc")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def start_on_path(self, name, path):
        config = self.irc_config(name=name, password=None)
        config["irc"]["listen"] = str(path)
        d = self.start_stanzad(config, name)
        d.config = config
        d.wait_for(rx_irc_on(str(path)), timeout=10)
        d.wait_for(harness.rx_listening(config["daemon"]["socket"]), timeout=10)
        return d

    def assert_socket_0600(self, path):
        st = os.lstat(path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode), f"{path} is not a socket")
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, f"mode {oct(st.st_mode)}")

    def test_unix_socket_0600_without_password(self):
        path = self.irc_path()
        self.start_on_path("stanzad", path)
        self.assert_socket_0600(path)
        register_on(path)

    def test_second_daemon_on_a_live_irc_socket_refuses(self):
        path = self.irc_path()
        first = self.start_on_path("stanzad", path)
        inode = os.lstat(path).st_ino
        # Another store and another JSON socket: only the IRC socket is shared.
        config = self.irc_config(name="second", password=None)
        config["irc"]["listen"] = str(path)
        second = Stanzad(config, self.tmp / "second", name="second")
        self.addCleanup(second.kill)
        second.start()
        rc = second.wait_exit(10)
        out = second.output()
        self.assertNotEqual(rc, 0, f"a second daemon started on a live IRC socket:\n{out}")
        self.assertIn(f"another stanzad is already listening on {path}", out)
        # The first daemon's socket is the same file, and it still answers.
        self.assertEqual(os.lstat(path).st_ino, inode, "the live daemon's socket was replaced")
        self.assert_socket_0600(path)
        register_on(path)
        self.assertTrue(first.running)

    def test_a_file_that_is_no_socket_is_kept(self):
        path = self.irc_path()
        path.write_text("not a socket")
        config = self.irc_config(password=None)
        config["irc"]["listen"] = str(path)
        d = self.start_stanzad(config)
        self.assertNotEqual(d.wait_exit(10), 0)
        self.assertIn(f"{path} exists and is not a socket", d.output())
        self.assertEqual(path.read_text(), "not a socket")

    def test_stale_irc_socket_is_replaced(self):
        path = self.irc_path()
        d = self.start_on_path("stanzad", path)
        register_on(path)
        d.kill()  # SIGKILL: nobody removes the socket files
        self.assertEqual(d.proc.returncode, -signal.SIGKILL)
        self.assertTrue(os.path.lexists(path), "expected the dead daemon's IRC socket file")
        with self.assertRaises(ConnectionRefusedError):
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
        self.start_on_path("stanzad", path)
        self.assert_socket_0600(path)
        register_on(path)


if __name__ == "__main__":
    harness.main()
