#!/usr/bin/python3
"""stanzad side by side with references, in one run: the ratios the README quotes.

Usage (after `make build`; Debian's python3, which has slixmpp):

    /usr/bin/python3 bench/bench_compare.py                      # 3 rounds, N=10000, 500 echoes
    /usr/bin/python3 bench/bench_compare.py --rounds 1 --n 1000 --echoes 200
    /usr/bin/python3 bench/bench_compare.py --no-bitlbee         # even when it is installed
    /usr/bin/python3 bench/bench_compare.py --callgrind --n 1000 # instructions per message

One quiet Prosody on loopback (MAM on) and bob, a slixmpp echo peer in his own process
(every chat message comes straight back), serve every contender in turn, round after
round, so that a slow moment of the machine hits them alike:

- direct: carol, a slixmpp client in this process, talking to bob with no gateway (the
  reference: what a client on the same server and machine does without stanzad);
- json:   alice's stanzad through the JSON socket (`send` requests, `message` events);
- irc:    the same daemon through its IRC socket (PRIVMSG to bob, PONG to its PINGs);
- bitlbee: when /usr/sbin/bitlbee is installed (Debian: `apt-get install bitlbee`), a
  private bitlbee (the reference gateway) on loopback, logged in over STARTTLS as dave
  (the server certificate verified against the test CA), driven by the same IRC client
  code as `irc` (bench_irc.run, without message tags: bitlbee 3.6 has no echo-message or
  labels). Its jabber module only connects to ports 5220-5229, so Prosody then listens
  on a free port of that range for every contender. Without bitlbee a line says so and
  the rest runs as before;
- direct-ours (with --direct-ours): carol again, her messages shaped as stanzad's (an id,
  an origin-id, a receipt request, <active/>; <markable/> too with --chat-markers): what
  the shape of our stanzas costs Prosody, told apart from what the gateway costs.

Each contender does two things per round:
- burst: N messages to bob with up to W (default 100) not yet echoed, timed until the
  last echo is back: messages per second, the CPU the gateway spent per message and
  Prosody's CPU per message (time on CPU of every thread, /proc/PID/task/*/schedstat);
- echo:  M messages one at a time (the next leaves when the previous is back): the round
  trip's p50/p90/p99.

Prints each round, then the medians over the rounds and each figure as a ratio of the
direct client's and of bitlbee's (throughput: x / reference, higher is better; gateway CPU:
x / bitlbee, lower is better; latency: x - reference in ms), with the CPU model, kernel and
load average at the start and the end. Every message is counted by its number: a loss or
a duplicate fails the run.

--callgrind: instructions per relayed message instead of time, for stanzad and bitlbee in
the same run, through the same burst (the direct client has no gateway and sits out).
Each gateway runs under `valgrind --tool=callgrind` (its dumps in a temp dir of its own);
for each burst of json, irc and bitlbee the script waits until the gateway's XMPP
connection is quiet, zeroes the counters (callgrind_control -z), runs the burst, waits
until the connection has been quiet again for 0.6 s (so the XEP-0198 acks that belong to
the burst count with it) and dumps them (callgrind_control -d), as bench_profile.py does
and with its functions. It prints the dump's instructions (Ir) / N, where one relayed
message is one message out to bob and his echo back in, the split by shared object, and
stanzad / bitlbee for json and irc. Under valgrind the gateways are ~50x slower: the
defaults become 1 round, N=1000 and no echo phase, the waits for them longer, and their
batches (stanzas per read, group commit) larger than at full speed. bitlbee runs as
always, `-D -n`: Daemon mode serves every client from one process and -n keeps it from
forking into the background, so the process valgrind wraps is the one that handles the
IRC and XMPP connections (ForkDaemon, -F, would serve each client in a child, out of
reach of callgrind_control on the parent's pid); the script checks that it has no child.
bitlbee's IRC client (with or without --callgrind) ends lines with LF alone (LfIrc: bitlbee
3.6 drops a read that begins with the LF of a CR LF split between two reads, which lost
messages 23-34 of every burst of N=1000 or 3000 and left bitlbee out of such runs).
Environment: STANZAD_BIN as for the tests (default build/daemon/stanzad).
"""

import argparse
import asyncio
import contextlib
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
sys.path.insert(0, str(HERE))
import harness  # noqa: E402
import bench_irc  # noqa: E402
import bench_roundtrip  # noqa: E402
from bench_roundtrip import oncpu_seconds, percentile  # noqa: E402
from bench_profile import callgrind_dump, machine, settle  # noqa: E402


def phase_args(args, n: int, window: int) -> argparse.Namespace:
    """The options bench_roundtrip.run / bench_irc.run read, for one measurement."""
    return argparse.Namespace(n=n, window=window, window_on="echo", body_size=args.body_size,
                              no_mam=False, stall=args.stall)


class Direct:
    """carol, a slixmpp client talking to bob directly: the same burst and echoes."""

    def __init__(self, prosody, bob_jid: str):
        self.bob = bob_jid
        self.prosody_pid = prosody.proc.pid
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

    def run(self, n: int, window: int, body_size: int, stall: float,
            children: "list[str] | None" = None) -> dict:
        """`children`: XML elements added to each message, which then also gets an id (as
        stanzad's do); none: slixmpp's plain message."""
        pad = "x" * max(0, body_size - len(f"bench {n} "))
        run_tag = f"d{time.monotonic_ns():x}"
        loop = self.peer.loop
        t_write = [0.0] * n
        latency = [None] * n
        state = {"next": 0, "echoes": 0, "duplicates": 0}
        done = None

        def send_one() -> None:
            i = state["next"]
            state["next"] += 1
            t_write[i] = time.perf_counter()
            msg = self.peer.xmpp.make_message(mto=self.bob, mbody=f"bench {i} {pad}", mtype="chat")
            if children is not None:
                msg_id = f"{run_tag}-{i}"  # never the id of an earlier burst's message
                msg["id"] = msg_id
                for child in children:
                    msg.xml.append(ET.fromstring(child.replace("{id}", msg_id)))
            msg.send()

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

        cpu0 = oncpu_seconds(os.getpid())
        prosody0 = oncpu_seconds(self.prosody_pid)
        start = time.perf_counter()
        self.peer._call(drive(), stall + n / 100 + 5)
        elapsed = time.perf_counter() - start
        self.pending = None
        return {"elapsed": elapsed, "latency": latency, "duplicates": state["duplicates"],
                "cpu": oncpu_seconds(os.getpid()) - cpu0,
                "prosody": oncpu_seconds(self.prosody_pid) - prosody0}

    def close(self) -> None:
        self.peer.close()


class LfIrc(bench_irc.RawIrc):
    """bench_irc's IRC connection with its lines ended by LF alone (bitlbee takes any line
    end). bitlbee 3.6 reads its client 512 bytes at a time and ends a line at CR or LF:
    when a read ends between a CR and its LF, the next one begins with the LF, irc_process
    finds an empty first line and drops the whole read. With N=1000 and 32-byte bodies the
    LF of message 22 falls on byte 1024 of the burst, and messages 23-34 never left
    bitlbee. A lone LF has no CR to be parted from."""

    def queue(self, line: str) -> None:
        self.out += line.encode() + b"\n"


class Bitlbee:
    """A private bitlbee (the reference gateway) on loopback, logged in as dave with bob in
    its contact list, driven by bench_irc's IRC client like the `irc` contender.

    Its own config file, user directory and pid file in `workdir`; `-D -n`: one daemon
    process in the foreground serving every IRC client, so /proc/PID is all of its CPU.
    TLS as for everyone else: STARTTLS to the loopback Prosody (which requires
    encryption), the server certificate verified against the test CA (CAfile). dave is a
    separate account so that neither carol's (direct) nor alice's (stanzad) sessions see
    its messages (carbons are on).

    `wrapper`: the command it runs under (valgrind for --callgrind), with `slow` the
    factor its waits grow by; `irc`: the class of its IRC connection."""

    BIN = shutil.which("bitlbee") or "/usr/sbin/bitlbee"
    # Its jabber module refuses a server port outside 5220-5229 ("Illegal port number"):
    # when bitlbee takes part, Prosody listens on a free port of that range for everyone.
    PORTS = range(5220, 5230)
    PASSWORD = "bench-bitlbee-pw"  # its own `register`, not the XMPP password

    @classmethod
    def installed(cls) -> bool:
        return os.access(cls.BIN, os.X_OK)

    def __init__(self, workdir: Path, prosody, jid: str, password: str,
                 wrapper: "list[str]" = (), slow: float = 1, irc=bench_irc.RawIrc):
        self.slow = slow
        workdir.mkdir(parents=True)
        (workdir / "users").mkdir()
        (workdir / "motd.txt").write_text("bench\n")
        self.port = harness.free_port()
        conf = workdir / "bitlbee.conf"
        conf.write_text(
            "[settings]\n"
            "RunMode = Daemon\n"
            f"DaemonInterface = {harness.LOOPBACK}\n"
            f"DaemonPort = {self.port}\n"
            "AuthMode = Open\n"
            f"ConfigDir = {workdir / 'users'}\n"
            f"PidFile = {workdir / 'bitlbee.pid'}\n"
            f"MotdFile = {workdir / 'motd.txt'}\n"
            f"CAfile = {prosody.certs.ca_cert}\n"
            "PingInterval = 0\n"
            "PingTimeOut = 0\n"
            "[defaults]\n")
        self.log = open(workdir / "bitlbee.log", "ab")
        self.logpath = workdir / "bitlbee.log"
        self.proc = harness._spawn([*wrapper, self.BIN, "-D", "-n", "-v", "-c", conf, "-d", workdir / "users",
                                    "-i", harness.LOOPBACK, "-p", self.port],
                                   stdout=self.log, stderr=subprocess.STDOUT)
        harness._track(self)
        harness.poll_until(lambda: self.proc.poll() is not None or harness.port_accepts(self.port),
                           10 * slow, f"bitlbee on port {self.port}")
        if self.proc.poll() is not None:
            raise SystemExit(f"bench: bitlbee exited with {self.proc.returncode}:\n"
                             + self.logpath.read_text(errors="replace")[-2000:])
        self.version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "bitlbee"],
                                      capture_output=True, text=True).stdout or "?"
        self.irc = irc(self.port)
        self.login(prosody, jid, password)

    def root_says(self, pattern: bytes, what: str, timeout: float = 20) -> bytes:
        """The next message from root in &bitlbee that contains `pattern` (fails on a
        login error)."""
        def match(line: bytes) -> bool:
            if not line.startswith(b":root!") or b" PRIVMSG &bitlbee :" not in line:
                return False
            text = line.split(b" PRIVMSG &bitlbee :", 1)[1]
            if b"Login error" in text or b"Error" in text.split(b" ", 1)[0]:
                raise SystemExit(f"bench: bitlbee: {text.decode(errors='replace')}")
            return pattern in text
        return self.irc.wait(match, timeout * self.slow, f"{what} from bitlbee")

    def login(self, prosody, jid: str, password: str) -> None:
        irc = self.irc
        irc.send("NICK dave")
        irc.send("USER dave 0 * :bench")
        slow = self.slow
        irc.wait(lambda l: b" JOIN " in l and b"&bitlbee" in l, 10 * slow, "JOIN &bitlbee")
        for command, answer in ((f"register {self.PASSWORD}", b"created"),
                                (f"account add jabber {jid} {password}", b"added"),
                                (f"account jabber set port {prosody.port}", b"port"),
                                ("account jabber set tls true", b"tls"),
                                ("account jabber set tls_verify true", b"tls_verify"),
                                ("account jabber on", b"Logged in")):
            irc.send(f"PRIVMSG &bitlbee :{command}")
            self.root_says(answer, f"an answer to {command.split()[0]}")
        irc.send("PRIVMSG &bitlbee :add jabber bob@localhost bob")
        irc.wait(lambda l: l.startswith(b":bob!") and b" JOIN " in l, 20 * slow,
                 "bob joining &bitlbee")
        # bob (slixmpp, auto_subscribe) asks for dave's presence in turn: bitlbee shows it
        # as a question in &bitlbee. Accept it, and wait until one message has made the
        # round trip. (A burst that lost 12 messages in a row, 23-34 of 3000, was bitlbee's
        # split CR LF, see LfIrc, not the login.)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            lines = irc.read_some(max(0.0, deadline - time.monotonic()))
            if any(b"New request" in l for l in lines):
                irc.send("PRIVMSG &bitlbee :yes")
                deadline = time.monotonic() + 2
        irc.send("PRIVMSG bob :warm-up")
        irc.wait(lambda l: l.startswith(b":bob!") and l.endswith(b":warm-up"), 20 * slow,
                 "the warm-up echo")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.irc.send("QUIT :bench")
            self.irc.sock.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
        harness._untrack(self)
        self.log.close()


class Callgrind:
    """The gateways under callgrind (--callgrind): the command one runs under, and the
    instructions of one burst, counted as bench_profile counts a phase (with its
    callgrind_control calls and its reader of the dumps)."""

    SLOW = 20  # what the waits for a gateway are multiplied by (valgrind: 20-50 x slower)

    def __init__(self, save: "str | None" = None):
        # Removed with its dumps when the script exits, however it exits; `save`: a
        # directory the dumps are copied to (for callgrind_annotate).
        self._tmp = tempfile.TemporaryDirectory(prefix="stanzad-compare-callgrind-")
        self.dir = Path(self._tmp.name)
        self.save = save

    def wrapper(self, name: str) -> "list[str]":
        return ["valgrind", "--tool=callgrind", "--quiet",
                f"--callgrind-out-file={self.dir}/callgrind.out.{name}.%p"]

    def stanzad_bin(self, binary: Path) -> Path:
        """A script that runs `binary` under valgrind, for STANZAD_BIN (bench_world starts
        whatever that names); exec, so the daemon keeps the pid the harness knows."""
        script = self.dir / "stanzad-callgrind"
        script.write_text("#!/bin/sh\nexec " + shlex.join(self.wrapper("stanzad") + [str(binary)])
                          + ' "$@"\n')
        script.chmod(0o755)
        return script

    @contextlib.contextmanager
    def burst(self, pid: int, prosody_port: int, label: str, out: list):
        """Counts the instructions of `pid` in the with block, appended to `out` as
        bench_profile.callgrind_dump returns them. Zeroed once its XMPP connection is
        quiet (the login, the front end's hello stay out); dumped once it has been quiet
        again after the block, so the XEP-0198 acks of the burst count with it."""
        settle(pid, prosody_port)
        subprocess.run(["callgrind_control", "-z", str(pid)], check=True,
                       stdout=subprocess.DEVNULL)
        yield
        settle(pid, prosody_port)
        out.append(callgrind_dump(argparse.Namespace(tmp=self.dir, pid=pid, save=self.save), label))


def parse_report(text: str, gateway: str = "stanzad") -> dict:
    """The figures of a bench_roundtrip.report() text (the gateway runs print it)."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if line.startswith("  elapsed"):
            out["elapsed"] = float(parts[1])
        elif line.startswith("  over 35 ms at"):
            if parts[4] != "-":
                out["slow_at"] = line.split(" at ", 1)[1].strip()
        elif line.startswith("  over 35 ms"):
            out["slow"] = int(parts[3])
        elif line.startswith("  latency ms"):
            out["p50"], out["p90"], out["p99"] = float(parts[3]), float(parts[5]), float(parts[7])
        elif line.startswith(f"    {gateway} "):
            out["cpu"] = float(parts[1])
        elif line.startswith("    prosody "):
            out["prosody"] = float(parts[1])
        elif "FAILED" in line:
            raise SystemExit(f"bench: a {gateway} run lost or duplicated messages:\n" + text)
    return out


def our_children(markable: bool) -> "list[str]":
    """What stanzad adds to a chat message's body (protocol/im.cpp make_message), {id} its id."""
    out = ["<origin-id xmlns='urn:xmpp:sid:0' id='{id}'/>", "<request xmlns='urn:xmpp:receipts'/>"]
    if markable:
        out.append("<markable xmlns='urn:xmpp:chat-markers:0'/>")
    return out + ["<active xmlns='http://jabber.org/protocol/chatstates'/>"]


def figures_of_direct(result: dict, n: int) -> dict:
    if result["duplicates"] or any(x is None for x in result["latency"]):
        raise SystemExit("bench: the direct client lost or duplicated messages")
    lat = sorted(x * 1000 for x in result["latency"])
    return {"elapsed": result["elapsed"], "p50": percentile(lat, 50), "p90": percentile(lat, 90),
            "p99": percentile(lat, 99), "slow": sum(1 for x in lat if x >= 35), "cpu": result["cpu"], "prosody": result["prosody"], "n": n}


def main() -> int:
    ap = argparse.ArgumentParser(description="stanzad vs a direct slixmpp client, one run")
    ap.add_argument("--rounds", type=int, help="(default 3; 1 with --callgrind)")
    ap.add_argument("--n", type=int, help="burst messages (default 10000; 1000 with --callgrind)")
    ap.add_argument("--window", type=int, default=100, help="burst: not yet echoed (default 100)")
    ap.add_argument("--echoes", type=int,
                    help="one-at-a-time round trips (default 500; none with --callgrind)")
    ap.add_argument("--body-size", type=int, default=32)
    ap.add_argument("--stall", type=float, default=30.0)
    ap.add_argument("--state-dir", help="stanzad's state_dir (default: in the temp dir); "
                    "a tmpfs such as /dev/shm/x takes the fsyncs out, for a diagnosis only")
    ap.add_argument("--no-bitlbee", action="store_true",
                    help="leave bitlbee out even when it is installed")
    ap.add_argument("--chat-markers", action="store_true",
                    help="chat_markers = true for alice: her messages are markable (XEP-0333), "
                    "as every chat message was before 2026-12-07; for an A/B")
    ap.add_argument("--direct-ours", action="store_true",
                    help="also a row 'direct-ours': the direct client sending messages shaped "
                    "as stanzad's (an id, origin-id, receipt request, active; markable with "
                    "--chat-markers), to tell Prosody's cost of the shape from the gateway's")
    ap.add_argument("--callgrind", action="store_true",
                    help="run stanzad and bitlbee under callgrind and print the instructions "
                    "per relayed message of each burst (json, irc, bitlbee; no direct client)")
    ap.add_argument("--save", metavar="DIR", help="--callgrind: copy the dumps into DIR")
    args = ap.parse_args()
    for name, native, under_valgrind in (("rounds", 3, 1), ("n", 10000, 1000), ("echoes", 500, 0)):
        if getattr(args, name) is None:
            setattr(args, name, under_valgrind if args.callgrind else native)
    cg = Callgrind(args.save) if args.callgrind else None
    slow = Callgrind.SLOW if cg else 1
    if cg:
        print(f"bench_compare --callgrind: {machine()}; N={args.n}, window {args.window}, "
              f"body {args.body_size} B; binary {harness.stanzad_bin()}", flush=True)
        os.environ["STANZAD_BIN"] = str(cg.stanzad_bin(harness.stanzad_bin()))
    load_at_start = os.getloadavg()
    world_args = argparse.Namespace(no_mam=False, log_level="info", state_dir=args.state_dir,
                                    chat_markers=args.chat_markers)
    irc_port = harness.free_port()
    irc_section = {"irc": {"listen": f"{harness.LOOPBACK}:{irc_port}",
                           "password": bench_irc.PASSWORD}}
    if cg:
        # The direct client has no gateway to count; only the gateways run under callgrind.
        kinds = ["json", "irc"]
        if args.direct_ours:
            print("direct-ours: left out (--callgrind counts the gateways only)", flush=True)
    else:
        kinds = ["direct", "json", "irc"] + (["direct-ours"] if args.direct_ours else [])
    if args.no_bitlbee:
        print("bitlbee: left out (--no-bitlbee)", flush=True)
    elif not Bitlbee.installed():
        print(f"bitlbee: not installed ({Bitlbee.BIN}), left out "
              "(apt-get install bitlbee to compare with it)", flush=True)
    else:
        kinds.append("bitlbee")
    rows = {f"{k} {what}": [] for what in ("burst", "echo") for k in kinds}
    dumps = {k: [] for k in kinds}  # --callgrind: bench_profile.callgrind_dump's, per burst
    prosody_port = None
    bitlbee_losses = []
    if "bitlbee" in kinds:
        prosody_port = next((p for p in Bitlbee.PORTS if not harness.port_accepts(p)), None)
        if prosody_port is None:
            raise SystemExit("bench: no free port in 5220-5229 for a Prosody bitlbee can reach")
    with bench_roundtrip.bench_world(world_args, "stanzad-compare-", irc_section, prosody_port) as (
            d, config, prosody, peer_proc, bob_jid):
        d.wait_for(r"stanzad: IRC on ", timeout=10 * slow)
        direct = bitlbee = None
        if "direct" in kinds:
            prosody.register("carol", "carol-pass")
            direct = Direct(prosody, bob_jid)

        def counted(kind: str, what: str, r: int):
            """Around the burst of `kind` with --callgrind: its gateway's instructions."""
            if not cg or what != "burst":
                return contextlib.nullcontext()
            pid = bitlbee.proc.pid if kind == "bitlbee" else d.proc.pid
            return cg.burst(pid, prosody.port, f"{kind}-round-{r + 1}", dumps[kind])

        try:
            if "bitlbee" in kinds:
                prosody.register("dave", "dave-pass")
                bitlbee = Bitlbee(prosody.workdir.parent / "bitlbee", prosody, "dave@localhost",
                                  "dave-pass", cg.wrapper("bitlbee") if cg else (), slow, LfIrc)
                print(f"bitlbee {bitlbee.version}: online as dave@localhost, bob in &bitlbee",
                      flush=True)
                # A child serving the connection would be out of callgrind_control's reach.
                if cg and subprocess.run(["pgrep", "-P", str(bitlbee.proc.pid)],
                                         stdout=subprocess.DEVNULL).returncode == 0:
                    raise SystemExit("bench: bitlbee forked: its counters would miss the relay")
            for r in range(args.rounds):
                print(f"round {r + 1} of {args.rounds}", flush=True)
                for what, n, window in (("burst", args.n, args.window), ("echo", args.echoes, 1)):
                    if cg and n == 0:
                        continue  # --callgrind counts the bursts; its echo phase is optional
                    if direct:
                        res = figures_of_direct(direct.run(n, window, args.body_size, args.stall), n)
                        rows[f"direct {what}"].append(res)
                    if args.direct_ours and direct:
                        rows[f"direct-ours {what}"].append(figures_of_direct(direct.run(
                            n, window, args.body_size, args.stall, our_children(args.chat_markers)), n))
                    pa = phase_args(args, n, window)
                    rows[f"json {what}"].append(dict(parse_report(run_json(
                        pa, config, bob_jid, d, prosody, peer_proc, counted("json", what, r))), n=n))
                    rows[f"irc {what}"].append(dict(parse_report(run_irc(
                        pa, irc_port, d, prosody, peer_proc, counted("irc", what, r))), n=n))
                    if bitlbee:
                        try:
                            # parse_report inside: a burst with a duplicate leaves no dump.
                            with counted("bitlbee", what, r):
                                text = bench_irc.run(pa, bitlbee.irc, bitlbee, prosody, peer_proc,
                                                     gateway="bitlbee", labels_expected=False)
                                figures = parse_report(text, "bitlbee")
                            rows[f"bitlbee {what}"].append(dict(figures, n=n, round=r))
                        except SystemExit as e:
                            # The reference's own loss: reported, its round left out, and
                            # the run goes on (stanzad's and the direct client's still stop it).
                            bitlbee_losses.append(f"round {r + 1} {what}: {e}")
                            print(f"  {what:5s} bitlbee LOST MESSAGES, round left out for bitlbee: {e}",
                                  flush=True)
                    for k in kinds:
                        if not rows[f"{k} {what}"] or rows[f"{k} {what}"][-1].get("round", r) != r:
                            continue
                        f = rows[f"{k} {what}"][-1]
                        print(f"  {what:5s} {k:11s} {n / f['elapsed']:8.0f} msg/s  p50 {f['p50']:6.2f}"
                              f"  p90 {f['p90']:6.2f}  p99 {f['p99']:6.2f} ms  >=35 ms {f['slow']:4d}  CPU {f['cpu']:.3f} s, Prosody {f['prosody']:.2f} s", flush=True)
                        if what == "echo" and f.get("slow_at"):
                            print(f"        {k}: the echoes of 35 ms or more: {f['slow_at']}", flush=True)
                        if cg and what == "burst":
                            print("        " + callgrind_line(dumps[k][-1], n), flush=True)
        finally:
            if direct:
                direct.close()
            if bitlbee:
                bitlbee.close()
    if cg:
        print(callgrind_summary(dumps, args, kinds, bitlbee.version if bitlbee else None))
    else:
        if "bitlbee" in kinds and not (rows["bitlbee burst"] and rows["bitlbee echo"]):
            kinds.remove("bitlbee")
            print("bitlbee: no round without a loss in both phases, left out of the table")
        print(summary(rows, args, kinds, bitlbee.version if bitlbee else None, load_at_start))
    for line in bitlbee_losses:
        print(f"bitlbee lost messages (never answered by bob; its rounds left out): {line}")
    return 0


def run_json(pa, config, bob_jid, d, prosody, peer_proc,
             counted=contextlib.nullcontext()) -> str:
    """`counted`: a context manager around the run alone (the connection and hello stay out)."""
    client = harness.JsonClient(config["daemon"]["socket"], timeout=30, name="bench")
    try:
        hello = client.hello("bench", replay=False)
        if not hello.get("ok"):
            raise SystemExit(f"bench: hello failed: {hello}")
        with counted:
            return bench_roundtrip.run(pa, client, bob_jid, d, prosody, peer_proc)
    finally:
        client.close()


def run_irc(pa, port, d, prosody, peer_proc, counted=contextlib.nullcontext()) -> str:
    """`counted`: as for run_json (the registration stays out)."""
    irc = bench_irc.RawIrc(port)
    try:
        bench_irc.register(irc)
        with counted:
            return bench_irc.run(pa, irc, d, prosody, peer_proc)
    finally:
        irc.send("QUIT :bench")
        irc.sock.close()


def by_object(dumps: list, objects: int = 6) -> str:
    """The share of the top objects in the instructions of the bursts in `dumps`."""
    total = sum(cg["Ir"] for cg in dumps)
    by_obj = {}
    for cg in dumps:
        for ob, ir in cg["objs"]:
            by_obj[ob] = by_obj.get(ob, 0) + ir
    top = sorted(by_obj.items(), key=lambda kv: -kv[1])[:objects]
    return ", ".join(f"{ob} {100 * ir / total:.1f}%" for ob, ir in top)


def callgrind_line(dump: dict, n: int) -> str:
    """One burst's figures."""
    return f"callgrind: {dump['Ir'] / n:,.0f} Ir per relayed message; by object: {by_object([dump])}"


def callgrind_summary(dumps: dict, args, kinds: list, bitlbee_version: "str | None") -> str:
    per_msg = {k: statistics.median(cg["Ir"] for cg in dumps[k]) / args.n
               for k in kinds if dumps[k]}
    lines = [f"\ncallgrind: instructions (Ir) of the gateway per relayed message, one message "
             f"out to bob and his echo back in (the gateway's Ir from a quiet connection before "
             f"the burst to 0.6 s of quiet after its last echo, / N); N={args.n}, window "
             f"{args.window}; median of {args.rounds} round(s), objects over all of them",
             f"end: {machine()}"]
    who = {"json": "stanzad", "irc": "stanzad", "bitlbee": f"bitlbee {bitlbee_version}"}
    for k in kinds:
        if dumps[k]:
            lines.append(f"  {k:8s} {who[k]:16s} {per_msg[k]:11,.0f} Ir per message  "
                         f"({by_object(dumps[k])})")
    if "bitlbee" in per_msg:
        lines.append("  stanzad / bitlbee: " + ", ".join(
            f"{k} {per_msg[k] / per_msg['bitlbee']:.2f}" for k in ("json", "irc")))
    elif "bitlbee" in kinds:
        lines.append("  stanzad / bitlbee: none (bitlbee lost messages in every burst)")
    return "\n".join(lines)


def summary(rows: dict, args, kinds: list, bitlbee_version: "str | None" = None,
            load_at_start: "tuple | None" = None) -> str:
    med = {k: {f: statistics.median(r[f] for r in v)
               for f in ("elapsed", "p50", "p90", "p99", "slow", "cpu", "prosody")}
           for k, v in rows.items() if v}
    cpu_name = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_name = line.split(":", 1)[1].strip()
            break
    load = "load average " + (f"{load_at_start[0]:.1f} at the start, " if load_at_start else "")
    load += f"{os.getloadavg()[0]:.1f} at the end"
    ref = "bitlbee" in kinds
    counts = "" if ref and len(rows["bitlbee burst"]) == len(rows["bitlbee echo"]) == args.rounds else (
        f" (bitlbee: {len(rows['bitlbee burst'])} burst and {len(rows['bitlbee echo'])} echo rounds "
        "without a loss)" if ref else "")
    lines = [f"\nmedians of {args.rounds} round(s){counts}; {os.cpu_count()} x {cpu_name}, "
             f"{platform.system()} {platform.release()}, {load}",
             f"burst: {args.n} messages, {args.window} not yet echoed; echo: {args.echoes} one at a time"
             + (f"; bitlbee {bitlbee_version}" if ref else ""),
             "",
             "| | burst msg/s | x direct |" + (" x bitlbee |" if ref else "")
             + " gateway CPU per message |" + (" x bitlbee |" if ref else "")
             + " Prosody CPU per message | echo p50 | p90 | p99 (ms) | echoes >= 35 ms |",
             "| --- | --- | --- |" + (" --- |" if ref else "") + " --- |" + (" --- |" if ref else "")
             + " --- | --- | --- | --- | --- |"]
    rate = {k: args.n / med[f"{k} burst"]["elapsed"] for k in kinds}
    cpu_us = {k: med[f"{k} burst"]["cpu"] / args.n * 1e6 for k in kinds}
    who = {"direct": "slixmpp client, this process", "json": "stanzad", "irc": "stanzad",
           "bitlbee": "bitlbee", "direct-ours": "slixmpp client, stanzad's stanza shape"}
    for k in kinds:
        e = med[f"{k} echo"]
        row = f"| {k} | {rate[k]:.0f} | {rate[k] / rate['direct']:.2f} |"
        if ref:
            row += f" {rate[k] / rate['bitlbee']:.2f} |"
        row += f" {cpu_us[k]:.1f} us ({who[k]}) |"
        if ref:
            row += " - |" if k == "direct" else f" {cpu_us[k] / max(cpu_us['bitlbee'], 1e-9):.1f} |"
        row += f" {med[f'{k} burst']['prosody'] / args.n * 1e6:.0f} us |"
        row += f" {e['p50']:.2f} | {e['p90']:.2f} | {e['p99']:.2f} | {e['slow']:g} of {args.echoes} |"
        lines.append(row)
    for base in ("direct", "bitlbee") if ref else ("direct",):
        b = med[f"{base} echo"]
        for k in kinds:
            if k in ("direct", "direct-ours", base):
                continue
            e = med[f"{k} echo"]
            lines.append(f"{k}: echo p50 {e['p50'] - b['p50']:+.2f} ms, p99 {e['p99'] - b['p99']:+.2f} ms "
                         f"vs {base}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
