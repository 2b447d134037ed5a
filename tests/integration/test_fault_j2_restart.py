"""Issue 18, real peers: jabberd2 2.7 (no XEP-0198 v3, no MAM) is restarted (SIGTERM to
c2s, sm and router; started again on the same ports and SQLite database) while 100
messages go each way at 5 a second, every message counted by id (harness.Traffic).

Without stream management stanzad cannot resume anything, and without an archive it
cannot fetch what it missed: what bob sends while alice has no session must come from
jabberd2's offline storage at her next initial presence. What stanzad sent that no ping
answer covered before the restart is sent again with the same origin-id.

The restart, at 40 % of the run:
1. bob pauses and syncs (a ping round trip to the server): jabberd2 has routed everything
   bob sent so far (bob is a plain client: what he would send into a stopping server is his
   own loss, not stanzad's).
2. proxy.refuse(True): alice cannot come back before we let her, so there is a gap.
3. jabberd2 stop (c2s, sm, router) and start, same database.
4. bob reconnects and resumes sending: these go to alice's offline storage.
5. once bob has sent 10 more and stanzad noticed the restart: bob pauses and syncs, and the
   offline queue must hold exactly what he sent meanwhile (read from jabberd2's database);
   bob resumes and proxy.refuse(False) lets alice in.
alice keeps sending through all of it: every `send` is accepted (queued) while she is
away and must reach bob and `acked` (bob answers no receipts: only ping answers ack).

Counts: bob by origin-id (all 100 distinct; a copy with the same origin-id reported as
bob_raw_duplicates), the front end by body (each of bob's 100 exactly once), a replay from
0 (each once), and jabberd2's offline queue empty at the end.
Run alone: /usr/bin/python3 tests/integration/test_fault_j2_restart.py
"""

import time

import harness
from harness import Fault, FaultTest, Traffic, rx_disconnected, rx_online
from jabberd2 import Jabberd2Mixin, copies_allowed, j2_link_up, unexplained_copies

N = 100
RATE = 5
AWAY = 10   # messages bob sends while alice is kept out


class Jabberd2RestartTest(Jabberd2Mixin, FaultTest):
    USERS = {"alice": "alice-Pw-1!", "bob": "bob-Pw-2!"}

    def test_100_each_way_through_a_server_restart(self):
        j2 = self.jabberd2
        proxy = self.fault_proxy()
        d = self.start_fault_daemon(proxy)
        bob = self.peer("bob")  # no receipts: `acked` must come from the ping answers
        c = self.client(d, hello="counter", replay=False)
        start = d.mark()
        restart: dict = {}
        t = Traffic(self, c, bob, n_out=N, n_in=N, tag="j2s", rate_out=RATE, rate_in=RATE)

        def restart_server() -> None:
            restart["bob_sent_before"] = t.sender.pause()
            bob.sync()  # jabberd2 has routed everything bob sent so far
            proxy.refuse(True)
            restart["mark"] = d.mark()
            t0 = time.monotonic()
            j2.stop()
            j2.start()
            restart["server_down_seconds"] = round(time.monotonic() - t0, 2)
            bob.reconnect()
            t.sender.resume()

        def bob_sent_while_alice_away() -> bool:
            return (t.sender.sent >= restart["bob_sent_before"] + AWAY
                    and d.index(rx_disconnected("home"), since=restart["mark"]) is not None)

        def let_alice_in() -> None:
            sent = t.sender.pause()
            bob.sync()  # the sm has stored everything bob sent
            restart["bob_sent_while_away"] = sent - restart["bob_sent_before"]
            restart["offline_queued"] = j2.offline_count("alice")
            t.sender.resume()
            restart["lift_mark"] = d.mark()
            proxy.refuse(False)

        try:
            t.run([Fault(at=0.4, fire=restart_server, ready=lambda: j2_link_up(d),
                         name="restart jabberd2"),
                   Fault(at=0.45, fire=let_alice_in, ready=bob_sent_while_alice_away,
                         name="let alice in")],
                  timeout=70)
            t.wait_complete(timeout=30)
            t.settle(2.0)  # absence check: a late duplicate (resend, offline) shows up here
        finally:
            allowed = copies_allowed(c.events)
            t.report(copies_allowed=sum(allowed.values()),
                     connections=proxy.counter("accepted"), refused=proxy.counter("refused"),
                     disconnects=d.count(rx_disconnected("home"), since=start),
                     sessions=d.count(rx_online("home"), since=start),
                     offline_left=j2.offline_count("alice"), **restart)

        # stanzad saw the server go and came back with a new session.
        d.wait_for(rx_disconnected("home"), 1, since=restart["mark"])
        d.wait_for(rx_online("home"), 1, since=restart["lift_mark"])
        # What bob sent while alice was away was in jabberd2's offline storage, all of it,
        # and has been handed over.
        self.assertGreaterEqual(restart["bob_sent_while_away"], AWAY)
        self.assertEqual(restart["offline_queued"], restart["bob_sent_while_away"],
                         "jabberd2's offline queue for alice vs what bob sent while she was "
                         "away")
        self.assertEqual(j2.offline_count("alice"), 0, "left in jabberd2's offline queue")
        t.check()
        self.assertEqual(unexplained_copies(t.bob_seen, allowed), {},
                         "copies at bob (got, allowed) of messages that were not left "
                         "unacknowledged by a broken session")
        self.audit_replay(d, t)


if __name__ == "__main__":
    harness.main()
