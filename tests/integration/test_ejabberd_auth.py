"""stanzad's SASL choices against ejabberd 23.01 (issue 12): SASL EXTERNAL with a client
certificate (XEP-0178), SCRAM when there is no certificate or when `sasl` puts SCRAM
first, and SCRAM-SHA-256-PLUS (channel binding) where it can be used.

What ejabberd 23.01 (Debian 12, fast_tls/p1_tls 1.1.16) does, found with these tests and
by hand (see also ejabberd.py and /work/shared/notes/testing-with-real-peers.md):
- `tls_verify: true` + `cafile` on a c2s listener asks for a client certificate (does not
  require one) and offers EXTERNAL to every client, with or without a certificate, after
  STARTTLS and on a direct-TLS (`tls: true`) listener alike. It also offers PLAIN (only
  DIGEST-MD5 and X-OAUTH2 are disabled in ejabberd.py's config), SCRAM-SHA-256 and
  SCRAM-SHA-256-PLUS, in this order: EXTERNAL, PLAIN, SCRAM-SHA-256-PLUS, SCRAM-SHA-256.
- EXTERNAL with an empty authorization identity (`=`) authenticates as the JID in the
  certificate's xmppAddr ("Accepted c2s EXTERNAL authentication for JID by pkix backend"),
  whatever JID the stream header's `from` or the client's account says. EXTERNAL without a
  certificate fails with "Failed c2s EXTERNAL authentication from IP: Failed to get peer
  certificate" (slixmpp, the test's peer, always tries EXTERNAL first when it is offered:
  that line in the log is bob's; he then logs in with SCRAM-SHA-256-PLUS and tls-unique,
  which ejabberd accepts under TLS 1.3: both ends take OpenSSL's Finished-message value,
  which RFC 5929 does not define for TLS 1.3).
- A certificate from a CA that is not `cafile`: the TLS handshake still succeeds; EXTERNAL
  fails with <not-authorized/> and OpenSSL's verdict as <text/> ("unable to verify the
  first certificate"), and the stream stays open, so a client may go on with SCRAM.
- -PLUS is offered with no XEP-0440 <sasl-channel-binding/> list, also under TLS 1.3; it
  knows only tls-unique. A `p=tls-exporter` gs2 header is refused at once, on the first
  message: <failure><not-authorized/><text>Invalid channel binding</text></failure>.
- `protocol_options` on a c2s listener is handed to fast_tls (OpenSSL SSL_OP_* names joined
  with "|") and *replaces* its default "no_sslv3|cipher_server_preference|no_compression":
  ["no_sslv3", "cipher_server_preference", "no_compression", "no_tlsv1_3"] keeps those and
  caps the listener at TLS 1.2 (ejabberd.TLS12_ONLY).
- With loglevel debug it logs every stanza, SASL payloads in clear base64 included
  ("Received XML on stream = <<\"<auth ... mechanism='...'>BASE64</auth>\">>"): the tests
  read the gs2 header of the client-first-message from there.
- Its logger writes the file a little behind the events: a test that took log_mark()
  right after the previous test found that test's last <auth/> lines after its mark.
  Each test starts from Ejabberd.log_barrier() instead (a TCP connection whose "Accepted
  connection 127.0.0.1:PORT" line is waited for), and waits for ejabberd's
  "Accepted/Failed c2s ... authentication" line before reading the <auth/> lines.

The daemon's side (log_level "trace"): `SEND <auth xmlns=... mechanism='MECH'>[redacted]`
(the payload is redacted, the mechanism is not), and `account NAME: online as JID (MECH)`.

- EjabberdExternalTest (tls_verify on, a direct-TLS listener, loglevel debug; one server
  for the class; default TLS, which is 1.3 here):
  - a certificate and no password: EXTERNAL, a message each way counted by id;
  - a password and no certificate: SCRAM-SHA-256, never EXTERNAL (daemon and server log);
  - certificate + password: EXTERNAL by default, SCRAM with sasl = ["SCRAM", "EXTERNAL"];
  - direct TLS with a certificate: EXTERNAL;
  - TLS 1.3: SCRAM-SHA-256 without -PLUS (gs2 flag `n`), and channel_binding = "required"
    fails (tls-exporter refused), not retried;
  - bob's certificate in alice's account: ejabberd authenticates bob; the daemon refuses
    the bound JID and never comes online (but reconnects, see the test);
  - a certificate from an untrusted CA: `failed` without a password; with one, SCRAM on
    the same connection and "EXTERNAL refused: ..." in the login line.
- EjabberdTls12Test (the listener capped at TLS 1.2): SCRAM-SHA-256-PLUS with tls-unique.
Run alone: /usr/bin/python3 tests/integration/test_ejabberd_auth.py
"""

import base64
import re
import secrets
import textwrap
from pathlib import Path

import harness
from harness import (JsonlTest, _ec_key, _openssl, _say, rx_auth_failed, rx_connecting,
                     rx_online)
from ejabberd import TLS12_ONLY, EjabberdMixin

ALICE = "alice@localhost"
BOB = "bob@localhost"
USERS = {"alice": "alice-Pw-1!", "bob": "bob-Pw-2!"}
XMPP_ADDR_OID = "1.3.6.1.5.5.7.8.5"  # id-on-xmppAddr (RFC 6120 §13.7.1.4)

# ejabberd (loglevel debug) logs each received stanza as an Erlang binary; the peer's
# attributes come with \"...\", the daemon's with '...'.
EJ_AUTH = re.compile(r"Received XML on stream = <<\"<auth\b[^>]*?mechanism=(?:\\\"|')"
                     r"([A-Z0-9-]+)(?:\\\"|')[^>]*>([^<]*)</auth>")
# The daemon's wire trace: the mechanism is shown, the payload redacted.
D_AUTH = re.compile(r"SEND <auth\b[^>]*\bmechanism='([^']+)'")


def rx_online_mech(account: str) -> str:
    """`account NAME: online as FULLJID (MECHANISM)`; groups: full JID, mechanism."""
    return rf"account {re.escape(account)}: online as (\S+) \((.+)\)\s*$"


def rx_failed_reason(account: str) -> str:
    return (rf"account {re.escape(account)}: authentication failed: (.*); "
            rf"not retrying until the config changes")


def make_xmpp_client_cert(certs: harness.Certs, stem: str, jid: str, *,
                          untrusted: bool = False) -> "tuple[Path, Path]":
    """A client certificate for `jid` (XEP-0178) signed by the test CA that ejabberd
    trusts (`cafile`), or with untrusted=True by the CA nobody trusts: subjectAltName
    otherName id-on-xmppAddr;UTF8:JID, extendedKeyUsage clientAuth. Made with the openssl
    CLI like harness._make_leaf; returns (cert, key)."""
    ca_cert, ca_key = ((certs.untrusted_ca_cert, certs.untrusted_ca_key) if untrusted
                       else (certs.ca_cert, certs.ca_key))
    d = certs.dir
    key = _ec_key(d / f"{stem}.key")
    csr, cnf, cert = d / f"{stem}.csr", d / f"{stem}.cnf", d / f"{stem}.pem"
    cnf.write_text(textwrap.dedent(f"""\
        [req]
        distinguished_name = dn
        prompt = no
        [dn]
        CN = {jid}
        [leaf]
        basicConstraints = critical, CA:FALSE
        keyUsage = critical, digitalSignature
        extendedKeyUsage = clientAuth
        subjectAltName = otherName:{XMPP_ADDR_OID};UTF8:{jid}
        subjectKeyIdentifier = hash
        authorityKeyIdentifier = keyid
        """))
    _openssl("req", "-config", cnf, "-new", "-key", key, "-out", csr)
    _openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
             "-set_serial", "0x" + secrets.token_hex(8), "-days", "30", "-sha256",
             "-extfile", cnf, "-extensions", "leaf", "-out", cert)
    return cert, key


def gs2_header(payload_b64: str) -> str:
    """The gs2 header of a SCRAM client-first-message ("n,,", "y,,", "p=tls-unique,,")."""
    text = base64.b64decode(payload_b64).decode()
    flag, authzid, _rest = text.split(",", 2)
    return f"{flag},{authzid},"


class _Base(EjabberdMixin, JsonlTest):
    USERS = USERS
    SHARE_EJABBERD = True

    def online(self, d, account="home", since=0):
        """Wait for the account to be online; returns (full JID, mechanism)."""
        m = d.wait_for(rx_online_mech(account), 20, since=since)
        return m.group(1), m.group(2)

    def daemon(self, account, **daemon):
        daemon.setdefault("log_level", "trace")  # the wire shows the chosen mechanism
        return self.start_daemon([account], online=False, **daemon)

    def cert_account(self, cert, key, password=False, **extra):
        """alice's account with a client certificate; password=True adds her password."""
        acct = self.account("home", "alice", client_cert=str(cert), client_key=str(key),
                            **extra)
        if not password:
            del acct["password"]
        return acct

    def ej_auths(self, since):
        """[(mechanism, base64 payload)] of the <auth/> elements ejabberd received."""
        return EJ_AUTH.findall(self.ejabberd.log_text()[since:])

    def ej_accepted(self, mechanism, jid, since):
        """Wait for ejabberd's `Accepted c2s MECH authentication for JID` line."""
        return self.ejabberd.wait_for_log(
            rf"Accepted c2s {re.escape(mechanism)} authentication for {re.escape(jid)} "
            rf"by (\w+) backend", since=since)


class EjabberdExternalTest(_Base):
    EJABBERD_OPTIONS = {"tls_verify": True, "direct_tls": True, "loglevel": "debug"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        certs = cls._shared[1]
        cls.alice_cert, cls.alice_key = make_xmpp_client_cert(certs, "client-alice", ALICE)
        cls.bob_cert, cls.bob_key = make_xmpp_client_cert(certs, "client-bob", BOB)
        cls.rogue_cert, cls.rogue_key = make_xmpp_client_cert(
            certs, "client-alice-untrusted", ALICE, untrusted=True)

    # 1
    def test_certificate_only_external_and_a_message_each_way(self):
        ej = self.ejabberd
        mark = ej.log_barrier()
        acct = self.cert_account(self.alice_cert, self.alice_key)
        self.assertNotIn("password", acct)
        d = self.daemon(acct)
        full, mechanism = self.online(d)
        self.assertEqual((full, mechanism), (f"{ALICE}/stanzad", "EXTERNAL"))
        self.assertEqual(D_AUTH.findall(d.output()), ["EXTERNAL"])
        # ejabberd took the identity from the certificate (its pkix backend), and the
        # daemon left the authorization identity empty ("=", XEP-0178 §3: one xmppAddr).
        self.assertEqual(self.ej_accepted("EXTERNAL", ALICE, mark).group(1), "pkix")
        self.assertEqual(self.ej_auths(mark), [("EXTERNAL", "=")])
        self.assertIn(full, ej.ctl("connected_users").split(), "ejabberd's sessions")

        c = self.client(d, hello="tests", replay=False)
        bob = self.peer("bob")
        # bob -> alice
        bob.send_message(ALICE, "hello from bob", id="x-b2a-1")
        e = c.wait_event("message", body="hello from bob")
        self.assertEqual((e["account"], e["from"], e["type"], e["outgoing"]),
                         ("home", bob.full_jid, "chat", False), e)
        # alice -> bob
        bmark = bob.message_mark()
        s = c.ok("send", account="home", to=BOB, body="hello from alice",
                 client_id="x-a2b-1")
        self.assertEqual(s["msg_id"], "x-a2b-1")
        got = bob.wait_message(origin_id="x-a2b-1", since=bmark)
        self.assertEqual((got.body, got.from_, got.type),
                         ("hello from alice", full, "chat"), got.xml)
        c.wait_event("message-state", msg_id="x-a2b-1", state="acked")
        # Markers behind both (each way is one ordered stream), then count by id.
        bob.send_message(ALICE, "marker b2a", id="x-b2a-m")
        c.wait_event("message", body="marker b2a")
        c.ok("send", account="home", to=BOB, body="marker a2b", client_id="x-a2b-m")
        bob.wait_message(origin_id="x-a2b-m", since=bmark)
        self.assertEqual(len(c.find_events("message", body="hello from bob")), 1)
        self.assertEqual(len(c.find_events("message", msg_id=e["msg_id"])), 1)
        self.assertEqual(len(c.find_events("message", msg_id="x-a2b-1")), 1)
        self.assertEqual(len(bob.received(origin_id="x-a2b-1", since=bmark)), 1)

    # 2
    def test_password_without_certificate_never_external(self):
        """ejabberd offers EXTERNAL first to a client without a certificate; the daemon
        must not pick it (it would fail: "Failed to get peer certificate")."""
        ej = self.ejabberd
        mark = ej.log_barrier()
        d = self.daemon(self.account("home", "alice"))
        full, mechanism = self.online(d)
        self.assertEqual((full, mechanism), (f"{ALICE}/stanzad", "SCRAM-SHA-256"))
        offered = re.findall(r"<mechanism>([^<]+)</mechanism>", d.output())
        self.assertIn("EXTERNAL", offered, "ejabberd offered EXTERNAL to us")
        self.assertEqual(D_AUTH.findall(d.output()), ["SCRAM-SHA-256"])
        self.assertNotRegex(d.output(), r"mechanism='EXTERNAL'")
        self.ej_accepted("SCRAM-SHA-256", ALICE, mark)
        self.assertEqual([m for m, _ in self.ej_auths(mark)], ["SCRAM-SHA-256"])
        self.assertNotIn("c2s EXTERNAL authentication", ej.log_text()[mark:])

    # 3
    def test_certificate_and_password_default_order_is_external(self):
        mark = self.ejabberd.log_barrier()
        d = self.daemon(self.cert_account(self.alice_cert, self.alice_key, password=True))
        self.assertEqual(self.online(d), (f"{ALICE}/stanzad", "EXTERNAL"))
        self.assertEqual(D_AUTH.findall(d.output()), ["EXTERNAL"])
        self.ej_accepted("EXTERNAL", ALICE, mark)
        self.assertEqual([m for m, _ in self.ej_auths(mark)], ["EXTERNAL"])

    def test_certificate_and_password_scram_listed_first(self):
        mark = self.ejabberd.log_barrier()
        d = self.daemon(self.cert_account(self.alice_cert, self.alice_key, password=True,
                                          sasl=["SCRAM", "EXTERNAL"]))
        self.assertEqual(self.online(d), (f"{ALICE}/stanzad", "SCRAM-SHA-256"))
        self.assertEqual(D_AUTH.findall(d.output()), ["SCRAM-SHA-256"])
        self.ej_accepted("SCRAM-SHA-256", ALICE, mark)
        self.assertEqual([m for m, _ in self.ej_auths(mark)], ["SCRAM-SHA-256"])

    # 4
    def test_direct_tls_with_certificate_is_external(self):
        ej = self.ejabberd
        mark = ej.log_barrier()
        acct = self.cert_account(self.alice_cert, self.alice_key, tls="direct")
        acct["port"] = ej.direct_tls_port
        d = self.daemon(acct)
        host, port = d.wait_for(rx_connecting("home")).groups()
        self.assertEqual((host, int(port)), ("127.0.0.1", ej.direct_tls_port))
        self.assertEqual(self.online(d), (f"{ALICE}/stanzad", "EXTERNAL"))
        self.assertNotRegex(d.output(), r"SEND <starttls\b")
        self.ej_accepted("EXTERNAL", ALICE, mark)
        self.assertEqual(self.ej_auths(mark), [("EXTERNAL", "=")])

    # 5 (TLS 1.3 half; the TLS 1.2 half is EjabberdTls12Test)
    def test_tls13_scram_without_plus(self):
        """ejabberd offers SCRAM-SHA-256-PLUS under TLS 1.3 too, with no XEP-0440 list:
        the daemon cannot know a binding type both sides define there (tls-unique is not
        defined for TLS 1.3), so it uses plain SCRAM-SHA-256 with the gs2 flag `n` (no
        binding on this connection). Not `y` ("I can bind, I think you cannot"): the server
        did advertise -PLUS, and a server that checks would take `y` for a downgrade."""
        mark = self.ejabberd.log_barrier()
        d = self.daemon(self.account("home", "alice"))
        self.assertEqual(self.online(d), (f"{ALICE}/stanzad", "SCRAM-SHA-256"))
        self.ej_accepted("SCRAM-SHA-256", ALICE, mark)
        self.assertRegex(d.output(), r"TLS established: TLSv1\.3 ")
        self.assertIn("<mechanism>SCRAM-SHA-256-PLUS</mechanism>", d.output())
        auths = self.ej_auths(mark)
        self.assertEqual([m for m, _ in auths], ["SCRAM-SHA-256"])
        flag = gs2_header(auths[0][1])
        _say("", f"EJABBERD-SASL TLS 1.3 SCRAM-SHA-256 gs2 header {flag!r}")
        self.assertEqual(flag, "n,,")

    def test_tls13_channel_binding_required_fails(self):
        """channel_binding = "required" on TLS 1.3: the daemon binds with tls-exporter
        (RFC 9266, the only type defined there) to SCRAM-SHA-256-PLUS; ejabberd 23.01 knows
        only tls-unique and refuses at the first message with not-authorized "Invalid
        channel binding". The account is `failed` with that reason and not retried."""
        ej = self.ejabberd
        mark = ej.log_barrier()
        d = self.daemon(self.account("home", "alice", channel_binding="required"))
        reason = d.wait_for(rx_failed_reason("home"), 20).group(1)
        _say("", f"EJABBERD-SASL channel_binding=required on TLS 1.3: {reason}")
        self.assertIn("SCRAM-SHA-256-PLUS", reason)
        self.assertIn("not-authorized", reason)
        self.assertIn("Invalid channel binding", reason)
        ej.wait_for_log(r"Failed c2s SCRAM-SHA-256-PLUS authentication from 127\.0\.0\.1: "
                        r"Invalid channel binding", since=mark)
        auths = self.ej_auths(mark)
        self.assertEqual([m for m, _ in auths], ["SCRAM-SHA-256-PLUS"])
        self.assertEqual(gs2_header(auths[0][1]), "p=tls-exporter,,")
        c = self.client(d, hello="tests")
        acct = c.ok("accounts")["accounts"][0]
        self.assertEqual((acct["account"], acct["state"], acct["bound_jid"]),
                         ("home", "failed", ""), acct)
        self.assertIn("authentication failed", acct["reason"], acct)
        self.assertEqual(d.count(rx_online("home")), 0)
        # Not retried: one connection, one failure.
        self.assertEqual(d.count(rx_connecting("home")), 1)
        self.assertEqual(d.count(rx_auth_failed("home")), 1)

    # 7: what the server does with a certificate it does not trust (docs/auth.md)
    def test_untrusted_certificate_only_fails(self):
        """A certificate for alice from a CA that ejabberd does not trust: the TLS
        handshake passes (tls_verify asks for a certificate, it does not check it there);
        EXTERNAL then fails with not-authorized and OpenSSL's verdict as text. With no
        password there is nothing else to try: failed, not retried."""
        ej = self.ejabberd
        mark = ej.log_barrier()
        d = self.daemon(self.cert_account(self.rogue_cert, self.rogue_key))
        reason = d.wait_for(rx_failed_reason("home"), 20).group(1)
        self.assertEqual(reason,
                         "EXTERNAL: not-authorized (unable to verify the first certificate)")
        ej.wait_for_log(r"Failed c2s EXTERNAL authentication .*unable to verify the first "
                        r"certificate", since=mark)
        self.assertEqual([m for m, _ in self.ej_auths(mark)], ["EXTERNAL"])
        c = self.client(d, hello="tests")
        acct = c.ok("accounts")["accounts"][0]
        self.assertEqual((acct["state"], acct["bound_jid"]), ("failed", ""), acct)
        self.assertEqual(d.count(rx_connecting("home")), 1)
        self.assertEqual(d.count(rx_online("home")), 0)

    def test_untrusted_certificate_and_password_falls_back_to_scram(self):
        """The same certificate with alice's password: ejabberd keeps the stream open
        after refusing EXTERNAL, so SCRAM follows on the same connection and the login
        line carries the refusal."""
        ej = self.ejabberd
        mark = ej.log_barrier()
        d = self.daemon(self.cert_account(self.rogue_cert, self.rogue_key, password=True))
        self.assertEqual(self.online(d), (
            f"{ALICE}/stanzad", "SCRAM-SHA-256; EXTERNAL refused: not-authorized "
                                "(unable to verify the first certificate)"))
        self.ej_accepted("SCRAM-SHA-256", ALICE, mark)
        self.assertEqual([m for m, _ in self.ej_auths(mark)], ["EXTERNAL", "SCRAM-SHA-256"])
        self.assertEqual(D_AUTH.findall(d.output()), ["EXTERNAL", "SCRAM-SHA-256"])
        self.assertEqual(d.count(rx_connecting("home")), 1, "one connection for both")

    # 6
    def test_certificate_for_another_jid(self):
        """bob's certificate in alice's account. ejabberd takes the JID from the
        certificate: it accepts EXTERNAL "for bob@localhost" and binds
        bob@localhost/stanzad. The daemon checks the bound JID against the account's,
        closes the stream (<policy-violation/>), never comes online as bob and does not
        try again until the config changes: every retry would log bob in again and could
        replace a session of bob's own with that resource."""
        ej = self.ejabberd
        mark = ej.log_barrier()
        d = self.daemon(self.cert_account(self.bob_cert, self.bob_key))
        m = d.wait_for(r"account home: disconnected: the server logged us in as (\S+), not "
                       r"(\S+) \(does the client certificate name another JID\?\); "
                       r"not retrying until the config changes", 20)
        self.assertEqual((m.group(1), m.group(2)), (BOB, ALICE))
        self.assertEqual(self.ej_accepted("EXTERNAL", BOB, mark).group(1), "pkix")
        self.assertEqual(self.ej_auths(mark)[0], ("EXTERNAL", "="))
        self.assertNotIn(f"authentication for {ALICE}", ej.log_text()[mark:])
        c = self.client(d, hello="tests")
        acct = c.ok("accounts")["accounts"][0]
        self.assertEqual((acct["state"], acct["bound_jid"]), ("failed", ""), acct)
        self.assertIn(f"logged us in as {BOB}", acct["reason"], acct)
        self.assertEqual(d.count(rx_online("home")), 0)
        self.assertEqual(d.count(rx_connecting("home")), 1, "no second attempt")


class EjabberdTls12Test(_Base):
    """The c2s listener capped at TLS 1.2 (protocol_options, see ejabberd.TLS12_ONLY)."""
    EJABBERD_OPTIONS = {"tls_protocol_options": TLS12_ONLY, "loglevel": "debug"}

    # 5 (TLS 1.2 half)
    def test_tls12_scram_plus_tls_unique(self):
        mark = self.ejabberd.log_barrier()
        d = self.daemon(self.account("home", "alice"))
        self.assertEqual(self.online(d),
                         (f"{ALICE}/stanzad", "SCRAM-SHA-256-PLUS, tls-unique"))
        self.assertRegex(d.output(), r"TLS established: TLSv1\.2 ")
        self.assertEqual(D_AUTH.findall(d.output()), ["SCRAM-SHA-256-PLUS"])
        self.ej_accepted("SCRAM-SHA-256-PLUS", ALICE, mark)
        auths = self.ej_auths(mark)
        self.assertEqual([m for m, _ in auths], ["SCRAM-SHA-256-PLUS"])
        self.assertEqual(gs2_header(auths[0][1]), "p=tls-unique,,")


if __name__ == "__main__":
    harness.main()
