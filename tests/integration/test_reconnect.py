"""The server goes away and comes back on the same address: stanzad notices, backs off,
logs in again and answers as before."""

import harness
from harness import IntegrationTest, rx_disconnected


class ReconnectTest(IntegrationTest):
    def check_reconnect(self, kill):
        d = self.start_stanzad([self.account("home", "alice")])
        full = self.wait_online(d, "home")
        first_session = self.prosody.wait_for_session("alice@localhost")

        mark = d.mark()
        log_mark = self.prosody.log_mark()
        self.prosody.restart(kill=kill)
        d.wait_for(rx_disconnected("home"), 10, since=mark)
        self.assertEqual(self.wait_online(d, "home", timeout=20, since=mark), full)
        self.assertNotEqual(self.prosody.wait_for_session("alice@localhost", since=log_mark),
                            first_session)
        self.assertLess(self.peer("bob").ping(full), 1.0)

    def test_server_killed(self):
        # SIGKILL: no stream close, the TCP connection just drops.
        self.check_reconnect(kill=True)

    def test_server_restarted(self):
        # SIGTERM: Prosody closes the stream with a system-shutdown stream error first.
        self.check_reconnect(kill=False)


if __name__ == "__main__":
    harness.main()
