# Fault test building blocks: the XEP-0198 log lines, Peer.answer_receipts/sync/reconnect/
# start_bulk with BulkSender, JsonClient.submit/wait_replay, daemon_link_up and Fault.

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Callable, Optional

from harness_process import poll_until
from harness_stanzad import Stanzad, rx_disconnected
from harness_peer import RECEIPTS_NS, SID_NS, Peer
from harness_jsonl import JsonClient


# --------------------------------------------------------------------------------------
# Fault tests (test_fault_*.py): bulk traffic in both directions, counted by id, while a
# FaultProxy (faultproxy.py) between stanzad and Prosody breaks the link.


def rx_sm_enabled(account: str) -> str:
    """`account NAME: stream management enabled` (a new XEP-0198 session)."""
    return rf"account {re.escape(account)}: stream management enabled"


def rx_resumed(account: str) -> str:
    """`account NAME: resumed the previous session`."""
    return rf"account {re.escape(account)}: resumed the previous session"


def rx_resume_failed(account: str) -> str:
    """`account NAME: could not resume (WHY); new session`; group: why."""
    return rf"account {re.escape(account)}: could not resume \((.*)\); new session"


def rx_session_up(account: str) -> str:
    """Either of the lines that end a (re)connection with a working XEP-0198 stream."""
    return (rf"account {re.escape(account)}: (?:resumed the previous session|"
            rf"stream management enabled)")


def rx_catch_up(account: str) -> str:
    """`account NAME: archive catch-up: N message(s)`; group: N."""
    return rf"account {re.escape(account)}: archive catch-up: (\d+) message\(s\)"


def _peer_answer_receipts(self: "Peer") -> None:
    """Make this peer answer XEP-0184 receipt requests, as a modern client does: for each
    <message id=X> with <request xmlns='urn:xmpp:receipts'/>, send
    <message to=FROM><received xmlns='urn:xmpp:receipts' id=X/></message>. Idempotent."""
    if getattr(self, "_answers_receipts", False):
        return
    self._answers_receipts = True
    self.receipts_sent = 0

    def hook(msg: Any) -> None:
        el = msg.xml
        if el.find(f"{{{RECEIPTS_NS}}}request") is None or not el.get("id"):
            return
        if el.get("type") == "error":
            return
        reply = self.xmpp.make_message(mto=el.get("from"))
        ET.SubElement(reply.xml, f"{{{RECEIPTS_NS}}}received").set("id", el.get("id"))
        reply.send()
        self.receipts_sent += 1

    self.message_hooks.append(hook)


def _peer_sync(self: "Peer", timeout: float = 10.0) -> float:
    """A round trip to our own server (XEP-0199 ping to the domain). The server handles a
    session's stanzas in order, so when this returns every stanza this peer sent before
    has been processed (routed, archived or stored offline)."""
    return self.ping(self.xmpp.boundjid.domain, timeout=timeout)


def _peer_wait_disconnected(self: "Peer", timeout: float = 15.0) -> None:
    """Block until slixmpp has noticed that its connection is gone (e.g. the server was
    stopped)."""
    async def gone() -> bool:
        return self.xmpp.transport is None
    poll_until(lambda: self._call(gone(), 5), timeout, f"{self.jid} to notice the disconnect")


def _peer_reconnect(self: "Peer", timeout: float = 15.0) -> "Peer":
    """After the server went away and came back: wait until the old connection is gone,
    log in again (new session, initial presence, so the server flushes offline storage).
    Everything received before and after stays in `messages`."""
    _peer_wait_disconnected(self, timeout)
    return self.connect(timeout)


def _peer_start_bulk(self: "Peer", to: str, items: "list[tuple[str, str]]",
                     rate: float = 100.0, mtype: str = "chat",
                     origin_ids: bool = False) -> "BulkSender":
    """Start sending `items` [(stanza id, body), ...] to `to` from this peer's loop, in
    order, at most `rate` per second; returns at once with a BulkSender (progress,
    pause/resume, wait)."""
    return BulkSender(self, to, items, rate=rate, mtype=mtype, origin_ids=origin_ids)


# Methods added to Peer and JsonClient here rather than in their classes, so that this
# section stays one appended block.
Peer.answer_receipts = _peer_answer_receipts          # type: ignore[attr-defined]
Peer.sync = _peer_sync                                # type: ignore[attr-defined]
Peer.wait_disconnected = _peer_wait_disconnected      # type: ignore[attr-defined]
Peer.reconnect = _peer_reconnect                      # type: ignore[attr-defined]
Peer.start_bulk = _peer_start_bulk                    # type: ignore[attr-defined]


class BulkSender:
    """Messages sent by a Peer on its own loop, paced to `rate` per second. `sent` counts
    the messages handed to slixmpp (on the wire soon after, in order; a Peer.sync() after
    pause() or wait() proves the server has them). pause() returns once no further message
    will leave until resume()."""

    def __init__(self, peer: Peer, to: str, items: "list[tuple[str, str]]", *,
                 rate: float, mtype: str = "chat", origin_ids: bool = False):
        self.peer = peer
        self.to = to
        self.items = list(items)
        self.rate = float(rate)
        self.mtype = mtype
        self.origin_ids = origin_ids
        self.sent = 0
        self.started = time.monotonic()
        self.finished: Optional[float] = None
        self._running: Optional[asyncio.Event] = None

        async def make_event() -> None:  # created on the peer's loop, which owns it
            self._running = asyncio.Event()
            self._running.set()
        peer._call(make_event(), 5)
        self.future = asyncio.run_coroutine_threadsafe(self._run(), peer.loop)

    @property
    def done(self) -> bool:
        return self.future.done()

    async def _run(self) -> int:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.rate if self.rate > 0 else 0.0
        next_at = loop.time()
        for stanza_id, body in self.items:
            if not self._running.is_set():
                await self._running.wait()
                next_at = loop.time()
            now = loop.time()
            if next_at > now:
                await asyncio.sleep(next_at - now)
                if not self._running.is_set():  # paused while we slept
                    await self._running.wait()
                    next_at = loop.time()
            next_at = max(next_at, loop.time() - 0.5) + interval  # no burst after a stall
            msg = self.peer.xmpp.make_message(mto=self.to, mbody=body, mtype=self.mtype)
            msg["id"] = stanza_id
            if self.origin_ids:
                ET.SubElement(msg.xml, f"{{{SID_NS}}}origin-id").set("id", stanza_id)
            msg.send()
            self.sent += 1
        self.finished = time.monotonic()
        return self.sent

    def pause(self) -> int:
        """Stop sending (between two messages); returns how many were sent."""
        async def run() -> int:
            self._running.clear()
            return self.sent
        return self.peer._call(run(), 5)

    def resume(self) -> None:
        async def run() -> None:
            self._running.set()
        self.peer._call(run(), 5)

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise AssertionError(f"{self.peer.jid}: sent only {self.sent} of "
                                 f"{len(self.items)} within {timeout:g}s") from None


def _jsonl_submit(self: "JsonClient", op: str, **fields: Any) -> Any:
    """Pipelining: send a request without waiting for its reply; returns its id. Collect
    replies with take_replies() (or wait_reply(id))."""
    rid = fields.pop("id") if "id" in fields else self.next_id()
    obj = {"op": op, "id": rid}
    obj.update(fields)
    self.send_json(obj)
    return rid


def _jsonl_take_replies(self: "JsonClient") -> "list[dict]":
    """Every reply read so far that request()/wait_reply() has not returned; clears them."""
    out, self._pending = self._pending, []
    return out


def _jsonl_wait_until(self: "JsonClient", predicate: Callable[[], Any], timeout: float,
                      what: str) -> Any:
    """Read from the socket until predicate() returns a true value (checked after every
    read), for at most `timeout` seconds."""
    return self._wait(lambda: predicate() or None, timeout, what)


def _jsonl_wait_replay(self: "JsonClient", timeout: Optional[float] = None) -> int:
    """After hello (with replay): block until the replayed events up to the hello reply's
    `last_seq` have all arrived; returns last_seq."""
    last = (self.hello_reply or {}).get("last_seq", 0)
    if last:
        self._wait(lambda: True if any(e.get("seq", 0) >= last for e in self.events)
                   else None, timeout, f"the replay up to seq {last}")
    return last


JsonClient.submit = _jsonl_submit              # type: ignore[attr-defined]
JsonClient.take_replies = _jsonl_take_replies  # type: ignore[attr-defined]
JsonClient.wait_until = _jsonl_wait_until      # type: ignore[attr-defined]
JsonClient.wait_replay = _jsonl_wait_replay    # type: ignore[attr-defined]


def log_line_time(line: str) -> float:
    """The Unix time of a stanzad log line ("2026-11-25 14:34:23.515 info ..."; local
    time, as spdlog writes it by default)."""
    import datetime
    m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)", line)
    if not m:
        raise ValueError(f"no timestamp at the start of {line!r}")
    return datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()


def daemon_link_up(d: Stanzad, account: str = "home", since: int = 0) -> bool:
    """Whether the daemon's latest word on `account` (from line `since`) is that its
    stream works: a session-up line (resumed / stream management enabled) with no
    `disconnected` line after it."""
    up_rx, down_rx = re.compile(rx_session_up(account)), re.compile(rx_disconnected(account))
    with d._cond:
        for line in reversed(d.lines[since:]):
            if down_rx.search(line):
                return False
            if up_rx.search(line):
                return True
    return False


@dataclass
class Fault:
    """One fault of a Traffic run: fire() once the run's progress (0..1, messages sent
    both ways) reaches `at` and ready() says the link is in a state worth breaking (e.g.
    the daemon is back online after the previous fault). When fire() returns False the
    fault did not happen (e.g. the connection dropped on its own a moment before): it stays
    pending and is tried again."""
    at: float
    fire: Callable[[], Any]
    name: str = "fault"
    ready: Callable[[], bool] = lambda: True
    fired_at: Optional[float] = None   # seconds since the run started
