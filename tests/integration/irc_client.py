"""A raw IRC client for the tests of stanzad's IRC front end (docs/irc.md), and IrcTest.

    IrcClient   one TCP connection (TLS with `tls`) to the daemon's [irc] listen address. send() writes a
                line (str or bytes, CR LF added); every line the daemon sends is parsed
                (IRCv3 message tags unescaped, source, command, parameters) and kept in
                `lines`; wait() blocks on socket reads until a line matching a predicate
                and/or a command and parameters arrives. mark() and `since` work like the
                harness's log positions. register() does the whole connection
                registration (PASS or SASL PLAIN, CAP LS 302 / REQ / END, NICK, USER) and
                waits for 001 and for the control channel &stanzad (the session is set
                up), alive() proves the session still answers PING, batch() collects one
                BATCH +id ... BATCH -id.
    IrcTest     JsonlTest plus start_irc_daemon(): the daemon with an [irc] section on a
                free loopback port, alice as account "home", waiting for `IRC on` and for
                the account to be online; irc() opens an IrcClient closed at cleanup.

Nothing sleeps: every wait is a socket read with a deadline.
"""

from __future__ import annotations

import base64
import os
import re
import sys
import socket
import ssl
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

import harness
from harness import JsonlTest, Stanzad

IRC_PASSWORD = "irc-Pw-9!"
ALL_CAPS = ("away-notify", "batch", "cap-notify", "draft/chathistory", "draft/read-marker",
            "echo-message", "extended-monitor", "labeled-response", "message-tags",
            "multi-prefix", "sasl", "server-time", "setname", "userhost-in-names")
# A client that gets replays in batches with server-time (not draft/chathistory).
REPLAY_CAPS = ("batch", "server-time", "message-tags")
# A client that asks for history itself.
HISTORY_CAPS = ("batch", "server-time", "message-tags", "draft/chathistory")
RFC3339_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def rx_irc_on(address: str) -> str:
    return rf"stanzad: IRC on {re.escape(address)}"


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        i += 1
        if i == len(value):
            break
        out.append({":": ";", "s": " ", "r": "\r", "n": "\n"}.get(value[i], value[i]))
        i += 1
    return "".join(out)


class Line:
    """One line from the server: tags (dict, unescaped), source, command, params."""

    def __init__(self, raw: bytes):
        self.raw_bytes = raw
        self.raw = raw.decode("utf-8", errors="replace")
        self.tags: "dict[str, str]" = {}
        self.source = ""
        rest = self.raw
        if rest.startswith("@"):
            section, _, rest = rest[1:].partition(" ")
            for tag in section.split(";"):
                if tag:
                    k, _, v = tag.partition("=")
                    self.tags[k] = _unescape(v)
            rest = rest.lstrip(" ")
        if rest.startswith(":"):
            self.source, _, rest = rest[1:].partition(" ")
            rest = rest.lstrip(" ")
        self.command, _, rest = rest.partition(" ")
        self.command = self.command.upper()
        self.params: "list[str]" = []
        while rest:
            rest = rest.lstrip(" ")
            if not rest:
                break
            if rest.startswith(":"):
                self.params.append(rest[1:])
                break
            p, _, rest = rest.partition(" ")
            self.params.append(p)

    @property
    def nick(self) -> str:
        """The nick of the source (before '!')."""
        return self.source.split("!", 1)[0]

    @property
    def text(self) -> str:
        return self.params[-1] if self.params else ""

    def __repr__(self) -> str:
        return self.raw


class IrcError(AssertionError):
    pass


class IrcClient:
    def __init__(self, port: int, host: str = harness.LOOPBACK, *, name: str = "irc",
                 timeout: float = 10.0, tls: Optional[ssl.SSLContext] = None):
        self.name = name
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:  # [irc] tls_cert/tls_key: the handshake happens here
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        self.lines: "list[Line]" = []
        self.eof = False
        self.nick = "*"
        self.caps: "set[str]" = set()
        self._label = 0
        # STANZAD_IRC_TRACE=1 prints every line both ways on stderr.
        self.trace = bool(os.environ.get("STANZAD_IRC_TRACE"))

    # -- I/O
    def send(self, line: Union[str, bytes]) -> None:
        data = line.encode() if isinstance(line, str) else line
        if self.trace:
            print(f"[irc {self.name}] >> {data[:300]!r}", file=sys.stderr, flush=True)
        self.sock.sendall(data + b"\r\n")

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _read(self, timeout: float) -> bool:
        """One recv with a timeout; False on timeout or EOF."""
        if self.eof:
            return False
        self.sock.settimeout(max(0.01, timeout))
        try:
            data = self.sock.recv(1 << 16)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        while b"\n" in self.buf:
            raw, self.buf = self.buf.split(b"\n", 1)
            raw = raw.rstrip(b"\r")
            if raw:
                self.lines.append(Line(raw))
                if self.trace:
                    print(f"[irc {self.name}] << {self.lines[-1].raw}", file=sys.stderr,
                          flush=True)
        return True

    def mark(self) -> int:
        return len(self.lines)

    @staticmethod
    def _matcher(pred: Optional[Callable[[Line], bool]], command: Optional[str],
                 params: Iterable[Any], text: Optional[str]) -> Callable[[Line], bool]:
        params = list(params)

        def match(line: Line) -> bool:
            if command is not None and line.command != command.upper():
                return False
            for i, p in enumerate(params):
                if p is not None and (i >= len(line.params) or line.params[i] != p):
                    return False
            if text is not None and line.text != text:
                return False
            return pred is None or bool(pred(line))
        return match

    def find(self, pred: Optional[Callable[[Line], bool]] = None, command: Optional[str] = None,
             *params: Any, since: int = 0, text: Optional[str] = None) -> "list[Line]":
        """Lines received so far (from `since`) that match."""
        match = self._matcher(pred, command, params, text)
        return [l for l in self.lines[since:] if match(l)]

    def wait(self, pred: Optional[Callable[[Line], bool]] = None, command: Optional[str] = None,
             *params: Any, since: int = 0, text: Optional[str] = None,
             timeout: Optional[float] = None, nth: int = 1) -> Line:
        """The nth line (from `since`) of `command` whose first parameters are `params`
        (None: any), whose last parameter is `text` and that satisfies `pred`."""
        match = self._matcher(pred, command, params, text)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        i, found = since, 0
        while True:
            while i < len(self.lines):
                line = self.lines[i]
                i += 1
                if match(line):
                    found += 1
                    if found >= nth:
                        return line
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.eof and i >= len(self.lines)):
                what = " ".join(str(x) for x in (command, *params, text) if x is not None)
                raise IrcError(f"{self.name}: {'connection closed' if self.eof else 'timed out'}"
                               f" waiting for {what or pred}; last lines:\n{self.recent()}")
            self._read(remaining)

    def wait_closed(self, timeout: Optional[float] = None) -> None:
        """Read until the daemon closes the connection."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise IrcError(f"{self.name}: the daemon did not close the connection; "
                               f"last lines:\n{self.recent()}")
            self._read(remaining)

    def recent(self, n: int = 25) -> str:
        return "\n".join(l.raw for l in self.lines[-n:])

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    # -- protocol helpers
    def alive(self, token: Optional[str] = None, timeout: Optional[float] = None) -> Line:
        """PING with a fresh token; returns the PONG (the session still reads and answers,
        and everything it sent before is in `lines`)."""
        self._label += 1
        token = token or f"alive-{self._label}"
        mark = self.mark()
        self.send(f"PING {token}")
        return self.wait(lambda l: l.params[-1:] == [token], "PONG", since=mark, timeout=timeout)

    def next_label(self) -> str:
        self._label += 1
        return f"L{self._label}"

    def batch(self, since: int = 0, kind: Optional[str] = None,
              timeout: Optional[float] = None) -> "tuple[Line, list[Line]]":
        """The first complete batch (of type `kind`) opened after `since`: its BATCH +id
        line and the lines tagged batch=id, once BATCH -id has arrived."""
        start = self.wait(lambda l: l.params and l.params[0].startswith("+")
                          and (kind is None or l.params[1:2] == [kind]), "BATCH",
                          since=since, timeout=timeout)
        ref = start.params[0][1:]
        end = self.wait(None, "BATCH", "-" + ref, since=self.lines.index(start), timeout=timeout)
        body = [l for l in self.lines[self.lines.index(start) + 1:self.lines.index(end)]
                if l.tags.get("batch") == ref]
        return start, body

    def pong_replay(self, since: int = 0, timeout: Optional[float] = None) -> Line:
        """Answer the daemon's PING that follows a replay (its cursor moves on the PONG)."""
        ping = self.wait(lambda l: l.text.startswith("replay-"), "PING", since=since,
                         timeout=timeout)
        self.send(f"PONG :{ping.text}")
        return ping

    def register(self, nick: str = "alice", user: str = "alice", *,
                 password: Optional[str] = IRC_PASSWORD, caps: Iterable[str] = (),
                 sasl: Optional[str] = None, cap_ls: bool = True,
                 wait_setup: bool = True) -> Line:
        """Connection registration; returns 001. caps: requested with CAP REQ after
        CAP LS 302 (no CAP at all when empty and cap_ls is False). sasl: the SASL PLAIN
        identity (user@client), with `password`, instead of PASS."""
        caps = list(caps)
        if sasl is not None and "sasl" not in caps:
            caps.append("sasl")
        mark = self.mark()
        if caps or cap_ls:
            self.send("CAP LS 302")
        if password is not None and sasl is None:
            self.send(f"PASS {password}")
        self.send(f"NICK {nick}")
        self.send(f"USER {user} 0 * :{nick} via tests")
        if caps:
            self.send("CAP REQ :" + " ".join(caps))
            ack = self.wait(lambda l: l.params[1:2] in (["ACK"], ["NAK"]), "CAP", since=mark)
            if ack.params[1] != "ACK":
                raise IrcError(f"{self.name}: caps refused: {ack.raw}")
            self.caps = set(caps)
        if sasl is not None:
            self.send("AUTHENTICATE PLAIN")
            self.wait(None, "AUTHENTICATE", "+", since=mark)
            blob = base64.b64encode(f"\0{sasl}\0{password}".encode()).decode()
            self.send(f"AUTHENTICATE {blob}")
            self.wait(None, "903", since=mark)
        if caps or cap_ls:
            self.send("CAP END")
        welcome = self.wait(None, "001", since=mark)
        self.nick = welcome.params[0]
        if wait_setup:
            self.wait(lambda l: l.nick == self.nick, "JOIN", "&stanzad", since=mark)
        return welcome

    def is_member(self, nick: str, chan: str = "&stanzad") -> bool:
        """Whether `nick` is in `chan` by what the client was told (NAMES, JOIN, PART)."""
        inside = False
        for l in self.lines:
            if l.command == "353" and l.params[2:3] == [chan]:
                if nick in [n.lstrip("~&@%+") for n in l.text.split()]:
                    inside = True
            elif l.command == "JOIN" and l.params[:1] == [chan] and l.nick == nick:
                inside = True
            elif l.command == "PART" and l.params[:1] == [chan] and l.nick == nick:
                inside = False
        return inside

    def wait_member(self, nick: str, chan: str = "&stanzad",
                    timeout: Optional[float] = None) -> None:
        """Wait until `nick` is in `chan` (a contact whose roster entry may arrive after
        the client attached: the daemon logs `online` before the roster is in)."""
        if self.is_member(nick, chan):
            return
        self.wait(lambda l: l.nick == nick, "JOIN", chan, since=0, timeout=timeout)

    def privmsgs(self, since: int = 0, text: Optional[str] = None,
                 target: Optional[str] = None) -> "list[Line]":
        return self.find(None, "PRIVMSG", target, since=since, text=text)


class IrcTest(JsonlTest):
    """JsonlTest plus the IRC socket: start_irc_daemon() starts stanzad with alice as
    account "home" and [irc] listen on a free port (d.irc_port), irc() opens a client."""

    def irc_config(self, accounts: Optional[list] = None, name: str = "stanzad",
                   password: Optional[str] = IRC_PASSWORD, port: Optional[int] = None,
                   **daemon: Any) -> dict:
        if "socket" not in daemon:
            daemon["socket"] = str(self.socket_path_for(name))
        config = self.config(accounts if accounts is not None
                             else [self.account("home", "alice")], name, **daemon)
        irc = {"listen": f"{harness.LOOPBACK}:{port or harness.free_port()}"}
        if password is not None:
            irc["password"] = password
        config["irc"] = irc
        return config

    def start_irc_daemon(self, config: Optional[dict] = None, name: str = "stanzad",
                         online: bool = True, **kwargs: Any) -> Stanzad:
        config = config or self.irc_config(name=name, **kwargs)
        d = self.start_stanzad(config, name)
        d.config = config  # type: ignore[attr-defined]
        d.socket_path = Path(config["daemon"]["socket"])  # type: ignore[attr-defined]
        address = config["irc"]["listen"]
        d.irc_port = int(address.rsplit(":", 1)[1])  # type: ignore[attr-defined]
        d.wait_for(rx_irc_on(address), timeout=10)
        d.wait_for(harness.rx_listening(d.socket_path), timeout=10)
        if online:
            self.wait_online(d, "home")
        return d

    def irc(self, d: Stanzad, name: str = "irc", register: bool = True,
            members: Optional[Iterable[str]] = None, **register_args: Any) -> IrcClient:
        """A connected IrcClient; registered (register_args as IrcClient.register) unless
        register is False, and then with the contacts put on the roster by
        add_to_roster() (or `members`) in &stanzad."""
        c = IrcClient(d.irc_port, name=name)  # type: ignore[attr-defined]
        self.addCleanup(c.close)
        if register:
            c.register(**register_args)
            if register_args.get("wait_setup", True):
                for nick in (getattr(self, "roster_nicks", []) if members is None
                             else members):
                    c.wait_member(nick)
        return c

    def add_to_roster(self, *jids: str, user: str = "alice") -> None:
        """Put contacts in `user`'s roster before the daemon starts (a second session of
        alice without presence, closed at once)."""
        p = self.peer(user, presence=False)
        for jid in jids:
            p.roster_set(jid)
        p.close()
        if user == "alice":
            self.roster_nicks = getattr(self, "roster_nicks", []) + [
                j.split("@")[0] for j in jids]

    def watch(self, d: Stanzad) -> Any:
        """A JSON watcher (live events only): an event seen there is stored, so a message
        it shows is in what a reattaching IRC client gets replayed."""
        return self.watcher(d)
