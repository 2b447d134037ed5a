"""OMEMO 2 (urn:xmpp:omemo:2, XEP-0384 current; issue 14 §1): both directions with an
independent implementation.

Prosody with PEP (and offline storage); stanzad with alice (encryption = "omemo"); bob is a
slixmpp peer with python-omemo and Debian's python3-twomemo only (omemo_peer.py): it reads
alice's :2 device list (urn:xmpp:omemo:2:devices) and our device's bundle (an item of
urn:xmpp:omemo:2:bundles named by the device id), builds a session and encrypts XEP-0420
envelopes; stanzad, for its part, sees that bob announces a :2 device list and encrypts in
:2 (kex='true' until bob answered).

Counted by id on the JSON socket and at bob: every message exactly once (0 lost, 0 twice),
with its plaintext and "encryption":"omemo"; the daemon is stopped and started in the
middle of each direction (messages sent to it meanwhile come from offline storage, or,
in Omemo2ArchiveTest, only from the archive catch-up; the sessions come back from the
store). What bob's server archived holds the <encrypted/>
payloads and the fallback body, never a plaintext; the daemon's log has no plaintext.
Omemo2CarbonTest: a sent carbon of alice's other :2 client decrypts. Omemo2PreferredTest: a
peer that speaks both versions gets :2, and its answers in either version decrypt with the
same trust (one identity record per device).
Run alone: /usr/bin/python3 tests/integration/test_omemo2.py
"""

import xml.etree.ElementTree as ET

import harness
from harness import JsonlTest, poll_until
from omemo_peer import (AXOLOTL, BUNDLES2, DEVICES2, FALLBACK2, OMEMO2, PUBSUB, decrypt,
                        encrypted_message, manager_for)

RX_DEVICE = r"account home: OMEMO device (\d+), fingerprint ([0-9a-f ]+)"
EME = "urn:xmpp:eme:0"
N = 10


def prekey_ids(peer, device):
    """The pre-key ids of our :2 bundle (None when bob cannot read it)."""
    reply = peer.raw_iq("alice@localhost", f"<pubsub xmlns='{PUBSUB}'><items node='{BUNDLES2}'>"
                                           f"<item id='{device}'/></items></pubsub>")
    if reply["type"] != "result":
        return None
    return sorted(int(pk.get("id")) for pk in reply.xml.iter(f"{{{OMEMO2}}}pk"))


def published(peer, device):
    """Our :2 device list and bundle as bob reads them (None until both are there)."""
    reply = peer.raw_iq("alice@localhost", f"<pubsub xmlns='{PUBSUB}'><items node='{DEVICES2}'/></pubsub>")
    if reply["type"] != "result":
        return None
    ids = [d.get("id") for d in reply.xml.iter(f"{{{OMEMO2}}}device")]
    reply = peer.raw_iq("alice@localhost", f"<pubsub xmlns='{PUBSUB}'><items node='{BUNDLES2}'>"
                                           f"<item id='{device}'/></items></pubsub>")
    if reply["type"] != "result" or reply.xml.find(f".//{{{OMEMO2}}}bundle") is None:
        return None
    return ids


async def send_now(msg):
    msg.send()


class Omemo2Test(JsonlTest):
    PROSODY_OPTIONS = {"modules": harness.Prosody.DEFAULT_MODULES + ("pep", "offline")}

    def start_omemo(self):
        d = self.start_daemon([self.account("home", "alice", encryption="omemo")])
        return d, int(d.wait_for(RX_DEVICE, timeout=10).group(1))

    def archived(self, peer):
        """Every message of peer's archive (XEP-0313 §4, paged with XEP-0059 until complete)."""
        out, after = [], ""
        for _ in range(20):
            mark = peer.message_mark()
            rsm = f"<set xmlns='http://jabber.org/protocol/rsm'><max>50</max>{after}</set>"
            reply = peer.raw_iq(peer.xmpp.boundjid.bare, f"<query xmlns='urn:xmpp:mam:2'>{rsm}</query>", "set")
            self.assertEqual(reply["type"], "result", reply)
            out += peer.received(lambda m: m.el.find("{urn:xmpp:mam:2}result") is not None, since=mark)
            fin = reply.xml.find("{urn:xmpp:mam:2}fin")
            if fin.get("complete") in ("true", "1"):
                return out
            last = fin.find("{http://jabber.org/protocol/rsm}set/{http://jabber.org/protocol/rsm}last")
            after = f"<after>{last.text}</after>"
        self.fail("the archive did not end in 20 pages")

    def test_receive(self):
        """bob (twomemo) -> stanzad, through a daemon restart."""
        d, device = self.start_omemo()
        watcher = self.watcher(d)
        bob = self.peer("bob")
        manager = manager_for(bob, "bob@localhost", (OMEMO2,))
        ids = poll_until(lambda: published(bob, device), 10, "our OMEMO 2 device list and bundle")
        self.assertEqual(ids, [str(device)])
        bob._call(manager.refresh_device_list(OMEMO2, "alice@localhost"), 15)
        prekeys_before = prekey_ids(bob, device)
        self.assertEqual(len(prekeys_before), 100)

        texts = {f"bob-{i}": f"bob-{i}: secret ünïcödé ✓ <&>" for i in range(N)}

        def send(mid):
            msg = encrypted_message(bob, manager, "alice@localhost", texts[mid], "bob@localhost")
            msg["id"] = mid
            ET.SubElement(msg.xml, "{urn:xmpp:hints}store")
            enc = msg.xml.find(f"{{{OMEMO2}}}encrypted")
            self.assertIsNotNone(enc)
            keys = list(enc.iter(f"{{{OMEMO2}}}keys"))
            self.assertEqual([k.get("jid") for k in keys], ["alice@localhost"])
            bob._call(send_now(msg), 5)
            return enc

        def body_is(text):
            return lambda ev: ev.get("event") == "message" and ev.get("body") == text
        order = list(texts)
        first = send(order[0])
        key = first.find(f".//{{{OMEMO2}}}key")
        self.assertEqual((key.get("rid"), key.get("kex")), (str(device), "true"))
        e = watcher.wait_event(body_is(texts[order[0]]), timeout=15)
        self.assertEqual((e.get("encryption"), e.get("error", ""), e.get("trust")), ("omemo", "", "blind"), e)
        # §5.3.2: the pre-key the key exchange used is replaced in the :2 bundle too.
        poll_until(lambda: prekey_ids(bob, device) not in (None, prekeys_before), 10,
                   "the :2 bundle published again with a fresh pre-key")
        prekeys_after = prekey_ids(bob, device)
        self.assertEqual(len(prekeys_after), 100)
        self.assertEqual(len(set(prekeys_before) - set(prekeys_after)), 1)
        half = N // 2
        for mid in order[1:half]:
            send(mid)
        for mid in order[1:half]:
            watcher.wait_event(body_is(texts[mid]), timeout=15)

        # Stopped: the next ones wait in offline storage; the session comes from the store.
        self.assertEqual(d.stop(), 0)
        logs = [d.output()]
        for mid in order[half:half + 2]:
            send(mid)
        d, device2 = self.start_omemo()
        self.assertEqual(device2, device)
        watcher = self.client(d, hello="watcher")  # replays what it has not acked: everything
        for mid in order[half + 2:]:
            send(mid)
        for mid in order:
            watcher.wait_event(body_is(texts[mid]), timeout=20)
        events = watcher.find_events("message")
        self.assertEqual(len({ev["msg_id"] for ev in events}), len(events), events)
        for mid in order:
            got = [ev for ev in events if ev["body"] == texts[mid]]
            self.assertEqual(len(got), 1, f"{mid}: {got}")
            self.assertEqual((got[0].get("encryption"), got[0].get("error", "")), ("omemo", ""), got[0])
        self.assertEqual(len(events), N, events)
        self.assertFalse([ev for ev in events if FALLBACK2 in ev.get("body", "")])
        log = "\n".join(logs + [d.output()])
        for text in texts.values():
            self.assertNotIn(text, log)

    def test_send(self):
        """stanzad -> bob (twomemo) in :2, counted by origin-id; through a daemon restart;
        bob answers in :2; bob's archive holds no plaintext."""
        bob = self.peer("bob")
        manager = manager_for(bob, "bob@localhost", (OMEMO2,))
        bob_device = str(bob._call(manager.get_own_device_information(), 10)[0].device_id)
        d, device = self.start_omemo()
        c = self.client(d, hello="sender")
        w = self.watcher(d)
        texts, seen = {}, {}

        def send_batch(ids, kex=None):
            mark = bob.message_mark()
            for mid in ids:
                texts[mid] = f"{mid}: secret ünïcödé ✓ <&>"
                c.ok("send", account="home", to="bob@localhost", body=texts[mid], client_id=mid)
            for mid in ids:
                bob.wait_message(lambda m, mid=mid: m.origin_id == mid, since=mark, timeout=20)
            for m in bob.received(lambda m: m.origin_id in ids, since=mark):
                enc = m.child(OMEMO2, "encrypted")
                self.assertIsNotNone(enc, m.xml)
                self.assertIsNone(m.child(AXOLOTL, "encrypted"), m.xml)
                self.assertEqual(m.body, FALLBACK2, m.xml)
                self.assertEqual(m.child(EME, "encryption").get("namespace"), OMEMO2, m.xml)
                self.assertEqual(enc.find(f"{{{OMEMO2}}}header").get("sid"), str(device), m.xml)
                rids = {(ks.get("jid"), k.get("rid")) for ks in enc.iter(f"{{{OMEMO2}}}keys")
                        for k in ks.iter(f"{{{OMEMO2}}}key")}
                self.assertEqual(rids, {("bob@localhost", bob_device)}, m.xml)
                if kex is not None:
                    self.assertEqual({k.get("kex") in ("true", "1") for k in enc.iter(f"{{{OMEMO2}}}key")}, {kex})
                self.assertEqual(decrypt(bob, manager, enc, "alice@localhost", "bob@localhost"), texts[m.origin_id])
                seen[m.origin_id] = seen.get(m.origin_id, 0) + 1
            for mid in ids:
                ev = w.wait_event("message", msg_id=mid, timeout=10)
                self.assertEqual((ev.get("encryption"), ev["body"], ev["outgoing"]), ("omemo", texts[mid], True), ev)

        send_batch([f"json-{i}" for i in range(N)], kex=True)  # bob has not answered yet

        # Bob answers in :2 (the session the key exchange built): the daemon decrypts it.
        msg = encrypted_message(bob, manager, "alice@localhost", "bob answers", "bob@localhost")
        bob._call(send_now(msg), 5)
        ev = w.wait_event("message", body="bob answers", timeout=15)
        self.assertEqual((ev.get("encryption"), ev.get("error", "")), ("omemo", ""), ev)

        # Restarted: the sessions come back from the store.
        self.assertEqual(d.stop(), 0)
        logs = [d.output()]
        d, device2 = self.start_omemo()
        self.assertEqual(device2, device)
        c = self.client(d, hello="sender")
        w = self.watcher(d)
        send_batch([f"after-{i}" for i in range(N)], kex=False)  # no new key exchange
        self.assertEqual(seen, {mid: 1 for mid in texts}, "each message once at bob")

        # What bob's server archived: the payloads and the fallback, never a plaintext.
        archive = self.archived(bob)
        from_alice = [m for m in archive if "alice@localhost" in ET.tostring(m.el).decode()]
        self.assertGreaterEqual(len(from_alice), 2 * N)
        dump = "\n".join(ET.tostring(m.el, encoding="unicode") for m in archive)
        self.assertNotIn("secret", dump)
        self.assertNotIn("bob answers", dump)
        self.assertIn(OMEMO2, dump)
        log = "\n".join(logs + [d.output()])
        for text in list(texts.values()) + ["bob answers"]:
            self.assertNotIn(text, log)


class Omemo2ArchiveTest(Omemo2Test):
    """Without offline storage: what bob sent while the daemon was away comes only from the
    archive catch-up (XEP-0313), and is decrypted there."""
    PROSODY_OPTIONS = {"modules": harness.Prosody.DEFAULT_MODULES + ("pep",),
                       # Prosody loads mod_offline unless told not to.
                       "extra_host": '    modules_disabled = { "s2s", "s2s_auth_certs", "offline" }'}


class Omemo2CarbonTest(JsonlTest):
    """Another client of alice's ("phone", python-omemo with twomemo) sends bob a :2 message
    and encrypts it for alice's other devices too (XEP-0384 §4.4): the daemon gets the
    XEP-0280 sent carbon (keys under <keys jid='alice@localhost'/>, an envelope whose <from/>
    is alice) and decrypts it."""
    PROSODY_OPTIONS = {"modules": harness.Prosody.DEFAULT_MODULES + ("pep",)}

    def test_sent_carbon(self):
        d = self.start_daemon([self.account("home", "alice", encryption="omemo")])
        device = int(d.wait_for(RX_DEVICE, timeout=10).group(1))
        watcher = self.watcher(d)
        bob = self.peer("bob")
        phone = self.peer("alice", resource="phone")
        manager_for(bob, "bob@localhost", (OMEMO2,))
        phone_manager = manager_for(phone, "alice@localhost", (OMEMO2,))
        poll_until(lambda: published(phone, device), 10, "our OMEMO 2 bundle")
        for jid in ("alice@localhost", "bob@localhost"):
            phone._call(phone_manager.refresh_device_list(OMEMO2, jid), 15)
        msg = encrypted_message(phone, phone_manager, "bob@localhost", "from the phone", "alice@localhost")
        enc = msg.xml.find(f"{{{OMEMO2}}}encrypted")
        own = [k.get("rid") for ks in enc.iter(f"{{{OMEMO2}}}keys") if ks.get("jid") == "alice@localhost"
               for k in ks.iter(f"{{{OMEMO2}}}key")]
        self.assertIn(str(device), own, "the phone encrypts for the daemon's device too")
        phone._call(send_now(msg), 5)

        e = watcher.wait_event("message", carbon="sent", timeout=15)
        self.assertEqual((e["body"], e.get("encryption"), e.get("error", ""), e["outgoing"]),
                         ("from the phone", "omemo", "", True), e)
        self.assertFalse(watcher.find_events(lambda ev: FALLBACK2 in ev.get("body", "")))
        self.assertNotIn("from the phone", d.output())


class Omemo2PreferredTest(JsonlTest):
    """bob speaks both versions (python-omemo with twomemo and oldmemo, one device): stanzad
    sends in :2 (issue 14 §1: OMEMO 2 where the peer announces it); bob's answers in either
    namespace decrypt (one session of each version, one identity)."""
    PROSODY_OPTIONS = {"modules": harness.Prosody.DEFAULT_MODULES + ("pep",)}

    def test_prefers_omemo2(self):
        bob = self.peer("bob")
        manager = manager_for(bob, "bob@localhost", (OMEMO2, AXOLOTL))
        d = self.start_daemon([self.account("home", "alice", encryption="omemo")])
        device = int(d.wait_for(RX_DEVICE, timeout=10).group(1))
        c = self.client(d, hello="sender")
        w = self.watcher(d)
        ids = [f"both-{i}" for i in range(3)]
        mark = bob.message_mark()
        for mid in ids:
            c.ok("send", account="home", to="bob@localhost", body=f"{mid} secret", client_id=mid)
        for mid in ids:
            m = bob.wait_message(lambda m, mid=mid: m.origin_id == mid, since=mark, timeout=20)
            self.assertIsNone(m.child(AXOLOTL, "encrypted"), m.xml)
            enc = m.child(OMEMO2, "encrypted")
            self.assertIsNotNone(enc, m.xml)
            self.assertEqual(decrypt(bob, manager, enc, "alice@localhost", "bob@localhost"), f"{mid} secret")
        self.assertEqual(len(bob.received(lambda m: m.origin_id in ids, since=mark)), len(ids))
        poll_until(lambda: published(bob, device), 10, "our OMEMO 2 bundle")
        for ns, text in ((OMEMO2, "answer in 2"), (AXOLOTL, "answer in 0.3")):
            bob._call(manager.refresh_device_list(ns, "alice@localhost"), 15)
            msg = encrypted_message(bob, manager, "alice@localhost", text, "bob@localhost", ns)
            self.assertIsNotNone(msg.xml.find(f"{{{ns}}}encrypted"))
            bob._call(send_now(msg), 5)
            ev = w.wait_event("message", body=text, timeout=15)
            self.assertEqual((ev.get("encryption"), ev.get("error", ""), ev.get("trust")), ("omemo", "", "blind"), ev)


if __name__ == "__main__":
    harness.main()
