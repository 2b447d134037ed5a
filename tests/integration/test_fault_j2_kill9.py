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

Counts: bob by origin-id (all 100 distinct; copies with the same origin-id reported as
bob_raw_duplicates), every message `acked` (bob answers no receipts), the front end (old
and new connection together) shows each of bob's 100 exactly once and each outgoing one
once; a replay from 0 shows each once; jabberd2's offline queue is empty at the end.
Run alone: /usr/bin/python3 tests/integration/test_fault_j2_kill9.py
"""

import time

import harness
from harness import FaultTest, Traffic, poll_until, rx_disconnected
from jabberd2 import Jabberd2Mixin, copies_allowed, unexplained_copies

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
        d = self.start_fault_daemon()
        bob = self.peer("bob")  # no receipts: `acked` must come from the ping answers
        c = self.client(d, hello="counter", replay=False)
        t = Traffic(self, c, bob, n_out=N, n_in=N, tag="j2k", rate_out=RATE, rate_in=RATE)
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
        sm_log_at_kill = len(j2.log_text("sm"))
        d.kill()
        c.wait_eof(timeout=5)  # what the daemon wrote before it died is still ours
        t._scan()
        last_seq = max((e.get("seq", 0) for e in c.events), default=0)
        info["shown_before_kill"] = len(t.in_events)
        info["replies_before_kill"] = len(t.replies)

        # 2. jabberd2 notices that alice's connection is gone; bob goes on sending.
        poll_until(lambda: "session ended: jid=alice@localhost/stanzad"
                   in j2.log_text("sm")[sm_log_at_kill:], 10,
                   "jabberd2's sm to end alice's session")
        info["bob_sent_at_session_end"] = t.sender.sent
        poll_until(lambda: t.sender.sent >= info["bob_sent_at_kill"] + DOWN, 10,
                   f"bob to send {DOWN} messages while stanzad is dead")

        # 3. Restart on the same store; the front end continues where it was.
        d2 = self.start_fault_daemon()
        c2 = self.client(d2, hello="counter", since=last_seq)
        info["sent_again"] = continue_on(t, c2)
        try:
            t.run([], timeout=90)
            t.wait_complete(timeout=30)
            t.settle(2.0)  # absence check: a late duplicate (resend, offline) shows up here
        finally:
            allowed = copies_allowed(c.events + c2.events, killed_at=last_seq)
            info["copies_allowed"] = sum(allowed.values())
            info["offline_left"] = j2.offline_count("alice")
            info["disconnects"] = d2.count(rx_disconnected("home"))
            info["duplicate_replies"] = sum(1 for r in t.replies.values()
                                            if r.get("duplicate"))
            t.report(**{k: (len(v) if isinstance(v, list) else v) for k, v in info.items()})

        self.assertTrue(info["sent_unacked_at_kill"], "the kill found nothing to resend")
        self.assertEqual(info["offline_left"], 0, "left in jabberd2's offline queue")
        t.check()
        self.assertEqual(unexplained_copies(t.bob_seen, allowed), {},
                         "copies at bob (got, allowed) of messages that were not left "
                         "unacknowledged by the killed daemon")
        self.audit_replay(d2, t)


if __name__ == "__main__":
    harness.main()
