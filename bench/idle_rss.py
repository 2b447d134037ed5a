#!/usr/bin/python3
"""Idle memory of the daemon: one account online against a throwaway local Prosody.

Usage: /usr/bin/python3 bench/idle_rss.py [--seconds N]   (after `make build`)
Prints VmRSS, RssAnon and VmHWM of stanzad once it has been online for N seconds (default 5).
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
import harness  # noqa: E402


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="stanzad-rss-") as tmp:
        tmp = Path(tmp)
        certs = harness.make_ca(tmp / "pki")
        with harness.Prosody(tmp / "prosody", certs) as prosody:
            prosody.register("alice", "alice-pass")
            config = harness.stanzad_config(tmp / "stanzad", [harness.account_section(
                "home", "alice@localhost", port=prosody.port, ca_file=certs.ca_cert,
                password="alice-pass")], log_level="info")
            d = harness.Stanzad(config, tmp / "stanzad", echo=False).start()
            try:
                d.wait_for(harness.rx_online("home"), timeout=20)
                time.sleep(args.seconds)  # idle is the point of the measurement
                pid = d.proc.pid
                rss, hwm, anon = (status_kib(pid, f) for f in ("VmRSS", "VmHWM", "RssAnon"))
                print(f"stanzad idle with one account online: VmRSS {rss / 1024:.1f} MiB "
                      f"(of which private heap/stack RssAnon {anon / 1024:.1f} MiB; the rest is "
                      f"shared libraries), VmHWM {hwm / 1024:.1f} MiB")
            finally:
                d.signal(harness.signal.SIGTERM)
                d.wait_exit(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
