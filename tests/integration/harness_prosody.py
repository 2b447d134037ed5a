# Prosody: one throwaway server per test (config, start/stop/kill/restart, accounts, its
# debug log), and start_on_free_ports, shared with the ejabberd and jabberd2 wrappers.

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import textwrap
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

from harness_process import (LOOPBACK, XMPP_DOMAIN, Pattern, _say, _spawn, _tail, _track,
                             _untrack, free_port, poll_until, port_accepts)
from harness_certs import Certs, make_ca, sasl2_plugins


# --------------------------------------------------------------------------------------
# Prosody

def _lua_str(s: Union[str, Path]) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


class Prosody:
    """A throwaway Prosody 0.12 on loopback, configured and owned by one test.

    Runs `prosody --config FILE -F` in the foreground with run_as_root, its own pidfile,
    data_path and a debug log inside `workdir`. No s2s. One VirtualHost ("localhost")
    with internal_hashed authentication (SCRAM-SHA-1 and PLAIN after STARTTLS) and
    c2s_require_encryption. The c2s port is chosen at the first start() and kept by
    restart(), so clients can reconnect to the same address.

    direct_tls=True adds a XEP-0368 direct-TLS listener (c2s_direct_tls_ports) on
    `direct_tls_port` (chosen like the c2s port when not given); `interfaces` are the
    addresses both listeners bind (default 127.0.0.1 only; add "::1" for IPv6). start()
    waits until every (listener, interface) pair is bound and accepts connections.

    TLS and SASL options (issue 12), written into the global and the host `ssl` tables
    (the global one serves the direct-TLS port, the host one STARTTLS, both SNI):
    - tls_protocol: LuaSec's `protocol`, e.g. "tlsv1_2" (exactly TLS 1.2: the only
      version on which Prosody 0.12 offers SCRAM-SHA-1-PLUS, with tls-unique) or
      "tlsv1_2+" (1.2 and later, Prosody's default).
    - request_client_certs: `verify = { "peer", "client_once" }`: ask every client for a
      certificate (Prosody's c2s default is verify "none": no CertificateRequest at all,
      so a client certificate never arrives). Core's verifyext { "lsec_continue",
      "lsec_ignore_purpose" } stays, so an unverifiable certificate does not fail the
      handshake; mod_client_certs checks it against what the user pinned.
    - sasl2: also offer XEP-0388 SASL2 with XEP-0386 Bind2 (sasl2_plugins() into
      workdir/sasl2-plugins) and, with fast (the default), XEP-0484 FAST tokens.
    - plugin_paths: directories searched for modules before Prosody's own (e.g. the one
      client_certs_plugin() writes); name the modules in `modules`.
    """

    DEFAULT_MODULES = ("roster", "saslauth", "tls", "disco", "ping", "version", "time",
                       "smacks", "mam", "carbons", "blocklist", "private", "vcard")

    def __init__(self, workdir: Union[str, Path], certs: Optional[Certs] = None, *,
                 cert: Optional[Path] = None, key: Optional[Path] = None,
                 port: Optional[int] = None, host: str = XMPP_DOMAIN,
                 modules: Iterable[str] = DEFAULT_MODULES, muc: bool = False,
                 extra_global: str = "", extra_host: str = "", name: str = "prosody",
                 smacks_hibernation_time: int = 60, direct_tls: bool = False,
                 direct_tls_port: Optional[int] = None,
                 interfaces: Iterable[str] = (LOOPBACK,),
                 tls_protocol: Optional[str] = None, request_client_certs: bool = False,
                 plugin_paths: Iterable[Union[str, Path]] = (),
                 sasl2: bool = False, fast: bool = True):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if certs is None and (cert is None or key is None):
            certs = make_ca(self.workdir / "certs", host)
        self.certs = certs
        self.cert = Path(cert or certs.server_cert)
        self.key = Path(key or certs.server_key)
        self.host = host
        self.modules = list(modules)
        self.muc = muc
        self.extra_global = extra_global
        # How long mod_smacks keeps a session whose connection dropped, for resumption
        # (Prosody's default is 600 s; a minute is plenty for every test and lets a test
        # outwait it when it must).
        self.smacks_hibernation_time = smacks_hibernation_time
        self.extra_host = extra_host
        self.name = name
        self.port = port or free_port()
        self.direct_tls = direct_tls or direct_tls_port is not None
        self.direct_tls_port = (direct_tls_port or self._other_port()) if self.direct_tls else None
        self.interfaces = list(interfaces)
        self.tls_protocol = tls_protocol
        self.request_client_certs = request_client_certs
        self.plugin_paths = [Path(p) for p in plugin_paths]
        if sasl2:
            self.plugin_paths.append(sasl2_plugins(self.workdir / "sasl2-plugins"))
            self.modules += ["sasl2", "sasl2_bind2"] + (["sasl2_fast"] if fast else [])
        self._port_fixed = port is not None or direct_tls_port is not None
        self.config_path = self.workdir / "prosody.cfg.lua"
        self.log_path = self.workdir / "prosody.log"
        self.console_path = self.workdir / "prosody.console.log"
        self.pidfile = self.workdir / "prosody.pid"
        self.data_path = self.workdir / "data"
        self.data_path.mkdir(exist_ok=True)
        self.proc: Optional[subprocess.Popen] = None
        self._console = None

    def _other_port(self) -> int:
        """A free port that is not the c2s port (for the direct-TLS listener)."""
        while True:
            port = free_port()
            if port != self.port:
                return port

    # -- configuration
    def ssl_table(self) -> str:
        """The Lua `ssl = { ... }` table of the global section and the VirtualHost."""
        fields = [f"certificate = {_lua_str(self.cert)}", f"key = {_lua_str(self.key)}"]
        if self.tls_protocol:
            fields.append(f"protocol = {_lua_str(self.tls_protocol)}")
        if self.request_client_certs:
            fields.append('verify = { "peer", "client_once" }')
        return "{ " + ", ".join(fields) + " }"

    def config_text(self) -> str:
        modules = ", ".join(_lua_str(m) for m in self.modules)
        plugin_paths = ("plugin_paths = { " + ", ".join(_lua_str(p) for p in self.plugin_paths)
                        + " }\n") if self.plugin_paths else ""
        text = f"""\
-- Written by stanzad's tests/integration/harness_prosody.py for one test run.
run_as_root = true
pidfile = {_lua_str(self.pidfile)}
data_path = {_lua_str(self.data_path)}
log = {{ {{ levels = {{ min = "debug" }}, to = "file", filename = {_lua_str(self.log_path)} }} }}
interfaces = {{ {", ".join(_lua_str(i) for i in self.interfaces)} }}
local_interfaces = {{ "{LOOPBACK}" }}
c2s_ports = {{ {self.port} }}
c2s_direct_tls_ports = {{ {self.direct_tls_port or ""} }}
s2s_ports = {{ }}
modules_enabled = {{ {modules} }}
modules_disabled = {{ "s2s", "s2s_auth_certs" }}
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = true
allow_registration = false
default_archive_policy = true
storage_archive_item_limit = 1000000
archive_expires_after = "never"
smacks_hibernation_time = {int(self.smacks_hibernation_time)}
certificates = {_lua_str(self.workdir)}
ssl = {self.ssl_table()}
{plugin_paths}{self.extra_global}

VirtualHost {_lua_str(self.host)}
    ssl = {self.ssl_table()}
{textwrap.indent(self.extra_host, "    ")}
"""
        if self.muc:
            text += f"""
Component {_lua_str("conference." + self.host)} "muc"
    modules_enabled = {{ "muc_mam" }}
    muc_room_locking = false
    restrict_room_creation = false
"""
        return text

    def write_config(self) -> None:
        self.config_path.write_text(self.config_text())

    # -- lifecycle
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 20.0) -> "Prosody":
        """Start and wait until the c2s port is bound and accepts connections."""
        def new_ports() -> None:
            self.port = free_port()
            if self.direct_tls:
                self.direct_tls_port = self._other_port()
        return start_on_free_ports(self, timeout, new_ports)

    def _start_once(self, timeout: float) -> None:
        assert not self.running, "already running"
        self.write_config()
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._console = open(self.console_path, "ab")
        self.proc = _spawn(["prosody", "--config", self.config_path, "-F"],
                           stdout=self._console, stderr=subprocess.STDOUT,
                           cwd=self.workdir)
        _track(self)
        listeners = [("c2s", self.port)]
        if self.direct_tls:
            listeners.append(("c2s_direct_tls", self.direct_tls_port))
        bound = [re.compile(rf"Added listening service {service} to \[{re.escape(iface)}\]:"
                            rf"{port}\b")
                 for service, port in listeners for iface in self.interfaces]
        failed = re.compile(rf"Failed to open server port "
                            rf"({'|'.join(str(p) for _, p in listeners)})\b")

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.proc.returncode} while starting\n"
                    f"{self.console_text()}\n{_tail(self.log_text())}")
            new_log = self.log_text()[log_offset:]
            if failed.search(new_log):
                raise _PortInUse()
            return (all(rx.search(new_log) for rx in bound)
                    and all(port_accepts(port, iface)
                            for _, port in listeners for iface in self.interfaces))

        where = ", ".join(f"[{i}]:{p}" for _, p in listeners for i in self.interfaces)
        poll_until(ready, timeout, f"{self.name} to listen on {where}",
                   lambda: f"{self.console_text()}\n{_tail(self.log_text())}")

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """SIGTERM (Prosody closes every stream), wait, SIGKILL if it hangs."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _say(f"[{self.name}] ", f"did not stop within {timeout:g}s; killing")
                self.proc.kill()
                self.proc.wait()
        return self._reap()

    def kill(self) -> Optional[int]:
        """SIGKILL: the server vanishes, its clients see the TCP connection drop."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return self._reap()

    def _reap(self) -> Optional[int]:
        rc = self.proc.returncode if self.proc else None
        _untrack(self)
        if self._console:
            self._console.close()
            self._console = None
        with contextlib.suppress(FileNotFoundError):
            self.pidfile.unlink()
        return rc

    def restart(self, kill: bool = False, timeout: float = 20.0) -> "Prosody":
        """Stop (or SIGKILL) and start again on the same port, same data."""
        self.kill() if kill else self.stop()
        return self.start(timeout)

    def __enter__(self) -> "Prosody":
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- accounts
    def prosodyctl(self, *args: str, timeout: float = 30.0) -> str:
        proc = subprocess.run(["prosodyctl", "--config", str(self.config_path), *args],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"prosodyctl {' '.join(args)} failed "
                                 f"({proc.returncode}):\n{proc.stdout}")
        return proc.stdout

    def register(self, user: str, password: str) -> str:
        """Create an account (works whether or not the server is running)."""
        if not self.config_path.exists():
            self.write_config()
        self.prosodyctl("register", user, self.host, password)
        return f"{user}@{self.host}"

    # -- log
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
        """Current size of the log: pass as `since` to look only at what comes later."""
        return len(self.log_text())

    def wait_for_log(self, pattern: Pattern, timeout: float = 10.0,
                     since: int = 0) -> "re.Match[str]":
        """Poll the debug log (a file: nothing to wait on) until `pattern` matches."""
        rx = re.compile(pattern, re.M) if isinstance(pattern, str) else pattern
        return poll_until(lambda: rx.search(self.log_text(), since), timeout,
                          f"{rx.pattern!r} in {self.name}'s log",
                          lambda: _tail(self.log_text()[since:]))

    # Prosody writes "<timestamp> <session-id> <level> <message>"; a c2s session id
    # looks like "c2s55d5c8b0a1c0", and "Authenticated as user@host" ties it to a user.
    def session_ids(self, bare_jid: str, since: int = 0) -> "list[str]":
        """Ids of the c2s sessions that authenticated as `bare_jid`, oldest first."""
        rx = re.compile(rf"^.*?\s(c2s[0-9a-f]+)\s+info\s+Authenticated as "
                        rf"{re.escape(bare_jid)}\s*$", re.M)
        return rx.findall(self.log_text(), since)

    def session_lines(self, session_id: str) -> "list[str]":
        rx = re.compile(rf"\s{re.escape(session_id)}\s")
        return [line for line in self.log_text().splitlines() if rx.search(line)]

    def wait_for_session(self, bare_jid: str, timeout: float = 10.0,
                         since: int = 0) -> str:
        """Id of the first session authenticated as `bare_jid` after `since`."""
        return poll_until(lambda: (self.session_ids(bare_jid, since) or [None])[0],
                          timeout, f"a session authenticated as {bare_jid}",
                          lambda: _tail(self.log_text()[since:]))

    def wait_for_session_line(self, session_id: str, pattern: Pattern,
                              timeout: float = 10.0) -> str:
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern

        def find() -> Optional[str]:
            return next((l for l in self.session_lines(session_id) if rx.search(l)), None)

        return poll_until(find, timeout, f"{rx.pattern!r} for session {session_id}",
                          lambda: "\n".join(self.session_lines(session_id)[-40:]))


class _PortInUse(Exception):
    pass


def start_on_free_ports(server: Any, timeout: float, new_ports: Callable[[], None]) -> Any:
    """Runs server._start_once(timeout). The first start of a server is retried twice on
    new ports (new_ports() picks them) when one was taken between free_port() and the
    server's bind (_start_once raises _PortInUse); later starts keep their addresses."""
    attempts = 1 if server._port_fixed else 3
    for attempt in range(attempts):
        if attempt > 0:
            new_ports()
        try:
            server._start_once(timeout)
            server._port_fixed = True  # restarts keep the addresses
            return server
        except _PortInUse:
            server.kill()
            if attempt + 1 == attempts:
                raise AssertionError(f"{server.name}: a port was in use\n{_tail(server.log_text())}")
    return server
