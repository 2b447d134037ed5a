"""stanzad against jabberd2 2.7.0 (the third real server, see jabberd2.py): an older
server without XEP-0198 v3, MAM or carbons.

- Login over STARTTLS with SCRAM (jabberd2 offers SCRAM-SHA-1 and SCRAM-SHA-256 from
  its plaintext password store; the daemon takes SHA-256); jabberd2 logs the session.
- bob (slixmpp) -> alice and alice -> bob, each counted by id after a marker behind it:
  exactly one `message` event for bob's message, exactly one copy at bob of alice's (by
  origin-id).
- Features from disco#info: no carbons request, no archive query, no warnings; each
  missing feature said once at info level; `accounts` and `stanzactl status` show them.
- `history` pages from the local store ("source": "local"), backwards and forwards.
- Without XEP-0198, alice's message reaches `acked` through a ping's answer.
- The roster written into jabberd2's database before the first start reaches the daemon.
Run alone: /usr/bin/python3 tests/integration/test_jabberd2_login.py
"""

import re

import harness
from harness import JsonlTest, rx_online
from jabberd2 import Jabberd2Mixin

ALICE = "alice@localhost"
BOB = "bob@localhost"


class Jabberd2LoginTest(Jabberd2Mixin, JsonlTest):
    USERS = {"alice": "alice-Pw-1!", "bob": "bob-Pw-2!"}

    def test_login_roster_and_a_message_each_way(self):
        j2 = self.jabberd2
        d = self.start_daemon(online=False, log_level="trace")
        m = d.wait_for(rf"account home: online as (\S+) \(([^)]+)\)", 20)
        full, mechanism = m.group(1), m.group(2)
        self.assertEqual(full, f"{ALICE}/stanzad")
        self.assertEqual(mechanism, "SCRAM-SHA-256")
        self.assertIn("<starttls", d.output(), "STARTTLS before anything else")
        # jabberd2's c2s logs each bound session.
        harness.poll_until(lambda: re.search(rf"bound: jid={re.escape(full)}", j2.log_text()),
                           10, "jabberd2 to log the session", lambda: j2.log_text()[-2000:])

        c = self.client(d, hello="tests", since=0)
        roster = c.wait_event("roster", timeout=10)
        self.assertEqual([(i["jid"], i["subscription"], i["groups"]) for i in roster["items"]],
                         [(BOB, "both", ["Friends"])], roster)

        bob = self.peer("bob")
        # bob -> alice
        bob.send_message(ALICE, "hello from bob", id="b2a-1")
        e = c.wait_event("message", body="hello from bob")
        self.assertEqual((e["account"], e["from"], e["type"], e["outgoing"]),
                         ("home", bob.full_jid, "chat", False), e)
        self.assertEqual(e["msg_id"], "b2a-1", "no stanza-id from jabberd2: the sender's id")

        # alice -> bob
        bmark = bob.message_mark()
        s = c.ok("send", account="home", to=BOB, body="hello from alice", client_id="a2b-1")
        self.assertEqual(s["msg_id"], "a2b-1")
        got = bob.wait_message(origin_id="a2b-1", since=bmark)
        self.assertEqual((got.body, got.from_, got.type), ("hello from alice", full, "chat"),
                         got.xml)
        # No XEP-0198 here: the answer to a ping sent after it acknowledges it (issue 18).
        c.wait_event("message-state", msg_id="a2b-1", state="acked")

        # Markers behind both (each way is one ordered stream), then count by id.
        bob.send_message(ALICE, "marker b2a", id="b2a-m")
        c.wait_event("message", body="marker b2a")
        c.ok("send", account="home", to=BOB, body="marker a2b", client_id="a2b-m")
        bob.wait_message(origin_id="a2b-m", since=bmark)
        self.assertEqual(len(c.find_events("message", body="hello from bob")), 1)
        self.assertEqual(len(c.find_events("message", msg_id="a2b-1")), 1)
        self.assertEqual(len(bob.received(origin_id="a2b-1", since=bmark)), 1)
        self.assertEqual(d.count(rx_online("home")), 1)

        # Features from disco#info (XEP-0030): nothing asked that jabberd2 does not offer,
        # so no warnings; each missing feature said once at info level.
        self.assertNotRegex(d.output(), r"could not enable carbons|archive catch-up failed")
        self.assertNotIn("urn:xmpp:carbons:2'/></iq>", d.output(), "no carbons request")
        self.assertNotIn("<query xmlns='urn:xmpp:mam:2'", d.output(), "no archive query")
        for note in ("server has no message archive: messages that arrive while the link is "
                     "down can be lost; history is served from the local store",
                     "server has no carbons", "server has no stream management"):
            self.assertEqual(d.count(rf"info  account home: {re.escape(note)}"), 1, note)
        acct = c.ok("accounts")["accounts"][0]
        self.assertEqual(acct["capabilities"], {"stream_management": False, "archive": False,
                                                "carbons": False}, acct)
        # `history` without MAM: pages from the local store, "source": "local".
        h = c.ok("history", account="home", **{"with": BOB}, max=2)
        self.assertEqual(h["source"], "local", h)
        self.assertEqual([m["body"] for m in h["messages"]], ["marker b2a", "marker a2b"], h)
        self.assertFalse(h["complete"], h)
        self.assertTrue(all(m["history"] for m in h["messages"]), h)
        older = c.ok("history", account="home", **{"with": BOB}, max=10, before=h["first"])
        self.assertEqual([m["body"] for m in older["messages"]],
                         ["hello from bob", "hello from alice"], older)
        self.assertTrue(older["complete"], older)
        newer = c.ok("history", account="home", **{"with": BOB}, max=10, after=older["last"])
        self.assertEqual([m["body"] for m in newer["messages"]], ["marker b2a", "marker a2b"])
        status = harness.run_stanzactl(["-s", d.socket_path, "status"])
        self.assertEqual(status.returncode, 0, status.stderr)
        self.assertIn("[server: no stream management, no archive, no carbons]", status.stdout)
        self.assertNotIn(self.USERS["alice"], d.output(), "no password in the log")


if __name__ == "__main__":
    harness.main()
