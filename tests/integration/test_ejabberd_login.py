"""stanzad against ejabberd 23.01 (the second real server, see ejabberd.py): log in, a
message each way, a wrong password, XEP-0368 direct TLS, and SCRAM-SHA-1 as well as
SCRAM-SHA-256.

ejabberd stores one SCRAM hash (`auth_scram_hash`) and offers exactly that family, plus
its -PLUS form (channel binding tls-unique, also on TLS 1.3). Each test checks that the
daemon chose that family (`account NAME: online as JID (MECHANISM)`) and prints what the
server offered and what the daemon chose (`EJABBERD-SASL offered=... chosen=...`).

- EjabberdLoginTest (auth_scram_hash sha256, a direct-TLS listener too; one server for
  the class):
  - SCRAM-SHA-256 over STARTTLS; bob (slixmpp) -> alice and alice -> bob once each, each
    counted by id after a marker behind it: exactly one `message` event for bob's (its
    msg_id is the id ejabberd's MAM gave it for alice, as in the SQLite archive), exactly
    one copy at bob of alice's (by origin-id) and its `acked` state; ejabberd lists the
    session (`ejabberdctl connected_users`).
  - A wrong password: `authentication failed` in the log, the account `failed` in
    `accounts`, ejabberd logged the failed SASL attempt, and the daemon does not retry.
  - tls = "direct" to the `tls: true` listener: online without any <starttls/>.
- EjabberdSha1LoginTest (auth_scram_hash sha): SCRAM-SHA-1, and a message arrives.
Run alone: /usr/bin/python3 tests/integration/test_ejabberd_login.py
"""

import re

import harness
from harness import JsonlTest, _say, rx_auth_failed, rx_connecting, rx_online
from ejabberd import EjabberdMixin

ALICE = "alice@localhost"
BOB = "bob@localhost"
USERS = {"alice": "alice-Pw-1!", "bob": "bob-Pw-2!"}


def rx_online_mech(account: str) -> str:
    """`account NAME: online as FULLJID (MECHANISM)`; groups: full JID, mechanism."""
    return rf"account {re.escape(account)}: online as (\S+) \(([^)]+)\)"


class _Base(EjabberdMixin, JsonlTest):
    USERS = USERS

    def online(self, d, account="home", since=0):
        """Wait for the account to be online; returns (full JID, mechanism)."""
        m = d.wait_for(rx_online_mech(account), 20, since=since)
        return m.group(1), m.group(2)

    def check_mechanism(self, d, mechanism: str) -> None:
        """The daemon chose the one SCRAM family the server offers (its -PLUS form is
        accepted too); print what was offered and what was chosen."""
        family = self.ejabberd.mechanism
        self.assertRegex(mechanism, rf"^{re.escape(family)}(-PLUS)?$",
                         f"ejabberd with auth_scram_hash {self.ejabberd.scram_hash}")
        offered = sorted(set(re.findall(r"<mechanism>([^<]+)</mechanism>", d.output())))
        if offered:  # only with log_level = "trace"
            self.assertIn(mechanism, offered)
            self.assertEqual({m for m in offered if m.startswith("SCRAM-")},
                             {family, f"{family}-PLUS"},
                             "ejabberd offers exactly one SCRAM family, with -PLUS")
        _say("", f"EJABBERD-SASL scram_hash={self.ejabberd.scram_hash} "
                 f"offered={','.join(offered) or '?'} chosen={mechanism}")

    def daemon(self, account=None, **daemon):
        daemon.setdefault("log_level", "trace")  # the wire shows the offered mechanisms
        return self.start_daemon([account or self.account("home", "alice")],
                                 online=False, **daemon)


class EjabberdLoginTest(_Base):
    EJABBERD_OPTIONS = {"direct_tls": True}  # scram_hash sha256 by default
    SHARE_EJABBERD = True  # one server for the three tests (each has its own daemon)

    def test_scram_sha256_and_a_message_each_way(self):
        ej = self.ejabberd
        d = self.daemon()
        host, port = d.wait_for(rx_connecting("home")).groups()
        self.assertEqual((host, int(port)), ("127.0.0.1", ej.port))
        full, mechanism = self.online(d)
        self.assertEqual(full, f"{ALICE}/stanzad")
        self.check_mechanism(d, mechanism)
        self.assertIn(full, ej.ctl("connected_users").split(), "ejabberd's sessions")

        c = self.client(d, hello="tests", replay=False)
        bob = self.peer("bob")

        # bob -> alice
        bob.send_message(ALICE, "hello from bob", id="b2a-1")
        e = c.wait_event("message", body="hello from bob")
        self.assertEqual((e["account"], e["from"], e["type"], e["outgoing"], e["history"]),
                         ("home", bob.full_jid, "chat", False, False), e)
        self.assertEqual(e["to"].split("/")[0], ALICE, e)
        # msg_id: the XEP-0359 stanza-id ejabberd's mod_mam stamped for alice, which is
        # the row's `timestamp` in its SQLite archive.
        archived = ej.sql("SELECT timestamp FROM archive WHERE username = 'alice' "
                          "AND txt = 'hello from bob'")
        self.assertEqual([str(r[0]) for r in archived], [e["msg_id"]],
                         "msg_id is alice's archive id for the message")

        # alice -> bob
        bmark = bob.message_mark()
        s = c.ok("send", account="home", to=BOB, body="hello from alice", client_id="a2b-1")
        self.assertEqual(s["msg_id"], "a2b-1")
        got = bob.wait_message(origin_id="a2b-1", since=bmark)
        self.assertEqual((got.body, got.from_, got.type),
                         ("hello from alice", full, "chat"), got.xml)
        c.wait_event("message-state", msg_id="a2b-1", state="acked")

        # Markers behind both (each way is one ordered stream), then count by id.
        bob.send_message(ALICE, "marker b2a", id="b2a-m")
        c.wait_event("message", body="marker b2a")
        c.ok("send", account="home", to=BOB, body="marker a2b", client_id="a2b-m")
        bob.wait_message(origin_id="a2b-m", since=bmark)
        self.assertEqual(len(c.find_events("message", body="hello from bob")), 1)
        self.assertEqual(len(c.find_events("message", msg_id=e["msg_id"])), 1)
        self.assertEqual(len(c.find_events("message", msg_id="a2b-1")), 1,
                         "one outgoing event for alice's message")
        self.assertEqual(len(bob.received(origin_id="a2b-1", since=bmark)), 1,
                         "bob got alice's message once")

        # The password never reaches the log, not even at trace level.
        self.assertNotIn(USERS["alice"], d.output())

    def test_wrong_password(self):
        ej = self.ejabberd
        mark = ej.log_mark()
        d = self.daemon(self.account("home", "alice", password="not-alices-password"))
        d.wait_for(rx_auth_failed("home"), 20)
        c = self.client(d, hello="tests")
        acct = c.ok("accounts")["accounts"][0]
        self.assertEqual((acct["account"], acct["state"], acct["bound_jid"]),
                         ("home", "failed", ""), acct)
        self.assertIn("authentication failed", acct["reason"], acct)
        # ejabberd's side: one failed SASL attempt for alice, with the SCRAM family.
        fail = ej.wait_for_log(rf"Failed c2s ({re.escape(ej.mechanism)}(-PLUS)?) "
                               rf"authentication for {re.escape(ALICE)}", since=mark)
        _say("", f"EJABBERD-SASL failed attempt: {fail.group(1)}")
        self.assertEqual(d.count(rx_online("home")), 0)
        # Not retried: one connection, one auth failure.
        self.assertEqual(d.count(rx_connecting("home")), 1)
        self.assertEqual(d.count(rx_auth_failed("home")), 1)

    def test_direct_tls(self):
        ej = self.ejabberd
        acct = self.account("home", "alice", tls="direct")
        acct["port"] = ej.direct_tls_port
        d = self.daemon(acct)
        host, port = d.wait_for(rx_connecting("home")).groups()
        self.assertEqual((host, int(port)), ("127.0.0.1", ej.direct_tls_port))
        full, mechanism = self.online(d)
        self.check_mechanism(d, mechanism)
        # TLS from the first byte: no STARTTLS negotiation on the wire.
        self.assertNotRegex(d.output(), r"SEND <starttls\b")
        self.assertNotRegex(d.output(), r"RECV <proceed\b")
        c = self.client(d, hello="tests", replay=False)
        bob = self.peer("bob")
        self.assertLess(bob.ping(full), 2.0)
        bob.send_message(ALICE, "over direct TLS", id="dt-1")
        e = c.wait_event("message", body="over direct TLS")
        self.assertEqual(e["from"], bob.full_jid, e)


class EjabberdSha1LoginTest(_Base):
    EJABBERD_OPTIONS = {"scram_hash": "sha"}

    def test_scram_sha1(self):
        d = self.daemon()
        full, mechanism = self.online(d)
        self.assertEqual(full, f"{ALICE}/stanzad")
        self.check_mechanism(d, mechanism)
        c = self.client(d, hello="tests", replay=False)
        bob = self.peer("bob")
        bob.send_message(ALICE, "sha-1 works", id="s1-1")
        e = c.wait_event("message", body="sha-1 works")
        self.assertEqual(e["from"], bob.full_jid, e)


if __name__ == "__main__":
    harness.main()
