# SOCKS5 with a real proxy: Microsocks (microsocks, with or without RFC 1929 auth, with
# a private /etc/hosts), _LineLog (a child's output read on a thread), and a SOCKS5
# client by hand (socks5_connect, Socks5Error).

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Any, Optional, Union

import harness
from harness import LOOPBACK, _say, _spawn, _track, _untrack, poll_until


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
