"""Issue 18, real peers: `kill -9` of stanzad while 100 messages go each way at 5 a second
through jabberd2 2.7 (no XEP-0198 v3, no MAM), then a restart on the same store; every
message counted by id (harness.Traffic).

The kill comes when the front end has seen a message reach `sent` and not yet `acked`
(its acknowledging ping is out): the restarted daemon cannot know whether jabberd2 got it
and sends it again with the same origin-id, as every message still `sent` in its store.
The front end behaves as a careful one does: it resends every `send` it has no reply for
with the same client_id (a committed one comes back `"duplicate": true`), and after the
restart it says hello under the same name with `since` = the last seq it saw, so it
continues where it was.

Incoming: the killed daemon's TCP connection closes with it; jabberd2 ends alice's
session, and what bob sends from then on waits in its offline storage until the restarted
daemon's initial presence. stanzad stays down until bob has sent 10 more.

Counts: bob by origin-id (all 100 distinct; a copy with the same origin-id is allowed
only for a message the killed daemon left unacknowledged, jabberd2.copies_allowed), every
message `acked` (bob answers no receipts), the front end (old and new connection
together) shows each of bob's messages exactly once and each outgoing one once; a replay
from 0 shows each once; jabberd2's offline queue is empty at the end. The one exception,
reported and explained (docs/reliability.md, "Servers with fewer extensions"): a message
of bob's in flight at the kill (sent after the last one shown, before jabberd2's sm ended
alice's session) may be lost by jabberd2, which has no way to learn that the client never
got it; the restarted daemon must never have read it (its wire log, log level trace),
and jabberd2 neither stored it offline nor bounced it.
Run alone: /usr/bin/python3 tests/integration/test_fault_j2_kill9.py
"""

import time

import harness
from harness import FaultTest, Traffic, count_replayed, poll_until, rx_disconnected
from jabberd2 import (InFlight, Jabberd2Mixin, check_but_lost, copies_allowed, received_ids,
                      unexplained_copies, wait_complete_but)

N = 100
RATE = 5
KILL_AT = 0.4  # progress of the run
DOWN = 10      # messages bob sends while stanzad is dead


def continue_on(t: Traffic, client: "harness.JsonClient") -> int:
    """After a daemon restart: count on `client` from now on; every `send` with no reply
    is sent again with the same client_id. Returns how many were sent again."""
    answered = {rid: mid for rid, mid in t.request_of.items() if mid in t.replies}
    again = [mid for rid, mid in t.request_of.items() if mid not in t.replies]
    t.client = client
    t.request_of = {("before", rid): mid for rid, mid in answered.items()}
    for mid in again:
        rid = client.submit("send", account=t.account, to=t.to_bob, body=t.out_body[mid],
                            client_id=mid)
        t.request_of[rid] = mid
    t._event_scan = 0
    return len(again)


class Jabberd2Kill9Test(Jabberd2Mixin, FaultTest):
    USERS = {"alice": "alice-Pw-1!", "bob": "bob-Pw-2!"}

    def test_kill9_while_100_each_way(self):
        j2 = self.jabberd2
        d = self.start_fault_daemon(log_level="trace")  # the wire: what stanzad read
        bob = self.peer("bob")  # no receipts: `acked` must come from the ping answers
        c = self.client(d, hello="counter", replay=False)
        t = Traffic(self, c, bob, n_out=N, n_in=N, tag="j2k", rate_out=RATE, rate_in=RATE)
        inflight = InFlight(j2, t)
        info: dict = {}

        # 1. Traffic both ways until KILL_AT, then kill -9 while a message is `sent` and
        #    its acknowledging ping not yet answered.
        def unacked_sent() -> list:
            return [m for m in t.out_ids if t.states[m].get("sent") and not t.acked(m)]

        t.start()
        deadline = time.monotonic() + 30
        while not (t.progress() >= KILL_AT and unacked_sent()):
            t.step()
            self.assertLess(time.monotonic(), deadline, f"no moment to kill: {t.counts()}")
        info["sent_unacked_at_kill"] = unacked_sent()
        info["bob_sent_at_kill"] = t.sender.sent
        inflight.at()
        d.kill()
        c.wait_eof(timeout=5)  # what the daemon wrote before it died is still ours
        t._scan()
        last_seq = max((e.get("seq", 0) for e in c.events), default=0)
        info["shown_before_kill"] = len(t.in_events)
        info["replies_before_kill"] = len(t.replies)

        # 2. jabberd2 notices that alice's connection is gone; bob goes on sending.
        info["bob_sent_at_session_end"] = inflight.ended()
        poll_until(lambda: t.sender.sent >= info["bob_sent_at_kill"] + DOWN, 10,
                   f"bob to send {DOWN} messages while stanzad is dead")

        # 3. Restart on the same store; the front end continues where it was.
        d2 = self.start_fault_daemon(log_level="trace")
        c2 = self.client(d2, hello="counter", since=last_seq)
        info["sent_again"] = continue_on(t, c2)
        try:
            t.run([], timeout=90)
            wait_complete_but(t, inflight.at_risk(), timeout=30)
            t.settle(2.0)  # absence check: a late duplicate (resend, offline) shows up here
        finally:
            lost = t.missing()["front end never showed"]
            info["incoming_lost_by_server"] = lost
            info["lost_read_by_killed_daemon"] = sorted(received_ids(d) & set(lost))
            info["in_flight"] = inflight.report()
            allowed = copies_allowed(c.events + c2.events, killed_at=last_seq)
            info["copies_allowed"] = sum(allowed.values())
            info["offline_left"] = j2.offline_count("alice")
            info["disconnects"] = d2.count(rx_disconnected("home"))
            info["duplicate_replies"] = sum(1 for r in t.replies.values()
                                            if r.get("duplicate"))
            info["sent_unacked_at_kill"] = len(info["sent_unacked_at_kill"])
            t.report(**info)

        self.assertTrue(info["sent_unacked_at_kill"], "the kill found nothing to resend")
        self.assertEqual(info["offline_left"], 0, "left in jabberd2's offline queue")
        # Incoming: only what jabberd2 routed to alice's session between the kill and the
        # end of that session can be missing (written into the dead connection, or read by
        # the daemon a moment before it died: both reported); the restarted daemon read
        # none of it; jabberd2 neither stored it offline nor bounced it to bob.
        self.assertEqual([s for s in lost if s not in inflight.at_risk()], [],
                         "incoming lost that was not in flight at the kill")
        self.assertEqual(sorted(received_ids(d2) & set(lost)), [],
                         "incoming messages the restarted daemon read but never showed")
        self.assertEqual([m for m in bob.received(lambda m: m.type == "error")], [],
                         "errors bounced to bob")
        check_but_lost(self, t, lost)
        self.assertEqual(unexplained_copies(t.bob_seen, allowed), {},
                         "copies at bob (got, allowed) of messages that were not left "
                         "unacknowledged by the killed daemon")
        audit = self.client(d2, hello="audit", since=0)
        audit.wait_replay(timeout=20)
        count_replayed(self, audit, outgoing_ids=t.out_ids,
                       incoming_bodies=[t.in_body[s] for s in t.in_ids if s not in lost])


if __name__ == "__main__":
    harness.main()
