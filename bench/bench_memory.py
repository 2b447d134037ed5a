#!/usr/bin/python3
"""stanzad's resident memory: idle, at the peak of a burst, and 10 s after it; and what
holds it (the allocator's view, through gdb).

Usage (after `make build`; Debian's python3, which has slixmpp; gdb for --malloc):

    /usr/bin/python3 bench/bench_memory.py                 # N=10000 each way
    /usr/bin/python3 bench/bench_memory.py --n 10000 --malloc

One Prosody on loopback (MAM on), stanzad online as alice with its JSON socket, bob a
slixmpp client in this process. Idle: VmRSS once the daemon is online and its XMPP
connection has been quiet for 2 s. Burst: a JSON client sends N messages to bob (up to
100 without a reply), then bob sends N to alice and the client reads them all (each
counted by number), VmRSS sampled every 20 ms (peak; VmHWM too). After: VmRSS 10 s after
the connection went quiet again, with RssAnon / RssFile and the [heap] mapping.
--malloc then asks glibc, in the daemon (gdb attaches for a moment), for malloc_stats()
(in use vs held by the allocator) and runs malloc_trim(0), and prints VmRSS after the
trim: what the allocator held but did not use is the difference.

Environment: STANZAD_BIN as for the tests (default build/daemon/stanzad).
"""

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
sys.path.insert(0, str(HERE))
import harness  # noqa: E402
from bench_profile import Bob, Ctx, json_client, json_in, json_out, machine, settle  # noqa: E402
from bench_roundtrip import QuietProsody, status_kib  # noqa: E402


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def heap_kib(pid: int) -> int:
    """Rss of the [heap] mapping (the brk arena) from /proc/PID/smaps."""
    text = Path(f"/proc/{pid}/smaps").read_text()
    m = re.search(r"\[heap\]\n(?:.*\n)*?Rss:\s+(\d+) kB", text)
    return int(m.group(1)) if m else 0


def by_mapping(pid: int, top: int = 8) -> str:
    """Rss (and Pss, shared pages divided among their users) per mapped file, largest first."""
    rss, pss, name = {}, {}, "?"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if "-" in parts[0] and len(parts) >= 5 and not parts[0].endswith(":"):
            name = Path(parts[5]).name if len(parts) >= 6 else "[anon]"
        elif parts[0] == "Rss:":
            rss[name] = rss.get(name, 0) + int(parts[1])
        elif parts[0] == "Pss:":
            pss[name] = pss.get(name, 0) + int(parts[1])
    items = sorted(rss.items(), key=lambda kv: -kv[1])[:top]
    return ", ".join(f"{k} {v / 1024:.1f} (Pss {pss.get(k, 0) / 1024:.1f})" for k, v in items) + \
        f"; Pss total {sum(pss.values()) / 1024:.1f} MiB"


def snapshot(pid: int) -> str:
    return (f"VmRSS {mib(status_kib(pid, 'VmRSS'))} (RssAnon {mib(status_kib(pid, 'RssAnon'))}, "
            f"RssFile {mib(status_kib(pid, 'RssFile'))}, [heap] {mib(heap_kib(pid))}), "
            f"threads {status_kib(pid, 'Threads')}")


class Sampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, status_kib(self.pid, "VmRSS"))


def gdb_call(pid: int, expr: str) -> None:
    subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx", "-ex", f"call {expr}"],
                   capture_output=True, text=True, timeout=120, check=True)


def malloc_report(d, pid: int) -> "list[str]":
    mark = d.mark()
    gdb_call(pid, "(void)malloc_stats()")
    d.wait_for(r"^Total \(incl\. mmap\):", since=mark, timeout=10)
    d.wait_for(r"max mmap bytes", since=mark, timeout=10)
    out = ["  malloc_stats() (glibc: system bytes = from the kernel, in use = live allocations):"]
    out += ["    " + line for line in d.lines[mark:] if re.search(r"Arena|system bytes|in use|mmap", line)]
    gdb_call(pid, "(int)malloc_trim(0)")
    out.append(f"  after malloc_trim(0): {snapshot(pid)}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="stanzad memory: idle, burst peak, 10 s after")
    ap.add_argument("--n", type=int, default=10000, help="messages each way (default 10000)")
    ap.add_argument("--after", type=float, default=10.0, help="seconds after the burst (default 10)")
    ap.add_argument("--malloc", action="store_true", help="malloc_stats and malloc_trim through gdb")
    ctx = ap.parse_args(namespace=Ctx())
    ctx.window, ctx.stall, ctx.pad = 100, 60.0, "x" * 20
    print(f"bench_memory: {machine()}; N={ctx.n} each way; binary {harness.stanzad_bin()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="stanzad-memory-") as tmp:
        tmp = Path(tmp)
        certs = harness.make_ca(tmp / "pki")
        prosody = QuietProsody(tmp / "prosody", certs)
        prosody.register("alice", "alice-pass")
        prosody.register("bob", "bob-pass")
        prosody.start()
        d = None
        try:
            ctx.bob = Bob(prosody, certs.ca_cert)
            config = harness.stanzad_config(tmp / "stanzad", [harness.account_section(
                "home", "alice@localhost", port=prosody.port, ca_file=certs.ca_cert,
                password="alice-pass")], log_level="info")
            d = harness.Stanzad(config, tmp / "stanzad", echo=False).start()
            d.wait_for(harness.rx_online("home"), timeout=20)
            pid = d.proc.pid
            settle(pid, prosody.port, quiet=2.0)
            print(f"idle:            {snapshot(pid)}", flush=True)
            print(f"  Rss by mapping (MiB): {by_mapping(pid)}", flush=True)
            sampler = Sampler(pid)
            sampler.start()
            client = json_client(config)
            try:
                t0 = time.perf_counter()
                json_out(ctx, client, ctx.n)
                json_in(ctx, client, ctx.n)
                elapsed = time.perf_counter() - t0
            finally:
                client.close()
            settle(pid, prosody.port)
            sampler.stop.set()
            sampler.join()
            print(f"burst:           {ctx.n} out + {ctx.n} in in {elapsed:.1f} s, all counted; "
                  f"peak VmRSS {mib(sampler.peak)} (VmHWM {mib(status_kib(pid, 'VmHWM'))})",
                  flush=True)
            time.sleep(ctx.after)  # the figure is "RSS this long after the burst"
            print(f"{ctx.after:g} s after:     {snapshot(pid)}", flush=True)
            print(f"  Rss by mapping (MiB): {by_mapping(pid)}", flush=True)
            if ctx.malloc:
                print("\n".join(malloc_report(d, pid)), flush=True)
        finally:
            if d:
                d.stop(10)
            if getattr(ctx, "bob", None):
                ctx.bob.peer.close()
            prosody.stop()
    print(f"end: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
