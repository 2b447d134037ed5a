"""Multi-user chat (XEP-0045) through the JSON socket: one stanzad with two accounts (alice
as "home", dave as "dave") and bob, a slixmpp peer who creates the room on Prosody's MUC
component (conference.localhost, with muc_mam: rooms have an archive).

MucTest (Prosody with stream management, as usual):
- `join`: the reply has our nick, created false (bob made the room), the subject and the
  occupants with bob as moderator/owner; a `room` event joined; bob sees us come in; the
  nick defaults to the account's local part; `occupant` join events for later arrivals.
- Messages of bob, alice and dave (dave's `send` without a type: groupchat, as it goes to
  a room he is in): each other side sees each exactly once as a `message` event of type
  groupchat from room/nick, with the room's archive id (its XEP-0359 stanza-id, as bob's
  echo shows it) as msg_id; our own message is not repeated when the room echoes it: one
  outgoing event, and the echo moves it to `delivered`.
- bob sets the subject: `subject` events; bob changes nick: `occupant` change nick with
  new_nick; bob kicks dave: alice sees `occupant` change kick (actor, reason), dave's
  account a `room` event kicked. A participant's `kick` is `refused`.
- `part`: reply, `room` left, bob sees alice leave, `rooms` forgets the room; `not-joined`
  afterwards. `rooms` lists state, nick, subject, occupants. A room in the account's
  config (`rooms = [{ jid = ..., nick = ... }]`) is joined at startup. `join` errors
  (nick taken: refused conflict). Invitations both ways.

MucRejoinTest (Prosody WITHOUT mod_smacks, so every reconnection is a new session; alice
reaches Prosody through a FaultProxy): the link is reset and kept down while bob sends 5
messages to the room; the daemon reconnects, rejoins by itself (`room` joining, then
joined, no `left`, no `join` op), and the room's archive fills the gap: each of the 5
arrives exactly once, no earlier message comes again, and bob (who did not change) is not
reported again.

Counting is by body, per account, over every event the client received since before the
first message (the client attached with replay false before anything happened).
Run alone: /usr/bin/python3 tests/integration/test_im_muc.py
"""

import time

import harness
from harness import (FaultTest, JsonlTest, Prosody, room_stanza_id, rx_disconnected,
                     rx_online)

ROOM = "test@conference.localhost"
USERS = dict(JsonlTest.USERS, dave="dave-Pw-4!")


def count_bodies(c, account: str, bodies, **fields) -> dict:
    """How many `message` events of `account` carry each body (with the fields given)."""
    counts = {b: 0 for b in bodies}
    for e in c.find_events("message", account=account, **fields):
        if e.get("body") in counts:
            counts[e["body"]] += 1
    return counts


class MucTest(JsonlTest):
    USERS = USERS
    PROSODY_OPTIONS = {"muc": True}

    def start_two(self, **home_extra):
        """stanzad with alice ("home") and dave ("dave"), both online."""
        d = self.start_daemon([self.account("home", "alice", **home_extra),
                               self.account("dave", "dave")])
        self.wait_online(d, "dave")
        return d

    def occupant(self, reply_or_room: dict, nick: str) -> dict:
        found = [o for o in reply_or_room["occupants"] if o["nick"] == nick]
        self.assertEqual(len(found), 1, f"occupant {nick!r} once in {reply_or_room}")
        return found[0]

    def test_join_messages_subject_nick_and_kick(self):
        bob = self.peer("bob")
        made = bob.muc_join(ROOM, "bob")
        self.assertTrue(made.created, "bob creates the room")
        d = self.start_two()
        c = self.client(d, hello="tests", replay=False)

        # alice joins.
        pmark = bob.presence_mark()
        r = c.ok("join", account="home", room=ROOM, nick="alice")
        self.assertEqual((r["room"], r["nick"], r["created"], r["subject"]),
                         (ROOM, "alice", False, ""), r)
        bob_seen = self.occupant(r, "bob")
        self.assertEqual((bob_seen["role"], bob_seen["affiliation"], bob_seen["jid"]),
                         ("moderator", "owner", ""), f"alice, a participant, sees bob "
                         f"without his real JID (semi-anonymous room): {bob_seen}")
        joined = c.wait_event("room", account="home", room=ROOM, state="joined")
        self.assertEqual(joined["nick"], "alice", joined)
        p = bob.wait_presence(room=ROOM, nick="alice", type="", since=pmark)
        self.assertEqual(p.real_jid.split("/")[0], "alice@localhost", p)

        # dave joins without a nick: the local part of his JID.
        r2 = c.ok("join", account="dave", room=ROOM)
        self.assertEqual((r2["nick"], r2["created"]), ("dave", False), r2)
        self.occupant(r2, "bob")
        self.assertEqual(self.occupant(r2, "alice")["role"], "participant", r2)
        c.wait_event("room", account="dave", room=ROOM, state="joined")
        arrival = c.wait_event("occupant", account="home", room=ROOM, nick="dave",
                               change="join")
        self.assertEqual((arrival["role"], arrival["affiliation"]), ("participant", "none"),
                         arrival)

        # One message from each; everyone else sees each once.
        bmark = bob.message_mark()
        bob.muc_send(ROOM, "from bob", id="bob-1")
        echo = bob.wait_message(body="from bob", since=bmark)
        sid_bob = room_stanza_id(echo, ROOM)
        self.assertTrue(sid_bob, echo.xml)
        for account in ("home", "dave"):
            e = c.wait_event("message", account=account, body="from bob")
            self.assertEqual((e["from"], e["type"], e["outgoing"], e["msg_id"], e["carbon"],
                              e["history"]),
                             (f"{ROOM}/bob", "groupchat", False, sid_bob, "", False), e)

        sent = {}
        for account, nick in (("home", "alice"), ("dave", "dave")):
            body = f"from {nick}"
            # dave gives no type: to a room the account is in, a message is groupchat.
            typed = {"type": "groupchat"} if account == "home" else {}
            s = c.ok("send", account=account, to=ROOM, body=body, client_id=f"{nick}-1",
                     **typed)
            self.assertEqual(s["msg_id"], f"{nick}-1")
            got = bob.wait_message(body=body, since=bmark)
            self.assertEqual((got.from_, got.type, got.origin_id),
                             (f"{ROOM}/{nick}", "groupchat", f"{nick}-1"), got.xml)
            sent[account] = (body, room_stanza_id(got, ROOM))
            out = c.wait_event("message", account=account, msg_id=f"{nick}-1")
            self.assertEqual((out["outgoing"], out["to"], out["type"]),
                             (True, ROOM, "groupchat"), out)
            c.wait_event("message-state", account=account, msg_id=f"{nick}-1",
                         state="delivered")
        for account, other in (("home", "dave"), ("dave", "home")):
            body, sid = sent[other]
            e = c.wait_event("message", account=account, body=body, outgoing=False)
            self.assertEqual((e["from"], e["msg_id"]),
                             (f"{ROOM}/{'alice' if other == 'home' else 'dave'}", sid), e)

        # A marker from bob: everything before it has been handled; then count.
        bob.muc_send(ROOM, "marker 1")
        for account in ("home", "dave"):
            c.wait_event("message", account=account, body="marker 1")
        bodies = ["from bob", "from alice", "from dave", "marker 1"]
        self.assertEqual(count_bodies(c, "home", bodies),
                         {"from bob": 1, "from alice": 1, "from dave": 1, "marker 1": 1},
                         "alice: each message once (her own: the outgoing event only)")
        self.assertEqual(count_bodies(c, "dave", bodies),
                         {"from bob": 1, "from alice": 1, "from dave": 1, "marker 1": 1},
                         "dave: each message once (his own: the outgoing event only)")
        self.assertEqual(count_bodies(c, "home", ["from alice"], outgoing=False),
                         {"from alice": 0}, "the room's echo became an incoming message")
        self.assertEqual(c.find_events("message", account="home", msg_id="alice-1"),
                         [c.wait_event("message", account="home", msg_id="alice-1")])

        # Subject.
        mark = c.mark()
        bob.muc_subject(ROOM, "Release on Monday")
        for account in ("home", "dave"):
            s = c.wait_event("subject", since=mark, account=account, room=ROOM,
                             subject="Release on Monday")
            self.assertEqual(s["nick"], "bob", s)
        rooms = c.ok("rooms", account="home")["rooms"]
        self.assertEqual([(x["room"], x["state"], x["nick"], x["subject"]) for x in rooms],
                         [(ROOM, "joined", "alice", "Release on Monday")], rooms)
        self.assertEqual(sorted(o["nick"] for o in rooms[0]["occupants"]
                                if o["nick"] != "alice"), ["bob", "dave"], rooms)

        # bob becomes bobby: one nick change, not a leave and a join.
        mark = c.mark()
        bob.muc_nick(ROOM, "bobby")
        for account in ("home", "dave"):
            n = c.wait_event("occupant", since=mark, account=account, room=ROOM,
                             change="nick")
            self.assertEqual((n["nick"], n["new_nick"], n["role"], n["affiliation"]),
                             ("bob", "bobby", "moderator", "owner"), n)
        bob.muc_send(ROOM, "marker 2")
        c.wait_event("message", account="home", body="marker 2", **{"from": f"{ROOM}/bobby"})
        self.assertEqual([e for e in c.find_events("occupant", since=mark, account="home")
                          if e["change"] in ("join", "leave")], [],
                         "a nick change reported as leave/join")
        self.assertEqual(sorted(o["nick"] for o in c.ok("rooms", account="home")["rooms"][0]
                                ["occupants"] if o["nick"] != "alice"), ["bobby", "dave"])

        # A participant may not kick: refused, with the room's condition.
        no = c.request("kick", account="home", room=ROOM, nick="dave", reason="no")
        self.assertIs(no.get("ok"), False, no)
        self.assertEqual(no["error"]["code"], "refused", no)

        # bobby kicks dave.
        mark = c.mark()
        bob.muc_kick(ROOM, "dave", reason="spam")
        k = c.wait_event("occupant", since=mark, account="home", room=ROOM, nick="dave",
                         change="kick")
        self.assertEqual((k["actor"], k["reason"]), ("bobby", "spam"), k)
        own = c.wait_event("room", since=mark, account="dave", room=ROOM)
        self.assertEqual((own["state"], own["nick"], own["actor"], own["reason"]),
                         ("kicked", "dave", "bobby", "spam"), own)
        self.assertEqual(sorted(o["nick"] for o in c.ok("rooms", account="home")["rooms"][0]
                                ["occupants"] if o["nick"] != "alice"), ["bobby"])
        self.assertNotIn("joined", [x["state"] for x in c.ok("rooms", account="dave")["rooms"]
                                    if x["room"] == ROOM])
        # Not a nick change, not a plain leave, for alice.
        self.assertEqual(c.find_events("occupant", since=mark, account="home", nick="dave",
                                       change="leave"), [])

    def test_config_room_part_rooms_invites_and_errors(self):
        config_room = "config@conference.localhost"
        bob = self.peer("bob")
        bob.muc_join(config_room, "bob")
        bob.muc_join(ROOM, "bob")
        d = self.start_daemon([self.account("home", "alice",
                                            rooms=[{"jid": config_room, "nick": "ally"}])])
        c = self.client(d, hello="tests")  # replays from the start: the automatic join

        # The configured room is joined at startup, as "ally".
        j = c.wait_event("room", account="home", room=config_room, state="joined")
        self.assertEqual(j["nick"], "ally", j)
        bob.wait_presence(room=config_room, nick="ally", type="")
        rooms = c.ok("rooms", account="home")["rooms"]
        self.assertEqual([(x["room"], x["state"], x["nick"], x["reason"]) for x in rooms],
                         [(config_room, "joined", "ally", "")], rooms)
        self.assertIn("bob", [o["nick"] for o in rooms[0]["occupants"]], rooms)

        # Join another; nick taken: refused with the room's condition.
        taken = c.request("join", account="home", room=ROOM, nick="bob")
        self.assertIs(taken.get("ok"), False, taken)
        self.assertEqual(taken["error"]["code"], "refused", taken)
        self.assertIn("conflict", taken["error"]["message"], taken)
        c.ok("join", account="home", room=ROOM, nick="alice")
        self.assertEqual(sorted((x["room"], x["state"]) for x in
                                c.ok("rooms", account="home")["rooms"]),
                         [(config_room, "joined"), (ROOM, "joined")])

        # A room nobody is in: we create it.
        fresh = c.ok("join", account="home", room="fresh@conference.localhost")
        self.assertEqual((fresh["nick"], fresh["created"]), ("alice", True), fresh)

        # Invitations: direct (XEP-0249) from us; mediated and direct to us.
        bmark = bob.message_mark()
        c.ok("invite", account="home", room=ROOM, jid="bob@localhost", reason="come")
        inv = bob.wait_message(lambda m: m.child("jabber:x:conference", "x") is not None,
                               since=bmark)
        x = inv.child("jabber:x:conference", "x")
        self.assertEqual((x.get("jid"), x.get("reason")), (ROOM, "come"), inv.xml)
        mark = c.mark()
        bob.send_raw(f"<message to='{ROOM}'><x xmlns='{harness.MUC_USER_NS}'>"
                     f"<invite to='alice@localhost'><reason>mediated</reason></invite>"
                     f"</x></message>")
        m = c.wait_event("invite", since=mark, account="home", reason="mediated")
        self.assertEqual((m["room"], m["direct"]), (ROOM, False), m)
        # Who invited, as the room says it: Prosody hides bob's real JID behind his
        # occupant JID in a semi-anonymous room (muc/whois.lib.lua); another room may not.
        self.assertIn(m["from"].split("/")[0] if m["from"].startswith("bob@") else m["from"],
                      ("bob@localhost", f"{ROOM}/bob"), m)
        bob.send_raw(f"<message to='alice@localhost'><x xmlns='jabber:x:conference' "
                     f"jid='{config_room}' reason='direct one'/></message>")
        dr = c.wait_event("invite", since=mark, account="home", reason="direct one")
        self.assertEqual((dr["room"], dr["direct"], dr["from"].split("/")[0]),
                         (config_room, True, "bob@localhost"), dr)

        # part: at once; `room` left; bob sees alice go (with the reason); forgotten.
        mark, pmark = c.mark(), bob.presence_mark()
        r = c.ok("part", account="home", room=ROOM, reason="bye")
        self.assertIs(r["ok"], True, r)
        left = c.wait_event("room", since=mark, account="home", room=ROOM, state="left")
        self.assertEqual(left["nick"], "alice", left)
        gone = bob.wait_presence(room=ROOM, nick="alice", type="unavailable", since=pmark)
        self.assertEqual(gone.status, "bye", gone)
        self.assertEqual(sorted(x["room"] for x in c.ok("rooms", account="home")["rooms"]),
                         [config_room, "fresh@conference.localhost"])
        for op, extra in (("part", {}), ("subject", {"subject": "x"}),
                          ("kick", {"nick": "bob"})):
            with self.subTest(op=op):
                r = c.request(op, account="home", room=ROOM, **extra)
                self.assertEqual(r.get("error", {}).get("code"), "not-joined", r)
        # Messages in the room we left no longer reach us.
        bob.muc_send(ROOM, "after alice left")
        bob.muc_send(config_room, "still here")
        c.wait_event("message", account="home", body="still here")
        self.assertEqual(c.find_events("message", body="after alice left"), [])

        # Bad requests.
        for fields, code in (({"room": "not a jid@"}, "bad-jid"),
                             ({"room": ROOM, "nick": 5}, "bad-request"),
                             ({}, "bad-request")):
            with self.subTest(join=fields):
                r = c.request("join", account="home", **fields)
                self.assertEqual(r.get("error", {}).get("code"), code, r)
        r = c.request("join", account="nope", room=ROOM)
        self.assertEqual(r.get("error", {}).get("code"), "unknown-account", r)


class MucRejoinTest(FaultTest):
    USERS = USERS
    PROSODY_OPTIONS = {"muc": True,
                       "modules": [m for m in Prosody.DEFAULT_MODULES if m != "smacks"]}
    N = 5

    def test_new_session_rejoins_and_the_archive_fills_the_gap(self):
        bob = self.peer("bob")
        bob.muc_join(ROOM, "bob")
        proxy = self.fault_proxy()
        d = self.start_fault_daemon(proxy)
        c = self.client(d, hello="tests", replay=False)
        pmark = bob.presence_mark()
        c.ok("join", account="home", room=ROOM, nick="alice")
        bob.wait_presence(room=ROOM, nick="alice", type="", since=pmark)

        before = [f"before {i}" for i in range(3)]
        for body in before:
            bob.muc_send(ROOM, body)
        for body in before:
            c.wait_event("message", account="home", body=body)
        own = c.ok("send", account="home", to=ROOM, type="groupchat", body="alice before",
                   client_id="alice-before")
        c.wait_event("message-state", msg_id=own["msg_id"], state="delivered")

        # Cut alice off and keep her off until bob's messages are in the archive.
        mark, line, pmark = c.mark(), d.mark(), bob.presence_mark()
        proxy.refuse(True)
        self.assertGreaterEqual(proxy.reset_all(), 1)
        d.wait_for(rx_disconnected("home"), since=line)
        # The room has seen her go (no stream management: her session ended at once).
        bob.wait_presence(room=ROOM, nick="alice", type="unavailable", since=pmark)
        gap = [f"gap {i}" for i in range(self.N)]
        for body in gap:
            bob.muc_send(ROOM, body)
        bob.sync()
        for body in gap:  # archived by the room
            bob.wait_message(body=body)
        proxy.refuse(False)

        # A new session; the daemon rejoins by itself.
        d.wait_for(rx_online("home"), since=line, timeout=20)
        rejoined = c.wait_event("room", since=mark, account="home", room=ROOM,
                                state="joined", timeout=20)
        self.assertEqual(rejoined["nick"], "alice", rejoined)
        bob.wait_presence(room=ROOM, nick="alice", type="", since=pmark)

        c.wait_until(lambda: all(count_bodies(c, "home", gap)[b] >= 1 for b in gap), 20,
                     f"the {self.N} messages sent while alice was away")
        bob.muc_send(ROOM, "after the rejoin")
        c.wait_event("message", account="home", body="after the rejoin")
        end = time.monotonic() + 1.5  # absence check: a late copy (archive or history)
        while time.monotonic() < end:
            c.read_some(end - time.monotonic())

        everything = before + gap + ["after the rejoin"]
        counts = count_bodies(c, "home", everything)
        self.assertEqual({b: n for b, n in counts.items() if n != 1}, {},
                         "each room message exactly once (body: count)")
        got = [e["body"] for e in c.find_events("message", account="home")
               if e["body"] in gap]
        self.assertEqual(got, gap, "the gap in bob's order")
        for e in c.find_events("message", account="home"):
            if e["body"] in gap:
                self.assertEqual((e["from"], e["type"], e["outgoing"]),
                                 (f"{ROOM}/bob", "groupchat", False), e)
        self.assertEqual(len(c.find_events("message", account="home",
                                           msg_id="alice-before")), 1,
                         "our own earlier message came back")
        self.assertEqual(count_bodies(c, "home", ["alice before"], outgoing=False),
                         {"alice before": 0})
        # bob did not change: after the rejoin he is not reported again.
        self.assertEqual(c.find_events("occupant", since=mark, nick="bob"), [],
                         "after a rejoin only differences are `occupant` events")
        # The `room` states of a rejoin by the daemon itself: joining, then joined; `left`
        # is only for a `part`.
        states = [e["state"] for e in c.find_events("room", since=mark, account="home",
                                                    room=ROOM)]
        self.assertEqual(states, ["joining", "joined"], c.find_events("room", since=mark))


if __name__ == "__main__":
    harness.main()
