# The daemon's JSON-lines socket (JsonClient, parse_stamp), stanzactl (run_stanzactl,
# LineReader) and JsonlTest, the IntegrationTest with start_daemon() and client().

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

from harness_process import REPO, Pattern, _say, _spawn, _track, _untrack
from harness_stanzad import Stanzad
from harness_testcase import IntegrationTest


# --------------------------------------------------------------------------------------
# The JSON-lines socket (docs/json-protocol.md)

def rx_listening(path: Optional[Union[str, Path]] = None) -> str:
    """`stanzad: listening on PATH` (the JSON socket is ready); group: the path."""
    return (rf"stanzad: listening on ({re.escape(str(path))})" if path
            else r"stanzad: listening on (\S+)")


class JsonlError(AssertionError):
    pass


class JsonClient:
    """A client of stanzad's JSON-lines socket, single-threaded and blocking with
    deadlines.

    Everything the daemon writes is read by the same loop (select with the time left to a
    deadline, then recv): events go to `events`, replies to `replies` (all, in order of
    arrival). request() sends one request with the next integer id and returns its reply;
    events that arrive before the reply (the daemon may send the events a request caused
    before its reply) are kept in `events`. wait_event() waits for an event by predicate
    or by name and fields. Nothing sleeps: every wait ends the moment the line arrives.

        c = JsonClient(sock_path)
        hello = c.hello("tests")                     # reply dict
        r = c.request("send", account="home", to="bob@localhost", body="hi")
        ev = c.wait_event("message", msg_id=r["msg_id"])
    """

    def __init__(self, path: Union[str, Path], *, timeout: float = 10.0,
                 name: str = "jsonl", echo: bool = False):
        self.path = str(path)
        self.timeout = timeout
        self.name = name
        self.echo = echo
        self.events: "list[dict]" = []
        self.replies: "list[dict]" = []
        self.lines: "list[bytes]" = []     # every line received, raw
        self.hello_reply: Optional[dict] = None
        self.eof = False
        self._pending: "list[dict]" = []   # replies not yet returned by request/next_reply
        self._buf = bytearray()
        self._next_id = 1
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)      # bounds connect() and sendall()
        try:
            self.sock.connect(self.path)
        except OSError:
            self.sock.close()
            raise

    # -- writing
    def send_raw_line(self, data: Union[bytes, str]) -> None:
        """Write `data` as one line (a newline is added unless it ends with one)."""
        if isinstance(data, str):
            data = data.encode()
        if not data.endswith(b"\n"):
            data += b"\n"
        self.sock.sendall(data)

    def send_json(self, obj: dict) -> None:
        self.send_raw_line(json.dumps(obj, separators=(",", ":")).encode())

    def next_id(self) -> int:
        i = self._next_id
        self._next_id += 1
        return i

    # -- reading
    def _handle_line(self, raw: bytes) -> Optional[dict]:
        self.lines.append(raw)
        if self.echo:
            _say(f"[{self.name}] <- ", raw.decode("utf-8", "replace")[:500])
        try:
            obj = json.loads(raw)
        except ValueError as e:
            raise JsonlError(f"{self.name}: the daemon wrote a line that is not JSON "
                             f"({e}): {raw[:300]!r}") from None
        if not isinstance(obj, dict):
            raise JsonlError(f"{self.name}: the daemon wrote a non-object: {raw[:300]!r}")
        if "event" in obj:
            self.events.append(obj)
        else:
            self.replies.append(obj)
            self._pending.append(obj)
        return obj

    def read_some(self, timeout: float) -> "list[dict]":
        """Wait at most `timeout` seconds for data, read what is there, and return the
        objects of the complete lines it finished (empty on timeout or EOF)."""
        if self.eof:
            return []
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not ready:
            return []
        try:
            chunk = self.sock.recv(1 << 16)
        except (ConnectionResetError, socket.timeout):
            chunk = b""
        if not chunk:
            self.eof = True
            return []
        self._buf += chunk
        out = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                break
            raw = bytes(self._buf[:nl])
            del self._buf[:nl + 1]
            if raw.strip():
                out.append(self._handle_line(raw))
        return out

    def _wait(self, found: Callable[[], Any], timeout: Optional[float], what: str) -> Any:
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            value = found()
            if value is not None:
                return value
            remaining = deadline - time.monotonic()
            if self.eof:
                raise JsonlError(f"{self.name}: the daemon closed the connection while "
                                 f"waiting for {what}\n{self._recent()}")
            if remaining <= 0:
                raise JsonlError(f"{self.name}: timed out after {timeout:g}s waiting for "
                                 f"{what}\n{self._recent()}")
            self.read_some(remaining)

    def _recent(self, n: int = 15) -> str:
        return "--- last lines received ---\n" + "\n".join(
            l.decode("utf-8", "replace")[:400] for l in self.lines[-n:])

    # -- replies
    def wait_reply(self, id: Any, timeout: Optional[float] = None) -> dict:
        """The reply whose id is `id` (taken out of the pending replies)."""
        def found() -> Optional[dict]:
            for i, r in enumerate(self._pending):
                if "id" in r and r["id"] == id:
                    return self._pending.pop(i)
            return None
        return self._wait(found, timeout, f"the reply with id {id!r}")

    def next_reply(self, timeout: Optional[float] = None) -> dict:
        """The oldest reply not yet returned (for replies without an id)."""
        return self._wait(lambda: self._pending.pop(0) if self._pending else None,
                          timeout, "a reply")

    def request(self, op: Optional[str], timeout: Optional[float] = None,
                **fields: Any) -> dict:
        """Send {"op": op, "id": N, **fields} and return its reply (ok or not). Pass
        id=... to choose the id; op=None leaves "op" out."""
        rid = fields.pop("id") if "id" in fields else self.next_id()
        obj = {} if op is None else {"op": op}
        obj["id"] = rid
        obj.update(fields)
        self.send_json(obj)
        return self.wait_reply(rid, timeout)

    def ok(self, op: str, timeout: Optional[float] = None, **fields: Any) -> dict:
        """request() that must succeed."""
        reply = self.request(op, timeout, **fields)
        if reply.get("ok") is not True:
            raise JsonlError(f"{self.name}: {op} {fields} failed: {reply}")
        return reply

    def hello(self, client: str, since: Optional[int] = None, replay: bool = True,
              timeout: Optional[float] = None) -> dict:
        fields: dict = {"client": client}
        if since is not None:
            fields["since"] = since
        if not replay:
            fields["replay"] = False
        reply = self.request("hello", timeout, **fields)
        if reply.get("ok"):
            self.hello_reply = reply
        return reply

    def ack(self, seq: int, timeout: Optional[float] = None) -> dict:
        return self.ok("ack", timeout, seq=seq)

    # -- events
    def mark(self) -> int:
        """Number of events so far: pass as `since` to look only at later ones."""
        return len(self.events)

    @staticmethod
    def _event_matcher(what: Union[None, str, Callable[[dict], bool]],
                       fields: dict) -> Callable[[dict], bool]:
        def match(e: dict) -> bool:
            if callable(what) and not what(e):
                return False
            if isinstance(what, str) and e.get("event") != what:
                return False
            return all(k in e and e[k] == v for k, v in fields.items())
        return match

    def find_events(self, what: Union[None, str, Callable[[dict], bool]] = None,
                    since: int = 0, **fields: Any) -> "list[dict]":
        """Events received so far (from index `since`) matching name/predicate and fields."""
        match = self._event_matcher(what, fields)
        return [e for e in self.events[since:] if match(e)]

    def wait_event(self, what: Union[None, str, Callable[[dict], bool]] = None,
                   timeout: Optional[float] = None, since: int = 0, nth: int = 1,
                   **fields: Any) -> dict:
        """Block until the nth event (from index `since`) that matches: `what` is an event
        name ("message") or a predicate on the event dict; every keyword must be equal
        (e.g. msg_id="c-1", outgoing=True)."""
        match = self._event_matcher(what, fields)
        state = {"scanned": since, "found": 0}

        def found() -> Optional[dict]:
            while state["scanned"] < len(self.events):
                e = self.events[state["scanned"]]
                state["scanned"] += 1
                if match(e):
                    state["found"] += 1
                    if state["found"] >= nth:
                        return e
            return None
        desc = what if isinstance(what, str) else getattr(what, "__name__", "event")
        return self._wait(found, timeout, f"event {desc} {fields} (#{nth})")

    def wait_events(self, what: Union[None, str, Callable[[dict], bool]], count: int,
                    timeout: Optional[float] = None, since: int = 0,
                    **fields: Any) -> "list[dict]":
        """Block until `count` matching events have arrived; returns the first `count`."""
        self.wait_event(what, timeout, since, nth=count, **fields)
        return self.find_events(what, since, **fields)[:count]

    def wait_eof(self, timeout: Optional[float] = None) -> None:
        self._wait(lambda: True if self.eof else None, timeout, "the end of the stream")

    # -- teardown
    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()
        self.eof = True

    def __enter__(self) -> "JsonClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def parse_stamp(stamp: str) -> float:
    """An RFC 3339 UTC stamp ("...Z", with or without fractions) as a Unix time."""
    import datetime
    s = stamp.replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(s).timestamp()


# --------------------------------------------------------------------------------------
# stanzactl

def stanzactl_bin() -> Path:
    """$STANZACTL_BIN, else ctl/stanzactl under $STANZAD_BUILD_DIR, else build/ctl/stanzactl."""
    if os.environ.get("STANZACTL_BIN"):
        return Path(os.environ["STANZACTL_BIN"])
    if os.environ.get("STANZAD_BUILD_DIR"):
        return Path(os.environ["STANZAD_BUILD_DIR"]) / "ctl" / "stanzactl"
    return REPO / "build" / "ctl" / "stanzactl"


def run_stanzactl(args: Iterable[Union[str, Path]], *, input: Optional[str] = None,
                  timeout: float = 15.0, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    binary = stanzactl_bin()
    if not binary.exists():
        raise AssertionError(f"stanzactl binary not found at {binary}: run `make build` "
                             f"(or set STANZACTL_BIN)")
    full_env = dict(os.environ)
    full_env.update(env or {})
    stdin = {} if input is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run([str(binary), *map(str, args)], input=input,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, env=full_env, **stdin)


class LineReader:
    """A child process whose stdout is read line by line on a thread; wait_line() blocks
    on a condition variable until a matching line arrives (or the deadline passes)."""

    def __init__(self, argv: list, *, env: Optional[dict] = None, name: str = "child",
                 cwd: Optional[Union[str, Path]] = None):
        self.name = name
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = _spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=full_env, cwd=cwd)
        _track(self)
        self.lines: "list[str]" = []
        self.err_lines: "list[str]" = []
        self._cond = threading.Condition()
        self._ended: "set[int]" = set()   # id() of the line lists whose stream ended
        self._threads = [threading.Thread(target=self._read, args=(s, l), daemon=True,
                                          name=f"{name}-{n}")
                         for s, l, n in ((self.proc.stdout, self.lines, "out"),
                                         (self.proc.stderr, self.err_lines, "err"))]
        for t in self._threads:
            t.start()

    def _read(self, stream: Any, into: "list[str]") -> None:
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                _say(f"[{self.name}{'' if into is self.lines else ' stderr'}] ", line)
                with self._cond:
                    into.append(line)
                    self._cond.notify_all()
        finally:
            with contextlib.suppress(Exception):
                stream.close()
            with self._cond:
                self._ended.add(id(into))
                self._cond.notify_all()

    def mark(self, stream: str = "out") -> int:
        with self._cond:
            return len(self.lines if stream == "out" else self.err_lines)

    def wait_line(self, pattern: Pattern, timeout: float = 10.0, since: int = 0,
                  stream: str = "out") -> "re.Match[str]":
        """Block until a line of stdout (stream="out") or stderr ("err") from index
        `since` matches; fails at once when that stream has ended without it."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        lines = self.lines if stream == "out" else self.err_lines
        deadline = time.monotonic() + timeout
        scanned = since
        with self._cond:
            while True:
                while scanned < len(lines):
                    m = rx.search(lines[scanned])
                    scanned += 1
                    if m:
                        return m
                remaining = deadline - time.monotonic()
                ended = id(lines) in self._ended
                if ended or remaining <= 0:
                    why = (f"exited with {self.proc.poll()}" if ended
                           else f"timed out after {timeout:g}s")
                    raise AssertionError(
                        f"{self.name} {why} before printing {rx.pattern!r}\n"
                        f"stdout:\n" + "\n".join(self.lines[-20:]) +
                        "\nstderr:\n" + "\n".join(self.err_lines[-20:]))
                self._cond.wait(remaining)

    def kill(self) -> None:
        """SIGKILL to the child's whole process group (it runs in its own session), so a
        shell pipeline leaves nothing behind."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for t in self._threads:
            t.join(5)
        _untrack(self)

    def terminate(self, timeout: float = 5.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        rc = self.proc.wait()
        for t in self._threads:
            t.join(5)
        _untrack(self)
        return rc


# --------------------------------------------------------------------------------------
# unittest glue for the JSON socket

class JsonlTest(IntegrationTest):
    """IntegrationTest plus the JSON-lines socket: start_daemon() starts stanzad with
    alice as account "home", waits for `listening on` (and, by default, for the account
    to be online) and sets `d.socket_path`; client() opens a JsonClient closed at
    cleanup."""

    def start_daemon(self, accounts: Optional[list] = None, name: str = "stanzad",
                     online: bool = True, **daemon: Any) -> Stanzad:
        if "socket" not in daemon:
            daemon["socket"] = str(self.socket_path_for(name))
        config = self.config(accounts if accounts is not None
                             else [self.account("home", "alice")], name, **daemon)
        sock = Path(config["daemon"]["socket"])
        d = self.start_stanzad(config, name)
        d.socket_path = sock  # type: ignore[attr-defined]
        d.config = config     # type: ignore[attr-defined]
        d.wait_for(rx_listening(sock), timeout=10)
        if online:
            self.wait_online(d, "home")
        return d

    def socket_path_for(self, name: str = "stanzad") -> Path:
        """tmp/NAME/stanzad.sock, or a short directory of its own when that path is too
        long for a Unix socket address (108 bytes, long test names)."""
        path = self.tmp / name / "stanzad.sock"
        if len(str(path).encode()) < 100:
            return path
        short = getattr(self, "_short_socket_dir", None)
        if short is None:
            short = Path(tempfile.mkdtemp(prefix="stanzad-sock-"))
            self._short_socket_dir = short
            self.addCleanup(shutil.rmtree, short, True)
        return short / f"{name}.sock"

    def client(self, where: Union[Stanzad, str, Path], hello: Optional[str] = None,
               name: Optional[str] = None, **hello_args: Any) -> JsonClient:
        """A connected JsonClient; with hello=NAME it has said hello (and must be ok)."""
        path = getattr(where, "socket_path", where)
        c = JsonClient(path, name=name or hello or "jsonl")
        self.addCleanup(c.close)
        if hello is not None:
            reply = c.hello(hello, **hello_args)
            self.assertIs(reply.get("ok"), True, f"hello failed: {reply}")
        return c

    def watcher(self, where: Union[Stanzad, str, Path], name: str = "watcher") -> JsonClient:
        """A client attached for live events only (replay false). The daemon stores an
        event before it shows it to any client, so an event seen here is committed: the
        barrier before a kill -9. (Since the group commit an XEP-0199 pong is one too: it
        leaves only after the commit of its read, docs/reliability.md; the tests use events.)"""
        return self.client(where, hello=name, replay=False)
