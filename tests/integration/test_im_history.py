"""The `history` op: older messages from the server's archive (XEP-0313, paged with
XEP-0059), with a contact or in a room.

- bob sends alice 25 numbered messages while the daemon is online (so each is also a live
  `message` event, and Prosody's mod_mam archives each under the stanza-id it stamps).
  `history` with bob, max 10: the newest 10, oldest first, complete false, first/last
  the archive ids at both ends; `before` = first pages back: the previous 10, then the last
  5 with complete true; `after` pages forward again. All 25 distinct, in bob's order, no
  duplicates across pages; each has history true and the msg_id AND seq of its live event
  (a message already in the store keeps its seq). Neither the asking client nor another
  one gets them again as live events.
- A room's archive (`with` = the room's JID, muc_mam): bob's messages, msg_id = the room's
  stanza-id (as bob's echo shows it), paged the same way.
- Errors: unknown account, bad `max` (0, 201, "x", 2.5), `with` not a JID, an archive id
  the server does not know (refused, item-not-found).
Run alone: /usr/bin/python3 tests/integration/test_im_history.py
"""

import harness
from harness import JsonlTest, parse_stamp, room_stanza_id

ALICE = "alice@localhost"
BOB = "bob@localhost"
ROOM = "history@conference.localhost"
N = 25


class ImHistoryTest(JsonlTest):
    PROSODY_OPTIONS = {"muc": True}

    def check_page(self, reply: dict, bodies: list, complete: bool, live: dict,
                   what: str) -> None:
        msgs = reply["messages"]
        self.assertEqual([m["body"] for m in msgs], bodies, what)
        self.assertIs(reply["complete"], complete, f"{what}: complete")
        self.assertEqual((reply["first"], reply["last"]),
                         (msgs[0]["msg_id"], msgs[-1]["msg_id"]), f"{what}: first/last")
        for m in msgs:
            ev = live[m["body"]]
            self.assertEqual((m["event"], m["account"], m["history"], m["outgoing"],
                              m["type"], m["from"], m["carbon"], m["replaces"]),
                             ("message", "home", True, False, "chat", ev["from"], "", ""), m)
            self.assertEqual(m["to"].split("/")[0], ALICE, m)
            self.assertEqual(m["msg_id"], ev["msg_id"],
                             f"{what}: the archive id is the live event's msg_id")
            self.assertEqual(m["seq"], ev["seq"], f"{what}: a stored message keeps its seq")
            # The original time (the archive's stamp has whole seconds).
            self.assertLess(abs(parse_stamp(m["stamp"]) - parse_stamp(ev["stamp"])), 2.0,
                            (m, ev))

    def test_paging_a_contacts_archive(self):
        d = self.start_daemon()
        c = self.client(d, hello="tests", replay=False)
        other = self.watcher(d)
        bob = self.peer("bob")
        bodies = [f"numbered {i:02d}" for i in range(N)]
        for i, body in enumerate(bodies):
            bob.send_message(ALICE, body, id=f"n-{i:02d}")
        live = {b: c.wait_event("message", body=b) for b in bodies}
        self.assertEqual(len({e["msg_id"] for e in live.values()}), N, "live msg_ids unique")
        other.wait_event("message", body=bodies[-1])  # the other client has read them all
        mark, other_mark = c.mark(), other.mark()

        newest = c.ok("history", account="home", timeout=35, **{"with": BOB}, max=10)
        self.check_page(newest, bodies[15:], False, live, "the newest page")
        again = c.ok("history", account="home", timeout=35, **{"with": BOB}, max=10,
                     before="")
        self.assertEqual([m["msg_id"] for m in again["messages"]],
                         [m["msg_id"] for m in newest["messages"]], "before \"\" = newest")
        middle = c.ok("history", account="home", timeout=35, **{"with": BOB}, max=10,
                      before=newest["first"])
        self.check_page(middle, bodies[5:15], False, live, "the page before")
        oldest = c.ok("history", account="home", timeout=35, **{"with": BOB}, max=10,
                      before=middle["first"])
        self.check_page(oldest, bodies[:5], True, live, "the oldest page")
        ids = [m["msg_id"] for p in (oldest, middle, newest) for m in p["messages"]]
        self.assertEqual(len(ids), N)
        self.assertEqual(len(set(ids)), N, "a message on two pages")
        # Forward from the oldest page: the next 10, then the rest, complete.
        forward = c.ok("history", account="home", timeout=35, **{"with": BOB}, max=10,
                       after=oldest["last"])
        self.check_page(forward, bodies[5:15], False, live, "after the oldest page")
        rest = c.ok("history", account="home", timeout=35, **{"with": BOB}, max=20,
                    after=forward["last"])
        self.check_page(rest, bodies[15:], True, live, "the rest, forward")
        # One message by its own id: `before` the second one gives the first.
        one = c.ok("history", account="home", timeout=35, **{"with": BOB}, max=1,
                   before=live[bodies[1]]["msg_id"])
        self.check_page(one, bodies[:1], True, live, "before the second message")

        # Another contact's archive is not bob's.
        none = c.ok("history", account="home", timeout=35, **{"with": "carol@localhost"})
        self.assertEqual((none["messages"], none["complete"]), ([], True), none)

        # Nothing of this came as live events, to this client or another.
        bob.send_message(ALICE, "after the history", id="n-after")
        c.wait_event("message", body="after the history")
        other.wait_event("message", body="after the history")
        for client, since in ((c, mark), (other, other_mark)):
            self.assertEqual([e for e in client.find_events("message", since=since)
                              if e["body"] != "after the history"], [],
                             f"{client.name}: history results sent as live events")

    def test_room_archive(self):
        bob = self.peer("bob")
        bob.muc_join(ROOM, "bob")
        sids = []
        for i in range(3):
            mark = bob.message_mark()
            bob.muc_send(ROOM, f"room {i}")
            sids.append(room_stanza_id(bob.wait_message(body=f"room {i}", since=mark), ROOM))
        d = self.start_daemon()
        c = self.client(d, hello="tests", replay=False)
        c.ok("join", account="home", room=ROOM, nick="alice")

        newest = c.ok("history", account="home", timeout=35, **{"with": ROOM}, max=2)
        self.assertEqual([m["body"] for m in newest["messages"]], ["room 1", "room 2"], newest)
        self.assertEqual([m["msg_id"] for m in newest["messages"]], sids[1:], newest)
        self.assertIs(newest["complete"], False, newest)
        self.assertEqual((newest["first"], newest["last"]), (sids[1], sids[2]), newest)
        for m in newest["messages"]:
            self.assertEqual((m["type"], m["from"], m["history"], m["outgoing"]),
                             ("groupchat", f"{ROOM}/bob", True, False), m)
        older = c.ok("history", account="home", timeout=35, **{"with": ROOM}, max=2,
                     before=newest["first"])
        self.assertEqual([m["body"] for m in older["messages"]], ["room 0"], older)
        self.assertEqual([m["msg_id"] for m in older["messages"]], sids[:1], older)
        self.assertIs(older["complete"], True, older)

    def test_errors(self):
        d = self.start_daemon()
        c = self.client(d, hello="tests", replay=False)
        cases = [
            ({"account": "nope", "with": BOB}, "unknown-account"),
            ({"account": "home", "with": BOB, "max": 0}, "bad-request"),
            ({"account": "home", "with": BOB, "max": 201}, "bad-request"),
            ({"account": "home", "with": BOB, "max": "x"}, "bad-request"),
            ({"account": "home", "with": BOB, "max": 2.5}, "bad-request"),
            ({"account": "home", "with": BOB, "before": 7}, "bad-request"),
            ({"account": "home", "with": "not a jid@"}, "bad-jid"),
            ({"account": "home", "with": "@localhost"}, "bad-jid"),
        ]
        for fields, code in cases:
            with self.subTest(fields=fields):
                r = c.request("history", **fields)
                self.assertIs(r.get("ok"), False, r)
                self.assertEqual(r["error"]["code"], code, r)
                self.assertTrue(r["error"]["message"], r)
        # The limits themselves are fine.
        for max_ in (1, 200):
            r = c.ok("history", account="home", timeout=35, **{"with": BOB}, max=max_)
            self.assertEqual((r["messages"], r["complete"]), ([], True), r)
        # An archive id the server does not know: the server's condition.
        r = c.request("history", account="home", timeout=35, **{"with": BOB},
                      before="no-such-archive-id")
        self.assertEqual(r.get("error", {}).get("code"), "refused", r)
        self.assertIn("item-not-found", r["error"]["message"], r)
        # The connection goes on.
        self.assertEqual(c.ok("accounts")["accounts"][0]["state"], "online")


if __name__ == "__main__":
    harness.main()
