"""SIGHUP reloads the config: unchanged accounts keep their session, removed ones close
their stream properly, new ones come online."""

import signal

import harness
from harness import IntegrationTest, rx_connecting, rx_reloaded
from slixmpp.exceptions import IqError


class ReloadTest(IntegrationTest):
    def test_sighup(self):
        keep = self.account("keep", "alice")
        drop = self.account("drop", "bob")
        d = self.start_stanzad([keep, drop])
        alice_full = self.wait_online(d, "keep")
        bob_full = self.wait_online(d, "drop")
        alice_sid = self.prosody.wait_for_session("alice@localhost")
        bob_sid = self.prosody.wait_for_session("bob@localhost")

        mark = d.mark()
        d.write_config(self.config([keep, self.account("add", "carol")]))
        d.signal(signal.SIGHUP)
        d.wait_for(rx_reloaded(1, 1, 1, 0), 10, since=mark)
        carol_full = self.wait_online(d, "add", since=mark)
        self.prosody.wait_for_session_line(bob_sid, r"Received </stream:stream>", 10)

        # The unchanged account kept its stream: no new connection, no close at Prosody.
        self.assertEqual(d.count(rx_connecting("keep"), since=mark), 0)
        self.assertEqual(d.count(rx_connecting("drop"), since=mark), 0)
        self.assertEqual(self.prosody.session_ids("alice@localhost"), [alice_sid])
        alice_lines = "\n".join(self.prosody.session_lines(alice_sid))
        self.assertNotIn("Received </stream:stream>", alice_lines)
        self.assertNotIn("Client disconnected", alice_lines)

        peer = self.peer("bob")
        peer.ping(alice_full)
        peer.ping(carol_full)
        with self.assertRaises(IqError):  # the removed account's resource is gone
            peer.ping(bob_full)
        self.assertTrue(d.running)


if __name__ == "__main__":
    harness.main()
