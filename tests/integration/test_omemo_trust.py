"""OMEMO trust (issue 14 §5): fingerprints, trust, distrust, blind trust before verification.

Prosody with PEP; stanzad with alice (encryption = "omemo"); bob is a python-omemo peer
(omemo_peer.py) with one device, later a second one ("laptop"). Checked:
- `omemo-devices` lists our device ("own") and bob's, with fingerprints equal to what
  python-omemo computes for the same keys (SessionManager.format_identity_key), both ways;
- before any verification bob's device is used blindly ("blind");
- after `omemo-trust` of bob's first device, his new laptop device is "undecided" and
  messages are not encrypted for it; trusting it adds it;
- the same through stanzactl (encryption, omemo devices, omemo trust, a send that fails);
- a device we distrust gets nothing, and a message it sends arrives as a `message` event
  with an "error" and an empty body; an unknown device cannot be trusted (item-not-found).
Run alone: /usr/bin/python3 tests/integration/test_omemo_trust.py
"""

import subprocess

import harness
from harness import JsonlTest
from omemo_peer import AXOLOTL, FALLBACK, decrypt, manager_for


def fingerprint(manager_class, identity_key):
    return " ".join(manager_class.format_identity_key(identity_key))


class OmemoTrustTest(JsonlTest):
    PROSODY_OPTIONS = {"modules": harness.Prosody.DEFAULT_MODULES + ("pep",)}

    def rids(self, m):
        return {int(k.get("rid")) for k in m.child(AXOLOTL, "encrypted").iter(f"{{{AXOLOTL}}}key")}

    def devices(self, c, jid="bob@localhost"):
        reply = c.ok("omemo-devices", account="home", jid=jid)
        return {(d["jid"], d["device"]): d for d in reply["devices"]}

    def test_trust(self):
        import omemo
        import oldmemo.etree

        d = self.start_daemon([self.account("home", "alice", encryption="omemo")])
        d.wait_for(r"account home: OMEMO device (\d+)", timeout=10)
        c = self.client(d, hello="ctl")
        w = self.watcher(d)
        bob = self.peer("bob")
        manager = manager_for(bob, "bob@localhost")
        b1 = bob._call(manager.get_own_device_information(), 10)[0]

        # Fingerprints: ours as bob sees it, bob's as we see it.
        devices = self.devices(c)
        (own,) = [v for v in devices.values() if v["trust"] == "own"]
        bob._call(manager.refresh_device_list(AXOLOTL, "alice@localhost"), 15)
        (alice_info,) = bob._call(manager.get_device_information("alice@localhost"), 15)
        self.assertEqual(alice_info.device_id, own["device"])
        self.assertEqual(fingerprint(omemo.SessionManager, alice_info.identity_key), own["fingerprint"])
        mine = devices[("bob@localhost", b1.device_id)]
        self.assertEqual((mine["trust"], mine["listed"]), ("blind", True), mine)
        self.assertEqual(mine["fingerprint"], fingerprint(omemo.SessionManager, b1.identity_key))

        def send(mid, text):
            mark = bob.message_mark()
            c.ok("send", account="home", to="bob@localhost", body=text, client_id=mid)
            m = bob.wait_message(lambda m: m.origin_id == mid, since=mark, timeout=15)
            return m

        m = send("blind-1", "blindly trusted")
        self.assertEqual(self.rids(m), {b1.device_id})
        self.assertEqual(decrypt(bob, manager, m.child(AXOLOTL, "encrypted"), "alice@localhost", "bob@localhost"),
                         "blindly trusted")

        # Bob's first device verified: a new device of his waits for a decision.
        c.ok("omemo-trust", account="home", jid="bob@localhost", device=b1.device_id)
        laptop = self.peer("bob", resource="laptop")
        laptop_manager = manager_for(laptop, "bob@localhost")
        b2 = laptop._call(laptop_manager.get_own_device_information(), 10)[0]
        devices = self.devices(c)
        self.assertEqual(devices[("bob@localhost", b1.device_id)]["trust"], "trusted")
        self.assertEqual(devices[("bob@localhost", b2.device_id)]["trust"], "undecided")
        self.assertEqual(devices[("bob@localhost", b2.device_id)]["fingerprint"],
                         fingerprint(omemo.SessionManager, b2.identity_key))
        m = send("undecided-1", "not for the laptop yet")
        self.assertEqual(self.rids(m), {b1.device_id})

        c.ok("omemo-trust", account="home", jid="bob@localhost", device=b2.device_id)
        m = send("trusted-2", "for both")
        self.assertEqual(self.rids(m), {b1.device_id, b2.device_id})
        self.assertEqual(decrypt(laptop, laptop_manager, m.child(AXOLOTL, "encrypted"), "alice@localhost",
                                 "bob@localhost"), "for both")

        # Distrusted: nothing for it, and what it sends is refused.
        c.ok("omemo-distrust", account="home", jid="bob@localhost", device=b2.device_id)
        self.assertEqual(self.devices(c)[("bob@localhost", b2.device_id)]["trust"], "distrusted")
        m = send("distrust-1", "not for the distrusted laptop")
        self.assertEqual(self.rids(m), {b1.device_id})

        async def from_laptop():
            await laptop_manager.refresh_device_list(AXOLOTL, "alice@localhost")
            messages, errors = await laptop_manager.encrypt(frozenset({"alice@localhost"}),
                                                            {AXOLOTL: b"from a distrusted device"})
            (message,) = messages.keys()
            msg = laptop.xmpp.make_message(mto="alice@localhost", mbody=FALLBACK, mtype="chat")
            msg.xml.append(oldmemo.etree.serialize_message(message))
            msg.send()
        laptop._call(from_laptop(), 30)
        ev = w.wait_event(lambda e: e.get("event") == "message" and "distrusted" in e.get("error", ""), timeout=15)
        self.assertEqual((ev["body"], ev.get("encryption")), ("", "omemo"), ev)
        self.assertNotIn("from a distrusted device", d.output())

        # stanzactl: the same ops.
        def ctl(*args):
            return subprocess.run([str(harness.stanzactl_bin()), "-s", str(d.socket_path), *args],
                                  capture_output=True, text=True, timeout=30)
        r = ctl("encryption", "home", "bob@localhost")
        self.assertEqual((r.returncode, r.stdout), (0, "default (omemo)\n"), r)
        r = ctl("encryption", "home", "carol@localhost", "omemo")
        self.assertEqual((r.returncode, r.stdout), (0, "omemo\n"), r)
        r = ctl("send", "home", "carol@localhost", "never in clear")
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("no-omemo-device", r.stderr)
        r = ctl("omemo", "devices", "home", "bob@localhost")
        self.assertEqual(r.returncode, 0, r)
        lines = sorted(r.stdout.splitlines())
        self.assertIn(f"bob@localhost  {b2.device_id}  distrusted  {fingerprint(omemo.SessionManager, b2.identity_key)}",
                      lines)
        r = ctl("omemo", "trust", "home", "bob@localhost", str(b2.device_id))
        self.assertEqual((r.returncode, r.stdout), (0, ""), r)
        self.assertEqual(self.devices(c)[("bob@localhost", b2.device_id)]["trust"], "trusted")
        r = ctl("omemo", "trust", "home", "bob@localhost", "0")
        self.assertEqual(r.returncode, 2, r)

        r = c.request("omemo-trust", account="home", jid="bob@localhost", device=12345)
        self.assertEqual(r["error"]["code"], "item-not-found", r)
        r = c.request("omemo-trust", account="home", jid="bob@localhost")
        self.assertEqual(r["error"]["code"], "bad-request", r)


if __name__ == "__main__":
    harness.main()
