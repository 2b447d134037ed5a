"""XEP-0388 SASL2, XEP-0386 Bind2 and XEP-0484 FAST against Prosody 0.12 (issue 12).

The server is Prosody(sasl2=True): prosody-modules' mod_sasl2, mod_sasl2_bind2 and
mod_sasl2_fast, fixed for 0.12 by harness.sasl2_plugins() (what was wrong, and what 0.12
cannot do, is written beside that function). mod_sasl2_sm is not loaded: it needs
mod_smacks.do_enable/do_resume, which 0.12 lacks, so XEP-0198 is enabled (or resumed) the
legacy way after SASL2's <success/>.

Sasl2FixtureTest checks the fixture with a raw client (no daemon): what Prosody offers,
a token issued, used and refused. Sasl2DaemonTest runs stanzad against it: the login, the
FAST token and its use after a reset and a restart, a refused token, and messages counted
by id through resets. Prosody's debug log names every <authenticate/> it received
(`Received[c2s_unauthed]: <authenticate xmlns='urn:xmpp:sasl:2' mechanism='...'>`), which
is how the tests see which mechanism each connection used.
"""

import base64
import hashlib
import hmac
import re
import socket
import ssl
import xml.etree.ElementTree as ET

import harness
from harness import (Fault, FaultTest, IntegrationTest, Traffic, daemon_link_up,
                     rx_connecting, rx_disconnected, rx_resumed, rx_session_up)

SASL2_NS = "urn:xmpp:sasl:2"
BIND2_NS = "urn:xmpp:bind:0"
FAST_NS = "urn:xmpp:fast:0"
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"

AUTH_LINE = re.compile(r"\s(c2s[0-9a-f]+)\s+debug\s+Received\[c2s_unauthed\]: "
                       r"<(authenticate|auth)\b[^>]*\bmechanism='([^']+)'")
LUA_ERROR = re.compile(r"\terror\t|Traceback|attempt to (?:call|index)")


def prosody_auths(prosody, since=0):
    """(session id, "authenticate" (SASL2) or "auth" (legacy), mechanism) of every SASL
    attempt in Prosody's log from offset `since`, in order."""
    return [m.groups() for m in AUTH_LINE.finditer(prosody.log_text(), since)]


def lua_errors(prosody):
    return [line for line in prosody.log_text().splitlines() if LUA_ERROR.search(line)]


def stored_fast_secrets(prosody, user="alice"):
    """The FAST token secrets mod_sasl2_fast keeps for `user` (its "fast_tokens" store:
    a Lua table in DATA/localhost/fast_tokens/USER.dat on 0.12)."""
    path = prosody.data_path / prosody.host / "fast_tokens" / f"{user}.dat"
    if not path.exists():
        return []
    return re.findall(r'\["secret"\] = "([^"]+)"', path.read_text())


def rx_online_mech(account):
    """`account NAME: online as FULLJID (MECHANISM)`; groups: full JID, mechanism."""
    return rf"account {re.escape(account)}: online as (\S+) \((.+)\)\s*$"


def rx_setup(account):
    """`account NAME: session set up with SASL2 + Bind2` (or `SASL2`); group: how."""
    return rf"account {re.escape(account)}: session set up with (.+?)\s*$"


def rx_token(account):
    """`account NAME: got a FAST token for MECH (valid until T)`; groups: mech, expiry."""
    return rf"account {re.escape(account)}: got a FAST token for (\S+) \(valid until (.*)\)"


def rx_refused(account):
    """`account NAME: the FAST token was refused (WHY); logging in with ...`; group: why."""
    return (rf"account {re.escape(account)}: the FAST token was refused \((.*)\); "
            rf"logging in with ")


# --------------------------------------------------------------------------------------
# The fixture, seen by a raw client.

class RawXmpp:
    """A bare-hands XMPP client for checking what Prosody offers: STARTTLS, then a stream
    header with from='alice@localhost' (mod_sasl2_fast offers FAST only to a named
    user). features() is the <stream:features/> after TLS as an ElementTree element."""

    HEADER = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
              "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' "
              "version='1.0'{frm}>")

    def __init__(self, test, prosody, frm="alice@localhost"):
        sock = socket.create_connection((harness.LOOPBACK, prosody.port), timeout=10)
        test.addCleanup(sock.close)
        sock.sendall(self.HEADER.format(frm="").encode())
        self._read(sock, "</stream:features>")
        sock.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        self._read(sock, "<proceed")
        ctx = ssl.create_default_context(cafile=str(test.certs.ca_cert))
        self.tls = ctx.wrap_socket(sock, server_hostname="localhost")
        test.addCleanup(self.tls.close)
        self.tls.sendall(self.HEADER.format(frm=f" from='{frm}'" if frm else "").encode())
        self.tls_version = self.tls.version()
        text = self._read(self.tls, "</stream:features>")
        self.features_el = self.parse(text[text.index("<stream:features"):])

    @staticmethod
    def _read(sock, marker):
        buf = b""
        while marker.encode() not in buf:
            data = sock.recv(65536)
            if not data:
                raise AssertionError(f"the server closed the stream before {marker}: {buf!r}")
            buf += data
        return buf.decode()

    @staticmethod
    def parse(fragment):
        return ET.fromstring("<r xmlns='jabber:client' xmlns:stream="
                             "'http://etherx.jabber.org/streams'>" + fragment + "</r>")[0]

    def authentication(self):
        return self.features_el.find(f"{{{SASL2_NS}}}authentication")

    def send(self, xml, until):
        """Send, read up to the end of `until` (e.g. "</success>"), return it parsed."""
        self.tls.sendall(xml.encode())
        text = self._read(self.tls, until)
        start = text.index("<" + until[2:-1])
        return self.parse(text[start:text.index(until) + len(until)])

    def authenticate(self, mechanism, initial, extra="", until="</success>"):
        return self.send(
            f"<authenticate xmlns='{SASL2_NS}' mechanism='{mechanism}'><initial-response>"
            f"{base64.b64encode(initial).decode()}</initial-response><user-agent id="
            f"'{RawXmpp.UA}'><software>raw</software></user-agent>{extra}</authenticate>",
            until)

    UA = "9a3c0b9e-2f1d-4c7e-8b6a-3d2e1f0a9b8c"


def mechanisms(el, ns):
    return [m.text for m in el.findall(f"{{{ns}}}mechanism")]


class Sasl2FixtureTest(IntegrationTest):
    PROSODY_OPTIONS = {"sasl2": True}

    def check_offer(self, prosody, tls_version, sasl2_mechs, fast_mechs):
        raw = RawXmpp(self, prosody)
        self.assertEqual(raw.tls_version, tls_version)
        auth = raw.authentication()
        self.assertIsNotNone(auth, "no <authentication xmlns='urn:xmpp:sasl:2'/>")
        self.assertEqual(sorted(mechanisms(auth, SASL2_NS)), sorted(sasl2_mechs))
        inline = auth.find(f"{{{SASL2_NS}}}inline")
        bind = inline.find(f"{{{BIND2_NS}}}bind")
        self.assertIsNotNone(bind, "no Bind2 in <inline/>")
        self.assertEqual({f.get("var") for f in bind.iter(f"{{{BIND2_NS}}}feature")},
                         {"urn:xmpp:carbons:2", "urn:xmpp:csi:0"})  # no XEP-0198 inline
        fast = inline.find(f"{{{FAST_NS}}}fast")
        self.assertIsNotNone(fast, "no FAST in <inline/>")
        self.assertEqual(sorted(mechanisms(fast, FAST_NS)), sorted(fast_mechs))
        self.assertIsNone(inline.find("{urn:xmpp:sm:3}sm"))
        # Legacy SASL is still offered beside it, the same mechanisms.
        legacy = raw.features_el.find(f"{{{SASL_NS}}}mechanisms")
        self.assertEqual(sorted(mechanisms(legacy, SASL_NS)), sorted(sasl2_mechs))
        # Without a 'from' naming a user there is SASL2 and Bind2, but no FAST.
        anon = RawXmpp(self, prosody, frm=None).authentication()
        inline = anon.find(f"{{{SASL2_NS}}}inline")
        self.assertIsNotNone(inline.find(f"{{{BIND2_NS}}}bind"))
        self.assertIsNone(inline.find(f"{{{FAST_NS}}}fast"))
        self.assertEqual(lua_errors(prosody), [])

    def test_offer_on_tls13(self):
        self.check_offer(self.prosody, "TLSv1.3", ["SCRAM-SHA-1", "PLAIN"],
                         ["HT-SHA-256-NONE"])

    def test_offer_on_tls12(self):
        p12 = self.start_prosody("prosody12", sasl2=True, tls_protocol="tlsv1_2")
        self.check_offer(p12, "TLSv1.2", ["SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "PLAIN"],
                         ["HT-SHA-256-NONE", "HT-SHA-256-UNIQ"])

    def test_default_prosody_has_no_sasl2(self):
        p = self.start_prosody("legacy")
        raw = RawXmpp(self, p)
        self.assertIsNone(raw.authentication())
        # Prosody lists its mechanisms in hash order: compare the sets.
        self.assertEqual(sorted(mechanisms(raw.features_el.find(f"{{{SASL_NS}}}mechanisms"), SASL_NS)),
                         ["PLAIN", "SCRAM-SHA-1"])

    def test_token_issued_used_refused(self):
        """A token comes with a login that asks for one, is stored, logs in (Bind2 binds
        "tag~..."); a wrong one is refused, and the same stream then refuses any other
        mechanism (invalid-mechanism): a client must reconnect to use its password."""
        password = self.USERS["alice"].encode()
        raw = RawXmpp(self, self.prosody)
        ok = raw.authenticate(
            "PLAIN", b"\0alice\0" + password,
            f"<bind xmlns='{BIND2_NS}'><tag>raw</tag></bind>"
            f"<request-token xmlns='{FAST_NS}' mechanism='HT-SHA-256-NONE'/>")
        self.assertEqual(ok.tag, f"{{{SASL2_NS}}}success", ET.tostring(ok))
        full = ok.find(f"{{{SASL2_NS}}}authorization-identifier").text
        self.assertRegex(full, r"^alice@localhost/raw~\S+$")
        self.assertIsNotNone(ok.find(f"{{{BIND2_NS}}}bound"))
        token = ok.find(f"{{{FAST_NS}}}token")
        self.assertRegex(token.get("expiry"), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        secret = token.get("token")
        self.assertEqual(stored_fast_secrets(self.prosody), [secret])

        def ht(key):
            return b"alice\0" + hmac.new(key.encode(), b"Initiator", hashlib.sha256).digest()

        fast = RawXmpp(self, self.prosody)
        ok = fast.authenticate("HT-SHA-256-NONE", ht(secret),
                               f"<bind xmlns='{BIND2_NS}'><tag>raw</tag></bind>"
                               f"<fast xmlns='{FAST_NS}'/>")
        self.assertEqual(ok.tag, f"{{{SASL2_NS}}}success", ET.tostring(ok))
        self.assertEqual(ok.find(f"{{{SASL2_NS}}}authorization-identifier").text, full)
        # The server's proof: HMAC(token, "Responder").
        self.assertEqual(base64.b64decode(ok.find(f"{{{SASL2_NS}}}additional-data").text),
                         hmac.new(secret.encode(), b"Responder", hashlib.sha256).digest())

        wrong = RawXmpp(self, self.prosody)
        no = wrong.authenticate("HT-SHA-256-NONE", ht("secret-token:wrong"),
                                f"<fast xmlns='{FAST_NS}'/>", until="</failure>")
        self.assertIsNotNone(no.find(f"{{{SASL_NS}}}not-authorized"), ET.tostring(no))
        no = wrong.authenticate("PLAIN", b"\0alice\0" + password, until="</failure>")
        self.assertIsNotNone(no.find(f"{{{SASL_NS}}}invalid-mechanism"), ET.tostring(no))
        self.assertEqual([(kind, mech) for _sid, kind, mech in prosody_auths(self.prosody)],
                         [("authenticate", "PLAIN"), ("authenticate", "HT-SHA-256-NONE"),
                          ("authenticate", "HT-SHA-256-NONE"), ("authenticate", "PLAIN")])
        self.assertEqual(lua_errors(self.prosody), [])



# --------------------------------------------------------------------------------------
# stanzad against it.

class Sasl2DaemonTest(FaultTest):
    """stanzad's "home" (alice, resource "stanzad") on Prosody(sasl2=True), through a
    FaultProxy where a test resets connections; bob is a slixmpp peer answering receipts."""

    PROSODY_OPTIONS = {"sasl2": True}

    def home(self, proxy=None, prosody=None, **extra):
        extra.setdefault("resource", "stanzad")
        if proxy is not None:
            return self.proxied_account(proxy, **extra)
        return self.account("home", "alice", prosody=prosody, **extra)

    def start(self, acct, **daemon):
        """The daemon with `acct`, quick dead-link detection; waits for `listening on`."""
        daemon.setdefault("ping_interval", self.PING_INTERVAL)
        daemon.setdefault("ping_timeout", self.PING_TIMEOUT)
        return self.start_daemon([acct], online=False, **daemon)

    def login(self, d, since=0, timeout=15):
        """The next `online as JID (MECH)` from line `since` and the `session set up with
        HOW` line that follows it (the daemon logs it right after, for a SASL2 login):
        (full JID, mechanism, HOW, the online line's index)."""
        m = d.wait_for(rx_online_mech("home"), timeout, since=since)
        at = d.index(rx_online_mech("home"), since=since)
        setup = d.wait_for(rx_setup("home"), 5, since=at).group(1)
        setup_at = d.index(rx_setup("home"), since=at)
        next_online = d.index(rx_online_mech("home"), since=at + 1)
        self.assertTrue(next_online is None or next_online > setup_at,
                        f"no `session set up` line for the login on line {at}")
        return m.group(1), m.group(2), setup, at

    def messages_both_ways(self, d, n, tag):
        """n messages each way, counted by id (harness.Traffic), nothing lost or doubled."""
        bob = self.bob_peer()
        c = self.client(d, hello=f"counter-{tag}", replay=False)
        t = Traffic(self, c, bob, n_out=n, n_in=n, tag=tag, rate_out=50, rate_in=50)
        t.run(timeout=30)
        t.wait_complete(timeout=20)
        t.settle(1.0)  # absence check: a late duplicate would show up here
        t.report()
        t.check()
        return t

    def sasl2_auths(self, prosody=None, since=0):
        return [(kind, mech) for _sid, kind, mech in prosody_auths(prosody or self.prosody,
                                                                    since)]

    # (a)
    def test_login_with_sasl2_and_bind2(self):
        d = self.start(self.home(), log_level="trace")
        full, mech, setup, at = self.login(d)
        self.assertEqual(mech, "SCRAM-SHA-1")
        self.assertEqual(setup, "SASL2 + Bind2")
        # XEP-0386: the configured resource is the tag; Prosody 0.12 makes it "tag~id".
        self.assertRegex(full, r"^alice@localhost/stanzad~\S+$")
        self.assertEqual(self.sasl2_auths(), [("authenticate", "SCRAM-SHA-1")])
        self.assertEqual(self.prosody.session_ids("alice@localhost"), [
            sid for sid, _k, _m in prosody_auths(self.prosody)])
        # Bind2 enabled carbons inline (no separate <enable/> iq), XEP-0198 the legacy way.
        sent = harness.wire_stanzas(d, direction="SEND")
        self.assertEqual([w for w in sent if w.find("urn:xmpp:carbons:2", "enable") is not None
                          and w.tag == "iq"], [])
        d.wait_for(rx_session_up("home"), 10)
        self.messages_both_ways(d, 30, "s2a")
        self.assertEqual(lua_errors(self.prosody), [])

    def test_login_with_channel_binding_on_tls12(self):
        """On TLS 1.2 Prosody binds with tls-unique: SCRAM-SHA-1-PLUS in SASL2, a token for
        HT-SHA-256-UNIQ, and the next login with it."""
        p12 = self.start_prosody("prosody12", sasl2=True, tls_protocol="tlsv1_2")
        proxy = self.fault_proxy(p12)
        d = self.start(self.home(proxy))
        full, mech, setup, _ = self.login(d)
        self.assertEqual(mech, "SCRAM-SHA-1-PLUS, tls-unique")
        self.assertEqual(setup, "SASL2 + Bind2")
        self.assertEqual(d.wait_for(rx_token("home"), 10).group(1), "HT-SHA-256-UNIQ")
        d.wait_for(rx_session_up("home"), 10)
        mark, pmark = d.mark(), p12.log_mark()
        self.assertEqual(proxy.reset_all(), 1)
        _full, mech, _setup, _ = self.login(d, since=mark)
        self.assertEqual(mech, "FAST, tls-unique")
        self.assertEqual(self.sasl2_auths(p12, pmark), [("authenticate", "HT-SHA-256-UNIQ")])
        self.assertEqual(lua_errors(p12), [])

    # (b)
    def test_fast_token_then_fast_login_after_a_reset(self):
        proxy = self.fault_proxy()
        d = self.start(self.home(proxy), log_level="trace")
        _full, mech, _setup, _ = self.login(d)
        self.assertEqual(mech, "SCRAM-SHA-1")
        mech, expiry = d.wait_for(rx_token("home"), 10).groups()
        self.assertEqual(mech, "HT-SHA-256-NONE")
        self.assertRegex(expiry, r"^\d{4}-\d\d-\d\dT")
        secrets = stored_fast_secrets(self.prosody)
        self.assertEqual(len(secrets), 1)
        d.wait_for(rx_session_up("home"), 10)

        mark, pmark = d.mark(), self.prosody.log_mark()
        self.assertEqual(proxy.reset_all(), 1)
        d.wait_for(rx_disconnected("home"), 10, since=mark)
        full, mech, setup, at = self.login(d, since=mark)
        self.assertEqual(mech, "FAST")
        # No SCRAM on the way: the one SASL exchange since the reset is the token's.
        self.assertEqual(self.sasl2_auths(since=pmark), [("authenticate", "HT-SHA-256-NONE")])
        # Without XEP-0198 inside SASL2 (0.12) the daemon resumes after <success/>, so no
        # Bind2 this time (a new binding would end the session it resumes).
        self.assertEqual(setup, "SASL2")
        d.wait_for(rx_resumed("home"), 10, since=at)
        self.messages_both_ways(d, 20, "fst")
        # The token never reaches the log, not even the wire trace.
        for secret in secrets + [s.split("secret-token:", 1)[-1] for s in secrets]:
            self.assertNotIn(secret, d.output())
        self.assertEqual(lua_errors(self.prosody), [])

    # (c)
    def test_refused_token(self):
        """The server forgot the token (its store deleted while the daemon was stopped):
        the daemon says so, logs in with the password, gets a new token, is online.
        Prosody 0.12's mod_sasl2 refuses a second mechanism on the stream where the token
        failed (invalid-mechanism), so the password login happens on the next connection."""
        d = self.start(self.home())
        self.login(d)
        d.wait_for(rx_token("home"), 10)
        old = stored_fast_secrets(self.prosody)
        self.assertEqual(len(old), 1)
        self.assertEqual(d.stop(), 0)
        (self.prosody.data_path / "localhost" / "fast_tokens" / "alice.dat").unlink()

        pmark = self.prosody.log_mark()
        d2 = self.start(self.home())
        why = d2.wait_for(rx_refused("home"), 15).group(1)
        self.assertIn("not-authorized", why)
        refused_at = d2.index(rx_refused("home"))
        _full, mech, setup, at = self.login(d2, since=refused_at)
        self.assertEqual(mech, "SCRAM-SHA-1")
        self.assertEqual(setup, "SASL2 + Bind2")
        d2.wait_for(rx_token("home"), 10, since=refused_at)
        new = stored_fast_secrets(self.prosody)
        self.assertEqual(len(new), 1)
        self.assertNotEqual(new, old)
        auths = prosody_auths(self.prosody, pmark)
        self.assertEqual([(k, m) for _s, k, m in auths],
                         [("authenticate", "HT-SHA-256-NONE"), ("authenticate", "SCRAM-SHA-1"),
                          ("authenticate", "SCRAM-SHA-1")])
        # The first two on one connection (the refused token, then the password, which
        # that stream refuses), the third on the next.
        self.assertEqual(auths[0][0], auths[1][0])
        self.assertNotEqual(auths[1][0], auths[2][0])
        self.assertEqual(d2.count(rx_connecting("home")), 2)
        self.assertEqual(self.prosody.session_ids("alice@localhost", pmark), [auths[2][0]])
        self.peer("bob").ping(_full)

    # (d)
    def test_messages_through_resets(self):
        N, RESETS = 300, 6
        proxy = self.fault_proxy()
        d = self.start(self.home(proxy))
        self.login(d)
        d.wait_for(rx_token("home"), 10)
        d.wait_for(rx_session_up("home"), 10)
        bob = self.bob_peer()
        c = self.client(d, hello="counter", replay=False)
        start, pmark = d.mark(), self.prosody.log_mark()
        resets = []

        def reset():
            n = proxy.reset_all()
            if n:
                resets.append(n)
            return n >= 1

        t = Traffic(self, c, bob, n_out=N, n_in=N, tag="s2r", rate_out=60, rate_in=60)
        try:
            t.run([Fault(at=(k + 1) / (RESETS + 1), fire=reset,
                         ready=lambda: daemon_link_up(d, "home"), name=f"reset {k + 1}")
                   for k in range(RESETS)], timeout=60)
            t.wait_complete(timeout=30)
            t.wait_catch_up(d, since=start, timeout=15)
            t.settle(2.0)  # absence check: a late duplicate (resend, MAM) shows up here
        finally:
            t.report(resets=len(resets),
                     logins=[m.group(2) for m in d.matches(rx_online_mech("home"), start)],
                     resumed=d.count(rx_resumed("home"), since=start))
        self.assertEqual(len(resets), RESETS)
        t.check()
        logins = [m.group(2) for m in d.matches(rx_online_mech("home"), since=start)]
        self.assertGreaterEqual(len(logins), RESETS)
        self.assertEqual(set(logins), {"FAST"}, "every login after a reset uses the token")
        self.assertEqual({m for _k, m in self.sasl2_auths(since=pmark)}, {"HT-SHA-256-NONE"})
        self.audit_replay(d, t)

    # (e)
    def test_restart_keeps_the_token(self):
        d = self.start(self.home())
        first, mech, _setup, _ = self.login(d)
        self.assertEqual(mech, "SCRAM-SHA-1")
        d.wait_for(rx_token("home"), 10)
        self.assertEqual(d.stop(), 0)
        pmark = self.prosody.log_mark()
        d2 = self.start(self.home())
        full, mech, setup, _ = self.login(d2)
        self.assertEqual(mech, "FAST")
        self.assertEqual(self.sasl2_auths(since=pmark), [("authenticate", "HT-SHA-256-NONE")])
        self.assertEqual(setup, "SASL2 + Bind2")
        # The user-agent id is kept with the token: Bind2 makes the same resource.
        self.assertEqual(full, first)
        self.assertEqual(d2.count(rx_token("home")), 0)  # the token was kept, not replaced
        self.peer("bob").ping(full)


if __name__ == "__main__":
    harness.main()
