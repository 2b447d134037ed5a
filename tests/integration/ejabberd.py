"""ejabberd 23.01 (Debian) as the second server of the integration suite, started by a
test on loopback like Prosody (harness.Prosody): its own ejabberd.yml, state, ports and
Erlang node, nothing shared with the system service or with another test.

    ej = Ejabberd(tmp / "ejabberd", certs, scram_hash="sha256", direct_tls=True)
    ej.start()                          # waits: c2s port accepts AND `status` says started
    ej.register("alice", "pw")          # ejabberdctl register (register_many: in parallel)
    ej.port, ej.direct_tls_port         # 127.0.0.1 only
    ej.restart()                        # same ports, node, mnesia and SQLite data
    mark = ej.log_barrier()             # a log position after all that was logged so far
    ej.stop() / ej.kill()

What it sets up (see /work/shared/notes/testing-with-real-peers.md, "ejabberd 23.01"):
- ejabberd.yml: one host, c2s on 127.0.0.1 with starttls_required (and with `tls: true`
  for XEP-0368 direct TLS when asked), no s2s listener, no http; the test CA's server
  certificate and its key in one PEM (`certfiles`); `auth_password_format: scram` with
  one `auth_scram_hash` (exactly one SCRAM family is offered, with its -PLUS variant);
  mod_mam and mod_offline on SQLite (`sql_type: sqlite`, `db_type: sql`; `mod_mam:
  default: always`, as 23.01 archives nothing by default): the file is created in WAL mode
  before the first start, and ejabberd 23.01 loads its own schema (lite.sql) into it when
  it finds no tables, which happens at the first SQL query, not at start (the SQL pool
  starts lazily; 23.01 has no `update_sql_schema` option); mnesia (accounts, rosters,
  rooms) in the spool dir. Carbons are `mod_carboncopy` in ejabberd.
- Erlang distribution without epmd: ERL_DIST_PORT=<free port> in a private
  ejabberdctl.cfg makes the node listen on that port itself (-erl_epmd_port, -start_epmd
  false) and the ejabberdctl client nodes connect straight to it (-dist_listen false);
  `-kernel inet_dist_use_interface {127,0,0,1}` in ERL_OPTIONS keeps the listener on
  loopback (INET_DIST_INTERFACE=127.0.0.1 would only pass the same flag, after booting one
  more Erlang VM per ejabberdctl call to parse the address, so it is left out). The cookie
  is in a private HOME (.erlang.cookie, 0400), so it is not in any argv. Node name
  ejabberd_<c2s port>@localhost: unique per instance, so tests run in parallel.
- A private copy of /usr/sbin/ejabberdctl (bin/ejabberdctl) with two edits: INSTALLUSER
  emptied (the stock script, run as root, su's to the `ejabberd` user, who cannot enter
  the test's 0700 temp dir) and `exec` for the final command when EJABBERDCTL_EXEC is
  set, so that `ejabberdctl foreground` ends up *being* beam.smp (bash -> erl -> erlexec ->
  beam.smp, all by exec): the process we spawn is the server, PDEATHSIG reaches it and
  SIGTERM stops it (OTP turns SIGTERM into init:stop()). `ctl` in the workdir is a wrapper
  with the environment set, for a human looking into a kept temp dir:
  `WORKDIR/ctl status`, `WORKDIR/ctl connected_users`.

Each ejabberdctl call boots an Erlang VM (0.5-1 s, more on a loaded machine): start()
polls the port first (cheap) and asks `status` only once it accepts; register_many() runs
the registrations in parallel. A start takes 4-6 s, the first one included (mnesia schema;
ejabberd itself reports "started in" about 2-3 s, the rest is booting the VM and `status`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Union

from harness import (LOOPBACK, XMPP_DOMAIN, Certs, Pattern, _PortInUse, _say, _spawn, _tail,
                     _track, _untrack, free_port, make_ca, poll_until, port_accepts,
                     start_on_free_ports)

EJABBERDCTL = Path("/usr/sbin/ejabberdctl")
SCRAM_MECHANISM = {"sha": "SCRAM-SHA-1", "sha256": "SCRAM-SHA-256",
                   "sha512": "SCRAM-SHA-512"}
# Listener `protocol_options` (fast_tls: OpenSSL SSL_OP_* names, joined with "|") that cap
# a c2s listener at TLS 1.2. The option replaces fast_tls's default
# "no_sslv3|cipher_server_preference|no_compression", so those are repeated here.
TLS12_ONLY = ["no_sslv3", "cipher_server_preference", "no_compression", "no_tlsv1_3"]


def check_installed() -> None:
    """Fail with what to install when ejabberd or its SQLite driver is missing."""
    missing = []
    if not EJABBERDCTL.exists():
        missing.append(f"ejabberd ({EJABBERDCTL} not found)")
    if not list(Path("/usr/lib/erlang/lib").glob("p1_sqlite3-*")):
        missing.append("erlang-p1-sqlite3 (the SQLite driver for mod_mam/mod_offline)")
    if missing:
        raise AssertionError("ejabberd tests need Debian's " + " and ".join(missing)
                             + ": apt-get install ejabberd erlang-p1-sqlite3, then stop "
                             "the system service and its epmd")


def _yq(s: Union[str, Path]) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(str(s))


class Ejabberd:
    """A throwaway ejabberd 23.01 on loopback, configured and owned by one test.

    scram_hash: "sha" (SCRAM-SHA-1), "sha256" or "sha512": the one SCRAM family the
    server stores and offers (plus its -PLUS form, tls-unique). tls_verify=True asks
    clients for a certificate signed by the test CA (offers SASL EXTERNAL to everyone).
    direct_tls=True adds a `tls: true` c2s listener on `direct_tls_port`. muc=True adds
    mod_muc on conference.HOST with archived (mam: true) instant rooms.
    tls_protocol_options sets `protocol_options` on every c2s listener: TLS12_ONLY caps
    them at TLS 1.2 (where SCRAM-*-PLUS with tls-unique is well defined).
    """

    def __init__(self, workdir: Union[str, Path], certs: Optional[Certs] = None, *,
                 host: str = XMPP_DOMAIN, muc: bool = True, scram_hash: str = "sha256",
                 tls_verify: bool = False, direct_tls: bool = False,
                 port: Optional[int] = None, direct_tls_port: Optional[int] = None,
                 tls_protocol_options: Optional["list[str]"] = None,
                 resume_timeout: int = 60, loglevel: str = "info",
                 extra_global: str = "", extra_modules: str = "", name: str = "ejabberd"):
        check_installed()
        if scram_hash not in SCRAM_MECHANISM:
            raise ValueError(f"scram_hash must be one of {sorted(SCRAM_MECHANISM)}")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if certs is None:
            certs = make_ca(self.workdir / "certs", host)
        self.certs = certs
        self.host = host
        self.muc = muc
        self.muc_host = f"conference.{host}"
        self.scram_hash = scram_hash
        self.tls_verify = tls_verify
        self.tls_protocol_options = (list(tls_protocol_options)
                                     if tls_protocol_options is not None else None)
        self.resume_timeout = resume_timeout
        self.loglevel = loglevel
        self.extra_global = extra_global
        self.extra_modules = extra_modules
        self.name = name
        self.port = port or free_port()
        self.direct_tls = direct_tls or direct_tls_port is not None
        self.direct_tls_port = ((direct_tls_port or self._other_port())
                                if self.direct_tls else None)
        self.dist_port = self._other_port()
        self._port_fixed = port is not None or direct_tls_port is not None
        # Fixed for the life of the instance: mnesia's schema belongs to the node name.
        self.node = f"ejabberd_{self.port}@localhost"
        self.config_dir = self.workdir / "config"
        self.logs_dir = self.workdir / "logs"
        self.spool_dir = self.workdir / "spool"
        self.home = self.workdir / "home"
        self.bin_dir = self.workdir / "bin"
        for d in (self.config_dir, self.logs_dir, self.spool_dir, self.home, self.bin_dir):
            d.mkdir(exist_ok=True)
            os.chmod(d, 0o700)
        self.config_path = self.config_dir / "ejabberd.yml"
        self.ctl_config_path = self.config_dir / "ejabberdctl.cfg"
        self.pem_path = self.config_dir / "server.pem"
        self.db_path = self.workdir / "ejabberd.db"
        self.log_path = self.logs_dir / "ejabberd.log"
        self.error_log_path = self.logs_dir / "error.log"
        self.console_path = self.workdir / "ejabberd.console.log"
        self.ctl_path = self.bin_dir / "ejabberdctl"
        self.proc: Optional[subprocess.Popen] = None
        self._console: Any = None
        self.start_seconds: "list[float]" = []  # how long each start() took
        self._write_static_files()

    def _other_port(self) -> int:
        taken = {self.port, getattr(self, "direct_tls_port", None)}
        while True:
            port = free_port()
            if port not in taken:
                return port

    # -- files written once
    def _write_static_files(self) -> None:
        # ejabberd wants the certificate and its key in one PEM file.
        self.pem_path.write_text(Path(self.certs.server_cert).read_text()
                                 + Path(self.certs.server_key).read_text())
        os.chmod(self.pem_path, 0o600)
        cookie = self.home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(16).upper())
            os.chmod(cookie, 0o400)
        # The private ejabberdctl: see the module docstring for the two edits.
        script = EJABBERDCTL.read_text()
        edits = [("\nINSTALLUSER=ejabberd\n", "\nINSTALLUSER=\n"),
                 ('        as_current_user) "$@" ;;\n',
                  '        as_current_user) [ -n "$EJABBERDCTL_EXEC" ] && exec "$@"; "$@" ;;\n')]
        for old, new in edits:
            if script.count(old) != 1:
                raise AssertionError(f"{EJABBERDCTL} changed: cannot find {old.strip()!r}")
            script = script.replace(old, new)
        self.ctl_path.write_text(script)
        os.chmod(self.ctl_path, 0o700)
        # ejabberdctl points ERL_INETRC at CONFIG_DIR/inetrc; without the file every VM
        # logs an "inet_config: file ... not found" error report.
        (self.config_dir / "inetrc").write_text("%% Erlang resolver settings: defaults.\n")
        wrapper = self.workdir / "ctl"
        wrapper.write_text("#!/bin/sh\n# ejabberdctl for this test's ejabberd\n"
                           + "".join(f"export {k}='{v}'\n" for k, v in self._env(False).items()
                                     if k in ("HOME", "CONFIG_DIR", "LOGS_DIR", "SPOOL_DIR"))
                           + f"exec '{self.ctl_path}' \"$@\"\n")
        os.chmod(wrapper, 0o700)
        if not self.db_path.exists():
            # WAL before the first start (the mode is kept in the file); ejabberd then
            # finds no tables and creates its schema (lite.sql) itself.
            db = sqlite3.connect(self.db_path)
            try:
                mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            finally:
                db.close()
            assert mode == "wal", mode

    def _env(self, exec_: bool = True) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ERL_", "EJABBERD"))}
        env.update(HOME=str(self.home), CONFIG_DIR=str(self.config_dir),
                   LOGS_DIR=str(self.logs_dir), SPOOL_DIR=str(self.spool_dir),
                   EJABBERDCTL_CONFIG_PATH=str(self.ctl_config_path),
                   EJABBERD_CONFIG_PATH=str(self.config_path))
        if exec_:
            env["EJABBERDCTL_EXEC"] = "1"
        return env

    # -- configuration (rewritten by every start, as ports may change on a retry)
    def ctl_config_text(self) -> str:
        return f"""\
# Written by tests/integration/ejabberd.py for one test run.
ERLANG_NODE={self.node}
# The node listens on this port itself: no epmd (-erl_epmd_port, -start_epmd false).
ERL_DIST_PORT={self.dist_port}
# ... and only on loopback.
ERL_OPTIONS="-kernel inet_dist_use_interface {{127,0,0,1}} -env ERL_CRASH_DUMP_BYTES 0"
EJABBERD_BYPASS_WARNINGS=true
CONTRIB_MODULES_PATH={self.workdir / "contrib"}
CONTRIB_MODULES_CONF_DIR={self.workdir / "contrib" / "conf"}
"""

    def _listener(self, port: int, direct: bool) -> str:
        lines = ["  -",
                 f"    port: {port}",
                 f"    ip: {_yq(LOOPBACK)}",
                 "    module: ejabberd_c2s",
                 "    max_stanza_size: 262144",
                 "    shaper: none",
                 "    access: c2s"]
        lines.append("    tls: true" if direct else "    starttls_required: true")
        if self.tls_verify:
            lines += ["    tls_verify: true", f"    cafile: {_yq(self.certs.ca_cert)}"]
        if self.tls_protocol_options is not None:
            lines.append("    protocol_options:")
            lines += [f"      - {_yq(o)}" for o in self.tls_protocol_options]
        return "\n".join(lines)

    def config_text(self) -> str:
        listeners = [self._listener(self.port, False)]
        if self.direct_tls:
            listeners.append(self._listener(self.direct_tls_port, True))
        muc = ""
        if self.muc:
            muc = f"""\
  mod_muc:
    host: {_yq("conference.@HOST@")}
    access: all
    access_create: all
    access_persistent: all
    access_mam: all
    history_size: 20
    default_room_options:
      mam: true
"""
        return f"""\
# Written by tests/integration/ejabberd.py for one test run.
hosts:
  - {_yq(self.host)}
loglevel: {self.loglevel}
log_rotate_count: 0
hide_sensitive_log_data: false
certfiles:
  - {_yq(self.pem_path)}
ca_file: {_yq(self.certs.ca_cert)}
acme:
  auto: false
listen:
{chr(10).join(listeners)}
s2s_access: none
auth_method: internal
auth_password_format: scram
auth_scram_hash: {self.scram_hash}
disable_sasl_mechanisms:
  - "digest-md5"
  - "X-OAUTH2"
sql_type: sqlite
sql_database: {_yq(self.db_path)}
acl:
  local:
    user_regexp: ""
  loopback:
    ip:
      - 127.0.0.0/8
      - ::1/128
access_rules:
  local:
    allow: local
  c2s:
    allow: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
shaper_rules:
  max_user_sessions: 10
  max_user_offline_messages: 100000
{self.extra_global}
modules:
  mod_admin_extra: {{}}
  mod_blocking: {{}}
  mod_carboncopy: {{}}
  mod_disco: {{}}
  mod_mam:
    db_type: sql
    default: always
    clear_archive_on_room_destroy: false
{muc}  mod_offline:
    db_type: sql
    access_max_user_messages: max_user_offline_messages
  mod_ping: {{}}
  mod_privacy: {{}}
  mod_private: {{}}
  mod_roster:
    versioning: true
  mod_stream_mgmt:
    resume_timeout: {int(self.resume_timeout)}
  mod_version:
    show_os: false
{self.extra_modules}"""

    def write_config(self) -> None:
        self.ctl_config_path.write_text(self.ctl_config_text())
        self.config_path.write_text(self.config_text())

    # -- lifecycle
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 60.0) -> "Ejabberd":
        """Start `ejabberdctl foreground` and wait until every c2s port accepts and
        `ejabberdctl status` says started. A first start whose port was taken in the
        meantime is retried on new ports."""
        def new_ports() -> None:
            self.port = free_port()
            if self.direct_tls:
                self.direct_tls_port = self._other_port()
            self.dist_port = self._other_port()
        return start_on_free_ports(self, timeout, new_ports)

    def _start_once(self, timeout: float) -> None:
        assert not self.running, "already running"
        self.write_config()
        started = time.monotonic()
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._console = open(self.console_path, "ab")
        self.proc = _spawn([self.ctl_path, "foreground"], stdout=self._console,
                           stderr=subprocess.STDOUT, cwd=self.spool_dir, env=self._env())
        _track(self)
        ports = [self.port] + ([self.direct_tls_port] if self.direct_tls else [])

        def detail() -> str:
            return (f"--- console ---\n{_tail(self.console_text(), 30)}\n"
                    f"--- log ---\n{_tail(self.log_text()[log_offset:], 40)}")

        def check_alive() -> None:
            if self.proc.poll() is not None:
                text = self.console_text() + self.log_text()[log_offset:]
                if "eaddrinuse" in text:
                    raise _PortInUse()
                raise AssertionError(f"{self.name} exited with {self.proc.returncode} "
                                     f"while starting\n{detail()}")

        def listening() -> bool:
            check_alive()
            if "eaddrinuse" in self.log_text()[log_offset:]:
                raise _PortInUse()
            return all(port_accepts(p) for p in ports)

        where = ", ".join(f"{LOOPBACK}:{p}" for p in ports)
        poll_until(listening, timeout, f"{self.name} to listen on {where}", detail)

        def is_started() -> bool:
            check_alive()
            rc, out = self.ctl_status()
            return rc == 0 and "started" in out

        port_seconds = time.monotonic() - started
        remaining = max(1.0, timeout - port_seconds)
        poll_until(is_started, remaining, f"`ejabberdctl status` of {self.name} to say "
                   f"started", detail)
        elapsed = time.monotonic() - started
        self.start_seconds.append(elapsed)
        _say(f"[{self.name}] ", f"started in {elapsed:.1f}s (port accepted after "
             f"{port_seconds:.1f}s; node {self.node}, "
             f"c2s {where}, dist {LOOPBACK}:{self.dist_port})")

    def stop(self, timeout: float = 20.0) -> Optional[int]:
        """SIGTERM (Erlang runs init:stop(): ejabberd closes its streams and mnesia),
        wait, SIGKILL the process group if it hangs."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _say(f"[{self.name}] ", f"did not stop within {timeout:g}s; killing")
                self._kill_group()
        return self._reap()

    def kill(self) -> Optional[int]:
        """SIGKILL to the whole process group: the server vanishes, its clients see the
        TCP connection drop."""
        if self.proc is None:
            return None
        self._kill_group()
        return self._reap()

    def _kill_group(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # beam.smp and erl_child_setup
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()

    def _reap(self) -> Optional[int]:
        rc = self.proc.poll() if self.proc else None
        # Children of the VM (erl_child_setup, inet_gethost) share its process group.
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self._console is not None:
            self._console.close()
            self._console = None
        _untrack(self)
        return rc

    def restart(self, kill: bool = False, timeout: float = 60.0) -> "Ejabberd":
        """Stop (or kill) and start again: same ports, node name, accounts and archives."""
        self.kill() if kill else self.stop()
        return self.start(timeout)

    def __enter__(self) -> "Ejabberd":
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- ejabberdctl
    def ctl_run(self, *args: str, timeout: float = 30.0) -> "tuple[int, str]":
        """Run this node's ejabberdctl with `args`; returns (exit status, output)."""
        p = _spawn([self.ctl_path, *args], stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT, cwd=self.spool_dir, env=self._env())
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            raise AssertionError(f"ejabberdctl {args[0] if args else ''} did not finish "
                                 f"within {timeout:g}s:\n{out.decode(errors='replace')}")
        return p.returncode, _strip_root_warning(out.decode(errors="replace"))

    def ctl(self, *args: str, timeout: float = 30.0) -> str:
        """ejabberdctl that must succeed; returns its output."""
        rc, out = self.ctl_run(*args, timeout=timeout)
        if rc != 0:
            shown = args if args[:1] != ("register",) else args[:3] + ("***",)
            raise AssertionError(f"{self.name}: ejabberdctl {' '.join(shown)} failed "
                                 f"({rc}):\n{out}")
        return out

    def ctl_status(self) -> "tuple[int, str]":
        return self.ctl_run("status", timeout=20)

    def register(self, user: str, password: str) -> str:
        return self.ctl("register", user, self.host, password)

    def register_many(self, users: dict, timeout: float = 30.0) -> None:
        """Register every user of {name: password} at once (one ejabberdctl VM each, in
        parallel: each takes about as long as all of them)."""
        procs = [(user, _spawn([self.ctl_path, "register", user, self.host, pw],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               cwd=self.spool_dir, env=self._env()))
                 for user, pw in users.items()]
        failed = []
        for user, p in procs:
            try:
                out, _ = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate()
            if p.returncode != 0:
                failed.append(f"{user}: {p.returncode}: {out.decode(errors='replace')}")
        if failed:
            raise AssertionError(f"{self.name}: registering failed:\n" + "\n".join(failed))

    # -- logs
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def console_text(self) -> str:
        try:
            return self.console_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_mark(self) -> int:
        """Current length of the log: pass as `since` to wait_for_log."""
        return len(self.log_text())

    def log_barrier(self, timeout: float = 10.0) -> int:
        """Like log_mark(), but after everything ejabberd logged before the call: its
        logger writes the file behind the events (a test that reads the log right after
        an earlier one would see that one's last lines after a plain log_mark()). Opens
        one TCP connection to the c2s port and waits for its "Accepted connection
        127.0.0.1:LOCALPORT" line (info level); returns the position just after it."""
        import socket
        with socket.create_connection((LOOPBACK, self.port), timeout) as s:
            local_port = s.getsockname()[1]
            m = self.wait_for_log(rf"Accepted connection {re.escape(LOOPBACK)}:"
                                  rf"{local_port} -> .*\n", timeout)
        return m.end()  # wait_for_log searched from position 0

    def wait_for_log(self, pattern: Pattern, timeout: float = 10.0,
                     since: int = 0) -> "re.Match[str]":
        """Poll ejabberd.log (a file: no notification) until `pattern` appears after
        character `since`."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        return poll_until(lambda: rx.search(self.log_text()[since:]), timeout,
                          f"{self.name} to log {rx.pattern!r}",
                          lambda: _tail(self.log_text()[since:], 40))

    def sql(self, query: str, *params: Any) -> "list[tuple]":
        """Read the SQLite database (WAL: readers do not block the server)."""
        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute(query, params).fetchall()
        finally:
            db.close()

    @property
    def mechanism(self) -> str:
        """The SCRAM mechanism this server offers (without -PLUS)."""
        return SCRAM_MECHANISM[self.scram_hash]


def _strip_root_warning(out: str) -> str:
    return "\n".join(l for l in out.splitlines()
                     if l != "WARNING: It is not recommended to run ejabberd as root")


# --------------------------------------------------------------------------------------
# unittest glue: the harness's JsonlTest / FaultTest on ejabberd instead of Prosody.

class EjabberdMixin:
    """Mix into a harness test class (before it): setUp starts an Ejabberd with USERS
    registered instead of a Prosody, and `self.prosody` points at it (it has what the
    harness helpers use: port, certs, host), so account(), peer(), start_daemon(),
    fault_proxy() and friends work unchanged. EJABBERD_OPTIONS are passed to Ejabberd.

    SHARE_EJABBERD = True starts one server (and one set of certificates) for all the
    tests of the class, in setUpClass: a start plus registrations cost about 5 s, which a
    class of short tests need not pay per test. The tests must then not depend on the
    server's state beyond the registered accounts (use distinct bodies, rooms, ...). Each
    test still has its own temp dir for its daemons."""

    EJABBERD_OPTIONS: dict = {}
    SHARE_EJABBERD = False
    _shared: "Optional[tuple[Path, Certs, Ejabberd]]" = None
    _shared_failed = False

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()  # type: ignore[misc]
        cls._shared = None
        cls._shared_failed = False
        if not cls.SHARE_EJABBERD:
            return
        tmp = Path(tempfile.mkdtemp(prefix=f"stanzad-{cls.__name__}-"))
        cls.addClassCleanup(cls._cleanup_shared, tmp)  # type: ignore[attr-defined]
        certs = make_ca(tmp / "certs", cls.DOMAIN)  # type: ignore[attr-defined]
        options = dict(cls.EJABBERD_OPTIONS)
        options.setdefault("host", cls.DOMAIN)  # type: ignore[attr-defined]
        ej = Ejabberd(tmp / "ejabberd", certs, **options)
        cls.addClassCleanup(ej.stop)  # type: ignore[attr-defined]
        cls._shared_failed = True  # until it is up: keep the directory
        ej.start()
        ej.register_many(cls.USERS)  # type: ignore[attr-defined]
        cls._shared_failed = False
        cls._shared = (tmp, certs, ej)

    @classmethod
    def _cleanup_shared(cls, tmp: Path) -> None:
        if cls._shared_failed:
            for p in tmp.glob("*/logs/*.log"):
                text = p.read_text(errors="replace")
                if text.strip():
                    _say("", f"--- tail of {p} ---\n{_tail(text, 80)}")
        if cls._shared_failed or os.environ.get("STANZAD_KEEP_TMP"):
            _say("", f"kept the class's ejabberd directory {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    def setUp(self) -> None:  # replaces IntegrationTest.setUp (no Prosody)
        name = self.id().rsplit(".", 2)[-2:]
        self.tmp = Path(tempfile.mkdtemp(prefix=f"stanzad-{'-'.join(name)}-"))
        self.addCleanup(self._cleanup_tmp)
        if self._shared is not None:
            _tmp, self.certs, self.ejabberd = self._shared
            assert self.ejabberd.running, "the class's ejabberd is gone"
        else:
            self.certs = self.make_certs()
            self.ejabberd = self.start_ejabberd(**self.EJABBERD_OPTIONS)
        self.prosody = self.ejabberd  # the harness helpers' name for "the server"

    def start_ejabberd(self, name: str = "ejabberd", users: Optional[dict] = None,
                       **options: Any) -> Ejabberd:
        """Another Ejabberd in this test's temp dir with `users` (default USERS)
        registered; stopped at cleanup."""
        options.setdefault("certs", self.certs)
        options.setdefault("host", self.DOMAIN)
        ej = Ejabberd(self.tmp / name, name=name, **options)
        self.addCleanup(ej.stop)
        ej.start()
        ej.register_many(self.USERS if users is None else users)
        return ej

    def _cleanup_tmp(self) -> None:
        if self._failed_so_far():
            type(self)._shared_failed = True
            for p in self.tmp.glob("*/logs/*.log"):
                text = p.read_text(errors="replace")
                if text.strip():
                    _say("", f"--- tail of {p} ---\n{_tail(text, 80)}")
        super()._cleanup_tmp()
