"""Under systemd (Type=notify) stanzad sends READY=1 to $NOTIFY_SOCKET once its sockets
listen, and STATUS= with each account's state as it changes; STOPPING=1 on SIGTERM. Under
a journal stream ($JOURNAL_STREAM naming stderr) each log line starts with its syslog
priority instead of a timestamp. The test listens on the datagram socket itself."""

import os
import re
import socket
import subprocess

import harness
from harness import IntegrationTest


class Notifications:
    """The datagrams stanzad sends to a NOTIFY_SOCKET bound in `directory`."""

    def __init__(self, directory):
        self.path = str(directory / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.received: "list[str]" = []

    def wait_for(self, pattern: str, timeout: float = 15.0) -> str:
        """Blocks on the socket until a datagram matches `pattern`; returns it."""
        for earlier in self.received:
            if re.search(pattern, earlier):
                return earlier
        self.sock.settimeout(timeout)
        while True:
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                raise AssertionError(f"no notification matching {pattern!r}; got {self.received}")
            self.received.append(data)
            if re.search(pattern, data):
                return data

    def close(self):
        self.sock.close()


class SystemdNotifyTest(IntegrationTest):
    def test_ready_status_stopping(self):
        notify = Notifications(self.tmp)
        self.addCleanup(notify.close)
        config = self.config([self.account("home", "alice"),
                              self.account("bad", "bob", password="wrong-password")])
        d = self.start_stanzad(config, env={"NOTIFY_SOCKET": notify.path})

        notify.wait_for(r"^READY=1$")
        # READY=1 means the JSON socket answers.
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(config["daemon"]["socket"])
        client.close()
        self.assertEqual(os.stat(config["daemon"]["socket"]).st_mode & 0o777, 0o600)

        self.wait_online(d, "home")
        status = notify.wait_for(r"^STATUS=.*home: online.*bad: failed|^STATUS=.*bad: failed.*home: online")
        self.assertEqual(status, "STATUS=home: online, bad: failed")

        d.stop()
        notify.wait_for(r"^STOPPING=1$", timeout=5)

    def test_no_notify_socket_no_trouble(self):
        # Without NOTIFY_SOCKET nothing changes: the daemon starts and stops as always.
        env = {"NOTIFY_SOCKET": ""}
        d = self.start_stanzad([self.account("home", "alice")], env=env)
        self.wait_online(d, "home")

    def test_journal_priority_prefixes(self):
        # JOURNAL_STREAM names stderr by device and inode (systemd.exec(5)); the harness
        # reads stderr from a pipe, so the test passes the pipe's own numbers: a wrapper
        # shell sets the variable from /proc/self/fd/2 before exec'ing stanzad.
        wrapper = self.tmp / "journal-wrapper.sh"
        wrapper.write_text(
            "#!/bin/sh\n"
            "JOURNAL_STREAM=$(stat -L -c '%d:%i' /proc/self/fd/2) exec \"$STANZAD_REAL\" \"$@\"\n")
        wrapper.chmod(0o755)
        d = self.start_stanzad([self.account("home", "alice"),
                                self.account("bad", "bob", password="wrong-password")],
                               binary=wrapper, env={"STANZAD_REAL": str(harness.stanzad_bin())})
        d.wait_for(r"^<6>account home: online as ")
        d.wait_for(r"^<[23]>account bad: authentication failed")
        # No timestamps: journald adds its own.
        self.assertFalse([l for l in d.lines if re.match(r"^\d{4}-\d\d-\d\d ", l)], d.lines[:5])


if __name__ == "__main__":
    import unittest
    unittest.main()
