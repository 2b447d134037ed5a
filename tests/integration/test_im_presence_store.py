"""Presence is stored only for contacts (issue 13 hardening): anyone can send us presence
from any number of JIDs, so a stranger's presence must not grow the store or the replay of
every front end.

- carol, who is not in alice's roster, sends alice directed presence: a live front end
  sees a `presence` event with seq 0 (shown, not stored); a front end that replays from
  the start never sees it.
- bob, whom alice puts in her roster (`roster-set`), sends her directed presence the same
  way: his `presence` event has a seq and is replayed.
Run alone: /usr/bin/python3 tests/integration/test_im_presence_store.py
"""

import harness
from harness import JsonlTest


class PresenceStoreTest(JsonlTest):
    def test_only_contacts_presence_is_stored(self):
        d = self.start_daemon([self.account("home", "alice")])
        live = self.client(d, hello="live", replay=False)
        full = live.ok("accounts")["accounts"][0]["bound_jid"]

        carol = self.peer("carol", presence=False)
        carol.send_presence(to=full, show="chat", status="hello stranger")
        stranger = live.wait_event("presence", **{"from": carol.full_jid})
        self.assertEqual(stranger["seq"], 0, stranger)
        self.assertEqual(stranger["status"], "hello stranger", stranger)

        live.ok("roster-set", account="home", jid="bob@localhost", name="Bob")
        live.wait_event(lambda e: e.get("event") == "roster" and
                        any(i.get("jid") == "bob@localhost" for i in e.get("items", [])))
        bob = self.peer("bob", presence=False)
        bob.send_presence(to=full, show="away")
        contact = live.wait_event("presence", **{"from": bob.full_jid})
        self.assertGreater(contact["seq"], 0, contact)

        # A front end that replays everything from the start: bob's, never carol's. Bob's
        # presence was stored after carol's, so once it is replayed carol's would have been.
        later = self.client(d, hello="later")
        later.wait_event("presence", **{"from": bob.full_jid})
        self.assertEqual(later.find_events(lambda e: e.get("from") == carol.full_jid), [],
                         "a stranger's presence was stored and replayed")


if __name__ == "__main__":
    harness.main()
