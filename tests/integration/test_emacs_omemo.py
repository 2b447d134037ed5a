"""OMEMO in the Emacs mode (issue 14 §5, §6) against the real daemon and a python-omemo peer.

Prosody with PEP; stanzad with alice (account default encryption = "auto"); bob is a
slixmpp peer with python-omemo (omemo_peer.py). Before Emacs starts, bob sends alice an
encrypted message (stored by the daemon). Then the ERT file
contrib/emacs/test/stanza-omemo-test.el runs in `emacs -Q --batch`: its fake-daemon tests,
and stanza-omemo-test-real-daemon, which checks in Emacs that the replayed message shows
the lock, that `stanza-omemo-devices` lists bob's device with the fingerprint python-omemo
computes (given in $STANZA_OMEMO_FINGERPRINT), and runs `stanza-encryption` (omemo),
`stanza-omemo-trust` and a reply typed at the prompt. After Emacs exits this side checks
what those did: the JSON ops read back "omemo" and "trusted", and bob received the reply
once, encrypted, and python-omemo decrypts it.
EmacsOmemo2Test runs the same with a peer that speaks only OMEMO 2 (python3-twomemo): the
daemon uses urn:xmpp:omemo:2 both ways, and Emacs shows and does the same.
Run alone: /usr/bin/python3 tests/integration/test_emacs_omemo.py
"""

import os
import shutil
import subprocess

import harness
from harness import REPO, JsonlTest, poll_until
from omemo_peer import (AXOLOTL, BUNDLES2, DEVICES2, FALLBACK, FALLBACK2, OMEMO2, PUBSUB, decrypt,
                        encrypted_message, manager_for)

EMACS_DIR = REPO / "contrib" / "emacs"
RX_DEVICE = r"account home: OMEMO device (\d+), fingerprint ([0-9a-f ]+)"
BOB = "bob@localhost"


class EmacsOmemoTest(JsonlTest):
    PROSODY_OPTIONS = {"modules": harness.Prosody.DEFAULT_MODULES + ("pep",)}
    NAMESPACE = AXOLOTL  # what the peer speaks

    def bundle_published(self, peer, device):
        node = f"{AXOLOTL}.bundles:{device}"
        reply = peer.raw_iq("alice@localhost", f"<pubsub xmlns='{PUBSUB}'><items node='{node}'/></pubsub>")
        return reply["type"] == "result"

    def device_listed(self, peer, device):
        """Our device is on alice's 0.3 device list (published apart from the bundle: waiting
        for the bundle alone races with the list)."""
        node = f"{AXOLOTL}.devicelist"
        reply = peer.raw_iq("alice@localhost", f"<pubsub xmlns='{PUBSUB}'><items node='{node}'/></pubsub>")
        return reply["type"] == "result" and any(
            el.get("id") == str(device) for el in reply.xml.iter() if el.tag.endswith("}device"))

    def ready_for_bob(self, bob, manager, device):
        """Our device list and bundle in the peer's namespace are there, and bob has read them."""
        if self.NAMESPACE == AXOLOTL:
            poll_until(lambda: self.bundle_published(bob, device), 10, "our bundle on PEP")
            poll_until(lambda: self.device_listed(bob, device), 10, "our device on the device list")
            return

        def published():
            reply = bob.raw_iq("alice@localhost", f"<pubsub xmlns='{PUBSUB}'><items node='{DEVICES2}'/></pubsub>")
            if reply["type"] != "result" or str(device) not in [
                    el.get("id") for el in reply.xml.iter(f"{{{OMEMO2}}}device")]:
                return False
            reply = bob.raw_iq("alice@localhost", f"<pubsub xmlns='{PUBSUB}'><items node='{BUNDLES2}'>"
                                                  f"<item id='{device}'/></items></pubsub>")
            return reply["type"] == "result" and reply.xml.find(f".//{{{OMEMO2}}}bundle") is not None
        poll_until(published, 10, "our OMEMO 2 device list and bundle")
        bob._call(manager.refresh_device_list(OMEMO2, "alice@localhost"), 15)

    def bob_encrypts(self, bob, manager, text):
        if self.NAMESPACE == OMEMO2:
            msg = encrypted_message(bob, manager, "alice@localhost", text, BOB)

            async def send_now():  # on the peer's loop, as slixmpp wants
                msg.send()
            bob._call(send_now(), 10)
            return
        import oldmemo.etree

        async def run():
            await manager.refresh_device_list(AXOLOTL, "alice@localhost")
            messages, errors = await manager.encrypt(frozenset({"alice@localhost"}), {AXOLOTL: text.encode()})
            self.assertFalse(errors, errors)
            (message,) = messages.keys()
            msg = bob.xmpp.make_message(mto="alice@localhost", mbody=FALLBACK, mtype="chat")
            msg.xml.append(oldmemo.etree.serialize_message(message))
            msg.send()
        bob._call(run(), 30)

    def test_emacs_omemo(self):
        import omemo

        emacs = shutil.which("emacs")
        if emacs is None:
            self.fail("emacs is not installed (Debian: apt-get install emacs-nox)")
        bob = self.peer("bob")
        manager = manager_for(bob, BOB, namespaces=(self.NAMESPACE,))
        b1 = bob._call(manager.get_own_device_information(), 10)[0]
        d = self.start_daemon([self.account("home", "alice", encryption="auto")])
        own_device = int(d.wait_for(RX_DEVICE, timeout=10).group(1))
        w = self.watcher(d)
        self.ready_for_bob(bob, manager, own_device)
        self.bob_encrypts(bob, manager, "sealed for emacs")
        w.wait_event(lambda e: e.get("event") == "message" and e.get("body") == "sealed for emacs", timeout=20)

        home = self.tmp / "emacs-home"
        home.mkdir()
        env = {**os.environ, "HOME": str(home), "TZ": "UTC",
               "STANZA_OMEMO_SOCKET": str(d.socket_path), "STANZA_OMEMO_PEER": BOB,
               "STANZA_OMEMO_TEXT": "sealed for emacs", "STANZA_OMEMO_REPLY": "answer from emacs",
               "STANZA_OMEMO_DEVICE": str(b1.device_id),
               "STANZA_OMEMO_FINGERPRINT": " ".join(omemo.SessionManager.format_identity_key(b1.identity_key))}
        mark = bob.message_mark()
        # SIGPIPE ignored as in an interactive Emacs (see test_emacs.py).
        r = subprocess.run(["/bin/sh", "-c", "trap '' PIPE; exec \"$0\" \"$@\"", emacs, "-Q", "--batch",
                            "-L", str(EMACS_DIR), "-l", "ert", "-l", str(EMACS_DIR / "test" / "stanza-omemo-test.el"),
                            "-f", "ert-run-tests-batch-and-exit"],
                           env=env, cwd=self.tmp, capture_output=True, text=True, timeout=150)
        for line in (r.stdout + r.stderr).splitlines():
            harness._say("[emacs] ", line)
        self.assertEqual(r.returncode, 0, "ERT tests failed (the [emacs] lines above say which)")
        self.assertRegex(r.stdout + r.stderr, r"Ran 4 tests, 4 results as expected, 0 unexpected")

        c = self.client(d, hello="check")
        self.assertEqual(c.ok("encryption", account="home", jid=BOB)["encryption"], "omemo")
        devices = {x["device"]: x["trust"] for x in c.ok("omemo-devices", account="home", jid=BOB)["devices"]}
        self.assertEqual(devices[b1.device_id], "trusted", devices)
        m = bob.wait_message(lambda m: m.child(self.NAMESPACE, "encrypted") is not None, since=mark, timeout=20)
        self.assertEqual(m.body, FALLBACK if self.NAMESPACE == AXOLOTL else FALLBACK2, m.xml)
        self.assertEqual(decrypt(bob, manager, m.child(self.NAMESPACE, "encrypted"), "alice@localhost", BOB),
                         "answer from emacs")
        self.assertEqual(len(bob.received(lambda m: bool(m.body), since=mark)), 1)  # chat states aside
        self.assertNotIn("sealed for emacs", d.output())
        self.assertNotIn("answer from emacs", d.output())


class EmacsOmemo2Test(EmacsOmemoTest):
    NAMESPACE = OMEMO2


if __name__ == "__main__":
    harness.main()
