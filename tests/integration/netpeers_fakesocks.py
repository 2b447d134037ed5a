# FakeSocks5: a SOCKS5 server written here that records every greeting, credentials and
# CONNECT (SocksRequest) and forwards, refuses with a reply code or drops; SOCKS_REPLIES,
# RefusingProxy and DroppingProxy.

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from typing import Any, Callable, Optional

from harness import LOOPBACK, _say, _track, _untrack


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
