#!/usr/bin/python3
"""Reconnection cost of stanzad: XEP-0484 FAST vs SCRAM inside XEP-0388 SASL2 vs SCRAM over
legacy SASL, against the same Prosody build in the same run.

Usage (after building; Debian's python3, which has slixmpp):

    /usr/bin/python3 bench/bench_login.py                # 30 reconnections per way
    /usr/bin/python3 bench/bench_login.py --n 50

What it does: starts three quiet Prosody 0.12 instances on loopback (debug logging off),
the same build and config but for the login: "fast" (Prosody(sasl2=True): SASL2, Bind2,
FAST), "sasl2" (sasl2=True, fast=False) and "legacy" (no SASL2). For each, stanzad with
alice as account "home" through a FaultProxy (tests/integration/faultproxy.py); once it is
online (and, for "fast", holds a token), the proxy resets the connection N times. Each time
it waits for the next `online as` line and reads from the daemon's log (spdlog timestamps,
1 ms):
- login: from `connecting to` to `online as` (TCP, STARTTLS, TLS, authentication and the
  XEP-0198 resumption of the session the reset broke; the backoff before it is excluded);
- reconnect: from the reset (our clock, converted) to `online as`, backoff included;
and from /proc: stanzad's CPU over the reset..online interval, utime + stime from
/proc/PID/stat (10 ms ticks: summed over all reconnections and divided) and the on-CPU
time of all its threads from /proc/PID/task/*/schedstat (ns; per reconnection).
As a reference, slixmpp 1.8 (no SASL2) logs in directly (no proxy) N times to the
"legacy" instance: the time of connect() (TCP, STARTTLS, SCRAM-SHA-1, bind, session) and
this process's CPU for it.

Prints medians (and p90) per way, plus the machine (CPU model, cores). Every login's
mechanism is checked: FAST for "fast", SCRAM-SHA-1 for the others.

Environment: STANZAD_BIN as for the tests (default build/daemon/stanzad).
"""

import argparse
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
sys.path.insert(0, str(HERE))
import harness  # noqa: E402
from bench_roundtrip import QuietProsody, cpu_seconds  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402

USERS = {"alice": "alice-Pw-1!", "bob": "bob-Pw-2!"}
WAYS = (  # name, Prosody options, the mechanism every measured login must show
    ("fast", {"sasl2": True}, "FAST"),
    ("sasl2", {"sasl2": True, "fast": False}, "SCRAM-SHA-1"),
    ("legacy", {}, "SCRAM-SHA-1"),
)


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return (f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def on_cpu_ns(pid: int) -> int:
    """Time on CPU of every thread of `pid` (first field of /proc/PID/task/TID/schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that ended meanwhile
    return total


def quantiles(values: "list[float]") -> str:
    s = sorted(values)
    p90 = s[min(len(s) - 1, int(round(0.9 * (len(s) - 1))))]
    return f"median {statistics.median(s):7.1f}  p90 {p90:7.1f}"


def start_prosody(tmp: Path, certs, name: str, options: dict) -> QuietProsody:
    p = QuietProsody(tmp / name, certs, name=name, **options)
    for user, password in USERS.items():
        p.register(user, password)
    p.start()
    return p


def bench_way(tmp: Path, certs, name: str, prosody, expect: str, n: int) -> dict:
    proxy = FaultProxy(prosody.port)
    acct = harness.account_section("home", "alice@localhost", port=proxy.port,
                                   ca_file=certs.ca_cert, password=USERS["alice"],
                                   resource="bench")
    config = harness.stanzad_config(tmp / f"stanzad-{name}", [acct], log_level="info")
    d = harness.Stanzad(config, tmp / f"stanzad-{name}", name=f"stanzad-{name}", echo=False)
    online = harness.rx_online("home")
    try:
        d.start()
        d.wait_for(online, 20)
        if name == "fast":
            d.wait_for(r"account home: got a FAST token for ", 10)
        d.wait_for(harness.rx_session_up("home"), 10)
        login_ms, total_ms, cpu_ns, mechs = [], [], [], []
        ticks_before = cpu_seconds(d.pid)
        for _ in range(n):
            mark = d.mark()
            cpu0 = on_cpu_ns(d.pid)
            wall0 = time.time()
            if proxy.reset_all() != 1:
                raise SystemExit(f"bench: {name}: no connection to reset")
            m = d.wait_for(harness.rx_online("home") + r" \((.+)\)", 20, since=mark)
            cpu_ns.append(on_cpu_ns(d.pid) - cpu0)
            mechs.append(m.group(2))
            lines = d.output(mark).splitlines()
            t_online = harness.log_line_time(m.string)
            t_connect = harness.log_line_time(
                [l for l in lines if re.search(harness.rx_connecting("home"), l)][-1])
            login_ms.append((t_online - t_connect) * 1000)
            # Log times are wall clock with 1 ms: the reset's wall time is taken beside it.
            total_ms.append(max(t_online - wall0, 0.0) * 1000)
            # The next reset should hit a stream that is up, as a real outage would.
            d.wait_for(harness.rx_session_up("home"), 10, since=mark)
        ticks = cpu_seconds(d.pid) - ticks_before
        bad = [x for x in mechs if x != expect]
        if bad:
            raise SystemExit(f"bench: {name}: logins not {expect}: {sorted(set(bad))}")
        return {"name": name, "mech": expect, "login_ms": login_ms, "total_ms": total_ms,
                "cpu_ms": [c / 1e6 for c in cpu_ns], "ticks_ms_per_login": ticks * 1000 / n}
    finally:
        d.stop()
        proxy.close()


def bench_slixmpp(certs, prosody, n: int) -> dict:
    times, cpus = [], []
    for _ in range(n):
        peer = harness.Peer("bob@localhost", USERS["bob"], certs.ca_cert, prosody.port,
                            connect=False, presence=False)
        try:
            c0, t0 = time.process_time(), time.monotonic()
            peer.connect()
            times.append((time.monotonic() - t0) * 1000)
            cpus.append((time.process_time() - c0) * 1000)
        finally:
            peer.close()
    return {"login_ms": times, "cpu_ms": cpus}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=30, help="reconnections per way (default 30)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="stanzad-bench-login-") as tmp:
        tmp = Path(tmp)
        certs = harness.make_ca(tmp / "pki")
        servers = {name: start_prosody(tmp, certs, name, opts) for name, opts, _ in WAYS}
        try:
            results = [bench_way(tmp, certs, name, servers[name], expect, args.n)
                       for name, _opts, expect in WAYS]
            ref = bench_slixmpp(certs, servers["legacy"], args.n)
        finally:
            for p in servers.values():
                p.stop()
    print(f"bench_login: {args.n} reconnections per way; machine: {machine()}")
    print(f"stanzad {harness.stanzad_bin()}; Prosody 0.12 on loopback, its log at info")
    for r in results:
        print(f"  {r['name']:6} ({r['mech']:11})  login ms {quantiles(r['login_ms'])}   "
              f"reset->online ms {quantiles(r['total_ms'])}   "
              f"stanzad CPU ms {quantiles(r['cpu_ms'])} (stat ticks: "
              f"{r['ticks_ms_per_login']:.1f}/login)")
    print(f"  slixmpp direct login (legacy SCRAM-SHA-1, no proxy)  login ms "
          f"{quantiles(ref['login_ms'])}   its CPU ms {quantiles(ref['cpu_ms'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
