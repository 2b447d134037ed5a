"""OMEMO (XEP-0384, issue 14): our device, as an independent OMEMO implementation sees it.

stanzad runs with encryption = "omemo" on a Prosody with PEP. Another user (bob, no
presence subscription: this only works because both nodes are published with
access_model open) fetches alice's device list and the bundle of the daemon's device, and
python-oldmemo (Debian's python3-oldmemo, a code base apart from libomemo-c) parses the
bundle against the XEP's schema; the signed pre-key signature verifies with the identity
key (XEdDSA, python3-xeddsa).

Then another client of alice's overwrites the device list without our device; the daemon
is restarted: it keeps its device id and keys (from the store) and puts itself back on
the list, next to the other client's device.
Run alone: /usr/bin/python3 tests/integration/test_omemo_keys.py
"""

import base64
import xml.etree.ElementTree as ET

import harness
from harness import JsonlTest, poll_until

AXOLOTL = "eu.siacs.conversations.axolotl"
DEVICES = AXOLOTL + ".devicelist"
PUBSUB = "http://jabber.org/protocol/pubsub"
RX_DEVICE = r"account home: OMEMO device (\d+), fingerprint ([0-9a-f ]+)"


def device_list(peer, owner):
    reply = peer.raw_iq(owner, f"<pubsub xmlns='{PUBSUB}'><items node='{DEVICES}'/></pubsub>")
    if reply["type"] != "result":
        return None
    lst = reply.xml.find(f".//{{{AXOLOTL}}}list")
    return None if lst is None else sorted(int(d.get("id")) for d in lst.findall(f"{{{AXOLOTL}}}device"))


class OmemoKeysTest(JsonlTest):
    PROSODY_OPTIONS = {"modules": harness.Prosody.DEFAULT_MODULES + ("pep",)}

    def start_omemo(self):
        d = self.start_daemon([self.account("home", "alice", encryption="omemo")])
        m = d.wait_for(RX_DEVICE, timeout=10)
        return d, int(m.group(1)), m.group(2)

    def test_device_published_open_and_repaired(self):
        import oldmemo.etree
        import xeddsa

        d, device, fingerprint = self.start_omemo()
        self.assertTrue(1 <= device < 2**31, device)
        self.assertRegex(fingerprint, r"^([0-9a-f]{8} ){7}[0-9a-f]{8}$")
        bob = self.peer("bob")
        poll_until(lambda: device in (device_list(bob, "alice@localhost") or []), 10,
                   "the daemon's device on alice's device list, as bob reads it")

        node = f"{AXOLOTL}.bundles:{device}"
        reply = bob.raw_iq("alice@localhost", f"<pubsub xmlns='{PUBSUB}'><items node='{node}'/></pubsub>")
        self.assertEqual(reply["type"], "result", reply)
        element = reply.xml.find(f".//{{{AXOLOTL}}}bundle")
        self.assertIsNotNone(element, reply)
        bundle = oldmemo.etree.parse_bundle(element, "alice@localhost", device)
        b = bundle.bundle
        self.assertEqual(len(b.pre_keys), 100)
        spk = base64.b64decode(element.find(f"{{{AXOLOTL}}}signedPreKeyPublic").text)
        self.assertEqual(len(spk), 33)
        self.assertTrue(xeddsa.ed25519_verify(b.signed_pre_key_sig, b.identity_key, spk),
                        "the signed pre-key signature does not verify with the identity key")
        ik = base64.b64decode(element.find(f"{{{AXOLOTL}}}identityKey").text)
        self.assertEqual(ik[1:].hex(), fingerprint.replace(" ", ""))

        # Another client of alice's overwrites the list without us; after a restart the
        # daemon (same device, same keys) adds itself back.
        phone = self.peer("alice", resource="phone")
        reply = phone.raw_iq(None, f"<pubsub xmlns='{PUBSUB}'><publish node='{DEVICES}'><item id='current'>"
                                   f"<list xmlns='{AXOLOTL}'><device id='4223'/></list></item></publish></pubsub>",
                             type="set")
        self.assertEqual(reply["type"], "result", reply)
        self.assertEqual(device_list(bob, "alice@localhost"), [4223])
        self.assertEqual(d.stop(), 0)
        d2, device2, fingerprint2 = self.start_omemo()
        self.assertEqual((device2, fingerprint2), (device, fingerprint))
        poll_until(lambda: device_list(bob, "alice@localhost") == sorted([4223, device]), 10,
                   "alice's device list with both devices again")


if __name__ == "__main__":
    harness.main()
