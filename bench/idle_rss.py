#!/usr/bin/python3
"""Idle memory of the daemon: one account online against a throwaway local Prosody.

Usage: /usr/bin/python3 bench/idle_rss.py [--seconds N] [--wakeups M]   (after `make build`)
Prints VmRSS, RssAnon and VmHWM of stanzad once it has been online for N seconds (default 5).
With --wakeups, also how often its threads woke in the M seconds after that (voluntary
context switches: each is a wait that ended, the event loop's epoll_wait above all; what a
laptop on battery pays for an idle daemon).
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


def wakeups(pid: int) -> dict:
    """Voluntary context switches so far, per thread name."""
    out: dict = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    out[name] = out.get(name, 0) + int(line.split()[1])
        except FileNotFoundError:  # a thread that ended meanwhile
            pass
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--wakeups", type=float, default=0.0, metavar="M",
                    help="then count the threads' wakeups for M seconds")
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
                if args.wakeups > 0:
                    before = wakeups(pid)
                    time.sleep(args.wakeups)  # idle is still the point
                    after = wakeups(pid)
                    per = {n: after.get(n, 0) - before.get(n, 0) for n in after}
                    total = sum(per.values())
                    detail = ", ".join(f"{n} {c}" for n, c in sorted(per.items()))
                    print(f"wakeups in {args.wakeups:g} s idle: {total} ({total / args.wakeups:.2f}/s; {detail})")
            finally:
                d.signal(harness.signal.SIGTERM)
                d.wait_exit(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
