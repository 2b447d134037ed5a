"""Every bad input of docs/json-protocol.md's error table gets its error code, the
connection stays open (the next request works), and another client attached meanwhile
sees none of it.

Each case writes the bad line and then a good `accounts` request with an id, and reads the
next two replies: replies come in request order, so the first must be the error (with the
bad request's id when it had one) and the second the good reply.
"""

import json

import harness
from harness import JsonlTest

MiB = 1 << 20


def line_of_length(n: int, id_value: str) -> bytes:
    """A valid `accounts` request of exactly n bytes (without the newline)."""
    head = b'{"op":"accounts","id":"' + id_value.encode() + b'","pad":"'
    tail = b'"}'
    line = head + b"x" * (n - len(head) - len(tail)) + tail
    assert len(line) == n
    json.loads(line)
    return line


class ErrorsTest(JsonlTest):
    def check(self, c, line, code, message_rx=None, has_id=None):
        """Write `line` (bytes, str or dict), then a good request; the first reply must be
        error `code`, the second the good one."""
        if isinstance(line, dict):
            line = json.dumps(line).encode()
        c.send_raw_line(line)
        follow = c.next_id()
        c.send_json({"op": "accounts", "id": follow})
        err = c.next_reply()
        shown = line if len(line) < 300 else line[:200] + b"..."
        self.assertIs(err.get("ok"), False, f"{shown!r} -> {err}")
        self.assertEqual(err.get("error", {}).get("code"), code, f"{shown!r} -> {err}")
        message = err["error"].get("message")
        self.assertIsInstance(message, str, err)
        self.assertTrue(message, f"empty error message: {err}")
        if message_rx:
            self.assertRegex(message, message_rx, f"{shown!r} -> {err}")
        if has_id is not None:
            self.assertEqual(err.get("id"), has_id, f"the error must echo the id: {err}")
        good = c.next_reply()
        self.assertEqual(good.get("id"), follow, f"after {shown!r}: {good}")
        self.assertIs(good.get("ok"), True, f"after {shown!r}: {good}")
        self.assertFalse(c.eof, f"the connection closed after {shown!r}")
        return err

    def test_every_error_code_and_the_session_continues(self):
        d = self.start_daemon()
        full = self.wait_online(d, "home")
        bystander = self.client(d, hello="bystander", replay=False)
        c = self.client(d, name="victim")

        # hello-required: anything but hello first (the connection stays usable).
        for op, fields in [("accounts", {}), ("send", {"account": "home",
                           "to": "bob@localhost", "body": "x"}), ("ack", {"seq": 1})]:
            r = c.request(op, **fields)
            self.assertEqual(r.get("error", {}).get("code"), "hello-required", r)
            self.assertEqual(r.get("id"), c._next_id - 1, r)
        # A bad hello is a bad-request, and hello is still required afterwards.
        for fields, rx in [({"client": "bad name!"}, "client"),
                           ({"client": "x" * 65}, "client"),
                           ({"client": ""}, "client"),
                           ({}, "client"),
                           ({"client": 7}, "client"),
                           ({"client": "ok", "since": "0"}, "since"),
                           ({"client": "ok", "since": -1}, "since"),
                           ({"client": "ok", "replay": "yes"}, "replay")]:
            r = c.request("hello", **fields)
            self.assertEqual(r.get("error", {}).get("code"), "bad-request", (fields, r))
            self.assertRegex(r["error"]["message"], rx, (fields, r))
        r = c.request("accounts")
        self.assertEqual(r.get("error", {}).get("code"), "hello-required", r)
        self.assertIs(c.hello("victim", replay=False).get("ok"), True)
        # A second hello on the same connection.
        self.check(c, {"op": "hello", "id": "h2", "client": "victim"}, "bad-request",
                   has_id="h2")

        cases = [
            # bad-json: not JSON, or not an object (no id can be known)
            ("truncated", b'{"op":"accounts",', "bad-json", None),
            ("garbage", b"not json at all", "bad-json", None),
            ("array", b'[{"op":"accounts","id":1}]', "bad-json", None),
            ("string", b'"accounts"', "bad-json", None),
            ("number", b"42", "bad-json", None),
            ("trailing", b'{"op":"accounts","id":1}}', "bad-json", None),
            ("invalid utf-8", b'{"op":"accounts","id":1,"x":"\xff\xfe"}', "bad-json", None),
            # unknown-op
            ("unknown op", {"op": "fly", "id": "u1"}, "unknown-op", None),
            ("missing op", {"id": "u2", "account": "home"}, "unknown-op", None),
            ("op not a string", {"op": 5, "id": "u3"}, "unknown-op", None),
            ("op null", {"op": None, "id": "u4"}, "unknown-op", None),
            # bad-request: missing fields (the message names the field)
            ("send without body", {"op": "send", "id": "m1", "account": "home",
                                   "to": "bob@localhost"}, "bad-request", "body"),
            ("send without to", {"op": "send", "id": "m2", "account": "home",
                                 "body": "x"}, "bad-request", r"\bto\b"),
            ("send without account", {"op": "send", "id": "m3", "to": "bob@localhost",
                                      "body": "x"}, "bad-request", "account"),
            ("roster without account", {"op": "roster", "id": "m4"}, "bad-request",
             "account"),
            ("ack without seq", {"op": "ack", "id": "m5"}, "bad-request", "seq"),
            ("raw without xml", {"op": "raw", "id": "m6", "account": "home"},
             "bad-request", "xml"),
            ("subscribe without jid", {"op": "subscribe", "id": "m7", "account": "home"},
             "bad-request", "jid"),
            # bad-request: wrong types
            ("body a number", {"op": "send", "id": "t1", "account": "home",
                               "to": "bob@localhost", "body": 5}, "bad-request", "body"),
            ("to an array", {"op": "send", "id": "t2", "account": "home",
                             "to": ["bob@localhost"], "body": "x"}, "bad-request", r"\bto\b"),
            ("account null", {"op": "roster", "id": "t3", "account": None},
             "bad-request", "account"),
            ("seq a string", {"op": "ack", "id": "t4", "seq": "3"}, "bad-request", "seq"),
            ("seq a float", {"op": "ack", "id": "t5", "seq": 1.5}, "bad-request", "seq"),
            ("type a number", {"op": "send", "id": "t6", "account": "home",
                               "to": "bob@localhost", "body": "x", "type": 1},
             "bad-request", "type"),
            ("status an object", {"op": "presence", "id": "t7", "account": "home",
                                  "status": {}}, "bad-request", "status"),
            # bad-request: bad values
            ("type shout", {"op": "send", "id": "v1", "account": "home",
                            "to": "bob@localhost", "body": "x", "type": "shout"},
             "bad-request", "type"),
            ("show busy", {"op": "presence", "id": "v2", "account": "home",
                           "show": "busy"}, "bad-request", "show"),
            ("client_id with a space", {"op": "send", "id": "v3", "account": "home",
                                        "to": "bob@localhost", "body": "x",
                                        "client_id": "a b"}, "bad-request", "client_id"),
            ("client_id too long", {"op": "send", "id": "v4", "account": "home",
                                    "to": "bob@localhost", "body": "x",
                                    "client_id": "c" * 129}, "bad-request", "client_id"),
            ("client_id empty", {"op": "send", "id": "v5", "account": "home",
                                 "to": "bob@localhost", "body": "x", "client_id": ""},
             "bad-request", "client_id"),
            ("ack negative", {"op": "ack", "id": "v6", "seq": -1}, "bad-request", "seq"),
            ("ack past the last event", {"op": "ack", "id": "v7", "seq": 10 ** 12},
             "bad-request", None),
            # unknown-account
            ("send hme", {"op": "send", "id": "a1", "account": "hme", "to": "bob@localhost",
                          "body": "x"}, "unknown-account", "hme"),
            ("roster nope", {"op": "roster", "id": "a2", "account": "nope"},
             "unknown-account", "nope"),
            ("presence nope", {"op": "presence", "id": "a3", "account": "nope"},
             "unknown-account", None),
            ("raw nope", {"op": "raw", "id": "a4", "account": "nope",
                          "xml": "<message to='bob@localhost'><body>x</body></message>"},
             "unknown-account", None),
            ("subscribe nope", {"op": "subscribe", "id": "a5", "account": "nope",
                                "jid": "carol@localhost"}, "unknown-account", None),
            # bad-jid (RFC 7622); the message says which part
            ("empty localpart", {"op": "send", "id": "j1", "account": "home",
                                 "to": "@localhost", "body": "x"}, "bad-jid", "(?i)local"),
            ("empty domain", {"op": "send", "id": "j2", "account": "home", "to": "bob@",
                              "body": "x"}, "bad-jid", "(?i)domain"),
            ("empty resource", {"op": "send", "id": "j3", "account": "home",
                                "to": "bob@localhost/", "body": "x"}, "bad-jid",
             "(?i)resource"),
            ("empty jid", {"op": "send", "id": "j4", "account": "home", "to": "",
                           "body": "x"}, "bad-jid", None),
            ("space in localpart", {"op": "send", "id": "j5", "account": "home",
                                    "to": "b ob@localhost", "body": "x"}, "bad-jid",
             "(?i)local"),
            ("localpart too long", {"op": "send", "id": "j6", "account": "home",
                                    "to": "b" * 1024 + "@localhost", "body": "x"},
             "bad-jid", "(?i)local"),
            ("subscribe bad jid", {"op": "subscribe", "id": "j7", "account": "home",
                                   "jid": "carol@@localhost"}, "bad-jid", None),
            # rooms and archives
            ("join a full JID", {"op": "join", "id": "s1", "account": "home",
                                 "room": "room@conference.localhost/alice"}, "bad-jid", None),
            ("part a room we are not in", {"op": "part", "id": "s2", "account": "home",
                                           "room": "room@conference.localhost"},
             "not-joined", "room@conference.localhost"),
            ("history max too big", {"op": "history", "id": "s3", "account": "home",
                                     "with": "bob@localhost", "max": 201}, "bad-request", "max"),
            # bad-xml: raw must be one well-formed message/presence/iq in jabber:client
            ("unclosed", {"op": "raw", "id": "x1", "account": "home",
                          "xml": "<message to='bob@localhost'><body>x</message>"},
             "bad-xml", None),
            ("not a stanza", {"op": "raw", "id": "x2", "account": "home",
                              "xml": "<foo to='bob@localhost'/>"}, "bad-xml", None),
            ("two stanzas", {"op": "raw", "id": "x3", "account": "home",
                             "xml": "<message to='bob@localhost'/><message to='bob@localhost'/>"},
             "bad-xml", None),
            ("text", {"op": "raw", "id": "x4", "account": "home", "xml": "hello"},
             "bad-xml", None),
            ("other namespace", {"op": "raw", "id": "x5", "account": "home",
                                 "xml": "<message xmlns='urn:example:other' to='bob@localhost'/>"},
             "bad-xml", None),
            ("stream element", {"op": "raw", "id": "x6", "account": "home",
                                "xml": "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>"},
             "bad-xml", None),
            ("stanza plus garbage", {"op": "raw", "id": "x7", "account": "home",
                                     "xml": "<presence/>garbage"}, "bad-xml", None),
        ]
        for label, line, code, rx in cases:
            with self.subTest(label):
                has_id = line.get("id") if isinstance(line, dict) else None
                self.check(c, line, code, rx, has_id=has_id)

        # Any JSON value is an id, echoed as it was.
        for rid in [{"a": [1, "x"]}, [3, 4], "s", 0, -7, 2.5, True]:
            r = c.request("accounts", id=rid)
            self.assertIs(r.get("ok"), True, r)

        # Blank lines are not requests: no reply at all (the next reply is the good one).
        c.send_raw_line(b"")
        c.send_raw_line(b"   ")
        self.assertIs(c.ok("accounts").get("ok"), True)

        # Line length: exactly 1 MiB is a request; one byte more is line-too-long; a far
        # longer one is skipped as it arrives; the connection stays open throughout.
        c.send_raw_line(line_of_length(MiB, "exact"))
        r = c.wait_reply("exact", timeout=20)
        self.assertIs(r.get("ok"), True, {k: r[k] for k in r if k != "accounts"})
        self.check(c, line_of_length(MiB + 1, "over"), "line-too-long")
        self.check(c, b"{" + b"y" * (5 * MiB) + b"}", "line-too-long")
        # A long line delivered in pieces with pauses is still one line.
        follow = c.next_id()
        big = b'{"op":"accounts","id":"slow","pad":"' + b"z" * (MiB + 10)
        for i in range(0, len(big), 256 * 1024):
            c.sock.sendall(big[i:i + 256 * 1024])
        c.send_raw_line(b'"}')
        c.send_json({"op": "accounts", "id": follow})
        err = c.next_reply(timeout=20)
        self.assertEqual(err.get("error", {}).get("code"), "line-too-long", err)
        self.assertEqual(c.next_reply().get("id"), follow)

        # Replies keep the order of the requests, also when an earlier one waits for the
        # server (history) and a later line cannot even be read.
        slow = c.next_id()
        c.send_json({"op": "history", "id": slow, "account": "home", "with": "bob@localhost"})
        c.send_raw_line(b"{not json")
        after = c.next_id()
        c.send_json({"op": "accounts", "id": after})
        first, second, third = c.next_reply(), c.next_reply(), c.next_reply()
        self.assertEqual(first.get("id"), slow, first)
        self.assertEqual(second.get("error", {}).get("code"), "bad-json", second)
        self.assertEqual(third.get("id"), after, third)

        # The session is intact: it still sends, and still gets events.
        bob = self.peer("bob")
        r = c.ok("raw", account="home",
                 xml="<message to='bob@localhost' type='chat'><body>raw ok</body></message>")
        self.assertEqual(r, {"id": r["id"], "ok": True})
        bob.wait_message(body="raw ok")
        r = c.ok("send", account="home", to="bob@localhost", body="send ok")
        bob.wait_message(body="send ok", origin_id=r["msg_id"])
        bob.send_message(full, "events still flow")
        c.wait_event("message", body="events still flow")

        # The bystander saw no reply it did not ask for, and works.
        bystander.wait_event("message", body="events still flow")
        self.assertEqual(bystander.replies, [bystander.hello_reply],
                         "another client's errors reached the bystander")
        self.assertIs(bystander.ok("accounts").get("ok"), True)
        self.assertFalse(bystander.eof)


if __name__ == "__main__":
    harness.main()
