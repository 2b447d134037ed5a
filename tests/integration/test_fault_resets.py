"""Issue 4, fault 1: the TCP connection is reset (RST both ways) 10 times while 1000
messages go each way. Nothing is lost, nothing is shown twice to a front end.

Set-up: stanzad's account "home" (alice) reaches Prosody through a FaultProxy; bob is a
slixmpp peer connected to Prosody directly and answers XEP-0184 receipt requests; one JSON
client ("counter", live events only) both sends and counts.

Counting (harness.Traffic):
- alice -> bob: 1000 `send` requests, pipelined (at most 32 without a reply) and paced,
  client_id "rst-a2b-NNNN". Every one must get an ok reply, reach `acked`, have exactly one
  outgoing `message` event at the front end, and reach bob: bob's copies are counted by
  XEP-0359 origin-id (distinct ids must be all 1000; a resent copy with the same origin-id
  is allowed and reported as bob_raw_duplicates; a copy without our origin-id fails).
- bob -> alice: 1000 messages to alice's bare JID, paced, body "b2a NNNN rst". The front end
  must show every body as an incoming `message` event exactly once (counted by body; the
  msg_ids of any duplicate are printed).
- The 10 resets are spread over the run by progress (messages sent both ways); each waits
  until the daemon has a working stream again (resumed or a new session), so every reset
  hits a live, stream-managed connection.

- Then a second front end replays the whole store from 0: each message once there too.

The counts are printed as one `FAULT-RESULT {...}` line for docs/reliability.md.
Run alone: /usr/bin/python3 tests/integration/test_fault_resets.py
"""

import harness
from harness import (Fault, FaultTest, Traffic, daemon_link_up,
                     rx_disconnected, rx_resume_failed, rx_resumed, rx_session_up)

N = 1000            # messages each way
RESETS = 10
RATE = 110          # messages per second, each way: ~9 s of sending plus the reconnects


class FaultResetsTest(FaultTest):
    def test_1000_each_way_through_10_resets(self):
        proxy = self.fault_proxy()
        d = self.start_fault_daemon(proxy)
        d.wait_for(rx_session_up("home"), 10)
        bob = self.bob_peer()
        c = self.client(d, hello="counter", replay=False)
        start = d.mark()

        def ready() -> bool:
            # Break a working link, not one still negotiating: the daemon's last word is
            # that its stream is up (resumed, or a new session with stream management).
            return daemon_link_up(d, "home")

        resets = []

        def reset() -> bool:
            # False (retried) if the connection dropped on its own just before.
            n = proxy.reset_all()
            if n:
                resets.append(n)
            return n >= 1

        t = Traffic(self, c, bob, n_out=N, n_in=N, tag="rst", rate_out=RATE, rate_in=RATE)
        try:
            t.run([Fault(at=(k + 1) / (RESETS + 1), fire=reset, ready=ready,
                         name=f"reset {k + 1}/{RESETS}") for k in range(RESETS)],
                  timeout=45)
            t.wait_complete(timeout=30)
            t.wait_catch_up(d, since=start, timeout=15)
            t.settle(2.0)  # absence check: a late duplicate (resend, MAM) shows up here
        finally:
            t.report(resets=len(resets), connections=proxy.counter("accepted"),
                     disconnects=d.count(rx_disconnected("home"), since=start),
                     resumed=d.count(rx_resumed("home"), since=start),
                     resume_failed=d.count(rx_resume_failed("home"), since=start),
                     receipts_sent_by_bob=bob.receipts_sent)
        self.assertEqual(len(resets), RESETS)
        # Each reset was noticed (a reset during a reconnection may add more).
        self.assertGreaterEqual(d.count(rx_disconnected("home"), since=start), RESETS)
        t.check()

        # A front end that attaches now and replays everything sees each message once.
        self.audit_replay(d, t)

if __name__ == "__main__":
    harness.main()
