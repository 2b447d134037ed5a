"""Presence priority (RFC 6121 §4.7.2.3) and the symptom it is for: a message sent to the
bare JID goes to the available resources with the highest priority (§8.5.2.1.1), so a
phone with a higher priority than stanzad gets the messages and stanzad gets them only
as carbons (or not at all on a server without carbons, such as jabberd2).

With a real Prosody, alice's other client ("phone", a slixmpp peer at priority 10) and
bob sending to alice's bare JID:
- `priority = 20` in the config: the phone sees stanzad's presence with priority 20,
  `accounts` shows it, and bob's message reaches stanzad directly (not as a carbon); the
  phone does not get it.
- the `presence` op with "priority": 5: the phone sees 5, the next message reaches the
  phone, and stanzad gets it as a received carbon. A priority outside -128..127 is
  bad-request and changes nothing; a presence op without "priority" keeps the last one.
Run alone: /usr/bin/python3 tests/integration/test_presence_priority.py
"""

import harness
from harness import JsonlTest

ALICE = "alice@localhost"
BOB = "bob@localhost"


class PresencePriorityTest(JsonlTest):
    def test_priority_routes_bare_jid_messages(self):
        phone = self.peer("alice", resource="phone")
        phone.send_presence(priority=10)
        bob = self.peer("bob")

        mark = phone.presence_mark()
        d = self.start_daemon(accounts=[self.account("home", "alice", priority=20)])
        own = self.wait_online(d, "home")
        seen = phone.wait_presence(from_=own, type="", since=mark)
        self.assertEqual(seen.priority, 20, seen)
        c = self.client(d, hello="prio")
        [info] = c.ok("accounts")["accounts"]
        self.assertEqual(info["priority"], 20, info)

        # stanzad has the highest priority: bob's message to the bare JID is routed to it.
        first = bob.send_message(ALICE, "to the highest priority")
        got = c.wait_event("message", body="to the highest priority")
        self.assertEqual((got["carbon"], got["outgoing"]), ("", False), got)

        # Lower than the phone: the next message goes to the phone; stanzad sees a carbon.
        mark = phone.presence_mark()
        c.ok("presence", account="home", show="", status="", priority=5)
        seen = phone.wait_presence(from_=own, type="", since=mark)
        self.assertEqual(seen.priority, 5, seen)
        second = bob.send_message(ALICE, "now the phone is higher")
        phone.wait_message(id=second)
        carbon = c.wait_event("message", body="now the phone is higher")
        self.assertEqual(carbon["carbon"], "received", carbon)
        # Prosody routes bob's messages in order: had the first one gone to the phone too,
        # it would be there before the second.
        self.assertEqual([m.body for m in phone.messages if m.id == first], [])
        self.assertEqual(c.ok("accounts")["accounts"][0]["priority"], 5)

        # Out of range or not an integer: bad-request, nothing changes.
        for bad in (128, -129, "5", 1.5, True):
            with self.subTest(priority=bad):
                r = c.request("presence", account="home", priority=bad)
                self.assertEqual(r.get("error", {}).get("code"), "bad-request", r)
                self.assertIn("priority", r["error"]["message"], r)
        self.assertEqual(c.ok("accounts")["accounts"][0]["priority"], 5)

        # A presence op without "priority" changes show and keeps the priority.
        mark = phone.presence_mark()
        c.ok("presence", account="home", show="away", status="lunch")
        seen = phone.wait_presence(from_=own, show="away", since=mark)
        self.assertEqual((seen.priority, seen.status), (5, "lunch"), seen)


if __name__ == "__main__":
    harness.main()
