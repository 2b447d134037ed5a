# Peer: slixmpp as the second XMPP client, on its own loop; the messages and presences it
# receives (ReceivedMessage, ReceivedPresence) and the XML namespaces they are read with.

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

from harness_process import LOOPBACK, _say, _track, _untrack


# --------------------------------------------------------------------------------------
# Peer: slixmpp on its own loop

class PeerError(AssertionError):
    pass


class Peer:
    """A second XMPP client (slixmpp 1.8) logged in over STARTTLS, verifying the server
    with the test CA. slixmpp is asyncio-only: it gets its own event loop on a daemon
    thread, and every blocking helper hands a coroutine to that loop with
    run_coroutine_threadsafe and waits for the result.

    It answers XEP-0199 ping, XEP-0030 disco#info and XEP-0092 version itself, so two
    Peers can stand in for stanzad when testing the harness. `plugins` names more slixmpp
    plugins to register before connecting (e.g. "xep_0045"). Every <message/> and every
    <presence/> it receives is kept (`messages`, `presences`) for the wait_* helpers.
    """

    def __init__(self, jid: str, password: str, ca_file: Union[str, Path], port: int, *,
                 host: str = LOOPBACK, timeout: float = 15.0, presence: bool = True,
                 connect: bool = True, plugins: Iterable[str] = ()):
        self.jid = jid
        self.password = password
        self.ca_file = Path(ca_file)
        self.port = port
        self.host = host
        self.presence = presence
        self.plugins = list(plugins)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name=f"peer-{jid}",
                                        daemon=True)
        self._thread.start()
        self.xmpp: Any = None
        self._closed = False
        # Every <message/> this peer receives, as ReceivedMessage (see wait_message), and
        # hooks called on the peer's loop thread for each one (e.g. an echo bot).
        self.messages: "list[ReceivedMessage]" = []
        self.message_hooks: "list[Callable[[Any], None]]" = []
        self._msg_cond = threading.Condition()
        # Every <presence/> it receives, as ReceivedPresence (see wait_presence).
        self.presences: "list[ReceivedPresence]" = []
        self._pres_cond = threading.Condition()
        _track(self)
        try:
            self._call(self._create(), 10)
            if connect:
                self.connect(timeout)
        except BaseException:
            self.kill()
            raise

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _call(self, coro: Any, timeout: float) -> Any:
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise PeerError(f"{self.jid}: no answer within {timeout:g}s") from None

    async def _create(self) -> None:
        # Built inside the loop: slixmpp binds futures to the running loop.
        import slixmpp
        xmpp = slixmpp.ClientXMPP(self.jid, self.password)
        xmpp.register_plugin("xep_0030")
        xmpp.register_plugin("xep_0199")
        xmpp.register_plugin("xep_0092", pconfig={"software_name": "stanzad-test-peer"})
        for plugin in self.plugins:
            xmpp.register_plugin(plugin)
        xmpp.ca_certs = self.ca_file
        # slixmpp 1.8.3 pitfalls when given an IP address to connect to:
        # - it leaves default_domain empty, and that is the name it checks the server's
        #   certificate against: with "" the chain is verified but NOT the host name.
        #   Verify against the XMPP domain, as a client must (RFC 6120 13.7.2.1).
        # - it still resolves default_domain (A and AAAA) and then connects to the
        #   answers on default_port (5222), not on the port we gave it.
        xmpp.default_domain = xmpp.boundjid.domain
        xmpp.use_ipv6 = False
        xmpp.use_aiodns = False
        xmpp.default_port = self.port
        xmpp.whitespace_keepalive = False
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath
        xmpp.register_handler(Callback("harness: record messages",
                                       MatchXPath("{jabber:client}message"),
                                       self._record_message))
        xmpp.register_handler(Callback("harness: record presences",
                                       MatchXPath("{jabber:client}presence"),
                                       self._record_presence))
        self.xmpp = xmpp

    def connect(self, timeout: float = 15.0) -> "Peer":
        self._call(self._connect(timeout), timeout + 2)
        return self

    async def _connect(self, timeout: float) -> None:
        xmpp = self.xmpp
        done = self.loop.create_future()

        def finish(exc: Optional[BaseException] = None) -> None:
            if not done.done():
                done.set_exception(exc) if exc else done.set_result(True)

        async def on_session_start(_event: Any) -> None:
            if self.presence:
                xmpp.send_presence()
            finish()

        handlers = {
            "session_start": on_session_start,
            "failed_all_auth": lambda e: finish(PeerError(f"{self.jid}: authentication failed")),
            "ssl_invalid_chain": lambda e: finish(PeerError(f"{self.jid}: TLS verification failed: {e}")),
            "connection_failed": lambda e: finish(PeerError(f"{self.jid}: connection failed: {e}")),
            "disconnected": lambda e: finish(PeerError(f"{self.jid}: disconnected while connecting: {e}")),
        }
        for event, handler in handlers.items():
            xmpp.add_event_handler(event, handler)
        try:
            xmpp.connect((self.host, self.port), force_starttls=True)
            await asyncio.wait_for(done, timeout)
        except BaseException:
            xmpp.cancel_connection_attempt()
            raise
        finally:
            for event, handler in handlers.items():
                xmpp.del_event_handler(event, handler)

    @property
    def full_jid(self) -> str:
        return str(self.xmpp.boundjid.full)

    # -- queries (each raises slixmpp's IqError / IqTimeout on an error reply / silence)
    def ping(self, to: str, timeout: float = 5.0) -> float:
        """XEP-0199 ping; returns the round trip in seconds."""
        async def run() -> float:
            start = time.monotonic()
            await self.xmpp["xep_0199"].send_ping(to, timeout=timeout)
            return time.monotonic() - start
        return self._call(run(), timeout + 2)

    def disco_info(self, to: str, timeout: float = 5.0) -> "tuple[list, set]":
        """XEP-0030 disco#info: ([(category, type, name), ...], {feature, ...})."""
        async def run() -> Any:
            return await self.xmpp["xep_0030"].get_info(jid=to, local=False, cached=False,
                                                        timeout=timeout)
        iq = self._call(run(), timeout + 2)
        info = iq["disco_info"]
        identities = [(c, t, n) for (c, t, _lang, n) in info["identities"]]
        return identities, set(info["features"])

    def version(self, to: str, timeout: float = 5.0) -> dict:
        """XEP-0092 software version: {"name": ..., "version": ..., "os": ...}."""
        async def run() -> Any:
            return await self.xmpp["xep_0092"].get_version(to, timeout=timeout)
        iq = self._call(run(), timeout + 2)
        v = iq["software_version"]
        return {"name": v["name"], "version": v["version"], "os": v["os"]}

    def raw_iq(self, to: str, payload: str, type: str = "get",
               timeout: float = 5.0) -> Any:
        """Send <iq type=TYPE to=TO>PAYLOAD</iq> and return the reply stanza, result or
        error alike (slixmpp Iq: reply['type'], reply['error']['condition'],
        reply['error']['type'], reply.xml)."""
        from slixmpp.exceptions import IqError

        async def run() -> Any:
            iq = self.xmpp.make_iq(ito=to, itype=type)
            iq.append(ET.fromstring(payload))
            try:
                return await iq.send(timeout=timeout)
            except IqError as e:
                return e.iq
        return self._call(run(), timeout + 2)

    # -- messages (sent and received)
    def _record_message(self, msg: Any) -> None:
        """Loop thread: keep every received <message/> and run the hooks."""
        record = ReceivedMessage.from_xml(msg.xml)
        with self._msg_cond:
            self.messages.append(record)
            self._msg_cond.notify_all()
        for hook in list(self.message_hooks):
            try:
                hook(msg)
            except Exception as e:  # a broken hook must not kill the peer's loop
                _say(f"[{self.jid}] ", f"message hook failed: {e!r}")

    def message_mark(self) -> int:
        """Number of messages received so far: pass as `since` to wait_message."""
        with self._msg_cond:
            return len(self.messages)

    def received(self, predicate: Optional[Callable[["ReceivedMessage"], bool]] = None,
                 since: int = 0, **fields: Any) -> "list[ReceivedMessage]":
        """Messages received so far (from index `since`) that match."""
        match = _message_matcher(predicate, fields)
        with self._msg_cond:
            return [m for m in self.messages[since:] if match(m)]

    def wait_message(self, predicate: Optional[Callable[["ReceivedMessage"], bool]] = None,
                     timeout: float = 10.0, since: int = 0, nth: int = 1,
                     **fields: Any) -> "ReceivedMessage":
        """Block until the nth received message (from index `since`) matching `predicate`
        and every field given (body=..., origin_id=..., from_=..., type=..., id=...) has
        arrived; returns it."""
        match = _message_matcher(predicate, fields)
        deadline = time.monotonic() + timeout
        scanned, found = since, 0
        with self._msg_cond:
            while True:
                while scanned < len(self.messages):
                    m = self.messages[scanned]
                    scanned += 1
                    if match(m):
                        found += 1
                        if found >= nth:
                            return m
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    recent = "\n".join(repr(m) for m in self.messages[-10:])
                    raise PeerError(f"{self.jid}: timed out after {timeout:g}s waiting for "
                                    f"message {fields or predicate} (found {found} of "
                                    f"{nth}); last received:\n{recent}")
                self._msg_cond.wait(remaining)

    # -- presences received
    def _record_presence(self, pres: Any) -> None:
        """Loop thread: keep every received <presence/>."""
        record = ReceivedPresence.from_xml(pres.xml)
        with self._pres_cond:
            self.presences.append(record)
            self._pres_cond.notify_all()

    def presence_mark(self) -> int:
        """Number of presences received so far: pass as `since` to wait_presence."""
        with self._pres_cond:
            return len(self.presences)

    def received_presences(self, predicate: Optional[Callable[["ReceivedPresence"], bool]] = None,
                           since: int = 0, **fields: Any) -> "list[ReceivedPresence]":
        """Presences received so far (from index `since`) that match."""
        match = _message_matcher(predicate, fields)
        with self._pres_cond:
            return [p for p in self.presences[since:] if match(p)]

    def wait_presence(self, predicate: Optional[Callable[["ReceivedPresence"], bool]] = None,
                      timeout: float = 10.0, since: int = 0, nth: int = 1,
                      **fields: Any) -> "ReceivedPresence":
        """Block until the nth received presence (from index `since`) matching `predicate`
        and every field given (from_=..., type=..., show=..., room=..., nick=...) has
        arrived; returns it. `type` is "" for an available presence."""
        match = _message_matcher(predicate, fields)
        deadline = time.monotonic() + timeout
        scanned, found = since, 0
        with self._pres_cond:
            while True:
                while scanned < len(self.presences):
                    p = self.presences[scanned]
                    scanned += 1
                    if match(p):
                        found += 1
                        if found >= nth:
                            return p
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    recent = "\n".join(repr(p) for p in self.presences[-10:])
                    raise PeerError(f"{self.jid}: timed out after {timeout:g}s waiting for "
                                    f"presence {fields or predicate} (found {found} of "
                                    f"{nth}); last received:\n{recent}")
                self._pres_cond.wait(remaining)

    def send_message(self, to: str, body: Optional[str], mtype: str = "chat",
                     id: Optional[str] = None, origin_id: Optional[str] = None,
                     timeout: float = 5.0) -> str:
        """Send <message type=MTYPE to=TO id=ID><body>BODY</body></message> (plus a
        XEP-0359 origin-id when given); returns the stanza id (made up when not given).
        Messages sent one after the other leave in that order."""
        stanza_id = id or f"peer-{secrets.token_hex(6)}"

        async def run() -> str:
            msg = self.xmpp.make_message(mto=to, mbody=body, mtype=mtype)
            msg["id"] = stanza_id
            if origin_id is not None:
                ET.SubElement(msg.xml, "{urn:xmpp:sid:0}origin-id").set("id", origin_id)
            msg.send()
            return stanza_id
        return self._call(run(), timeout)

    def send_presence(self, to: Optional[str] = None, show: Optional[str] = None,
                      status: Optional[str] = None, ptype: Optional[str] = None,
                      priority: Optional[int] = None, timeout: float = 5.0) -> None:
        """Send a presence (directed when `to` is given; `ptype` e.g. "unavailable",
        "subscribe", "subscribed"; `priority` RFC 6121 §4.7.2.3)."""
        async def run() -> None:
            self.xmpp.send_presence(pto=to, pshow=show, pstatus=status, ptype=ptype,
                                    ppriority=priority)
        self._call(run(), timeout)

    def send_raw(self, xml: str, timeout: float = 5.0) -> None:
        """Write XML as is to the stream."""
        async def run() -> None:
            self.xmpp.send_raw(xml)
        self._call(run(), timeout)

    # -- teardown
    def close(self, timeout: float = 5.0) -> None:
        """Close the stream properly (</stream:stream>), then stop the loop."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.xmpp is not None and self.xmpp.transport is not None:
                async def run() -> None:
                    await self.xmpp.disconnect(wait=timeout)
                with contextlib.suppress(Exception):
                    self._call(run(), timeout + 2)
        finally:
            self._stop_loop()

    def kill(self) -> None:
        """Drop the connection without a goodbye and stop the loop."""
        self._closed = True
        xmpp = self.xmpp

        def abort() -> None:
            with contextlib.suppress(Exception):
                xmpp.abort()

        if xmpp is not None and self.loop.is_running():
            with contextlib.suppress(Exception):
                self.loop.call_soon_threadsafe(abort)
        self._stop_loop()

    def _stop_loop(self) -> None:
        if self.loop.is_running():
            async def cancel_all() -> None:
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(3)
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5)
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()
        _untrack(self)

    def __enter__(self) -> "Peer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --------------------------------------------------------------------------------------
# Messages as a Peer sees them

SID_NS = "urn:xmpp:sid:0"
DELAY_NS = "urn:xmpp:delay"
RECEIPTS_NS = "urn:xmpp:receipts"
CHATSTATES_NS = "http://jabber.org/protocol/chatstates"
CORRECT_NS = "urn:xmpp:message-correct:0"
MARKERS_NS = "urn:xmpp:chat-markers:0"
CARBONS_NS = "urn:xmpp:carbons:2"
FORWARD_NS = "urn:xmpp:forward:0"
MUC_NS = "http://jabber.org/protocol/muc"
MUC_USER_NS = "http://jabber.org/protocol/muc#user"
MUC_ADMIN_NS = "http://jabber.org/protocol/muc#admin"
ROSTER_NS = "jabber:iq:roster"
MAM_NS = "urn:xmpp:mam:2"


@dataclass
class ReceivedMessage:
    """One <message/> a Peer received. `origin_id` is the XEP-0359 origin-id (or None),
    `stanza_ids` the XEP-0359 stanza-ids as (by, id), `delay` the XEP-0203 stamp."""
    from_: str
    to: str
    type: str
    id: str
    body: Optional[str]
    origin_id: Optional[str]
    stanza_ids: "list[tuple[str, str]]"
    delay: Optional[str]
    xml: str
    received_at: float  # time.monotonic()

    @classmethod
    def from_xml(cls, el: Any) -> "ReceivedMessage":
        body = el.find("{jabber:client}body")
        origin = el.find(f"{{{SID_NS}}}origin-id")
        delay = el.find(f"{{{DELAY_NS}}}delay")
        return cls(from_=el.get("from", ""), to=el.get("to", ""),
                   type=el.get("type", "normal"), id=el.get("id", ""),
                   body=body.text if body is not None else None,
                   origin_id=origin.get("id") if origin is not None else None,
                   stanza_ids=[(s.get("by", ""), s.get("id", ""))
                               for s in el.findall(f"{{{SID_NS}}}stanza-id")],
                   delay=delay.get("stamp") if delay is not None else None,
                   xml=ET.tostring(el, encoding="unicode"),
                   received_at=time.monotonic())

    def __repr__(self) -> str:
        return (f"<message from={self.from_!r} type={self.type!r} id={self.id!r} "
                f"origin-id={self.origin_id!r} body={self.body!r}>")

    # What else the stanza carries (parsed from `xml` on demand).
    @property
    def el(self) -> Any:
        """The stanza as an ElementTree element."""
        return ET.fromstring(self.xml)

    def child(self, ns: str, name: str) -> Any:
        """The first child element {ns}name, or None."""
        return self.el.find(f"{{{ns}}}{name}")

    @property
    def receipt_for(self) -> Optional[str]:
        """XEP-0184 <received id=X/>: X, else None."""
        c = self.child(RECEIPTS_NS, "received")
        return c.get("id", "") if c is not None else None

    @property
    def receipt_requested(self) -> bool:
        """XEP-0184 <request/>."""
        return self.child(RECEIPTS_NS, "request") is not None

    @property
    def chat_state(self) -> Optional[str]:
        """XEP-0085: active, composing, paused, inactive or gone; None without one."""
        for c in self.el:
            if c.tag.startswith(f"{{{CHATSTATES_NS}}}"):
                return c.tag.split("}", 1)[1]
        return None

    @property
    def replace_id(self) -> Optional[str]:
        """XEP-0308 <replace id=X/>: X, else None."""
        c = self.child(CORRECT_NS, "replace")
        return c.get("id", "") if c is not None else None

    @property
    def displayed_id(self) -> Optional[str]:
        """XEP-0333 <displayed id=X/>: X, else None."""
        c = self.child(MARKERS_NS, "displayed")
        return c.get("id", "") if c is not None else None

    @property
    def subject(self) -> Optional[str]:
        """The <subject/> text ("" for an empty one), None without a subject."""
        c = self.child("jabber:client", "subject")
        return (c.text or "") if c is not None else None

    @property
    def carbon(self) -> "Optional[tuple[str, Optional[ReceivedMessage]]]":
        """XEP-0280: ("sent" | "received", the forwarded message) for a carbon, else None."""
        for direction in ("sent", "received"):
            c = self.child(CARBONS_NS, direction)
            if c is not None:
                inner = c.find(f"{{{FORWARD_NS}}}forwarded/{{jabber:client}}message")
                return direction, (ReceivedMessage.from_xml(inner) if inner is not None
                                   else None)
        return None


@dataclass
class ReceivedPresence:
    """One <presence/> a Peer received. `type` is "" for available; `priority` 0 when the
    presence has none. From a room (XEP-0045), `muc_codes` are the <status code=.../> of
    its muc#user <x/>, `affiliation`, `role`, `real_jid` (item jid) and `new_nick` (item
    nick, with status 303) come from its <item/>, `actor` (nick) and `reason` from a kick
    or ban; `error` is the condition of a type='error' presence."""
    from_: str
    to: str
    type: str
    show: str
    status: str
    priority: int
    muc: bool
    muc_codes: "frozenset[int]"
    affiliation: str
    role: str
    real_jid: str
    new_nick: str
    actor: str
    reason: str
    error: str
    xml: str
    received_at: float

    @classmethod
    def from_xml(cls, el: Any) -> "ReceivedPresence":
        def text(parent: Any, tag: str) -> str:
            c = parent.find(tag) if parent is not None else None
            return (c.text or "") if c is not None else ""
        x = el.find(f"{{{MUC_USER_NS}}}x")
        item = x.find(f"{{{MUC_USER_NS}}}item") if x is not None else None
        actor = item.find(f"{{{MUC_USER_NS}}}actor") if item is not None else None
        codes = frozenset(int(s.get("code", "0")) for s in
                          (x.findall(f"{{{MUC_USER_NS}}}status") if x is not None else []))
        error = el.find("{jabber:client}error")
        condition = ""
        if error is not None:
            condition = next((c.tag.split("}", 1)[1] for c in error
                              if c.tag.startswith("{urn:ietf:params:xml:ns:xmpp-stanzas}")
                              and not c.tag.endswith("}text")), "undefined-condition")
        prio = text(el, "{jabber:client}priority")
        return cls(from_=el.get("from", ""), to=el.get("to", ""), type=el.get("type", ""),
                   show=text(el, "{jabber:client}show"),
                   status=text(el, "{jabber:client}status"),
                   priority=int(prio) if prio.strip().lstrip("-").isdigit() else 0,
                   muc=x is not None, muc_codes=codes,
                   affiliation=item.get("affiliation", "") if item is not None else "",
                   role=item.get("role", "") if item is not None else "",
                   real_jid=item.get("jid", "") if item is not None else "",
                   new_nick=item.get("nick", "") if item is not None else "",
                   actor=((actor.get("nick", "") or actor.get("jid", ""))
                          if actor is not None else ""),
                   reason=text(item, f"{{{MUC_USER_NS}}}reason"),
                   error=condition, xml=ET.tostring(el, encoding="unicode"),
                   received_at=time.monotonic())

    @property
    def bare(self) -> str:
        return self.from_.split("/", 1)[0]

    @property
    def room(self) -> str:
        """The room's bare JID when this comes from a room occupant (else the bare from)."""
        return self.bare

    @property
    def nick(self) -> str:
        """The resource of `from` (the occupant's nick for a room presence)."""
        return self.from_.split("/", 1)[1] if "/" in self.from_ else ""

    @property
    def self_presence(self) -> bool:
        """XEP-0045 status 110: the room speaks of us."""
        return 110 in self.muc_codes

    def __repr__(self) -> str:
        extra = (f" muc codes={sorted(self.muc_codes)} role={self.role!r} "
                 f"affiliation={self.affiliation!r}" if self.muc else "")
        return (f"<presence from={self.from_!r} type={self.type!r} show={self.show!r} "
                f"status={self.status!r} priority={self.priority}{extra}"
                f"{' error=' + self.error if self.error else ''}>")


def _message_matcher(predicate: Optional[Callable[[Any], bool]],
                     fields: dict) -> Callable[[Any], bool]:
    def match(m: Any) -> bool:
        if predicate is not None and not predicate(m):
            return False
        return all(getattr(m, k) == v for k, v in fields.items())
    return match
