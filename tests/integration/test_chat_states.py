"""XEP-0085 §5.1 from our side: our messages to a contact carry <active/> until the contact
replies; after a reply without any chat state, nothing about chat states goes to that
contact (no <active/>, no standalone notification from a front end's `chat-state`), until
the contact sends one itself. Checked at a real slixmpp peer, message by message.
Run alone: /usr/bin/python3 tests/integration/test_chat_states.py
"""

import harness
from harness import JsonlTest

BOB = "bob@localhost"


class ChatStatesTest(JsonlTest):
    def test_no_chat_states_to_a_contact_who_replied_without_them(self):
        d = self.start_daemon()
        full = self.wait_online(d, "home")
        bob = self.peer("bob")
        c = self.client(d, hello="states", replay=False)

        c.ok("send", account="home", to=BOB, body="first", client_id="cs-1")
        self.assertEqual(bob.wait_message(origin_id="cs-1").chat_state, "active")

        # bob replies without a chat state: stanzad must not send any more (MUST NOT).
        bob.send_message(full, "plain reply", id="reply-1")
        reply = c.wait_event("message", body="plain reply")
        self.assertNotIn("state", reply)
        c.ok("chat-state", account="home", to=BOB, state="composing")
        c.ok("send", account="home", to=BOB, body="second", client_id="cs-2")
        second = bob.wait_message(origin_id="cs-2")
        self.assertIsNone(second.chat_state)
        # The composing would have arrived before "second": the stream keeps our order.
        self.assertEqual(bob.received(lambda m: m.chat_state == "composing"), [])

        # bob sends a notification: it wants them again.
        bob.send_chat_state(full, "composing")
        c.wait_event("chat-state", state="composing")
        c.ok("send", account="home", to=BOB, body="third", client_id="cs-3")
        self.assertEqual(bob.wait_message(origin_id="cs-3").chat_state, "active")
        c.ok("chat-state", account="home", to=BOB, state="paused")
        bob.wait_message(lambda m: m.chat_state == "paused")


if __name__ == "__main__":
    harness.main()
