"""SOCKS5 (RFC 1928, RFC 1929): every connection of an account with `proxy` goes through
the proxy, as it must for Tor.

socks5h sends the host name to the proxy and makes no DNS query at all: the daemon's
resolver is a real dnsmasq that knows every name of the test (a trap: a daemon that looked
anything up would get an answer) and its query log must stay empty. The server's name,
xmpp.hidden.test, resolves only inside the proxy (microsocks with a private /etc/hosts, or
the routes of FakeSocks5), like an .onion only Tor can reach. socks5 resolves locally
(A/AAAA queries to the resolver) and sends the address.

Broken proxies end in clear states (log, `stanzactl status`, JSON `accounts`) and the
account recovers: CONNECT refused with reply 5, 4, 6, 1 or 0xF0; a proxy that accepts
and drops; nothing listening on the proxy port.
"""

import re
import signal

import harness
from harness import free_port, rx_reloaded
from netpeers import NetTest

HIDDEN = "xmpp.hidden.test"   # resolvable by the proxies only

REPLIES = {5: "connection refused", 4: "host unreachable", 6: "TTL expired",
           1: "general SOCKS server failure", 240: "onion service descriptor can not be found"}


def rx_via(account: str, what: str, host: str, port: int, proxy_port: int,
           how: str = "") -> str:
    """`account NAME: connecting to HOST:PORT (STARTTLS) through the proxy 127.0.0.1:P`
    (what="connecting to", how="STARTTLS") or `connected to HOST:PORT through ...`."""
    how_rx = rf" \({re.escape(how)}\)" if how else ""
    return (rf"account {re.escape(account)}: {what} {re.escape(host)}:{port}{how_rx} "
            rf"through the proxy 127\.0\.0\.1:{proxy_port}\b")


def rx_proxy_refused(account: str, proxy_port: int, host: str, port: int, code: int) -> str:
    return (rf"account {re.escape(account)}: disconnected: the proxy 127\.0\.0\.1:{proxy_port} "
            rf"could not connect to {re.escape(host)}:{port}: {re.escape(REPLIES[code])} "
            rf"\(SOCKS5 reply {code}\); reconnecting in [0-9.]+s")


class SocksTest(NetTest):
    USERS = dict(NetTest.USERS, dave="dave-Pw-4!", erin="erin-Pw-5!")

    def trap_dns(self):
        """The daemon's resolver: answers for every name a leaky daemon could ask."""
        p = self.prosody
        return self.dnsmasq(
            srv=[("_xmpp-client._tcp.stanzad.test", "xmpp.stanzad.test", p.port, 10, 0)],
            hosts=[("stanzad.test", ["127.0.0.1"]), ("xmpp.stanzad.test", ["127.0.0.1"]),
                   (HIDDEN, ["127.0.0.1"])])

    def hidden_account(self, name, user, proxy, **extra):
        """`user` on this test's Prosody, reached as xmpp.hidden.test:PORT via `proxy`."""
        return self.account(name, user, host=HIDDEN, proxy=proxy, **extra)

    def start(self, accounts, dns):
        return self.start_daemon(accounts, online=False, resolver=dns.address)

    def assertNoDns(self, dns):
        self.assertEqual(dns.queries(), [], "the daemon made DNS queries through socks5h")

    # -- socks5h through microsocks
    def test_socks5h_no_auth(self):
        P = self.prosody.port
        dns = self.trap_dns()
        ms = self.microsocks(hosts={HIDDEN: "127.0.0.1"})
        d = self.start([self.hidden_account("home", "alice", ms.url("socks5h"))], dns)
        d.wait_for(rx_via("home", "connecting to", HIDDEN, P, ms.port, "STARTTLS"))
        d.wait_for(rx_via("home", "connected to", HIDDEN, P, ms.port))
        full = self.wait_online(d, "home")
        # The proxy was asked for the name, not for an address.
        ms.wait_line(rf"connected to {re.escape(HIDDEN)}:{P}$")
        self.assertEqual(ms.connects(), [f"{HIDDEN}:{P}"])
        self.exchange_messages(d, "home", full, self.peer("bob"), "socks5h")
        self.assertNoDns(dns)

    def test_socks5h_credentials_in_the_url(self):
        P = self.prosody.port
        dns = self.trap_dns()
        ms = self.microsocks(user="tor-user", password="tor-Secret-1",
                             hosts={HIDDEN: "127.0.0.1"})
        d = self.start([self.hidden_account("home", "alice", ms.url("socks5h"))], dns)
        full = self.wait_online(d, "home")
        ms.wait_line(rf"connected to {re.escape(HIDDEN)}:{P}$")
        self.exchange_messages(d, "home", full, self.peer("bob"), "url-auth")
        self.assertNoDns(dns)
        self.assertNotIn("tor-Secret-1", d.output(), "the proxy password is in the log")

    def test_socks5h_proxy_username_and_password(self):
        P = self.prosody.port
        dns = self.trap_dns()
        ms = self.microsocks(user="tor-user", password="tor-Secret-2",
                             hosts={HIDDEN: "127.0.0.1"})
        acct = self.hidden_account("home", "alice", ms.url("socks5h", with_credentials=False),
                                   proxy_username="tor-user", proxy_password="tor-Secret-2")
        d = self.start([acct], dns)
        full = self.wait_online(d, "home")
        ms.wait_line(rf"connected to {re.escape(HIDDEN)}:{P}$")
        self.exchange_messages(d, "home", full, self.peer("bob"), "key-auth")
        self.assertNoDns(dns)
        self.assertNotIn("tor-Secret-2", d.output(), "the proxy password is in the log")

    # -- what the daemon says to the proxy (a recording proxy)
    def test_stream_isolation_credentials_and_name(self):
        P = self.prosody.port
        dns = self.trap_dns()
        proxy = self.fake_socks(routes={HIDDEN: "127.0.0.1"}, name="recording-proxy")
        d = self.start([self.hidden_account("home", "alice", proxy.url()),
                        self.hidden_account("work", "bob", proxy.url()),
                        self.hidden_account("own", "carol", proxy.url(),
                                            proxy_username="mine", proxy_password="pw-x")],
                       dns)
        for name in ("home", "work", "own"):
            self.wait_online(d, name)
        requests = {r.username: r for r in proxy.wait_requests(3)}
        self.assertEqual(set(requests), {"stanzad-home", "stanzad-work", "mine"}, requests)
        for r in requests.values():
            self.assertIn(2, r.methods, r)        # username/password offered
            self.assertEqual((r.atyp, r.host, r.port, r.reply), (3, HIDDEN, P, 0), r)
        self.assertEqual(requests["mine"].password, "pw-x")
        self.assertTrue(requests["stanzad-home"].password, "RFC 1929 needs a password")
        self.assertNoDns(dns)

    def test_socks5h_without_host_asks_the_proxy_for_domain_5222(self):
        P = self.prosody.port
        dns = self.trap_dns()   # has SRV records: a daemon that asked would find them
        proxy = self.fake_socks(routes={("stanzad.test", 5222): ("127.0.0.1", P)})
        d = self.start([self.srv_account("home", "alice", proxy=proxy.url())], dns)
        d.wait_for(rx_via("home", "connecting to", "stanzad.test", 5222, proxy.port,
                          "STARTTLS"))
        self.wait_online(d, "home")
        r = proxy.wait_requests(1)[0]
        self.assertEqual((r.atyp, r.host, r.port, r.reply), (3, "stanzad.test", 5222, 0), r)
        self.assertNoDns(dns)

    # -- socks5: local resolution
    def test_socks5_resolves_locally_and_sends_the_address(self):
        P = self.prosody.port
        dns = self.dnsmasq(hosts=[("xmpp.stanzad.test", ["127.0.0.1"])])
        ms = self.microsocks()  # the system resolver: it could not resolve the name
        acct = self.account("home", "alice", host="xmpp.stanzad.test", proxy=ms.url("socks5"))
        d = self.start([acct], dns)
        full = self.wait_online(d, "home")
        ms.wait_line(rf"connected to 127\.0\.0\.1:{P}$")
        self.assertEqual(ms.connects(), [f"127.0.0.1:{P}"])
        queries = dns.queries()
        self.assertIn(("A", "xmpp.stanzad.test"), queries)
        self.assertFalse([q for q in queries if q[0] == "SRV"], queries)
        self.peer("bob").ping(full)

    # -- broken proxies
    def test_refused_connect_reply_codes_then_recovery(self):
        P = self.prosody.port
        dns = self.trap_dns()
        ms = self.microsocks(hosts={HIDDEN: "127.0.0.1"})
        users = {5: "alice", 4: "bob", 6: "carol", 1: "dave", 240: "erin"}
        proxies = {code: self.fake_socks("refuse", code, routes={HIDDEN: "127.0.0.1"},
                                         name=f"refusing-{code}") for code in users}
        accounts = [self.hidden_account(f"r{code}", user, proxies[code].url())
                    for code, user in users.items()]
        d = self.start(accounts, dns)
        for code in users:
            said = d.wait_for(harness.rx_disconnected(f"r{code}"), 10)
            self.assertRegex(said.string, rx_proxy_refused(f"r{code}", proxies[code].port,
                                                           HIDDEN, P, code))
        for code in users:
            reason = (f"the proxy 127.0.0.1:{proxies[code].port} could not connect to "
                      f"{HIDDEN}:{P}: {REPLIES[code]} (SOCKS5 reply {code})")
            self.wait_state(d, f"r{code}", "disconnected", reason)
            self.status_row(d, f"r{code}", rf"\bdisconnected\b.*{re.escape(reason)}")
        self.assertEqual(d.count(r"account r\d+: online"), 0)

        # Recovery 1: the proxy starts forwarding; the next retry gets through.
        proxies[5].set_mode("forward")
        full5 = self.wait_online(d, "r5", timeout=15)
        # Recovery 2: the config points r4 at a working proxy (SIGHUP).
        mark = d.mark()
        accounts[1] = self.hidden_account("r4", "bob", ms.url("socks5h"))
        d.write_config(dict(d.config, account=accounts))
        d.signal(signal.SIGHUP)
        d.wait_for(rx_reloaded(4, 0, 0, 1), 10, since=mark)
        self.wait_online(d, "r4", since=mark, timeout=15)
        ms.wait_line(rf"connected to {re.escape(HIDDEN)}:{P}$")
        states = {n: s["state"] for n, s in self.accounts(d).items()}
        self.assertEqual((states.pop("r5"), states.pop("r4")), ("online", "online"))
        self.assertEqual(set(states), {"r6", "r1", "r240"})
        for name, state in states.items():   # still refused, between two attempts or in one
            self.assertIn(state, ("disconnected", "connecting"), name)
        self.peer("carol", resource="check").ping(full5)
        # Every attempt asked its proxy for the name; no DNS at any time.
        for code, proxy in proxies.items():
            for r in proxy.requests:
                if r.atyp is not None:
                    self.assertEqual((r.atyp, r.host, r.port), (3, HIDDEN, P), r)
        self.assertNoDns(dns)

    def test_proxy_that_drops_the_connection_then_recovery(self):
        dns = self.trap_dns()
        proxy = self.fake_socks("drop", routes={HIDDEN: "127.0.0.1"}, name="dropping-proxy")
        d = self.start([self.hidden_account("home", "alice", proxy.url())], dns)
        said = d.wait_for(harness.rx_disconnected("home"), 10)
        self.assertRegex(said.string, r"account home: disconnected: the proxy 127\.0\.0\.1:\d+ closed the "
                                      r"connection during the SOCKS5 handshake(: [^;]+)?; reconnecting in [0-9.]+s")
        self.wait_state(d, "home", "disconnected", "closed the connection during the SOCKS5 handshake")
        self.status_row(d, "home", r"\bdisconnected\b.*closed the connection during the SOCKS5 handshake")
        proxy.set_mode("forward")
        full = self.wait_online(d, "home", timeout=15)
        self.peer("bob").ping(full)
        self.assertTrue(any(r.reply == 0 and r.host == HIDDEN for r in proxy.requests))
        self.assertNoDns(dns)

    def test_nothing_listening_on_the_proxy_port_then_recovery(self):
        P = self.prosody.port
        dns = self.trap_dns()
        port = free_port()
        d = self.start([self.hidden_account("home", "alice",
                                            f"socks5h://127.0.0.1:{port}")], dns)
        said = d.wait_for(harness.rx_disconnected("home"), 10)
        self.assertRegex(said.string, rf"account home: disconnected: cannot reach the proxy "
                                      rf"127\.0\.0\.1:{port}: connection refused; "
                                      rf"reconnecting in [0-9.]+s")
        reason = f"cannot reach the proxy 127.0.0.1:{port}: connection refused"
        self.wait_state(d, "home", "disconnected", reason)
        self.status_row(d, "home", rf"\bdisconnected\b.*{re.escape(reason)}")
        # The proxy comes up on that port (Tor started late): the next retry gets through.
        ms = self.microsocks(port=port, hosts={HIDDEN: "127.0.0.1"})
        full = self.wait_online(d, "home", timeout=15)
        ms.wait_line(rf"connected to {re.escape(HIDDEN)}:{P}$")
        self.peer("bob").ping(full)
        self.assertNoDns(dns)


if __name__ == "__main__":
    harness.main()
