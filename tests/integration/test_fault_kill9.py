"""Issue 4, fault 4: `kill -9` of stanzad while a front end is sending 500 messages, then a
restart. Every message that got an ok reply ("accepted": on disk) reaches bob; after the
restart the front end sends again, with the same client_id, every message it has no reply
for (what a careful front end does), so all 500 must reach bob, each under its own
origin-id; and no front end ever sees a message twice with the same msg_id.

Counting:
- writer (JSON client): `send` requests pipelined (at most 32 without a reply), client_id
  "k9-NNNN", body "k9 NNNN". After the 250th ok reply, SIGKILL at once; then the replies
  still in the socket are read to EOF (written before the kill, so they count as ok).
  ok_before_kill = the ids with an ok reply; unanswered = sent without a reply (each may or
  may not have been committed); the rest were never sent.
- restart (same store), a new writer sends every id without an ok again: a committed one
  must come back `"duplicate": true` with the same msg_id; the others are accepted now.
- bob counts by XEP-0359 origin-id: every ok_before_kill id first (the contract), then all
  500; a second copy with the same origin-id (a resend after the kill of one the server had
  already received) is allowed and reported as bob_raw_duplicates; a copy without our
  origin-id or with another body fails.
- an audit client replays the store from 0: exactly one outgoing `message` event and one
  `accepted` state per msg_id, and every msg_id reaches `acked`. A 2 s window after
  everything arrived catches late duplicates.
- last: the restarted daemon resumed the old XEP-0198 session (its state is in the store
  and Prosody still holds the session), logged as `resumed the previous session`.
Run alone: /usr/bin/python3 tests/integration/test_fault_kill9.py
"""

import time

import harness
from harness import FaultTest, count_replayed, rx_session_up

N = 500
KILL_AFTER = 250   # ok replies
WINDOW = 32        # requests in flight


class FaultKill9Test(FaultTest):
    def test_kill9_while_sending_500(self):
        bob = self.bob_peer()
        d = self.start_fault_daemon()
        d.wait_for(rx_session_up("home"), 10)
        ids = [f"k9-{i:04d}" for i in range(N)]
        body = {mid: f"k9 {i:04d}" for i, mid in enumerate(ids)}

        # 1. Pipelined sends; SIGKILL right after the 250th ok reply.
        w = self.client(d, hello="writer", replay=False)
        request_of: dict = {}
        replies: dict = {}
        nxt = 0
        deadline = time.monotonic() + 30
        while sum(1 for r in replies.values() if r.get("ok")) < KILL_AFTER:
            while nxt < N and len(request_of) - len(replies) < WINDOW:
                request_of[w.submit("send", account="home", to="bob@localhost",
                                    body=body[ids[nxt]], client_id=ids[nxt])] = ids[nxt]
                nxt += 1
            w.read_some(0.05)
            for r in w.take_replies():
                replies[request_of[r["id"]]] = r
            self.assertLess(time.monotonic(), deadline, f"only {len(replies)} replies")
        d.kill()
        # Replies the daemon wrote before it died are still in our socket: read to EOF.
        w.wait_eof(timeout=5)
        for r in w.take_replies():
            replies[request_of[r["id"]]] = r
        self.assertEqual([r for r in replies.values() if not r.get("ok")], [])
        ok_before = [m for m in ids if m in replies]
        unanswered = [m for m in ids[:nxt] if m not in replies]
        self.assertLess(len(ok_before), N, "the kill came too late to test anything")
        harness._say("[kill9] ", f"killed after {len(ok_before)} ok replies; "
                                 f"{len(unanswered)} sent without a reply; "
                                 f"{N - nxt} never sent")

        # 2. Restart on the same store; the front end sends again what it has no reply for.
        mark_bob = bob.message_mark()
        d2 = self.start_fault_daemon()
        d2.wait_for(rx_session_up("home"), 15)
        w2 = self.client(d2, hello="writer2", replay=False)
        duplicates = []
        for mid in ids:
            if mid in replies:
                continue
            r = w2.ok("send", account="home", to="bob@localhost", body=body[mid],
                      client_id=mid)
            self.assertEqual(r["msg_id"], mid, r)
            if r.get("duplicate"):
                duplicates.append(mid)
        # Only a message sent before the kill can have been committed before it.
        self.assertLessEqual(set(duplicates), set(unanswered),
                             "duplicate: true for a message never sent before the kill")

        # 3. bob gets every accepted message (first the ones accepted before the kill).
        def seen() -> dict:
            counts: dict = {}
            for m in bob.received(lambda m: (m.body or "").startswith("k9 ")):
                if m.origin_id in body and body[m.origin_id] == m.body:
                    counts[m.origin_id] = counts.get(m.origin_id, 0) + 1
                else:
                    self.fail(f"bob got one of ours without its origin-id: {m!r}")
            return counts

        try:
            harness.poll_until(lambda: all(m in seen() for m in ok_before), 30,
                               "bob to receive every message accepted before the kill",
                               lambda: f"missing: {[m for m in ok_before if m not in seen()][:20]}")
            harness.poll_until(lambda: len(seen()) == N, 30, "bob to receive all 500",
                               lambda: f"missing: {[m for m in ids if m not in seen()][:20]}")
        finally:
            counts = seen()
            harness._say("", "FAULT-RESULT " + harness.json.dumps({
                "tag": "kill9", "ok_before_kill": len(ok_before),
                "unanswered_at_kill": len(unanswered), "never_sent": N - nxt,
                "duplicate_replies_after_restart": len(duplicates),
                "bob_distinct": len(counts), "bob_raw": sum(counts.values()),
                "bob_raw_duplicates": sum(n - 1 for n in counts.values()),
                "bob_after_restart": len(bob.received(since=mark_bob)),
                "resumed": d2.count(harness.rx_resumed("home")),
                "resume_failed": d2.count(harness.rx_resume_failed("home"))}))

        # 4. The front end's view, replayed from 0: each message once, each acked.
        audit = self.client(d2, hello="audit", since=0)
        audit.wait_replay(timeout=20)

        ack_states = ({"acked", "delivered"} if harness.Traffic.DELIVERED_IMPLIES_ACKED
                      else {"acked"})

        def acked() -> set:
            return {e["msg_id"] for e in audit.find_events("message-state")
                    if e.get("state") in ack_states}
        try:
            audit.wait_until(lambda: acked() >= set(ids), 30,
                             "every message to reach `acked`")
        except AssertionError:
            missing = [m for m in ids if m not in acked()]
            states = {m: [e["state"] for e in audit.find_events("message-state", msg_id=m)]
                      for m in missing[:5]}
            raise AssertionError(f"{len(missing)} messages never acked: {missing[:20]}; "
                                 f"their state events: {states}") from None
        end = time.monotonic() + 2.0  # absence check: late duplicates (resends)
        while time.monotonic() < end:
            audit.read_some(end - time.monotonic())
        count_replayed(self, audit, outgoing_ids=ids, what="replay after kill -9")
        accepted: dict = {}
        for e in audit.find_events("message-state", state="accepted"):
            accepted[e["msg_id"]] = accepted.get(e["msg_id"], 0) + 1
        self.assertEqual({m: accepted.get(m, 0) for m in ids if accepted.get(m, 0) != 1}, {},
                         "`accepted` state events per msg_id (must be exactly 1)")
        self.assertEqual(len(seen()), N)
        # Last, because the counts above are the contract and this is the means: the
        # stream-management state is kept in the store, so the restarted daemon resumes the
        # session Prosody still holds (hibernating for 60 s) instead of binding a new one.
        self.assertEqual(d2.count(harness.rx_resumed("home")), 1,
                         "after kill -9 the daemon did not resume the session the server "
                         "still held:\n" + d2.output()[-3000:])


if __name__ == "__main__":
    harness.main()
