# NetTest: JsonlTest on the domain "stanzad.test" that only the test's Dnsmasq resolves,
# with helpers that make the fixtures of the other netpeers_*.py parts with cleanups;
# FixturesSelfTest checks those fixtures without the daemon (run netpeers.py).

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Any, Iterable, Optional

import harness
from harness import LOOPBACK, poll_until
from netpeers_dns import Dnsmasq
from netpeers_socks import Microsocks, Socks5Error, socks5_connect
from netpeers_fakesocks import FakeSocks5
from netpeers_listeners import BlackHole, TlsSniffer


# --------------------------------------------------------------------------------------
# Tests on a domain that only the test's DNS server knows

class NetTest(harness.JsonlTest):
    """JsonlTest with the XMPP domain "stanzad.test": Prosody's VirtualHost, the users'
    JIDs and the name on the test CA's server certificate (DNS:stanzad.test and
    IP:127.0.0.1). Nothing on this machine resolves it but a Dnsmasq of the test."""

    DOMAIN = "stanzad.test"

    # One set of certificates per class (make_ca takes about 1.4 s; nothing changes them:
    # make_leaf adds files of other names beside them).
    _class_certs: Optional[harness.Certs] = None

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls._class_certs_dir = Path(tempfile.mkdtemp(prefix=f"stanzad-{cls.__name__}-certs-"))
        cls._class_certs = harness.make_ca(cls._class_certs_dir, cls.DOMAIN)

    @classmethod
    def tearDownClass(cls) -> None:
        if not os.environ.get("STANZAD_KEEP_TMP"):
            shutil.rmtree(cls._class_certs_dir, ignore_errors=True)
        super().tearDownClass()

    def make_certs(self) -> harness.Certs:
        assert self._class_certs is not None
        return self._class_certs

    def wait_online(self, d: harness.Stanzad, account: str, timeout: float = 15.0,
                    since: int = 0) -> str:
        """Like IntegrationTest.wait_online, but fails at once when the account gives up
        ("not retrying until the config changes"): it cannot come online by itself."""
        final = rf"account {re.escape(account)}: .*not retrying until the config changes"
        m = d.wait_for(f"{harness.rx_online(account)}|{final}", timeout, since=since)
        if m.group(1) is None:
            self.fail(f"{account} gave up instead of coming online:\n{m.string}")
        return m.group(1)

    def dnsmasq(self, srv: Iterable[Any] = (), hosts: Iterable[Any] = (),
                name: str = "dnsmasq", **kwargs: Any) -> Dnsmasq:
        d = Dnsmasq(self.tmp / name, srv, hosts, name=name, **kwargs)
        self.addCleanup(d.stop)
        return d

    def microsocks(self, port: Optional[int] = None, user: Optional[str] = None,
                   password: Optional[str] = None, **kwargs: Any) -> Microsocks:
        kwargs.setdefault("workdir", self.tmp / kwargs.get("name", "microsocks"))
        m = Microsocks(port, user, password, **kwargs)
        self.addCleanup(m.kill)
        return m

    def fake_socks(self, mode: str = "forward", code: int = 5, **kwargs: Any) -> FakeSocks5:
        p = FakeSocks5(mode, code, **kwargs)
        self.addCleanup(p.close)
        return p

    def blackhole(self, host: str = "::1", port: int = 0) -> BlackHole:
        b = BlackHole(host, port)
        self.addCleanup(b.close)
        return b

    def tls_sniffer(self) -> TlsSniffer:
        t = TlsSniffer(self.certs.server_cert, self.certs.server_key)
        self.addCleanup(t.close)
        return t

    def srv_account(self, name: str, user: str, *, ca_file: Any = "default",
                    **extra: Any) -> dict:
        """An [[account]] with only jid, password and ca_file (the test CA): no host, no
        port, tls left to its default ("auto"): everything else comes from DNS."""
        acct: dict = {"name": name, "jid": self.jid(user), "password": self.USERS[user]}
        ca = self.certs.ca_cert if ca_file == "default" else ca_file
        if ca is not None:
            acct["ca_file"] = str(ca)
        acct.update(extra)
        return acct

    def accounts(self, d: harness.Stanzad) -> "dict[str, dict]":
        """The JSON op `accounts`, by account name."""
        c = harness.JsonClient(d.socket_path)  # type: ignore[attr-defined]
        try:
            c.hello("tests-accounts", replay=False)
            reply = c.ok("accounts")
        finally:
            c.close()
        return {a["account"]: a for a in reply["accounts"]}

    def status_row(self, d: harness.Stanzad, account: str,
                   matching: Optional[str] = None, timeout: float = 10.0) -> str:
        """The line of `stanzactl status` for `account` (exit 0 required); with
        `matching`, the first such line that matches that regex (asked again while the
        account is between two attempts: "connecting" lasts a few milliseconds)."""
        def row() -> Optional[str]:
            p = harness.run_stanzactl(["-s", d.socket_path, "status"])  # type: ignore[attr-defined]
            self.assertEqual(p.returncode, 0, f"stanzactl status: {p.returncode}\n{p.stderr}")
            rows = [l for l in p.stdout.splitlines() if l.split()[:1] == [account]]
            self.assertEqual(len(rows), 1, f"no single row for {account}:\n{p.stdout}")
            last[0] = rows[0]
            return rows[0] if matching is None or re.search(matching, rows[0]) else None
        last = [""]
        return poll_until(row, timeout, f"a status row of {account} matching {matching!r}",
                          lambda: f"last row: {last[0]}")

    def wait_state(self, d: harness.Stanzad, account: str, state: str,
                   reason: str = "", timeout: float = 10.0) -> dict:
        """The JSON `accounts` entry of `account` once its state is `state` and its reason
        contains `reason` (asked again while it is between two attempts)."""
        last: dict = {}

        def check() -> Optional[dict]:
            entry = self.accounts(d)[account]
            last.update(entry)
            return entry if entry["state"] == state and reason in entry["reason"] else None
        return poll_until(check, timeout, f"{account} {state} with reason containing "
                          f"{reason!r}", lambda: f"last: {last}")

    def exchange_messages(self, d: harness.Stanzad, account: str, full_jid: str,
                          peer: harness.Peer, tag: str) -> None:
        """One message each way between the daemon's account and `peer`, each counted by
        its id once a later message has arrived behind it (same stream, same order)."""
        c = self.client(d, hello=f"tests-{tag}", replay=False)
        peer_bare = peer.jid.split("/")[0]
        out_id = f"out-{tag}-{secrets.token_hex(3)}"
        r = c.ok("send", account=account, to=peer_bare, body=f"to the peer {out_id}",
                 client_id=out_id)
        self.assertEqual(r["msg_id"], out_id)
        m = peer.wait_message(origin_id=out_id, timeout=10)
        self.assertEqual(m.body, f"to the peer {out_id}")
        in_id = f"in-{tag}-{secrets.token_hex(3)}"
        peer.send_message(full_jid, f"to the daemon {in_id}", id=in_id)
        ev = c.wait_event("message", body=f"to the daemon {in_id}", timeout=10)
        self.assertEqual(ev["account"], account)
        self.assertIs(ev["outgoing"], False)
        # Barriers: a second message each way; once they are in, a duplicate of the first
        # would have been seen before them.
        after_id = f"after-{tag}-{secrets.token_hex(3)}"
        c.ok("send", account=account, to=peer_bare, body=f"after {after_id}",
             client_id=after_id)
        peer.wait_message(origin_id=after_id, timeout=10)
        peer.send_message(full_jid, f"after {in_id}", id=f"{in_id}-after")
        c.wait_event("message", body=f"after {in_id}", timeout=10)
        self.assertEqual(len(peer.received(origin_id=out_id)), 1, "sent more than once")
        self.assertEqual(len(c.find_events("message", body=f"to the daemon {in_id}")), 1,
                         "received more than once")
        c.close()


# --------------------------------------------------------------------------------------
# Self-test of the fixtures (no daemon needed)

class FixturesSelfTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="stanzad-netpeers-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_dnsmasq_serves_and_logs(self) -> None:
        d = Dnsmasq(self.tmp / "dns",
                    srv=[("_xmpps-client._tcp.stanzad.test", "xmpp.stanzad.test", 5223, 5, 0),
                         ("_xmpp-client._tcp.stanzad.test", "xmpp.stanzad.test", 5222, 10, 7),
                         ("_xmpps-client._tcp.none.test", None, 0, 0, 0)],
                    hosts=[("xmpp.stanzad.test", ["127.0.0.1", "::1"]),
                           ("v4.stanzad.test", ["127.0.0.1"])])
        self.addCleanup(d.stop)
        self.assertEqual(d.queries(), [])
        r = d.query("_xmpp-client._tcp.stanzad.test", "SRV")
        self.assertEqual(r.values("SRV"), [(10, 7, 5222, "xmpp.stanzad.test")])
        r = d.query("_xmpps-client._tcp.stanzad.test", "SRV")
        self.assertEqual(r.values("SRV"), [(5, 0, 5223, "xmpp.stanzad.test")])
        r = d.query("_xmpps-client._tcp.none.test", "SRV")
        self.assertEqual([v[3] for v in r.values("SRV")], ["."])  # (dnsmasq says port 1)
        self.assertEqual(d.query("xmpp.stanzad.test", "AAAA").values("AAAA"), ["::1"])
        self.assertEqual(d.query("xmpp.stanzad.test", "A").values("A"), ["127.0.0.1"])
        r = d.query("v4.stanzad.test", "AAAA")
        self.assertEqual((r.rcode, r.answers), (0, []))         # NODATA
        r = d.query("_xmpp-client._tcp.v4.stanzad.test", "SRV")
        self.assertEqual((r.rcode, r.answers), (3, []))         # NXDOMAIN
        self.assertEqual(d.query("example.com", "A").rcode, 5)  # REFUSED: no upstream
        self.assertEqual(d.queries(), [
            ("SRV", "_xmpp-client._tcp.stanzad.test"), ("SRV", "_xmpps-client._tcp.stanzad.test"),
            ("SRV", "_xmpps-client._tcp.none.test"), ("AAAA", "xmpp.stanzad.test"),
            ("A", "xmpp.stanzad.test"), ("AAAA", "v4.stanzad.test"),
            ("SRV", "_xmpp-client._tcp.v4.stanzad.test"), ("A", "example.com")])
        d.stop()
        self.assertFalse(d.running)

    def _echo_server(self) -> "tuple[socket.socket, int]":
        srv = socket.socket()
        srv.bind((LOOPBACK, 0))
        srv.listen(5)
        self.addCleanup(srv.close)

        def serve() -> None:
            with contextlib.suppress(OSError):
                while True:
                    conn, _ = srv.accept()
                    data = conn.recv(100)
                    conn.sendall(b"echo:" + data)
                    conn.close()
        threading.Thread(target=serve, daemon=True).start()
        return srv, srv.getsockname()[1]

    def test_microsocks(self) -> None:
        _srv, port = self._echo_server()
        m = Microsocks(hosts={"xmpp.hidden.test": "127.0.0.1"}, workdir=self.tmp / "ms")
        self.addCleanup(m.kill)
        with socks5_connect((LOOPBACK, m.port), "xmpp.hidden.test", port) as s:
            s.sendall(b"hi")
            self.assertEqual(s.recv(100), b"echo:hi")
        m.wait_line(rf"connected to xmpp\.hidden\.test:{port}$")
        # Nobody else can resolve that name.
        with self.assertRaises(socket.gaierror):
            socket.getaddrinfo("xmpp.hidden.test", port)
        with socks5_connect((LOOPBACK, m.port), "127.0.0.1", port) as s:
            s.sendall(b"v4")
            self.assertEqual(s.recv(100), b"echo:v4")
        m.wait_line(rf"connected to 127\.0\.0\.1:{port}$")
        m.kill()

        a = Microsocks(user="u1", password="p1", workdir=self.tmp / "ms-auth")
        self.addCleanup(a.kill)
        with socks5_connect((LOOPBACK, a.port), "127.0.0.1", port, user="u1",
                            password="p1") as s:
            s.sendall(b"auth")
            self.assertEqual(s.recv(100), b"echo:auth")
        with self.assertRaises(Socks5Error):
            socks5_connect((LOOPBACK, a.port), "127.0.0.1", port, user="u1", password="no")
        with self.assertRaises(Socks5Error):
            socks5_connect((LOOPBACK, a.port), "127.0.0.1", port)  # no credentials

    def test_fake_socks(self) -> None:
        _srv, port = self._echo_server()
        p = FakeSocks5(routes={"only.here.test": "127.0.0.1"})
        self.addCleanup(p.close)
        with socks5_connect((LOOPBACK, p.port), "only.here.test", port, user="stanzad-x",
                            password="pw") as s:
            s.sendall(b"x")
            self.assertEqual(s.recv(100), b"echo:x")
        r = p.wait_requests(1)[0]
        self.assertEqual((r.methods, r.method, r.username, r.atyp, r.host, r.port, r.reply),
                         ([0, 2], 2, "stanzad-x", 3, "only.here.test", port, 0))
        with self.assertRaises(Socks5Error) as e:
            socks5_connect((LOOPBACK, p.port), "unknown.test", port)
        self.assertEqual(e.exception.reply, 4)
        for code in (5, 4, 6, 1, 0xF0):
            p.set_mode("refuse", code)
            with self.assertRaises(Socks5Error) as e:
                socks5_connect((LOOPBACK, p.port), "only.here.test", port)
            self.assertEqual(e.exception.reply, code)
        p.set_mode("drop")
        with self.assertRaises(OSError):
            socks5_connect((LOOPBACK, p.port), "only.here.test", port)
        p.set_mode("forward")
        with socks5_connect((LOOPBACK, p.port), "127.0.0.1", port) as s:
            s.sendall(b"back")
            self.assertEqual(s.recv(100), b"echo:back")
        self.assertEqual(p.requests[-1].atyp, 1)

    def test_blackhole(self) -> None:
        for host in ("::1", "127.0.0.1"):
            b = BlackHole(host)
            self.addCleanup(b.close)
            t0 = time.monotonic()
            self.assertTrue(b.hangs(0.3), f"connect to {b.address} did not hang")
            self.assertGreaterEqual(time.monotonic() - t0, 0.29)

    def test_tls_sniffer(self) -> None:
        import ssl
        certs = harness.make_ca(self.tmp / "certs", "stanzad.test")
        t = TlsSniffer(certs.server_cert, certs.server_key)
        self.addCleanup(t.close)
        ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
        ctx.set_alpn_protocols(["xmpp-client"])
        with socket.create_connection((LOOPBACK, t.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="stanzad.test") as s:
                self.assertEqual(s.selected_alpn_protocol(), "xmpp-client")
        self.assertEqual(t.wait_hello(), ("stanzad.test", "xmpp-client"))

    def test_prosody_direct_tls_and_ipv6(self) -> None:
        import ssl
        certs = harness.make_ca(self.tmp / "certs", "stanzad.test")
        p = harness.Prosody(self.tmp / "prosody", certs, host="stanzad.test",
                            direct_tls=True, interfaces=("127.0.0.1", "::1"))
        self.addCleanup(p.stop)
        p.start()
        ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
        for addr in ("127.0.0.1", "::1"):
            with socket.create_connection((addr, p.direct_tls_port), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="stanzad.test") as s:
                    self.assertTrue(s.version())
            self.assertTrue(harness.port_accepts(p.port, addr))
        cert, _key = harness.make_self_signed(self.tmp / "ss", "self", ["DNS:localhost"])
        pin = harness.spki_pin(cert)
        self.assertRegex(pin, r"^sha256/[A-Za-z0-9+/]{43}=$")
