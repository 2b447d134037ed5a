"""Issue 18: a 20 s black hole against jabberd2 2.7 (no XEP-0198 v3, no MAM), 5 messages a
second each way, every message counted by id (harness.Traffic): every accepted outgoing
message reaches bob and reaches `acked` (acknowledged by ping, resent with its origin-id
after the reconnection). Incoming messages that jabberd2 wrote into the dead connection
are lost by the server itself (docs/reliability.md, "Servers with fewer extensions"):
they are reported, and only messages bob sent after the hole began, or in flight when it
began (sent in the second before), may be among them.
Run alone: /usr/bin/python3 tests/integration/test_fault_j2_hole.py
"""

import time

import harness
from harness import Fault, FaultTest, Traffic, rx_disconnected, rx_online
from jabberd2 import Jabberd2Mixin

N = 100
RATE = 5
HOLE = 20


class Jabberd2BlackholeTest(Jabberd2Mixin, FaultTest):
    USERS = {"alice": "alice-Pw-1!", "bob": "bob-Pw-2!"}

    def test_20s_black_hole(self):
        proxy = self.fault_proxy()
        d = self.start_fault_daemon(proxy, online=False)
        self.wait_online(d, "home", 20)
        bob = self.bob_peer()
        c = self.client(d, hello="counter", replay=False)
        hole: dict = {}

        def hole_on() -> None:
            hole["mark"] = d.mark()
            hole["since"] = time.monotonic()
            hole["in_sent"] = t.sender.sent if t.sender else 0
            proxy.blackhole(True)

        def hole_off() -> None:
            hole["seconds"] = round(time.monotonic() - hole["since"], 2)
            hole["lift_mark"] = d.mark()
            proxy.blackhole(False)

        t = Traffic(self, c, bob, n_out=N, n_in=N, tag="j2", rate_out=RATE, rate_in=RATE)
        t.run([Fault(at=0.2, fire=hole_on, name="black hole on"),
               Fault(at=0.2, fire=hole_off, name="black hole off",
                     ready=lambda: time.monotonic() - hole["since"] >= HOLE)], timeout=90)
        # Outgoing: every message at bob and acked (event-driven, with a deadline).
        deadline = time.monotonic() + 90
        while True:
            t.step(0.05)
            missing = t.missing()
            if not missing["bob never got"] and not missing["never acked"]:
                break
            self.assertLess(time.monotonic(), deadline, f"outgoing incomplete: {t.counts()}")
        d.wait_for(rx_online("home"), 1, since=hole["lift_mark"])
        t.settle(2.0)
        lost_in = missing["front end never showed"]
        t.report(hole_seconds=hole["seconds"], incoming_lost_by_server=len(lost_in),
                 disconnects=d.count(rx_disconnected("home"), since=hole["mark"]))
        self.assertGreaterEqual(hole["seconds"], HOLE)
        d.wait_for(rx_disconnected("home"), 1, since=hole["mark"])  # found by the ping timeout
        self.assertEqual([m for m in t.out_ids if m not in t.bob_seen], [])
        self.assertEqual([m for m in t.out_ids if not t.acked(m)], [])
        # Losses only among what was still on its way when the hole began: what bob sent once
        # it had begun, or in the second before (RATE messages). A message bob's client has
        # written is not yet through jabberd2 and the proxy, and jabberd2 loses what it writes
        # into the dead connection (seen: the last message sent 10 ms before the hole).
        early = [s for s in lost_in if t.in_ids.index(s) < hole["in_sent"] - RATE]
        self.assertEqual(early, [], "incoming lost that was sent before the black hole")
        dups = {b: len(es) for b, es in t.in_events.items() if len(es) > 1}
        self.assertEqual(dups, {}, "incoming shown more than once")


if __name__ == "__main__":
    harness.main()
