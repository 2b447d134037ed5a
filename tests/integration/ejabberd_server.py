# Ejabberd: a throwaway ejabberd 23.01 on loopback, owned by one test: its ports and node,
# start/stop/kill/restart, ejabberdctl (ctl, register_many), its log (wait_for_log,
# log_barrier) and its SQLite database (sql).

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any, Optional, Union

from harness import (LOOPBACK, XMPP_DOMAIN, Certs, Pattern, _PortInUse, _say, _spawn, _tail,
                     _track, _untrack, free_port, make_ca, poll_until, port_accepts,
                     start_on_free_ports)
from ejabberd_config import SCRAM_MECHANISM, EjabberdConfig, check_installed


class Ejabberd(EjabberdConfig):
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
