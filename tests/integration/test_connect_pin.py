"""Pinned certificates (tls_pin = ["sha256/BASE64"], the SHA-256 of the server
certificate's SubjectPublicKeyInfo): a Prosody with a self-signed certificate that no
trust store knows (and no ca_file) is refused without a pin, showing the key it presented;
accepted with the right pin (alone or among others); failed, closed and not retried with a
wrong pin, also when the chain is valid. `stanzactl pin ACCOUNT` (and the JSON op `pin`)
shows the server's pin and certificate and changes nothing.

The expected pin is computed here with the openssl CLI, the way a user would
(harness.spki_pin).
"""

import base64
import re
import secrets

import harness
from harness import (Peer, make_self_signed, rx_connecting, rx_online, rx_tls_failed,
                     spki_pin)
from netpeers import NetTest


def rx_refused_unpinned(account: str) -> str:
    """Without a pin: `... TLS certificate verification failed: REASON (checking the
    certificate of DOMAIN); the server's key is sha256/X; reconnecting in Ns`;
    groups: reason, pin."""
    return (rf"account {re.escape(account)}: TLS certificate verification failed: (.*); "
            rf"the server's key is (sha256/[A-Za-z0-9+/=]+); reconnecting in [0-9.]+s")


def rx_pin_mismatch(account: str) -> str:
    """`account NAME: disconnected: TLS certificate verification failed: the server's key
    sha256/X matches no tls_pin; not retrying until the config changes`; group: pin."""
    return (rf"account {re.escape(account)}: disconnected: TLS certificate verification "
            rf"failed: the server's key (sha256/[A-Za-z0-9+/=]+) matches no tls_pin; "
            rf"not retrying until the config changes")


def random_pin(first_byte=None) -> str:
    """A pin of no key we know. Its base64 starts with "/" exactly when the digest's first
    byte is 0xFC..0xFF (1 key in 64): random pins avoid that unless asked
    (test_pin_whose_base64_starts_with_a_slash)."""
    if first_byte is None:
        first_byte = secrets.randbelow(0xFC)
    return "sha256/" + base64.b64encode(bytes([first_byte]) + secrets.token_bytes(31)).decode()


class PinTest(NetTest):
    DOMAIN = harness.XMPP_DOMAIN   # "localhost": no DNS here, host and port are given

    def self_signed_prosody(self, names=("DNS:localhost",), name="self-signed"):
        """A Prosody whose certificate signs itself (not the test CA); returns it and the
        certificate's path."""
        cert, key = make_self_signed(self.tmp / "certs", name, list(names))
        return self.start_prosody(name, cert=cert, key=key), cert

    def start_home(self, prosody, **extra):
        """stanzad with alice as "home" on `prosody`, no ca_file: only the system trust
        store, and whatever tls_pin says."""
        acct = self.account("home", "alice", prosody=prosody, ca_file=None, **extra)
        return self.start_daemon([acct], online=False)

    def ctl(self, d, *args):
        p = harness.run_stanzactl(["-s", d.socket_path, *args], timeout=20)
        self.assertEqual(p.returncode, 0, f"stanzactl {' '.join(args)}: exit {p.returncode}"
                                          f"\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return p.stdout

    @staticmethod
    def pin_fields(out):
        """`stanzactl pin` output: {"pin": ..., "subject": ..., ...} (first word of a line
        is the field, the rest its value)."""
        fields = {}
        for line in out.splitlines():
            key, _, value = line.strip().partition(" ")
            if key:
                fields[key] = value.strip()
        return fields

    def test_refused_without_a_pin_shows_the_presented_key(self):
        p, cert = self.self_signed_prosody()
        expected = spki_pin(cert)
        d = self.start_home(p)
        first = d.wait_for(f"{rx_tls_failed('home')}|{rx_online('home')}", 15)
        m = re.search(rx_refused_unpinned("home"), first.string)
        self.assertIsNotNone(m, f"not the unpinned refusal of the contract: {first.string}")
        reason, presented = m.groups()
        self.assertRegex(reason, r"self.signed certificate")
        self.assertIn("(checking the certificate of localhost)", reason)
        self.assertEqual(presented, expected)
        self.wait_state(d, "home", "disconnected", "certificate")
        self.status_row(d, "home", r"\bdisconnected\b")
        # Retried with backoff (a self-signed server may be replaced by a proper one).
        d.wait_for(rx_refused_unpinned("home"), 20, nth=2)
        self.assertEqual(d.count(rx_online("home")), 0)
        self.assertNotIn("<auth ", p.log_text())  # no credentials to an unverified server
        self.assertNotIn("Authenticated as", p.log_text())

    def test_accepted_with_the_right_pin(self):
        p, cert = self.self_signed_prosody()
        d = self.start_home(p, tls_pin=[spki_pin(cert)])
        full = self.wait_online(d, "home")
        self.assertEqual(d.count(rx_tls_failed("home")), 0)
        self.assertEqual(self.accounts(d)["home"]["state"], "online")
        # A peer that trusts exactly this certificate reaches the daemon's session.
        bob = Peer("bob@localhost", self.USERS["bob"], cert, p.port)
        self.addCleanup(bob.close)
        bob.ping(full)

    def test_pin_is_the_identity_when_it_is_the_only_trust(self):
        # The self-signed certificate does not even name the domain: the pin vouches.
        p, cert = self.self_signed_prosody(names=("DNS:home.example",), name="other-name")
        d = self.start_home(p, tls_pin=[spki_pin(cert)])
        self.wait_online(d, "home")

    def test_one_of_two_pins_matches(self):
        # The usual key rollover: the old and the new key are both pinned.
        p, cert = self.self_signed_prosody()
        d = self.start_home(p, tls_pin=[random_pin(), spki_pin(cert)])
        self.wait_online(d, "home")

    def test_pin_whose_base64_starts_with_a_slash(self):
        # "sha256/" + "/...": a valid pin (the base64 of a digest whose first byte is 0xFC
        # or more), not curl's "sha256//" typo. Next to the right pin it must be accepted.
        p, cert = self.self_signed_prosody()
        slash = random_pin(0xFC)
        self.assertTrue(slash.startswith("sha256//"), slash)
        d = self.start_home(p, tls_pin=[slash, spki_pin(cert)])
        self.wait_online(d, "home")

    def test_wrong_pin_fails_closed_and_is_not_retried(self):
        p, cert = self.self_signed_prosody()
        expected, wrong = spki_pin(cert), random_pin()
        d = self.start_home(p, tls_pin=[wrong])
        first = d.wait_for(rf"account home: (disconnected: )?TLS certificate verification "
                           rf"failed: |{rx_online('home')}", 15)
        m = re.search(rx_pin_mismatch("home"), first.string)
        self.assertIsNotNone(m, f"not the pin mismatch of the contract: {first.string}")
        self.assertEqual(m.group(1), expected, "the log must show the key presented")
        self.assertNotIn(wrong, first.string)
        self.wait_state(d, "home", "failed", expected)   # the presented key, in status too
        self.status_row(d, "home", rf"\bfailed\b.*{re.escape(expected)}")
        # Not retried: the window outlasts the first backoff (at most 1 s).
        d.assert_absent(rx_connecting("home"), window=2.0, since=d.index(first.re) + 1)
        self.assertEqual(d.count(rx_connecting("home")), 1)
        self.assertNotIn("<auth ", p.log_text())

    def test_wrong_pin_fails_even_with_a_valid_chain(self):
        # The test CA vouches for the server, but a pin is a requirement of its own.
        acct = self.account("home", "alice", tls_pin=[random_pin()])  # ca_file: test CA
        d = self.start_daemon([acct], online=False)
        m = d.wait_for(f"{rx_pin_mismatch('home')}|{rx_online('home')}", 15)
        self.assertRegex(m.string, rx_pin_mismatch("home"), "online despite a wrong pin")
        self.assertEqual(m.group(1), spki_pin(self.certs.server_cert))
        self.wait_state(d, "home", "failed")
        self.assertNotIn("<auth ", self.prosody.log_text())

    def test_stanzactl_pin_shows_the_key_and_changes_nothing(self):
        p, cert = self.self_signed_prosody()
        expected = spki_pin(cert)
        d = self.start_home(p)
        d.wait_for(rx_refused_unpinned("home"), 15)
        self.wait_state(d, "home", "disconnected", "certificate")
        config_before = d.config_path.read_bytes()
        failures = d.count(rx_refused_unpinned("home"))

        fields = self.pin_fields(self.ctl(d, "pin", "home"))
        self.assertEqual(fields.get("pin"), expected, fields)
        self.assertIn("localhost", fields.get("subject", ""), fields)
        self.assertEqual(fields.get("issuer"), fields.get("subject"), "self-signed")
        self.assertIn("DNS:localhost", fields.get("names", ""), fields)
        self.assertRegex(fields.get("trusted", ""), r"^no: .*self.signed", fields)

        c = self.client(d, hello="tests-pin", replay=False)
        r = c.request("pin", account="home", timeout=20)
        self.assertIs(r.get("ok"), True, r)
        self.assertEqual(r["pin"], expected)
        self.assertIs(r["trusted"], False, r)
        self.assertRegex(r["verify_error"], r"self.signed", r)
        self.assertIn("DNS:localhost", r["names"], r)
        self.assertEqual(r["subject"], fields["subject"])
        self.assertEqual(r["issuer"], fields["issuer"])

        # Nothing changed: same config file, same state, and the next attempt is refused
        # like the ones before (the pin was shown, not trusted).
        self.assertEqual(d.config_path.read_bytes(), config_before)
        self.wait_state(d, "home", "disconnected", "certificate")
        d.wait_for(rx_refused_unpinned("home"), 20, nth=failures + 1)
        self.assertEqual(d.count(rx_online("home")), 0)
        self.assertNotIn("<auth ", p.log_text())  # pin sent no credentials either
        # Which server answered: as configured, how TLS started, and the address.
        where = f"127.0.0.1:{p.port} (STARTTLS) at 127.0.0.1:{p.port}"
        self.assertEqual((fields.get("server"), r["server"]), (where,) * 2,
                         "server of `stanzactl pin` and of the JSON op pin")

    def test_stanzactl_pin_on_a_trusted_server(self):
        d = self.start_daemon()  # alice on the CA-signed Prosody, online
        fields = self.pin_fields(self.ctl(d, "pin", "home"))
        self.assertEqual(fields.get("pin"), spki_pin(self.certs.server_cert), fields)
        self.assertEqual(fields.get("trusted"), "yes", fields)
        self.assertIn("stanzad test CA", fields.get("issuer", ""), fields)
        self.assertEqual(self.accounts(d)["home"]["state"], "online")
        self.assertEqual(d.count(rx_connecting("home")), 1, "pin touched the session")
        self.assertEqual(fields.get("server"),
                         f"127.0.0.1:{self.prosody.port} (STARTTLS) at 127.0.0.1:{self.prosody.port}", fields)


if __name__ == "__main__":
    harness.main()
