"""stanzad logs in as alice (SCRAM over STARTTLS) and answers as an XMPP client should:
XEP-0199 ping, XEP-0030 disco#info, XEP-0092 version, and service-unavailable for the rest.
"""

import base64
import re

import harness
from harness import IntegrationTest, rx_connecting

FEATURES = {"http://jabber.org/protocol/disco#info", "urn:xmpp:ping", "jabber:iq:version"}


class LoginTest(IntegrationTest):
    def test_login_and_client_answers(self):
        d = self.start_stanzad([self.account("home", "alice")])
        host, port = d.wait_for(rx_connecting("home")).groups()
        self.assertEqual((host, int(port)), ("127.0.0.1", self.prosody.port))
        full = self.wait_online(d, "home")
        self.assertEqual(full, "alice@localhost/stanzad")  # default resource

        bob = self.peer("bob")
        rtt = bob.ping(full, timeout=5)
        self.assertLess(rtt, 1.0, "ping round trip")

        identities, features = bob.disco_info(full)
        self.assertIn(("client", "pc"), {(c, t) for c, t, _name in identities}, identities)
        self.assertLessEqual(FEATURES, features)

        self.assertEqual(bob.version(full)["name"], "stanzad")

        for iq_type in ("get", "set"):
            reply = bob.raw_iq(full, "<query xmlns='urn:example:nothing'/>", type=iq_type)
            self.assertEqual(reply["type"], "error", reply)
            self.assertEqual(reply["error"]["type"], "cancel", reply)
            self.assertEqual(reply["error"]["condition"], "service-unavailable", reply)

        # Prosody's side: STARTTLS first, then SASL with a SCRAM mechanism, nothing else.
        # Prosody 0.12.3 logs each stanza's top tag at debug level under the session id:
        #   Received[c2s_unauthed]: <auth xml:lang='en' mechanism='SCRAM-SHA-1' xmlns=...>
        # (attribute order varies) and then "Authenticated as alice@localhost".
        sid = self.prosody.wait_for_session("alice@localhost")
        lines = self.prosody.session_lines(sid)
        encrypted = next(i for i, l in enumerate(lines) if "Stream encrypted (TLS" in l)
        auths = [(i, re.search(r"mechanism='([^']+)'", l).group(1))
                 for i, l in enumerate(lines) if re.search(r"Received\[c2s_unauthed\]: <auth\b", l)]
        self.assertTrue(auths, "\n".join(lines))
        for i, mechanism in auths:
            self.assertRegex(mechanism, r"^SCRAM-SHA-(1|256|512)(-PLUS)?$")
            self.assertGreater(i, encrypted, "SASL before TLS")
        self.assertTrue(any(f"Resource bound: {full}" in l for l in lines))

        # The password never reaches the log, not even at debug level.
        self.assertNotIn(self.USERS["alice"], d.output())

    def test_version_reply_matches_the_binary(self):
        # XEP-0092 <version/> is the version `stanzad --version` prints.
        printed = harness.run_stanzad(["--version"]).stdout
        expected = re.search(r"\d+\.\d+(\.\d+)?\S*", printed).group(0)
        d = self.start_stanzad([self.account("home", "alice")])
        full = self.wait_online(d, "home")
        self.assertEqual(self.peer("bob").version(full)["version"], expected)

    def test_trace_log_shows_the_wire_but_never_sasl_payloads(self):
        d = self.start_stanzad(self.config([self.account("home", "alice")], log_level="trace"))
        full = self.wait_online(d, "home")
        self.peer("bob").ping(full)
        d.wait_for(r"SEND <iq id='[^']+' to='bob@localhost/[^']+' type='result'></iq>")
        log = d.output()
        self.assertRegex(log, r"SEND <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                              r"mechanism='SCRAM-SHA-1'>\[redacted\]</auth>")
        self.assertIn("RECV <challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>[redacted]", log)
        self.assertIn("SEND <response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>[redacted]", log)
        # Neither the password nor any SCRAM message (base64 or decoded) is in the log.
        self.assertNotIn(self.USERS["alice"], log)
        self.assertNotIn("n,,n=alice", log)
        self.assertNotIn(base64.b64encode(b"n,,n=alice,r=").decode()[:16], log)
        self.assertNotRegex(log, r"[rsvp]=[A-Za-z0-9+/]{16,}")

    def test_configured_resource(self):
        d = self.start_stanzad([self.account("home", "alice", resource="laptop")])
        full = self.wait_online(d, "home")
        self.assertEqual(full, "alice@localhost/laptop")
        self.peer("bob").ping(full)


if __name__ == "__main__":
    harness.main()
