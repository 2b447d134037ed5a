"""Discovery for tls = "auto" (RFC 6120 §3.2.1, XEP-0368, RFC 8305): an account with only
jid, password and `[daemon] resolver` (plus ca_file for the test CA) finds its server
through SRV records served by a real dnsmasq, and Prosody is on the other end.

    direct TLS first at equal priority; priority before service; a dead target is skipped;
    "." means no service (no fallback, no connection); no SRV at all -> DOMAIN:5222
    STARTTLS; AAAA and A raced (IPv6 first, IPv4 250 ms later) with a black-holed ::1;
    the certificate is checked against the JID's domain, never the SRV target; direct
    TLS sends SNI = the domain and ALPN xmpp-client.

The test domain is stanzad.test: only the test's dnsmasq knows it, so every address the
daemon uses came from that DNS server, whose query log is checked too.
"""

import re
import socket

import harness
from harness import log_line_time, rx_connecting, rx_online, rx_tls_failed
from netpeers import NetTest

XMPPS = "_xmpps-client._tcp.stanzad.test"
XMPP = "_xmpp-client._tcp.stanzad.test"


def rx_targets(account: str) -> str:
    """`account NAME: targets for DOMAIN: T1, T2`; groups: domain, the list."""
    return rf"account {re.escape(account)}: targets for (\S+): (.*)$"


def rx_connecting_to(account: str, host: str, port: int, how: str) -> str:
    return (rf"account {re.escape(account)}: connecting to {re.escape(host)}:{port} "
            rf"\({re.escape(how)}\)")


def rx_connected(account: str, host: str, port: int) -> str:
    """`account NAME: connected to HOST:PORT at ADDR`; group: ADDR."""
    return (rf"account {re.escape(account)}: connected to {re.escape(host)}:{port} "
            rf"at (\S+)")


def rx_target_failed(account: str, host: str, port: int) -> str:
    """`account NAME: HOST:PORT failed: REASON; trying the next target`; group: REASON."""
    return (rf"account {re.escape(account)}: {re.escape(host)}:{port} failed: (.*); "
            rf"trying the next target")


def dead_port() -> int:
    """A loopback port with nothing listening (connect: refused at once)."""
    return harness.free_port()


class SrvTest(NetTest):
    PROSODY_OPTIONS = {"direct_tls": True}

    def start(self, dns, accounts=None, **daemon):
        return self.start_daemon(accounts or [self.srv_account("home", "alice")],
                                 online=False, resolver=dns.address, **daemon)

    def session_lines(self, prosody, since=0):
        sid = prosody.wait_for_session("alice@stanzad.test", since=since)
        return "\n".join(prosody.session_lines(sid))

    # (a)
    def test_direct_tls_first_at_equal_priority(self):
        p = self.prosody
        dns = self.dnsmasq(srv=[(XMPP, "xmpp.stanzad.test", p.port, 10, 0),
                                (XMPPS, "xmpp.stanzad.test", p.direct_tls_port, 10, 0)],
                           hosts=[("xmpp.stanzad.test", ["127.0.0.1"])])
        d = self.start(dns)
        targets = d.wait_for(rx_targets("home"))
        self.assertEqual(targets.groups(), (
            "stanzad.test",
            f"xmpp.stanzad.test:{p.direct_tls_port} (direct TLS, SRV), "
            f"xmpp.stanzad.test:{p.port} (STARTTLS, SRV)"))
        d.wait_for(rx_connecting_to("home", "xmpp.stanzad.test", p.direct_tls_port,
                                    "direct TLS"))
        at = d.wait_for(rx_connected("home", "xmpp.stanzad.test", p.direct_tls_port))
        self.assertEqual(at.group(1), f"127.0.0.1:{p.direct_tls_port}")
        full = self.wait_online(d, "home")
        self.assertEqual(full, "alice@stanzad.test/stanzad")
        self.assertEqual(d.count(rx_connecting("home")), 1, "more than one attempt")

        # Prosody's side: encrypted from the first byte, no STARTTLS on this session.
        lines = self.session_lines(p)
        self.assertIn("Stream encrypted", lines)
        self.assertNotIn("TLS negotiation started", lines)

        # The daemon asked dnsmasq for both services (and nothing outside the domain).
        queries = dns.queries()
        self.assertIn(("SRV", XMPPS), queries)
        self.assertIn(("SRV", XMPP), queries)
        self.assertTrue(all(name.endswith("stanzad.test") for _t, name in queries), queries)

        self.exchange_messages(d, "home", full, self.peer("bob"), "srv-direct")

    # (b)
    def test_priority_before_service(self):
        p = self.prosody
        dns = self.dnsmasq(srv=[(XMPPS, "xmpp.stanzad.test", p.direct_tls_port, 20, 0),
                                (XMPP, "xmpp.stanzad.test", p.port, 10, 0)],
                           hosts=[("xmpp.stanzad.test", ["127.0.0.1"])])
        d = self.start(dns)
        self.assertEqual(d.wait_for(rx_targets("home")).group(2),
                         f"xmpp.stanzad.test:{p.port} (STARTTLS, SRV), "
                         f"xmpp.stanzad.test:{p.direct_tls_port} (direct TLS, SRV)")
        d.wait_for(rx_connecting_to("home", "xmpp.stanzad.test", p.port, "STARTTLS"))
        self.wait_online(d, "home")
        self.assertEqual(d.count(rx_connecting("home")), 1)
        self.assertIn("TLS negotiation started", self.session_lines(p))

    # (c)
    def test_dead_first_target_moves_on_to_the_next(self):
        p = self.prosody
        dead = dead_port()
        dns = self.dnsmasq(srv=[(XMPPS, "dead.stanzad.test", dead, 5, 0),
                                (XMPP, "xmpp.stanzad.test", p.port, 10, 0)],
                           hosts=[("dead.stanzad.test", ["127.0.0.1"]),
                                  ("xmpp.stanzad.test", ["127.0.0.1"])])
        d = self.start(dns)
        d.wait_for(rx_connecting_to("home", "dead.stanzad.test", dead, "direct TLS"))
        failed = d.wait_for(rx_target_failed("home", "dead.stanzad.test", dead))
        self.assertRegex(failed.group(1), r"(?i)refused", failed.string)
        d.wait_for(rx_connecting_to("home", "xmpp.stanzad.test", p.port, "STARTTLS"))
        full = self.wait_online(d, "home")
        self.assertLess(d.index(rx_target_failed("home", "dead.stanzad.test", dead)),
                        d.index(rx_connecting_to("home", "xmpp.stanzad.test", p.port,
                                                 "STARTTLS")))
        self.assertEqual(d.count(r"account home: disconnected"), 0,
                         "a dead first target is not a disconnection")
        self.peer("bob").ping(full)

    def test_all_targets_dead_backs_off_and_retries(self):
        dead1, dead2 = dead_port(), dead_port()
        dns = self.dnsmasq(srv=[(XMPPS, "dead1.stanzad.test", dead1, 5, 0),
                                (XMPP, "dead2.stanzad.test", dead2, 10, 0)],
                           hosts=[("dead1.stanzad.test", ["127.0.0.1"]),
                                  ("dead2.stanzad.test", ["127.0.0.1"])])
        d = self.start(dns)
        d.wait_for(rx_target_failed("home", "dead1.stanzad.test", dead1))
        d.wait_for(rx_connecting_to("home", "dead2.stanzad.test", dead2, "STARTTLS"))
        d.wait_for(harness.rx_disconnected("home"), 10)
        # The next round starts from the first target again, after the backoff.
        d.wait_for(rx_connecting_to("home", "dead1.stanzad.test", dead1, "direct TLS"),
                   10, nth=2)
        self.wait_state(d, "home", "disconnected")
        self.assertEqual(d.count(rx_online("home")), 0)

    # (d)
    def test_dot_target_means_no_service(self):
        # A record for the domain itself: a daemon that fell back to DOMAIN:5222 despite
        # the "." records would find an address and try it.
        dns = self.dnsmasq(srv=[(XMPPS, None, 0, 0, 0), (XMPP, None, 0, 0, 0)],
                           hosts=[("stanzad.test", ["127.0.0.1"])])
        prosody_mark = self.prosody.log_mark()  # after its own readiness probes
        d = self.start(dns)
        said = d.wait_for(r"account home: .*(reconnecting in|not retrying)", 10)
        self.assertIn("stanzad.test", said.string)
        self.assertRegex(said.string, r"(?i)servic|SRV|\"\.\"", said.string)
        final = "failed" if "not retrying" in said.string else "disconnected"
        self.wait_state(d, "home", final, "stanzad.test")
        self.status_row(d, "home", rf"\b{final}\b.*stanzad\.test")
        self.assertEqual(d.count(rx_connecting("home")), 0, "a connection was attempted")
        self.assertNotIn("New connection", self.prosody.log_text()[prosody_mark:])
        queries = dns.queries()
        self.assertIn(("SRV", XMPPS), queries)
        self.assertIn(("SRV", XMPP), queries)
        self.assertNotIn(("A", "stanzad.test"), queries, "fell back to DOMAIN:5222")
        self.assertNotIn(("AAAA", "stanzad.test"), queries, "fell back to DOMAIN:5222")

    def test_dot_for_direct_tls_only_uses_starttls(self):
        p = self.prosody
        dns = self.dnsmasq(srv=[(XMPPS, None, 0, 0, 0),
                                (XMPP, "xmpp.stanzad.test", p.port, 10, 0)],
                           hosts=[("xmpp.stanzad.test", ["127.0.0.1"])])
        d = self.start(dns)
        self.assertEqual(d.wait_for(rx_targets("home")).group(2),
                         f"xmpp.stanzad.test:{p.port} (STARTTLS, SRV)")
        d.wait_for(rx_connecting_to("home", "xmpp.stanzad.test", p.port, "STARTTLS"))
        self.wait_online(d, "home")

    # (e)
    def test_no_srv_falls_back_to_domain_5222(self):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", 5222))
                free = True
            except OSError:
                free = False
        p5222 = self.start_prosody("prosody-5222", port=5222) if free else None
        dns = self.dnsmasq(hosts=[("stanzad.test", ["127.0.0.1"])])
        d = self.start(dns)
        d.wait_for(r"account home: no SRV records for stanzad\.test; using "
                   r"stanzad\.test:5222 \(STARTTLS\)")
        d.wait_for(rx_connecting_to("home", "stanzad.test", 5222, "STARTTLS"))
        if p5222 is None:
            self.skipTest("port 5222 is in use on 127.0.0.1: the fallback was checked up to "
                          "the connection attempt, not the login")
        at = d.wait_for(rx_connected("home", "stanzad.test", 5222))
        self.assertEqual(at.group(1), "127.0.0.1:5222")
        queries = dns.queries()
        self.assertIn(("SRV", XMPPS), queries)
        self.assertIn(("SRV", XMPP), queries)
        self.assertIn(("A", "stanzad.test"), queries)   # the address came from DNS
        full = self.wait_online(d, "home")
        self.assertTrue(p5222.session_ids("alice@stanzad.test"))
        self.assertEqual(self.prosody.session_ids("alice@stanzad.test"), [])
        self.peer("bob", prosody=p5222).ping(full)

    # (f)
    def test_happy_eyeballs_black_holed_ipv6_falls_back_to_ipv4(self):
        p = self.prosody                       # listens on 127.0.0.1 only
        hole = self.blackhole("::1", p.port)   # [::1]:same port: SYNs vanish
        dns = self.dnsmasq(srv=[(XMPP, "dual.stanzad.test", p.port, 10, 0)],
                           hosts=[("dual.stanzad.test", ["::1", "127.0.0.1"])])
        d = self.start(dns)
        connecting = d.wait_for(rx_connecting_to("home", "dual.stanzad.test", p.port,
                                                 "STARTTLS"))
        connected = d.wait_for(rx_connected("home", "dual.stanzad.test", p.port), 10)
        self.assertEqual(connected.group(1), f"127.0.0.1:{p.port}")
        # IPv6 was tried first: IPv4 started only after the 250 ms head start, and well
        # before any connect timeout.
        delta = log_line_time(connected.string) - log_line_time(connecting.string)
        self.assertGreaterEqual(delta, 0.2, f"IPv4 won after {delta:.3f}s: no IPv6 head start")
        self.assertLess(delta, 3.0, f"IPv4 won only after {delta:.3f}s")
        full = self.wait_online(d, "home")
        self.peer("bob").ping(full)
        queries = dns.queries()
        self.assertIn(("AAAA", "dual.stanzad.test"), queries)
        self.assertIn(("A", "dual.stanzad.test"), queries)
        self.assertEqual(d.count(r"account home: disconnected"), 0)
        self.assertTrue(hole.hangs(0.05))  # still a black hole: the daemon did not get in

    def test_happy_eyeballs_prefers_ipv6(self):
        dual = self.start_prosody("dual", interfaces=("127.0.0.1", "::1"))
        dns = self.dnsmasq(srv=[(XMPP, "dual.stanzad.test", dual.port, 10, 0)],
                           hosts=[("dual.stanzad.test", ["127.0.0.1", "::1"])])
        d = self.start(dns)
        connected = d.wait_for(rx_connected("home", "dual.stanzad.test", dual.port), 10)
        self.assertEqual(connected.group(1), f"[::1]:{dual.port}")
        self.wait_online(d, "home")
        self.assertTrue(dual.session_ids("alice@stanzad.test"))

    # (g)
    def test_certificate_is_checked_against_the_domain_not_the_target(self):
        # The certificate names stanzad.test (and 127.0.0.1), not xmpp.hosting.test.
        # (STARTTLS here; test_direct_tls_first_at_equal_priority covers direct TLS to a
        # target that is not in the certificate either.)
        p = self.prosody
        dns = self.dnsmasq(srv=[(XMPP, "xmpp.hosting.test", p.port, 10, 0)],
                           hosts=[("xmpp.hosting.test", ["127.0.0.1"])])
        d = self.start(dns)
        d.wait_for(rx_connecting_to("home", "xmpp.hosting.test", p.port, "STARTTLS"))
        self.wait_online(d, "home")
        self.assertEqual(d.count(rx_tls_failed("home")), 0)

    def test_certificate_for_the_target_only_is_refused(self):
        cert, key = harness.make_leaf(self.certs, "target-only", ["DNS:xmpp.hosting.test"])
        other = self.start_prosody("target-only", cert=cert, key=key, direct_tls=True)
        dns = self.dnsmasq(srv=[(XMPPS, "xmpp.hosting.test", other.direct_tls_port, 10, 0),
                                (XMPP, "xmpp.hosting.test", other.port, 20, 0)],
                           hosts=[("xmpp.hosting.test", ["127.0.0.1"])])
        d = self.start(dns)
        first = d.wait_for(f"{rx_tls_failed('home')}|{rx_online('home')}", 15)
        self.assertRegex(first.string, rx_tls_failed("home"),
                         "online with a certificate for the SRV target only")
        self.assertIn("stanzad.test", first.string)
        self.assertEqual(d.count(rx_online("home")), 0)
        self.assertNotIn("<auth ", other.log_text())  # no credentials sent

    def test_direct_tls_sends_sni_domain_and_alpn(self):
        sniffer = self.tls_sniffer()
        dns = self.dnsmasq(srv=[(XMPPS, "sniff.hosting.test", sniffer.port, 10, 0)],
                           hosts=[("sniff.hosting.test", ["127.0.0.1"])])
        self.start(dns)
        sni, alpn = sniffer.wait_hello(10)
        self.assertEqual(sni, "stanzad.test", "SNI must be the JID's domain")
        self.assertEqual(alpn, "xmpp-client")


if __name__ == "__main__":
    harness.main()
