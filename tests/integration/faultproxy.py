"""A fault-injecting TCP proxy for the integration tests: stanzad connects to it instead of
Prosody, and the test breaks the link on purpose.

    proxy = FaultProxy(prosody.port)          # listens on 127.0.0.1:proxy.port
    acct["port"] = proxy.port                 # TLS still checks the JID's domain
    proxy.reset_all()                         # RST every live connection, both ways
    proxy.blackhole(True)                     # silence: bytes vanish, nothing closes
    proxy.blackhole(False)                    # new connections work again
    proxy.delay(0.2)                          # 200 ms more latency, both ways
    proxy.refuse(True)                        # new connections are closed at once (RST)
    proxy.stats()                             # counters
    proxy.close()

It runs on its own asyncio loop in a daemon thread, so it never blocks the test thread;
every control is a blocking call that returns once the loop has applied it (so "reset_all()
returned" means "the RSTs have been sent").

What each fault looks like from the two ends:

- reset_all(): each live connection is aborted with SO_LINGER {on, 0}: the kernel sends a
  TCP RST to stanzad and to Prosody (like a NAT box or a firewall that lost its state).
  Prosody sees the session's connection drop and, with mod_smacks, hibernates the session.
- blackhole(True): every live connection and every new one becomes *dead*: the proxy keeps
  the sockets open, reads everything and forwards nothing. Neither end sees a close or an
  error; only silence (a cable pulled somewhere on the way, packets dropped, no ICMP). New
  connections are accepted (the TCP handshake completes) but never reach Prosody, so a TLS
  handshake or stream negotiation started during the black hole hangs. A dead connection
  stays dead after blackhole(False) (its bytes are gone; no TCP can recover that); only the
  connections accepted after it are forwarded again. When one end closes a dead connection
  the other end is not told (the FIN is lost too); Prosody finds out when the session is
  resumed elsewhere or when the proxy is closed.
- delay(s): every chunk is forwarded s seconds after it was read, in order, both ways.
- refuse(True): new connections are accepted and reset at once (the nearest a user-space
  proxy gets to "connection refused"); live ones are not touched.

A connection that is forwarded normally is transparent, half-closes included: EOF from one
side becomes a shutdown(SHUT_WR) toward the other, and a reset from one side becomes a reset
toward the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from typing import Any, Callable, Optional

LOOPBACK = "127.0.0.1"


def _say(text: str) -> None:
    try:
        from harness import _say as say  # same lock and format as the rest of the harness
        say("[faultproxy] ", text)
    except Exception:  # used without the harness
        import sys
        sys.stderr.write(f"[faultproxy] {text}\n")


def _rst(writer: Optional[asyncio.StreamWriter]) -> None:
    """Close a connection with a TCP RST (SO_LINGER on, timeout 0), not a FIN."""
    if writer is None:
        return
    transport = writer.transport
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class _Conn:
    """One proxied connection: the client side (stanzad) and the server side (Prosody)."""

    def __init__(self, number: int, client_r: asyncio.StreamReader,
                 client_w: asyncio.StreamWriter):
        self.number = number
        self.client_r = client_r
        self.client_w = client_w
        self.server_r: Optional[asyncio.StreamReader] = None
        self.server_w: Optional[asyncio.StreamWriter] = None
        self.dead = False            # black-holed: read and drop, forward nothing, for good
        self.closed = False
        self.tasks: "list[asyncio.Task]" = []
        peer = client_w.get_extra_info("peername")
        self.client_addr = f"{peer[0]}:{peer[1]}" if peer else "?"

    def __repr__(self) -> str:
        state = "dead" if self.dead else ("closed" if self.closed else "live")
        return f"<conn #{self.number} from {self.client_addr} {state}>"


class FaultProxy:
    """TCP proxy 127.0.0.1:port -> upstream_host:upstream_port with fault controls.

    Counters (stats()): accepted, refused (reset at accept by refuse()), blackholed (new
    connections that were never connected upstream), upstream_failures (Prosody did not
    accept), resets (connections reset by reset_all), reset_calls, live, bytes_up (client
    -> server, forwarded), bytes_down (server -> client, forwarded), dropped_up,
    dropped_down (bytes read from a dead connection and thrown away).
    """

    def __init__(self, upstream_port: int, upstream_host: str = LOOPBACK, *,
                 listen_host: str = LOOPBACK, port: int = 0, name: str = "faultproxy",
                 verbose: bool = True):
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.name = name
        self.verbose = verbose
        self._blackhole = False
        self._refuse = False
        self._delay = 0.0
        self._conns: "dict[int, _Conn]" = {}
        self._next = 1
        self._counters = {k: 0 for k in (
            "accepted", "refused", "blackholed", "upstream_failures", "resets",
            "reset_calls", "bytes_up", "bytes_down", "dropped_up", "dropped_down")}
        self._cond = threading.Condition()   # notified whenever a counter changes
        self._closed = False
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._handle, listen_host, port))
        self.host = listen_host
        self.port = self._server.sockets[0].getsockname()[1]
        self._log(f"listening on {listen_host}:{self.port} -> "
                  f"{upstream_host}:{upstream_port}")
        try:
            import harness
            harness._track(self)  # killed at exit like every other child of a test
        except Exception:
            pass

    # -- loop plumbing
    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _call(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def _in_loop(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        async def run() -> Any:
            return fn()
        return self._call(run(), timeout)

    def _log(self, text: str) -> None:
        if self.verbose:
            _say(f"{self.name}: {text}")

    def _count(self, key: str, n: int = 1) -> None:
        with self._cond:
            self._counters[key] += n
            self._cond.notify_all()

    # -- controls (called from the test thread)
    def reset_all(self) -> int:
        """Abort every live connection with an RST to both ends; returns how many."""
        def run() -> int:
            conns = [c for c in self._conns.values() if not c.closed]
            for c in conns:
                self._abort(c)
            with self._cond:
                self._counters["resets"] += len(conns)
                self._counters["reset_calls"] += 1
                self._cond.notify_all()
            return len(conns)
        n = self._in_loop(run)
        self._log(f"reset {n} connection(s)")
        return n

    def blackhole(self, on: bool = True) -> int:
        """on: every live connection and every new one goes silent (see the module doc).
        off: new connections are forwarded again; dead ones stay dead. Returns the number
        of live connections that were made dead (0 when turning off)."""
        def run() -> int:
            self._blackhole = on
            n = 0
            if on:
                for c in self._conns.values():
                    if not c.closed and not c.dead:
                        c.dead = True
                        n += 1
            return n
        n = self._in_loop(run)
        self._log(f"black hole {'on' if on else 'off'}"
                  + (f" ({n} live connection(s) now dead)" if on else ""))
        return n

    def delay(self, seconds: float) -> None:
        """Add `seconds` of latency to every chunk, both ways (0 turns it off)."""
        def run() -> None:
            self._delay = max(0.0, float(seconds))
        self._in_loop(run)
        self._log(f"delay {seconds:g}s")

    def refuse(self, on: bool = True) -> None:
        """on: new connections are reset as soon as they are accepted."""
        def run() -> None:
            self._refuse = on
        self._in_loop(run)
        self._log(f"refuse {'on' if on else 'off'}")

    def stats(self) -> dict:
        with self._cond:
            out = dict(self._counters)
        out["live"] = 0 if self._closed else self._in_loop(
            lambda: sum(1 for c in self._conns.values() if not c.closed))
        return out

    def counter(self, key: str) -> int:
        with self._cond:
            return self._counters[key]

    def wait_counter(self, key: str, at_least: int, timeout: float = 10.0) -> int:
        """Block until counter `key` reaches `at_least` (e.g. wait_counter("accepted", 3)
        after a reset: the client has reconnected)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._counters[key] < at_least:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{self.name}: timed out after {timeout:g}s "
                                         f"waiting for {key} >= {at_least} "
                                         f"({self._counters})")
                self._cond.wait(remaining)
            return self._counters[key]

    def close(self) -> None:
        """Stop listening, reset every connection, stop the loop. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.loop.is_running():
            async def shutdown() -> None:
                self._server.close()
                for c in list(self._conns.values()):
                    self._abort(c)
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._server.wait_closed(), 2)
            with contextlib.suppress(Exception):
                self._call(shutdown(), 5)
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5)
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()
        with contextlib.suppress(Exception):
            import harness
            harness._untrack(self)

    kill = close  # the harness's atexit sweep calls kill()

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the proxy itself (loop thread)
    def _abort(self, c: _Conn) -> None:
        if c.closed:
            return
        c.closed = True
        _rst(c.client_w)
        _rst(c.server_w)
        for t in c.tasks:
            if t is not asyncio.current_task():
                t.cancel()
        self._conns.pop(c.number, None)

    def _finish(self, c: _Conn) -> None:
        """Both directions are done: close both sockets normally."""
        if c.closed:
            return
        c.closed = True
        for w in (c.client_w, c.server_w):
            if w is not None:
                w.close()
        self._conns.pop(c.number, None)

    async def _handle(self, client_r: asyncio.StreamReader,
                      client_w: asyncio.StreamWriter) -> None:
        c = _Conn(self._next, client_r, client_w)
        self._next += 1
        self._count("accepted")
        if self._refuse:
            self._count("refused")
            self._log(f"refused #{c.number}")
            _rst(client_w)
            return
        self._conns[c.number] = c
        if self._blackhole:
            c.dead = True
            self._count("blackholed")
            self._log(f"#{c.number} accepted into the black hole")
            # Never connect upstream: just swallow what the client says until it gives up.
            await self._pump(c, client_r, None, "up")
            self._finish(c)
            return
        try:
            c.server_r, c.server_w = await asyncio.open_connection(self.upstream_host,
                                                                  self.upstream_port)
        except OSError as e:
            self._count("upstream_failures")
            self._log(f"#{c.number}: upstream {self.upstream_host}:{self.upstream_port} "
                      f"failed ({e}); resetting the client")
            c.closed = True
            self._conns.pop(c.number, None)
            _rst(client_w)
            return
        if c.closed:  # reset_all() while we were connecting
            _rst(c.server_w)
            return
        if self._blackhole:  # switched on while we were connecting
            c.dead = True
        self._log(f"#{c.number} from {c.client_addr} connected upstream")
        up = asyncio.ensure_future(self._pump(c, client_r, c.server_w, "up"))
        down = asyncio.ensure_future(self._pump(c, c.server_r, client_w, "down"))
        c.tasks = [up, down]
        await asyncio.gather(up, down, return_exceptions=True)
        self._finish(c)

    async def _pump(self, c: _Conn, reader: asyncio.StreamReader,
                    writer: Optional[asyncio.StreamWriter], direction: str) -> None:
        """Copy reader -> writer in order, each chunk `delay` seconds after it was read;
        drop everything while the connection is dead."""
        queue: "asyncio.Queue[tuple[float, Optional[bytes]]]" = asyncio.Queue()
        sender = asyncio.ensure_future(self._send(c, queue, writer, direction))
        try:
            while True:
                try:
                    data = await reader.read(65536)
                except (ConnectionError, OSError):
                    # A reset from this side: reset the other side too (unless dead).
                    if not c.dead:
                        self._abort(c)
                    return
                if not data:
                    break
                if c.dead:
                    self._count(f"dropped_{direction}", len(data))
                    continue
                queue.put_nowait((time.monotonic() + self._delay, data))
            # EOF from this side.
            if c.dead:
                # Nobody on the other side hears of it; close our end toward the closer.
                src = c.client_w if direction == "up" else c.server_w
                if src is not None:
                    src.close()
                return
            queue.put_nowait((time.monotonic() + self._delay, None))
            await sender
        finally:
            if not sender.done():
                if c.dead or c.closed:
                    sender.cancel()
                else:
                    with contextlib.suppress(Exception):
                        await sender

    async def _send(self, c: _Conn, queue: "asyncio.Queue[tuple[float, Optional[bytes]]]",
                    writer: Optional[asyncio.StreamWriter], direction: str) -> None:
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if writer is None or c.closed:
                continue
            if c.dead:
                if data is not None:
                    self._count(f"dropped_{direction}", len(data))
                continue
            if data is None:  # EOF: half-close toward the other side
                with contextlib.suppress(OSError, RuntimeError):
                    if writer.can_write_eof():
                        writer.write_eof()
                return
            try:
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                if not c.dead:
                    self._abort(c)
                return
            self._count(f"bytes_{direction}", len(data))
