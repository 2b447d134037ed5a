"""SASL EXTERNAL with a client certificate (issue 12 item 1; RFC 6120 §6.3, XEP-0178)
against Prosody 0.12 with prosody-modules' mod_client_certs.

The server side, as found on Debian 12 (prosody 0.12.3, prosody-modules hg20230223, LuaSec
1.2, Lua 5.4); harness_certs.py has the details beside client_certs_plugin():
- Prosody asks a c2s client for a certificate only with `ssl = { verify = { "peer",
  "client_once" } }` (Prosody(request_client_certs=True)); its default is verify "none".
  Core's verifyext { "lsec_continue", "lsec_ignore_purpose" } lets any certificate
  through the handshake: mod_client_certs compares it with the user's pinned ones.
- mod_client_certs needs its ad-hoc permission "user" renamed "any" to load on 0.12 (a
  copy in the test's plugin_paths). It offers EXTERNAL only to a client that presented a
  certificate, on STARTTLS and direct TLS alike.
- Pinning through the module (XEP-0257 <append/> or its ad-hoc command) crashes on Lua 5.4:
  util.x509.der2pem passes (#data-1)/64, a float, as gsub's count ("number has no integer
  representation"). The tests write the module's store file instead (pin_client_cert).
- A certificate that is not pinned for the user: <failure><not-authorized/></failure>, no
  <text/>.

The daemon's contract: `client_cert`/`client_key` (PEM; an encrypted key's passphrase from
`client_key_password_command`); an account may have no password; `sasl` orders the
mechanism families (default EXTERNAL first when a certificate is set); the login line ends
in `(EXTERNAL)`; a refused certificate is `authentication failed: REASON; not retrying
until the config changes` with the server's condition; `--check-config` finds a key that
does not belong to its certificate (file and line, exit 2).
"""

import os
import re
import shlex
import shutil
import tempfile
import textwrap
import unittest
from pathlib import Path

import harness
from harness import (JsonlTest, Prosody, account_section, client_certs_plugin,
                     make_client_cert, pin_client_cert, run_stanzad, rx_auth_failed,
                     rx_connecting, rx_online)

DOMAIN = harness.XMPP_DOMAIN
KEY_PASSPHRASE = "correct horse battery staple 12"


def rx_online_mech(account: str) -> str:
    """`account NAME: online as FULLJID (MECHANISM)`; groups: the full JID, the mechanism."""
    return rf"account {re.escape(account)}: online as (\S+) \((.+)\)\s*$"


def rx_failed_reason(account: str) -> str:
    """The authentication-failure line; group: the reason."""
    return (rf"account {re.escape(account)}: authentication failed: (.*); "
            rf"not retrying until the config changes")


# Prosody 0.12.3 logs each stanza's top tag under the session id (attribute order varies):
#   c2s55d5c8b0a1c0  debug  Received[c2s_unauthed]: <auth mechanism='EXTERNAL' xmlns=...>
AUTH_LINE = re.compile(r"Received\[c2s_unauthed\]: <auth\b[^>]*\bmechanism='([^']+)'")
SESSION_ID = re.compile(r"\s(c2s[0-9a-f]+)\s")
SASL_FAILURE = re.compile(
    r"Sending\[c2s_unauthed\]: <failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'")


class ExternalTest(JsonlTest):
    """Each test gets a Prosody that asks for client certificates, runs mod_client_certs
    and listens for STARTTLS and direct TLS; the certificates are shared by the class."""

    @classmethod
    def setUpClass(cls):
        cls.class_tmp = Path(tempfile.mkdtemp(prefix="stanzad-ExternalTest-certs-"))
        cls.shared_certs = harness.make_ca(cls.class_tmp / "certs", DOMAIN)
        # alice's pinned certificate, another one of hers that is never pinned, and one
        # whose key is encrypted.
        cls.alice_cert, cls.alice_key = make_client_cert(cls.shared_certs, "alice@localhost")
        cls.other_cert, cls.other_key = make_client_cert(cls.shared_certs, "alice@localhost",
                                                         "client-alice-unpinned")
        cls.locked_cert, cls.locked_key = make_client_cert(
            cls.shared_certs, "alice@localhost", "client-alice-locked",
            passphrase=KEY_PASSPHRASE)

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("STANZAD_KEEP_TMP"):
            shutil.rmtree(cls.class_tmp, ignore_errors=True)

    def make_certs(self):
        return self.shared_certs

    def start_prosody(self, name="prosody", users=None, **options):
        options.setdefault("modules", list(Prosody.DEFAULT_MODULES) + ["client_certs"])
        options.setdefault("plugin_paths", [client_certs_plugin(self.tmp / "plugins")])
        options.setdefault("request_client_certs", True)
        options.setdefault("direct_tls", True)
        return super().start_prosody(name, users, **options)

    # -- helpers
    def cert_account(self, name="home", *, cert=None, key=None, password=False,
                     tls="starttls", port=None, **extra):
        """alice with a client certificate; with password=True her password too."""
        acct = account_section(name, self.jid("alice"),
                               port=port or (self.prosody.direct_tls_port if tls == "direct"
                                             else self.prosody.port),
                               ca_file=self.certs.ca_cert,
                               password=self.USERS["alice"] if password else None,
                               tls=tls, **extra)
        acct["client_cert"] = str(cert or self.alice_cert)
        acct["client_key"] = str(key or self.alice_key)
        return acct

    def auths(self, prosody=None):
        """(session id, mechanism) of every SASL <auth/> Prosody received, in order."""
        out = []
        for line in (prosody or self.prosody).log_text().splitlines():
            m = AUTH_LINE.search(line)
            if m:
                out.append((SESSION_ID.search(line).group(1), m.group(1)))
        return out

    def session_mechanisms(self, bare_jid):
        """Mechanisms of the <auth/> elements sent in the session(s) that authenticated as
        `bare_jid`."""
        sids = self.prosody.session_ids(bare_jid)
        return [mech for sid, mech in self.auths() if sid in sids]

    def exchange(self, d, full, bob, n=3):
        """n messages each way between the daemon's account "home" and bob, each counted
        exactly once by id at the other end."""
        c = self.client(d, hello="tests", replay=False)
        out_ids = [f"ext-out-{i}" for i in range(n)]
        for i, cid in enumerate(out_ids):
            r = c.request("send", account="home", to=self.jid("bob"), body=f"to bob {cid}",
                          type="chat", client_id=cid)
            self.assertIs(r.get("ok"), True, r)
        for cid in out_ids:
            m = bob.wait_message(id=cid)
            self.assertEqual(m.body, f"to bob {cid}")
            self.assertTrue(m.from_.startswith(full), m.from_)
        in_ids = [bob.send_message(full, f"to alice ext-in-{i}", id=f"ext-in-{i}")
                  for i in range(n)]
        for cid in in_ids:
            c.wait_event("message", body=f"to alice {cid}")
        bob.sync()  # every reply to bob that was on its way has arrived
        for cid in out_ids:
            self.assertEqual(len(bob.received(id=cid)), 1, f"{cid} reached bob more than once")
        for cid in in_ids:
            self.assertEqual(len(c.find_events("message", body=f"to alice {cid}")), 1, cid)

    # (a)
    def test_certificate_only_account_logs_in_with_external(self):
        pin_client_cert(self.prosody, "alice", self.alice_cert)
        d = self.start_daemon([self.cert_account()], online=False)
        full, mech = d.wait_for(rx_online_mech("home"), 15).groups()
        self.assertEqual(full, "alice@localhost/stanzad")
        self.assertEqual(mech, "EXTERNAL")
        # Prosody: the session that became alice sent exactly one <auth/>, EXTERNAL.
        self.assertEqual(self.session_mechanisms("alice@localhost"), ["EXTERNAL"])
        self.assertIn("client_certs\tinfo\tClient Certificate: ", self.prosody.log_text())

        bob = self.peer("bob")
        self.exchange(d, full, bob)

    # (b)
    def test_certificate_that_is_not_pinned_is_refused_once(self):
        pin_client_cert(self.prosody, "alice", self.alice_cert)
        d = self.start_daemon([self.cert_account(cert=self.other_cert, key=self.other_key)],
                              online=False)
        m = d.wait_for(f"{rx_failed_reason('home')}|{rx_online('home')}", 15)
        self.assertRegex(m.string, rx_auth_failed("home"), "online with an unpinned certificate")
        reason = m.group(1)
        # The server's condition (mod_client_certs sends no <text/>).
        self.assertIn("not-authorized", reason)
        self.assertIn("EXTERNAL", reason)

        # Not retried: the window starts after the failure was logged and lasts 3 s,
        # longer than the first reconnect backoff (about 1.3 s plus jitter).
        first = d.index(rx_connecting("home"))
        d.assert_absent(rx_connecting("home"), window=3.0, since=first + 1)
        c = self.client(d, hello="tests")
        accounts = c.ok("accounts")["accounts"]
        self.assertEqual([(a["account"], a["state"]) for a in accounts], [("home", "failed")])
        self.assertIn("not-authorized", accounts[0]["reason"])
        # Prosody saw one attempt, EXTERNAL, and refused it once.
        self.assertEqual([mech for _sid, mech in self.auths()], ["EXTERNAL"])
        self.assertEqual(len(SASL_FAILURE.findall(self.prosody.log_text())), 1)
        self.assertEqual(self.prosody.session_ids("alice@localhost"), [])

    # (c)
    def test_sasl_order_with_certificate_and_password(self):
        pin_client_cert(self.prosody, "alice", self.alice_cert)
        password_only = account_section("password-only", self.jid("alice"),
                                        port=self.prosody.port, ca_file=self.certs.ca_cert,
                                        password=self.USERS["alice"],
                                        resource="password-only")
        d = self.start_daemon([
            self.cert_account("scram-first", password=True, resource="scram-first",
                              sasl=["SCRAM", "EXTERNAL"]),
            self.cert_account("default", password=True, resource="default"),
            password_only,
        ], online=False)
        full1, mech1 = d.wait_for(rx_online_mech("scram-first"), 15).groups()
        full2, mech2 = d.wait_for(rx_online_mech("default"), 15).groups()
        full3, mech3 = d.wait_for(rx_online_mech("password-only"), 15).groups()
        # This Prosody runs TLS 1.3, where 0.12 offers no -PLUS: plain SCRAM-SHA-1.
        self.assertEqual((full1, mech1), ("alice@localhost/scram-first", "SCRAM-SHA-1"))
        self.assertEqual((full2, mech2), ("alice@localhost/default", "EXTERNAL"))
        # Without a certificate Prosody offers no EXTERNAL (mod_client_certs logs
        # "No Client Certificate" for that session): SCRAM.
        self.assertEqual((full3, mech3), ("alice@localhost/password-only", "SCRAM-SHA-1"))
        self.assertIn("client_certs\terror\tNo Client Certificate", self.prosody.log_text())
        # Each session sent one <auth/>: SCRAM-SHA-1 for the first, EXTERNAL for the second.
        by_resource = {}
        for sid in self.prosody.session_ids("alice@localhost"):
            lines = self.prosody.session_lines(sid)
            bound = next(l for l in lines if "Resource bound: " in l)
            resource = bound.rsplit("/", 1)[1].strip()
            by_resource[resource] = [AUTH_LINE.search(l).group(1) for l in lines
                                     if AUTH_LINE.search(l)]
        self.assertEqual(by_resource, {"scram-first": ["SCRAM-SHA-1"], "default": ["EXTERNAL"],
                                       "password-only": ["SCRAM-SHA-1"]})
        bob = self.peer("bob")
        for full in (full1, full2, full3):
            bob.ping(full)

    def test_server_that_offers_no_external(self):
        """A Prosody that does not ask for client certificates (its default, verify "none")
        never offers EXTERNAL: the certificate is not even sent. With a password too the
        daemon uses SCRAM; with only a certificate it fails without retrying and sends no
        <auth/> ("no acceptable SASL mechanism: ... the server does not offer EXTERNAL for
        our client certificate; no password is set ...")."""
        plain = self.start_prosody("plain", request_client_certs=False, direct_tls=False)
        pin_client_cert(plain, "alice", self.alice_cert)
        d = self.start_daemon([
            self.cert_account("both", password=True, resource="both", port=plain.port),
            self.cert_account("cert-only", resource="cert-only", port=plain.port),
        ], online=False)
        full, mech = d.wait_for(rx_online_mech("both"), 15).groups()
        self.assertEqual(mech, "SCRAM-SHA-1")
        m = d.wait_for(f"{rx_failed_reason('cert-only')}|{rx_online('cert-only')}", 15)
        self.assertRegex(m.string, rx_auth_failed("cert-only"), "online without EXTERNAL")
        self.assertIn("EXTERNAL", m.group(1))
        first = d.index(rx_connecting("cert-only"))
        d.assert_absent(rx_connecting("cert-only"), window=3.0, since=first + 1)
        self.assertEqual([mech for _sid, mech in self.auths(prosody=plain)], ["SCRAM-SHA-1"])
        # mod_client_certs is loaded but no certificate arrived: Prosody did not ask.
        self.assertIn("client_certs\terror\tNo Client Certificate", plain.log_text())
        self.assertNotIn("Client Certificate: ", plain.log_text())
        self.peer("bob", prosody=plain).ping(full)

    # (d)
    def test_certificate_is_presented_in_direct_tls(self):
        pin_client_cert(self.prosody, "alice", self.alice_cert)
        d = self.start_daemon([self.cert_account(tls="direct")], online=False)
        host, port = d.wait_for(rx_connecting("home")).groups()
        self.assertEqual(int(port), self.prosody.direct_tls_port)
        full, mech = d.wait_for(rx_online_mech("home"), 15).groups()
        self.assertEqual(mech, "EXTERNAL")
        sid = self.prosody.wait_for_session("alice@localhost")
        lines = self.prosody.session_lines(sid)
        self.assertFalse([l for l in lines if "<starttls" in l], "STARTTLS on a direct-TLS port")
        self.assertEqual(self.session_mechanisms("alice@localhost"), ["EXTERNAL"])
        self.peer("bob").ping(full)

    # (e)
    def test_encrypted_key_with_password_command(self):
        self.assertIn("BEGIN ENCRYPTED PRIVATE KEY", self.locked_key.read_text())
        pin_client_cert(self.prosody, "alice", self.locked_cert)
        command = f"printf '%s\\n' {shlex.quote(KEY_PASSPHRASE)}"
        d = self.start_daemon([self.cert_account(cert=self.locked_cert, key=self.locked_key,
                                                 client_key_password_command=command)],
                              online=False)
        full, mech = d.wait_for(rx_online_mech("home"), 15).groups()
        self.assertEqual(mech, "EXTERNAL")
        self.peer("bob").ping(full)
        self.assertNotIn(KEY_PASSPHRASE, d.output())


CHECK_CONFIG = textwrap.dedent("""\
    [daemon]
    state_dir = "@TMP@/state"
    socket = "@TMP@/stanzad.sock"

    [[account]]
    name = "home"
    jid = "alice@localhost"
    host = "127.0.0.1"
    port = 5222
    client_cert = "@CERT@"
    client_key = "@KEY@"
    """)  # client_cert: line 10, client_key: line 11
CERT_LINE, KEY_LINE = 10, 11


class ExternalCheckConfigTest(unittest.TestCase):
    """--check-config reads the certificate and key (no server involved)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="stanzad-ExternalCheckConfigTest-"))
        certs = harness.make_ca(cls.tmp / "certs", DOMAIN)
        cls.alice_cert, cls.alice_key = make_client_cert(certs, "alice@localhost")
        cls.bob_cert, cls.bob_key = make_client_cert(certs, "bob@localhost")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check(self, cert, key):
        path = self.tmp / f"{self._testMethodName}.toml"
        text = (CHECK_CONFIG.replace("@TMP@", str(self.tmp)).replace("@CERT@", str(cert))
                .replace("@KEY@", str(key)))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        proc = run_stanzad(["--check-config", "-c", path])
        return path, proc.returncode, proc.stdout + proc.stderr

    def error_lines(self, path, out):
        return re.findall(rf"(?m)^{re.escape(str(path))}:(\d+):\d+: error: (.*)$", out)

    def test_matching_pair_is_accepted(self):
        path, rc, out = self.check(self.alice_cert, self.alice_key)
        self.assertEqual(rc, 0, out)
        self.assertEqual(self.error_lines(path, out), [], out)

    # (f)
    def test_mismatched_key_is_an_error_with_file_and_line(self):
        path, rc, out = self.check(self.alice_cert, self.bob_key)
        self.assertEqual(rc, 2, out)
        errors = self.error_lines(path, out)
        self.assertEqual(len(errors), 1, out)
        line, message = errors[0]
        # The pair is at fault: either key's line will do; the message names the key file.
        self.assertIn(int(line), (CERT_LINE, KEY_LINE), out)
        self.assertRegex(message, r"client_(key|cert)\b", out)
        self.assertIn(str(self.bob_key), message, out)

    def test_unreadable_certificate_is_an_error_with_file_and_line(self):
        missing = self.tmp / "no-such-cert.pem"
        path, rc, out = self.check(missing, self.alice_key)
        self.assertEqual(rc, 2, out)
        errors = self.error_lines(path, out)
        self.assertEqual([int(line) for line, _ in errors], [CERT_LINE], out)
        self.assertIn(str(missing), errors[0][1], out)


if __name__ == "__main__":
    harness.main()
