#!/usr/bin/python3
"""Where stanzad's time goes on the relay path, per relayed message: the figures of
docs/performance.md, measured so that the load of the machine does not change them.

Usage (after `make build`; Debian's python3, which has slixmpp; root or
perf_event_paranoid <= 1 for the tracepoints):

    /usr/bin/python3 bench/bench_profile.py                  # counters, N=10000 per phase
    /usr/bin/python3 bench/bench_profile.py --n 2000 --wire  # + XEP-0198 traffic (trace log)
    /usr/bin/python3 bench/bench_profile.py --n 1000 --callgrind   # instructions + top functions

One Prosody on loopback (MAM on, log at info), stanzad online as alice (account "home",
its JSON socket and an IRC socket), and bob, a slixmpp client in this process that only
counts (no echo), so each phase measures one direction alone:

- json-out / irc-out: a front end sends N messages to bob (up to --window without a
  reply / labeled echo); done when bob has all N, each counted by its number;
- json-in / irc-in: bob sends N messages to alice; done when the front end has read all N.

After the count is complete the phase waits until the daemon's XMPP socket has been quiet
for 0.6 s (longer than the 250 ms after which a last XEP-0198 <r/> goes), so the acks
that belong to the burst are counted with it. For each phase it prints, divided by N:

- counters (always): stanzad's syscalls (perf tracepoints raw_syscalls:sys_enter and
  syscalls:sys_enter_{fsync,fdatasync,write,writev,sendmsg,sendto,read,recvfrom,...,
  brk,mmap,munmap,madvise}) and page faults (the allocator giving memory back and taking it again),
  TCP payload bytes and segments on the stanzad <-> Prosody connection (ss -ti:
  bytes_sent/bytes_received/segs_out/segs_in, TLS records included), stanzad's on-CPU
  time (task-clock; this one does depend on the load) and its VmRSS after the phase;
- --wire: the daemon runs with log_level "trace" and the XML it sends and receives is
  counted from its wire log: <message/>, <r/>, <a/>, other elements, plaintext bytes
  (the trace log costs CPU: the counters of a --wire run are not the daemon's normal ones);
- --callgrind: the daemon runs under valgrind --tool=callgrind (callgrind_control zeroes
  the counters before a phase and dumps them after it): instructions (Ir) per message
  and the top functions by self cost (callgrind_annotate), the load-independent figure.
  Under valgrind the daemon is ~50x slower, so its batches (group commit, stanzas per
  read) are larger than at full speed: read these per-message figures as a lower bound.

Every message is counted by its number; a loss or a duplicate stops the run.
Environment: STANZAD_BIN as for the tests (default build/daemon/stanzad).
"""

import argparse
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
sys.path.insert(0, str(HERE))
import harness  # noqa: E402
import bench_irc  # noqa: E402
from bench_roundtrip import QuietProsody, status_kib  # noqa: E402

SYSCALLS = ("fsync", "fdatasync", "write", "writev", "sendmsg", "sendto", "read", "recvfrom",
            "recvmsg", "epoll_wait", "epoll_pwait", "pwrite64", "pread64", "futex", "lseek",
            "brk", "mmap", "munmap", "madvise")
PHASES = ("json-out", "irc-out", "json-in", "irc-in")


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} x {cpu}, {platform.system()} {platform.release()}, load average {load}"


class PerfStat:
    """perf stat on one pid (all its threads) from start() to stop(): {event: count}."""

    def __init__(self, pid: int, workdir: Path):
        self.pid = pid
        self.out = workdir / f"perf-{time.monotonic_ns()}.csv"
        events = ["task-clock", "page-faults", "raw_syscalls:sys_enter"] + [f"syscalls:sys_enter_{s}" for s in SYSCALLS]
        self.proc = subprocess.Popen(["perf", "stat", "-x", ",", "-o", str(self.out), "-e",
                                      ",".join(events), "-p", str(pid)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # perf prints nothing when it has attached; give it the moment it needs to open
        # its counters (a few ms) before the phase begins.
        time.sleep(0.3)

    def stop(self) -> dict:
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=30)
        counts = {}
        for line in self.out.read_text().splitlines():
            parts = line.split(",")
            if len(parts) < 3 or line.startswith("#"):
                continue
            try:
                value = float(parts[0])
            except ValueError:
                raise SystemExit(f"bench: perf could not count {parts[2]}: {line}\n{err.decode()}")
            name = parts[2].replace("syscalls:sys_enter_", "").replace("raw_syscalls:sys_enter", "syscalls")
            counts[name] = value
        return counts


def tcp_counters(pid: int, port: int) -> dict:
    """bytes/segments of the pid's TCP connection to `port` (ss -ti, tcp_info)."""
    text = subprocess.run(["ss", "-tinpH", "state", "established", f"( dport = :{port} )"],
                          capture_output=True, text=True, check=True).stdout
    entries = re.split(r"\n(?=\S)", text.strip())
    for entry in entries:
        if f"pid={pid}," in entry:
            out = {}
            for key in ("bytes_sent", "bytes_received", "segs_out", "segs_in"):
                m = re.search(rf"\b{key}:(\d+)", entry)
                out[key] = int(m.group(1)) if m else 0
            return out
    raise SystemExit(f"bench: no TCP connection of pid {pid} to port {port}:\n{text}")


def settle(pid: int, port: int, quiet: float = 0.6, limit: float = 30.0) -> None:
    """Until the connection's byte counters have not moved for `quiet` seconds."""
    last, since = tcp_counters(pid, port), time.monotonic()
    deadline = since + limit
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = tcp_counters(pid, port)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise SystemExit("bench: the XMPP connection did not go quiet")


class Bob:
    """bob in this process: counts alice's messages by number; sends N on request."""

    def __init__(self, prosody, ca, origin_id: bool = False):
        self.peer = harness.Peer("bob@localhost", "bob-pass", ca, prosody.port)
        # slixmpp then adds an origin-id equal to the id, as Conversations, Dino and Gajim do.
        self.peer.xmpp.use_origin_id = origin_id
        self.seen: set = set()
        self.duplicates = 0
        self.peer.message_hooks.append(self._on_message)

    def _on_message(self, msg) -> None:  # on the peer's loop thread
        with self.peer._msg_cond:
            self.peer.messages.clear()
        body = msg["body"]
        if body.startswith("prof "):
            i = int(body.split()[1])
            if i in self.seen:
                self.duplicates += 1
            self.seen.add(i)

    def send_burst(self, to: str, n: int, pad: str) -> None:
        def go() -> None:
            for i in range(n):
                self.peer.xmpp.make_message(mto=to, mbody=f"prof {i} {pad}", mtype="chat").send()
        self.peer.loop.call_soon_threadsafe(go)


def wait_count(what: str, count, n: int, stall: float, pump=None) -> None:
    last, t_last = -1, time.monotonic()
    while True:
        got = count()
        if got >= n:
            return
        if got != last:
            last, t_last = got, time.monotonic()
        elif time.monotonic() - t_last > stall:
            raise SystemExit(f"bench: {what}: {got} of {n}, no progress for {stall:g}s")
        if pump:
            pump()
        else:
            time.sleep(0.02)


# -- the four phases: each returns when the front end / bob has all N messages
def json_client(config):
    client = harness.JsonClient(config["daemon"]["socket"], timeout=60, name="prof")
    hello = client.hello("prof", replay=False)
    if not hello.get("ok"):
        raise SystemExit(f"bench: hello failed: {hello}")
    return client


def drain_json(client) -> list:
    objs = client.read_some(0.2)
    if client.eof:
        raise SystemExit("bench: the daemon closed the JSON connection")
    client.events.clear()
    client.replies.clear()
    client._pending.clear()
    return objs


def json_out(ctx, client, n: int) -> None:
    sent = replies = 0
    while replies < n:
        while sent < n and sent - replies < ctx.window:
            client.send_json({"op": "send", "id": sent, "account": "home", "to": "bob@localhost",
                              "body": f"prof {sent} {ctx.pad}"})
            sent += 1
        for obj in drain_json(client):
            if "event" not in obj:
                if not obj.get("ok"):
                    raise SystemExit(f"bench: send refused: {obj}")
                replies += 1
    wait_count("bob's messages", lambda: len(ctx.bob.seen), n, ctx.stall)


def json_in(ctx, client, n: int) -> None:
    seen = set()
    ctx.bob.send_burst("alice@localhost", n, ctx.pad)

    def pump() -> None:
        for obj in drain_json(client):
            if obj.get("event") == "message" and not obj.get("outgoing"):
                body = obj.get("body", "")
                if body.startswith("prof "):
                    i = int(body.split()[1])
                    if i in seen:
                        raise SystemExit(f"bench: message {i} twice on the JSON socket")
                    seen.add(i)
    wait_count("JSON message events", lambda: len(seen), n, ctx.stall, pump)


def irc_lines(irc) -> list:
    out = []
    for line in irc.read_some(0.2):
        _tags, source, command, params = bench_irc.split_line(line)
        if command == b"PING":
            irc.send("PONG :" + (params[-1].decode() if params else ""))
        elif command in (b"FAIL", b"ERROR"):
            raise SystemExit(f"bench: IRC error: {line!r}")
        out.append((_tags, source, command, params))
    if irc.eof:
        raise SystemExit("bench: the daemon closed the IRC connection")
    return out


def irc_out(ctx, irc, n: int) -> None:
    sent = labels = 0
    while labels < n:
        while sent < n and sent - labels < ctx.window:
            irc.queue(f"@label={sent} PRIVMSG bob :prof {sent} {ctx.pad}")
            sent += 1
        irc.flush()
        for tags, _source, command, params in irc_lines(irc):
            if command == b"PRIVMSG" and b"label" in tags:
                labels += 1
    wait_count("bob's messages", lambda: len(ctx.bob.seen), n, ctx.stall)


def irc_in(ctx, irc, n: int) -> None:
    seen = set()
    ctx.bob.send_burst("alice@localhost", n, ctx.pad)

    def pump() -> None:
        for _tags, source, command, params in irc_lines(irc):
            if command == b"PRIVMSG" and source.startswith(b"bob!") and len(params) == 2 \
                    and params[1].startswith(b"prof "):
                i = int(params[1].split()[1])
                if i in seen:
                    raise SystemExit(f"bench: message {i} twice on the IRC socket")
                seen.add(i)
    wait_count("IRC PRIVMSGs", lambda: len(seen), n, ctx.stall, pump)


# -- measuring one phase
WIRE = re.compile(r"(SEND|RECV) (<.*)$")


def wire_counts(lines: "list[str]") -> dict:
    c = {"SEND message": 0, "SEND r": 0, "SEND a": 0, "SEND other": 0, "SEND bytes": 0,
         "RECV message": 0, "RECV r": 0, "RECV a": 0, "RECV other": 0, "RECV bytes": 0}
    for line in lines:
        m = WIRE.search(line)
        if not m:
            continue
        way, xml = m.group(1), m.group(2)
        c[f"{way} bytes"] += len(xml.encode())
        for el in re.findall(r"<(message|r|a)[ />]", xml) or ["other"]:
            c[f"{way} {el}"] += 1
    return c


def callgrind_dump(ctx, label: str) -> dict:
    before = set(ctx.tmp.glob("callgrind.out.*"))
    subprocess.run(["callgrind_control", "-d", label, str(ctx.pid)], check=True,
                   stdout=subprocess.DEVNULL)
    new = sorted(set(ctx.tmp.glob("callgrind.out.*")) - before, key=lambda p: p.stat().st_mtime)
    if not new:
        raise SystemExit("bench: callgrind wrote no dump")
    total, by_fn, by_obj = self_costs(new[-1])
    top = sorted(by_fn.items(), key=lambda kv: -kv[1])[:15]
    if ctx.save:
        Path(ctx.save).mkdir(parents=True, exist_ok=True)
        shutil.copy(new[-1], Path(ctx.save) / f"callgrind.out.{label}")
    return {"Ir": total, "top": top, "objs": sorted(by_obj.items(), key=lambda kv: -kv[1]),
            "file": new[-1]}


def self_costs(path: Path) -> "tuple[int, dict, dict]":
    """Self cost (Ir) per function and per object of a callgrind dump (its format:
    valgrind's docs/callgrind-format), read directly: callgrind_annotate 3.19 put the whole
    of a mid-run dump on the function at the bottom of the stack."""
    names = {"fn": {}, "ob": {}}
    by_fn, by_obj = {}, {}
    fn = ob = "?"
    skip_next = False
    total = 0

    def name(kind: str, value: str) -> str:
        m = re.match(r"\((\d+)\)(?: (.*))?$", value)
        if not m:
            return value
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
        return names[kind].get(m.group(1), value)

    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line[:1].isdigit() or line[:1] in "+-*":
                if skip_next:  # the inclusive cost of the call on the line before
                    skip_next = False
                    continue
                parts = line.split()
                if len(parts) >= 2:
                    ir = int(parts[1])
                    by_fn[fn] = by_fn.get(fn, 0) + ir
                    by_obj[ob] = by_obj.get(ob, 0) + ir
                    total += ir
            elif line.startswith("fn="):
                fn = name("fn", line[3:].strip())
            elif line.startswith("ob="):
                ob = Path(name("ob", line[3:].strip())).name
            elif line.startswith(("cob=", "cfn=")):
                name("ob" if line[1] == "o" else "fn", line[4:].strip())
            elif line.startswith("calls="):
                skip_next = True
    return total, by_fn, by_obj


def measure(ctx, name: str, body) -> dict:
    n = ctx.n
    ctx.bob.seen.clear()
    mark = ctx.d.mark()
    tcp0 = tcp_counters(ctx.pid, ctx.prosody.port)
    if ctx.callgrind:
        subprocess.run(["callgrind_control", "-z", str(ctx.pid)], check=True, stdout=subprocess.DEVNULL)
    perf = None if ctx.callgrind else PerfStat(ctx.pid, ctx.tmp)
    tracer = None
    if ctx.strace:
        tracer = subprocess.Popen(["strace", "-qq", "-f", "-e", "trace=" + ctx.strace_calls, "-o",
                                   f"{ctx.strace}.{name}", "-p", str(ctx.pid)], stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # strace attaches in a moment; it prints nothing when it has
    t0 = time.perf_counter()
    body(n)
    elapsed = time.perf_counter() - t0
    settle(ctx.pid, ctx.prosody.port)
    out = {"elapsed": elapsed, "rss": status_kib(ctx.pid, "VmRSS")}
    if tracer:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(30)
    if perf:
        out["perf"] = perf.stop()
    if ctx.callgrind:
        out["cg"] = callgrind_dump(ctx, name)
    tcp1 = tcp_counters(ctx.pid, ctx.prosody.port)
    out["tcp"] = {k: tcp1[k] - tcp0[k] for k in tcp0}
    if ctx.bob.duplicates:
        raise SystemExit(f"bench: bob got {ctx.bob.duplicates} message(s) twice")
    if ctx.wire:
        out["wire"] = wire_counts(ctx.d.lines[mark:])
    return out


def report(name: str, n: int, r: dict) -> "list[str]":
    lines = [f"{name}: {n} messages in {r['elapsed']:.2f} s ({n / r['elapsed']:.0f}/s), "
             f"VmRSS after {r['rss'] / 1024:.1f} MiB"]
    t = r["tcp"]
    lines.append(f"  XMPP TCP payload per message: sent {t['bytes_sent'] / n:.0f} B, received "
                 f"{t['bytes_received'] / n:.0f} B; segments out {t['segs_out'] / n:.2f}, "
                 f"in {t['segs_in'] / n:.2f}")
    if "perf" in r:
        p = r["perf"]
        per = "  ".join(f"{k} {p[k] / n:.3f}" for k in SYSCALLS if p.get(k))
        lines.append(f"  syscalls per message: {p['syscalls'] / n:.2f} ({per})")
        lines.append(f"  fsync+fdatasync per message: {(p.get('fsync', 0) + p.get('fdatasync', 0)) / n:.4f}"
                     f"; page faults {p.get('page-faults', 0) / n:.3f}"
                     f"; on-CPU {p['task-clock'] * 1000 / n:.1f} us per message (load-dependent)")
    if "wire" in r:
        w = r["wire"]
        lines.append("  XML per message: " + ", ".join(
            f"{k} {w[k] / n:.2f}" for k in w if not k.endswith("bytes")) +
            f"; plaintext sent {w['SEND bytes'] / n:.0f} B, received {w['RECV bytes'] / n:.0f} B")
    if "cg" in r:
        cg = r["cg"]
        lines.append(f"  instructions (callgrind Ir) per message: {cg['Ir'] / n:,.0f}  ({cg['file'].name})")
        lines.append("    by object: " + ", ".join(f"{ob} {100 * ir / cg['Ir']:.1f}%"
                                             for ob, ir in cg["objs"][:8]))
        lines.append("    top functions by self cost (% of Ir, Ir per message):")
        for fn, ir in cg["top"]:
            lines.append(f"    {100 * ir / cg['Ir']:5.1f}%  {ir / n:10,.0f}  {fn[:100]}")
    return lines


class Ctx(argparse.Namespace):
    pass


def start_daemon(ctx, tmp: Path, certs, irc_port: int):
    overrides = {"log_level": "trace" if ctx.wire else "info"}
    config = harness.stanzad_config(tmp / "stanzad", [harness.account_section(
        "home", "alice@localhost", port=ctx.prosody.port, ca_file=certs.ca_cert,
        password="alice-pass")], **overrides)
    config["irc"] = {"listen": f"{harness.LOOPBACK}:{irc_port}", "password": bench_irc.PASSWORD}
    binary = None
    if ctx.callgrind:
        binary = tmp / "stanzad-callgrind"
        binary.write_text("#!/bin/sh\nexec valgrind --tool=callgrind --quiet "
                          f"--callgrind-out-file={tmp}/callgrind.out.%p "
                          f"{harness.stanzad_bin()} \"$@\"\n")
        binary.chmod(0o755)
    d = harness.Stanzad(config, tmp / "stanzad", echo=False, binary=binary).start()
    slow = 20 if ctx.callgrind else 1
    d.wait_for(harness.rx_online("home"), timeout=20 * slow)
    d.wait_for(r"stanzad: IRC on ", timeout=10 * slow)
    return d, config


def run_phases(ctx, config, irc_port: int) -> "list[str]":
    out = []
    for name in ctx.phases:
        if name.startswith("json"):
            client = json_client(config)
            fn = json_out if name == "json-out" else json_in
            try:
                r = measure(ctx, name, lambda n: fn(ctx, client, n))
            finally:
                client.close()
        else:
            irc = bench_irc.RawIrc(irc_port)
            bench_irc.register(irc)
            fn = irc_out if name == "irc-out" else irc_in
            try:
                r = measure(ctx, name, lambda n: fn(ctx, irc, n))
            finally:
                irc.send("QUIT :bench")
                irc.sock.close()
        lines = report(name, ctx.n, r)
        print("\n".join(lines), flush=True)
        out += lines
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="stanzad: costs per relayed message")
    ap.add_argument("--n", type=int, default=10000, help="messages per phase (default 10000)")
    ap.add_argument("--window", type=int, default=100, help="front end: unanswered sends (default 100)")
    ap.add_argument("--body-size", type=int, default=32)
    ap.add_argument("--phases", default=",".join(PHASES), help="comma-separated, of " + ", ".join(PHASES))
    ap.add_argument("--wire", action="store_true", help="count the XML (daemon log at trace)")
    ap.add_argument("--callgrind", action="store_true", help="run the daemon under callgrind")
    ap.add_argument("--strace", metavar="PREFIX",
                    help="also strace each phase into PREFIX.PHASE (slows the daemon: its counters change)")
    ap.add_argument("--strace-calls", default="pwrite64,pread64,fdatasync,fsync,write,writev",
                    help="the syscalls --strace records")
    ap.add_argument("--save", help="copy the callgrind dumps into this directory")
    ap.add_argument("--stall", type=float, default=60.0)
    ap.add_argument("--origin-id", action="store_true",
                    help="bob's messages carry an origin-id equal to their id (XEP-0359), as most clients send")
    ctx = ap.parse_args(namespace=Ctx())
    ctx.phases = [p for p in ctx.phases.split(",") if p]
    if any(p not in PHASES for p in ctx.phases):
        raise SystemExit(f"bench: phases are {', '.join(PHASES)}")
    ctx.pad = "x" * max(0, ctx.body_size - len(f"prof {ctx.n} "))
    print(f"bench_profile: {machine()}; N={ctx.n} per phase, body {ctx.body_size} B, "
          f"{'callgrind' if ctx.callgrind else 'native'}{', wire trace' if ctx.wire else ''}"
          f"{', bob sends origin-ids' if ctx.origin_id else ''}; "
          f"binary {harness.stanzad_bin()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="stanzad-profile-") as tmp:
        tmp = Path(tmp)
        ctx.tmp = tmp
        certs = harness.make_ca(tmp / "pki")
        ctx.prosody = QuietProsody(tmp / "prosody", certs)
        ctx.prosody.register("alice", "alice-pass")
        ctx.prosody.register("bob", "bob-pass")
        ctx.prosody.start()
        d = None
        try:
            ctx.bob = Bob(ctx.prosody, certs.ca_cert, ctx.origin_id)
            irc_port = harness.free_port()
            d, config = start_daemon(ctx, tmp, certs, irc_port)
            ctx.d, ctx.pid = d, d.proc.pid
            print(f"idle VmRSS {status_kib(ctx.pid, 'VmRSS') / 1024:.1f} MiB", flush=True)
            run_phases(ctx, config, irc_port)
        finally:
            if d:
                d.stop(120 if ctx.callgrind else 10)
            if getattr(ctx, "bob", None):
                ctx.bob.peer.close()
            ctx.prosody.stop()
    print(f"end: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
