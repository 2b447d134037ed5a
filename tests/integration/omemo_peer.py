"""A python-omemo peer for the OMEMO tests (XEP-0384 0.3, eu.siacs.conversations.axolotl).

make_session_manager(xmpp): a python-omemo SessionManager class (and an in-memory Storage)
whose PEP operations go through the slixmpp client `xmpp` of a harness Peer.
manager_for(peer, jid): such a manager, created (device and bundle published).
decrypt(peer, manager, element, sender, own): the plaintext of an <encrypted/> element.
Debian's python3-omemo with python3-oldmemo: a code base apart from libomemo-c.
"""

import xml.etree.ElementTree as ET

AXOLOTL = "eu.siacs.conversations.axolotl"
DEVICES = AXOLOTL + ".devicelist"
PUBSUB = "http://jabber.org/protocol/pubsub"
FALLBACK = "I sent you an OMEMO encrypted message but your client doesn't seem to support that."


def make_session_manager(xmpp):
    """A SessionManager subclass whose PEP operations go through the slixmpp client
    `xmpp` (python-omemo leaves XMPP to the application)."""
    import omemo
    import oldmemo.etree
    from slixmpp.exceptions import IqError, IqTimeout

    async def iq(to, payload, itype="get"):
        stanza = xmpp.make_iq(ito=to, itype=itype) if to else xmpp.make_iq(itype=itype)
        stanza.append(payload)
        try:
            return await stanza.send(timeout=10)
        except IqError as e:
            return e.iq
        except IqTimeout:
            return None

    def items(node):
        pubsub = ET.Element(f"{{{PUBSUB}}}pubsub")
        ET.SubElement(pubsub, f"{{{PUBSUB}}}items", node=node)
        return pubsub

    class Storage(omemo.Storage):
        def __init__(self):
            super().__init__()
            self.data = {}

        async def _load(self, key):
            return omemo.Just(self.data[key]) if key in self.data else omemo.Nothing()

        async def _store(self, key, value):
            self.data[key] = value

        async def _delete(self, key):
            self.data.pop(key, None)

    def publish(node, payload):
        # XEP-0060 §7.1.5: publish-options, access model open (XEP-0384 §5.3.2).
        pubsub = ET.Element(f"{{{PUBSUB}}}pubsub")
        ET.SubElement(ET.SubElement(pubsub, f"{{{PUBSUB}}}publish", node=node),
                      f"{{{PUBSUB}}}item", id="current").append(payload)
        form = ET.SubElement(ET.SubElement(pubsub, f"{{{PUBSUB}}}publish-options"),
                             "{jabber:x:data}x", type="submit")
        for var, value in (("FORM_TYPE", "http://jabber.org/protocol/pubsub#publish-options"),
                           ("pubsub#access_model", "open")):
            field = ET.SubElement(form, "{jabber:x:data}field", var=var)
            ET.SubElement(field, "{jabber:x:data}value").text = value
        return pubsub

    class Manager(omemo.SessionManager):
        @staticmethod
        async def _upload_bundle(bundle):
            node = f"{AXOLOTL}.bundles:{bundle.device_id}"
            reply = await iq(None, publish(node, oldmemo.etree.serialize_bundle(bundle)), "set")
            if reply is None or reply["type"] != "result":
                raise omemo.BundleUploadFailed(str(reply))

        @staticmethod
        async def _delete_bundle(namespace, device_id):
            return None

        @staticmethod
        async def _upload_device_list(namespace, device_list):
            reply = await iq(None, publish(DEVICES, oldmemo.etree.serialize_device_list(device_list)), "set")
            if reply is None or reply["type"] != "result":
                raise omemo.DeviceListUploadFailed(str(reply))

        @staticmethod
        async def _download_bundle(namespace, bare_jid, device_id):
            reply = await iq(bare_jid, items(f"{AXOLOTL}.bundles:{device_id}"))
            element = None if reply is None else reply.xml.find(f".//{{{AXOLOTL}}}bundle")
            if reply is None or reply["type"] != "result" or element is None:
                raise omemo.BundleDownloadFailed(f"no bundle for {bare_jid}/{device_id}")
            return oldmemo.etree.parse_bundle(element, bare_jid, device_id)

        @staticmethod
        async def _download_device_list(namespace, bare_jid):
            reply = await iq(bare_jid, items(DEVICES))
            if reply is None:
                raise omemo.DeviceListDownloadFailed(f"no answer for {bare_jid}")
            if reply["type"] != "result":
                return {}  # item-not-found: no devices
            element = reply.xml.find(f".//{{{AXOLOTL}}}list")
            return {} if element is None else oldmemo.etree.parse_device_list(element)

        async def _evaluate_custom_trust_level(self, device):
            return omemo.TrustLevel.TRUSTED

        async def _make_trust_decision(self, undecided, identifier):
            return None

        @staticmethod
        async def _send_message(message, bare_jid):
            # python-omemo's own empty messages (heartbeats): sent as clients do.
            msg = xmpp.make_message(mto=bare_jid, mtype="chat")
            msg.xml.append(oldmemo.etree.serialize_message(message))
            msg.send()

    return Manager, Storage


def manager_for(peer, jid):
    """A python-omemo manager for `peer` (bare JID `jid`): its device and bundle published."""
    import oldmemo
    Manager, Storage = make_session_manager(peer.xmpp)

    async def create():
        # One storage for the backend and the manager (python-omemo prefixes the keys).
        storage = Storage()
        return await Manager.create([oldmemo.Oldmemo(storage)], storage, jid, None, "trusted")
    return peer._call(create(), 30)


def decrypt(peer, manager, element, sender, own):
    """The plaintext (str) of the <encrypted/> `element` from `sender`, for `own`'s device."""
    import oldmemo.etree

    async def run():
        message = await oldmemo.etree.parse_message(element, sender, own, manager)
        plaintext, _device, _key = await manager.decrypt(message)
        return None if plaintext is None else plaintext.decode()
    return peer._call(run(), 30)
