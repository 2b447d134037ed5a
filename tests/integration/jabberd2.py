"""jabberd2 2.7.0 (Debian) as the third server of the integration suite: an older server
with no XEP-0198 v3 (only the 2007 draft namespace), no MAM, no carbons, no PEP, no MUC.
Started by a test on loopback like Prosody (harness.Prosody) and ejabberd (ejabberd.py):
its own configs, SQLite database, ports and logs, nothing shared with the system service.

    j2 = Jabberd2(tmp / "jabberd2", certs, users={"alice": "pw", "bob": "pw"},
                  rosters={"alice": ["bob"], "bob": ["alice"]})
    j2.start()                 # waits: the c2s port accepts and sm is logged in to router
    j2.port                    # c2s (STARTTLS required), 127.0.0.1 only
    j2.restart() / j2.kill()   # same ports and database
    j2.stop()

What it sets up (see /work/shared/notes/testing-with-real-peers.md, "jabberd2 2.7.0"):
- Three processes, each with its own XML config, pid file and log file: jabberd2-router
  (127.0.0.1 on a free port, one component user with a random secret),
  jabberd2-sm and jabberd2-c2s, which log in to the router. No s2s.
- Storage: the sqlite driver for sm and for c2s's authreg, one database created from
  the package's db-setup.sqlite before the first start. Accounts and rosters are written
  straight into it: `authreg` (username, realm, plaintext password: gsasl derives
  SCRAM-SHA-1 and SCRAM-SHA-256 from it), an `active` row per user (the sm serves only
  users it knows), `roster-items` with subscription both ways.
- c2s: `require-starttls`, the test CA's server certificate and key in one PEM;
  SASL after STARTTLS: SCRAM-SHA-1, SCRAM-SHA-256, PLAIN (no EXTERNAL: it is offered to
  everyone and never succeeds with OpenSSL 3; no -PLUS: gsasl gets no binding data).
- sm modules as in the package's sm.xml (ping, disco, roster, offline storage, vcard,
  privacy, ...), minus vacation and template-roster.

jabberd2 writes no stanzas to its logs; a start takes about 0.6 s.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import secrets
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable, Optional, Union
from xml.sax.saxutils import escape

from harness import (LOOPBACK, XMPP_DOMAIN, Certs, _PortInUse, _say, _spawn, _tail,
                     _track, _untrack, free_port, make_ca, poll_until, port_accepts,
                     start_on_free_ports)

SBIN = Path("/usr/sbin")
LIBDIR = Path("/usr/lib/x86_64-linux-gnu/jabberd2")
SCHEMA = Path("/usr/share/doc/jabberd2/db-setup.sqlite.gz")
PROCESSES = ("router", "sm", "c2s")

# The package's sm.xml chains, without vacation (needs its own table rows to mean
# anything) and template-roster (needs a template file).
SM_CHAINS = {
    "sess-start": ["status"],
    "sess-end": ["status", "iq-last"],
    "in-sess": ["validate", "status", "privacy", "roster", "iq-vcard", "iq-ping",
                "iq-private", "disco", "amp", "offline", "announce", "presence", "deliver"],
    "out-sess": [],
    "in-router": ["session", "validate", "presence", "privacy"],
    "out-router": ["privacy"],
    "pkt-sm": ["iq-last", "iq-ping", "iq-time", "iq-version", "amp", "disco", "announce",
               "help", "echo", "status", "presence"],
    "pkt-user": ["roster", "presence", "disco", "iq-vcard", "amp", "deliver", "offline",
                 "iq-last"],
    "pkt-router": ["session", "disco"],
    "user-load": ["active", "roster", "roster-publish", "privacy"],
    "user-unload": [],
    "user-create": ["active"],
    "user-delete": ["active", "announce", "offline", "privacy", "roster", "status",
                    "iq-last", "iq-private", "iq-vcard"],
    "disco-extend": ["iq-version", "help"],
}


def check_installed() -> None:
    """Fail with what to install when jabberd2 is missing."""
    missing = [str(SBIN / f"jabberd2-{p}") for p in PROCESSES
               if not (SBIN / f"jabberd2-{p}").exists()]
    if not (LIBDIR / "storage_sqlite.so").exists():
        missing.append(str(LIBDIR / "storage_sqlite.so"))
    if not SCHEMA.exists():
        missing.append(str(SCHEMA))
    if missing:
        raise AssertionError("jabberd2 tests need Debian's jabberd2 package (missing: "
                             + ", ".join(missing) + "): apt-get install jabberd2, then "
                             "stop its system service")


class Jabberd2:
    """A throwaway jabberd2 2.7 on loopback (router + sm + c2s), owned by one test.

    users: {name: password}; rosters: {name: [other names]} (each item subscribed both
    ways, in group "Friends"). Both are written into the database before the first start
    (add_users() writes more later; the sm reads a user's roster when the user logs in).
    """

    def __init__(self, workdir: Union[str, Path], certs: Optional[Certs] = None, *,
                 host: str = XMPP_DOMAIN, users: Optional[dict] = None,
                 rosters: Optional[dict] = None, port: Optional[int] = None,
                 name: str = "jabberd2"):
        check_installed()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o700)
        if certs is None:
            certs = make_ca(self.workdir / "certs", host)
        self.certs = certs
        self.host = host
        self.name = name
        self.port = port or free_port()
        self.router_port = self._other_port()
        self._port_fixed = port is not None
        self.secret = secrets.token_hex(16)
        self.db_path = self.workdir / "jabberd2.db"
        self.pem_path = self.workdir / "server.pem"
        self.procs: "dict[str, subprocess.Popen]" = {}
        self._logs: "dict[str, Any]" = {}
        self.start_seconds: "list[float]" = []
        self._write_static_files()
        if users:
            self.add_users(users, rosters or {})

    def _other_port(self) -> int:
        while True:
            port = free_port()
            if port != self.port:
                return port

    def path(self, process: str, kind: str) -> Path:
        """workdir/PROCESS.KIND: .xml (config), .pid, .log, .console.log."""
        return self.workdir / f"{process}.{kind}"

    # -- files written once
    def _write_static_files(self) -> None:
        self.pem_path.write_text(Path(self.certs.server_cert).read_text()
                                 + Path(self.certs.server_key).read_text())
        os.chmod(self.pem_path, 0o600)
        (self.workdir / "router-users.xml").write_text(
            f"<users><user><name>jabberd</name><secret>{self.secret}</secret></user></users>\n")
        os.chmod(self.workdir / "router-users.xml", 0o600)
        if not self.db_path.exists():
            db = sqlite3.connect(self.db_path)
            try:
                db.executescript(gzip.decompress(SCHEMA.read_bytes()).decode())
            finally:
                db.close()

    def add_users(self, users: dict, rosters: Optional[dict] = None) -> None:
        """Accounts (authreg with a plaintext password, and the sm's `active` row) and
        roster items (subscription both, no pending ask)."""
        db = sqlite3.connect(self.db_path, timeout=10)
        try:
            with db:
                now = int(time.time())
                for user, password in users.items():
                    db.execute('DELETE FROM "authreg" WHERE "username" = ? AND "realm" = ?',
                               (user, self.host))
                    db.execute('INSERT INTO "authreg" ("username", "realm", "password") '
                               'VALUES (?, ?, ?)', (user, self.host, password))
                    owner = f"{user}@{self.host}"
                    if not db.execute('SELECT 1 FROM "active" WHERE "collection-owner" = ?',
                                      (owner,)).fetchone():
                        db.execute('INSERT INTO "active" ("collection-owner", "time") '
                                   'VALUES (?, ?)', (owner, now))
                for user, contacts in (rosters or {}).items():
                    owner = f"{user}@{self.host}"
                    for contact in contacts:
                        jid = contact if "@" in contact else f"{contact}@{self.host}"
                        db.execute('INSERT INTO "roster-items" ("collection-owner", "jid", '
                                   '"name", "to", "from", "ask") VALUES (?, ?, ?, 1, 1, 0)',
                                   (owner, jid, jid.split("@")[0]))
                        db.execute('INSERT INTO "roster-groups" ("collection-owner", "jid", '
                                   '"group") VALUES (?, ?, ?)', (owner, jid, "Friends"))
        finally:
            db.close()

    # -- configuration (rewritten by every start: ports may change on a retry)
    def _log(self, process: str) -> str:
        return (f"  <pidfile>{escape(str(self.path(process, 'pid')))}</pidfile>\n"
                f"  <log type='file'><file>{escape(str(self.path(process, 'log')))}</file>"
                f"</log>\n")

    def _router_link(self) -> str:
        return (f"  <router><ip>{LOOPBACK}</ip><port>{self.router_port}</port>"
                f"<user>jabberd</user><pass>{self.secret}</pass>"
                f"<retry><init>3</init><lost>3</lost><sleep>1</sleep></retry></router>\n")

    def _sqlite(self) -> str:
        return (f"<sqlite><dbname>{escape(str(self.db_path))}</dbname>"
                f"<busy-timeout>5000</busy-timeout>")

    def router_config(self) -> str:
        return ("<router>\n  <id>router</id>\n" + self._log("router")
                + f"  <local><ip>{LOOPBACK}</ip><port>{self.router_port}</port>"
                f"<users>{escape(str(self.workdir / 'router-users.xml'))}</users>"
                f"</local>\n"
                "  <check><interval>60</interval><keepalive>0</keepalive></check>\n"
                "  <io><max_fds>256</max_fds><limits><bytes>0</bytes><connects>0</connects>"
                "</limits><access><order>allow,deny</order></access></io>\n"
                "  <aliases/>\n"
                "  <aci><acl type='all'><user>jabberd</user></acl></aci>\n</router>\n")

    def sm_config(self) -> str:
        chains = "".join(f"    <chain id='{cid}'>"
                         + "".join(f"<module>{m}</module>" for m in mods) + "</chain>\n"
                         for cid, mods in SM_CHAINS.items())
        return ("<sm>\n  <id>sm</id>\n" + self._log("sm") + self._router_link()
                + f"  <local><id>{escape(self.host)}</id></local>\n"
                f"  <storage><path>{LIBDIR}</path><driver>sqlite</driver>"
                + self._sqlite() + "</sqlite></storage>\n"
                f"  <modules>\n    <path>{LIBDIR}</path>\n{chains}  </modules>\n"
                "  <discovery><identity><category>server</category><type>im</type>"
                "<name>jabberd2 (stanzad tests)</name></identity><agents/><items/>"
                "</discovery>\n"
                "  <user><template><active-cache-ttl>60</active-cache-ttl></template></user>\n"
                "  <amp/><offline/><roster/><status/>\n</sm>\n")

    def c2s_config(self) -> str:
        return ("<c2s>\n  <id>c2s</id>\n" + self._log("c2s") + self._router_link()
                + f"  <local>\n    <id pemfile='{escape(str(self.pem_path))}' "
                f"require-starttls='mu'>{escape(self.host)}</id>\n"
                f"    <ip>{LOOPBACK}</ip><port>{self.port}</port>\n  </local>\n"
                "  <io><max_fds>256</max_fds><limits><bytes>0</bytes><stanzas>0</stanzas>"
                "<connects>0</connects><stanzasize>262144</stanzasize></limits>"
                "<access><order>allow,deny</order></access>"
                "<check><interval>0</interval><idle>0</idle><keepalive>0</keepalive></check>"
                "</io>\n"
                f"  <authreg><path>{LIBDIR}</path><module>sqlite</module>"
                "<mechanisms><traditional/><sasl/></mechanisms>"
                "<ssl-mechanisms><traditional/><sasl><plain/><scram-sha-1/><scram-sha-256/>"
                "</sasl></ssl-mechanisms>"
                + self._sqlite() + "<password_type><plaintext/></password_type></sqlite>"
                "</authreg>\n</c2s>\n")

    def write_config(self) -> None:
        for process, text in (("router", self.router_config()), ("sm", self.sm_config()),
                              ("c2s", self.c2s_config())):
            self.path(process, "xml").write_text(text)
            os.chmod(self.path(process, "xml"), 0o600)

    # -- lifecycle
    @property
    def running(self) -> bool:
        return bool(self.procs) and all(p.poll() is None for p in self.procs.values())

    def start(self, timeout: float = 20.0) -> "Jabberd2":
        """Start router, sm and c2s; wait until the sm is logged in to the router and
        the c2s port accepts. A first start whose port was taken is retried on new ports."""
        def new_ports() -> None:
            self.port = free_port()
            self.router_port = self._other_port()
        return start_on_free_ports(self, timeout, new_ports)

    def _spawn(self, process: str) -> None:
        console = open(self.path(process, "console.log"), "ab")
        self._logs[process] = console
        self.procs[process] = _spawn([SBIN / f"jabberd2-{process}", "-c",
                                      self.path(process, "xml")],
                                     stdout=console, stderr=subprocess.STDOUT,
                                     cwd=self.workdir)

    def _start_once(self, timeout: float) -> None:
        assert not self.procs, "already running"
        self.write_config()
        started = time.monotonic()
        offsets = {p: len(self.log_text(p)) for p in PROCESSES}
        _track(self)

        def detail() -> str:
            return "\n".join(f"--- {p}.log ---\n{_tail(self.log_text(p)[offsets[p]:], 20)}"
                             f"\n--- {p}.console.log ---\n{_tail(self.console_text(p), 10)}"
                             for p in PROCESSES)

        def check(process: str) -> None:
            proc = self.procs[process]
            if proc.poll() is not None:
                text = self.log_text(process)[offsets[process]:] + self.console_text(process)
                if "Address already in use" in text or "failed to listen" in text:
                    raise _PortInUse()
                raise AssertionError(f"{self.name}: {process} exited with {proc.returncode}"
                                     f" while starting\n{detail()}")

        self._spawn("router")
        poll_until(lambda: check("router") or port_accepts(self.router_port), timeout,
                   f"{self.name}'s router to listen on {LOOPBACK}:{self.router_port}",
                   detail)
        self._spawn("sm")
        self._spawn("c2s")

        def ready() -> bool:
            for p in PROCESSES:
                check(p)
            router_log = self.log_text("router")[offsets["router"]:]
            # The router logs each component's domain when it binds it: the sm's host
            # (c2s binds its own "c2s" name) must be routed before a login can work.
            return (f"[{self.host}] online" in router_log
                    and "ready for sessions" in self.log_text("sm")[offsets["sm"]:]
                    and "ready for connections" in self.log_text("c2s")[offsets["c2s"]:]
                    and port_accepts(self.port))

        poll_until(ready, timeout, f"{self.name} (sm online at the router, c2s on "
                   f"{LOOPBACK}:{self.port})", detail)
        elapsed = time.monotonic() - started
        self.start_seconds.append(elapsed)
        _say(f"[{self.name}] ", f"started in {elapsed:.1f}s (c2s {LOOPBACK}:{self.port}, "
             f"router {LOOPBACK}:{self.router_port})")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to c2s, sm, router (in that order: clients see their streams closed),
        SIGKILL whatever hangs."""
        for process in reversed(PROCESSES):
            proc = self.procs.get(process)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _say(f"[{self.name}] ", f"{process} did not stop within {timeout:g}s; killing")
                proc.kill()
                proc.wait()
        self._reap()

    def kill(self) -> None:
        """SIGKILL to all three: clients see their TCP connections drop."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        for proc in self.procs.values():
            proc.wait()
        self._reap()

    def _reap(self) -> None:
        for f in self._logs.values():
            f.close()
        self._logs.clear()
        self.procs.clear()
        _untrack(self)

    def restart(self, kill: bool = False, timeout: float = 20.0) -> "Jabberd2":
        """Stop (or kill) and start again: same ports and database."""
        self.kill() if kill else self.stop()
        return self.start(timeout)

    def __enter__(self) -> "Jabberd2":
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- logs and database
    def log_text(self, process: str = "c2s") -> str:
        try:
            return self.path(process, "log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def console_text(self, process: str) -> str:
        try:
            return self.path(process, "console.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def sql(self, query: str, *params: Any) -> "list[tuple]":
        db = sqlite3.connect(self.db_path, timeout=10)
        try:
            return db.execute(query, params).fetchall()
        finally:
            db.close()

    def offline_count(self, user: str) -> int:
        """Messages the sm holds in offline storage for user."""
        return self.sql('SELECT COUNT(*) FROM "queue" WHERE "collection-owner" = ?',
                        f"{user}@{self.host}")[0][0]


# --------------------------------------------------------------------------------------
# unittest glue: the harness's JsonlTest / FaultTest on jabberd2 instead of Prosody.

class Jabberd2Mixin:
    """Mix into a harness test class (before it): setUp starts a Jabberd2 with USERS and
    ROSTERS (default: every user has every other one) instead of a Prosody, and
    `self.prosody` points at it (port, certs, host), so account(), peer(),
    start_daemon(), fault_proxy() and friends work unchanged."""

    ROSTERS: Optional[dict] = None

    def setUp(self) -> None:  # replaces IntegrationTest.setUp (no Prosody)
        import tempfile
        name = self.id().rsplit(".", 2)[-2:]
        self.tmp = Path(tempfile.mkdtemp(prefix=f"stanzad-{'-'.join(name)}-"))
        self.addCleanup(self._cleanup_tmp)
        self.certs = self.make_certs()
        self.jabberd2 = self.start_jabberd2()
        self.prosody = self.jabberd2  # the harness helpers' name for "the server"

    def start_jabberd2(self, name: str = "jabberd2", **options: Any) -> Jabberd2:
        users = self.USERS  # type: ignore[attr-defined]
        rosters = self.ROSTERS if self.ROSTERS is not None else {
            u: [o for o in users if o != u] for u in users}
        options.setdefault("certs", self.certs)
        options.setdefault("host", self.DOMAIN)  # type: ignore[attr-defined]
        j2 = Jabberd2(self.tmp / name, name=name, users=users, rosters=rosters, **options)
        self.addCleanup(j2.stop)  # type: ignore[attr-defined]
        j2.start()
        return j2

    def _cleanup_tmp(self) -> None:
        if self._failed_so_far():  # type: ignore[attr-defined]
            for p in sorted(self.tmp.glob("*/*.log")):
                text = p.read_text(errors="replace")
                if text.strip():
                    _say("", f"--- tail of {p} ---\n{_tail(text, 60)}")
        super()._cleanup_tmp()  # type: ignore[misc]


def j2_link_up(d: Any, account: str = "home", since: int = 0) -> bool:
    """harness.daemon_link_up for a server without XEP-0198: whether the daemon's latest
    word on `account` (from line `since`) is that it is online (`online as ...`), with no
    `disconnected` line after it."""
    import re
    from harness import rx_disconnected, rx_online
    up_rx, down_rx = re.compile(rx_online(account)), re.compile(rx_disconnected(account))
    with d._cond:
        for line in reversed(d.lines[since:]):
            if down_rx.search(line):
                return False
            if up_rx.search(line):
                return True
    return False


def copies_allowed(events: "Iterable[dict]", *, killed_at: Optional[int] = None,
                   account: str = "home") -> "dict[str, int]":
    """How many extra copies of each outgoing message a receiver may get, read from a
    front end's events (seq order): one for each end of a session (an `account-state`
    event other than connecting/online) at which the message was `sent` and not yet
    acknowledged (`acked`, `delivered` or `failed`), since the next session sends it again
    with its origin-id; and, with killed_at (the last seq the front end saw before the
    daemon was killed), one for each message `accepted` and not acknowledged then (its
    `sent` may not have been committed when it went out). A copy of a message sent on the
    current session, or of one acknowledged before the link broke, is a bug."""
    done_states = {"acked", "delivered", "failed"}
    by_seq = sorted({e["seq"]: e for e in events if "seq" in e}.values(),
                    key=lambda e: e["seq"])
    status: "dict[str, str]" = {}  # msg_id -> accepted | sent | done
    allowed: "dict[str, int]" = {}

    def session_end(states: "set[str]") -> None:
        for mid, st in status.items():
            if st in states:
                allowed[mid] = allowed.get(mid, 0) + 1

    for e in by_seq:
        if killed_at is not None and e["seq"] > killed_at:
            session_end({"accepted", "sent"})
            killed_at = None
        if e.get("account") != account:
            continue
        if e.get("event") == "message-state":
            mid, st = e.get("msg_id"), e.get("state")
            if st in done_states:
                status[mid] = "done"
            elif st == "sent" and status.get(mid) != "done":
                status[mid] = "sent"
            elif st == "accepted":
                status.setdefault(mid, "accepted")
        elif e.get("event") == "account-state" and e.get("state") not in ("connecting",
                                                                          "online"):
            session_end({"sent"})
    if killed_at is not None:
        session_end({"accepted", "sent"})
    return allowed


def unexplained_copies(bob_seen: "dict[str, int]", allowed: "dict[str, int]") -> "dict":
    """msg_id -> (copies at the receiver, copies allowed + 1) where the receiver got more
    copies than copies_allowed() explains."""
    return {m: (n, allowed.get(m, 0) + 1) for m, n in bob_seen.items()
            if n > allowed.get(m, 0) + 1}


# --------------------------------------------------------------------------------------
# Incoming messages in flight at a fault. Without XEP-0198 a server cannot know what a
# client has read: what jabberd2 routes to alice's session between the fault and the moment
# its sm ends that session is written into a dead connection (or dropped by c2s, which
# "quietly drops" a packet for a session it no longer has) and never stored offline.

class InFlight:
    """Which of bob's messages (harness.Traffic bob -> alice) were in flight at each fault:
    sent after the last one the front end had shown when the fault came (the front end
    shows them in bob's order), and before jabberd2's sm logged the end of alice's
    session. Call at() right when the fault fires (before breaking the link) and ended()
    after it, which polls the sm's log."""

    def __init__(self, j2: Jabberd2, traffic: Any, jid: str = "alice@localhost/stanzad"):
        self.j2 = j2
        self.t = traffic
        self.jid = jid
        self.windows: "list[dict]" = []

    def at(self) -> None:
        self.t._scan()
        shown = [self.t.in_index[b] for b in self.t.in_events]
        self.windows.append({"first": max(shown) + 1 if shown else 0,
                             "sent_at_fault": self.t.sender.sent if self.t.sender else 0,
                             "sm_log": len(self.j2.log_text("sm"))})

    def ended(self, timeout: float = 10.0) -> int:
        """Wait (polling a file another process writes) until the sm has logged the end of
        alice's session after the last fault; returns how many messages bob had sent then
        (an upper bound: bob may have sent more while we polled)."""
        w = self.windows[-1]
        line = f"session ended: jid={self.jid}"
        poll_until(lambda: line in self.j2.log_text("sm")[w["sm_log"]:], timeout,
                   f"jabberd2's sm to log '{line}'")
        w["until"] = self.t.sender.sent if self.t.sender else 0
        return w["until"]

    def at_risk(self) -> "set[str]":
        out: "set[str]" = set()
        for w in self.windows:
            out |= set(self.t.in_ids[w["first"]:w.get("until", w["sent_at_fault"])])
        return out

    def report(self) -> "list[list[int]]":
        """[first, end) of bob's message numbers in flight at each fault."""
        return [[w["first"], w.get("until", w["sent_at_fault"])] for w in self.windows]


def received_ids(d: Any, account: str = "home") -> "set[str]":
    """The ids of the <message/> stanzas the daemon read (its wire log, log_level trace)."""
    from harness import wire_stanzas
    return {w.el.get("id") for w in wire_stanzas(d, account, direction="RECV")
            if w.tag == "message" and w.el.get("id")}


def wait_complete_but(t: Any, at_risk: "set[str]", timeout: float = 30.0) -> None:
    """harness.Traffic.wait_complete, except that incoming messages in `at_risk` may be
    missing (they are counted and explained by the caller)."""
    deadline = time.monotonic() + timeout
    while True:
        t.step(0.05)
        missing = t.missing()
        missing["front end never showed"] = [s for s in missing["front end never showed"]
                                             if s not in at_risk]
        if not any(missing.values()):
            t.complete_at = time.monotonic()
            return
        if time.monotonic() > deadline:
            summary = {k: v[:8] for k, v in missing.items() if v}
            raise AssertionError(f"traffic {t.tag}: incomplete {timeout:g}s after the last "
                                 f"message was sent: {summary}\ncounts: {t.counts()}")


def check_but_lost(test: Any, t: Any, lost: "list[str]") -> None:
    """harness.Traffic.check with the incoming messages in `lost` left out of 'the front
    end never showed' (the caller has asserted why each is lost); everything else as
    strict: bob got every message, each acked, each shown once, no incoming shown twice."""
    saved = dict(t.in_events)
    try:
        for s in lost:
            t.in_events.setdefault(t.in_body[s], [{"placeholder": True}])
        t.check()
    finally:
        t.in_events.clear()
        t.in_events.update(saved)
