# Instant messaging and multi-user chat (test_im_*.py): Peer.muc_*/roster_*/enable_carbons
# and friends, MucJoin, room_stanza_id; the daemon's wire log (wire_stanzas, wait_wire).

from __future__ import annotations

import re
import secrets
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

from harness_stanzad import Stanzad
from harness_peer import (CARBONS_NS, CHATSTATES_NS, MUC_ADMIN_NS, MUC_NS, ROSTER_NS, Peer,
                          PeerError, ReceivedMessage, ReceivedPresence)


# --------------------------------------------------------------------------------------
# Instant messaging and multi-user chat (test_im_*.py): peers that take part in rooms
# (XEP-0045), enable carbons (XEP-0280), edit their roster and answer subscriptions by
# hand; and the daemon's wire log (log_level = "trace") read as stanzas.
#
# The MUC helpers write the XEP-0045 stanzas themselves (no slixmpp xep_0045 state in
# between), so a test sees exactly what the room sends: every presence is in
# Peer.presences, every message in Peer.messages.

def _xml_attr(value: str) -> str:
    from xml.sax.saxutils import quoteattr
    return quoteattr(str(value))


def _xml_text(value: str) -> str:
    from xml.sax.saxutils import escape
    return escape(str(value))


def _peer_manual_subscriptions(self: "Peer") -> "Peer":
    """Stop slixmpp from answering subscription requests by itself (its default approves
    every request and asks back): the test sends subscribed/subscribe when it means to."""
    async def run() -> None:
        self.xmpp.auto_authorize = None
        self.xmpp.auto_subscribe = False
    self._call(run(), 5)
    return self


def _peer_enable_carbons(self: "Peer", timeout: float = 5.0) -> None:
    """XEP-0280 §4: ask our server to copy this account's chats to this session."""
    reply = self.raw_iq(None, f"<enable xmlns='{CARBONS_NS}'/>", type="set",
                        timeout=timeout)
    if reply["type"] != "result":
        raise PeerError(f"{self.jid}: enabling carbons failed: {reply}")


def _peer_roster_set(self: "Peer", jid: str, name: str = "", groups: Iterable[str] = (),
                     timeout: float = 5.0) -> Any:
    """RFC 6121 §2.3: add or change a roster item from this session; returns the result
    (raises PeerError on an error reply)."""
    item = f"<item jid={_xml_attr(jid)}" + (f" name={_xml_attr(name)}" if name else "") + ">"
    item += "".join(f"<group>{_xml_text(g)}</group>" for g in groups) + "</item>"
    reply = self.raw_iq(None, f"<query xmlns='{ROSTER_NS}'>{item}</query>", type="set",
                        timeout=timeout)
    if reply["type"] != "result":
        raise PeerError(f"{self.jid}: roster set of {jid} failed: {reply}")
    return reply


def _peer_roster_remove(self: "Peer", jid: str, timeout: float = 5.0) -> Any:
    """RFC 6121 §2.5: remove a roster item from this session."""
    reply = self.raw_iq(None, f"<query xmlns='{ROSTER_NS}'><item jid={_xml_attr(jid)} "
                              f"subscription='remove'/></query>", type="set", timeout=timeout)
    if reply["type"] != "result":
        raise PeerError(f"{self.jid}: roster remove of {jid} failed: {reply}")
    return reply


def _peer_roster_get(self: "Peer", ver: Optional[str] = None, timeout: float = 5.0) -> Any:
    """RFC 6121 §2.1.3 (with `ver`, §2.6.3): the server's answer as an ElementTree
    element (an <iq/> whose <query/> may be absent: "nothing changed")."""
    attr = f" ver={_xml_attr(ver)}" if ver is not None else ""
    reply = self.raw_iq(None, f"<query xmlns='{ROSTER_NS}'{attr}/>", timeout=timeout)
    return ET.fromstring(ET.tostring(reply.xml))


def _peer_send_chat_state(self: "Peer", to: str, state: str, mtype: str = "chat",
                          timeout: float = 5.0) -> str:
    """XEP-0085 §5: a standalone chat state notification (no body); returns its id."""
    stanza_id = f"cs-{secrets.token_hex(6)}"
    self.send_raw(f"<message to={_xml_attr(to)} type={_xml_attr(mtype)} id='{stanza_id}'>"
                  f"<{state} xmlns='{CHATSTATES_NS}'/></message>", timeout)
    return stanza_id


@dataclass
class MucJoin:
    """What a Peer saw when it entered a room: its own presence (status 110), the other
    occupants' presences that came before it, whether the room was created for us
    (status 201) and the subject message that completes the join (§7.2.15)."""
    room: str
    nick: str
    self_presence: ReceivedPresence
    occupants: "list[ReceivedPresence]"
    created: bool
    subject: Optional[ReceivedMessage]


def _peer_muc_join(self: "Peer", room: str, nick: str, *, password: Optional[str] = None,
                   maxstanzas: int = 0, timeout: float = 10.0) -> MucJoin:
    """XEP-0045 §7.2: enter `room` as `nick` asking for `maxstanzas` messages of history;
    blocks until the room has sent our own presence (status 110) and the subject. A new
    room on the test Prosody is created at once (muc_room_locking = false): we become its
    owner. Raises PeerError with the condition when the room refuses."""
    pmark, mmark = self.presence_mark(), self.message_mark()
    pw = f"<password>{_xml_text(password)}</password>" if password is not None else ""
    self.send_raw(f"<presence to={_xml_attr(room + '/' + nick)}><x xmlns='{MUC_NS}'>{pw}"
                  f"<history maxstanzas='{int(maxstanzas)}'/></x></presence>", timeout)
    mine = self.wait_presence(lambda p: p.bare == room and (p.self_presence or p.type == "error"),
                              timeout=timeout, since=pmark)
    if mine.type == "error":
        raise PeerError(f"{self.jid}: the room {room} refused us as {nick!r}: {mine.error}\n"
                        f"{mine.xml}")
    with self._pres_cond:
        before = self.presences[pmark:self.presences.index(mine)]
    occupants = [p for p in before if p.bare == room and p.muc and p.type != "unavailable"]
    subject = self.wait_message(lambda m: m.from_.split("/")[0] == room
                                and m.type == "groupchat" and m.subject is not None
                                and m.body is None, timeout=timeout, since=mmark)
    return MucJoin(room, mine.nick, mine, occupants, 201 in mine.muc_codes, subject)


def _peer_muc_send(self: "Peer", room: str, body: str, id: Optional[str] = None,
                   timeout: float = 5.0) -> str:
    """A groupchat message to the room; returns its stanza id. The room echoes it back to
    us (with its stanza-id, by the room's JID) like to everyone else."""
    return self.send_message(room, body, mtype="groupchat", id=id, timeout=timeout)


def _peer_muc_subject(self: "Peer", room: str, subject: str,
                      timeout: float = 10.0) -> ReceivedMessage:
    """XEP-0045 §8.1: change the subject; returns the room's broadcast of it (to us)."""
    mark = self.message_mark()
    stanza_id = f"subj-{secrets.token_hex(6)}"
    self.send_raw(f"<message to={_xml_attr(room)} type='groupchat' id='{stanza_id}'>"
                  f"<subject>{_xml_text(subject)}</subject></message>", timeout)
    return self.wait_message(lambda m: m.from_.split("/")[0] == room and m.subject == subject,
                             timeout=timeout, since=mark)


def _peer_muc_nick(self: "Peer", room: str, new_nick: str,
                   timeout: float = 10.0) -> ReceivedPresence:
    """XEP-0045 §7.6: change our nick; returns our presence under the new nick."""
    mark = self.presence_mark()
    self.send_raw(f"<presence to={_xml_attr(room + '/' + new_nick)}/>", timeout)
    p = self.wait_presence(lambda p: p.bare == room and (p.type == "error" or (
        p.self_presence and p.type == "" and p.nick == new_nick)), timeout=timeout, since=mark)
    if p.type == "error":
        raise PeerError(f"{self.jid}: nick change to {new_nick!r} refused: {p.error}")
    return p


def _peer_muc_kick(self: "Peer", room: str, nick: str, reason: str = "",
                   timeout: float = 10.0) -> Any:
    """XEP-0045 §8.2: kick `nick` (role none); we must be a moderator. Returns the
    room's result; raises PeerError on an error reply."""
    why = f"<reason>{_xml_text(reason)}</reason>" if reason else ""
    reply = self.raw_iq(room, f"<query xmlns='{MUC_ADMIN_NS}'><item nick={_xml_attr(nick)} "
                              f"role='none'>{why}</item></query>", type="set", timeout=timeout)
    if reply["type"] != "result":
        raise PeerError(f"{self.jid}: kicking {nick!r} from {room} failed: {reply}")
    return reply


def _peer_muc_leave(self: "Peer", room: str, nick: str, status: str = "",
                    timeout: float = 10.0) -> ReceivedPresence:
    """XEP-0045 §7.14: leave; returns the room's unavailable presence for us."""
    mark = self.presence_mark()
    st = f"<status>{_xml_text(status)}</status>" if status else ""
    self.send_raw(f"<presence to={_xml_attr(room + '/' + nick)} type='unavailable'>{st}"
                  f"</presence>", timeout)
    return self.wait_presence(lambda p: p.bare == room and p.type == "unavailable"
                              and p.self_presence, timeout=timeout, since=mark)


def room_stanza_id(m: ReceivedMessage, room: str) -> Optional[str]:
    """The XEP-0359 stanza-id a room stamped on a groupchat message (its archive id)."""
    return next((i for by, i in m.stanza_ids if by == room), None)


Peer.manual_subscriptions = _peer_manual_subscriptions  # type: ignore[attr-defined]
Peer.enable_carbons = _peer_enable_carbons              # type: ignore[attr-defined]
Peer.roster_set = _peer_roster_set                      # type: ignore[attr-defined]
Peer.roster_remove = _peer_roster_remove                # type: ignore[attr-defined]
Peer.roster_get = _peer_roster_get                      # type: ignore[attr-defined]
Peer.send_chat_state = _peer_send_chat_state            # type: ignore[attr-defined]
Peer.muc_join = _peer_muc_join                          # type: ignore[attr-defined]
Peer.muc_send = _peer_muc_send                          # type: ignore[attr-defined]
Peer.muc_subject = _peer_muc_subject                    # type: ignore[attr-defined]
Peer.muc_nick = _peer_muc_nick                          # type: ignore[attr-defined]
Peer.muc_kick = _peer_muc_kick                          # type: ignore[attr-defined]
Peer.muc_leave = _peer_muc_leave                        # type: ignore[attr-defined]


# The daemon's wire log. With [daemon] log_level = "trace", daemon/connection.cpp logs
# every stanza as `<time> trace account NAME: SEND <xml>` or `... RECV <xml>` (one line:
# what we wrote as we wrote it, what we received re-serialized by pugixml, so attribute
# quotes and order differ between the two; SASL payloads are "[redacted]").

def rx_wire(account: str) -> str:
    """A wire log line of `account`; groups: SEND|RECV, the XML."""
    return rf"account {re.escape(account)}: (SEND|RECV) (<.*)$"


@dataclass
class WireStanza:
    """One stanza from the wire log: its line in Stanzad.lines, SEND or RECV, the parsed
    element (namespaces as in ElementTree: "{jabber:iq:roster}query") and the raw text."""
    index: int
    direction: str
    el: Any
    text: str

    @property
    def tag(self) -> str:
        """The local name of the root (iq, message, presence, ...)."""
        return self.el.tag.split("}", 1)[-1]

    def find(self, ns: str, name: str) -> Any:
        return self.el.find(f"{{{ns}}}{name}")

    def __repr__(self) -> str:
        return f"<wire #{self.index} {self.direction} {self.text[:300]}>"


def _parse_wire(d: Stanzad, i: int, rx: "re.Pattern[str]") -> Optional[WireStanza]:
    m = rx.search(d.lines[i])
    if not m:
        return None
    try:
        el = ET.fromstring(m.group(2))
    except ET.ParseError:  # stream headers, <stream:features> (prefix declared elsewhere)
        return None
    return WireStanza(i, m.group(1), el, m.group(2))


def wire_stanzas(d: Stanzad, account: str = "home", since: int = 0,
                 direction: Optional[str] = None,
                 predicate: Optional[Callable[[WireStanza], bool]] = None) -> "list[WireStanza]":
    """The stanzas of `account` in the daemon's wire log from line `since` (SEND, RECV or
    both), that match `predicate`."""
    rx = re.compile(rx_wire(account))
    out = []
    with d._cond:
        for i in range(since, len(d.lines)):
            w = _parse_wire(d, i, rx)
            if w and (direction is None or w.direction == direction) and (
                    predicate is None or predicate(w)):
                out.append(w)
    return out


def wait_wire(d: Stanzad, predicate: Callable[[WireStanza], bool], account: str = "home",
              since: int = 0, direction: Optional[str] = None, timeout: float = 10.0,
              what: str = "a stanza") -> WireStanza:
    """Block until the daemon logs a wire stanza (from line `since`) that matches."""
    rx = re.compile(rx_wire(account))
    deadline = time.monotonic() + timeout
    scanned = since
    with d._cond:
        while True:
            while scanned < len(d.lines):
                w = _parse_wire(d, scanned, rx)
                scanned += 1
                if w and (direction is None or w.direction == direction) and predicate(w):
                    return w
            if d._eof:
                raise AssertionError(f"{d.name} exited before logging {what} on the wire\n"
                                     f"{d._tail_locked()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {d.name} to "
                                     f"log {what} on the wire\n{d._tail_locked()}")
            d._cond.wait(remaining)
