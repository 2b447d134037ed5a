"""Issue 18, real peers: the fault proxy resets stanzad's connection to jabberd2 2.7 (no
XEP-0198 v3, no MAM) 5 times while 100 messages go each way at 5 a second, every message
counted by id (harness.Traffic).

Without stream management nothing can be resumed: each reset ends the session at the
server, stanzad binds a new one and resends every message still `sent` (not covered by the
answer to an acknowledging ping) with the same origin-id. What bob sends to alice while she
has no session goes to jabberd2's offline storage and comes at her next initial presence.

Counting: bob counts alice's messages by XEP-0359 origin-id (all 100 distinct; a resent
copy with the same origin-id is reported as bob_raw_duplicates) and answers no receipts,
so every outgoing message must reach `acked` through the ping answers; the JSON front end
must show each of bob's 100 exactly once; a replay from 0 shows each message once too.
Copies are explained, not just tolerated: a message may reach bob once more for each
broken session that left it `sent` and not `acked` (read from the front end's events in
seq order, jabberd2.copies_allowed); any other copy fails. Incoming, the one exception
(docs/reliability.md, "Servers with fewer extensions"): a message of bob's in flight at a
reset (sent after the last one shown, before jabberd2's sm ended alice's session) may be
lost by jabberd2 itself; it is reported, stanzad must never have read it (its wire log,
log level trace), and jabberd2 neither stored it offline nor bounced it.

A second test sends a message while a new session is starting (bound, disco#info answers
still to come; the proxy delays every chunk to make that window certain): it must reach
bob once, not once more when the start completes.
Run alone: /usr/bin/python3 tests/integration/test_fault_j2_resets.py
"""

import harness
from harness import (Fault, FaultTest, Traffic, count_replayed, rx_disconnected,
                     rx_online)
from jabberd2 import (InFlight, Jabberd2Mixin, check_but_lost, copies_allowed, j2_link_up,
                      received_ids, unexplained_copies, wait_complete_but)

N = 100
RATE = 5
RESETS = 5


class Jabberd2ResetsTest(Jabberd2Mixin, FaultTest):
    USERS = {"alice": "alice-Pw-1!", "bob": "bob-Pw-2!"}

    def test_100_each_way_through_5_resets(self):
        proxy = self.fault_proxy()
        d = self.start_fault_daemon(proxy, log_level="trace")  # the wire: what stanzad read
        bob = self.peer("bob")  # no receipts: `acked` must come from the ping answers
        c = self.client(d, hello="counter", replay=False)
        start = d.mark()
        resets = []

        t = Traffic(self, c, bob, n_out=N, n_in=N, tag="j2r", rate_out=RATE, rate_in=RATE)
        inflight = InFlight(self.jabberd2, t)

        def reset() -> bool:
            inflight.at()
            n = proxy.reset_all()  # False (tried again) if the link dropped on its own
            if not n:
                inflight.windows.pop()
                return False
            resets.append(n)
            inflight.ended()
            return True
        try:
            t.run([Fault(at=(k + 1) / (RESETS + 1), fire=reset,
                         ready=lambda: j2_link_up(d),
                         name=f"reset {k + 1}/{RESETS}") for k in range(RESETS)],
                  timeout=60)
            wait_complete_but(t, inflight.at_risk(), timeout=30)
            t.settle(2.0)  # absence check: a late duplicate (resend, offline) shows up here
        finally:
            allowed = copies_allowed(c.events)
            lost = t.missing()["front end never showed"]
            read = received_ids(d)
            t.report(incoming_lost_by_server=lost, lost_read_by_stanzad=sorted(read & set(lost)),
                     in_flight=inflight.report(),
                     copies_allowed=sum(allowed.values()), resets=len(resets),
                     connections=proxy.counter("accepted"),
                     disconnects=d.count(rx_disconnected("home"), since=start),
                     sessions=d.count(rx_online("home"), since=start),
                     offline_left=self.jabberd2.offline_count("alice"))
        self.assertEqual(len(resets), RESETS)
        self.assertEqual(self.jabberd2.offline_count("alice"), 0,
                         "left in jabberd2's offline queue")
        self.assertGreaterEqual(d.count(rx_disconnected("home"), since=start), RESETS)
        # Incoming: only what jabberd2 routed to alice's session between a reset and the
        # end of that session can be missing, and stanzad never read any of it; jabberd2
        # neither stored it offline nor bounced it to bob.
        self.assertEqual([s for s in lost if s not in inflight.at_risk()], [],
                         "incoming lost that was not in flight at a reset")
        self.assertEqual(sorted(read & set(lost)), [],
                         "incoming messages stanzad read from the stream but never showed")
        self.assertEqual([m for m in bob.received(lambda m: m.type == "error")], [],
                         "errors bounced to bob")
        check_but_lost(self, t, lost)
        self.assertEqual(unexplained_copies(t.bob_seen, allowed), {},
                         "copies at bob (got, allowed) of messages that were not left "
                         "unacknowledged by a broken session")
        audit = self.client(d, hello="audit", since=0)
        audit.wait_replay(timeout=20)
        count_replayed(self, audit, outgoing_ids=t.out_ids,
                       incoming_bodies=[t.in_body[s] for s in t.in_ids if s not in lost])

    def test_message_sent_while_the_new_session_starts(self):
        """A message the front end sends after the new session is bound but before its
        start has completed (the disco#info answers that decide what to use) goes out on
        that session at once; when the start completes, only what earlier sessions left
        unacknowledged is sent again, not this one. The proxy delays every chunk by
        DELAY s after a reset, so the send lands inside that window for certain."""
        DELAY = 0.1
        proxy = self.fault_proxy()
        d = self.start_fault_daemon(proxy)
        bob = self.peer("bob")
        c = self.client(d, hello="writer", replay=False)
        mark, events = d.mark(), c.mark()
        proxy.delay(DELAY)
        self.assertEqual(proxy.reset_all(), 1)
        d.wait_for(rx_online("home"), 20, since=mark)   # bound; disco#info still to come
        c.ok("send", account="home", to="bob@localhost", body="in the window",
             client_id="window-1")
        # The start is complete once the account's state is published a second time (with
        # its capabilities), in the same turn as the resend of what earlier sessions left.
        c.wait_event("account-state", 20, since=events, nth=2, state="online")
        c.ok("send", account="home", to="bob@localhost", body="after the start",
             client_id="window-2")
        bob.wait_message(origin_id="window-2", timeout=20)  # bob gets them in order
        c.wait_event("message-state", 20, msg_id="window-1", state="acked")
        copies = len(bob.received(lambda m: m.origin_id == "window-1"))
        harness._say("", "FAULT-RESULT " + harness.json.dumps(
            {"tag": "j2-window", "copies_at_bob": copies, "delay": DELAY}))
        self.assertEqual(copies, 1, "a message sent on the new session was sent again "
                                    "when the session's start completed")


if __name__ == "__main__":
    harness.main()
