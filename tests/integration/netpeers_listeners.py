# Listeners that misbehave or watch: BlackHole (a TCP port where connect() hangs) and
# TlsSniffer (a direct-TLS listener that records the client's SNI and ALPN).

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from pathlib import Path
from typing import Any, Optional

from harness import LOOPBACK, _say, _track, _untrack


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
