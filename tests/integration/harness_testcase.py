# IntegrationTest: the unittest.TestCase that gives each test a temp dir, certificates, a
# Prosody with alice, bob and carol, stanzad and Peers, cleaned up in reverse; main().

from __future__ import annotations

import os
import re
import shutil
import tempfile
import unittest
from pathlib import Path
from typing import Any, Optional, Union

from harness_process import XMPP_DOMAIN, _say, _tail
from harness_certs import Certs, make_ca
from harness_prosody import Prosody
from harness_stanzad import Stanzad, account_section, rx_online, stanzad_config
from harness_peer import Peer


# --------------------------------------------------------------------------------------
# unittest glue

class IntegrationTest(unittest.TestCase):
    """Each test method gets a temp dir, fresh certificates and its own Prosody with the
    users in USERS registered. Cleanups run in reverse: stanzad, peers, Prosody, temp dir.
    On failure the temp dir is kept and the tail of Prosody's log printed; set
    STANZAD_KEEP_TMP=1 to keep it always."""

    USERS = {"alice": "alice-Pw-1!", "bob": "bob-Pw-2!", "carol": "carol-Pw-3!"}
    PROSODY_OPTIONS: dict = {}
    # The XMPP domain of the test's users, Prosody's VirtualHost and the name on the
    # server certificate made by make_ca (a test that needs DNS uses e.g. "stanzad.test").
    DOMAIN = XMPP_DOMAIN
    maxDiff = None

    def setUp(self) -> None:
        name = self.id().rsplit(".", 2)[-2:]
        self.tmp = Path(tempfile.mkdtemp(prefix=f"stanzad-{'-'.join(name)}-"))
        self.addCleanup(self._cleanup_tmp)
        self.certs = self.make_certs()
        self.prosody = self.start_prosody(**self.PROSODY_OPTIONS)

    def make_certs(self) -> Certs:
        """The test's certificates (make_ca for DOMAIN; about 1.4 s): a class may share
        one set between its tests by overriding this."""
        return make_ca(self.tmp / "certs", self.DOMAIN)

    def start_prosody(self, name: str = "prosody", users: Optional[dict] = None,
                      **options: Any) -> Prosody:
        options.setdefault("certs", self.certs)
        options.setdefault("host", self.DOMAIN)
        prosody = Prosody(self.tmp / name, name=name, **options)
        self.addCleanup(prosody.stop)
        for user, password in (self.USERS if users is None else users).items():
            prosody.register(user, password)
        prosody.start()
        return prosody

    def jid(self, user: str) -> str:
        return f"{user}@{self.DOMAIN}"

    def account(self, name: str, user: str, password: Optional[str] = None, *,
                prosody: Optional[Prosody] = None, ca_file: Any = "default",
                **extra: Any) -> dict:
        """An [[account]] for `user` on this test's Prosody. Pass password_command=... in
        extra to use a command instead (then no password key is written)."""
        prosody = prosody or self.prosody
        if password is None and "password_command" not in extra:
            password = self.USERS[user]
        return account_section(name, self.jid(user), port=prosody.port,
                               ca_file=self.certs.ca_cert if ca_file == "default" else ca_file,
                               password=password, **extra)

    def config(self, accounts: "list[dict]", name: str = "stanzad", **daemon: Any) -> dict:
        """The config of the daemon called `name` (its files live in tmp/NAME/)."""
        return stanzad_config(self.tmp / name, accounts, **daemon)

    def start_stanzad(self, accounts_or_config: Union[list, dict, str],
                      name: str = "stanzad", **kwargs: Any) -> Stanzad:
        """Start the daemon with a list of [[account]] dicts, a config dict or TOML text.
        It is stopped with SIGTERM at the end of the test, which must exit 0."""
        config = (self.config(accounts_or_config, name)
                  if isinstance(accounts_or_config, list) else accounts_or_config)
        d = Stanzad(config, self.tmp / name, name=name, **kwargs)
        self.addCleanup(d.kill)
        self.addCleanup(self._stop_and_check, d)
        return d.start()

    SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|"
                                  r"runtime error: |AddressSanitizer:DEADLYSIGNAL")

    def _stop_and_check(self, d: Stanzad) -> None:
        """Every test ends with a clean SIGTERM shutdown (exit 0 within 5 s) and no
        sanitizer report; under the asan preset this is where leaks show up."""
        if d.proc is None:
            return
        if d.running:
            rc = d.stop(5)
            self.assertEqual(rc, 0, f"{d.name} exited with status {rc} on SIGTERM")
        report = self.SANITIZER_REPORT.search(d.output())
        self.assertIsNone(report, f"{d.name}: sanitizer report in its log")

    def peer(self, user: str, password: Optional[str] = None,
             prosody: Optional[Prosody] = None, resource: Optional[str] = None,
             **kwargs: Any) -> Peer:
        """A Peer logged in as `user` (with `resource` when given, else the server's
        choice), closed at cleanup."""
        prosody = prosody or self.prosody
        jid = self.jid(user) + (f"/{resource}" if resource else "")
        p = Peer(jid, password or self.USERS[user], self.certs.ca_cert,
                 prosody.port, **kwargs)
        self.addCleanup(p.close)
        return p

    def wait_online(self, d: Stanzad, account: str, timeout: float = 15.0,
                    since: int = 0) -> str:
        """Wait for `account NAME: online as FULLJID`; returns the full JID."""
        return d.wait_for(rx_online(account), timeout, since=since).group(1)

    def _failed_so_far(self) -> bool:
        """Whether this test has failed (test method, subtests or earlier cleanups)."""
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is None:
            return False
        problems = list(getattr(result, "errors", [])) + list(getattr(result, "failures", []))
        return any(getattr(test, "test_case", test) is self for test, _ in problems)

    def _cleanup_tmp(self) -> None:
        failed = self._failed_so_far()
        if failed:
            for p in self.tmp.glob("*/prosody.log"):
                _say("", f"--- tail of {p} ---\n{_tail(p.read_text(errors='replace'), 80)}")
        if failed or os.environ.get("STANZAD_KEEP_TMP"):
            _say("", f"kept test directory {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def main() -> None:
    """Entry point of every test file: unittest with verbose output, exit status 1 on
    failure."""
    unittest.main(verbosity=2)
