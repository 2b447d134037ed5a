"""SCRAM-*-PLUS channel binding and downgrade protection against Prosody 0.12 (issue 12
items 2, 3 and 6; RFC 5802 §6, RFC 5929, XEP-0440, XEP-0474).

What Prosody 0.12.3 (Debian 12, LuaSec 1.2) does, found by hand with a raw client and
asserted below where the daemon's behaviour depends on it:
- It offers SCRAM-SHA-1-PLUS, with tls-unique as its only binding type, on TLS 1.2 only
  (mod_saslauth: "Channel binding 'tls-unique' undefined in context of TLS 1.3"). Its
  default TLS profile allows 1.3, which every current client negotiates: no -PLUS then.
  `ssl = { protocol = "tlsv1_2" }` (Prosody(tls_protocol="tlsv1_2")) pins the server to
  TLS 1.2 even for a client that offers 1.3.
- It sends no XEP-0440 <sasl-channel-binding/> list and does not sign its lists
  (XEP-0474): its server-first-message is "r=...,s=...,i=10000" with no h= attribute.
- GS2 flag 'y' (client can bind, saw no -PLUS): on TLS 1.2, where the server can bind,
  util/sasl/scram.lua answers <failure><malformed-request/></failure> without <text/>;
  on TLS 1.3 (no binding there) it accepts 'y'. 'n' is accepted on both.
- A wrong tls-unique: <failure><malformed-request/><text>Invalid channel binding
  value.</text></failure>; a binding type it does not know (tls-exporter,
  tls-server-end-point): <malformed-request/> "Proposed channel binding type isn't
  supported."

The downgrade tests put mitm.TlsMitm between the daemon and the TLS-1.2 Prosody: it holds a
certificate for "localhost" from the test CA (which the daemon trusts through ca_file),
relays STARTTLS in cleartext, then speaks TLS on both legs and removes every
<mechanism>SCRAM-*-PLUS</mechanism> from the features it relays.
"""

import re

import harness
from harness import JsonlTest, account_section, rx_auth_failed, rx_connecting, rx_online
from mitm import TlsMitm

# Prosody 0.12.3 logs each stanza's top tag under the session id (attribute order varies).
AUTH_LINE = re.compile(r"Received\[c2s_unauthed\]: <auth\b[^>]*\bmechanism='([^']+)'")
SESSION_ID = re.compile(r"\s(c2s[0-9a-f]+)\s")


def rx_online_mech(account: str) -> str:
    """`account NAME: online as FULLJID (MECHANISM)`; groups: the full JID, the mechanism."""
    return rf"account {re.escape(account)}: online as (\S+) \((.+)\)\s*$"


def rx_failed_reason(account: str) -> str:
    """The authentication-failure line; group: the reason."""
    return (rf"account {re.escape(account)}: authentication failed: (.*); "
            rf"not retrying until the config changes")


class ChannelBindingTest(JsonlTest):
    """Every test gets a Prosody limited to TLS 1.2 (where 0.12 offers -PLUS), with a
    direct-TLS port too."""

    PROSODY_OPTIONS = {"tls_protocol": "tlsv1_2", "direct_tls": True}

    def make_certs(self):
        # One CA for the whole class (make_ca takes about 1.4 s).
        cls = type(self)
        if getattr(cls, "_shared_certs", None) is None:
            import tempfile
            from pathlib import Path
            cls._certs_tmp = Path(tempfile.mkdtemp(prefix="stanzad-ChannelBindingTest-certs-"))
            cls._shared_certs = harness.make_ca(cls._certs_tmp / "certs", self.DOMAIN)
        return cls._shared_certs

    @classmethod
    def tearDownClass(cls):
        import os
        import shutil
        if getattr(cls, "_certs_tmp", None) and not os.environ.get("STANZAD_KEEP_TMP"):
            shutil.rmtree(cls._certs_tmp, ignore_errors=True)

    # -- helpers
    def alice(self, name, *, port=None, prosody=None, tls="starttls", **extra):
        prosody = prosody or self.prosody
        return account_section(name, self.jid("alice"), port=port or prosody.port,
                               ca_file=self.certs.ca_cert, password=self.USERS["alice"],
                               tls=tls, resource=name, **extra)

    def mitm(self, port=None, **options):
        m = TlsMitm(port or self.prosody.port, self.certs.server_cert, self.certs.server_key,
                    self.certs.ca_cert, **options)
        self.addCleanup(m.close)
        return m

    def auths(self, prosody=None):
        """(session id, mechanism) of every SASL <auth/> the Prosody received, in order."""
        out = []
        for line in (prosody or self.prosody).log_text().splitlines():
            m = AUTH_LINE.search(line)
            if m:
                out.append((SESSION_ID.search(line).group(1), m.group(1)))
        return out

    def wait_failed(self, d, account, timeout=15.0):
        """The failure line of `account` (fails the test if it came online instead)."""
        m = d.wait_for(f"{rx_failed_reason(account)}|{rx_online(account)}", timeout)
        self.assertRegex(m.string, rx_auth_failed(account), f"{account} came online")
        return m.group(1)

    def assert_not_retried(self, d, accounts):
        """No account in `accounts` connects again. An absence can only be waited out: the
        window starts after every failure was logged and lasts 3 s, longer than the first
        reconnect backoff (about 1.3 s plus jitter)."""
        rx = "|".join(rx_connecting(a) for a in accounts)
        d.assert_absent(rx, window=3.0, since=d.mark())
        for a in accounts:
            self.assertEqual(d.count(rx_connecting(a)), 1, a)
            self.assertEqual(d.count(rx_online(a)), 0, a)

    def states(self, d):
        c = self.client(d, hello="tests")
        return {a["account"]: (a["state"], a.get("reason", ""))
                for a in c.ok("accounts")["accounts"]}

    # (a)
    def test_tls12_server_gets_scram_plus_with_tls_unique(self):
        d = self.start_daemon([self.alice("auto"), self.alice("required",
                                                              channel_binding="required")],
                              online=False)
        for name in ("auto", "required"):
            full, mech = d.wait_for(rx_online_mech(name), 15).groups()
            self.assertEqual(full, f"alice@localhost/{name}")
            # Prosody 0.12 knows only tls-unique; anything else would have failed.
            self.assertEqual(mech, "SCRAM-SHA-1-PLUS, tls-unique")
        self.assertEqual([m for _sid, m in self.auths()], ["SCRAM-SHA-1-PLUS"] * 2)
        log = self.prosody.log_text()
        self.assertIn("Channel binding 'tls-unique' supported", log)
        self.assertRegex(log, r"Stream encrypted \(TLSv1\.2")
        self.assertNotRegex(log, r"Stream encrypted \(TLSv1\.3")
        bob = self.peer("bob")
        bob.ping("alice@localhost/auto")
        bob.ping("alice@localhost/required")

    # (b)
    def test_tls13_server_plain_scram_and_required_refuses(self):
        """On the default (TLS 1.3) Prosody 0.12 offers SCRAM-SHA-1 and PLAIN only: "auto"
        logs in with SCRAM-SHA-1 (gs2 flag 'y', which Prosody accepts where it cannot bind),
        "required" refuses before sending any <auth/>: the password never leaves."""
        p13 = self.start_prosody("prosody13")  # Prosody's default: TLS 1.2 and 1.3
        d = self.start_daemon([self.alice("auto", prosody=p13),
                               self.alice("required", prosody=p13,
                                          channel_binding="required")],
                              online=False)
        full, mech = d.wait_for(rx_online_mech("auto"), 15).groups()
        self.assertEqual(mech, "SCRAM-SHA-1")
        reason = self.wait_failed(d, "required")
        self.assertRegex(reason, r"channel binding is required")
        self.assertIn("SCRAM-*-PLUS", reason)
        self.assert_not_retried(d, ["required"])
        self.assertEqual(self.states(d)["required"][0], "failed")
        # Prosody received exactly one <auth/>, from the session that became alice/auto.
        auths = self.auths(p13)
        self.assertEqual([m for _sid, m in auths], ["SCRAM-SHA-1"])
        self.assertEqual([sid for sid, _m in auths], p13.session_ids("alice@localhost"))
        self.assertRegex(p13.log_text(), r"Channel binding 'tls-unique' undefined in context "
                                         r"of TLS 1\.3")
        self.peer("bob", prosody=p13).ping(full)

    def test_relay_to_tls13_server_goes_unnoticed_without_required(self):
        """What "auto" cannot protect against: a man in the middle with a certificate the
        daemon trusts, relaying to a server that cannot bind (Prosody 0.12 under TLS 1.3).
        The daemon sends 'y' (it could bind, nobody offered -PLUS), Prosody accepts 'y'
        because it cannot bind on TLS 1.3, and the login succeeds through the relay.
        "required" refuses the same relay."""
        p13 = self.start_prosody("prosody13")
        auto_mitm = self.mitm(p13.port, strip_plus=False)
        req_mitm = self.mitm(p13.port, strip_plus=False)
        d = self.start_daemon([self.alice("auto", port=auto_mitm.port),
                               self.alice("required", port=req_mitm.port,
                                          channel_binding="required")],
                              online=False)
        full, mech = d.wait_for(rx_online_mech("auto"), 15).groups()
        self.assertEqual(mech, "SCRAM-SHA-1")
        auto_mitm.wait_event(r"#1 client sasl: auth SCRAM-SHA-1 gs2=y$")
        auto_mitm.wait_event(r"#1 server sasl: success")
        self.assertEqual(auto_mitm.matching(r"server TLS"), ["#1 server TLS TLSv1.3"])
        reason = self.wait_failed(d, "required")
        self.assertRegex(reason, r"channel binding is required")
        self.assertEqual(req_mitm.matching(r"client sasl"), [], "required sent an <auth/>")

    # (c)
    def test_stripped_plus_starttls(self):
        """The man in the middle removes SCRAM-SHA-1-PLUS from a TLS-1.2 Prosody's offer.
        Prosody 0.12 neither lists channel-binding types (XEP-0440) nor signs its lists
        (XEP-0474), so the daemon cannot see the rewrite itself. With "auto" it picks
        SCRAM-SHA-1 with gs2 flag 'y' (RFC 5802 §6: I could bind, you offered nothing);
        Prosody, which can bind on TLS 1.2, refuses that with malformed-request, and the
        daemon reports an authentication failure and does not retry. Not a silent
        success: the relay gets nothing it can use. With "required" the daemon refuses
        on the rewritten offer and sends no <auth/> at all."""
        self.check_downgrade(direct=False)

    def test_stripped_plus_direct_tls(self):
        """As test_stripped_plus_starttls, with direct TLS (XEP-0368) on both legs."""
        self.check_downgrade(direct=True)

    def check_downgrade(self, direct):
        port = self.prosody.direct_tls_port if direct else self.prosody.port
        tls = "direct" if direct else "starttls"
        auto_mitm = self.mitm(port, direct_tls=direct)
        req_mitm = self.mitm(port, direct_tls=direct)
        d = self.start_daemon([self.alice("auto", port=auto_mitm.port, tls=tls),
                               self.alice("required", port=req_mitm.port, tls=tls,
                                          channel_binding="required")],
                              online=False)
        auto_reason = self.wait_failed(d, "auto")
        req_reason = self.wait_failed(d, "required")

        # The relay did what it should: TLS 1.2 to Prosody, -PLUS offered and removed.
        for m in (auto_mitm, req_mitm):
            m.wait_event(r"#1 features: mechanisms=.*SCRAM-SHA-1-PLUS.* channel-bindings=-$")
            m.wait_event(r"#1 stripped: SCRAM-SHA-1-PLUS$")
            self.assertIn("#1 server TLS TLSv1.2", m.events)
        # auto: 'y', refused by Prosody without a <text/>.
        auto_mitm.wait_event(r"#1 client sasl: auth SCRAM-SHA-1 gs2=y$")
        auto_mitm.wait_event(r"#1 server sasl: failure malformed-request$")
        self.assertIn("malformed-request", auto_reason)
        # The daemon says why a server may refuse 'y': -PLUS was removed on the way.
        self.assertRegex(auto_reason, r"removed|downgrade")
        # required: nothing sent.
        self.assertEqual(req_mitm.matching(r"client sasl"), [], "required sent an <auth/>")
        self.assertRegex(req_reason, r"channel binding is required")

        self.assert_not_retried(d, ["auto", "required"])
        states = self.states(d)
        self.assertEqual(states["auto"][0], "failed")
        self.assertEqual(states["required"][0], "failed")
        self.assertEqual(len(auto_mitm.matching(r"accepted")), 1)
        self.assertEqual(len(req_mitm.matching(r"accepted")), 1)
        # Prosody: one SCRAM-SHA-1 attempt (auto's), nobody authenticated.
        self.assertEqual([m for _sid, m in self.auths()], ["SCRAM-SHA-1"])
        self.assertEqual(self.prosody.session_ids("alice@localhost"), [])

    def test_relay_without_stripping_is_caught_by_the_binding(self):
        """A man in the middle that leaves the offer alone, its leg to the daemon on TLS
        1.2: the daemon binds SCRAM-SHA-1-PLUS to its own TLS session (tls-unique), which
        is not the one Prosody sees; Prosody answers malformed-request "Invalid channel
        binding value." and the daemon fails without retrying."""
        m = self.mitm(strip_plus=False, client_tls_max="1.2")
        d = self.start_daemon([self.alice("auto", port=m.port)], online=False)
        reason = self.wait_failed(d, "auto")
        m.wait_event(r"#1 client sasl: auth SCRAM-SHA-1-PLUS gs2=p=tls-unique$")
        m.wait_event(r"#1 server sasl: failure malformed-request: Invalid channel binding value\.$")
        self.assertIn("malformed-request", reason)
        self.assertIn("Invalid channel binding value", reason)
        self.assert_not_retried(d, ["auto"])
        self.assertEqual(self.prosody.session_ids("alice@localhost"), [])


if __name__ == "__main__":
    harness.main()
