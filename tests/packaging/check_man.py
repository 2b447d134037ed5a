"""The man pages cannot drift from the code: every config key the validator knows
(the key lists of config/validator.hpp) is described in stanzad.toml(5), in its table's section;
every stanzactl command (`stanzactl complete commands`) is in stanzactl(1) with the
synopsis `stanzactl help COMMAND` prints; every option of `stanzad --help` and
`stanzactl --help` is in its page.

usage: check_man.py SOURCE_DIR STANZAD STANZACTL"""

import re
import subprocess
import sys
import unittest
from pathlib import Path

SOURCE, STANZAD, STANZACTL = (Path(a) for a in sys.argv[1:4])
MAN = SOURCE / "docs" / "man"


def run(*argv: object) -> str:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=True).stdout


def plain(scd: str) -> str:
    """scdoc text without its markup: *bold*, _underline_ (not inside words), \\ escapes."""
    text = scd.replace("\\_", "\x00").replace("\\*", "\x01")
    text = text.replace("*", "")
    text = re.sub(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", "", text)
    return text.replace("\x00", "_").replace("\x01", "*")


def sections(scd: str) -> "dict[str, str]":
    """'# NAME' headings -> their text."""
    out, name = {}, None
    for line in scd.splitlines():
        if line.startswith("# "):
            name = line[2:].strip()
            out[name] = ""
        elif name is not None:
            out[name] += line + "\n"
    return out


def validator_keys() -> "dict[str, list[str]]":
    """The key lists the config Validator checks tables against: {'daemon': [...], 'irc': [...], ...}."""
    source = (SOURCE / "config" / "validator.hpp").read_text()
    lists = {}
    for m in re.finditer(r"constexpr std::array<std::string_view, (\d+)> (\w+)_keys = \{(.*?)\};", source, re.S):
        count, table, body = int(m.group(1)), m.group(2), m.group(3)
        keys = re.findall(r'"([a-z_]+)"', body)
        assert len(keys) == count, f"{table}_keys: read {len(keys)} keys, the array holds {count}"
        lists[table] = keys
    return lists


class ConfigPage(unittest.TestCase):
    def test_every_key_in_its_section(self):
        keys = validator_keys()
        self.assertTrue({"daemon", "irc", "account", "room"} <= set(keys), keys.keys())
        page = sections((MAN / "stanzad.toml.5.scd").read_text())
        where = {"daemon": "[daemon]", "irc": "[irc]", "account": "[[account]]", "room": "[[account]]"}
        missing = []
        for table, names in keys.items():
            if table == "root":
                continue
            text = page.get(where[table], "")
            for key in names:
                if f"*{key}*" not in text:
                    missing.append(f"{table}.{key}")
        self.assertEqual(missing, [], "config keys the validator knows but stanzad.toml(5) does not describe")

    def test_every_table(self):
        page = sections((MAN / "stanzad.toml.5.scd").read_text())
        for table in ("[daemon]", "[irc]", "[[account]]"):
            self.assertIn(table, page)


class StanzactlPage(unittest.TestCase):
    def test_every_command_with_its_synopsis(self):
        names = run(STANZACTL, "complete", "commands").splitlines()
        self.assertIn("send", names)
        self.assertIn("roster add", names)
        text = plain(sections((MAN / "stanzactl.1.scd").read_text())["COMMANDS"])
        missing = []
        for name in names:
            first = run(STANZACTL, "help", *name.split()).splitlines()[0]
            self.assertTrue(first.startswith("Usage: stanzactl " + name), first)
            synopsis = first[len("Usage: "):]
            if synopsis not in text:
                missing.append(synopsis)
        self.assertEqual(missing, [], "stanzactl commands missing from stanzactl(1) (or with another synopsis)")

    def test_every_option(self):
        options = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", run(STANZACTL, "--help")))
        text = plain((MAN / "stanzactl.1.scd").read_text())
        self.assertEqual(sorted(o for o in options if o not in text), [])


class StanzadPage(unittest.TestCase):
    def test_every_option(self):
        options = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", run(STANZAD, "--help")))
        self.assertIn("--check-config", options)
        page = sections((MAN / "stanzad.1.scd").read_text())
        self.assertEqual(sorted(o for o in options if f"*{o}*" not in page["OPTIONS"]), [])

    def test_signals_and_exit_statuses(self):
        page = sections((MAN / "stanzad.1.scd").read_text())
        for signal in ("SIGTERM", "SIGINT", "SIGHUP"):
            self.assertIn(f"*{signal}*", page["SIGNALS"])
        for status in ("0", "1", "2"):
            self.assertIn(f"*{status}*", page["EXIT STATUS"])


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1])
