#!/usr/bin/python3
"""Round trips through the IRC socket: throughput, latency and memory of stanzad's IRC path.

Usage (after `make build`; Debian's python3, which has slixmpp):

    /usr/bin/python3 bench/bench_irc.py                 # N=10000, window 100
    /usr/bin/python3 bench/bench_irc.py --n 2000 --window 10 --window-on echo
    /usr/bin/python3 bench/bench_irc.py --no-mam --state-dir /dev/shm/x

The IRC twin of bench_roundtrip.py (the JSON socket), with the same setup and figures:
a throwaway Prosody on loopback (MAM on, the archive item limit raised; info log once up),
stanzad with alice as account "home" and [irc] listen on a free loopback port, bob as a
slixmpp echo peer in a separate process (every chat message comes straight back). A raw
IRC client registers (PASS, NICK, USER alice@bench; caps echo-message, labeled-response,
message-tags, server-time, batch and draft/chathistory, so that nothing is replayed at
it), puts bob on the roster with `add` in &stanzad, then sends N `@label=i PRIVMSG bob
:bench i ...` lines as fast as the daemon takes them, keeping up to W in flight: with
--window-on reply (default) "in flight" means "not echoed yet" (echo-message: the daemon
has stored the message and shows it back with the label, the IRC counterpart of the JSON
`send` reply), with --window-on echo it means "bob's echo not back yet" (a bounded load,
for latency). For every message it measures the time from writing the PRIVMSG to reading
bob's echo (PRIVMSG from bob, matched by the number in the text). It answers the daemon's
PINGs like any client (they confirm delivery).

Prints N, elapsed time, round trips per second, latency p50/p90/p99/max, stanzad's peak
RSS (VmHWM) and RssAnon at the end, and the CPU each process used during the run, so the
bottleneck shows. Every run also checks that each message came back exactly once and
that each PRIVMSG got its labeled echo once.

Environment: STANZAD_BIN as for the tests (default build/daemon/stanzad).
"""

import os
import select
import socket
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
sys.path.insert(0, str(HERE))
import harness  # noqa: E402
from bench_roundtrip import (arguments, bench_world, oncpu_seconds, echo_peer_main,  # noqa: E402
                             report)

PASSWORD = "bench-irc-pw"
CAPS = "echo-message labeled-response message-tags server-time batch draft/chathistory"


class RawIrc:
    """A minimal IRC connection: lines out, lines in (bytes, without CR LF)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection((harness.LOOPBACK, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        self.out = bytearray()
        self.backlog: "list[bytes]" = []  # lines read but not yet consumed by wait()

    def queue(self, line: str) -> None:
        self.out += line.encode() + b"\r\n"

    def flush(self) -> None:
        if self.out:
            self.sock.sendall(self.out)
            self.out.clear()

    def send(self, line: str) -> None:
        self.queue(line)
        self.flush()

    def read_some(self, timeout: float) -> "list[bytes]":
        if self.backlog:
            lines, self.backlog = self.backlog, []
            return lines
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return []
        data = self.sock.recv(1 << 20)
        if not data:
            self.eof = True
            return []
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        return [l.rstrip(b"\r") for l in lines if l.strip()]

    def wait(self, predicate, timeout: float, what: str) -> bytes:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.read_some(max(0.0, deadline - time.monotonic()))
            for k, line in enumerate(lines):
                if line.startswith(b"PING ") or b" PING " in line.split(b" :", 1)[0]:
                    self.send("PONG :" + line.rsplit(b" ", 1)[-1].lstrip(b":").decode())
                if predicate(line):
                    self.backlog = lines[k + 1:]
                    return line
            if self.eof:
                break
        raise SystemExit(f"bench: no {what} from the IRC socket")


def split_line(line: bytes) -> "tuple[dict, bytes, bytes, list]":
    """(tags, source, command, params) of one IRC line; tag values left escaped."""
    tags = {}
    if line.startswith(b"@"):
        section, line = line[1:].split(b" ", 1)
        for t in section.split(b";"):
            k, _, v = t.partition(b"=")
            tags[k] = v
    source = b""
    if line.startswith(b":"):
        source, line = line[1:].split(b" ", 1)
    head, sep, trailing = line.partition(b" :")
    parts = head.split()
    params = parts[1:] + ([trailing] if sep else [])
    return tags, source, parts[0] if parts else b"", params


def register(irc: RawIrc) -> None:
    """Register as alice with the caps that keep replay away, and have bob in &stanzad."""
    irc.send("CAP LS 302")
    irc.send(f"PASS {PASSWORD}")
    irc.send("NICK alice")
    irc.send("USER alice@bench 0 * :bench")
    irc.send(f"CAP REQ :{CAPS}")
    irc.wait(lambda l: b" ACK " in l, 10, "CAP ACK")
    irc.send("CAP END")
    names = []  # RPL_NAMREPLY lines of &stanzad, up to RPL_ENDOFNAMES
    irc.wait(lambda l: (names.append(l) if b" 353 " in l else None) or b" 366 " in l, 10,
             "the names of &stanzad")
    nicks = {n.lstrip(b"~&@%+") for l in names for n in l.rsplit(b" :", 1)[-1].split()}
    if b"bob" not in nicks:
        irc.send("PRIVMSG &stanzad :add bob@localhost")
        irc.wait(lambda l: l.startswith(b":bob!") and b" JOIN " in l, 10, "bob joining &stanzad")


def main() -> int:
    args = arguments("stanzad IRC-socket round-trip benchmark",
                     "what counts as in flight: not echoed by the daemon yet (default)"
                     " or not echoed by bob yet")
    if args.echo_peer:
        return echo_peer_main(int(args.echo_peer[0]), args.echo_peer[1], args.echo_peer[2])
    irc_port = harness.free_port()
    irc_section = {"irc": {"listen": f"{harness.LOOPBACK}:{irc_port}", "password": PASSWORD}}
    with bench_world(args, "stanzad-bench-irc-", irc_section) as (d, _config, prosody, peer_proc, _bob):
        d.wait_for(r"stanzad: IRC on ", timeout=10)
        irc = RawIrc(irc_port)
        try:
            register(irc)
            result = run(args, irc, d, prosody, peer_proc)
        finally:
            irc.sock.close()
    print(result)
    return 0


def run(args, irc: RawIrc, d, prosody, peer_proc, gateway: str = "stanzad",
        labels_expected: bool = True) -> str:
    """N PRIVMSGs to bob through the IRC server `d` (anything with .proc.pid: stanzad, or
    bitlbee for bench_compare, which has no message tags, echo-message or labels: then
    labels_expected=False, the PRIVMSGs go without a label, and --window-on must be echo)."""
    n, window = args.n, args.window
    if not labels_expected and args.window_on != "echo":
        raise SystemExit("bench: without labeled echoes the window can only count bob's echoes")
    pad = "x" * max(0, args.body_size - len(f"bench {n} "))
    t_write = [0.0] * n
    latency = [None] * n
    echoed_by_daemon = [False] * n
    labels = echoes = duplicates = dup_labels = fails = pings = 0
    next_i = 0
    pids = {gateway: d.proc.pid, "prosody": prosody.proc.pid,
            "echo peer (slixmpp)": peer_proc.pid, "this client": os.getpid()}
    cpu0 = {k: oncpu_seconds(p) for k, p in pids.items()}
    start = time.perf_counter()
    last_progress = start
    first_error = None
    while echoes < n:
        in_flight = next_i - (labels if args.window_on == "reply" else echoes)
        while next_i < n and in_flight < window:
            t_write[next_i] = time.perf_counter()
            irc.queue((f"@label={next_i} " if labels_expected else "")
                      + f"PRIVMSG bob :bench {next_i} {pad}")
            next_i += 1
            in_flight += 1
        irc.flush()
        lines = irc.read_some(1.0)
        now = time.perf_counter()
        if irc.eof:
            raise SystemExit("bench: the daemon closed the IRC connection")
        for line in lines:
            tags, source, command, params = split_line(line)
            if command == b"PING":
                irc.queue("PONG :" + (params[-1].decode() if params else ""))
                pings += 1
            elif command == b"PRIVMSG" and len(params) == 2 and params[1].startswith(b"bench "):
                i = int(params[1].split()[1])
                if source.startswith(b"bob!"):
                    if latency[i] is None:
                        latency[i] = now - t_write[i]
                        echoes += 1
                    else:
                        duplicates += 1
                elif b"label" in tags:
                    if echoed_by_daemon[i]:
                        dup_labels += 1
                    else:
                        echoed_by_daemon[i] = True
                        labels += 1
            elif command in (b"FAIL", b"ERROR") or (len(command) == 3 and command[:1] in b"45"):
                fails += 1
                first_error = first_error or line.decode(errors="replace")
                if b"label" in tags:  # a refused PRIVMSG answers with its label
                    labels += 1
        irc.flush()
        if lines:
            last_progress = now
        elif now - last_progress > args.stall:
            raise SystemExit(f"bench: no progress for {args.stall:g}s: sent {next_i}, "
                             f"echoed by the daemon {labels}, by bob {echoes}")
    elapsed = time.perf_counter() - start
    cpu = {k: oncpu_seconds(p) - cpu0[k] for k, p in pids.items()}
    lines = report(
        f"{gateway} round trips through its IRC socket (an IRC client -> {gateway} -> "
        f"Prosody -> bob echoes -> {gateway} -> IRC), window {window} on {args.window_on}, "
        f"body {args.body_size} bytes, MAM {'off' if args.no_mam else 'on'}",
        n, elapsed, latency, d.proc.pid, cpu,
        f"labeled echoes {labels} (duplicates {dup_labels}), errors {fails}, "
        f"duplicate echoes from bob {duplicates}, PINGs answered {pings}", gateway)
    if first_error:
        lines.append(f"  first error: {first_error}")
    if duplicates or fails or dup_labels or labels != (n if labels_expected else 0):
        lines.append("  FAILED: errors, duplicates or missing labeled echoes")
    return "\n".join(lines)

if __name__ == "__main__":
    sys.exit(main())
