"""Network stand-ins for the connection tests (test_connect_*.py): a DNS server, SOCKS5
proxies and an unreachable address, all on loopback, owned by one test and killed at its
end (and at exit, like every child of the harness).

    Dnsmasq(workdir, srv=[...], hosts=[...])   a real DNS server (dnsmasq) on a loopback
              port that serves SRV, A and AAAA records for the test domain and logs every
              query it receives: queries() is the proof of what the daemon asked, and of
              what it did not (no leak while a socks5h proxy is in use).
    Microsocks(...)   a real SOCKS5 proxy (microsocks), with or without RFC 1929
              username/password; hosts={name: address} gives it a private /etc/hosts (a
              mount namespace of its own), so it can resolve names that nobody else on
              this machine can: a stand-in for Tor resolving a name (or an .onion) that
              the daemon must never look up itself.
    FakeSocks5(mode)  a small SOCKS5 server written here: it records every greeting,
              credentials and CONNECT request (ATYP, name or address, port), and then
              forwards (mode "forward", with its own routes: names resolve only here),
              answers the CONNECT with a reply code (mode "refuse", e.g. 5 connection
              refused, 4 host unreachable, 6 TTL expired, 0xF0 onion descriptor not found)
              or closes the connection as soon as it is accepted (mode "drop").
              set_mode() switches for the next connections. RefusingProxy(code) and
              DroppingProxy() are the two broken starts.
    BlackHole(host, port)   a TCP port where connect() hangs: a listener with a full accept
              queue (listen(0), one connection of ours never accepted), so Linux drops
              further SYNs: an IPv6 (or IPv4) address that does not answer.
    dns_query(server, name, qtype)   a DNS client in 60 lines (no dnspython): UDP, one
              question, answers decoded for A, AAAA and SRV.
    socks5_connect(proxy, host, port)   a hand-written SOCKS5 client (fixture self-test).
    NetTest   JsonlTest for the domain "stanzad.test" (Prosody's VirtualHost and the name
              on its certificate), with helpers to make the fixtures above with cleanups.

Readiness is always an event: an answer to a real DNS query, a SOCKS5 greeting answered,
a port accepting; never a sleep.

Run this file to check the fixtures without the daemon:
    /usr/bin/python3 tests/integration/netpeers.py
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import ipaddress
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

import harness
from harness import LOOPBACK, _say, _spawn, _tail, _track, _untrack, poll_until

QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
          "AAAA": 28, "SRV": 33, "ANY": 255}
QTYPE_NAMES = {v: k for k, v in QTYPES.items()}


# --------------------------------------------------------------------------------------
# A DNS client, by hand (RFC 1035): enough for readiness checks and the self-test.

class DnsReply:
    def __init__(self, rcode: int, answers: "list[tuple[str, str, Any]]"):
        self.rcode = rcode        # 0 NOERROR, 3 NXDOMAIN, 5 REFUSED, ...
        self.answers = answers    # (name, type, value): A/AAAA -> "addr",
                                  # SRV -> (priority, weight, port, target)

    def values(self, qtype: str) -> list:
        return [v for _n, t, v in self.answers if t == qtype]

    def __repr__(self) -> str:
        return f"<DnsReply rcode={self.rcode} {self.answers}>"


def _encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode("idna") if not label.startswith("_") else label.encode()
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def _read_name(msg: bytes, off: int) -> "tuple[str, int]":
    """A possibly compressed name at `off`; returns (name, offset after it)."""
    labels, end, jumps = [], None, 0
    while True:
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumps += 1
            if jumps > 32:
                raise ValueError("DNS name compression loop")
            continue
        off += 1
        if n == 0:
            break
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n
    return ".".join(labels) or ".", (end if end is not None else off)


def dns_query(server: "tuple[str, int]", name: str, qtype: str = "A",
              timeout: float = 1.0) -> DnsReply:
    """Send one query over UDP to `server` and decode the answer section."""
    qid = secrets.randbits(16)
    packet = (struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + _encode_name(name)
              + struct.pack(">HH", QTYPES[qtype], 1))
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, server)
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.001, deadline - time.monotonic()))
            msg = s.recv(4096)
            if len(msg) >= 12 and struct.unpack(">H", msg[:2])[0] == qid:
                break
    _id, flags, qd, an, _ns, _ar = struct.unpack(">HHHHHH", msg[:12])
    off = 12
    for _ in range(qd):
        _n, off = _read_name(msg, off)
        off += 4
    answers = []
    for _ in range(an):
        rname, off = _read_name(msg, off)
        rtype, _rclass, _ttl, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        tname = QTYPE_NAMES.get(rtype, str(rtype))
        if rtype == 1:
            value: Any = socket.inet_ntop(socket.AF_INET, rdata)
        elif rtype == 28:
            value = socket.inet_ntop(socket.AF_INET6, rdata)
        elif rtype == 33:
            prio, weight, port = struct.unpack(">HHH", rdata[:6])
            value = (prio, weight, port, _read_name(msg, off + 6)[0])
        else:
            value = rdata
        answers.append((rname, tname, value))
        off += rdlen
    return DnsReply(flags & 0x0F, answers)


def free_udp_tcp_port(host: str = LOOPBACK) -> int:
    """A port free for both UDP and TCP a moment ago (a DNS server binds both)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_DGRAM) as u:
            u.bind((host, 0))
            port = u.getsockname()[1]
            try:
                with socket.socket(family, socket.SOCK_STREAM) as t:
                    t.bind((host, port))
                    return port
            except OSError:
                continue
    raise AssertionError("no port free for both UDP and TCP")


class _LineLog:
    """Lines of a child's stream read on a thread; wait_line() on a condition variable."""

    def __init__(self, name: str):
        self.name = name
        self.lines: "list[str]" = []
        self.cond = threading.Condition()
        self.ended = False

    def follow(self, stream: Any, echo: bool = True) -> threading.Thread:
        def run() -> None:
            try:
                for raw in iter(stream.readline, b""):
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    if echo:
                        _say(f"[{self.name}] ", line)
                    with self.cond:
                        self.lines.append(line)
                        self.cond.notify_all()
            finally:
                with contextlib.suppress(Exception):
                    stream.close()
                with self.cond:
                    self.ended = True
                    self.cond.notify_all()
        t = threading.Thread(target=run, name=f"{self.name}-reader", daemon=True)
        t.start()
        return t

    def text(self) -> str:
        with self.cond:
            return "\n".join(self.lines)

    def mark(self) -> int:
        with self.cond:
            return len(self.lines)

    def wait_line(self, pattern: Union[str, "re.Pattern[str]"], timeout: float = 10.0,
                  since: int = 0) -> "re.Match[str]":
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        scanned = since
        with self.cond:
            while True:
                while scanned < len(self.lines):
                    m = rx.search(self.lines[scanned])
                    scanned += 1
                    if m:
                        return m
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.ended:
                    why = "its output ended" if self.ended else f"timed out after {timeout:g}s"
                    raise AssertionError(f"{self.name}: {why} before a line matching "
                                         f"{rx.pattern!r}:\n" + "\n".join(self.lines[-20:]))
                self.cond.wait(remaining)


# --------------------------------------------------------------------------------------
# dnsmasq

SrvRecord = "tuple[str, Optional[str], int, int, int]"


class Dnsmasq:
    """dnsmasq on 127.0.0.1:PORT serving only what it is given, logging every query.

    srv:   [(service_name, target, port, priority, weight)], e.g.
           ("_xmpp-client._tcp.stanzad.test", "xmpp.stanzad.test", 5222, 10, 0);
           target None or "." makes the "service decidedly not available" record
           (RFC 2782: target ".", written --srv-host=NAME with nothing after it).
    hosts: [(name, [addresses])] -> --host-record=name,addr,... (A and AAAA; a name with
           only IPv4 addresses has no AAAA: NOERROR with no answer).
    local: domains answered from these records only (--local=/D/): any other name in
           them is NXDOMAIN or NODATA, as an authoritative server says it. There are no
           upstream servers at all (--no-resolv, --no-hosts): other names are REFUSED.

    queries() returns the (type, name) of every query received so far, in order, after a
    barrier (a probe query of ours whose log line must appear, so that every query that
    reached dnsmasq before it is in the log too); the probes themselves are left out.
    """

    QUERY = re.compile(r"dnsmasq\[\d+\]: query\[(\w+)\] (\S+) from (\S+)")

    def __init__(self, workdir: Union[str, Path], srv: Iterable[Any] = (),
                 hosts: Iterable[Any] = (), *, local: Iterable[str] = ("test",),
                 port: Optional[int] = None, name: str = "dnsmasq",
                 extra_args: Iterable[str] = ()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.srv = list(srv)
        self.hosts = [(h, list(addrs)) for h, addrs in hosts]
        self.local = list(local)
        self.extra_args = list(extra_args)
        self.log_path = self.workdir / f"{name}.log"
        self.console_path = self.workdir / f"{name}.console"
        self.pidfile = self.workdir / f"{name}.pid"
        self.proc: Optional[subprocess.Popen] = None
        self._console: Any = None
        self._probes: "set[str]" = set()
        self._port_fixed = port is not None
        self.port = port or free_udp_tcp_port()
        attempts = 1 if self._port_fixed else 3
        for attempt in range(attempts):
            if attempt:
                self.port = free_udp_tcp_port()
            if self._start_once():
                return
        raise AssertionError(f"{name}: could not bind a port\n{self.console_text()}")

    @property
    def address(self) -> str:
        """For `[daemon] resolver`."""
        return f"{LOOPBACK}:{self.port}"

    def argv(self) -> "list[str]":
        args = ["dnsmasq", "--keep-in-foreground", f"--port={self.port}",
                f"--listen-address={LOOPBACK}", "--bind-interfaces", "--conf-file=/dev/null",
                "--no-resolv", "--no-hosts", f"--user={getpass.getuser()}",
                f"--pid-file={self.pidfile}", "--log-queries",
                f"--log-facility={self.log_path}"]
        args += [f"--local=/{d}/" for d in self.local]
        for rec in self.srv:
            service, target, port, prio, weight = (list(rec) + [None, 0, 0, 0])[:5]
            if target in (None, "", "."):
                args.append(f"--srv-host={service}")
            else:
                args.append(f"--srv-host={service},{target},{port},{prio},{weight}")
        for host, addrs in self.hosts:
            args.append("--host-record=" + ",".join([host, *addrs]))
        return args + self.extra_args

    def _start_once(self) -> bool:
        self.log_path.write_text("")
        self._console = open(self.console_path, "ab")
        self.proc = _spawn(self.argv(), stdout=self._console, stderr=subprocess.STDOUT,
                           cwd=self.workdir)
        _track(self)

        def ready() -> Any:
            if self.proc.poll() is not None:
                return "exited"
            try:
                self._probe(timeout=0.2)
                return "up"
            except OSError:   # nothing listening yet (ICMP refused) or no answer yet
                return None

        state = poll_until(ready, 10, f"{self.name} to answer on {self.address}",
                           lambda: self.console_text())
        if state == "up":
            return True
        self._reap()
        if "Address already in use" in self.console_text():
            return False
        raise AssertionError(f"{self.name} exited with {self.proc.returncode} while starting:"
                             f"\n{self.argv()}\n{self.console_text()}")

    def _probe(self, timeout: float = 1.0) -> str:
        """A query for a name of our own (REFUSED: not in any local domain)."""
        probe = f"probe-{secrets.token_hex(4)}.stanzad-dns-probe.invalid"
        self._probes.add(probe)
        dns_query((LOOPBACK, self.port), probe, "A", timeout)
        return probe

    def console_text(self) -> str:
        try:
            return self.console_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def query(self, name: str, qtype: str = "A") -> DnsReply:
        """Ask it ourselves (shows up in queries(): use in fixture checks only)."""
        return dns_query((LOOPBACK, self.port), name, qtype)

    def all_queries(self) -> "list[tuple[str, str, str]]":
        """(type, name, from) of every query in the log so far, probes included, without
        a barrier."""
        return self.QUERY.findall(self.log_text())

    def queries(self, timeout: float = 5.0) -> "list[tuple[str, str]]":
        """(type, name) of every query dnsmasq received before now, in order, probes
        left out. dnsmasq handles queries one at a time and logs each before answering:
        once the barrier probe's own line is in the log file, so is every earlier one."""
        probe = self._probe()
        poll_until(lambda: any(n == probe for _t, n, _f in self.all_queries()), timeout,
                   f"{self.name} to log the barrier query {probe}",
                   lambda: _tail(self.log_text()))
        return [(t, n) for t, n, _f in self.all_queries() if n not in self._probes]

    def mark(self) -> int:
        """Number of (non-probe) queries so far: queries()[mark:] are the later ones."""
        return len(self.queries())

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _reap(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
        if self._console:
            self._console.close()
            self._console = None
        _untrack(self)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._reap()

    kill = _reap


# --------------------------------------------------------------------------------------
# microsocks

class Microsocks:
    """microsocks on 127.0.0.1:PORT, with RFC 1929 auth when user and password are given.

    It logs each CONNECT it carried out on stderr ("client[5] 127.0.0.1: connected to
    NAME:PORT", the name as it was asked for when the client sent a name, the address when
    it sent an address); lines() / wait_line() read them. It resolves names with the
    system resolver; `hosts` ({name: address}) puts those names in a private /etc/hosts
    seen only by microsocks (a mount namespace: unshare --mount and a bind mount, which
    needs root), so a test can use a name that only the proxy can resolve.
    """

    def __init__(self, port: Optional[int] = None, user: Optional[str] = None,
                 password: Optional[str] = None, *, hosts: Optional[dict] = None,
                 workdir: Optional[Union[str, Path]] = None, name: str = "microsocks"):
        if (user is None) != (password is None):
            raise ValueError("microsocks needs both user and password, or neither")
        self.user, self.password, self.name = user, password, name
        self.hosts = dict(hosts or {})
        self._own_dir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="microsocks-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: Optional[subprocess.Popen] = None
        self.log = _LineLog(name)
        self._threads: "list[threading.Thread]" = []
        fixed = port is not None
        self.port = port or harness.free_port()
        for attempt in range(1 if fixed else 3):
            if attempt:
                self.port = harness.free_port()
                self.log = _LineLog(name)
            if self._start_once():
                return
        raise AssertionError(f"{name}: could not listen on {LOOPBACK}:{self.port}\n"
                             f"{self.log.text()}")

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def url(self, scheme: str = "socks5h", with_credentials: bool = True) -> str:
        auth = (f"{self.user}:{self.password}@"
                if with_credentials and self.user is not None else "")
        return f"{scheme}://{auth}{self.address}"

    def argv(self) -> "list[str]":
        args = ["microsocks", "-i", LOOPBACK, "-p", str(self.port)]
        if self.user is not None:
            args += ["-u", self.user, "-P", self.password]
        if not self.hosts:
            return args
        if not shutil.which("unshare") or os.geteuid() != 0:
            raise unittest.SkipTest("a private /etc/hosts for microsocks needs root and "
                                    "unshare(1)")
        hosts_file = self.workdir / "hosts"
        hosts_file.write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost\n" + "".join(
            f"{addr} {host}\n" for host, addr in self.hosts.items()))
        # One process all along: unshare and sh exec, so the pid is microsocks's and
        # PDEATHSIG (set by _spawn's setpriv) survives the execs.
        script = 'mount --bind "$1" /etc/hosts && shift && exec "$@"'
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                str(hosts_file), *args]

    def _start_once(self) -> bool:
        self.proc = _spawn(self.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _track(self)
        self._threads = [self.log.follow(self.proc.stdout), self.log.follow(self.proc.stderr)]

        def ready() -> Any:
            if self.proc.poll() is not None:
                return "exited"
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=1) as s:
                    s.sendall(b"\x05\x01\x00")  # greeting: "no authentication" only
                    return "up" if s.recv(2)[:1] == b"\x05" else None
            except OSError:
                return None

        state = poll_until(ready, 10, f"{self.name} to answer a SOCKS5 greeting",
                           lambda: self.log.text())
        if state == "up":
            return True
        self.kill()
        if self.hosts and "mount" in self.log.text():
            raise unittest.SkipTest(f"cannot give microsocks a private /etc/hosts here:\n"
                                    f"{self.log.text()}")
        return False

    # -- its log
    def lines(self) -> "list[str]":
        with self.log.cond:
            return list(self.log.lines)

    def connects(self) -> "list[str]":
        """The targets it connected to, as it logged them ("name:port" / "addr:port")."""
        return [m.group(1) for m in map(re.compile(r"connected to (\S+)$").search,
                                        self.lines()) if m]

    def wait_line(self, pattern: str, timeout: float = 10.0, since: int = 0) -> "re.Match[str]":
        return self.log.wait_line(pattern, timeout, since)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for t in self._threads:
                if t is not threading.current_thread():
                    t.join(5)
        _untrack(self)
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    stop = kill


# --------------------------------------------------------------------------------------
# A SOCKS5 client by hand (RFC 1928/1929), for the self-test and for checks in tests.

class Socks5Error(OSError):
    def __init__(self, message: str, reply: Optional[int] = None):
        super().__init__(message)
        self.reply = reply


def socks5_connect(proxy: "tuple[str, int]", host: str, port: int, *,
                   user: Optional[str] = None, password: Optional[str] = None,
                   timeout: float = 5.0) -> socket.socket:
    """A socket connected through the proxy to host:port (a name is sent as ATYP 3)."""
    s = socket.create_connection(proxy, timeout=timeout)
    try:
        def recv_exact(n: int) -> bytes:
            buf = b""
            while len(buf) < n:
                chunk = s.recv(n - len(buf))
                if not chunk:
                    raise Socks5Error("the proxy closed the connection")
                buf += chunk
            return buf
        methods = b"\x00\x02" if user is not None else b"\x00"
        s.sendall(b"\x05" + bytes([len(methods)]) + methods)
        ver, method = recv_exact(2)
        if ver != 5 or method == 0xFF:
            raise Socks5Error(f"no acceptable method (ver {ver}, method {method})")
        if method == 2:
            u, p = (user or "").encode(), (password or "").encode()
            s.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(p)]) + p)
            if recv_exact(2)[1] != 0:
                raise Socks5Error("username/password refused")
        try:
            addr = ipaddress.ip_address(host)
            atyp = b"\x01" if addr.version == 4 else b"\x04"
            dst = atyp + addr.packed
        except ValueError:
            raw = host.encode()
            dst = b"\x03" + bytes([len(raw)]) + raw
        s.sendall(b"\x05\x01\x00" + dst + struct.pack(">H", port))
        ver, rep, _rsv, atyp = recv_exact(4)
        if rep != 0:
            raise Socks5Error(f"CONNECT refused with reply {rep}", rep)
        recv_exact({1: 4, 4: 16}.get(atyp, 0) or recv_exact(1)[0])
        recv_exact(2)
        return s
    except BaseException:
        s.close()
        raise


# --------------------------------------------------------------------------------------
# FakeSocks5: a recording SOCKS5 server with switchable behaviour

SOCKS_REPLIES = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
    0xF0: "onion service descriptor can not be found",
}


class SocksRequest:
    """What one client connection told the proxy."""

    def __init__(self, number: int):
        self.number = number
        self.methods: "list[int]" = []      # offered in the greeting
        self.method: Optional[int] = None   # chosen
        self.username: Optional[str] = None
        self.password: Optional[str] = None
        self.atyp: Optional[int] = None     # 1 IPv4, 3 domain name, 4 IPv6
        self.host: Optional[str] = None
        self.port: Optional[int] = None
        self.reply: Optional[int] = None    # what we answered (None: closed before)
        self.upstream: Optional[str] = None  # where we forwarded to
        self.dropped = False                # closed at once (mode "drop")
        self.closed = False                 # the connection is over

    @property
    def settled(self) -> bool:
        """Answered, dropped or over: nothing more will change before the tunnel."""
        return self.reply is not None or self.dropped or self.closed

    def __repr__(self) -> str:
        return (f"<socks #{self.number} methods={self.methods} user={self.username!r} "
                f"atyp={self.atyp} {self.host}:{self.port} reply={self.reply} "
                f"upstream={self.upstream}>")


class FakeSocks5:
    """A SOCKS5 server on 127.0.0.1:port, on its own asyncio loop in a daemon thread.

    mode "forward": CONNECT to the target and relay both ways. A name is looked up in
    `routes` ({(name, port): (addr, port)} or {name: addr}) and nowhere else (a name it
    does not know gets reply 4, host unreachable); an address literal is used as is.
    mode "refuse": answer every CONNECT with reply `code`. mode "drop": close each new
    connection as soon as it is accepted, before reading anything.

    Authentication: auth="prefer" picks username/password (method 2) whenever offered and
    accepts any credentials, like Tor with IsolateSOCKSAuth (so the client's isolation
    credentials are recorded); "none" always picks "no authentication"; "require" needs
    method 2 with exactly `credentials` (user, password).

    requests: every connection's SocksRequest, in order; wait_requests(n) blocks until n
    connections have sent their CONNECT (or were dropped).
    """

    def __init__(self, mode: str = "forward", code: int = 5, *, routes: Optional[dict] = None,
                 auth: str = "prefer", credentials: Optional["tuple[str, str]"] = None,
                 port: int = 0, name: str = "fakesocks"):
        self.name = name
        self.routes = dict(routes or {})
        self.auth = auth
        self.credentials = credentials
        self.requests: "list[SocksRequest]" = []
        self._cond = threading.Condition()
        self._writers: "set[asyncio.StreamWriter]" = set()
        self.set_mode(mode, code)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._handle, LOOPBACK, port))
        self.port = self._server.sockets[0].getsockname()[1]
        self._closed = False
        _say(f"[{self.name}] ", f"listening on {self.address} ({self.mode}"
             f"{f' {code}' if self.mode == 'refuse' else ''})")
        _track(self)

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def url(self, scheme: str = "socks5h") -> str:
        return f"{scheme}://{self.address}"

    def set_mode(self, mode: str, code: int = 5) -> None:
        """Behaviour for the connections accepted from now on."""
        if mode not in ("forward", "refuse", "drop"):
            raise ValueError(mode)
        with self._cond:
            self.mode, self.code = mode, code

    # -- loop plumbing
    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _call(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def _record(self, _req: SocksRequest) -> None:
        with self._cond:
            self._cond.notify_all()

    def wait_requests(self, n: int, timeout: float = 15.0,
                      predicate: Optional[Callable[[SocksRequest], bool]] = None
                      ) -> "list[SocksRequest]":
        """Block until n finished requests (that match) exist; returns them all."""
        deadline = time.monotonic() + timeout

        def done() -> "list[SocksRequest]":
            return [r for r in self.requests
                    if r.settled and (predicate is None or predicate(r))]
        with self._cond:
            while len(done()) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{self.name}: {len(done())} of {n} requests after "
                                         f"{timeout:g}s: {self.requests}")
                self._cond.wait(remaining)
            return done()

    # -- one client connection
    async def _handle(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        with self._cond:
            req = SocksRequest(len(self.requests) + 1)
            self.requests.append(req)
            mode, code = self.mode, self.code
        self._writers.add(writer)
        upstream_w: Optional[asyncio.StreamWriter] = None
        try:
            if mode == "drop":
                req.dropped = True
                return
            ver, n = await reader.readexactly(2)
            req.methods = list(await reader.readexactly(n))
            if ver != 5:
                return
            if 2 in req.methods and self.auth in ("prefer", "require"):
                req.method = 2
            elif 0 in req.methods and self.auth in ("prefer", "none"):
                req.method = 0
            else:
                req.method = 0xFF
            writer.write(bytes([5, req.method]))
            await writer.drain()
            if req.method == 0xFF:
                return
            if req.method == 2:
                _v, ulen = await reader.readexactly(2)
                req.username = (await reader.readexactly(ulen)).decode("utf-8", "replace")
                plen = (await reader.readexactly(1))[0]
                req.password = (await reader.readexactly(plen)).decode("utf-8", "replace")
                ok = (self.auth != "require"
                      or (req.username, req.password) == tuple(self.credentials or ()))
                writer.write(b"\x01" + (b"\x00" if ok else b"\x01"))
                await writer.drain()
                if not ok:
                    return
            _ver, cmd, _rsv, atyp = await reader.readexactly(4)
            req.atyp = atyp
            if atyp == 1:
                req.host = socket.inet_ntop(socket.AF_INET, await reader.readexactly(4))
            elif atyp == 4:
                req.host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
            elif atyp == 3:
                ln = (await reader.readexactly(1))[0]
                req.host = (await reader.readexactly(ln)).decode("utf-8", "replace")
            else:
                await self._reply(writer, req, 8)
                return
            req.port = struct.unpack(">H", await reader.readexactly(2))[0]
            _say(f"[{self.name}] ", f"#{req.number} CONNECT {req.host}:{req.port} "
                 f"(atyp {atyp}, user {req.username!r}), {mode}"
                 f"{f' {code}' if mode == 'refuse' else ''}")
            if cmd != 1:
                await self._reply(writer, req, 7)
                return
            if mode == "refuse":
                await self._reply(writer, req, code)
                return
            target = self._route(req)
            if target is None:
                await self._reply(writer, req, 4)
                return
            try:
                up_r, upstream_w = await asyncio.open_connection(*target)
            except OSError:
                await self._reply(writer, req, 5)
                return
            req.upstream = f"{target[0]}:{target[1]}"
            self._writers.add(upstream_w)
            await self._reply(writer, req, 0)
            await asyncio.gather(self._pump(reader, upstream_w), self._pump(up_r, writer))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            req.closed = True
            self._record(req)
            for w in (writer, upstream_w):
                if w is not None:
                    self._writers.discard(w)
                    with contextlib.suppress(Exception):
                        w.close()

    def _route(self, req: SocksRequest) -> Optional["tuple[str, int]"]:
        if (req.host, req.port) in self.routes:
            return tuple(self.routes[(req.host, req.port)])
        if req.host in self.routes:
            return (self.routes[req.host], req.port)
        if req.atyp in (1, 4):
            return (req.host, req.port)
        return None

    async def _reply(self, writer: asyncio.StreamWriter, req: SocksRequest, code: int) -> None:
        req.reply = code
        writer.write(bytes([5, code, 0, 1]) + socket.inet_aton(LOOPBACK) + struct.pack(">H", 0))
        await writer.drain()
        self._record(req)

    @staticmethod
    async def _pump(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await r.read(65536)
                if not data:
                    break
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                if w.can_write_eof():
                    w.write_eof()

    # -- teardown
    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True

        async def shutdown() -> None:
            self._server.close()
            for w in list(self._writers):
                w.close()
            await self._server.wait_closed()
        with contextlib.suppress(Exception):
            self._call(shutdown(), 5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        _untrack(self)

    kill = close
    stop = close


def RefusingProxy(code: int = 5, **kwargs: Any) -> FakeSocks5:
    """A SOCKS5 proxy that answers every CONNECT with reply `code`."""
    return FakeSocks5("refuse", code, name=f"refusing-proxy-{code}", **kwargs)


def DroppingProxy(**kwargs: Any) -> FakeSocks5:
    """A SOCKS5 proxy that closes every connection as soon as it has accepted it."""
    return FakeSocks5("drop", name="dropping-proxy", **kwargs)


# --------------------------------------------------------------------------------------
# BlackHole

class BlackHole:
    """host:port where a TCP connect() hangs (no SYN-ACK, no RST, no ICMP).

    A listening socket with backlog 0 and one connection of ours that is never accepted:
    its accept queue is full, so Linux drops every further SYN and the connecting side
    retransmits until its own timeout. port=0 picks a free port."""

    def __init__(self, host: str = "::1", port: int = 0):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host = host
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_INET6:
            self.listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self.listener.bind((host, port))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.filler = socket.socket(family, socket.SOCK_STREAM)
        self.filler.settimeout(5)
        self.filler.connect((host, self.port))   # completes: it fills the queue
        _track(self)

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def hangs(self, timeout: float = 0.3) -> bool:
        """Whether a connect() is still pending after `timeout` (a fixed wait: use in
        the self-test, not in tests)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            try:
                s.connect((self.host, self.port))
            except socket.timeout:
                return True
            except OSError:
                return False
            return False

    def close(self) -> None:
        for s in (self.filler, self.listener):
            with contextlib.suppress(OSError):
                s.close()
        _untrack(self)

    kill = close
    stop = close


# --------------------------------------------------------------------------------------
# TlsSniffer: what a direct-TLS client says in its ClientHello

class TlsSniffer:
    """A direct-TLS listener on 127.0.0.1:port that presents `cert` (a valid certificate
    for the test domain), completes the handshake, records the client's SNI and the ALPN
    protocol agreed (it offers only "xmpp-client"), and closes the connection. hellos:
    [(sni, alpn)], one per completed handshake; wait_hello() blocks for the next."""

    def __init__(self, cert: Path, key: Path, name: str = "tls-sniffer"):
        import ssl
        self.name = name
        self.hellos: "list[tuple[Optional[str], Optional[str]]]" = []
        self._cond = threading.Condition()
        self._sni: "dict[int, Optional[str]]" = {}
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        ctx.set_alpn_protocols(["xmpp-client"])

        def on_sni(sslobj: Any, server_name: Optional[str], _ctx: Any) -> None:
            self._sni[id(sslobj)] = server_name
        ctx.sni_callback = on_sni
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, LOOPBACK, 0, ssl=ctx), self.loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        self._closed = False
        _track(self)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def _handle(self, _reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        sslobj = writer.get_extra_info("ssl_object")
        hello = (self._sni.pop(id(sslobj), None), sslobj.selected_alpn_protocol())
        _say(f"[{self.name}] ", f"handshake: SNI {hello[0]!r}, ALPN {hello[1]!r}")
        with self._cond:
            self.hellos.append(hello)
            self._cond.notify_all()
        writer.close()

    def wait_hello(self, timeout: float = 10.0) -> "tuple[Optional[str], Optional[str]]":
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self.hellos:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{self.name}: no TLS handshake within {timeout:g}s")
                self._cond.wait(remaining)
            return self.hellos[0]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        async def shutdown() -> None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        _untrack(self)

    kill = close
    stop = close


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


if __name__ == "__main__":
    harness.main()
