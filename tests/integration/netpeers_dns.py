# DNS on loopback: a DNS client by hand (dns_query, DnsReply, QTYPES), free_udp_tcp_port,
# and Dnsmasq, a real DNS server that serves the test's SRV/A/AAAA records and logs every
# query it receives (queries() behind a barrier probe).

from __future__ import annotations

import getpass
import re
import secrets
import socket
import struct
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable, Optional, Union

from harness import LOOPBACK, _spawn, _tail, _track, _untrack, poll_until


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
