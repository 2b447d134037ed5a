# EjabberdMixin: the harness's JsonlTest / FaultTest on an Ejabberd instead of Prosody,
# one server per test or one per class (SHARE_EJABBERD).

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

from harness import Certs, _say, _tail, make_ca
from ejabberd_server import Ejabberd


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
