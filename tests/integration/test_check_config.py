"""stanzad --check-config: exit 0 for a good config; exit 2 with every problem printed as
FILE:LINE:COL: error: KEY: MESSAGE, naming the line of the key at fault (for a missing
key, the line of the table that lacks it)."""

import os
import re
import shutil
import tempfile
import textwrap
import unittest
from pathlib import Path

import harness
from harness import run_stanzad


def config(body: str) -> str:
    """A config whose [daemon] table takes lines 1-4 and whose [[account]] header is on
    line 6, so the line numbers below can be read off the text."""
    return textwrap.dedent("""\
        [daemon]
        state_dir = "@TMP@/state"
        socket = "@TMP@/stanzad.sock"
        log_level = "debug"

        [[account]]
        """) + textwrap.dedent(body)


GOOD = config("""\
    name = "home"
    jid = "alice@localhost"
    password = "secret"
    host = "127.0.0.1"
    port = 5222
    tls = "starttls"
    """)

TYPO = config("""\
    name = "home"
    jid = "alice@localhost"
    pasword = "secret"
    """)  # line 9

WRONG_TYPE = config("""\
    name = "home"
    jid = "alice@localhost"
    password = "secret"
    port = "x"
    """)  # line 10

MISSING_JID = config("""\
    name = "home"
    password = "secret"
    """)  # the [[account]] on line 6 has no jid

ALL_THREE = config("""\
    name = "home"
    jid = "alice@localhost"
    pasword = "secret"
    port = "x"

    [[account]]
    name = "work"
    password = "secret"
    """)  # pasword: 9, port: 10, account without jid: 12


def error_rx(path: Path, line: int, key: str) -> str:
    # KEY may be qualified ("port", "account.port", "account[0].port"); COL is any.
    return (rf"(?m)^{re.escape(str(path))}:{line}:\d+: error: "
            rf"(?:[\w.\[\]]*[.\]])?{re.escape(key)}: \S")


class CheckConfigTest(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="stanzad-check-config-"))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def check(self, text: str):
        path = self.tmp / "stanzad.toml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text.replace("@TMP@", str(self.tmp)))
        proc = run_stanzad(["--check-config", "-c", path])
        return path, proc.returncode, proc.stdout + proc.stderr

    def test_good_config(self):
        _path, rc, out = self.check(GOOD)
        self.assertEqual(rc, 0, out)
        self.assertNotIn("error:", out)

    def test_typo_in_key(self):
        path, rc, out = self.check(TYPO)
        self.assertEqual(rc, 2, out)
        self.assertRegex(out, error_rx(path, 9, "pasword"))

    def test_wrong_type(self):
        path, rc, out = self.check(WRONG_TYPE)
        self.assertEqual(rc, 2, out)
        self.assertRegex(out, error_rx(path, 10, "port"))

    def test_missing_jid(self):
        path, rc, out = self.check(MISSING_JID)
        self.assertEqual(rc, 2, out)
        self.assertRegex(out, error_rx(path, 6, "jid"))

    def test_every_problem_is_printed(self):
        path, rc, out = self.check(ALL_THREE)
        self.assertEqual(rc, 2, out)
        self.assertRegex(out, error_rx(path, 9, "pasword"))
        self.assertRegex(out, error_rx(path, 10, "port"))
        self.assertRegex(out, error_rx(path, 12, "jid"))

    def test_version(self):
        proc = run_stanzad(["--version"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertRegex(proc.stdout + proc.stderr, r"stanzad\S* v?\d+\.\d+")


if __name__ == "__main__":
    harness.main()
