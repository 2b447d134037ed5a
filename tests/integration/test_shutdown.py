"""SIGTERM and SIGINT: stanzad closes every stream properly (</stream:stream>, then waits
for the server's) and exits 0 within 5 seconds."""

import signal
import time

import harness
from harness import RX_SHUTTING_DOWN, RX_STOPPED, IntegrationTest


class ShutdownTest(IntegrationTest):
    def check_clean_shutdown(self, sig):
        d = self.start_stanzad([self.account("home", "alice"), self.account("work", "bob")])
        self.wait_online(d, "home")
        self.wait_online(d, "work")
        sessions = [self.prosody.wait_for_session("alice@localhost"),
                    self.prosody.wait_for_session("bob@localhost")]

        mark = d.mark()
        start = time.monotonic()
        d.signal(sig)
        d.wait_for(RX_SHUTTING_DOWN, 5, since=mark)
        d.wait_for(RX_STOPPED, 5, since=mark)
        rc = d.wait_exit(max(0.1, 5 - (time.monotonic() - start)))
        self.assertEqual(rc, 0)
        self.assertLess(time.monotonic() - start, 5.0)
        self.assertLess(d.index(RX_SHUTTING_DOWN, mark), d.index(RX_STOPPED, mark))

        # Prosody 0.12.3 logs "Received </stream:stream>" under the session id when the
        # client closed its stream; an abrupt drop shows only "Client disconnected".
        for sid in sessions:
            self.prosody.wait_for_session_line(sid, r"Received </stream:stream>", 5)

    def test_sigterm(self):
        self.check_clean_shutdown(signal.SIGTERM)

    def test_sigint(self):
        self.check_clean_shutdown(signal.SIGINT)


if __name__ == "__main__":
    harness.main()
