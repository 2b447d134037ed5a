"""OMEMO (XEP-0384 0.3, issue 14 §4): stanzad encrypts what it sends, an independent
implementation decrypts it.

Prosody with PEP; stanzad with alice (account default encryption = "auto"), a JSON client
and an IRC client; bob is a slixmpp peer with python-omemo (python3-oldmemo, omemo_peer.py)
that answers receipts; alice's "phone" is another python-omemo device of alice's, which
stanzad must encrypt for too (0.3 §4.5). Every message bob gets is counted by its id and
decrypted: 0 lost, 0 twice, each with its plaintext. Covered: the per-contact setting (the
`encryption` op); "auto" sending in clear until OMEMO was used, then encrypting; JSON and
IRC sends; bob answering encrypted (both directions); receipts moving the states to
delivered; a correction; a daemon restart (the sessions come back from the store: no new
key exchange); a contact with no device (send fails, nothing reaches it); what bob's
server archived (MAM from a second client of bob's): the <encrypted/> payloads and the
fallback body, never the plaintext; no plaintext in the daemon's log.
OmemoResendTest: the durable outbox with encryption. Messages sent into a black hole (the
link dead, state sent, never acknowledged) and messages queued while the account is
offline (state accepted) go out when the link is back, encrypted; bob decrypts each once
and the ratchet is still in step for the message after (docs/encryption.md, "Resends").
The first time the session is resumed (XEP-0198 resends its own copies); then the daemon is
stopped with two messages in the hole and started again: a new session, on which the outbox
transmits them again, encrypted afresh with the next ratchet steps.
Run alone: /usr/bin/python3 tests/integration/test_omemo_send.py
"""

import sqlite3

import harness
from harness import FaultTest, daemon_link_up, rx_disconnected, rx_session_up
from irc_client import IrcTest
from omemo_peer import AXOLOTL, FALLBACK, decrypt, manager_for

RX_DEVICE = r"account home: OMEMO device (\d+), fingerprint ([0-9a-f ]+)"
EME = "urn:xmpp:eme:0"
HINTS = "urn:xmpp:hints"
N = 12


def encrypted_of(m):
    return m.child(AXOLOTL, "encrypted")


class OmemoSendTest(IrcTest):
    PROSODY_OPTIONS = {"modules": harness.Prosody.DEFAULT_MODULES + ("pep",)}

    def setUp(self):
        super().setUp()
        self.texts = {}   # origin-id -> plaintext of everything alice sent encrypted
        self.seen = {}    # origin-id -> how many times bob decrypted it

    def bob_decrypts(self, bob, manager, ids, since, rids=None):
        """Waits until bob has every message of `ids` (origin-ids), decrypts each."""
        for mid in ids:
            bob.wait_message(lambda m, mid=mid: m.origin_id == mid, since=since, timeout=20)
        got = bob.received(lambda m: m.origin_id in ids, since=since)
        for m in got:
            enc = encrypted_of(m)
            self.assertIsNotNone(enc, m.xml)
            self.assertEqual(m.body, FALLBACK, m.xml)
            self.assertIsNotNone(m.child(HINTS, "store"), m.xml)
            self.assertEqual(m.child(EME, "encryption").get("namespace"), AXOLOTL, m.xml)
            if rids is not None:
                self.assertEqual({k.get("rid") for k in enc.iter(f"{{{AXOLOTL}}}key")}, rids, m.xml)
            text = decrypt(bob, manager, enc, "alice@localhost", "bob@localhost")
            self.assertEqual(text, self.texts[m.origin_id], m.xml)
            self.seen[m.origin_id] = self.seen.get(m.origin_id, 0) + 1
        return got

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
            after = f"<after>{fin.find('{http://jabber.org/protocol/rsm}set/{http://jabber.org/protocol/rsm}last').text}</after>"
        self.fail("the archive did not end in 20 pages")

    def test_send(self):
        self.add_to_roster("bob@localhost")
        bob = self.peer("bob")
        bob.answer_receipts()
        manager = manager_for(bob, "bob@localhost")
        phone = self.peer("alice", resource="phone", presence=False)
        phone_manager = manager_for(phone, "alice@localhost")
        carol = self.peer("carol")

        config = self.irc_config(accounts=[self.account("home", "alice", encryption="auto")])
        d = self.start_irc_daemon(config)
        device = d.wait_for(RX_DEVICE, timeout=10).group(1)
        w = self.watcher(d)
        c = self.client(d, hello="sender")

        # A contact with no OMEMO device, set to omemo: send fails, nothing goes out.
        self.assertEqual(c.ok("encryption", account="home", jid="carol@localhost", set="omemo")["encryption"],
                         "omemo")
        r = c.request("send", account="home", to="carol@localhost", body="never in clear")
        self.assertIs(r.get("ok"), False, r)
        self.assertEqual(r["error"]["code"], "no-omemo-device", r)
        self.assertIn("carol@localhost", r["error"]["message"])
        bad = c.request("encryption", account="home", jid="bob@localhost", set="maybe")
        self.assertEqual(bad["error"]["code"], "bad-request", bad)

        # "auto", OMEMO never used with bob: in clear.
        r = c.ok("encryption", account="home", jid="bob@localhost")
        self.assertEqual((r["encryption"], r["default"]), ("default", "auto"), r)
        mark = bob.message_mark()
        c.ok("send", account="home", to="bob@localhost", body="plain hello", client_id="clear-1")
        m = bob.wait_message(lambda m: m.origin_id == "clear-1", since=mark, timeout=15)
        self.assertIsNone(encrypted_of(m), m.xml)
        self.assertEqual(m.body, "plain hello")

        # Set to omemo: every message encrypted for bob's device and alice's phone.
        self.assertEqual(c.ok("encryption", account="home", jid="bob@localhost", set="omemo")["encryption"], "omemo")
        own_id = lambda mgr, peer: str(peer._call(mgr.get_own_device_information(), 10)[0].device_id)
        rids = {own_id(manager, bob), own_id(phone_manager, phone)}
        ids = [f"json-{i}" for i in range(N)]
        for mid in ids:
            self.texts[mid] = f"{mid}: secret ünïcödé ✓ <&>"
            c.ok("send", account="home", to="bob@localhost", body=self.texts[mid], client_id=mid)
        got = self.bob_decrypts(bob, manager, ids, mark, rids)
        first = encrypted_of(got[0])
        self.assertEqual(first.find(f"{{{AXOLOTL}}}header").get("sid"), device)
        keys = list(first.iter(f"{{{AXOLOTL}}}key"))
        self.assertEqual(len(keys), 2, "bob's device and alice's phone")
        self.assertTrue(all(k.get("prekey") in ("true", "1") for k in keys), "the first messages are key exchanges")
        for mid in ids:
            ev = w.wait_event("message", msg_id=mid, timeout=10)
            self.assertEqual((ev.get("encryption"), ev["body"], ev["outgoing"]), ("omemo", self.texts[mid], True), ev)
            w.wait_event("message-state", msg_id=mid, state="delivered", timeout=15)

        # Bob answers encrypted; the daemon decrypts it (both directions, one conversation).
        async def answer():
            import oldmemo.etree
            messages, errors = await manager.encrypt(frozenset({"alice@localhost"}), {AXOLOTL: b"bob answers"})
            self.assertFalse(errors, errors)
            (message,) = messages.keys()
            msg = bob.xmpp.make_message(mto="alice@localhost", mbody=FALLBACK, mtype="chat")
            msg.xml.append(oldmemo.etree.serialize_message(message))
            msg.send()
        bob._call(answer(), 30)
        ev = w.wait_event("message", body="bob answers", timeout=15)
        self.assertEqual((ev.get("encryption"), ev.get("error", "")), ("omemo", ""), ev)

        # Through the IRC socket; and a correction (XEP-0308) of the last JSON message.
        irc = self.irc(d)
        mark = bob.message_mark()
        for i in range(3):
            irc.send(f"PRIVMSG bob :irc secret {i}")
        bob.wait_message(lambda m: encrypted_of(m) is not None, since=mark, nth=3, timeout=20)
        irc_texts = set()
        for m in bob.received(lambda m: encrypted_of(m) is not None, since=mark):
            irc_texts.add(decrypt(bob, manager, encrypted_of(m), "alice@localhost", "bob@localhost"))
            self.assertNotIn(m.origin_id, self.seen)
            self.seen[m.origin_id] = 1
        self.assertEqual(irc_texts, {f"irc secret {i}" for i in range(3)})
        self.texts["fix-1"] = "json-11: corrected secret"
        mark = bob.message_mark()
        c.ok("send", account="home", to="bob@localhost", body=self.texts["fix-1"], client_id="fix-1",
             replace=ids[-1])
        (m,) = self.bob_decrypts(bob, manager, ["fix-1"], mark)
        self.assertEqual(m.child("urn:xmpp:message-correct:0", "replace").get("id"), ids[-1], m.xml)

        # A restart: the sessions come back from the store (no new key exchange).
        self.assertEqual(d.stop(), 0)
        logs = [d.output()]
        d = self.start_irc_daemon(config)
        c = self.client(d, hello="sender2")
        after = [f"restart-{i}" for i in range(3)]
        mark = bob.message_mark()
        for mid in after:
            self.texts[mid] = f"{mid}: after the restart"
            c.ok("send", account="home", to="bob@localhost", body=self.texts[mid], client_id=mid)
        bob_id = own_id(manager, bob)
        for m in self.bob_decrypts(bob, manager, after, mark, rids):
            # Bob answered: his session is confirmed (the phone never did: still key exchanges).
            for k in encrypted_of(m).iter(f"{{{AXOLOTL}}}key"):
                self.assertEqual(k.get("prekey") in ("true", "1"), k.get("rid") != bob_id, m.xml)

        # Back to the account default "auto": OMEMO was used with bob, so still encrypted.
        self.assertEqual(c.ok("encryption", account="home", jid="bob@localhost", set="default")["encryption"],
                         "default")
        mark = bob.message_mark()
        self.texts["auto-1"] = "auto: still encrypted"
        c.ok("send", account="home", to="bob@localhost", body=self.texts["auto-1"], client_id="auto-1")
        self.bob_decrypts(bob, manager, ["auto-1"], mark)

        # Every encrypted message exactly once.
        for mid in self.texts:
            self.assertEqual(self.seen.get(mid), 1, (mid, self.seen))
        self.assertEqual(len(self.seen), len(self.texts) + 3, self.seen)
        self.assertEqual(carol.received(lambda m: m.body is not None), [])
        self.assertIsNotNone(phone_manager)

        # What bob's server archived: payloads and the fallback, never the plaintext.
        archive = self.peer("bob", resource="archive", presence=False)
        results = [m for m in self.archived(archive)
                   if m.el.find(".//{jabber:client}message[@from='alice@localhost/stanzad']") is not None]
        encrypted = [m for m in results if m.el.find(f".//{{{AXOLOTL}}}encrypted") is not None]
        self.assertEqual(len(encrypted), len(self.texts) + 3, [m.xml for m in results])
        for m in results:
            for word in ("secret", "after the restart", "still encrypted", "corrected"):
                self.assertNotIn(word, m.xml)
        self.assertEqual(len(results), len(encrypted) + 1, "the one clear message of 'auto'")

        log = "\n".join(logs + [d.output()])
        for text in self.texts.values():
            self.assertNotIn(text, log)
        self.assertNotIn("irc secret", log)


class OmemoResendTest(FaultTest):
    PROSODY_OPTIONS = {"modules": harness.Prosody.DEFAULT_MODULES + ("pep",)}

    def test_resend_after_reset(self):
        proxy = self.fault_proxy()
        d = self.start_daemon([self.proxied_account(proxy, encryption="omemo")],
                              ping_interval=self.PING_INTERVAL, ping_timeout=self.PING_TIMEOUT)
        d.wait_for(rx_session_up("home"), 10)
        bob = self.bob_peer()
        manager = manager_for(bob, "bob@localhost")
        c = self.client(d, hello="sender")
        w = self.watcher(d)
        texts, seen = {}, {}
        mark = bob.message_mark()

        def send(mid):
            texts[mid] = f"{mid}: a secret through the faults"
            c.ok("send", account="home", to="bob@localhost", body=texts[mid], client_id=mid)

        send("before")
        w.wait_event("message-state", msg_id="before", state="delivered", timeout=15)
        # The link goes dead: these go into the hole (sent, never acknowledged) ...
        hole = d.mark()
        proxy.blackhole(True)
        for i in range(4):
            send(f"hole-{i}")
        for i in range(4):
            w.wait_event("message-state", msg_id=f"hole-{i}", state="sent", timeout=10)
        # ... and, once stanzad gave the link up, these wait in the outbox (accepted).
        d.wait_for(rx_disconnected("home"), timeout=20, since=hole)
        for i in range(2):
            send(f"queued-{i}")
        proxy.blackhole(False)
        harness.poll_until(lambda: daemon_link_up(d, "home", since=hole), 30, "the link up again")
        send("after")
        # Into the hole again, then the daemon stops: started again, it does not know what
        # the server got and sends every unacknowledged message again, encrypted afresh.
        w.wait_event("message-state", msg_id="after", state="delivered", timeout=15)
        proxy.blackhole(True)
        for i in range(2):
            send(f"restart-{i}")
        for i in range(2):
            w.wait_event("message-state", msg_id=f"restart-{i}", state="sent", timeout=10)
        self.assertEqual(d.stop(), 0)
        logs = d.output()
        proxy.blackhole(False)
        d = self.start_daemon([self.proxied_account(proxy, encryption="omemo")],
                              ping_interval=self.PING_INTERVAL, ping_timeout=self.PING_TIMEOUT)
        w = self.watcher(d)
        c = self.client(d, hello="sender2")
        send("last")
        ids = list(texts)
        audit = self.client(d, hello="audit", since=0)  # every stored event, replayed
        for mid in ids:
            audit.wait_event("message-state", msg_id=mid, state="delivered", timeout=30)
            bob.wait_message(lambda m, mid=mid: m.origin_id == mid, since=mark, timeout=20)
        bob.sync()
        for m in bob.received(lambda m: m.origin_id in texts, since=mark):
            enc = encrypted_of(m)
            self.assertIsNotNone(enc, m.xml)
            self.assertEqual(m.body, FALLBACK)
            self.assertEqual(decrypt(bob, manager, enc, "alice@localhost", "bob@localhost"), texts[m.origin_id])
            seen[m.origin_id] = seen.get(m.origin_id, 0) + 1
        self.assertEqual(seen, {mid: 1 for mid in ids})
        # Every message delivered: no outbox marker is left (removed once acknowledged).
        db = sqlite3.connect(f"file:{self.tmp / 'stanzad' / 'state' / 'stanzad.db'}?mode=ro", uri=True)
        try:
            markers = db.execute("SELECT key FROM account_meta WHERE key LIKE 'omemo:out:%'").fetchall()
        finally:
            db.close()
        self.assertEqual(markers, [])
        for text in texts.values():
            self.assertNotIn(text, logs + d.output())


if __name__ == "__main__":
    harness.main()
