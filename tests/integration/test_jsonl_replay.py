"""Replay and cursors on the JSON-lines socket: what arrives while no client is attached is
stored and replayed, in order, to each client name until that name confirms it with `ack`;
`since` replays from an explicit point and `"replay": false` skips the replay.

How "replayed" is told apart from "live": the hello reply's `last_seq` is the last stored
event at attach time; replayed events have seq <= last_seq. How "nothing more is replayed"
is shown without a fixed wait: the daemon sends the replay, oldest first, before live
events, so a live marker message from bob closes the window.
"""

import json
import sqlite3

import harness
from harness import JsonlTest

N = 20


class ReplayTest(JsonlTest):
    def marker(self, bob, full, c, text):
        """A live message from bob; returns its event (everything replayed came before)."""
        bob.send_message(full, text)
        return c.wait_event("message", body=text)

    def test_replay_ack_since_and_no_replay(self):
        d = self.start_daemon()
        full = self.wait_online(d, "home")
        bob = self.peer("bob")

        # N messages while the client name "replayer" is not attached. A watcher (live
        # events only, another name) tells when all N are stored.
        watch = self.watcher(d)
        ids = [f"r-{i:02d}" for i in range(N)]
        for i, sid in enumerate(ids):
            bob.send_message(full, f"replay {i:02d}", id=sid)
        watch.wait_event("message", body=f"replay {N - 1:02d}")
        watch.close()

        # A new name gets all of them, in order, as replay.
        c = self.client(d, name="first")
        hello = c.hello("replayer")
        self.assertIs(hello.get("ok"), True, hello)
        self.assertEqual(hello["cursor"], 0)
        msgs = c.wait_events(lambda e: e["event"] == "message"
                             and e["body"].startswith("replay "), N)
        self.assertEqual([m["body"] for m in msgs], [f"replay {i:02d}" for i in range(N)])
        self.assertEqual(len({m["msg_id"] for m in msgs}), N, "msg_ids not unique")
        for m in msgs:
            self.assertLessEqual(m["seq"], hello["last_seq"], f"not replayed: {m}")
            self.assertEqual((m["from"], m["outgoing"], m["delayed"]),
                             (bob.full_jid, False, False), m)
        replayed = [e["seq"] for e in c.events if e["seq"] <= hello["last_seq"]]
        self.assertEqual(replayed, sorted(set(replayed)), "replay not oldest first")
        self.assertTrue(replayed and replayed[0] >= 1)
        # The whole log since 0 came, not only messages: the account went online.
        c.wait_event("account-state", state="online")

        # ack the last one; the same name later gets none of them again.
        last = msgs[-1]["seq"]
        self.assertEqual(c.ack(last)["cursor"], last)
        c.close()

        c2 = self.client(d, name="second")
        h2 = c2.hello("replayer")
        self.assertIs(h2.get("ok"), True, h2)
        self.assertEqual(h2["cursor"], last)
        mk = self.marker(bob, full, c2, "after reconnect")
        before_marker = c2.events[:c2.events.index(mk)]
        self.assertEqual([e for e in before_marker if e["seq"] <= last], [],
                         "events the name had confirmed were replayed again")
        self.assertEqual(c2.find_events(lambda e: e["event"] == "message"
                                        and e["body"].startswith("replay ")), [])

        # The cursor never moves back.
        self.assertEqual(c2.ack(msgs[5]["seq"])["cursor"], last)
        c2.close()
        c2b = self.client(d, name="second-b")
        self.assertEqual(c2b.hello("replayer", replay=False)["cursor"], last)
        c2b.close()

        # since: replay from an explicit point, whatever the name's cursor.
        since = msgs[9]["seq"]
        c3 = self.client(d, name="third")
        h3 = c3.hello("other", since=since)
        self.assertIs(h3.get("ok"), True, h3)
        mk3 = self.marker(bob, full, c3, "after since")
        before = c3.events[:c3.events.index(mk3)]
        self.assertEqual([e for e in before if e["seq"] <= since], [],
                         f"events at or before since={since} were replayed")
        self.assertEqual([e["body"] for e in before if e["event"] == "message"
                          and e["body"].startswith("replay ")],
                         [f"replay {i:02d}" for i in range(10, N)])
        # ... and it includes the later live message that the other client saw.
        self.assertEqual(len([e for e in before if e.get("body") == "after reconnect"]), 1)

        # since=0 with a name that confirmed everything: all of it again.
        c4 = self.client(d, name="fourth")
        c4.hello("replayer", since=0)
        mk4 = self.marker(bob, full, c4, "after since 0")
        bodies = [e["body"] for e in c4.events[:c4.events.index(mk4)]
                  if e["event"] == "message"]
        self.assertEqual(bodies[:N], [f"replay {i:02d}" for i in range(N)])

        # replay false: live events only.
        c5 = self.client(d, name="fifth")
        h5 = c5.hello("live-only", replay=False)
        mk5 = self.marker(bob, full, c5, "live only")
        self.assertEqual([e for e in c5.events[:c5.events.index(mk5)]
                          if e["seq"] <= h5["last_seq"]], [], "replay: false replayed")

    def test_unacked_events_are_replayed_again(self):
        # Reading events is not confirming them: without ack, the next attach replays.
        d = self.start_daemon()
        full = self.wait_online(d, "home")
        bob = self.peer("bob")
        c = self.client(d, hello="forgetful", replay=False)
        bob.send_message(full, "read but not acked")
        ev = c.wait_event("message", body="read but not acked")
        c.close()
        c2 = self.client(d)
        h2 = c2.hello("forgetful")
        self.assertLess(h2["cursor"], ev["seq"])
        again = c2.wait_event("message", body="read but not acked")
        self.assertEqual(again, ev, "a replayed event must be the stored one, unchanged")

    def test_old_rows_are_replayed_with_every_field(self):
        # A row of the codec's format 1 may lack fields added since (carbon, replaces,
        # history): the replay fills them in; a row of the current format goes as stored.
        d = self.start_daemon()
        full = self.wait_online(d, "home")
        bob = self.peer("bob")
        c = self.client(d, hello="old-rows", replay=False)
        bob.send_message(full, "written long ago")
        old = c.wait_event("message", body="written long ago")
        bob.send_message(full, "written today")
        new = c.wait_event("message", body="written today")
        c.close()
        self.assertEqual(old["carbon"], "")
        db = sqlite3.connect(self.tmp / "stanzad" / "state" / "stanzad.db", timeout=10)
        row = json.loads(db.execute("SELECT json FROM events WHERE seq = ?", (old["seq"],)).fetchone()[0])
        for field in ("carbon", "replaces", "history"):
            del row[field]
        db.execute("UPDATE events SET json = ?, format = 1 WHERE seq = ?",
                   (json.dumps(row, separators=(",", ":")), old["seq"]))
        db.commit()
        self.assertEqual(db.execute("SELECT format FROM events WHERE seq = ?", (new["seq"],)).fetchone()[0], 2)
        db.close()
        c2 = self.client(d)
        c2.hello("old-rows-2", since=old["seq"] - 1)
        again_old = c2.wait_event("message", body="written long ago")
        again_new = c2.wait_event("message", body="written today")
        self.assertEqual(again_old, old, "an old row must be replayed with every field")
        self.assertEqual(again_new, new)


if __name__ == "__main__":
    harness.main()
