"""Issue 4, fault 5: stanzad is down (SIGTERM, a clean stop) while bob sends 200 messages to
alice's bare JID. When stanzad starts again, a front end sees all 200 as `message` events,
in bob's order, each once: Prosody holds them twice over (offline storage, delivered at
alice's presence, and the MAM archive that stanzad catches up from at start-up), and
stanzad must merge the two without losing or repeating one.

Counting: bob's messages have stanza id "oc-NNNN" and body "oc NNNN". The front end
("reader", a named client that has acked everything up to a marker message received before
the stop) attaches after the restart and gets what it has not confirmed: the 200, counted
by body, each exactly once and in bob's order, and nothing from before the stop again.
After the 200 have arrived, a fixed 3 s window catches a late duplicate (e.g. the offline
copies arriving after the archive's). Then a second client replays the store from 0: each
once there too.
Run alone: /usr/bin/python3 tests/integration/test_fault_offline_catchup.py
"""

import time

import harness
from harness import FaultTest, count_replayed, rx_catch_up, rx_session_up

N = 200


class FaultOfflineCatchupTest(FaultTest):
    def test_200_sent_while_down_arrive_once_in_order(self):
        d = self.start_fault_daemon()
        d.wait_for(rx_session_up("home"), 10)
        bob = self.bob_peer()
        reader = self.client(d, hello="reader")
        # A marker seen live: the daemon has an archive position, the reader a cursor.
        bob.send_message("alice@localhost", "oc before the stop", id="oc-before")
        marker = reader.wait_event("message", body="oc before the stop")
        reader.ack(marker["seq"])
        reader.close()
        self.assertEqual(d.stop(), 0)

        ids = [f"oc-{i:04d}" for i in range(N)]
        body = {mid: f"oc {i:04d}" for i, mid in enumerate(ids)}
        order = {body[mid]: i for i, mid in enumerate(ids)}
        bob.start_bulk("alice@localhost", [(m, body[m]) for m in ids], rate=400).wait(10)
        bob.sync()  # Prosody has stored all 200 (offline storage and archive)

        t0 = time.monotonic()
        d2 = self.start_fault_daemon()
        reader = self.client(d2, hello="reader")

        def ours() -> "list[dict]":
            return [e for e in reader.find_events("message")
                    if not e.get("outgoing") and e.get("body", "").startswith("oc ")]

        arrived = None
        try:
            reader.wait_until(lambda: {e["body"] for e in ours()} >= set(body.values()),
                              30, "all 200 messages")
            arrived = round(time.monotonic() - t0, 2)
            end = time.monotonic() + 3.0  # absence check: late duplicates
            while time.monotonic() < end:
                reader.read_some(end - time.monotonic())
        finally:
            got = [e["body"] for e in ours()]
            harness._say("", "FAULT-RESULT " + harness.json.dumps({
                "tag": "offline", "sent_while_down": N, "fe_events": len(got),
                "fe_distinct": len(set(got)), "fe_duplicates": len(got) - len(set(got)),
                "in_order": [order.get(b, -1) for b in got if b in order] == sorted(
                    order.get(b, -1) for b in got if b in order),
                "catch_up": [int(m.group(1)) for m in d2.matches(rx_catch_up("home"))],
                "seconds_to_all": arrived}))

        self.assertNotIn("oc before the stop", got, "replayed past the reader's cursor, "
                                                    "or received twice")
        counts = {b: got.count(b) for b in set(got)}
        self.assertEqual({b: n for b, n in counts.items() if n != 1}, {},
                         "shown more than once (body: count)")
        self.assertEqual([b for b in got if b not in order], [], "unexpected messages")
        self.assertEqual(got, [body[m] for m in ids], "not in bob's order")
        for e in ours():
            self.assertEqual(e["from"].split("/")[0], "bob@localhost", e)

        audit = self.client(d2, hello="audit", since=0)
        audit.wait_replay(timeout=20)
        count_replayed(self, audit, incoming_bodies=list(body.values()) +
                       ["oc before the stop"])


if __name__ == "__main__":
    harness.main()
