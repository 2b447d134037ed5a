"""What a front end may send, and what becomes of a message the server will not take (issue 13
hardening):

- a body over 64 KiB as XML (what goes on the wire: `<` counts 4 bytes) is refused with
  `bad-request` before anything is stored; 60,000 plain bytes go through and arrive;
- a message the server refuses by ending the stream each time (here a Prosody with
  `c2s_stanza_size_limit = 10000` and a 30,000-byte body) is sent on 5 connections, then
  moved to `failed` with a reason, instead of keeping the account reconnecting for ever;
  the account stays online and later messages arrive;
- `cancel` takes back a message queued while the account is offline (it becomes `failed`,
  error `cancelled`, and is never sent); one that has left the daemon is `too-late`.
Run alone: /usr/bin/python3 tests/integration/test_send_limits.py
"""

import harness
from harness import JsonlTest, free_port

BOB = "bob@localhost"


class SendLimitsTest(JsonlTest):
    PROSODY_OPTIONS = {"extra_global": "c2s_stanza_size_limit = 10000\n"}

    def test_bodies_over_the_limit_are_refused_before_they_are_stored(self):
        d = self.start_daemon([self.account("home", "alice")])
        c = self.client(d, hello="t", replay=False)
        for body in ("a" * 70_000, "<" * 20_000):
            mark = c.mark()
            r = c.request("send", account="home", to=BOB, body=body)
            self.assertEqual(r.get("error", {}).get("code"), "bad-request", r)
            self.assertIn("at most 65536", r["error"]["message"], r)
            self.assertEqual(c.find_events("message", since=mark), [], "a refused message was stored")

    def test_a_message_the_server_keeps_refusing_fails_after_five_connections(self):
        d = self.start_daemon([self.account("home", "alice")])
        c = self.client(d, hello="t", replay=False)
        bob = self.peer("bob")
        big = c.ok("send", account="home", to=BOB, body="x" * 30_000)["msg_id"]
        failed = c.wait_event("message-state", msg_id=big, state="failed", timeout=60)
        self.assertIn("did not accept it on 5 connections", failed["error"], failed)
        # Not sent again: the account settles online (its sixth session) and stays there.
        d.wait_for(harness.rx_online("home"), nth=6, timeout=20)
        # Prosody ends the stream with policy-violation, or (when the error does not get out
        # before it closes) just closes the connection.
        self.assertEqual(d.count(r"account home: disconnected: "), 5)
        self.assertGreater(d.count(r"account home: disconnected: stream error from the server: policy-violation"), 0)
        small = c.ok("send", account="home", to=BOB, body="after the big one")["msg_id"]
        c.wait_event("message-state", msg_id=small, state="acked", timeout=20)
        bob.wait_message(body="after the big one")
        self.assertEqual(bob.received(lambda m: len(m.body or "") == 30_000), [])

    def test_cancel_takes_back_a_queued_message_only(self):
        d = self.start_daemon([self.account("home", "alice"),
                               harness.account_section("off", "carol@localhost", port=free_port(),
                                                       ca_file=self.certs.ca_cert,
                                                       password=self.USERS["carol"])])
        c = self.client(d, hello="t", replay=False)
        queued = c.ok("send", account="off", to=BOB, body="never mind")["msg_id"]
        c.wait_event("message-state", msg_id=queued, state="accepted")
        c.ok("cancel", account="off", msg_id=queued)
        ev = c.wait_event("message-state", msg_id=queued, state="failed")
        self.assertEqual(ev["error"], "cancelled", ev)
        again = c.request("cancel", account="off", msg_id=queued)
        self.assertEqual(again.get("error", {}).get("code"), "too-late", again)
        unknown = c.request("cancel", account="off", msg_id="no-such-message")
        self.assertEqual(unknown.get("error", {}).get("code"), "item-not-found", unknown)
        empty = c.request("cancel", account="off", msg_id="")
        self.assertEqual(empty.get("error", {}).get("code"), "bad-request", empty)

        bob = self.peer("bob")
        sent = c.ok("send", account="home", to=BOB, body="already gone")["msg_id"]
        bob.wait_message(body="already gone")
        late = c.request("cancel", account="home", msg_id=sent)
        self.assertEqual(late.get("error", {}).get("code"), "too-late", late)
        # The cancelled one never left: bob, on the same server, got only the other.
        self.assertEqual(bob.received(lambda m: m.body == "never mind"), [])


if __name__ == "__main__":
    harness.main()
