"""Multi-user chat (XEP-0045) and archives (XEP-0313) against ejabberd 23.01: mod_muc on
conference.localhost with `default_room_options: mam: true`, mod_mam on SQLite with
`default: always`.

- alice (stanzad, JSON `join`) creates a new room: ejabberd makes it at once (an instant
  room, status 201; the reply says created). bob (slixmpp) joins; alice sees him come in.
- bob and alice each send one message to the room; each other side sees it exactly once
  (counted after a marker behind it): alice as a groupchat `message` event whose msg_id is
  the room's stanza-id, bob by alice's origin-id; alice's own message is one outgoing
  event that the room's echo moves to `delivered`.
- bob and alice also exchange one chat message each (1:1).
- `history` with the room: the room's archive (ejabberd's SQLite `archive` rows of the
  room, username = the room's JID), oldest first, each msg_id the room's stanza-id as
  bob's echo showed it, alice's own message as outgoing with its client_id, complete.
- `history` with bob: alice's archive: bob's message (msg_id and seq of its live event;
  the msg_id is the row's id in ejabberd's SQLite archive) and alice's own (outgoing,
  its client_id as msg_id), in order, complete.
Run alone: /usr/bin/python3 tests/integration/test_ejabberd_muc_mam.py
"""

import harness
from harness import JsonlTest, room_stanza_id
from ejabberd import EjabberdMixin

ALICE = "alice@localhost"
BOB = "bob@localhost"
ROOM = "mam-room@conference.localhost"


class EjabberdMucMamTest(EjabberdMixin, JsonlTest):
    USERS = {"alice": "alice-Pw-1!", "bob": "bob-Pw-2!"}
    EJABBERD_OPTIONS = {"muc": True}

    def test_room_messages_and_both_archives(self):
        ej = self.ejabberd
        d = self.start_daemon()
        c = self.client(d, hello="tests", replay=False)

        # alice creates the room.
        r = c.ok("join", account="home", room=ROOM, nick="alice", timeout=20)
        self.assertEqual((r["room"], r["nick"], r["created"]), (ROOM, "alice", True), r)
        c.wait_event("room", account="home", room=ROOM, state="joined")

        # bob joins; alice sees him.
        bob = self.peer("bob")
        joined = bob.muc_join(ROOM, "bob")
        self.assertFalse(joined.created, "alice made the room")
        self.assertEqual([p.nick for p in joined.occupants], ["alice"], joined.occupants)
        arrival = c.wait_event("occupant", account="home", room=ROOM, nick="bob",
                               change="join")
        self.assertEqual(arrival["role"], "participant", arrival)

        # One message each in the room.
        bmark = bob.message_mark()
        bob.muc_send(ROOM, "room: from bob", id="room-bob-1")
        sid_bob = room_stanza_id(bob.wait_message(body="room: from bob", since=bmark), ROOM)
        self.assertTrue(sid_bob)
        e = c.wait_event("message", account="home", body="room: from bob")
        self.assertEqual((e["from"], e["type"], e["outgoing"], e["msg_id"], e["history"]),
                         (f"{ROOM}/bob", "groupchat", False, sid_bob, False), e)

        s = c.ok("send", account="home", to=ROOM, type="groupchat", body="room: from alice",
                 client_id="room-alice-1")
        self.assertEqual(s["msg_id"], "room-alice-1")
        got = bob.wait_message(body="room: from alice", since=bmark)
        self.assertEqual((got.from_, got.type, got.origin_id),
                         (f"{ROOM}/alice", "groupchat", "room-alice-1"), got.xml)
        sid_alice = room_stanza_id(got, ROOM)
        self.assertTrue(sid_alice, got.xml)
        c.wait_event("message-state", account="home", msg_id="room-alice-1",
                     state="delivered")

        # A marker behind both, then count by id.
        bob.muc_send(ROOM, "room: marker", id="room-bob-m")
        marker = c.wait_event("message", account="home", body="room: marker")
        sid_marker = marker["msg_id"]
        self.assertEqual(len(c.find_events("message", msg_id=sid_bob)), 1)
        self.assertEqual(len(c.find_events("message", body="room: from bob")), 1)
        self.assertEqual(len(c.find_events("message", msg_id="room-alice-1")), 1,
                         "one outgoing event for alice's room message")
        self.assertEqual(len(c.find_events("message", body="room: from alice")), 1,
                         "the room's echo is not a second event")
        self.assertEqual(len(bob.received(origin_id="room-alice-1", since=bmark)), 1)

        # One chat message each way, 1:1.
        bob.send_message(ALICE, "direct: from bob", id="direct-bob-1")
        live_bob = c.wait_event("message", account="home", body="direct: from bob")
        c.ok("send", account="home", to=BOB, body="direct: from alice",
             client_id="direct-alice-1")
        got = bob.wait_message(origin_id="direct-alice-1", since=bmark)
        self.assertEqual(got.body, "direct: from alice")
        live_alice = c.wait_event("message", account="home", msg_id="direct-alice-1")
        c.wait_event("message-state", account="home", msg_id="direct-alice-1",
                     state="acked")
        bob.sync()  # ejabberd has routed (and archived) everything bob sent

        # The room's archive, as ejabberd keeps it.
        rows = ej.sql("SELECT timestamp, txt FROM archive WHERE username = ? "
                      "ORDER BY timestamp", ROOM)
        self.assertEqual([t for _ts, t in rows],
                         ["room: from bob", "room: from alice", "room: marker"])
        self.assertEqual([str(ts) for ts, _t in rows], [sid_bob, sid_alice, sid_marker])

        h = c.ok("history", account="home", timeout=35, max=10, **{"with": ROOM})
        msgs = h["messages"]
        self.assertEqual([m["body"] for m in msgs],
                         ["room: from bob", "room: from alice", "room: marker"], h)
        self.assertEqual([m["msg_id"] for m in msgs[::2]], [sid_bob, sid_marker], h)
        self.assertIs(h["complete"], True, h)
        self.assertEqual((h["first"], h["last"]), (msgs[0]["msg_id"], msgs[-1]["msg_id"]))
        for m in msgs[::2]:
            self.assertEqual((m["type"], m["from"], m["outgoing"], m["history"]),
                             ("groupchat", f"{ROOM}/bob", False, True), m)
        self.assertEqual([m["seq"] for m in msgs[::2]], [e["seq"], marker["seq"]],
                         "a message already in the store keeps its seq")
        # alice's own message comes back from the room's archive as hers: outgoing, its
        # client_id as msg_id (the daemon matches the origin-id). (Its seq is 0, not the
        # live event's: the daemon does that for every outgoing message that a history
        # reply brings, with Prosody too.)
        own = msgs[1]
        self.assertEqual((own["type"], own["outgoing"], own["to"], own["msg_id"],
                          own["history"]),
                         ("groupchat", True, ROOM, "room-alice-1", True), own)

        # alice's archive with bob.
        h = c.ok("history", account="home", timeout=35, max=10, **{"with": BOB})
        msgs = h["messages"]
        self.assertEqual([m["body"] for m in msgs],
                         ["direct: from bob", "direct: from alice"], h)
        self.assertIs(h["complete"], True, h)
        incoming, outgoing = msgs
        self.assertEqual((incoming["outgoing"], incoming["from"], incoming["msg_id"],
                          incoming["seq"], incoming["history"]),
                         (False, live_bob["from"], live_bob["msg_id"], live_bob["seq"], True),
                         incoming)
        self.assertEqual((outgoing["outgoing"], outgoing["to"].split("/")[0],
                          outgoing["msg_id"], outgoing["history"]),
                         (True, BOB, live_alice["msg_id"], True), outgoing)
        archived = ej.sql("SELECT timestamp FROM archive WHERE username = 'alice' AND "
                          "bare_peer = ? AND txt = 'direct: from bob'", BOB)
        self.assertEqual([str(r[0]) for r in archived], [live_bob["msg_id"]])


if __name__ == "__main__":
    harness.main()
