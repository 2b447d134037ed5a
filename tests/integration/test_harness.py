"""The test bed itself, without stanzad: Prosody starts on loopback with the generated
certificates, two slixmpp peers log in over STARTTLS with SCRAM, one pings the other's full
JID and reads its disco#info, and every process is gone afterwards.

When this fails, the environment is broken (prosody, slixmpp, openssl), not the daemon.
"""

import os
import re
import signal
import subprocess
import sys
import textwrap

import harness
from harness import IntegrationTest


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); count it as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class HarnessTest(IntegrationTest):
    def test_two_peers_ping_and_disco(self):
        alice = self.peer("alice")
        bob = self.peer("bob")
        self.assertTrue(alice.full_jid.startswith("alice@localhost/"), alice.full_jid)

        rtt = bob.ping(alice.full_jid, timeout=5)
        self.assertLess(rtt, 1.0)
        identities, features = bob.disco_info(alice.full_jid)
        self.assertIn("client", {category for category, _type, _name in identities})
        self.assertLessEqual({"http://jabber.org/protocol/disco#info", "urn:xmpp:ping",
                              "jabber:iq:version"}, features)
        self.assertEqual(bob.version(alice.full_jid)["name"], "stanzad-test-peer")
        # slixmpp answers unknown queries with feature-not-implemented (stanzad must say
        # service-unavailable); what matters here is that raw_iq returns error replies.
        reply = bob.raw_iq(alice.full_jid, "<query xmlns='urn:example:nothing'/>")
        self.assertEqual(reply["type"], "error")
        self.assertEqual(reply["error"]["type"], "cancel")

        # The log strings the daemon's tests rely on.
        sid = self.prosody.wait_for_session("alice@localhost")
        auth = [l for l in self.prosody.session_lines(sid) if "<auth " in l]
        self.assertTrue(any(re.search(r"mechanism='SCRAM-SHA-1'", l) for l in auth), auth)
        alice.close()
        self.prosody.wait_for_session_line(sid, r"Received </stream:stream>")

    def test_wrong_password_is_refused(self):
        with self.assertRaises(harness.PeerError):
            harness.Peer("alice@localhost", "wrong", self.certs.ca_cert, self.prosody.port,
                         timeout=10)

    def test_bad_server_certificates_are_refused(self):
        # The Peer really verifies (chain and name), so the negative TLS tests of the
        # daemon are not comparing against a client that accepts anything.
        for name, cert, key in [
                ("untrusted", self.certs.untrusted_server_cert, self.certs.untrusted_server_key),
                ("wrong-host", self.certs.wrong_host_cert, self.certs.wrong_host_key),
                ("ip-only", self.certs.ip_only_cert, self.certs.ip_only_key)]:
            with self.subTest(name):
                other = self.start_prosody(name, cert=cert, key=key)
                with self.assertRaisesRegex(harness.PeerError, "TLS verification failed"):
                    harness.Peer("alice@localhost", self.USERS["alice"], self.certs.ca_cert,
                                 other.port, timeout=10)
                other.stop()

    def test_kill_and_restart_on_same_port(self):
        alice = self.peer("alice")
        port, pid = self.prosody.port, self.prosody.proc.pid
        self.prosody.kill()
        self.assertFalse(pid_alive(pid))
        self.prosody.start()
        self.assertEqual(self.prosody.port, port)
        alice.kill()
        alice = self.peer("alice")
        bob = self.peer("bob")
        bob.ping(alice.full_jid)

    def test_stop_leaves_no_process(self):
        pid = self.prosody.proc.pid
        self.peer("alice")  # a connected client must not keep the server alive
        self.assertEqual(self.prosody.stop(), 0)
        self.assertFalse(pid_alive(pid))
        self.assertIn("Shutdown status: Cleaning up", self.prosody.log_text())

    def test_children_die_with_the_test_process(self):
        # A test process killed outright (no atexit, no finally) takes Prosody with it.
        script = textwrap.dedent(f"""
            import sys; sys.path.insert(0, {str(harness.HERE)!r})
            import harness
            p = harness.Prosody({str(self.tmp / 'orphan')!r}, harness.make_ca({str(self.tmp / 'orphan-certs')!r}))
            p.start()
            print(p.proc.pid, flush=True)
            sys.stdin.read()
        """)
        with subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) as child:
            try:
                prosody_pid = int(child.stdout.readline())
                self.assertTrue(pid_alive(prosody_pid))
                child.send_signal(signal.SIGKILL)
                child.wait(5)
                harness.poll_until(lambda: not pid_alive(prosody_pid), 5,
                                   "the orphaned Prosody to die")
            finally:
                child.kill()

    def test_toml_writer(self):
        text = harness.to_toml({
            "daemon": {"log_level": "debug"},
            "account": [{"name": "a", "password_command": "printf '%s\\n' x\"y",
                         "port": 5222, "rooms": [{"jid": "r@c", "nick": "n"}]}],
        })
        self.assertEqual(text, textwrap.dedent("""\
            [daemon]
            log_level = "debug"

            [[account]]
            name = "a"
            password_command = "printf '%s\\\\n' x\\"y"
            port = 5222
            rooms = [{ jid = "r@c", nick = "n" }]
            """))
        import tomllib
        self.assertEqual(tomllib.loads(text)["account"][0]["password_command"],
                         "printf '%s\\n' x\"y")


class HarnessImTest(IntegrationTest):
    """The peer-side pieces the IM tests (test_im_*.py) build on, and the Prosody 0.12
    behaviour they assume, with slixmpp peers only."""

    USERS = dict(IntegrationTest.USERS, dave="dave-Pw-4!")
    PROSODY_OPTIONS = {"muc": True}

    def test_muc_peers(self):
        room = "harness@conference.localhost"
        bob, carol, dave = self.peer("bob"), self.peer("carol"), self.peer("dave")
        made = bob.muc_join(room, "bob")
        self.assertTrue(made.created)
        self.assertEqual((made.self_presence.role, made.self_presence.affiliation),
                         ("moderator", "owner"))
        self.assertEqual(made.subject.subject, "")
        joined = carol.muc_join(room, "carol")
        self.assertFalse(joined.created)
        self.assertEqual([p.nick for p in joined.occupants], ["bob"])
        self.assertEqual(joined.occupants[0].real_jid, "", "semi-anonymous by default")
        dave.muc_join(room, "dave")
        with self.assertRaisesRegex(harness.PeerError, "conflict"):
            self.peer("alice").muc_join(room, "bob")

        mark = carol.message_mark()
        bob.muc_send(room, "hello room", id="b-1")
        echo = bob.wait_message(body="hello room")
        got = carol.wait_message(body="hello room", since=mark)
        self.assertEqual((got.from_, got.type, got.id), (f"{room}/bob", "groupchat", "b-1"))
        self.assertTrue(harness.room_stanza_id(echo, room))
        self.assertEqual(harness.room_stanza_id(got, room), harness.room_stanza_id(echo, room))

        bob.muc_subject(room, "a subject")
        self.assertEqual(carol.wait_message(lambda m: m.subject == "a subject").from_,
                         f"{room}/bob")
        pmark = carol.presence_mark()
        bob.muc_nick(room, "bobby")
        change = carol.wait_presence(room=room, nick="bob", type="unavailable", since=pmark)
        self.assertEqual((change.muc_codes, change.new_nick), (frozenset({303}), "bobby"))
        carol.wait_presence(room=room, nick="bobby", type="", since=pmark)
        pmark, dmark = carol.presence_mark(), dave.presence_mark()
        bob.muc_kick(room, "dave", reason="spam")
        kicked = carol.wait_presence(room=room, nick="dave", type="unavailable", since=pmark)
        self.assertEqual((307 in kicked.muc_codes, kicked.actor, kicked.reason),
                         (True, "bobby", "spam"))
        own = dave.wait_presence(lambda p: p.self_presence, type="unavailable", since=dmark)
        self.assertIn(307, own.muc_codes)
        left = carol.muc_leave(room, "carol", status="bye")
        self.assertEqual(left.status, "bye")
        self.assertEqual(bob.wait_presence(room=room, nick="carol", type="unavailable").status,
                         "bye")

    def test_carbons_roster_versions_and_subscriptions(self):
        main = self.peer("alice", resource="main")
        main.enable_carbons()
        phone = self.peer("alice", resource="phone")
        bob = self.peer("bob")
        phone.send_message("bob@localhost", "from my phone", id="ph-1")
        sent = main.wait_message(lambda m: m.carbon is not None)
        self.assertEqual((sent.from_, sent.carbon[0], sent.carbon[1].body),
                         ("alice@localhost", "sent", "from my phone"))
        bob.send_message(phone.full_jid, "to the phone")
        received = main.wait_message(lambda m: m.carbon is not None
                                     and m.carbon[0] == "received")
        self.assertEqual(received.carbon[1].from_, bob.full_jid)
        # Prosody passes a carbon wrapped by someone else on as is: the client must drop it.
        bob.send_raw(f"<message to='{main.full_jid}' id='forge-1'><received "
                     f"xmlns='{harness.CARBONS_NS}'><forwarded xmlns='{harness.FORWARD_NS}'>"
                     f"<message xmlns='jabber:client' from='x@localhost' to='alice@localhost' "
                     f"type='chat'><body>forged</body></message></forwarded></received>"
                     f"</message>")
        forged = main.wait_message(id="forge-1")
        self.assertEqual((forged.from_, forged.carbon[0]), (bob.full_jid, "received"))

        # Roster versions: the current one gets an empty result, an old one the whole
        # roster (Prosody never answers with a series of pushes).
        main.roster_set("carol@localhost", "Carol", ["Friends"])
        main.roster_set("dave@localhost", "Dave")
        full = main.roster_get(ver="").find(f"{{{harness.ROSTER_NS}}}query")
        ver = full.get("ver")
        self.assertEqual(len(list(main.roster_get(ver=ver))), 0)
        phone.roster_set("eve@localhost")
        stale = main.roster_get(ver=ver).find(f"{{{harness.ROSTER_NS}}}query")
        self.assertNotEqual(stale.get("ver"), ver)
        self.assertEqual(len(stale), 3)

        # Subscriptions by hand; `subscribed` only reaches a roster-aware session; the
        # contact's presence (with its priority) follows the approval.
        carol = self.peer("carol", presence=False).manual_subscriptions()
        carol.roster_get()
        carol.send_presence(show="away", status="on a train", priority=7)
        pmark = main.presence_mark()
        main.manual_subscriptions()
        main.send_presence(to="carol@localhost", ptype="subscribe")
        carol.wait_presence(type="subscribe", from_="alice@localhost")
        carol.send_presence(to="alice@localhost", ptype="subscribed")
        p = main.wait_presence(lambda p: p.bare == "carol@localhost" and p.type == "",
                               since=pmark)
        self.assertEqual((p.show, p.status, p.priority), ("away", "on a train", 7))


if __name__ == "__main__":
    harness.main()
