"""OMEMO (XEP-0384, issue 14): stanzad decrypts what an independent implementation encrypts.

Prosody with PEP; stanzad with alice (encryption = "omemo"); bob is a slixmpp peer with
python-omemo (Debian's python3-omemo 1.0 with the python3-oldmemo backend: OMEMO 0.3,
eu.siacs.conversations.axolotl, a code base apart from libomemo-c) and an in-memory
omemo.Storage. Bob fetches alice's device list and our device's bundle over PEP, builds a
session (X3DH) and encrypts; the first message is a PreKeySignalMessage.

Counted on the JSON socket (by the sender's id, which each plaintext carries: the event's
msg_id is the server's stanza-id): every message exactly once, with its plaintext and
"encryption":"omemo". The daemon is stopped in the middle: messages sent while it is away
come from offline storage (OmemoReceiveTest; the archive catch-up then finds them known)
or only from the archive catch-up (OmemoReceiveArchiveTest, no mod_offline), and the
session (kept in the store) still decrypts them and the ones after. A message encrypted for a device that is not ours
and one with an altered payload arrive with an "error" and an empty body, and the session
goes on. The fallback body is never in an event, nor in the store; no plaintext in the log.
The used pre-key is replaced and the bundle published again (XEP-0384 §5.3.2).
OmemoCarbonTest: a sent carbon of another of alice's clients (python-omemo too) decrypts.
Run alone: /usr/bin/python3 tests/integration/test_omemo_receive.py
"""

import base64
import sqlite3
import xml.etree.ElementTree as ET

import harness
from harness import JsonlTest, poll_until
from omemo_peer import AXOLOTL, PUBSUB, make_session_manager
RX_DEVICE = r"account home: OMEMO device (\d+), fingerprint ([0-9a-f ]+)"
FALLBACK = "I sent you an OMEMO encrypted message but your client doesn't seem to support that."
N = 20


class OmemoReceiveTest(JsonlTest):
    """Messages sent while the daemon is away come from offline storage (and again,
    de-duplicated, from the archive)."""
    PROSODY_OPTIONS = {"modules": harness.Prosody.DEFAULT_MODULES + ("pep", "offline")}
    AWAY_FROM = "offline storage"

    def start_omemo(self):
        d = self.start_daemon([self.account("home", "alice", encryption="omemo")])
        m = d.wait_for(RX_DEVICE, timeout=10)
        return d, int(m.group(1))

    def bundle_prekey_ids(self, peer, device):
        node = f"{AXOLOTL}.bundles:{device}"
        reply = peer.raw_iq("alice@localhost", f"<pubsub xmlns='{PUBSUB}'><items node='{node}'/></pubsub>")
        if reply["type"] != "result":
            return None
        return sorted(int(k.get("preKeyId"))
                      for k in reply.xml.iter(f"{{{AXOLOTL}}}preKeyPublic"))

    def test_receive(self):
        import oldmemo.etree

        d, device = self.start_omemo()
        watcher = self.watcher(d)
        bob = self.peer("bob")
        Manager, Storage = make_session_manager(bob.xmpp)

        async def create():
            # One storage for the backend and the manager (python-omemo prefixes the keys).
            storage = Storage()
            return await Manager.create([oldmemo.Oldmemo(storage)], storage, "bob@localhost",
                                        None, "trusted")
        manager = bob._call(create(), 30)

        poll_until(lambda: self.bundle_prekey_ids(bob, device) is not None, 10, "our bundle on PEP")
        prekeys_before = self.bundle_prekey_ids(bob, device)
        self.assertEqual(len(prekeys_before), 100)
        # What a PEP notification would trigger: bob reads alice's device list.
        bob._call(manager.refresh_device_list(AXOLOTL, "alice@localhost"), 15)

        def encrypt(text):
            async def run():
                messages, errors = await manager.encrypt(frozenset({"alice@localhost"}),
                                                         {AXOLOTL: text.encode()})
                self.assertFalse(errors, errors)
                (message,) = messages.keys()
                return oldmemo.etree.serialize_message(message)
            return bob._call(run(), 30)

        def send(element, mid):
            async def run():
                msg = bob.xmpp.make_message(mto="alice@localhost", mbody=FALLBACK, mtype="chat")
                msg["id"] = mid
                msg.xml.append(element)
                ET.SubElement(msg.xml, "{urn:xmpp:hints}store")
                msg.send()
            bob._call(run(), 5)

        # The daemon's msg_id is the server's stanza-id: messages are told apart by their
        # text, which carries the sender's id.
        texts = {f"bob-{i}": f"bob-{i}: secret ünïcödé ✓ <&>" for i in range(N)}

        def body_is(text):
            return lambda ev: ev.get("event") == "message" and ev.get("body") == text
        ids = list(texts)
        first = encrypt(texts[ids[0]])
        keys = first.findall(f".//{{{AXOLOTL}}}key")
        self.assertEqual([k.get("rid") for k in keys], [str(device)])
        self.assertEqual(keys[0].get("prekey"), "true", "the first message is a PreKeySignalMessage")
        send(first, ids[0])
        e = watcher.wait_event(body_is(texts[ids[0]]), timeout=15)
        self.assertEqual((e["body"], e.get("encryption"), e.get("error", "")), (texts[ids[0]], "omemo", ""), e)
        self.assertEqual(e.get("trust"), "blind")

        # XEP-0384 §5.3.2: the used pre-key is gone from the bundle, a new one took its place.
        poll_until(lambda: self.bundle_prekey_ids(bob, device) not in (None, prekeys_before), 10,
                   "the bundle published again with a fresh pre-key")
        prekeys_after = self.bundle_prekey_ids(bob, device)
        self.assertEqual(len(prekeys_after), 100)
        self.assertEqual(len(set(prekeys_before) - set(prekeys_after)), 1)
        self.assertTrue(all(i > 100 for i in set(prekeys_after) - set(prekeys_before)), prekeys_after)

        half = N // 2
        for mid in ids[1:half]:
            send(encrypt(texts[mid]), mid)
        for mid in ids[1:half]:
            watcher.wait_event(body_is(texts[mid]), timeout=15)

        # Stopped: the next messages wait in offline storage and the archive; the session
        # comes back from the store.
        self.assertEqual(d.stop(), 0)
        logs = [d.output()]
        away = ids[half:half + 3]
        for mid in away:
            send(encrypt(texts[mid]), mid)
        d, device2 = self.start_omemo()
        self.assertEqual(device2, device)
        if self.AWAY_FROM == "the archive":
            d.wait_for(r"account home: archive catch-up: \d+ message\(s\), 3 of them new", timeout=15)
        watcher = self.client(d, hello="watcher")  # replays what it has not acked: everything
        for mid in ids[half + 3:]:
            send(encrypt(texts[mid]), mid)

        # Not for us: the key is addressed to another device.
        other = encrypt("not for your device")
        for k in other.iter(f"{{{AXOLOTL}}}key"):
            k.set("rid", "4223")
        send(other, "bob-other")
        # Altered payload: the key decrypts (the session moves on), the payload does not.
        broken = encrypt("altered on the way")
        payload = broken.find(f"{{{AXOLOTL}}}payload")
        raw = bytearray(base64.b64decode(payload.text))
        raw[0] ^= 1
        payload.text = base64.b64encode(bytes(raw)).decode()
        send(broken, "bob-broken")
        # And the session still works after both.
        send(encrypt("after the broken ones"), "bob-last")

        last = watcher.wait_event(body_is("after the broken ones"), timeout=20)
        self.assertEqual(last.get("encryption"), "omemo")
        for mid in ids:
            watcher.wait_event(body_is(texts[mid]), timeout=20)
        events = watcher.find_events("message")
        self.assertEqual(len({ev["msg_id"] for ev in events}), len(events), events)
        for mid in ids:
            got = [ev for ev in events if ev["body"] == texts[mid]]
            self.assertEqual(len(got), 1, f"{mid}: {got}")
            self.assertEqual((got[0].get("encryption"), got[0].get("error", ""), got[0].get("trust")),
                             ("omemo", "", "blind"), got[0])
        (not_ours,) = [ev for ev in events if "not encrypted for this device" in ev.get("error", "")]
        self.assertEqual((not_ours["body"], not_ours.get("encryption")), ("", "omemo"))
        (altered,) = [ev for ev in events if "payload" in ev.get("error", "")]
        self.assertEqual((altered["body"], altered.get("encryption")), ("", "omemo"))
        self.assertEqual(len(events), N + 3, events)

        # The fallback body is nowhere: not in an event, not in the store.
        self.assertFalse([ev for ev in events if FALLBACK in ev.get("body", "")])
        db = sqlite3.connect(f"file:{self.tmp / 'stanzad' / 'state' / 'stanzad.db'}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT json FROM events WHERE kind = 'message'").fetchall()
        finally:
            db.close()
        self.assertEqual(len(rows), N + 3)
        self.assertFalse([r for r in rows if "OMEMO encrypted message" in r[0]])
        # No plaintext in the daemon's log.
        log = "\n".join(logs + [d.output()])
        for text in list(texts.values()) + ["after the broken ones", "altered on the way"]:
            self.assertNotIn(text, log)


class OmemoReceiveArchiveTest(OmemoReceiveTest):
    """Without offline storage: what came while the daemon was away comes only from the
    archive catch-up (XEP-0313), and is decrypted there."""
    PROSODY_OPTIONS = {"modules": harness.Prosody.DEFAULT_MODULES + ("pep",),
                       # Prosody loads mod_offline unless told not to.
                       "extra_host": '    modules_disabled = { "s2s", "s2s_auth_certs", "offline" }'}
    AWAY_FROM = "the archive"


class OmemoCarbonTest(JsonlTest):
    """Another client of alice's (python-omemo, "phone") sends bob an encrypted message and
    encrypts it for alice's other devices too (XEP-0384 §5.4.1 / 0.3 §4.5): the daemon gets
    the XEP-0280 sent carbon and decrypts it (its session with the phone's device)."""
    PROSODY_OPTIONS = {"modules": harness.Prosody.DEFAULT_MODULES + ("pep",)}

    def test_sent_carbon(self):
        import oldmemo
        import oldmemo.etree

        d = self.start_daemon([self.account("home", "alice", encryption="omemo")])
        device = int(d.wait_for(RX_DEVICE, timeout=10).group(1))
        watcher = self.watcher(d)
        bob = self.peer("bob")
        phone = self.peer("alice", resource="phone")

        def manager_for(peer, jid):
            Manager, Storage = make_session_manager(peer.xmpp)

            async def create():
                storage = Storage()
                return await Manager.create([oldmemo.Oldmemo(storage)], storage, jid, None, "trusted")
            return peer._call(create(), 30)

        manager_for(bob, "bob@localhost")  # publishes bob's device and bundle
        phone_manager = manager_for(phone, "alice@localhost")
        for jid in ("alice@localhost", "bob@localhost"):
            phone._call(phone_manager.refresh_device_list(AXOLOTL, jid), 15)

        async def run():
            messages, errors = await phone_manager.encrypt(frozenset({"bob@localhost"}),
                                                           {AXOLOTL: b"from the phone"})
            (message,) = messages.keys()
            element = oldmemo.etree.serialize_message(message)
            msg = phone.xmpp.make_message(mto="bob@localhost", mbody=FALLBACK, mtype="chat")
            msg.xml.append(element)
            msg.send()
            return element
        element = phone._call(run(), 30)
        rids = {k.get("rid") for k in element.iter(f"{{{AXOLOTL}}}key")}
        self.assertIn(str(device), rids, "the phone encrypts for the daemon's device too")

        e = watcher.wait_event("message", carbon="sent", timeout=15)
        self.assertEqual((e["body"], e.get("encryption"), e.get("error", ""), e["outgoing"]),
                         ("from the phone", "omemo", "", True), e)
        self.assertFalse(watcher.find_events(lambda ev: FALLBACK in ev.get("body", "")))
        self.assertNotIn("from the phone", d.output())


if __name__ == "__main__":
    harness.main()
