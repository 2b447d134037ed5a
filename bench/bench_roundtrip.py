#!/usr/bin/python3
"""Round trips through the JSON socket: throughput, latency and memory of stanzad.

Usage (after `make build`; Debian's python3, which has slixmpp):

    /usr/bin/python3 bench/bench_roundtrip.py                 # N=10000, window 100
    /usr/bin/python3 bench/bench_roundtrip.py --n 2000 --window 10 --window-on echo
    /usr/bin/python3 bench/bench_roundtrip.py --no-mam --state-dir /dev/shm/x

What it does: starts a throwaway Prosody on loopback (MAM on, with the archive item limit
raised; its log at info level once it is up), stanzad with alice as account "home", and
bob as a slixmpp echo peer in a separate process (every chat message comes straight back).
A JSON client then sends N messages to bob through the socket as fast as the daemon takes
them, keeping up to W requests in flight: with --window-on reply (default) "in flight"
means "no reply yet" (the daemon's acceptance rate; round trips queue up behind the
slowest stage), with --window-on echo it means "not back yet" (a bounded load, for
latency). For every message it measures the time from writing the `send` request to
reading the echoed `message` event (matched by the sequence number in the body).

Prints N, elapsed time, round trips per second, latency p50/p90/p99/max, stanzad's peak
RSS (VmHWM) and RssAnon at the end, and the CPU each process used during the run (time
on CPU of its threads from /proc/PID/task/*/schedstat: stanzad, prosody, the echo peer,
this client), so the
bottleneck shows. Every run also checks that each message came back exactly once.

Environment: STANZAD_BIN as for the tests (default build/daemon/stanzad).
"""

import argparse
import contextlib
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
import harness  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- /proc helpers
def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (10 ms ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def oncpu_seconds(pid: int) -> float:
    """The time on CPU of a process, in seconds: the first field of
    /proc/PID/task/TID/schedstat (ns) summed over its threads; cpu_seconds() where
    schedstat is missing. Ticks are too coarse for a gateway that spends a few
    microseconds per message (bitlbee relays 10,000 messages in a handful of ticks). A
    thread that ends between two readings takes its time with it: the processes measured
    here keep their threads."""
    try:
        return sum(int((task / "schedstat").read_text().split()[0])
                   for task in Path(f"/proc/{pid}/task").iterdir()) / 1e9
    except (FileNotFoundError, ValueError, IndexError):
        return cpu_seconds(pid)


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def percentile(sorted_values: list, p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


# -- the echo peer, in its own process (so its CPU is its own)
def echo_peer_main(port: int, ca: str, password: str) -> int:
    peer = harness.Peer("bob@localhost", password, ca, port)

    def echo(msg) -> None:  # on the peer's loop thread
        if msg["type"] in ("chat", "normal") and msg["body"]:
            peer.xmpp.make_message(mto=msg["from"], mbody=msg["body"], mtype="chat").send()
        with peer._msg_cond:
            peer.messages.clear()  # the harness keeps every message; not needed here

    peer.message_hooks.append(echo)
    print(peer.full_jid, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    peer.close()
    return 0


class QuietProsody(harness.Prosody):
    """The harness's Prosody with its log at info level (per-stanza debug logging would
    cost the server more CPU than the stanzas). The harness recognises a started Prosody
    by a debug line; this one is ready when its c2s port accepts connections."""

    def config_text(self) -> str:
        return super().config_text().replace('levels = { min = "debug" }',
                                             'levels = { min = "info" }')

    def _start_once(self, timeout: float) -> None:
        self.write_config()
        self._console = open(self.console_path, "ab")
        self.proc = harness._spawn(["prosody", "--config", self.config_path, "-F"],
                                   stdout=self._console, stderr=subprocess.STDOUT,
                                   cwd=self.workdir)
        harness._track(self)

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: prosody exited with {self.proc.returncode}\n"
                                 f"{self.console_text()}\n{self.log_text()[-3000:]}")
            return harness.port_accepts(self.port)
        harness.poll_until(ready, timeout, f"prosody on port {self.port}")


def arguments(description: str, window_on_help: str) -> argparse.Namespace:
    """The options every round-trip benchmark takes."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--n", type=int, default=10000, help="messages (default 10000)")
    ap.add_argument("--window", type=int, default=100, help="in flight (default 100)")
    ap.add_argument("--window-on", choices=("reply", "echo"), default="reply", help=window_on_help)
    ap.add_argument("--body-size", type=int, default=32, help="body bytes (default 32)")
    ap.add_argument("--no-mam", action="store_true", help="Prosody without mod_mam")
    ap.add_argument("--log-level", default="info", help="stanzad log level (default info)")
    ap.add_argument("--state-dir", help="stanzad's state_dir (default: in the temp dir)")
    ap.add_argument("--stall", type=float, default=30.0,
                    help="give up after this many seconds without progress")
    ap.add_argument("--echo-peer", nargs=3, metavar=("PORT", "CA", "PASSWORD"),
                    help=argparse.SUPPRESS)
    return ap.parse_args()


@contextlib.contextmanager
def bench_world(args: argparse.Namespace, prefix: str, extra_config: Optional[dict] = None,
                prosody_port: Optional[int] = None):
    """A quiet Prosody (its c2s on `prosody_port` when given, else a free port), bob as an
    echo peer in his own process, and stanzad online as alice (with `extra_config`
    sections added); yields (daemon, config, prosody, peer process, bob's full JID) and
    stops them all at the end."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        tmp = Path(tmp)
        certs = harness.make_ca(tmp / "pki")
        modules = [m for m in harness.Prosody.DEFAULT_MODULES
                   if not (args.no_mam and m == "mam")]
        prosody = QuietProsody(tmp / "prosody", certs, modules=modules, port=prosody_port)
        prosody.register("alice", "alice-pass")
        prosody.register("bob", "bob-pass")
        prosody.start()
        d = peer_proc = None
        try:
            peer_proc = harness._spawn(
                [sys.executable, Path(__file__).resolve(), "--echo-peer", prosody.port,
                 certs.ca_cert, "bob-pass"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            ready, _, _ = select.select([peer_proc.stdout], [], [], 20)
            bob_jid = peer_proc.stdout.readline().decode().strip() if ready else ""
            if not bob_jid:
                raise SystemExit("bench: the echo peer did not log in")

            overrides = {"log_level": args.log_level}
            if args.state_dir:
                overrides["state_dir"] = args.state_dir
            account_extra = {"chat_markers": True} if getattr(args, "chat_markers", False) else {}
            config = harness.stanzad_config(tmp / "stanzad", [harness.account_section(
                "home", "alice@localhost", port=prosody.port, ca_file=certs.ca_cert,
                password="alice-pass", **account_extra)], **overrides)
            config.update(extra_config or {})
            d = harness.Stanzad(config, tmp / "stanzad", echo=False).start()
            d.wait_for(harness.rx_listening(), timeout=10)
            d.wait_for(harness.rx_online("home"), timeout=20)
            yield d, config, prosody, peer_proc, bob_jid
        finally:
            if d:
                d.stop(10)
            if peer_proc:
                with_timeout_close(peer_proc)
            prosody.stop()


def main() -> int:
    args = arguments("stanzad JSON-socket round-trip benchmark",
                     "what counts as in flight: no reply yet (default) or not echoed yet")
    if args.echo_peer:
        return echo_peer_main(int(args.echo_peer[0]), args.echo_peer[1], args.echo_peer[2])
    with bench_world(args, "stanzad-bench-") as (d, config, prosody, peer_proc, bob_jid):
        client = harness.JsonClient(config["daemon"]["socket"], timeout=30, name="bench")
        try:
            hello = client.hello("bench", replay=False)
            if not hello.get("ok"):
                raise SystemExit(f"bench: hello failed: {hello}")
            result = run(args, client, bob_jid, d, prosody, peer_proc)
        finally:
            client.close()
    print(result)
    return 0


def with_timeout_close(proc: subprocess.Popen) -> None:
    try:
        proc.stdin.close()
        proc.wait(10)
    except Exception:
        proc.kill()
        proc.wait()


def run(args, client: "harness.JsonClient", bob_jid: str, d, prosody, peer_proc) -> str:
    n, window = args.n, args.window
    pad = "x" * max(0, args.body_size - len(f"bench {n} "))
    t_write = [0.0] * n
    latency = [None] * n
    replies = echoes = duplicates = errors = sents = 0
    next_i = 0
    pids = {"stanzad": d.proc.pid, "prosody": prosody.proc.pid,
            "echo peer (slixmpp)": peer_proc.pid, "this client": os.getpid()}
    cpu0 = {k: oncpu_seconds(p) for k, p in pids.items()}
    start = time.perf_counter()
    last_progress = start
    first_error = None
    while echoes < n:
        in_flight = next_i - (replies if args.window_on == "reply" else echoes)
        while next_i < n and in_flight < window:
            t_write[next_i] = time.perf_counter()
            client.send_json({"op": "send", "id": next_i, "account": "home", "to": bob_jid,
                              "body": f"bench {next_i} {pad}"})
            next_i += 1
            in_flight += 1
        objs = client.read_some(1.0)
        now = time.perf_counter()
        if client.eof:
            raise SystemExit("bench: the daemon closed the connection")
        for obj in objs:
            if "event" not in obj:
                replies += 1
                if not obj.get("ok"):
                    errors += 1
                    first_error = first_error or obj
            elif obj["event"] == "message" and not obj.get("outgoing"):
                body = obj.get("body", "")
                if not body.startswith("bench "):
                    continue
                i = int(body.split()[1])
                if latency[i] is None:
                    latency[i] = now - t_write[i]
                    echoes += 1
                else:
                    duplicates += 1
            elif obj["event"] == "message-state" and obj.get("state") == "sent":
                sents += 1
        # The client keeps everything by default; a benchmark must not grow.
        client.events.clear()
        client.replies.clear()
        client._pending.clear()
        if objs:
            last_progress = now
        elif now - last_progress > args.stall:
            raise SystemExit(f"bench: no progress for {args.stall:g}s: sent {next_i}, "
                             f"replies {replies}, echoes {echoes}")
    elapsed = time.perf_counter() - start
    cpu = {k: oncpu_seconds(p) - cpu0[k] for k, p in pids.items()}
    lines = report(
        f"stanzad round trips through the JSON socket (alice -> Prosody -> bob echoes -> "
        f"alice), window {window} on {args.window_on}, body {args.body_size} bytes, "
        f"MAM {'off' if args.no_mam else 'on'}",
        n, elapsed, latency, d.proc.pid, cpu,
        f"replies {replies} (errors {errors}), sent states {sents}, duplicate echoes {duplicates}")
    if first_error:
        lines.append(f"  first error: {first_error}")
    if duplicates or errors:
        lines.append("  FAILED: errors or duplicates")
    return "\n".join(lines)


def report(title: str, n: int, elapsed: float, latency: list, pid: int, cpu: dict,
           checks: str, gateway: str = "stanzad") -> "list[str]":
    """The lines every round-trip benchmark prints: throughput, latency percentiles,
    the gateway's (stanzad's, or bitlbee's for bench_compare) memory, the checks, and the
    CPU of each process with where the time goes."""
    hwm, anon, rss = (status_kib(pid, f) for f in ("VmHWM", "RssAnon", "VmRSS"))
    lat_ms = sorted(x * 1000 for x in latency)
    lines = [
        title,
        f"  N                {n}",
        f"  elapsed          {elapsed:.2f} s",
        f"  round trips/s    {n / elapsed:.0f}",
        f"  latency ms       p50 {percentile(lat_ms, 50):.2f}  p90 {percentile(lat_ms, 90):.2f}"
        f"  p99 {percentile(lat_ms, 99):.2f}  max {lat_ms[-1]:.2f}",
        f"  over 35 ms       {sum(1 for x in lat_ms if x >= 35)} of {n} (a delayed-ACK stall is 40 ms)",
        "  over 35 ms at    " + (", ".join([f"#{i} {x * 1000:.1f} ms" for i, x in enumerate(latency)
                                           if x is not None and x * 1000 >= 35][:10]) or "-"),
        f"  {gateway + ' memory':16s} VmHWM {hwm / 1024:.1f} MiB, RssAnon {anon / 1024:.1f} MiB "
        f"(VmRSS now {rss / 1024:.1f} MiB)",
        f"  checks           {checks}",
        "  CPU during the run (100% = one core of " + str(os.cpu_count()) + "):",
    ]
    for k, secs in sorted(cpu.items(), key=lambda kv: -kv[1]):
        lines.append(f"    {k:22s} {secs:8.3f} s  {100 * secs / elapsed:5.0f}%")
    top, top_secs = max(cpu.items(), key=lambda kv: kv[1])
    total = sum(cpu.values())
    if top_secs / elapsed > 0.85:
        lines.append(f"  where the time goes: {top} is saturated (one core); it sets the pace")
    elif total / elapsed > 0.85 * (os.cpu_count() or 1):
        lines.append("  where the time goes: all cores busy; the processes share the machine")
    else:
        lines.append(f"  where the time goes: no process saturates a core ({top} is busiest);"
                     f" the rest is waiting (fsync of the store, scheduling, round trips)")
    return lines

if __name__ == "__main__":
    sys.exit(main())
