"""The small things of one-to-one chat, between stanzad's alice and bob (a slixmpp peer):

- Receipts (XEP-0184): alice's chat messages ask for one (and say active, XEP-0085; they
  are not markable, XEP-0333, unless chat_markers is on); bob's receipt moves her message to `delivered`. bob's request
  for a receipt is answered only once bob has a presence subscription with alice (a
  receipt tells a stranger that we are online): first none (proven by a later message of
  alice's, which the daemon writes after any receipt for an earlier stanza), then, with
  subscription both, a <received id=.../> carrying bob's message id.
- Chat states (XEP-0085): bob's composing is a `chat-state` event with seq 0, never
  stored (a replay from 0 does not have it) and never a `message`; the `chat-state` op
  makes bob see composing (no body); `not-online` for an account that is not online.
- Corrections (XEP-0308): bob's correction is a `message` whose `replaces` is the
  msg_id of the corrected message as its event showed it; `send` with `replace` sends a
  <replace id=.../> naming our earlier message; replacing a message that is not ours to
  that JID is a bad request. /me (XEP-0245) bodies travel unchanged both ways.
- Displayed markers (XEP-0333): `displayed` sends nothing by default (sent false: bob gets
  no marker); with `chat_markers = true` in the account it does (sent true: bob gets a
  <displayed/> with the id of his message, XEP-0333 §3) and alice's messages are
  markable (only then: we ask contacts for what we give); bob's displayed marker for
  alice's message moves it to `displayed`, asked for or not.
Run alone: /usr/bin/python3 tests/integration/test_im_details.py
"""

import harness
from harness import CORRECT_NS, MARKERS_NS, RECEIPTS_NS, JsonlTest, free_port

ALICE = "alice@localhost"
BOB = "bob@localhost"


class ImDetailsTest(JsonlTest):
    def setup_pair(self, **account_extra):
        d = self.start_daemon([self.account("home", "alice", **account_extra)])
        c = self.client(d, hello="tests", replay=False)
        full = c.ok("accounts")["accounts"][0]["bound_jid"]
        bob = self.peer("bob")
        return d, c, full, bob

    def marker_exchange(self, c, bob, tag: str) -> None:
        """alice sends bob a message and bob receives it: whatever the daemon wrote for
        bob before this `send` (a receipt, a marker) has reached bob by then."""
        r = c.ok("send", account="home", to=BOB, body=f"marker {tag}",
                 client_id=f"marker-{tag}")
        bob.wait_message(body=f"marker {tag}", origin_id=r["msg_id"])

    def test_receipts_delivered_and_only_for_subscribed_contacts(self):
        d, c, full, bob = self.setup_pair()
        bob.manual_subscriptions()
        bob.roster_get()  # Prosody sends (un)subscribed presences only to roster-aware sessions
        bob.answer_receipts()

        # alice -> bob: asks for a receipt; bob's receipt makes it `delivered`.
        r = c.ok("send", account="home", to=BOB, body="please confirm", client_id="rc-1")
        got = bob.wait_message(body="please confirm")
        self.assertTrue(got.receipt_requested, got.xml)
        self.assertIsNone(got.child(MARKERS_NS, "markable"), got.xml)  # chat_markers is off
        self.assertEqual(got.chat_state, "active", got.xml)
        self.assertEqual((got.id, got.origin_id), ("rc-1", "rc-1"), got.xml)
        c.wait_event("message-state", msg_id=r["msg_id"], state="delivered")

        # bob -> alice with a request, no subscription: no receipt.
        bob.send_raw(f"<message to='{ALICE}' type='chat' id='bob-req-1'><body>do you read "
                     f"me</body><request xmlns='{RECEIPTS_NS}'/></message>")
        c.wait_event("message", body="do you read me")
        self.marker_exchange(c, bob, "1")
        self.assertEqual(bob.received(lambda m: m.receipt_for is not None
                                      and m.from_.startswith(ALICE)), [],
                         "a receipt to a contact without a presence subscription")

        # Subscription both ways.
        mark, pmark = c.mark(), bob.presence_mark()
        c.ok("subscribe", account="home", jid=BOB)
        bob.wait_presence(type="subscribe", from_=ALICE, since=pmark)
        bob.send_presence(to=ALICE, ptype="subscribed")
        bob.send_presence(to=ALICE, ptype="subscribe")
        c.wait_event("subscription", since=mark, kind="subscribe", **{"from": BOB})
        c.ok("approve", account="home", jid=BOB)
        c.wait_event(lambda e: e["event"] == "roster" and any(
            i["jid"] == BOB and i["subscription"] == "both" for i in e["items"]), since=mark)
        bob.wait_presence(type="subscribed", from_=ALICE, since=pmark)

        # Now bob's request is answered, to his full JID, with his message id.
        mmark = bob.message_mark()
        bob.send_raw(f"<message to='{ALICE}' type='chat' id='bob-req-2'><body>and now?"
                     f"</body><request xmlns='{RECEIPTS_NS}'/></message>")
        receipt = bob.wait_message(lambda m: m.receipt_for == "bob-req-2", since=mmark)
        self.assertEqual(receipt.from_, full, receipt.xml)
        self.assertEqual(receipt.to, bob.full_jid, receipt.xml)
        self.assertIsNone(receipt.body, receipt.xml)
        c.wait_event("message", body="and now?")
        self.marker_exchange(c, bob, "2")
        self.assertEqual(len(bob.received(lambda m: m.receipt_for == "bob-req-2")), 1)
        self.assertEqual(bob.received(lambda m: m.receipt_for == "bob-req-1"), [],
                         "a late receipt for the message from before the subscription")
        # Receipts and markers are not messages.
        self.assertEqual([e for e in c.find_events("message") if not e["body"]], [])

    def test_only_the_recipient_moves_a_message_state(self):
        """Anyone can learn our message ids (in a room, for example): a receipt, a marker
        or an error from someone the message was not for changes nothing."""
        d, c, full, bob = self.setup_pair()
        r = c.ok("send", account="home", to="carol@localhost", body="for carol only",
                 client_id="not-bobs")
        c.wait_event("message-state", msg_id=r["msg_id"], state="acked")
        mark = c.mark()
        for payload in (f"<received xmlns='{RECEIPTS_NS}' id='not-bobs'/>",
                        f"<displayed xmlns='{MARKERS_NS}' id='not-bobs'/>"):
            bob.send_raw(f"<message to='{full}' type='chat'>{payload}</message>")
        bob.send_raw(f"<message to='{full}' type='error' id='not-bobs'><error type='cancel'>"
                     "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
        # The daemon handles stanzas in order: once bob's next message is an event, the
        # three before it were handled.
        bob.send_message(full, "after the forgeries")
        c.wait_event("message", body="after the forgeries", since=mark)
        self.assertEqual([e for e in c.find_events("message-state", since=mark)
                          if e["msg_id"] == r["msg_id"]], [])
        # The log comes through a pipe that another thread reads: wait for the third line
        # (under ASan it came after the event), then check there are no more.
        d.wait_for(r"ignored a (delivered|displayed|failed) for message not-bobs", timeout=10, nth=3)
        self.assertEqual(d.count(r"ignored a (delivered|displayed|failed) for message not-bobs"), 3)

    def test_a_groupchat_stanza_id_from_a_non_room_is_not_trusted(self):
        """A groupchat message from someone who is not a room we are in, with a stanza-id
        "by" themselves: that id is no archive id of ours (XEP-0359 §3.2). The message is
        shown under its own id, and the archive position does not move: a message missed
        while offline still comes from the archive afterwards."""
        d, c, full, bob = self.setup_pair()
        mark = c.mark()
        bob.send_raw(f"<message to='{full}' type='groupchat' id='gc-1'><body>not a room</body>"
                     f"<stanza-id xmlns='urn:xmpp:sid:0' by='{BOB}' id='bogus-archive-id'/></message>")
        e = c.wait_event("message", body="not a room", since=mark)
        self.assertEqual(e["msg_id"], "gc-1", e)
        d.stop()
        bob.send_message(ALICE, "while alice was away")
        d2 = self.start_daemon([self.account("home", "alice")])
        c2 = self.client(d2, hello="tests")
        c2.wait_event("message", body="while alice was away")
        d2.wait_for(r"archive catch-up: \d+ message")
        self.assertEqual(d2.count("archive catch-up failed"), 0)

    def test_chat_states(self):
        d = self.start_daemon([self.account("home", "alice"),
                               harness.account_section("off", "carol@localhost",
                                                       port=free_port(), ca_file=self.certs.ca_cert,
                                                       password=self.USERS["carol"])])
        c = self.client(d, hello="tests", replay=False)
        full = c.ok("accounts")["accounts"][0]["bound_jid"]
        bob = self.peer("bob")

        bob.send_chat_state(full, "composing")
        ev = c.wait_event("chat-state", **{"from": bob.full_jid})
        self.assertEqual((ev["seq"], ev["account"], ev["to"], ev["state"]),
                         (0, "home", full, "composing"), ev)
        self.assertRegex(ev["stamp"], harness.RFC3339_MS)
        bob.send_chat_state(full, "paused")
        c.wait_event("chat-state", state="paused", **{"from": bob.full_jid})
        # A chat state with a body is a message (and the state rides along).
        bob.send_raw(f"<message to='{full}' type='chat' id='with-body'><body>typed it"
                     f"</body><active xmlns='{harness.CHATSTATES_NS}'/></message>")
        c.wait_event("message", body="typed it")
        self.assertEqual([e for e in c.find_events("message") if e["body"] != "typed it"], [],
                         "a chat state without a body became a message")

        # Ours to bob: a message without a body.
        for state in ("composing", "paused", "active", "inactive", "gone"):
            with self.subTest(state=state):
                mark = bob.message_mark()
                r = c.ok("chat-state", account="home", to=BOB, state=state)
                self.assertIs(r["ok"], True, r)
                m = bob.wait_message(lambda m: m.chat_state == state, since=mark)
                self.assertIsNone(m.body, m.xml)
                self.assertTrue(m.from_.startswith(ALICE + "/"), m.xml)
        for fields, code in (({"account": "home", "to": BOB, "state": "typing"}, "bad-request"),
                             ({"account": "home", "to": BOB}, "bad-request"),
                             ({"account": "home", "to": "@@", "state": "active"}, "bad-jid"),
                             ({"account": "nope", "to": BOB, "state": "active"},
                              "unknown-account"),
                             ({"account": "off", "to": BOB, "state": "active"}, "not-online")):
            with self.subTest(fields=fields):
                r = c.request("chat-state", **fields)
                self.assertEqual(r.get("error", {}).get("code"), code, r)

        # Not stored: a replay of everything has the message but no chat-state.
        audit = self.client(d, hello="audit", since=0)
        audit.wait_replay()
        bob.send_message(full, "marker")
        audit.wait_event("message", body="marker")
        self.assertEqual(len(audit.find_events("message", body="typed it")), 1)
        self.assertEqual(audit.find_events("chat-state"), [], "chat states were replayed")

    def test_corrections_and_actions(self):
        d, c, full, bob = self.setup_pair()

        # bob corrects himself.
        bob.send_message(ALICE, "helo", id="orig-1")
        first = c.wait_event("message", body="helo")
        self.assertEqual(first["replaces"], "", first)
        bob.send_raw(f"<message to='{ALICE}' type='chat' id='corr-1'><body>hello</body>"
                     f"<replace xmlns='{CORRECT_NS}' id='orig-1'/></message>")
        corr = c.wait_event("message", body="hello")
        self.assertEqual(corr["replaces"], first["msg_id"],
                         "replaces names the corrected message by the msg_id its event had")
        self.assertNotEqual(corr["msg_id"], first["msg_id"], corr)
        # A correction of a message the daemon never saw: the id the sender gave it.
        bob.send_raw(f"<message to='{ALICE}' type='chat' id='corr-2'><body>fixed</body>"
                     f"<replace xmlns='{CORRECT_NS}' id='never-seen'/></message>")
        self.assertEqual(c.wait_event("message", body="fixed")["replaces"], "never-seen")

        # /me from bob arrives as is.
        bob.send_message(ALICE, "/me waves", id="me-1")
        me = c.wait_event("message", body="/me waves")
        self.assertEqual((me["outgoing"], me["replaces"]), (False, ""), me)

        # alice corrects herself.
        r1 = c.ok("send", account="home", to=BOB, body="frist", client_id="a-1")
        bob.wait_message(body="frist")
        r2 = c.ok("send", account="home", to=BOB, body="first", replace=r1["msg_id"])
        self.assertNotEqual(r2["msg_id"], r1["msg_id"], r2)
        fixed = bob.wait_message(body="first")
        self.assertEqual(fixed.replace_id, r1["msg_id"], fixed.xml)
        self.assertEqual(fixed.origin_id, r2["msg_id"], fixed.xml)
        out = c.wait_event("message", msg_id=r2["msg_id"])
        self.assertEqual((out["outgoing"], out["replaces"], out["body"]),
                         (True, r1["msg_id"], "first"), out)
        # /me from alice, unchanged.
        c.ok("send", account="home", to=BOB, body="/me waves back", client_id="a-me")
        self.assertEqual(bob.wait_message(origin_id="a-me").body, "/me waves back")

        # Only our own messages, to the same JID, can be corrected.
        for fields in ({"to": BOB, "replace": first["msg_id"]},          # incoming
                       {"to": "carol@localhost", "replace": r1["msg_id"]},  # other JID
                       {"to": BOB, "replace": "no-such-message"}):
            with self.subTest(fields=fields):
                r = c.request("send", account="home", body="nope", **fields)
                self.assertEqual(r.get("error", {}).get("code"), "bad-request", r)
        self.assertEqual(bob.received(body="nope"), [])

    def test_displayed_stays_local_by_default_and_contacts_markers_count(self):
        d, c, full, bob = self.setup_pair()
        bob.send_message(ALICE, "read me", id="rm-1")
        ev = c.wait_event("message", body="read me")
        r = c.ok("displayed", account="home", to=BOB, msg_id=ev["msg_id"])
        self.assertIs(r["sent"], False, r)
        self.marker_exchange(c, bob, "1")
        self.assertEqual(bob.received(lambda m: m.displayed_id is not None), [],
                         "a displayed marker left without chat_markers")

        # bob has displayed alice's message.
        s = c.ok("send", account="home", to=BOB, body="did you see this", client_id="dy-1")
        got = bob.wait_message(body="did you see this")
        self.assertIsNone(got.child(MARKERS_NS, "markable"),
                          f"markable without chat_markers (we would ask what we do not give)\n{got.xml}")
        bob.send_raw(f"<message to='{ALICE}' type='chat' id='disp-1'>"
                     f"<displayed xmlns='{MARKERS_NS}' id='{got.id}'/></message>")
        c.wait_event("message-state", msg_id=s["msg_id"], state="displayed")
        # A later receipt does not move it back (states only move forward).
        mark = c.mark()
        bob.send_raw(f"<message to='{ALICE}' type='chat' id='late-receipt'>"
                     f"<received xmlns='{RECEIPTS_NS}' id='{got.id}'/></message>")
        bob.send_message(ALICE, "after the late receipt")
        c.wait_event("message", body="after the late receipt", since=mark)
        self.assertEqual(c.find_events("message-state", since=mark, msg_id=s["msg_id"]), [],
                         "a receipt after `displayed` moved the state")

        for fields, code in (({"to": BOB}, "bad-request"),
                             ({"msg_id": ev["msg_id"]}, "bad-request"),
                             ({"to": "@@", "msg_id": ev["msg_id"]}, "bad-jid")):
            with self.subTest(fields=fields):
                r = c.request("displayed", account="home", **fields)
                self.assertEqual(r.get("error", {}).get("code"), code, r)

    def test_displayed_is_sent_with_chat_markers_on(self):
        d, c, full, bob = self.setup_pair(chat_markers=True)
        bob.send_raw(f"<message to='{ALICE}' type='chat' id='rm-2'><body>read me too</body>"
                     f"<markable xmlns='{MARKERS_NS}'/></message>")
        ev = c.wait_event("message", body="read me too")
        mark = bob.message_mark()
        r = c.ok("displayed", account="home", to=BOB, msg_id=ev["msg_id"])
        self.assertIs(r["sent"], True, r)
        marker = bob.wait_message(lambda m: m.displayed_id is not None, since=mark)
        self.assertEqual(marker.displayed_id, "rm-2",
                         "XEP-0333 §3: the marker copies the id attribute of the message "
                         f"it refers to\n{marker.xml}")
        self.assertIsNone(marker.body, marker.xml)
        # ... and our own chat messages ask bob for his (XEP-0333 §4.1).
        c.ok("send", account="home", to=BOB, body="mark me", client_id="mm-1")
        got = bob.wait_message(body="mark me")
        self.assertIsNotNone(got.child(MARKERS_NS, "markable"), got.xml)
        self.assertTrue(marker.from_.startswith(ALICE + "/"), marker.xml)


if __name__ == "__main__":
    harness.main()
