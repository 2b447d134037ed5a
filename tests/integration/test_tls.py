"""Certificate verification is never skipped: without the test CA, with a certificate for
another name, with a certificate from an untrusted CA, stanzad refuses the server, says
so, and keeps retrying with backoff without ever authenticating."""

import shutil
import subprocess

import harness
from harness import IntegrationTest, rx_online, rx_tls_failed


class TlsTest(IntegrationTest):
    def check_refused(self, prosody, **account):
        d = self.start_stanzad([self.account("home", "alice", prosody=prosody, **account)])
        first = d.wait_for(f"{rx_tls_failed('home')}|{rx_online('home')}", 15)
        self.assertRegex(first.string, rx_tls_failed("home"), "online with a bad certificate")
        # The second failure proves the retry (after the backoff), with no fixed wait.
        d.wait_for(rx_tls_failed("home"), 20, nth=2)
        self.assertEqual(d.count(rx_online("home")), 0)
        self.assertNotIn("Authenticated as", prosody.log_text())
        self.assertNotIn("<auth ", prosody.log_text())  # no credentials sent, not even PLAIN
        self.assertTrue(d.running)

    def test_ca_file_omitted(self):
        # The system trust store does not know the test CA.
        self.check_refused(self.prosody, ca_file=None)

    def test_system_directory_read_when_verifying(self):
        # Without ca_file, the system's CAs come from its hashed directory, read when a
        # chain is verified (the bundle file is not parsed at start, docs/performance.md);
        # SSL_CERT_DIR names it, as OpenSSL honours (an SSL_CERT_FILE, which some machines
        # set, would be parsed whole: emptied here). With the test CA in it, the server is
        # trusted; test_ca_file_omitted is the same without it.
        cadir = self.tmp / "system-cas"
        cadir.mkdir()
        subject_hash = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", str(self.certs.ca_cert)],
                                      check=True, capture_output=True, text=True).stdout.strip()
        shutil.copy(self.certs.ca_cert, cadir / f"{subject_hash}.0")
        d = self.start_stanzad([self.account("home", "alice", ca_file=None)],
                               env={"SSL_CERT_DIR": str(cadir), "SSL_CERT_FILE": ""})
        d.wait_for(rx_online("home"), 20)
        self.assertEqual(d.count(rx_tls_failed("home")), 0)

    def test_wrong_host_name(self):
        other = self.start_prosody("wrong-host", cert=self.certs.wrong_host_cert,
                                   key=self.certs.wrong_host_key)
        self.check_refused(other)

    def test_untrusted_ca(self):
        other = self.start_prosody("untrusted", cert=self.certs.untrusted_server_cert,
                                   key=self.certs.untrusted_server_key)
        self.check_refused(other)

    def test_certificate_names_only_the_connect_address(self):
        # RFC 6120 13.7.2.1 / RFC 6125: the reference identity is the XMPP domain
        # ("localhost"), not the host we connect to (127.0.0.1).
        other = self.start_prosody("ip-only", cert=self.certs.ip_only_cert,
                                   key=self.certs.ip_only_key)
        self.check_refused(other)


if __name__ == "__main__":
    harness.main()
