"""A TLS-terminating, rewriting XMPP proxy for the integration tests: a man in the middle
holding a certificate the client trusts (signed by the test CA), which relays the whole
stream and removes SCRAM-*-PLUS from the server's SASL offer.

    mitm = TlsMitm(prosody.port, certs.server_cert, certs.server_key, certs.ca_cert)
    acct["port"] = mitm.port                  # stanzad still checks "localhost"
    mitm.wait_event(r"#1 server sasl: failure")
    mitm.close()

What it does with a connection (STARTTLS, the default):
1. Plaintext relay both ways until the client's <starttls/> and the server's <proceed/>
   (nothing is changed in cleartext: Prosody offers no SASL before TLS anyway).
2. TLS on both legs: toward the client as a server with `cert`/`key` (a certificate for
   "localhost" from the test CA: the client's verification succeeds), toward the server
   as a client that verifies it with `ca_file` and sends SNI `server_name`.
   `client_tls_max="1.2"` limits the client leg to TLS 1.2 (the server leg takes whatever
   the server allows).
3. Relay both ways. Every <stream:features/> from the server loses each
   <mechanism>SCRAM-...-PLUS</mechanism> and any XEP-0440 <sasl-channel-binding/> element
   (with strip_plus=False it is relayed untouched: then the two TLS sessions still differ,
   which is what channel binding detects). Nothing else is changed; in particular the SASL
   exchange itself is relayed byte for byte (rewriting SCRAM messages would break the
   proof, RFC 5802 §6).

direct_tls=True: TLS from the first byte on both legs (XEP-0368), then step 3.

What it saw is kept as events (strings, also echoed to stderr), in order:
    "#N accepted", "#N client TLS TLSv1.3", "#N server TLS TLSv1.2",
    "#N features: mechanisms=A,B,C channel-bindings=-" (as the server sent them),
    "#N stripped: SCRAM-SHA-1-PLUS"            (only when something was removed),
    "#N client sasl: auth SCRAM-SHA-1 gs2=y"   (gs2 = the GS2 header's flag: n, y or
                                                p=TYPE; EXTERNAL shows its initial data)
    "#N server sasl: failure malformed-request" (plus ": TEXT" when the server sent text),
    "#N server sasl: success", "#N closed"
wait_event(regex) blocks until one matches (the test thread sleeps on a condition
variable the proxy notifies). It runs on its own asyncio loop in a daemon thread, like
faultproxy.FaultProxy, and is registered with the harness for the atexit sweep.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import ssl
import threading
import time
from pathlib import Path
from typing import Any, Optional, Union

LOOPBACK = "127.0.0.1"

STARTTLS_RX = re.compile(rb"<starttls\b[^>]*urn:ietf:params:xml:ns:xmpp-tls")
PROCEED_RX = re.compile(rb"<proceed\b")
TLS_FAILURE_RX = re.compile(rb"<failure\b[^>]*urn:ietf:params:xml:ns:xmpp-tls")
FEATURES_START = b"<stream:features"
FEATURES_END = b"</stream:features>"
PLUS_MECH_RX = re.compile(rb"<mechanism>\s*(SCRAM-[A-Za-z0-9-]+-PLUS)\s*</mechanism>")
MECH_RX = re.compile(rb"<mechanism>\s*([^<\s]+)\s*</mechanism>")
# XEP-0440: <sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type=.../>
CB_LIST_RX = re.compile(rb"<sasl-channel-binding\b[^>]*?(?:/>|>.*?</sasl-channel-binding>)",
                        re.S)
CB_TYPE_RX = re.compile(rb"<channel-binding\b[^>]*\btype=['\"]([^'\"]+)['\"]")
AUTH_RX = re.compile(rb"<auth\b([^>]*?)(?:/>|>([^<]*)</auth>)", re.S)
MECH_ATTR_RX = re.compile(rb"\bmechanism=['\"]([^'\"]+)['\"]")
SASL_RESULT_RX = re.compile(
    rb"<(success|failure)\b[^>]*urn:ietf:params:xml:ns:xmpp-sasl[^>]*?(?:/>|>(.*?)</\1>)", re.S)
CONDITION_RX = re.compile(rb"<([a-z-]+)\b[^>]*?/>|<([a-z-]+)\b[^>]*></\2>")
TEXT_RX = re.compile(rb"<text\b[^>]*>(.*?)</text>", re.S)


def _say(text: str) -> None:
    try:
        from harness import _say as say  # same lock and format as the rest of the harness
        say("[mitm] ", text)
    except Exception:  # used without the harness
        import sys
        sys.stderr.write(f"[mitm] {text}\n")


def _partial_suffix(buf: bytes, marker: bytes) -> int:
    """Length of the longest tail of `buf` that is a proper prefix of `marker` (bytes
    that must be held back because the marker may continue in the next chunk)."""
    for n in range(min(len(marker) - 1, len(buf)), 0, -1):
        if marker.startswith(buf[-n:]):
            return n
    return 0


def gs2_flag(initial: bytes) -> str:
    """The GS2 flag of a SCRAM client-first-message ("n", "y" or "p=TYPE")."""
    return initial.split(b",", 1)[0].decode("ascii", "replace")


class _Conn:
    def __init__(self, number: int):
        self.number = number
        self.client_w: Optional[asyncio.StreamWriter] = None
        self.server_w: Optional[asyncio.StreamWriter] = None
        self.up_scan = b""      # client -> server bytes not yet matched (SASL <auth/>)
        self.down_scan = b""    # server -> client bytes not yet matched (SASL results)
        self.down_hold = b""    # server -> client bytes held back inside <stream:features>


class TlsMitm:
    def __init__(self, upstream_port: int, cert: Union[str, Path], key: Union[str, Path],
                 ca_file: Union[str, Path], *, upstream_host: str = LOOPBACK,
                 server_name: str = "localhost", direct_tls: bool = False,
                 strip_plus: bool = True, client_tls_max: Optional[str] = None,
                 listen_host: str = LOOPBACK, name: str = "mitm", verbose: bool = True):
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.server_name = server_name
        self.direct_tls = direct_tls
        self.strip_plus = strip_plus
        self.name = name
        self.verbose = verbose
        self.events: "list[str]" = []
        self._cond = threading.Condition()
        self._conns: "dict[int, _Conn]" = {}
        self._next = 1
        self._closed = False

        self.client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # toward the client
        self.client_ctx.load_cert_chain(str(cert), str(key))
        if client_tls_max is not None:
            self.client_ctx.maximum_version = {"1.2": ssl.TLSVersion.TLSv1_2,
                                               "1.3": ssl.TLSVersion.TLSv1_3}[client_tls_max]
        self.server_ctx = ssl.create_default_context(cafile=str(ca_file))  # toward Prosody

        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._server = self._call(asyncio.start_server(
            self._handle, listen_host, 0, ssl=self.client_ctx if direct_tls else None))
        self.host = listen_host
        self.port = self._server.sockets[0].getsockname()[1]
        self._log(f"listening on {listen_host}:{self.port} -> {upstream_host}:{upstream_port}"
                  f" ({'direct TLS' if direct_tls else 'STARTTLS'}, "
                  f"{'stripping' if strip_plus else 'keeping'} SCRAM-*-PLUS)")
        with contextlib.suppress(Exception):
            import harness
            harness._track(self)

    # -- loop plumbing
    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _call(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def _log(self, text: str) -> None:
        if self.verbose:
            _say(f"{self.name}: {text}")

    def _event(self, c: _Conn, text: str) -> None:
        line = f"#{c.number} {text}"
        with self._cond:
            self.events.append(line)
            self._cond.notify_all()
        self._log(line)

    # -- for the test thread
    def matching(self, pattern: str) -> "list[str]":
        rx = re.compile(pattern)
        with self._cond:
            return [e for e in self.events if rx.search(e)]

    def wait_event(self, pattern: str, timeout: float = 10.0) -> "re.Match[str]":
        """Block until an event matching `pattern` has been recorded; returns its match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        scanned = 0
        with self._cond:
            while True:
                while scanned < len(self.events):
                    m = rx.search(self.events[scanned])
                    scanned += 1
                    if m:
                        return m
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{self.name}: timed out after {timeout:g}s waiting "
                                         f"for {pattern!r}; events:\n" + "\n".join(self.events))
                self._cond.wait(remaining)

    def close(self) -> None:
        """Stop listening, close every connection, stop the loop. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.loop.is_running():
            async def shutdown() -> None:
                self._server.close()
                for c in list(self._conns.values()):
                    for w in (c.client_w, c.server_w):
                        if w is not None:
                            w.transport.abort()
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
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

    def __enter__(self) -> "TlsMitm":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the proxy (loop thread)
    async def _handle(self, client_r: asyncio.StreamReader,
                      client_w: asyncio.StreamWriter) -> None:
        c = _Conn(self._next)
        self._next += 1
        self._conns[c.number] = c
        c.client_w = client_w
        self._event(c, "accepted")
        try:
            if self.direct_tls:
                self._event(c, f"client TLS {self._version(client_w)}")
                server_r, server_w = await asyncio.open_connection(
                    self.upstream_host, self.upstream_port, ssl=self.server_ctx,
                    server_hostname=self.server_name)
                c.server_w = server_w
                self._event(c, f"server TLS {self._version(server_w)}")
            else:
                server_r, server_w = await asyncio.open_connection(
                    self.upstream_host, self.upstream_port)
                c.server_w = server_w
                if not await self._starttls(c, client_r, client_w, server_r, server_w):
                    return
            await asyncio.gather(self._pump_up(c, client_r, server_w),
                                 self._pump_down(c, server_r, client_w))
        except (ConnectionError, ssl.SSLError, OSError, asyncio.IncompleteReadError) as e:
            self._event(c, f"error: {e!r}")
        finally:
            for w in (c.client_w, c.server_w):
                if w is not None:
                    with contextlib.suppress(Exception):
                        w.close()
            self._conns.pop(c.number, None)
            self._event(c, "closed")

    @staticmethod
    def _version(w: asyncio.StreamWriter) -> str:
        obj = w.get_extra_info("ssl_object")
        return obj.version() if obj is not None else "none"

    async def _starttls(self, c: _Conn, client_r: asyncio.StreamReader,
                        client_w: asyncio.StreamWriter, server_r: asyncio.StreamReader,
                        server_w: asyncio.StreamWriter) -> bool:
        """Relay cleartext until <starttls/> and <proceed/>, then TLS on both legs."""
        async def up() -> bool:
            seen = b""
            while True:
                data = await client_r.read(65536)
                if not data:
                    return False
                seen += data
                server_w.write(data)
                await server_w.drain()
                if STARTTLS_RX.search(seen):
                    return True  # the client now waits for <proceed/>: read no further

        async def down() -> bool:
            seen = b""
            while True:
                data = await server_r.read(65536)
                if not data:
                    return False
                seen += data
                if PROCEED_RX.search(seen):
                    # The client starts its TLS handshake as soon as it has <proceed/>: stop
                    # reading its socket first, so that no ClientHello byte lands in the
                    # cleartext reader (loop.start_tls resumes reading under TLS).
                    client_w.transport.pause_reading()
                    client_w.write(data)
                    await client_w.drain()
                    return True
                client_w.write(data)
                await client_w.drain()
                if TLS_FAILURE_RX.search(seen):
                    return False

        ok = await asyncio.gather(up(), down())
        if not all(ok):
            self._event(c, "no STARTTLS")
            return False
        await asyncio.gather(client_w.start_tls(self.client_ctx),
                             server_w.start_tls(self.server_ctx,
                                                server_hostname=self.server_name))
        self._event(c, f"client TLS {self._version(client_w)}")
        self._event(c, f"server TLS {self._version(server_w)}")
        return True

    async def _pump_up(self, c: _Conn, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        """Client -> server, unchanged; SASL <auth/> elements are recorded."""
        while True:
            data = await reader.read(65536)
            if not data:
                writer.close()  # no half-close under TLS: the server sees the end at once
                return
            writer.write(data)
            await writer.drain()
            self._scan_up(c, data)

    def _scan_up(self, c: _Conn, data: bytes) -> None:
        c.up_scan += data
        while True:
            m = AUTH_RX.search(c.up_scan)
            if not m:
                c.up_scan = c.up_scan[-65536:]
                return
            c.up_scan = c.up_scan[m.end():]
            mech_m = MECH_ATTR_RX.search(m.group(1))
            mech = mech_m.group(1).decode() if mech_m else "?"
            payload = (m.group(2) or b"").strip()
            try:
                initial = base64.b64decode(payload, validate=True) if payload != b"=" else b""
            except ValueError:
                initial = b""
            if mech.startswith("SCRAM-"):
                self._event(c, f"client sasl: auth {mech} gs2={gs2_flag(initial)}")
            else:
                shown = "=" if payload == b"=" else initial.decode("utf-8", "replace")
                self._event(c, f"client sasl: auth {mech} initial={shown}")

    async def _pump_down(self, c: _Conn, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        """Server -> client; <stream:features/> rewritten, SASL results recorded."""
        while True:
            data = await reader.read(65536)
            if not data:
                if c.down_hold:
                    writer.write(c.down_hold)
                    c.down_hold = b""
                writer.close()
                return
            out = self._rewrite(c, data)
            if out:
                writer.write(out)
                await writer.drain()
                self._scan_down(c, out)

    def _rewrite(self, c: _Conn, data: bytes) -> bytes:
        buf = c.down_hold + data
        c.down_hold = b""
        out = b""
        while buf:
            start = buf.find(FEATURES_START)
            if start < 0:
                keep = _partial_suffix(buf, FEATURES_START)
                out += buf[:len(buf) - keep]
                c.down_hold = buf[len(buf) - keep:]
                break
            out += buf[:start]
            end = buf.find(FEATURES_END, start)
            if end < 0:
                head_end = buf.find(b">", start)
                if head_end >= 0 and buf[head_end - 1:head_end] == b"/":  # <stream:features/>
                    out += buf[start:head_end + 1]
                    buf = buf[head_end + 1:]
                    continue
                c.down_hold = buf[start:]
                break
            end += len(FEATURES_END)
            out += self._features(c, buf[start:end])
            buf = buf[end:]
        return out

    def _features(self, c: _Conn, features: bytes) -> bytes:
        mechs = [m.decode() for m in MECH_RX.findall(features)]
        cb_list = CB_LIST_RX.search(features)
        cb_types = [t.decode() for t in CB_TYPE_RX.findall(cb_list.group(0))] if cb_list else []
        if mechs or cb_list:
            self._event(c, f"features: mechanisms={','.join(mechs) or '-'} "
                           f"channel-bindings={','.join(cb_types) or '-'}")
        if not self.strip_plus:
            return features
        stripped = [m.decode() for m in PLUS_MECH_RX.findall(features)]
        new = PLUS_MECH_RX.sub(b"", features)
        if cb_list:
            new = CB_LIST_RX.sub(b"", new)
            stripped.append("sasl-channel-binding")
        if stripped:
            self._event(c, f"stripped: {','.join(stripped)}")
        return new

    def _scan_down(self, c: _Conn, data: bytes) -> None:
        c.down_scan += data
        while True:
            m = SASL_RESULT_RX.search(c.down_scan)
            if not m:
                c.down_scan = c.down_scan[-65536:]
                return
            c.down_scan = c.down_scan[m.end():]
            if m.group(1) == b"success":
                self._event(c, "server sasl: success")
                continue
            inner = m.group(2) or b""
            cond = next((a or b for a, b in CONDITION_RX.findall(TEXT_RX.sub(b"", inner))), b"?")
            text = TEXT_RX.search(inner)
            self._event(c, f"server sasl: failure {cond.decode()}"
                           + (f": {text.group(1).decode('utf-8', 'replace')}" if text else ""))
