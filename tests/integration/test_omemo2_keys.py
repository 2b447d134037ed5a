"""OMEMO 2 (urn:xmpp:omemo:2, XEP-0384 §5.3): our device as an independent implementation
sees it.

stanzad runs with encryption = "omemo" on a Prosody with PEP. bob (no presence
subscription: this only works because the nodes are published with access_model open)
reads alice's :2 device list (urn:xmpp:omemo:2:devices) and our device's bundle (the item
named by the device id in urn:xmpp:omemo:2:bundles); python3-twomemo parses the bundle
against the XEP's schema; the identity key is the Ed25519 form of the key whose
fingerprint the daemon logs, and the signed pre-key signature verifies with it
(python3-xeddsa). The 0.3 list and bundle are there too, for the same device.

Then another client of alice's overwrites the :2 device list without our device; the
daemon is restarted: same device, same keys, and it puts itself back on the :2 list next
to the other client's device.
Run alone: /usr/bin/python3 tests/integration/test_omemo2_keys.py
"""

import base64

import harness
from harness import JsonlTest, poll_until
from omemo_peer import AXOLOTL, BUNDLES2, DEVICES, DEVICES2, OMEMO2, PUBSUB

RX_DEVICE = r"account home: OMEMO device (\d+), fingerprint ([0-9a-f ]+)"


def device_list(peer, owner, node=DEVICES2, ns=OMEMO2):
    reply = peer.raw_iq(owner, f"<pubsub xmlns='{PUBSUB}'><items node='{node}'/></pubsub>")
    if reply["type"] != "result":
        return None
    return sorted(int(d.get("id")) for d in reply.xml.iter(f"{{{ns}}}device"))


class Omemo2KeysTest(JsonlTest):
    PROSODY_OPTIONS = {"modules": harness.Prosody.DEFAULT_MODULES + ("pep",)}

    def start_omemo(self):
        d = self.start_daemon([self.account("home", "alice", encryption="omemo")])
        m = d.wait_for(RX_DEVICE, timeout=10)
        return d, int(m.group(1)), m.group(2)

    def test_device_published_open_and_repaired(self):
        import twomemo.etree
        import xeddsa

        d, device, fingerprint = self.start_omemo()
        bob = self.peer("bob")
        poll_until(lambda: device in (device_list(bob, "alice@localhost") or []), 10,
                   "the daemon's device on alice's :2 device list, as bob reads it")
        self.assertEqual(device_list(bob, "alice@localhost", DEVICES, AXOLOTL), [device])

        reply = bob.raw_iq("alice@localhost", f"<pubsub xmlns='{PUBSUB}'><items node='{BUNDLES2}'>"
                                              f"<item id='{device}'/></items></pubsub>")
        self.assertEqual(reply["type"], "result", reply)
        item = reply.xml.find(f".//{{{PUBSUB}}}item")
        self.assertEqual(item.get("id"), str(device))
        element = item.find(f"{{{OMEMO2}}}bundle")
        self.assertIsNotNone(element, reply)
        bundle = twomemo.etree.parse_bundle(element, "alice@localhost", device)  # the XEP's schema
        b = bundle.bundle
        self.assertEqual(len(b.pre_keys), 100)
        ik = base64.b64decode(element.find(f"{{{OMEMO2}}}ik").text)
        spk = base64.b64decode(element.find(f"{{{OMEMO2}}}spk").text)
        self.assertEqual((len(ik), len(spk)), (32, 32))
        self.assertTrue(all(len(base64.b64decode(pk.text)) == 32 for pk in element.iter(f"{{{OMEMO2}}}pk")))
        self.assertTrue(xeddsa.ed25519_verify(b.signed_pre_key_sig, ik, spk),
                        "the signed pre-key signature does not verify with the Ed25519 identity key")
        # The same identity as in 0.3: its Curve25519 form is the logged fingerprint.
        self.assertEqual(xeddsa.ed25519_pub_to_curve25519_pub(ik).hex(), fingerprint.replace(" ", ""))

        # Another client of alice's overwrites the :2 list without us; after a restart the
        # daemon (same device, same keys) adds itself back.
        phone = self.peer("alice", resource="phone")
        reply = phone.raw_iq(None, f"<pubsub xmlns='{PUBSUB}'><publish node='{DEVICES2}'><item id='current'>"
                                   f"<devices xmlns='{OMEMO2}'><device id='4223'/></devices></item></publish>"
                                   f"</pubsub>", type="set")
        self.assertEqual(reply["type"], "result", reply)
        self.assertEqual(device_list(bob, "alice@localhost"), [4223])
        self.assertEqual(d.stop(), 0)
        d2, device2, fingerprint2 = self.start_omemo()
        self.assertEqual((device2, fingerprint2), (device, fingerprint))
        poll_until(lambda: device_list(bob, "alice@localhost") == sorted([4223, device]), 10,
                   "alice's :2 device list with both devices again")


if __name__ == "__main__":
    harness.main()
