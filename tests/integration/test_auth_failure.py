"""A wrong password is reported once and not retried (retrying would only lock the
account on servers that count failures); the other accounts are not affected; fixing the
password in the config and reloading brings the account online."""

import re
import signal

import harness
from harness import (IntegrationTest, rx_auth_failed, rx_connecting, rx_online,
                     rx_reloaded)

# Prosody 0.12.3 answers a failed SASL exchange with this element, logged at debug level
# ("Sending[c2s_unauthed]: <failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>").
SASL_FAILURE = re.compile(r"Sending\[c2s_unauthed\]: <failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'")


class AuthFailureTest(IntegrationTest):
    def test_wrong_password_is_not_retried(self):
        d = self.start_stanzad([self.account("good", "alice"),
                                self.account("bad", "bob", password="not-bobs-password")])
        full = self.wait_online(d, "good")
        failed = d.wait_for(f"{rx_auth_failed('bad')}|{rx_online('bad')}", 15)
        self.assertRegex(failed.string, rx_auth_failed("bad"), "online with a wrong password")
        carol = self.peer("carol")
        carol.ping(full)  # the daemon is alive and serving the good account

        # No reconnection of "bad". An absence can only be waited out: the window starts
        # after the failure was logged, the good account was online and a ping round trip
        # through the daemon completed; it lasts 3 s, longer than the first reconnect
        # backoff (about 1.3 s plus jitter), so a daemon that retries shows it here.
        first = d.index(rx_connecting("bad"))
        d.assert_absent(rx_connecting("bad"), window=3.0, since=first + 1)

        self.assertEqual(d.count(rx_connecting("bad")), 1)
        self.assertEqual(d.count(r"account bad: authentication failed"), 1)
        self.assertEqual(d.count(rx_online("bad")), 0)
        self.assertEqual(d.count(r"account bad: .*reconnecting in"), 0)
        self.assertTrue(d.running)
        # The server saw exactly one failed attempt (alice and carol succeeded).
        self.assertEqual(len(SASL_FAILURE.findall(self.prosody.log_text())), 1)

    def test_fixed_password_after_reload(self):
        good = self.account("good", "alice")
        d = self.start_stanzad([good, self.account("bad", "bob", password="wrong")])
        self.wait_online(d, "good")
        d.wait_for(rx_auth_failed("bad"), 15)

        mark = d.mark()
        d.write_config(self.config([good, self.account("bad", "bob")]))
        d.signal(signal.SIGHUP)
        d.wait_for(rx_reloaded(1, 0, 0, 1), 10, since=mark)
        full = self.wait_online(d, "bad", since=mark)
        self.peer("carol").ping(full)
        self.assertEqual(d.count(rx_connecting("good"), since=mark), 0)


if __name__ == "__main__":
    harness.main()
