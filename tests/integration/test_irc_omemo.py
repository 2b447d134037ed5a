"""OMEMO in the IRC front end (issue 14 §5, §6): marked, controlled from &stanzad.

Prosody with PEP; stanzad with alice (account default encryption = "auto"); bob is a
slixmpp peer with python-omemo (omemo_peer.py: python3-oldmemo, OMEMO 0.3, a code base
apart from libomemo-c). Two IRC clients of alice's: "laptop" with message-tags, "phone"
without. Checked:
- `encryption bob omemo` in &stanzad sets the per-contact setting (the JSON op agrees); a
  PRIVMSG to bob then reaches bob encrypted (fallback body, <encrypted/>) and python-omemo
  decrypts it; `encryption bob off` sends the next one in clear;
- an encrypted message from bob reaches laptop with the tag +stanzad/encryption=omemo and
  the configured prefix ([irc] encrypted_prefix, "[E2E] " here), and phone with the prefix only; each once, by its text;
- `omemo devices bob` lists our device ("own") and bob's ("blind"), with the fingerprints
  python-omemo computes for the same keys (SessionManager.format_identity_key), both ways;
- `omemo trust bob DEVICE` makes it "trusted" (the JSON op agrees); a bad device id and an
  unknown one are refused with their reason.
- the same both ways with a peer that speaks only OMEMO 2 (python3-twomemo): a PRIVMSG goes
  as urn:xmpp:omemo:2 and decrypts; the peer's :2 message reaches IRC marked, once.
Run alone: /usr/bin/python3 tests/integration/test_irc_omemo.py
"""

import harness
from harness import poll_until
from irc_client import IrcTest
from omemo_peer import (AXOLOTL, BUNDLES2, DEVICES2, FALLBACK, OMEMO2, PUBSUB, decrypt, encrypted_message,
                        manager_for)

RX_DEVICE = r"account home: OMEMO device (\d+), fingerprint ([0-9a-f ]+)"
SERVICE = "stanzad"


def fingerprint(identity_key):
    import omemo
    return " ".join(omemo.SessionManager.format_identity_key(identity_key))


class IrcOmemoTest(IrcTest):
    PROSODY_OPTIONS = {"modules": harness.Prosody.DEFAULT_MODULES + ("pep",)}

    def control(self, c, command, expect_prefix):
        """Says `command` in &stanzad; the service's answer that starts with expect_prefix."""
        mark = c.mark()
        c.send(f"PRIVMSG &stanzad :{command}")
        return c.wait(lambda l: l.nick == SERVICE and l.text.startswith(expect_prefix), "PRIVMSG", "&stanzad",
                      since=mark, timeout=20)

    def device_lines(self, c, who):
        mark = c.mark()
        c.send(f"PRIVMSG &stanzad :omemo devices {who}")
        end = c.wait(lambda l: l.nick == SERVICE and l.text.endswith(" device(s)"), "PRIVMSG", "&stanzad",
                     since=mark, timeout=20)
        lines = [l.text for l in c.find(lambda l: l.nick == SERVICE, "PRIVMSG", "&stanzad", since=mark)
                 if l is not end]
        self.assertEqual(end.text, f"{len(lines)} device(s)", lines)
        return {(t.split("  ")[0], int(t.split("  ")[1])): t.split("  ")[2:] for t in lines}

    def bob_encrypts(self, bob, manager, text):
        import oldmemo.etree

        async def run():
            messages, errors = await manager.encrypt(frozenset({"alice@localhost"}), {AXOLOTL: text.encode()})
            self.assertFalse(errors, errors)
            (message,) = messages.keys()
            msg = bob.xmpp.make_message(mto="alice@localhost", mbody=FALLBACK, mtype="chat")
            msg.xml.append(oldmemo.etree.serialize_message(message))
            msg.send()
        bob._call(run(), 30)

    def test_irc_omemo(self):
        self.add_to_roster("bob@localhost")
        bob = self.peer("bob")
        manager = manager_for(bob, "bob@localhost")
        b1 = bob._call(manager.get_own_device_information(), 10)[0]

        config = self.irc_config(accounts=[self.account("home", "alice", encryption="auto")])
        config["irc"]["encrypted_prefix"] = "[E2E] "  # not the default: the config reaches the sessions
        d = self.start_irc_daemon(config)
        own_device = int(d.wait_for(RX_DEVICE, timeout=10).group(1))
        j = self.client(d, hello="json")
        laptop = self.irc(d, name="laptop", caps=("message-tags",), user="alice@laptop")
        phone = self.irc(d, name="phone", user="alice@phone")

        # The per-contact setting from &stanzad, and what the JSON op reads back.
        self.control(laptop, "encryption bob", "encryption with bob@localhost: default (the account's: auto)")
        self.control(laptop, "encryption bob omemo", "encryption with bob@localhost: omemo")
        self.assertEqual(j.ok("encryption", account="home", jid="bob@localhost")["encryption"], "omemo")
        self.control(laptop, "encryption bob sometimes", "encryption: 'sometimes' is not omemo, off or default")

        # A PRIVMSG to bob goes encrypted, and python-omemo decrypts it.
        mark = bob.message_mark()
        laptop.send("PRIVMSG bob :secret from irc")
        m = bob.wait_message(lambda m: m.child(AXOLOTL, "encrypted") is not None, since=mark, timeout=20)
        self.assertEqual(m.body, FALLBACK, m.xml)
        self.assertEqual(decrypt(bob, manager, m.child(AXOLOTL, "encrypted"), "alice@localhost", "bob@localhost"),
                         "secret from irc")
        self.assertEqual(len(bob.received(lambda m: m.child(AXOLOTL, "encrypted") is not None, since=mark)), 1)

        # Bob answers encrypted: marked by tag (message-tags) and prefix (every client).
        poll_until(lambda: self.bundle_published(bob, own_device), 10, "our bundle on PEP")
        bob._call(manager.refresh_device_list(AXOLOTL, "alice@localhost"), 15)
        lmark, pmark = laptop.mark(), phone.mark()
        self.bob_encrypts(bob, manager, "encrypted hello")
        line = laptop.wait(None, "PRIVMSG", "alice", text="[E2E] encrypted hello", since=lmark, timeout=20)
        self.assertEqual(line.nick, "bob", line.raw)
        self.assertEqual(line.tags.get("+stanzad/encryption"), "omemo", line.raw)
        self.assertNotIn("+stanzad/trust", line.tags, line.raw)  # blind: as usual
        pline = phone.wait(None, "PRIVMSG", "alice", text="[E2E] encrypted hello", since=pmark, timeout=20)
        self.assertEqual(pline.tags, {}, pline.raw)
        laptop.alive()
        phone.alive()
        self.assertEqual(len(laptop.privmsgs(since=lmark, text="[E2E] encrypted hello")), 1)
        self.assertEqual(len(phone.privmsgs(since=pmark, text="[E2E] encrypted hello")), 1)
        self.assertEqual(laptop.privmsgs(since=lmark, text=FALLBACK), [])

        # Devices and fingerprints, compared with python-omemo's for the same keys.
        devices = self.device_lines(laptop, "bob")
        self.assertEqual(devices[("alice@localhost", own_device)][0], "own", devices)
        self.assertEqual(devices[("bob@localhost", b1.device_id)],
                         ["blind", fingerprint(b1.identity_key)], devices)
        bob._call(manager.refresh_device_list(AXOLOTL, "alice@localhost"), 15)
        (alice_info,) = bob._call(manager.get_device_information("alice@localhost"), 15)
        self.assertEqual(alice_info.device_id, own_device)
        self.assertEqual(devices[("alice@localhost", own_device)][1], fingerprint(alice_info.identity_key))

        # Trust it from IRC; the JSON op agrees. Bad and unknown device ids are refused.
        answer = self.control(laptop, f"omemo trust bob {b1.device_id}", f"omemo trust bob@localhost {b1.device_id}")
        self.assertEqual(answer.text, f"omemo trust bob@localhost {b1.device_id}", answer.raw)
        listed = {x["device"]: x["trust"] for x in j.ok("omemo-devices", account="home", jid="bob@localhost")["devices"]}
        self.assertEqual(listed[b1.device_id], "trusted", listed)
        self.assertEqual(self.device_lines(phone, "bob@localhost")[("bob@localhost", b1.device_id)][0], "trusted")
        self.control(laptop, "omemo trust bob 0", "omemo trust: '0' is not a device id")
        answer = self.control(laptop, "omemo distrust bob 12345", "omemo distrust bob@localhost 12345 failed: ")
        self.assertTrue(len(answer.text) > len("omemo distrust bob@localhost 12345 failed: "), answer.raw)

        # Off again: the next PRIVMSG goes in clear.
        self.control(laptop, "encryption bob off", "encryption with bob@localhost: off")
        mark = bob.message_mark()
        laptop.send("PRIVMSG bob :now in clear")
        m = bob.wait_message(body="now in clear", since=mark, timeout=20)
        self.assertIsNone(m.child(AXOLOTL, "encrypted"), m.xml)
        self.assertNotIn("secret from irc", d.output())
        self.assertNotIn("encrypted hello", d.output())

    def bundle_published(self, peer, device):
        node = f"{AXOLOTL}.bundles:{device}"
        reply = peer.raw_iq("alice@localhost", f"<pubsub xmlns='{PUBSUB}'><items node='{node}'/></pubsub>")
        return reply["type"] == "result"


class IrcOmemo2Test(IrcTest):
    PROSODY_OPTIONS = {"modules": harness.Prosody.DEFAULT_MODULES + ("pep",)}

    def published(self, peer, device):
        """Our :2 device list lists `device` and its :2 bundle is there."""
        reply = peer.raw_iq("alice@localhost", f"<pubsub xmlns='{PUBSUB}'><items node='{DEVICES2}'/></pubsub>")
        if reply["type"] != "result" or str(device) not in [d.get("id") for d in reply.xml.iter(f"{{{OMEMO2}}}device")]:
            return False
        reply = peer.raw_iq("alice@localhost", f"<pubsub xmlns='{PUBSUB}'><items node='{BUNDLES2}'>"
                                               f"<item id='{device}'/></items></pubsub>")
        return reply["type"] == "result" and reply.xml.find(f".//{{{OMEMO2}}}bundle") is not None

    def test_irc_omemo2_both_ways(self):
        self.add_to_roster("bob@localhost")
        bob = self.peer("bob")
        manager = manager_for(bob, "bob@localhost", namespaces=(OMEMO2,))
        d = self.start_irc_daemon(self.irc_config(accounts=[self.account("home", "alice", encryption="auto")]))
        own_device = int(d.wait_for(RX_DEVICE, timeout=10).group(1))
        laptop = self.irc(d, name="laptop", caps=("message-tags",), user="alice@laptop")
        laptop.send("PRIVMSG &stanzad :encryption bob omemo")
        laptop.wait(lambda l: l.text.startswith("encryption with bob@localhost: omemo"), "PRIVMSG", "&stanzad")

        mark = bob.message_mark()
        laptop.send("PRIVMSG bob :secret in two")
        m = bob.wait_message(lambda m: m.child(OMEMO2, "encrypted") is not None, since=mark, timeout=20)
        self.assertIsNone(m.child(AXOLOTL, "encrypted"), m.xml)
        self.assertEqual(decrypt(bob, manager, m.child(OMEMO2, "encrypted"), "alice@localhost", "bob@localhost"),
                         "secret in two")
        self.assertEqual(len(bob.received(lambda m: m.child(OMEMO2, "encrypted") is not None, since=mark)), 1)

        poll_until(lambda: self.published(bob, own_device), 10, "our OMEMO 2 device list and bundle")
        bob._call(manager.refresh_device_list(OMEMO2, "alice@localhost"), 15)
        lmark = laptop.mark()
        msg = encrypted_message(bob, manager, "alice@localhost", "hello in two", "bob@localhost")

        async def send_now():  # on the peer's loop, as slixmpp wants
            msg.send()
        bob._call(send_now(), 10)
        line = laptop.wait(None, "PRIVMSG", "alice", text="[OMEMO] hello in two", since=lmark, timeout=20)
        self.assertEqual(line.tags.get("+stanzad/encryption"), "omemo", line.raw)
        laptop.alive()
        self.assertEqual(len(laptop.privmsgs(since=lmark, text="[OMEMO] hello in two")), 1)
        self.assertNotIn("secret in two", d.output())
        self.assertNotIn("hello in two", d.output())


if __name__ == "__main__":
    harness.main()
