"""Message carbons (XEP-0280) through the JSON socket: alice has a second client ("phone",
a slixmpp session with carbons enabled) besides stanzad.

- The phone sends bob a chat message: the front end sees a `message` with carbon "sent",
  outgoing true, from the phone's full JID to bob, once.
- bob writes to the phone's full JID: the front end sees it with carbon "received",
  outgoing false, once.
- Forged carbons (XEP-0280 §11): bob sends stanzad's full JID (the `accounts` op's
  bound_jid) a message wrapping a <received/> (and one wrapping a <sent/>) carbon of a
  message that alice never got. Prosody passes it on as is (it comes from bob, not from
  alice's own JID), so the daemon must drop it: no `message` event ever shows its body,
  proven by a later normal message from bob (the daemon handles a session's stanzas in
  order), and the daemon logs that it dropped a forged carbon.

The daemon runs with log_level = "trace" only to know when its carbons are on: the
phone's first message waits for the server's result to the daemon's <enable/> in the
wire log (else Prosody could route it before carbons are enabled, and no copy comes).
Run alone: /usr/bin/python3 tests/integration/test_im_carbons.py
"""

import harness
from harness import CARBONS_NS, FORWARD_NS, JsonlTest, wait_wire

ALICE = "alice@localhost"
# A log line about a forged carbon; not a wire (trace) line, which shows the stanza itself
# (and not this test's temp dir, "...test_forged_carbons...", in a path).
RX_FORGED = r"^(?!.*\b(?:SEND|RECV) <)(?i:.*\bforged\b)"


class ImCarbonsTest(JsonlTest):
    def start_with_carbons(self):
        d = self.start_daemon(log_level="trace")
        enable = wait_wire(d, lambda w: w.direction == "SEND" and w.tag == "iq"
                           and w.find(CARBONS_NS, "enable") is not None,
                           what="the daemon's carbons <enable/>")
        answer = wait_wire(d, lambda w: w.direction == "RECV" and w.tag == "iq"
                           and w.el.get("id") == enable.el.get("id"), since=enable.index,
                           what="the answer to <enable/>")
        self.assertEqual(answer.el.get("type"), "result", answer)
        return d

    def test_sent_and_received_carbons(self):
        d = self.start_with_carbons()
        c = self.client(d, hello="tests", replay=False)
        phone = self.peer("alice", resource="phone")
        phone.enable_carbons()
        bob = self.peer("bob")

        phone.send_message("bob@localhost", "from my phone", id="phone-1")
        bob.wait_message(body="from my phone")
        sent = c.wait_event("message", body="from my phone")
        self.assertEqual((sent["carbon"], sent["outgoing"], sent["from"], sent["to"],
                          sent["type"], sent["delayed"], sent["history"], sent["account"]),
                         ("sent", True, phone.full_jid, "bob@localhost", "chat", False,
                          False, "home"), sent)
        self.assertTrue(sent["msg_id"], sent)

        bob.send_message(phone.full_jid, "to the phone", id="bob-1")
        phone.wait_message(body="to the phone")
        received = c.wait_event("message", body="to the phone")
        self.assertEqual((received["carbon"], received["outgoing"], received["from"],
                          received["to"], received["type"]),
                         ("received", False, bob.full_jid, phone.full_jid, "chat"), received)
        self.assertTrue(received["msg_id"], received)

        # Our own messages are not carbons.
        r = c.ok("send", account="home", to="bob@localhost", body="from stanzad",
                 client_id="own-1")
        own = c.wait_event("message", msg_id=r["msg_id"])
        self.assertEqual((own["carbon"], own["outgoing"]), ("", True), own)
        bob.wait_message(body="from stanzad")

        # Each once (a marker from bob: everything before it has been handled).
        bob.send_message(ALICE, "marker")
        c.wait_event("message", body="marker")
        for body in ("from my phone", "to the phone", "from stanzad"):
            self.assertEqual(len(c.find_events("message", body=body)), 1, body)

    def test_forged_carbons_are_dropped_and_logged(self):
        d = self.start_with_carbons()
        c = self.client(d, hello="tests", replay=False)
        full = c.ok("accounts")["accounts"][0]["bound_jid"]
        self.assertTrue(full.startswith(ALICE + "/"), full)
        bob = self.peer("bob")
        line = d.mark()

        # Copies of messages alice never exchanged, wrapped by bob (not by alice's JID).
        bob.send_raw(f"<message to='{full}' type='chat' id='forged-1'>"
                     f"<received xmlns='{CARBONS_NS}'><forwarded xmlns='{FORWARD_NS}'>"
                     f"<message xmlns='jabber:client' from='x@localhost' to='{ALICE}' "
                     f"type='chat'><body>forged</body></message></forwarded></received>"
                     f"</message>")
        bob.send_raw(f"<message to='{full}' type='chat' id='forged-2'>"
                     f"<sent xmlns='{CARBONS_NS}'><forwarded xmlns='{FORWARD_NS}'>"
                     f"<message xmlns='jabber:client' from='{ALICE}/elsewhere' "
                     f"to='x@localhost' type='chat'><body>forged sent</body></message>"
                     f"</forwarded></sent></message>")
        bob.send_message(full, "after the forgery", id="bob-after")
        c.wait_event("message", body="after the forgery")

        self.assertEqual([e for e in c.events if e.get("body") in ("forged", "forged sent")],
                         [], "a forged carbon was shown")
        self.assertEqual([e for e in c.find_events("message")
                          if e.get("body") != "after the forgery"], [],
                         "only bob's normal message is a message event")
        d.wait_for(RX_FORGED, since=line, timeout=5, nth=2)  # one line for each

        # A replay from the store has neither.
        audit = self.client(d, hello="audit", since=0)
        audit.wait_replay()
        self.assertEqual([e for e in audit.events if e.get("body") in ("forged", "forged sent")],
                         [])


if __name__ == "__main__":
    harness.main()
