# Fault test runs: Traffic (messages both ways, counted by id, while Faults fire),
# count_replayed and FaultTest (JsonlTest with the account behind a FaultProxy).

from __future__ import annotations

import json
import re
import time
import unittest
from typing import Any, Iterable, Optional

from harness_process import _say
from harness_prosody import Prosody
from harness_stanzad import Stanzad
from harness_peer import Peer, ReceivedMessage
from harness_jsonl import JsonClient, JsonlError, JsonlTest
from harness_faults import BulkSender, Fault, rx_catch_up, rx_sm_enabled


class Traffic:
    """Messages both ways at once, each counted by id, from the test thread.

    alice -> bob: `send` requests on the JsonClient `client` (pipelined: at most `window`
    without a reply, at most `rate_out` per second), client_id "{tag}-a2b-NNNN", body
    "a2b NNNN {tag}"; bob must receive each (by XEP-0359 origin-id).
    bob -> alice: a BulkSender from the Peer `bob` to `alice` (the bare JID by default) at
    `rate_in` per second, stanza id "{tag}-b2a-NNNN", body "b2a NNNN {tag}"; the
    JsonClient must show each as one incoming `message` event.

    run(faults) drives both until everything is sent and every fault has fired;
    wait_complete() waits (event-driven, with a deadline) until everything has arrived;
    settle(seconds) keeps reading for a fixed window to catch late duplicates; counts()
    and check() report and assert.
    """

    # The contract as briefed: every message reaches `acked` (the server has it), also
    # when its `delivered` receipt came first. Set True to count `delivered` as implying
    # `acked` (if the daemon's states are made monotonic and skip `acked` after it).
    # States only move forward: a receipt (delivered) that beats the server's ack leaves
    # no room for acked, and delivered means the server had it.
    DELIVERED_IMPLIES_ACKED = True

    def __init__(self, test: unittest.TestCase, client: JsonClient, bob: Peer, *,
                 n_out: int, n_in: int, tag: str, account: str = "home",
                 alice: str = "alice@localhost", to_bob: str = "bob@localhost",
                 rate_out: float = 100.0, rate_in: float = 100.0, window: int = 32):
        self.test = test
        self.client = client
        self.bob = bob
        self.account = account
        self.alice = alice
        self.to_bob = to_bob
        self.tag = tag
        self.rate_out = rate_out
        self.rate_in = rate_in
        self.window = window
        self.out_ids = [f"{tag}-a2b-{i:04d}" for i in range(n_out)]
        self.out_body = {mid: f"a2b {i:04d} {tag}" for i, mid in enumerate(self.out_ids)}
        self.in_ids = [f"{tag}-b2a-{i:04d}" for i in range(n_in)]
        self.in_body = {sid: f"b2a {i:04d} {tag}" for i, sid in enumerate(self.in_ids)}
        self.in_index = {body: i for i, body in enumerate(self.in_body.values())}
        self._out_bodies = set(self.out_body.values())
        # alice -> bob, JSON side
        self.next_out = 0
        self.request_of: "dict[Any, str]" = {}      # JSON request id -> msg id
        self.replies: "dict[str, dict]" = {}        # msg id -> reply
        self.states: "dict[str, dict[str, int]]" = {mid: {} for mid in self.out_ids}
        self.out_events: "dict[str, int]" = {}      # msg id -> outgoing `message` events
        # bob -> alice, JSON side
        self.in_events: "dict[str, list[dict]]" = {}  # body -> incoming `message` events
        self.in_order: "list[int]" = []             # index of each incoming event, in order
        self.strange_events: "list[dict]" = []      # our bodies where they must not be
        self._event_scan = 0
        # alice -> bob, bob's side
        self.bob_seen: "dict[str, int]" = {}         # origin-id -> copies received
        self.bob_bad: "list[ReceivedMessage]" = []   # our body, but no/wrong origin-id
        self._bob_scan = bob.message_mark()
        self.sender: Optional[BulkSender] = None
        self.faults: "list[Fault]" = []
        self.started = 0.0
        self.sending_done: Optional[float] = None
        self.complete_at: Optional[float] = None

    # -- bookkeeping
    def _scan(self) -> None:
        for r in self.client.take_replies():
            mid = self.request_of.get(r.get("id"))
            if mid is not None:
                self.replies[mid] = r
        events = self.client.events
        while self._event_scan < len(events):
            e = events[self._event_scan]
            self._event_scan += 1
            kind = e.get("event")
            if kind == "message":
                body = e.get("body", "")
                if e.get("outgoing"):
                    mid = e.get("msg_id")
                    if mid in self.states:
                        self.out_events[mid] = self.out_events.get(mid, 0) + 1
                    elif body in self.in_index:
                        self.strange_events.append(e)  # bob's message shown as ours
                elif body in self.in_index:
                    self.in_events.setdefault(body, []).append(e)
                    self.in_order.append(self.in_index[body])
                elif body in self._out_bodies or e.get("msg_id") in self.states:
                    self.strange_events.append(e)      # our own message shown as incoming
            elif kind == "message-state":
                st = self.states.get(e.get("msg_id"))
                if st is not None:
                    st[e.get("state")] = st.get(e.get("state"), 0) + 1
        with self.bob._msg_cond:
            new = self.bob.messages[self._bob_scan:]
            self._bob_scan += len(new)
        for m in new:
            if not (m.body or "").startswith("a2b ") or not (m.body or "").endswith(self.tag):
                continue
            if m.origin_id in self.out_body and self.out_body[m.origin_id] == m.body:
                self.bob_seen[m.origin_id] = self.bob_seen.get(m.origin_id, 0) + 1
            else:
                self.bob_bad.append(m)

    def progress(self) -> float:
        total = len(self.out_ids) + len(self.in_ids)
        done = len(self.replies) + (self.sender.sent if self.sender else 0)
        return done / total if total else 1.0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # -- driving
    def start(self) -> None:
        self.started = time.monotonic()
        if self.in_ids:
            self.sender = self.bob.start_bulk(
                self.alice, [(sid, self.in_body[sid]) for sid in self.in_ids],
                rate=self.rate_in)

    def _submit_some(self) -> None:
        allowed = int(self.elapsed() * self.rate_out) + 1
        inflight = len(self.request_of) - len(self.replies)
        while (self.next_out < len(self.out_ids) and self.next_out < allowed
               and inflight < self.window):
            mid = self.out_ids[self.next_out]
            rid = self.client.submit("send", account=self.account, to=self.to_bob,
                                     body=self.out_body[mid], client_id=mid)
            self.request_of[rid] = mid
            self.next_out += 1
            inflight += 1

    def step(self, timeout: float = 0.02) -> None:
        """Submit what the pace and window allow, read what the daemon wrote (waiting up
        to `timeout`), update the counts."""
        self._submit_some()
        self.client.read_some(timeout)
        if self.client.eof:
            raise JsonlError(f"{self.client.name}: the daemon closed the socket during the "
                             f"run\n{self.client._recent()}")
        self._scan()

    def sending_finished(self) -> bool:
        return (len(self.replies) == len(self.out_ids)
                and (self.sender is None or self.sender.done))

    def run(self, faults: Iterable[Fault] = (), timeout: float = 60.0) -> None:
        """Send everything, firing each fault in turn when its time has come. Ends when
        every message has been sent both ways (replies for every `send`) and every fault
        has fired; fails after `timeout` seconds."""
        self.faults = sorted(faults, key=lambda f: f.at)
        if not self.started:
            self.start()
        pending = list(self.faults)
        deadline = self.started + timeout
        while True:
            self.step()
            if pending and self.progress() >= pending[0].at and pending[0].ready():
                f = pending[0]
                at = round(self.elapsed(), 2)
                if f.fire() is not False:
                    pending.pop(0)
                    f.fired_at = at
                    _say("[traffic] ", f"{f.name} at {at:.2f}s "
                         f"(progress {self.progress():.0%})")
            if not pending and self.sending_finished():
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"traffic {self.tag}: not everything sent within {timeout:g}s: "
                    f"{len(self.replies)}/{len(self.out_ids)} send replies, bob sent "
                    f"{self.sender.sent if self.sender else 0}/{len(self.in_ids)}, faults "
                    f"not fired: {[f.name for f in pending]}")
        if self.sender is not None:
            self.sender.wait(5)
        self.sending_done = time.monotonic()
        failed = {mid: r for mid, r in self.replies.items() if r.get("ok") is not True}
        self.test.assertEqual(failed, {}, "send requests that failed")

    def acked(self, mid: str) -> bool:
        st = self.states[mid]
        return bool(st.get("acked") or (self.DELIVERED_IMPLIES_ACKED and st.get("delivered")))

    def missing(self) -> "dict[str, list[str]]":
        """What has not arrived yet, by kind (lists of ids)."""
        return {
            "bob never got": [m for m in self.out_ids if m not in self.bob_seen],
            "never acked": [m for m in self.out_ids if not self.acked(m)],
            "front end never showed": [s for s in self.in_ids
                                       if self.in_body[s] not in self.in_events],
        }

    def wait_complete(self, timeout: float = 30.0) -> None:
        """Read until bob has every alice -> bob message, every one is acked and the front
        end has shown every bob -> alice message; fail after `timeout` with what is
        missing."""
        deadline = time.monotonic() + timeout
        while True:
            self.step(0.05)
            missing = self.missing()
            if not any(missing.values()):
                self.complete_at = time.monotonic()
                return
            if time.monotonic() > deadline:
                summary = {k: f"{len(v)}: {v[:8]}{' ...' if len(v) > 8 else ''}"
                           for k, v in missing.items() if v}
                states = {m: self.states[m] for m in missing["never acked"][:5]}
                raise AssertionError(f"traffic {self.tag}: incomplete {timeout:g}s after "
                                     f"the last message was sent: {summary}\n"
                                     f"state events of some never acked: {states}\n"
                                     f"counts: {self.counts()}")

    def wait_catch_up(self, d: Stanzad, since: int = 0, timeout: float = 30.0) -> None:
        """If the daemon bound a new session (`stream management enabled`) since line
        `since`, wait until the last such session has logged its archive catch-up (so a
        late duplicate from it lands before settle()), reading the front end meanwhile."""
        enabled = [i for i in range(since, len(d.lines))
                   if re.search(rx_sm_enabled(self.account), d.lines[i])]
        if not enabled:
            return
        deadline = time.monotonic() + timeout
        while d.index(rx_catch_up(self.account), since=enabled[-1]) is None:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the daemon's last new session (log line {enabled[-1]}) has not logged "
                    f"its archive catch-up within {timeout:g}s\n{d.output(enabled[-1])[-3000:]}")
            self.step(0.05)

    def settle(self, seconds: float) -> None:
        """A fixed window, for duplicates that would arrive late (an absence check)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.step(min(0.1, max(0.0, end - time.monotonic())))

    # -- results
    def counts(self) -> dict:
        in_dups = {b: len(es) for b, es in self.in_events.items() if len(es) > 1}
        bob_dups = {m: n for m, n in self.bob_seen.items() if n > 1}
        out_ev_dups = {m: n for m, n in self.out_events.items() if n != 1}
        return {
            "tag": self.tag,
            "out_sent": len(self.out_ids),
            "out_accepted": sum(1 for r in self.replies.values() if r.get("ok")),
            "out_acked": sum(1 for s in self.states.values() if s.get("acked")),
            "out_delivered": sum(1 for s in self.states.values() if s.get("delivered")),
            "out_failed": sum(1 for s in self.states.values() if s.get("failed")),
            "out_event_not_once": len(out_ev_dups),
            "bob_distinct": len(self.bob_seen),
            "bob_raw": sum(self.bob_seen.values()),
            "bob_raw_duplicates": sum(n - 1 for n in bob_dups.values()),
            "bob_bad": len(self.bob_bad),
            "in_sent": self.sender.sent if self.sender else 0,
            "fe_distinct": len(self.in_events),
            "fe_duplicates": sum(n - 1 for n in in_dups.values()),
            "fe_strange": len(self.strange_events),
            "fe_in_order": self.in_order == sorted(self.in_order),
            "faults": [(f.name, f.fired_at) for f in self.faults],
            "send_seconds": round((self.sending_done or time.monotonic()) - self.started, 2),
            "complete_seconds": (round(self.complete_at - self.started, 2)
                                 if self.complete_at else None),
        }

    def report(self, **extra: Any) -> dict:
        """Print the counts as one line (`FAULT-RESULT {...}`) for docs/reliability.md."""
        c = self.counts()
        c.update(extra)
        _say("", "FAULT-RESULT " + json.dumps(c, separators=(",", ":")))
        return c

    def check(self, *, in_order: bool = False) -> None:
        """The contract: nothing lost, nothing shown twice at the front end, bob gets every
        message (copies only with the same origin-id), each acked."""
        t = self.test
        lost_bob = [m for m in self.out_ids if m not in self.bob_seen]
        t.assertEqual(lost_bob, [], "alice -> bob: messages bob never received")
        t.assertEqual([repr(m) for m in self.bob_bad], [],
                      "alice -> bob: bob got one of ours without its origin-id (or with "
                      "another body)")
        not_acked = [m for m in self.out_ids if not self.acked(m)]
        t.assertEqual(not_acked, [], "alice -> bob: messages never acked by the server")
        out_ev = {m: self.out_events.get(m, 0) for m in self.out_ids
                  if self.out_events.get(m, 0) != 1}
        t.assertEqual(out_ev, {}, "alice -> bob: outgoing `message` events per msg_id "
                                  "(must be exactly 1)")
        lost_fe = [s for s in self.in_ids if self.in_body[s] not in self.in_events]
        t.assertEqual(lost_fe, [], "bob -> alice: messages the front end never showed")
        dups = {b: [e.get("msg_id") for e in es] for b, es in self.in_events.items()
                if len(es) > 1}
        t.assertEqual(dups, {}, "bob -> alice: messages the front end showed more than "
                                "once (body: msg_ids)")
        t.assertEqual(self.strange_events, [],
                      "events showing our own messages as incoming (or bob's as ours)")
        if in_order:
            t.assertEqual(self.in_order, sorted(self.in_order),
                          "bob -> alice: the front end showed them out of bob's order")


def count_replayed(test: unittest.TestCase, client: JsonClient, *,
                   incoming_bodies: Iterable[str] = (), outgoing_ids: Iterable[str] = (),
                   what: str = "replay") -> dict:
    """A front end that replays the whole store (hello since=0, then wait_replay()) must
    see each incoming body once and each outgoing msg_id once: counts them in
    client.events, asserts, and returns {"incoming": n, "outgoing": n}."""
    bodies, ids = set(incoming_bodies), set(outgoing_ids)
    inc: "dict[str, int]" = {}
    out: "dict[str, int]" = {}
    for e in client.events:
        if e.get("event") != "message":
            continue
        if e.get("outgoing"):
            if e.get("msg_id") in ids:
                out[e["msg_id"]] = out.get(e["msg_id"], 0) + 1
        elif e.get("body") in bodies:
            inc[e["body"]] = inc.get(e["body"], 0) + 1
    test.assertEqual({b: inc.get(b, 0) for b in bodies if inc.get(b, 0) != 1}, {},
                     f"{what}: incoming messages not stored exactly once (body: count)")
    test.assertEqual({m: out.get(m, 0) for m in ids if out.get(m, 0) != 1}, {},
                     f"{what}: outgoing messages not stored exactly once (msg_id: count)")
    return {"incoming": len(inc), "outgoing": len(out)}


class FaultTest(JsonlTest):
    """JsonlTest with stanzad's account connected through a FaultProxy (self.proxy) and
    quick dead-link detection (ping_interval = ping_timeout = 2 s)."""

    PING_INTERVAL = 2
    PING_TIMEOUT = 2

    def audit_replay(self, d: "Stanzad", traffic: "Traffic") -> None:
        """A front end that attaches now and replays everything sees each message once."""
        audit = self.client(d, hello="audit", since=0)
        audit.wait_replay(timeout=20)
        count_replayed(self, audit, incoming_bodies=traffic.in_body.values(),
                       outgoing_ids=traffic.out_ids)

    def fault_proxy(self, prosody: Optional[Prosody] = None) -> Any:
        from faultproxy import FaultProxy
        proxy = FaultProxy((prosody or self.prosody).port)
        self.addCleanup(proxy.close)
        return proxy

    def proxied_account(self, proxy: Any, name: str = "home", user: str = "alice",
                        **extra: Any) -> dict:
        acct = self.account(name, user, **extra)
        acct["port"] = proxy.port  # host stays 127.0.0.1; TLS checks the JID's domain
        return acct

    def start_fault_daemon(self, proxy: Any = None, name: str = "stanzad",
                           online: bool = True, **daemon: Any) -> Stanzad:
        """stanzad with alice as "home" (through `proxy` when given) and the fast
        dead-link settings; `daemon` overrides [daemon] keys."""
        daemon.setdefault("ping_interval", self.PING_INTERVAL)
        daemon.setdefault("ping_timeout", self.PING_TIMEOUT)
        acct = (self.proxied_account(proxy) if proxy is not None
                else self.account("home", "alice"))
        d = self.start_daemon([acct], name=name, online=online, **daemon)
        return d

    def bob_peer(self) -> Peer:
        bob = self.peer("bob")
        bob.answer_receipts()
        return bob
