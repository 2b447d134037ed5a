"""A python-omemo peer for the OMEMO tests: XEP-0384 0.3 (eu.siacs.conversations.axolotl,
python3-oldmemo) and OMEMO 2 (urn:xmpp:omemo:2, python3-twomemo).

make_session_manager(xmpp): a python-omemo SessionManager class (and an in-memory Storage)
whose PEP operations go through the slixmpp client `xmpp` of a harness Peer, for either
namespace (each backend publishes its own device list and bundle).
manager_for(peer, jid, namespaces): such a manager, created (devices and bundles published);
by default 0.3 only; (OMEMO2,) for an OMEMO 2 peer, (OMEMO2, AXOLOTL) for both.
decrypt(peer, manager, element, sender, own): the plaintext of an <encrypted/> element of
either namespace (OMEMO 2: the <body/> of the XEP-0420 envelope, whose <from/> is checked).
envelope(body, sender): an XEP-0420 envelope as XEP-0384 §4.4 profiles it (bytes).
Debian's python3-omemo with oldmemo and twomemo: a code base apart from libomemo-c.
"""

import os
import base64
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

AXOLOTL = "eu.siacs.conversations.axolotl"
DEVICES = AXOLOTL + ".devicelist"
OMEMO2 = "urn:xmpp:omemo:2"
DEVICES2 = OMEMO2 + ":devices"
BUNDLES2 = OMEMO2 + ":bundles"
SCE = "urn:xmpp:sce:1"
PUBSUB = "http://jabber.org/protocol/pubsub"
FALLBACK = "I sent you an OMEMO encrypted message but your client doesn't seem to support that."
FALLBACK2 = "This message is OMEMO encrypted (XEP-0384)."


def envelope(body, sender):
    """XEP-0420 §4 with XEP-0384 §4.4's profile: <content><body/></content>, <rpad/>, <from/>."""
    rpad = base64.b64encode(os.urandom(os.urandom(1)[0] % 32)).decode()
    return (f"<envelope xmlns='{SCE}'><content><body xmlns='jabber:client'>{escape(body)}</body></content>"
            f"<rpad>{rpad}</rpad><from jid={quoteattr(sender)}/></envelope>").encode()


def open_envelope(data, sender):
    """The body of an envelope from `sender` (its <from/> must name it)."""
    env = ET.fromstring(data)
    assert env.tag == f"{{{SCE}}}envelope", env.tag
    frm = env.find(f"{{{SCE}}}from")
    assert frm is not None and frm.get("jid").split("/")[0] == sender, ET.tostring(env)
    body = env.find(f"{{{SCE}}}content/{{jabber:client}}body")
    return "" if body is None else (body.text or "")


def make_session_manager(xmpp):
    """A SessionManager subclass whose PEP operations go through the slixmpp client
    `xmpp` (python-omemo leaves XMPP to the application)."""
    import omemo
    import oldmemo.etree
    import twomemo.etree
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

    def publish(node, payload, item="current", max_items=False):
        # XEP-0060 §7.1.5: publish-options, access model open (XEP-0384 §5.3.2); the OMEMO 2
        # bundles node keeps one item per device (max_items = max).
        pubsub = ET.Element(f"{{{PUBSUB}}}pubsub")
        ET.SubElement(ET.SubElement(pubsub, f"{{{PUBSUB}}}publish", node=node),
                      f"{{{PUBSUB}}}item", id=item).append(payload)
        form = ET.SubElement(ET.SubElement(pubsub, f"{{{PUBSUB}}}publish-options"),
                             "{jabber:x:data}x", type="submit")
        options = [("FORM_TYPE", "http://jabber.org/protocol/pubsub#publish-options"),
                   ("pubsub#access_model", "open")]
        if max_items:
            options.append(("pubsub#max_items", "max"))
        for var, value in options:
            field = ET.SubElement(form, "{jabber:x:data}field", var=var)
            ET.SubElement(field, "{jabber:x:data}value").text = value
        return pubsub

    class Manager(omemo.SessionManager):
        @staticmethod
        async def _upload_bundle(bundle):
            if bundle.namespace == OMEMO2:
                payload = publish(BUNDLES2, twomemo.etree.serialize_bundle(bundle), str(bundle.device_id), True)
            else:
                payload = publish(f"{AXOLOTL}.bundles:{bundle.device_id}", oldmemo.etree.serialize_bundle(bundle))
            reply = await iq(None, payload, "set")
            if reply is None or reply["type"] != "result":
                raise omemo.BundleUploadFailed(str(reply))

        @staticmethod
        async def _delete_bundle(namespace, device_id):
            return None

        @staticmethod
        async def _upload_device_list(namespace, device_list):
            if namespace == OMEMO2:
                payload = publish(DEVICES2, twomemo.etree.serialize_device_list(device_list))
            else:
                payload = publish(DEVICES, oldmemo.etree.serialize_device_list(device_list))
            reply = await iq(None, payload, "set")
            if reply is None or reply["type"] != "result":
                raise omemo.DeviceListUploadFailed(str(reply))

        @staticmethod
        async def _download_bundle(namespace, bare_jid, device_id):
            if namespace == OMEMO2:
                query = items(BUNDLES2)
                ET.SubElement(query[0], f"{{{PUBSUB}}}item", id=str(device_id))
                reply = await iq(bare_jid, query)
                element = None if reply is None else reply.xml.find(f".//{{{OMEMO2}}}bundle")
                if reply is None or reply["type"] != "result" or element is None:
                    raise omemo.BundleDownloadFailed(f"no bundle for {bare_jid}/{device_id}")
                return twomemo.etree.parse_bundle(element, bare_jid, device_id)
            reply = await iq(bare_jid, items(f"{AXOLOTL}.bundles:{device_id}"))
            element = None if reply is None else reply.xml.find(f".//{{{AXOLOTL}}}bundle")
            if reply is None or reply["type"] != "result" or element is None:
                raise omemo.BundleDownloadFailed(f"no bundle for {bare_jid}/{device_id}")
            return oldmemo.etree.parse_bundle(element, bare_jid, device_id)

        @staticmethod
        async def _download_device_list(namespace, bare_jid):
            v2 = namespace == OMEMO2
            reply = await iq(bare_jid, items(DEVICES2 if v2 else DEVICES))
            if reply is None:
                raise omemo.DeviceListDownloadFailed(f"no answer for {bare_jid}")
            if reply["type"] != "result":
                return {}  # item-not-found: no devices
            if v2:
                element = reply.xml.find(f".//{{{OMEMO2}}}devices")
                return {} if element is None else twomemo.etree.parse_device_list(element)
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
            if message.namespace == OMEMO2:
                msg.xml.append(twomemo.etree.serialize_message(message))
            else:
                msg.xml.append(oldmemo.etree.serialize_message(message))
            msg.send()

    return Manager, Storage


def manager_for(peer, jid, namespaces=(AXOLOTL,)):
    """A python-omemo manager for `peer` (bare JID `jid`) speaking `namespaces` (AXOLOTL,
    OMEMO2): its device and bundles published."""
    import oldmemo
    import twomemo
    Manager, Storage = make_session_manager(peer.xmpp)

    async def create():
        # One storage for the backends and the manager (python-omemo prefixes the keys).
        storage = Storage()
        backends = [twomemo.Twomemo(storage) if ns == OMEMO2 else oldmemo.Oldmemo(storage) for ns in namespaces]
        return await Manager.create(backends, storage, jid, None, "trusted")
    return peer._call(create(), 30)


def encrypted_message(peer, manager, to, body, sender, namespace=OMEMO2):
    """A <message/> (slixmpp stanza, not sent) from `sender` to `to` with `body` encrypted
    in `namespace` for every device of `to` (and the sender's other devices)."""
    import oldmemo.etree
    import twomemo.etree

    async def run():
        plaintext = envelope(body, sender) if namespace == OMEMO2 else body.encode()
        messages, errors = await manager.encrypt(frozenset({to}), {namespace: plaintext}, [namespace])
        assert not errors, errors
        (message,) = [m for m in messages.keys() if m.namespace == namespace]
        msg = peer.xmpp.make_message(mto=to, mbody=FALLBACK2 if namespace == OMEMO2 else FALLBACK, mtype="chat")
        etree = twomemo.etree if namespace == OMEMO2 else oldmemo.etree
        msg.xml.append(etree.serialize_message(message))
        return msg
    return peer._call(run(), 30)


def decrypt(peer, manager, element, sender, own):
    """The plaintext (str) of the <encrypted/> `element` from `sender`, for `own`'s device."""
    import oldmemo.etree
    import twomemo.etree

    async def run():
        if element.tag == f"{{{OMEMO2}}}encrypted":
            message = twomemo.etree.parse_message(element, sender)
            plaintext, _device, _key = await manager.decrypt(message)
            return None if plaintext is None else open_envelope(plaintext, sender)
        message = await oldmemo.etree.parse_message(element, sender, own, manager)
        plaintext, _device, _key = await manager.decrypt(message)
        return None if plaintext is None else plaintext.decode()
    return peer._call(run(), 30)
