"""Issue 4, fault 3: Prosody itself is restarted (SIGTERM, start again on the same port and
data) while 1000 messages go each way. Prosody forgets its XEP-0198 sessions, so stanzad
cannot resume: it must bind a new session, resend what the old one had not acknowledged
(same origin-ids) and fetch from the archive (MAM) what bob sent while alice was away.
Nothing is lost, nothing is shown twice to a front end.

Set-up as in test_fault_resets.py: account "home" (alice) through a FaultProxy, bob
directly (answers receipts), one JSON client sends and counts (harness.Traffic).

The restart, at 40 % of the run:
1. bob pauses and syncs (a ping round trip to the server): everything bob sent so far has
   been processed by Prosody (routed to alice's session, archived).
2. proxy.refuse(True): alice cannot come back before we let her, so the gap is certain.
3. Prosody stop (SIGTERM: it closes every stream) and start on the same port.
4. bob reconnects (new session; his offline messages are delivered at his presence) and
   resumes sending: these go to alice's offline storage and archive while she is away.
5. at 55 %: proxy.refuse(False); stanzad gets in on its next retry, cannot resume
   (the server restarted), binds a new session and catches up from the archive.
alice keeps sending through all of it: the `send`s are accepted (queued) while she is
offline and must all reach bob, each acked.

Counts as in test_fault_resets.py: bob by origin-id (distinct = 1000; copies with the same
origin-id, e.g. a message Prosody routed before the restart but had not acknowledged,
reported as bob_raw_duplicates), the front end by body (each exactly once), and once more
in a replay from 0.
Run alone: /usr/bin/python3 tests/integration/test_fault_prosody_restart.py
"""

import time

import harness
from harness import (Fault, FaultTest, Traffic, daemon_link_up,
                     rx_catch_up, rx_disconnected, rx_resume_failed, rx_resumed,
                     rx_session_up, rx_sm_enabled)

N = 1000    # messages each way
RATE = 110  # per second, each way


class FaultProsodyRestartTest(FaultTest):
    def test_1000_each_way_through_a_server_restart(self):
        proxy = self.fault_proxy()
        d = self.start_fault_daemon(proxy)
        d.wait_for(rx_session_up("home"), 10)
        bob = self.bob_peer()
        c = self.client(d, hello="counter", replay=False)
        start = d.mark()
        restart: dict = {}
        t = Traffic(self, c, bob, n_out=N, n_in=N, tag="rs", rate_out=RATE, rate_in=RATE)

        def restart_prosody() -> None:
            restart["bob_sent_before"] = t.sender.pause()
            bob.sync()  # Prosody has processed everything bob sent so far
            proxy.refuse(True)
            restart["mark"] = d.mark()
            t0 = time.monotonic()
            self.prosody.stop()
            self.prosody.start()
            restart["server_down_seconds"] = round(time.monotonic() - t0, 2)
            bob.reconnect()
            t.sender.resume()

        def bob_sent_while_alice_away() -> bool:
            # bob has sent a few dozen messages since the restart, and stanzad noticed
            # the restart (it is retrying against a refusing proxy).
            return (t.sender.sent >= restart["bob_sent_before"] + 50
                    and d.index(rx_disconnected("home"), since=restart["mark"]) is not None)

        def let_alice_in() -> None:
            restart["bob_sent_while_away"] = t.sender.sent - restart["bob_sent_before"]
            restart["lift_mark"] = d.mark()
            proxy.refuse(False)

        try:
            t.run([Fault(at=0.4, fire=restart_prosody, ready=lambda: daemon_link_up(d),
                         name="restart prosody"),
                   Fault(at=0.55, fire=let_alice_in, ready=bob_sent_while_alice_away,
                         name="let alice in")],
                  timeout=40)
            t.wait_complete(timeout=30)
            t.wait_catch_up(d, since=start, timeout=15)
            t.settle(2.0)  # absence check: a late duplicate (resend, MAM) shows up here
        finally:
            catch_up = [int(m.group(1)) for m in d.matches(rx_catch_up("home"), since=start)]
            t.report(connections=proxy.counter("accepted"),
                     refused=proxy.counter("refused"),
                     disconnects=d.count(rx_disconnected("home"), since=start),
                     resumed=d.count(rx_resumed("home"), since=start),
                     resume_failed=d.count(rx_resume_failed("home"), since=start),
                     catch_up=catch_up, **restart)

        # stanzad saw the server go and came back with a new session (resuming one the
        # restarted server never heard of cannot succeed).
        d.wait_for(rx_disconnected("home"), 1, since=restart["mark"])
        d.wait_for(rx_sm_enabled("home"), 1, since=restart["lift_mark"])
        self.assertEqual(d.matches(rx_resumed("home"), since=restart["mark"]), [],
                         "resumed a session that the restarted server cannot have")
        t.check()

        self.audit_replay(d, t)


if __name__ == "__main__":
    harness.main()
