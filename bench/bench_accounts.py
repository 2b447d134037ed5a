#!/usr/bin/python3
"""Idle memory of one stanzad with many accounts online (issue 15: at most 30 MiB for 200).

Usage (after `make build`; Debian's python3):

    /usr/bin/python3 bench/bench_accounts.py                 # 200 accounts
    /usr/bin/python3 bench/bench_accounts.py --accounts 50

One Prosody on loopback with users u0 ... u(N-1). stanzad runs twice on fresh state
directories: with one account (u0), then with N (u0 ... u(N-1)). Each time the script
waits for every account's `online as` line, then for the daemon to be idle (its CPU time
unchanged for 2 s), and prints VmRSS, RssAnon and [heap] with the difference per further
account: (N accounts - 1 account) / (N - 1).

Environment: STANZAD_BIN as for the tests (default build/daemon/stanzad).
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
sys.path.insert(0, str(HERE))
import harness  # noqa: E402
from bench_memory import heap_kib  # noqa: E402
from bench_profile import machine  # noqa: E402
from bench_roundtrip import QuietProsody, cpu_seconds, status_kib  # noqa: E402


def idle(pid: int, quiet: float = 2.0, limit: float = 120.0) -> None:
    """Until the process's CPU time has not moved for `quiet` seconds."""
    last, since, deadline = cpu_seconds(pid), time.monotonic(), time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = cpu_seconds(pid)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise SystemExit("bench: the daemon did not go idle")


def run(prosody, certs, tmp: Path, n: int) -> dict:
    accounts = [harness.account_section(f"a{i}", f"u{i}@localhost", port=prosody.port,
                                        ca_file=certs.ca_cert, password=f"pw{i}") for i in range(n)]
    workdir = tmp / f"stanzad-{n}"
    config = harness.stanzad_config(workdir, accounts, log_level="info")
    d = harness.Stanzad(config, workdir, echo=False).start()
    try:
        t0 = time.perf_counter()
        d.wait_for(harness.rx_online(f"a{n - 1}"), timeout=60 + n)
        for i in range(n):
            d.wait_for(harness.rx_online(f"a{i}"), timeout=60 + n)
        online = time.perf_counter() - t0
        idle(d.proc.pid)
        pid = d.proc.pid
        return {"online": online, "rss": status_kib(pid, "VmRSS"), "anon": status_kib(pid, "RssAnon"),
                "heap": heap_kib(pid), "fds": len(list(Path(f"/proc/{pid}/fd").iterdir()))}
    finally:
        d.stop(30)


def main() -> int:
    ap = argparse.ArgumentParser(description="stanzad idle memory with many accounts")
    ap.add_argument("--accounts", type=int, default=200)
    args = ap.parse_args()
    n = args.accounts
    print(f"bench_accounts: {machine()}; {n} accounts; binary {harness.stanzad_bin()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="stanzad-accounts-") as tmp:
        tmp = Path(tmp)
        certs = harness.make_ca(tmp / "pki")
        prosody = QuietProsody(tmp / "prosody", certs)
        t0 = time.perf_counter()
        for i in range(n):
            prosody.register(f"u{i}", f"pw{i}")
        print(f"registered {n} users in {time.perf_counter() - t0:.0f} s", flush=True)
        prosody.start()
        try:
            one = run(prosody, certs, tmp, 1)
            many = run(prosody, certs, tmp, n)
        finally:
            prosody.stop()
    for name, r in (("1 account", one), (f"{n} accounts", many)):
        print(f"{name:13s} online in {r['online']:.1f} s; idle VmRSS {r['rss'] / 1024:.1f} MiB, "
              f"RssAnon {r['anon'] / 1024:.1f} MiB, [heap] {r['heap'] / 1024:.1f} MiB, {r['fds']} fds")
    per = {k: (many[k] - one[k]) / max(1, n - 1) for k in ("rss", "anon", "heap")}
    print(f"per further account: VmRSS {per['rss']:.0f} KiB, RssAnon {per['anon']:.0f} KiB, "
          f"[heap] {per['heap']:.0f} KiB")
    print(f"end: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
