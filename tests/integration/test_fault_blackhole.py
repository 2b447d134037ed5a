"""Issue 4, fault 2: a black hole. The link goes silent (bytes vanish both ways, nothing is
closed, no error) for longer than the dead-link timeout while 200 messages go each way:
stanzad must find out by itself (XEP-0198 ack request / XEP-0199 ping with a timeout), log a
disconnect, get through a reconnection attempt that also falls into the hole, and come
back. Nothing is lost, nothing is shown twice to a front end.

Set-up as in test_fault_resets.py (account through a FaultProxy, bob direct, answering
receipts; one JSON client sends and counts), with ping_interval = ping_timeout = 2 s.

Timeline, driven by progress (messages sent both ways) and by the daemon's log:
- at 30 %, once the daemon's stream is up: blackhole(True). The live connection goes
  silent; bob keeps sending (Prosody queues for alice's session), alice keeps sending
  (stanzad writes into the void; nothing is acked).
- the hole lifts only after stanzad has logged `disconnected` (it noticed the dead link)
  AND has opened a new connection that fell into the hole too (proxy counter
  `blackholed`): that attempt hangs in TLS, so stanzad must give up on it by itself. New
  connections after the lift are forwarded; the dead ones stay dead.
- then stanzad must come back (resume, or a new session plus archive catch-up) and
  everything must arrive.

Counting is harness.Traffic's (see test_fault_resets.py): alice -> bob by origin-id at bob
(distinct = 200, copies with the same origin-id reported), each acked, one outgoing event
each; bob -> alice by body at the front end, exactly once each; and once more in a replay
from 0. The hole's duration must exceed ping_interval + ping_timeout.
Run alone: /usr/bin/python3 tests/integration/test_fault_blackhole.py
"""

import time

import harness
from harness import (Fault, FaultTest, Traffic, daemon_link_up,
                     rx_connecting, rx_disconnected, rx_resume_failed, rx_resumed,
                     rx_session_up)

N = 200     # messages each way
RATE = 25   # per second, each way: ~8 s of sending, the hole (>= 4 s) in the middle


class FaultBlackholeTest(FaultTest):
    def test_200_each_way_through_a_black_hole(self):
        proxy = self.fault_proxy()
        d = self.start_fault_daemon(proxy)
        d.wait_for(rx_session_up("home"), 10)
        bob = self.bob_peer()
        c = self.client(d, hello="counter", replay=False)
        start = d.mark()
        hole: dict = {}

        def hole_on() -> None:
            hole["mark"] = d.mark()
            hole["blackholed"] = proxy.counter("blackholed")
            hole["since"] = time.monotonic()
            proxy.blackhole(True)

        def hole_can_lift() -> bool:
            # The hole outlasts the dead-link timeout (by a second), stanzad declared the
            # link dead, and has since tried a new connection that went into the hole too.
            if time.monotonic() - hole["since"] < self.PING_INTERVAL + self.PING_TIMEOUT + 1:
                return False
            i = d.index(rx_disconnected("home"), since=hole["mark"])
            return (i is not None and d.index(rx_connecting("home"), since=i) is not None
                    and proxy.counter("blackholed") > hole["blackholed"])

        def hole_off() -> None:
            hole["seconds"] = round(time.monotonic() - hole["since"], 2)
            hole["lift_mark"] = d.mark()
            hole["lift_wall"] = time.time()
            proxy.blackhole(False)

        t = Traffic(self, c, bob, n_out=N, n_in=N, tag="bh", rate_out=RATE, rate_in=RATE)
        try:
            t.run([Fault(at=0.3, fire=hole_on, ready=lambda: daemon_link_up(d, "home"),
                         name="black hole on"),
                   Fault(at=0.3, fire=hole_off, ready=hole_can_lift, name="black hole off")],
                  timeout=40)
            # Generous: the attempt that fell into the hole hangs until stanzad's own
            # login timeout gives up on it (it has no server to time out against).
            t.wait_complete(timeout=45)
            t.wait_catch_up(d, since=start, timeout=15)
            t.settle(2.0)  # absence check: a late duplicate (resend, MAM) shows up here
        finally:
            reasons = [m.group(0) for m in d.matches(rx_disconnected("home"), since=start)]
            up = d.index(rx_session_up("home"), since=hole.get("lift_mark", len(d.lines)))
            back = (round(harness.log_line_time(d.lines[up]) - hole["lift_wall"], 2)
                    if up is not None else None)
            t.report(hole_seconds=hole.get("seconds"), back_after_lift_seconds=back,
                     connections=proxy.counter("accepted"),
                     blackholed_connections=proxy.counter("blackholed"),
                     dropped_up=proxy.counter("dropped_up"),
                     dropped_down=proxy.counter("dropped_down"),
                     disconnects=reasons,
                     resumed=d.count(rx_resumed("home"), since=start),
                     resume_failed=d.count(rx_resume_failed("home"), since=start))

        self.assertGreater(hole["seconds"], self.PING_INTERVAL + self.PING_TIMEOUT,
                           "the black hole must outlast the dead-link timeout")
        # Noticed by itself (nothing closed the connection), and came back after the lift.
        d.wait_for(rx_disconnected("home"), 1, since=hole["mark"])
        d.wait_for(rx_session_up("home"), 1, since=hole["lift_mark"])
        t.check()

        self.audit_replay(d, t)


if __name__ == "__main__":
    harness.main()
