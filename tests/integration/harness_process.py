# The test bed's base: paths, constants, _say, and process hygiene (every child dies with
# us: _spawn, _track/_untrack, atexit); free ports and poll_until for what cannot notify.

from __future__ import annotations

import atexit
import contextlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional, Union


HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
XMPP_DOMAIN = "localhost"
LOOPBACK = "127.0.0.1"

Pattern = Union[str, "re.Pattern[str]"]


def _say(prefix: str, text: str) -> None:
    """Echo a line to the test's output (CTest shows it when a test fails)."""
    with _print_lock:
        sys.stderr.write(f"{prefix}{text}\n")
        sys.stderr.flush()


_print_lock = threading.Lock()


# --------------------------------------------------------------------------------------
# Process hygiene: nothing we start survives us.

_live: "set[Any]" = set()
_live_lock = threading.Lock()


def _track(obj: Any) -> None:
    with _live_lock:
        _live.add(obj)


def _untrack(obj: Any) -> None:
    with _live_lock:
        _live.discard(obj)


@atexit.register
def _kill_leftovers() -> None:
    with _live_lock:
        leftovers = list(_live)
    for obj in leftovers:
        with contextlib.suppress(Exception):
            obj.kill()


def _exit_on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


if threading.current_thread() is threading.main_thread():
    for _sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(_sig) in (signal.SIG_DFL, None):
            signal.signal(_sig, _exit_on_signal)

_SETPRIV = shutil.which("setpriv")


def _spawn(argv: list, **kwargs: Any) -> subprocess.Popen:
    """Start a child that dies with us (PDEATHSIG) and ignores our terminal's Ctrl-C
    (own session): the harness decides how and in which order children stop."""
    if _SETPRIV:
        argv = [_SETPRIV, "--pdeathsig", "KILL", "--"] + [str(a) for a in argv]
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen([str(a) for a in argv], start_new_session=True, **kwargs)


def free_port(host: str = LOOPBACK) -> int:
    """A port that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_accepts(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def poll_until(predicate: Callable[[], Any], timeout: float, what: str,
               on_timeout: Optional[Callable[[], str]] = None) -> Any:
    """Call predicate with a short growing backoff (5 ms .. 100 ms) until it returns a
    true value, for at most `timeout` seconds. For things that cannot notify us (a file
    written by another process, a TCP port)."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = on_timeout() if on_timeout else ""
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}\n{detail}")
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.1)


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])
