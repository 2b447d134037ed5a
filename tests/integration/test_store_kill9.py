"""The store survives SIGKILL: a message is "accepted" only once it is committed, so what
was accepted while the server was down is sent after a kill -9 and a restart, each exactly
once (counted by origin-id at the receiving peer); the event log from before the kill is
replayed after it; messages received before the kill are still there.
"""

import harness
from harness import JsonlTest

K = 5


class Kill9Test(JsonlTest):
    def test_accepted_while_offline_survives_kill9(self):
        self.prosody.stop()  # the account cannot connect: everything stays queued
        d = self.start_daemon(online=False)
        c = self.client(d, hello="writer", replay=False)

        # Presence is kept for the next login; the other ops need the stream and say so.
        self.assertTrue(c.request("presence", account="home", show="away")["ok"])
        for op, fields in [("raw", {"xml": "<message to='bob@localhost'><body>x</body>"
                                           "</message>"}),
                           ("subscribe", {"jid": "carol@localhost"}),
                           ("approve", {"jid": "carol@localhost"}),
                           ("deny", {"jid": "carol@localhost"})]:
            with self.subTest(op):
                r = c.request(op, account="home", **fields)
                self.assertEqual(r.get("error", {}).get("code"), "not-online", r)

        ids = [f"k9-{i}" for i in range(K)]
        for i, mid in enumerate(ids):
            r = c.ok("send", account="home", to="bob@localhost", body=f"kill9 {i}",
                     client_id=mid)
            self.assertEqual(r["msg_id"], mid)
            self.assertFalse(r.get("duplicate", False), r)
        accepted = {mid: c.wait_event("message-state", msg_id=mid, state="accepted")
                    for mid in ids}
        outgoing = {mid: c.wait_event("message", msg_id=mid, outgoing=True) for mid in ids}
        self.assertEqual(c.find_events("message-state", state="sent"), [],
                         "sent while the server is down?")
        before_kill = max(e["seq"] for e in c.events)

        d.kill()  # SIGKILL right after the replies: "accepted" must mean "on disk"
        c.wait_eof()
        self.prosody.start()
        bob = self.peer("bob")  # online before the daemon comes back
        d2 = self.start_daemon()

        for mid in ids:
            bob.wait_message(origin_id=mid, timeout=15)
        # Order kept, and each exactly once: a later marker proves no second copy follows.
        c2 = self.client(d2, hello="after", since=0)
        r = c2.ok("send", account="home", to="bob@localhost", body="kill9 marker",
                  client_id="k9-marker")
        bob.wait_message(origin_id="k9-marker")
        got = [m.origin_id for m in bob.received(lambda m: (m.origin_id or "")
                                                 .startswith("k9-"))]
        self.assertEqual(got, ids + ["k9-marker"], "lost, duplicated or reordered")
        for i, mid in enumerate(ids):
            self.assertEqual(bob.received(origin_id=mid)[0].body, f"kill9 {i}")

        # The replay from 0 has the events from before the kill, unchanged, and `sent`
        # after it.
        for mid in ids:
            self.assertEqual(c2.wait_event("message", msg_id=mid, outgoing=True),
                             outgoing[mid])
            self.assertEqual(c2.wait_event("message-state", msg_id=mid, state="accepted"),
                             accepted[mid])
            sent = c2.wait_event("message-state", msg_id=mid, state="sent")
            self.assertGreater(sent["seq"], before_kill)
        for mid in ids:
            self.assertEqual(len(c2.find_events("message-state", msg_id=mid,
                                                state="accepted")), 1)

        # Sending one of them again is a duplicate across the restart too.
        r = c2.request("send", account="home", to="bob@localhost", body="kill9 0",
                       client_id=ids[0])
        self.assertIs(r.get("duplicate"), True, r)

    def test_queued_while_disconnected_is_sent_on_reconnect(self):
        d = self.start_daemon()
        c = self.client(d, hello="writer", replay=False)
        mark = d.mark()
        self.prosody.stop()  # the daemon sees the stream close and retries with backoff
        c.wait_event(lambda e: e["event"] == "account-state" and e["state"] != "online")
        r = c.ok("send", account="home", to="bob@localhost", body="queued", client_id="q-1")
        c.wait_event("message-state", msg_id="q-1", state="accepted")
        self.assertEqual(c.find_events("message-state", msg_id="q-1", state="sent"), [])
        self.prosody.start()
        bob = self.peer("bob")
        self.wait_online(d, "home", timeout=20, since=mark)
        m = bob.wait_message(origin_id=r["msg_id"], timeout=10)
        self.assertEqual(m.body, "queued")
        c.wait_event("message-state", msg_id="q-1", state="sent")

    def test_received_before_kill9_are_replayed(self):
        d = self.start_daemon()
        full = self.wait_online(d, "home")
        watch = self.watcher(d)  # another name than the reader's below
        bob = self.peer("bob")
        for i in range(K):
            bob.send_message(full, f"before kill {i}", id=f"in-{i}")
        watch.wait_event("message", body=f"before kill {K - 1}")  # all K are committed
        d.kill()

        d2 = self.start_daemon()
        full2 = self.wait_online(d2, "home")
        c = self.client(d2)
        hello = c.hello("reader")
        self.assertEqual(hello["cursor"], 0)
        bob.send_message(full2, "after restart")
        marker = c.wait_event("message", body="after restart")
        before = c.events[:c.events.index(marker)]
        bodies = [e["body"] for e in before if e["event"] == "message"]
        self.assertEqual(bodies, [f"before kill {i}" for i in range(K)],
                         "lost, duplicated or reordered across kill -9")
        for e in before:
            if e["event"] == "message":  # stored before the kill: replayed, not live
                self.assertLessEqual(e["seq"], hello["last_seq"], e)


if __name__ == "__main__":
    harness.main()
