"""The JSON-lines socket (docs/json-protocol.md) with a real Prosody and a real second
client: incoming messages become `message` events, `send` reaches the peer with its
origin-id and is never sent twice for one client_id, every attached client gets every
event, `accounts`, `roster` and presence events say what the server said.

Replay and cursors: test_jsonl_replay.py. Errors: test_jsonl_errors.py. The socket file
and "never two daemons": test_jsonl_socket.py.
"""

import re
import time
import xml.etree.ElementTree as ET

import harness
from harness import RFC3339_MS, JsonlTest, parse_stamp

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                  r"[0-9a-fA-F]{12}$")
MAM = "urn:xmpp:mam:2"


class JsonlEventsTest(JsonlTest):
    def mam_id_of(self, body: str) -> str:
        """The id under which Prosody archived the message with `body` in alice's archive
        (XEP-0313 result id = the XEP-0359 stanza-id it stamped, by alice@localhost).
        Asked by a second alice session without presence, so it receives nothing else."""
        probe = self.peer("alice", presence=False)
        since = probe.message_mark()
        reply = probe.raw_iq("alice@localhost", f"<query xmlns='{MAM}' queryid='probe'/>",
                             type="set")
        self.assertEqual(reply["type"], "result", reply)
        for m in probe.received(since=since):
            el = ET.fromstring(m.xml)
            result = el.find(f"{{{MAM}}}result")
            if result is not None and body in m.xml:
                probe.close()
                return result.get("id")
        self.fail(f"no archived message with body {body!r}")

    def assertEventFields(self, ev: dict, **expected) -> None:
        for k, v in expected.items():
            self.assertIn(k, ev, ev)
            self.assertEqual(ev[k], v, f"field {k!r} of {ev}")

    # (a)
    def test_incoming_message_event(self):
        d = self.start_daemon()
        full = self.wait_online(d, "home")
        c = self.client(d, hello="tests", replay=False)
        live_after = c.hello_reply["last_seq"]
        bob = self.peer("bob")

        # A message without a body (a chat state) is not an event; the next one is.
        bob.send_raw(f"<message to='{full}' type='chat' id='cs-1'>"
                     f"<active xmlns='http://jabber.org/protocol/chatstates'/></message>")
        t0 = time.time()
        bob.send_message(full, "hello alice", id="bob-1")
        ev = c.wait_event("message", body="hello alice")
        t1 = time.time()
        self.assertEventFields(ev, account="home", **{"from": bob.full_jid}, to=full,
                               type="chat", delayed=False, outgoing=False)
        self.assertIsInstance(ev["seq"], int)
        self.assertGreater(ev["seq"], live_after)
        self.assertRegex(ev["stamp"], RFC3339_MS)
        self.assertLessEqual(t0 - 1.0, parse_stamp(ev["stamp"]), ev)
        self.assertLessEqual(parse_stamp(ev["stamp"]), t1 + 1.0, ev)
        # msg_id: the stanza-id the server stamped for our account, else the sender's id.
        # Prosody's mod_mam stamps <stanza-id by='alice@localhost'/> on chat messages.
        self.assertEqual(ev["msg_id"], self.mam_id_of("hello alice"), ev)
        self.assertEqual([e for e in c.find_events("message") if e is not ev], [],
                         "the body-less chat state became a message event")

        # Type normal, and a message to the bare JID, arrive the same way.
        bob.send_message("alice@localhost", "to the bare jid", mtype="normal", id="bob-2")
        ev2 = c.wait_event("message", body="to the bare jid")
        self.assertEventFields(ev2, type="normal", to="alice@localhost", outgoing=False,
                               delayed=False, **{"from": bob.full_jid})
        self.assertGreater(ev2["seq"], ev["seq"])

    def test_offline_message_is_delayed_with_its_original_stamp(self):
        # bob writes while alice is offline; Prosody keeps it (mod_offline) with a
        # XEP-0203 delay and delivers it when the daemon comes online.
        bob = self.peer("bob")
        t_sent = time.time()
        bob.send_message("alice@localhost", "while you were away", id="bob-off-1")
        bob.ping("localhost")  # the server has handled (stored) the message when this returns
        t_start = time.time()
        d = self.start_daemon()
        c = self.client(d, hello="tests")
        ev = c.wait_event("message", body="while you were away")
        self.assertEventFields(ev, account="home", delayed=True, outgoing=False,
                               type="chat", to="alice@localhost", **{"from": bob.full_jid})
        self.assertRegex(ev["stamp"], RFC3339_MS)
        stamp = parse_stamp(ev["stamp"])
        # The original time (Prosody's delay stamp has whole seconds), not the arrival,
        # which is after the daemon started.
        self.assertLess(stamp, t_start, f"stamp {ev['stamp']} is not the original time")
        self.assertGreaterEqual(stamp, int(t_sent) - 1, ev)
        self.assertTrue(ev["msg_id"], ev)

    # (b)
    def test_send_reaches_the_peer_once_per_client_id(self):
        d = self.start_daemon()
        c = self.client(d, hello="tests", replay=False)
        bob = self.peer("bob")

        r = c.request("send", account="home", to="bob@localhost", body="hi bob",
                      type="chat", client_id="c-1")
        self.assertIs(r.get("ok"), True, r)
        self.assertEqual(r["msg_id"], "c-1")
        self.assertFalse(r.get("duplicate", False), r)
        m = bob.wait_message(body="hi bob")
        self.assertEqual(m.origin_id, "c-1", m.xml)
        self.assertEqual(m.id, "c-1", "client_id is also the stanza id\n" + m.xml)
        self.assertEqual(m.type, "chat")
        self.assertTrue(m.from_.startswith("alice@localhost/"), m.from_)

        out = c.wait_event("message", msg_id="c-1")
        self.assertEventFields(out, account="home", to="bob@localhost", body="hi bob",
                               type="chat", delayed=False, outgoing=True)
        self.assertTrue(out["from"].startswith("alice@localhost"), out)
        self.assertRegex(out["stamp"], RFC3339_MS)
        accepted = c.wait_event("message-state", msg_id="c-1", state="accepted")
        sent = c.wait_event("message-state", msg_id="c-1", state="sent")
        self.assertEventFields(accepted, account="home", error="")
        self.assertEventFields(sent, account="home", error="")
        self.assertLess(out["seq"], accepted["seq"])
        self.assertLess(accepted["seq"], sent["seq"])

        # Without client_id the daemon makes a UUID, used as origin-id.
        r2 = c.ok("send", account="home", to="bob@localhost", body="no client id")
        self.assertRegex(r2["msg_id"], UUID)
        self.assertEqual(bob.wait_message(body="no client id").origin_id, r2["msg_id"])
        c.wait_event("message-state", msg_id=r2["msg_id"], state="sent")

        # The same client_id again (a client retrying after losing the reply): same
        # msg_id, duplicate, not sent again.
        events_before = c.mark()
        r3 = c.request("send", account="home", to="bob@localhost", body="hi bob",
                       type="chat", client_id="c-1")
        self.assertIs(r3.get("ok"), True, r3)
        self.assertEqual(r3["msg_id"], "c-1")
        self.assertIs(r3.get("duplicate"), True, r3)
        # Proof of absence by order: a later message is sent after any second copy would be.
        c.ok("send", account="home", to="bob@localhost", body="marker", client_id="c-marker")
        bob.wait_message(body="marker")
        c.wait_event("message-state", msg_id="c-marker", state="sent", since=events_before)
        self.assertEqual([x.origin_id for x in bob.received(origin_id="c-1")], ["c-1"],
                         "bob got client_id c-1 more than once")
        self.assertEqual(c.find_events("message", since=events_before, msg_id="c-1"), [],
                         "a duplicate send produced a second outgoing message event")
        # acked (XEP-0198) and delivered (XEP-0184) may still come for the first send.
        self.assertEqual([e for e in c.find_events("message-state", since=events_before, msg_id="c-1")
                          if e["state"] in ("accepted", "sent")],
                         [], "a duplicate send produced new message-state events")

    def test_send_to_nobody_fails_with_the_servers_error(self):
        d = self.start_daemon()
        c = self.client(d, hello="tests", replay=False)
        r = c.ok("send", account="home", to="nobody@localhost", body="anyone?",
                 client_id="to-nobody")
        c.wait_event("message-state", msg_id="to-nobody", state="accepted")
        failed = c.wait_event("message-state", msg_id="to-nobody", state="failed")
        self.assertIn("service-unavailable", failed["error"], failed)
        self.assertEqual(r["msg_id"], "to-nobody")

    def test_pipelined_sends_reply_in_order_and_arrive_in_order(self):
        d = self.start_daemon()
        c = self.client(d, hello="tests", replay=False)
        bob = self.peer("bob")
        ids = list(range(100, 120))
        for i in ids:  # all written before reading any reply
            c.send_json({"op": "send", "id": i, "account": "home", "to": "bob@localhost",
                         "body": f"pipelined {i}", "client_id": f"p-{i}"})
        replies = [c.next_reply() for _ in ids]
        self.assertEqual([r.get("id") for r in replies], ids, "replies out of request order")
        self.assertTrue(all(r.get("ok") is True for r in replies), replies)
        self.assertEqual([r["msg_id"] for r in replies], [f"p-{i}" for i in ids])
        bob.wait_message(body=f"pipelined {ids[-1]}")
        got = [m.body for m in bob.received(lambda m: (m.body or "").startswith("pipelined"))]
        self.assertEqual(got, [f"pipelined {i}" for i in ids])

    # (d)
    def test_two_clients_get_every_event(self):
        d = self.start_daemon()
        full = self.wait_online(d, "home")
        c1 = self.client(d, hello="one", replay=False)
        c2 = self.client(d, hello="two", replay=False)
        bob = self.peer("bob")
        bodies = [f"to both {i}" for i in range(5)]
        for b in bodies:
            bob.send_message(full, b)
        r = c1.ok("send", account="home", to="bob@localhost", body="from one",
                  client_id="from-one")
        for c in (c1, c2):
            for b in bodies:
                c.wait_event("message", body=b)
            c.wait_event("message", msg_id=r["msg_id"], outgoing=True)
            c.wait_event("message-state", msg_id=r["msg_id"], state="sent")
        bob.send_message(full, "last for both")
        last = [c.wait_event("message", body="last for both") for c in (c1, c2)]
        self.assertEqual(last[0]["seq"], last[1]["seq"])
        # From when both were attached (replay off: events of the moment between the two
        # hellos, such as the roster arriving after login, reach only the first).
        first = max(min(e["seq"] for e in c.events) for c in (c1, c2))
        seqs = [[e["seq"] for e in c.events if first <= e["seq"] <= last[0]["seq"]]
                for c in (c1, c2)]
        for s in seqs:
            self.assertEqual(s, sorted(set(s)), "events repeated or out of order")
        self.assertEqual(seqs[0], seqs[1], "the two clients saw different events")
        for c in (c1, c2):
            for b in bodies + ["last for both"]:
                self.assertEqual(len(c.find_events("message", body=b)), 1, (c.name, b))
        # Same content, not only the same numbers.
        by_seq = [{e["seq"]: e for e in c.events} for c in (c1, c2)]
        for s in seqs[0]:
            self.assertEqual(by_seq[0][s], by_seq[1][s])

    # (f)
    def test_accounts_roster_and_presence(self):
        # bob on alice's roster (name and group), set by alice before the daemon starts.
        alice = self.peer("alice", presence=False)
        reply = alice.raw_iq("alice@localhost",
                             "<query xmlns='jabber:iq:roster'><item jid='bob@localhost' "
                             "name='Bob'><group>Friends</group></item></query>", type="set")
        self.assertEqual(reply["type"], "result", reply)
        alice.close()

        d = self.start_daemon()
        full = self.wait_online(d, "home")
        c = self.client(d)
        hello = c.hello("tests")  # a new name: replays everything since seq 0
        self.assertIs(hello.get("ok"), True, hello)
        self.assertEqual(hello["version"], 1)
        self.assertEqual(hello["client"], "tests")
        self.assertEqual(hello["cursor"], 0)
        self.assertIsInstance(hello["last_seq"], int)
        self.assertRegex(hello["daemon"], r"^stanzad ")
        expected = {"account": "home", "jid": "alice@localhost", "state": "online",
                    "bound_jid": full, "reason": "", "auth": "SCRAM-SHA-1",
                    "connection": f"127.0.0.1:{self.prosody.port} (STARTTLS) at 127.0.0.1:{self.prosody.port}",
                    "priority": 0}
        # `capabilities` (issue 18) comes once the server's disco#info has answered, which
        # may be after this hello: Prosody offers all three.
        all_offered = {"stream_management": True, "archive": True, "carbons": True}
        self.assertIn(hello["accounts"][0].pop("capabilities", all_offered), [all_offered])
        self.assertEqual(hello["accounts"], [expected])
        self.assertEqual(full, "alice@localhost/stanzad")

        r = harness.poll_until(lambda: (lambda r: r if "capabilities" in r["accounts"][0] else None)(
            c.ok("accounts")), 10, "capabilities in accounts")
        self.assertEqual(r["accounts"], [dict(expected, capabilities=all_offered)])

        # Replayed: account-state connecting then online (with the bound JID), the roster.
        connecting = c.wait_event("account-state", state="connecting")
        online = c.wait_event("account-state", state="online")
        self.assertLess(connecting["seq"], online["seq"])
        self.assertEventFields(online, account="home", jid=full)
        roster_ev = c.wait_event("roster", push=False)
        bob_item = {"jid": "bob@localhost", "name": "Bob", "subscription": "none",
                    "groups": ["Friends"], "nick": ""}
        self.assertIn(bob_item, roster_ev["items"])
        self.assertEqual(c.ok("roster", account="home")["items"], [bob_item])

        # Directed presence from bob: available with show/status, then unavailable.
        bob = self.peer("bob", presence=False)
        bob.send_presence(to=full, show="away", status="lunch")
        p = c.wait_event("presence", **{"from": bob.full_jid})
        self.assertEventFields(p, account="home", available=True, show="away",
                               status="lunch")
        bob.send_presence(to=full, ptype="unavailable")
        p2 = c.wait_event("presence", **{"from": bob.full_jid}, available=False)
        self.assertGreater(p2["seq"], p["seq"])

        # Our own presence: the reply only (bob is not subscribed, nobody can see it).
        r = c.ok("presence", account="home", show="dnd", status="busy")
        self.assertEqual(r, {"id": r["id"], "ok": True})


if __name__ == "__main__":
    harness.main()
