"""The JSON socket file: mode 0600, never two daemons on one store or one socket, and a
stale socket file left by a daemon killed with SIGKILL is replaced at the next start.
"""

import os
import signal
import socket
import stat

import harness
from harness import JsonlTest, Stanzad, rx_connecting, rx_listening

REFUSAL = r"(?i)(already running|another|in use|locked|never two|is running)"


class SocketTest(JsonlTest):
    def assert_socket_0600(self, path):
        st = os.lstat(path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode), f"{path} is not a socket")
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, f"mode {oct(st.st_mode)}")
        self.assertEqual(st.st_uid, os.getuid())

    def test_socket_is_0600(self):
        d = self.start_daemon(online=False)
        self.assert_socket_0600(d.socket_path)
        c = self.client(d, hello="tests", replay=False)
        self.assertIs(c.ok("accounts").get("ok"), True)

    def start_second(self, config, name):
        """Another daemon with `config`; it must exit non-zero by itself, quickly."""
        second = Stanzad(config, self.tmp / name, name=name)
        self.addCleanup(second.kill)
        second.start()
        rc = second.wait_exit(10)
        return second, rc

    def test_second_daemon_refuses_and_first_keeps_working(self):
        d = self.start_daemon()
        full = self.wait_online(d, "home")
        c = self.client(d, hello="first", replay=False)
        bob = self.peer("bob")
        state_dir = d.config["daemon"]["state_dir"]
        sock = str(d.socket_path)

        variants = {
            # the same config: same store and same socket
            "same-config": dict(d.config),
            # the same store, another socket: the store's lock refuses
            "same-store": {"daemon": dict(d.config["daemon"],
                                          socket=str(self.tmp / "other.sock")),
                           "account": d.config["account"]},
            # the same socket, another store: a live daemon answers on the socket
            "same-socket": {"daemon": dict(d.config["daemon"],
                                           state_dir=str(self.tmp / "other-state")),
                            "account": d.config["account"]},
        }
        for label, config in variants.items():
            with self.subTest(label):
                second, rc = self.start_second(config, f"second-{label}")
                out = second.output()
                self.assertNotEqual(rc, 0, f"a second daemon ({label}) started:\n{out}")
                self.assertRegex(out, REFUSAL, "no clear reason given")
                names = {"same-config": (state_dir, sock), "same-store": (state_dir,),
                         "same-socket": (sock,)}[label]
                self.assertTrue(any(n in out for n in names),
                                f"the refusal names none of {names}:\n{out}")
                self.assertEqual(second.count(rx_connecting("home")), 0,
                                 "the second daemon connected the account (would take over "
                                 "the first one's resource)")
                if label == "same-store":
                    self.assertFalse(os.path.lexists(self.tmp / "other.sock"),
                                     "the refused daemon left its socket file behind")

                # The first is untouched: its socket file, its clients, its account.
                self.assert_socket_0600(sock)
                self.assertEqual(c.ok("accounts")["accounts"][0]["state"], "online")
                fresh = self.client(d, hello=f"after-{label}", replay=False)
                r = fresh.ok("send", account="home", to="bob@localhost",
                             body=f"still here {label}")
                bob.wait_message(origin_id=r["msg_id"])
                bob.send_message(full, f"and back {label}")
                c.wait_event("message", body=f"and back {label}")
                fresh.close()
        self.assertTrue(d.running)

    def test_stale_socket_is_replaced(self):
        d = self.start_daemon()
        c = self.client(d, hello="tests", replay=False)
        sock = d.socket_path
        d.kill()  # SIGKILL: nobody removes the socket file
        self.assertEqual(d.proc.returncode, -signal.SIGKILL)
        c.wait_eof()
        self.assertTrue(os.path.lexists(sock), "expected the dead daemon's socket file")
        with self.assertRaises(ConnectionRefusedError):
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(sock))

        d2 = self.start_daemon(name="stanzad")  # same config, same state_dir and socket
        self.assert_socket_0600(sock)
        c2 = self.client(d2, hello="tests", replay=False)
        self.assertEqual(c2.ok("accounts")["accounts"][0]["state"], "online")


if __name__ == "__main__":
    harness.main()
