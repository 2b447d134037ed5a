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


if __name__ == "__main__":
    harness.main()
