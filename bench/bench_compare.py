#!/usr/bin/python3
"""stanzad side by side with a reference, in one run: the ratios the README quotes.

Usage (after `make build`; Debian's python3, which has slixmpp):

    /usr/bin/python3 bench/bench_compare.py                      # 3 rounds, N=10000, 500 echoes
    /usr/bin/python3 bench/bench_compare.py --rounds 1 --n 1000 --echoes 200

One quiet Prosody on loopback (MAM on) and bob, a slixmpp echo peer in his own process
(every chat message comes straight back), serve every contender in turn, round after
round, so that a slow moment of the machine hits them alike:

- direct: carol, a slixmpp client in this process, talking to bob with no gateway (the
  reference: what a client on the same server and machine does without stanzad);
- json:   alice's stanzad through the JSON socket (`send` requests, `message` events);
- irc:    the same daemon through its IRC socket (PRIVMSG to bob, PONG to its PINGs).

Each contender does two things per round:
- burst: N messages to bob with up to W (default 100) not yet echoed, timed until the
  last echo is back: messages per second, and the CPU the gateway spent per message;
- echo:  M messages one at a time (the next leaves when the previous is back): the round
  trip's p50/p90/p99.

Prints each round, then the medians over the rounds and each stanzad figure as a ratio of
the direct client's (throughput: stanzad / direct, higher is better; latency: stanzad -
direct in ms). Every message is counted by its number: a loss or a duplicate fails the run.
Environment: STANZAD_BIN as for the tests (default build/daemon/stanzad).
"""

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
sys.path.insert(0, str(HERE))
import harness  # noqa: E402
import bench_irc  # noqa: E402
import bench_roundtrip  # noqa: E402
from bench_roundtrip import cpu_seconds, percentile  # noqa: E402


def phase_args(args, n: int, window: int) -> argparse.Namespace:
    """The options bench_roundtrip.run / bench_irc.run read, for one measurement."""
    return argparse.Namespace(n=n, window=window, window_on="echo", body_size=args.body_size,
                              no_mam=False, stall=args.stall)


class Direct:
    """carol, a slixmpp client talking to bob directly: the same burst and echoes."""

    def __init__(self, prosody, bob_jid: str):
        self.bob = bob_jid
        self.peer = harness.Peer("carol@localhost", "carol-pass", prosody.certs.ca_cert,
                                 prosody.port)
        self.pending = None

        def on_message(msg) -> None:  # on the peer's loop thread
            with self.peer._msg_cond:
                self.peer.messages.clear()
            body = msg["body"]
            if self.pending and body.startswith("bench "):
                self.pending(int(body.split()[1]))

        self.peer.message_hooks.append(on_message)

    def run(self, n: int, window: int, body_size: int, stall: float) -> dict:
        pad = "x" * max(0, body_size - len(f"bench {n} "))
        loop = self.peer.loop
        t_write = [0.0] * n
        latency = [None] * n
        state = {"next": 0, "echoes": 0, "duplicates": 0}
        done = None

        def send_one() -> None:
            i = state["next"]
            state["next"] += 1
            t_write[i] = time.perf_counter()
            self.peer.xmpp.make_message(mto=self.bob, mbody=f"bench {i} {pad}", mtype="chat").send()

        def echoed(i: int) -> None:
            if latency[i] is not None:
                state["duplicates"] += 1
                return
            latency[i] = time.perf_counter() - t_write[i]
            state["echoes"] += 1
            if state["next"] < n:
                send_one()
            elif state["echoes"] == n and not done.done():
                done.set_result(True)

        async def drive() -> None:
            nonlocal done
            done = loop.create_future()
            self.pending = echoed
            for _ in range(min(window, n)):
                send_one()
            await asyncio.wait_for(done, stall + n / 100)

        cpu0 = cpu_seconds(os.getpid())
        start = time.perf_counter()
        self.peer._call(drive(), stall + n / 100 + 5)
        elapsed = time.perf_counter() - start
        self.pending = None
        return {"elapsed": elapsed, "latency": latency, "duplicates": state["duplicates"],
                "cpu": cpu_seconds(os.getpid()) - cpu0}

    def close(self) -> None:
        self.peer.close()


def parse_report(text: str) -> dict:
    """The figures of a bench_roundtrip.report() text (the stanzad runs print it)."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if line.startswith("  elapsed"):
            out["elapsed"] = float(parts[1])
        elif line.startswith("  latency ms"):
            out["p50"], out["p90"], out["p99"] = float(parts[3]), float(parts[5]), float(parts[7])
        elif line.startswith("    stanzad "):
            out["cpu"] = float(parts[1])
        elif "FAILED" in line:
            raise SystemExit("bench: a stanzad run lost or duplicated messages:\n" + text)
    return out


def figures_of_direct(result: dict, n: int) -> dict:
    if result["duplicates"] or any(x is None for x in result["latency"]):
        raise SystemExit("bench: the direct client lost or duplicated messages")
    lat = sorted(x * 1000 for x in result["latency"])
    return {"elapsed": result["elapsed"], "p50": percentile(lat, 50), "p90": percentile(lat, 90),
            "p99": percentile(lat, 99), "cpu": result["cpu"], "n": n}


def main() -> int:
    ap = argparse.ArgumentParser(description="stanzad vs a direct slixmpp client, one run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=10000, help="burst messages (default 10000)")
    ap.add_argument("--window", type=int, default=100, help="burst: not yet echoed (default 100)")
    ap.add_argument("--echoes", type=int, default=500, help="one-at-a-time round trips (default 500)")
    ap.add_argument("--body-size", type=int, default=32)
    ap.add_argument("--stall", type=float, default=30.0)
    args = ap.parse_args()
    world_args = argparse.Namespace(no_mam=False, log_level="info", state_dir=None)
    irc_port = harness.free_port()
    irc_section = {"irc": {"listen": f"{harness.LOOPBACK}:{irc_port}",
                           "password": bench_irc.PASSWORD}}
    rows = {k: [] for k in ("direct burst", "json burst", "irc burst",
                            "direct echo", "json echo", "irc echo")}
    with bench_roundtrip.bench_world(world_args, "stanzad-compare-", irc_section) as (
            d, config, prosody, peer_proc, bob_jid):
        d.wait_for(r"stanzad: IRC on ", timeout=10)
        prosody.register("carol", "carol-pass")
        direct = Direct(prosody, bob_jid)
        try:
            for r in range(args.rounds):
                print(f"round {r + 1} of {args.rounds}", flush=True)
                for what, n, window in (("burst", args.n, args.window), ("echo", args.echoes, 1)):
                    res = figures_of_direct(direct.run(n, window, args.body_size, args.stall), n)
                    rows[f"direct {what}"].append(res)
                    pa = phase_args(args, n, window)
                    rows[f"json {what}"].append(dict(parse_report(run_json(pa, config, bob_jid, d, prosody, peer_proc)), n=n))
                    rows[f"irc {what}"].append(dict(parse_report(run_irc(pa, irc_port, d, prosody, peer_proc)), n=n))
                    for k in ("direct", "json", "irc"):
                        f = rows[f"{k} {what}"][-1]
                        print(f"  {what:5s} {k:6s} {n / f['elapsed']:8.0f} msg/s  p50 {f['p50']:6.2f}"
                              f"  p90 {f['p90']:6.2f}  p99 {f['p99']:6.2f} ms  CPU {f['cpu']:.2f} s", flush=True)
        finally:
            direct.close()
    print(summary(rows, args))
    return 0


def run_json(pa, config, bob_jid, d, prosody, peer_proc) -> str:
    client = harness.JsonClient(config["daemon"]["socket"], timeout=30, name="bench")
    try:
        hello = client.hello("bench", replay=False)
        if not hello.get("ok"):
            raise SystemExit(f"bench: hello failed: {hello}")
        return bench_roundtrip.run(pa, client, bob_jid, d, prosody, peer_proc)
    finally:
        client.close()


def run_irc(pa, port, d, prosody, peer_proc) -> str:
    irc = bench_irc.RawIrc(port)
    try:
        bench_irc.register(irc)
        return bench_irc.run(pa, irc, d, prosody, peer_proc)
    finally:
        irc.send("QUIT :bench")
        irc.sock.close()


def summary(rows: dict, args) -> str:
    med = {k: {f: statistics.median(r[f] for r in v) for f in ("elapsed", "p50", "p90", "p99", "cpu")}
           for k, v in rows.items()}
    cpu_name = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_name = line.split(":", 1)[1].strip()
            break
    load = os.getloadavg()[0]
    lines = [f"\nmedians of {args.rounds} round(s); {os.cpu_count()} x {cpu_name}, "
             f"{platform.system()} {platform.release()}, load average {load:.1f} at the end",
             f"burst: {args.n} messages, {args.window} not yet echoed; echo: {args.echoes} one at a time",
             "",
             "| | burst msg/s | x direct | gateway CPU per message | echo p50 | p90 | p99 (ms) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    d_rate = args.n / med["direct burst"]["elapsed"]
    for k in ("direct", "json", "irc"):
        b, e = med[f"{k} burst"], med[f"{k} echo"]
        rate = args.n / b["elapsed"]
        cpu_us = b["cpu"] / args.n * 1e6
        who = "slixmpp client, this process" if k == "direct" else "stanzad"
        lines.append(f"| {k} | {rate:.0f} | {rate / d_rate:.2f} | {cpu_us:.0f} us ({who}) "
                     f"| {e['p50']:.2f} | {e['p90']:.2f} | {e['p99']:.2f} |")
    de = med["direct echo"]
    for k in ("json", "irc"):
        e = med[f"{k} echo"]
        lines.append(f"{k}: echo p50 {e['p50'] - de['p50']:+.2f} ms, p99 {e['p99'] - de['p99']:+.2f} ms "
                     f"vs direct")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
