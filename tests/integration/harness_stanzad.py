# stanzad under test: its TOML config (to_toml, account_section, stanzad_config), the
# log lines of its contract (rx_*), the Stanzad wrapper and run_stanzad.

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Optional, Union

from harness_process import LOOPBACK, REPO, Pattern, _say, _spawn, _track, _untrack


DEFAULT_STANZAD_BIN = REPO / "build" / "daemon" / "stanzad"


def stanzad_bin() -> Path:
    """The daemon under test: $STANZAD_BIN, else build/daemon/stanzad in this repo."""
    return Path(os.environ.get("STANZAD_BIN") or DEFAULT_STANZAD_BIN)


# --------------------------------------------------------------------------------------
# stanzad configuration (TOML)

def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (str, Path)):
        s = str(v)
        out = []
        for ch in s:
            if ch == "\\":
                out.append("\\\\")
            elif ch == '"':
                out.append('\\"')
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\t":
                out.append("\\t")
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                out.append(f"\\u{ord(ch):04X}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}"
                                for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else _toml_value(k)


def to_toml(config: dict) -> str:
    """Write a dict as TOML: scalars first, then [tables], then [[arrays of tables]].
    Lists of dicts at top level become [[name]] blocks; deeper ones inline tables."""
    lines: "list[str]" = []
    for k, v in config.items():
        if not isinstance(v, dict) and not (isinstance(v, list) and v
                                            and all(isinstance(x, dict) for x in v)):
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    for k, v in config.items():
        if isinstance(v, dict):
            lines += ["", f"[{_toml_key(k)}]"]
            lines += [f"{_toml_key(kk)} = {_toml_value(vv)}" for kk, vv in v.items()]
    for k, v in config.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for item in v:
                lines += ["", f"[[{_toml_key(k)}]]"]
                lines += [f"{_toml_key(kk)} = {_toml_value(vv)}" for kk, vv in item.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def daemon_section(workdir: Union[str, Path], **overrides: Any) -> dict:
    workdir = Path(workdir)
    section = {"state_dir": str(workdir / "state"),
               "socket": str(workdir / "stanzad.sock"),
               "log_level": "debug"}
    section.update(overrides)
    return section


def account_section(name: str, jid: str, *, port: int, ca_file: Optional[Path],
                    password: Optional[str] = None, host: str = LOOPBACK,
                    tls: str = "starttls", **extra: Any) -> dict:
    """One [[account]]; ca_file=None leaves the key out (system trust store only)."""
    acct: dict = {"name": name, "jid": jid}
    if password is not None:
        acct["password"] = password
    acct.update({"host": host, "port": port, "tls": tls})
    if ca_file is not None:
        acct["ca_file"] = str(ca_file)
    acct.update(extra)
    return acct


def stanzad_config(workdir: Union[str, Path], accounts: "list[dict]",
                   **daemon_overrides: Any) -> dict:
    return {"daemon": daemon_section(workdir, **daemon_overrides), "account": list(accounts)}


# --------------------------------------------------------------------------------------
# stanzad

# The log lines of the daemon's contract, as regular expressions (searched in a line).
def rx_connecting(account: str) -> str:
    """`account NAME: connecting to HOST:PORT`; groups: host, port."""
    return rf"account {re.escape(account)}: connecting to (\S+):(\d+)"


def rx_online(account: str) -> str:
    """`account NAME: online as FULLJID`; group: the full JID."""
    return rf"account {re.escape(account)}: online as (\S+)"


def rx_disconnected(account: str) -> str:
    """`account NAME: disconnected: REASON; reconnecting in 1.3s`; group: seconds."""
    return rf"account {re.escape(account)}: disconnected: .*; reconnecting in ([0-9.]+)s"


def rx_auth_failed(account: str) -> str:
    return (rf"account {re.escape(account)}: authentication failed: .*; "
            rf"not retrying until the config changes")


def rx_tls_failed(account: str) -> str:
    return rf"account {re.escape(account)}: TLS certificate verification failed: "


RX_SHUTTING_DOWN = r"stanzad: shutting down"
RX_STOPPED = r"stanzad: stopped"


def rx_reloaded(unchanged: int, added: int, removed: int, changed: int) -> str:
    return (rf"stanzad: config reloaded: {unchanged} unchanged, {added} added, "
            rf"{removed} removed, {changed} changed")

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Stanzad:
    """The daemon under test, in the foreground, its stderr read line by line.

    Lines are kept in `lines` (ANSI colours stripped) and echoed to our stderr with a
    prefix. wait_for() blocks on a condition variable that the reader thread notifies on
    every line, so a test continues the moment the daemon logs what it waits for.
    Positions: mark() returns the number of lines so far; pass it as `since` to look only
    at later lines.
    """

    def __init__(self, config: Union[dict, str], workdir: Union[str, Path], *,
                 name: str = "stanzad", binary: Optional[Union[str, Path]] = None,
                 args: Iterable[str] = (), echo: Union[bool, str] = True,
                 env: Optional[dict] = None, config_name: str = "stanzad.toml"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.binary = Path(binary) if binary else stanzad_bin()
        self.args = list(args)
        self.echo = echo
        self.env = env
        self.config_path = self.workdir / config_name
        self.lines: "list[str]" = []
        self.proc: Optional[subprocess.Popen] = None
        self._cond = threading.Condition()
        self._eof = False
        self._reader: Optional[threading.Thread] = None
        self._stdout_reader: Optional[threading.Thread] = None
        self.stdout_lines: "list[str]" = []
        self.write_config(config)

    def write_config(self, config: Union[dict, str]) -> None:
        """(Re)write the config file with mode 0600; a dict is written as TOML."""
        text = to_toml(config) if isinstance(config, dict) else config
        tmp = self.config_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.config_path)  # atomic: a reload never sees half a file
        self.config_text = text

    def start(self) -> "Stanzad":
        if not self.binary.exists():
            raise AssertionError(
                f"stanzad binary not found at {self.binary}: run `make build` "
                f"(or set STANZAD_BIN)")
        argv = [self.binary, "-c", self.config_path, *self.args]
        env = dict(os.environ)
        env.update(self.env or {})
        self.proc = _spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           cwd=self.workdir, env=env)
        _track(self)
        self._reader = threading.Thread(target=self._read, args=(self.proc.stderr, True),
                                        name=f"{self.name}-stderr", daemon=True)
        self._stdout_reader = threading.Thread(target=self._read,
                                               args=(self.proc.stdout, False),
                                               name=f"{self.name}-stdout", daemon=True)
        self._reader.start()
        self._stdout_reader.start()
        return self

    def _read(self, stream: Any, is_log: bool) -> None:
        prefix = self.echo if isinstance(self.echo, str) else f"[{self.name}] "
        try:
            for raw in iter(stream.readline, b""):
                line = _ANSI.sub("", raw.decode("utf-8", "replace").rstrip("\r\n"))
                if self.echo:
                    _say(prefix, line)
                with self._cond:
                    (self.lines if is_log else self.stdout_lines).append(line)
                    self._cond.notify_all()
        finally:
            with contextlib.suppress(Exception):
                stream.close()
            if is_log:
                with self._cond:
                    self._eof = True
                    self._cond.notify_all()

    # -- reading the log
    def mark(self) -> int:
        with self._cond:
            return len(self.lines)

    def output(self, since: int = 0) -> str:
        with self._cond:
            return "\n".join(self.lines[since:])

    @staticmethod
    def _rx(pattern: Pattern) -> "re.Pattern[str]":
        return re.compile(pattern) if isinstance(pattern, str) else pattern

    def matches(self, pattern: Pattern, since: int = 0) -> "list[re.Match[str]]":
        rx = self._rx(pattern)
        with self._cond:
            return [m for m in map(rx.search, self.lines[since:]) if m]

    def count(self, pattern: Pattern, since: int = 0) -> int:
        return len(self.matches(pattern, since))

    def index(self, pattern: Pattern, since: int = 0) -> Optional[int]:
        """Index in `lines` of the first line matching `pattern` from `since`, or None."""
        rx = self._rx(pattern)
        with self._cond:
            return next((i for i in range(since, len(self.lines))
                         if rx.search(self.lines[i])), None)

    def wait_for(self, pattern: Pattern, timeout: float = 10.0, since: int = 0,
                 nth: int = 1) -> "re.Match[str]":
        """Block until the nth line (since `since`) matching `pattern` has appeared, and
        return its match. Fails at once if the daemon exits first."""
        rx = self._rx(pattern)
        deadline = time.monotonic() + timeout
        scanned, found = since, 0
        with self._cond:
            while True:
                while scanned < len(self.lines):
                    m = rx.search(self.lines[scanned])
                    scanned += 1
                    if m:
                        found += 1
                        if found >= nth:
                            return m
                if self._eof:
                    rc = self.proc.wait() if self.proc else None
                    raise AssertionError(
                        f"{self.name} exited (status {rc}) before logging "
                        f"{rx.pattern!r}\n{self._tail_locked()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out after {timeout:g}s waiting for {self.name} to log "
                        f"{rx.pattern!r} (found {found} of {nth})\n{self._tail_locked()}")
                self._cond.wait(remaining)

    def assert_absent(self, pattern: Pattern, window: float, since: int = 0) -> None:
        """Fail as soon as `pattern` appears; pass if it has not after `window` seconds.

        An absence cannot be observed, only waited out: this is the one place where a
        test spends a fixed amount of time. Keep windows short and say what they cover.
        """
        rx = self._rx(pattern)
        deadline = time.monotonic() + window
        scanned = since
        with self._cond:
            while True:
                while scanned < len(self.lines):
                    if rx.search(self.lines[scanned]):
                        raise AssertionError(
                            f"{self.name} logged {rx.pattern!r}, which must not happen:\n"
                            f"{self.lines[scanned]}\n{self._tail_locked()}")
                    scanned += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._eof:
                    return
                self._cond.wait(remaining)

    def _tail_locked(self, n: int = 40) -> str:
        return "--- last lines of stanzad's log ---\n" + "\n".join(self.lines[-n:])

    # -- process
    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> Optional[int]:
        return self.proc.poll() if self.proc else None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 5.0) -> int:
        """Wait for the process to exit and for its log to be read to the end."""
        assert self.proc is not None
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running {timeout:g}s later\n"
                                 f"{self.output()[-4000:]}") from None
        for t in (self._reader, self._stdout_reader):
            if t:
                t.join(5)
        _untrack(self)
        return rc

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM and wait for exit; SIGKILL if it does not stop in time."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _say(f"[{self.name}] ", f"did not stop within {timeout:g}s; killing")
                self.kill()
        return self.wait_exit(5)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for t in (self._reader, self._stdout_reader):
            if t and t is not threading.current_thread():
                t.join(5)
        _untrack(self)

    def __enter__(self) -> "Stanzad":
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is not None:
            self.kill()
        else:
            self.stop()


def run_stanzad(args: Iterable[Union[str, Path]], timeout: float = 10.0,
                binary: Optional[Union[str, Path]] = None) -> subprocess.CompletedProcess:
    """Run stanzad to completion (e.g. --check-config, --version), capturing output."""
    binary = Path(binary) if binary else stanzad_bin()
    if not binary.exists():
        raise AssertionError(f"stanzad binary not found at {binary}: run `make build` "
                             f"(or set STANZAD_BIN)")
    return subprocess.run([str(binary), *map(str, args)], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)
