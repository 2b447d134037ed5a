#!/usr/bin/python3
"""A store of 1,000,000 messages: start-up time, `hello` replaying the last 1,000,
`history`, IRC `CHATHISTORY`, the query plans, and the database's size per message.

Usage (after `make build`; Debian's python3):

    /usr/bin/python3 bench/bench_bigstore.py                       # 1,000,000 messages
    /usr/bin/python3 bench/bench_bigstore.py --messages 100000 --keep /tmp/store100k

1. stanzad runs once on an empty state directory, its account pointed at a closed port
   (offline; the store is what answers), and creates the store with its own schema.
2. This script fills it directly with sqlite3 (Python): N message events, half incoming
   and half outgoing, spread over --peers conversations (bob@localhost has a tenth of them),
   the JSON of each as the daemon writes it with its schema-6 columns (format, msg_id,
   direction), an inbound de-duplication id for each incoming one, one day apart from the
   first to the last, and the table of conversations as the migration builds it.
3. It prints EXPLAIN QUERY PLAN for the daemon's queries (the SQL of daemon/store*.cpp),
   the file size per message, then starts stanzad on it (`stanzad: listening on` after the
   spawn: start-up), and times, over --repeat runs each (median, max):
   - hello with `since` = last_seq - 1000: the reply and all 1,000 replayed events;
   (the JSON `history` op needs the account online and asks the server's archive when
   there is one; its local-store path runs the same query as CHATHISTORY LATEST);
   - IRC CHATHISTORY LATEST #bob@localhost * 100, BEFORE msgid=(a message in the middle)
     and TARGETS over all time, each until its batch ends (the `#` form: a conversation
     read from the store without a roster).

Wall-clock figures: the load average is printed with them.
Environment: STANZAD_BIN as for the tests (default build/daemon/stanzad).
"""

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
sys.path.insert(0, str(HERE))
import harness  # noqa: E402
import bench_irc  # noqa: E402
from bench_profile import machine  # noqa: E402

IRC_PASSWORD = bench_irc.PASSWORD

# The daemon's read queries (daemon/store.cpp, store_schema.cpp), for EXPLAIN QUERY PLAN.
QUERIES = {
    "replay (events_after)": ("SELECT seq, json FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2", (999000, 1000)),
    "history / CHATHISTORY LATEST (messages, newest)":
        ("SELECT seq, json FROM events WHERE account = ?1 AND peer = ?2 AND peer != '' "
         "ORDER BY seq DESC LIMIT ?7", ("home", "bob@localhost", None, None, None, None, 100)),
    "CHATHISTORY BEFORE (messages, before seq)":
        ("SELECT seq, json FROM events WHERE account = ?1 AND peer = ?2 AND peer != '' AND seq < ?4 "
         "ORDER BY seq DESC LIMIT ?7", ("home", "bob@localhost", None, 500000, None, None, 100)),
    "CHATHISTORY msgid= (message_seq)":
        ("SELECT seq FROM events WHERE account = ?1 AND peer = ?2 AND peer != '' AND "
         "msg_id = ?3 ORDER BY seq LIMIT 1", ("home", "bob@localhost", "m-500000")),
    "CHATHISTORY TARGETS (conversations)":
        ("SELECT account, peer, last_stamp FROM conversations WHERE last_stamp > ?1 AND "
         "last_stamp < ?2 ORDER BY last_stamp DESC LIMIT ?3", ("2000", "~", 50)),
    "last seq at start-up":
        ("SELECT max(coalesce((SELECT max(seq) FROM events), 0), "
         "coalesce((SELECT max(seq) FROM events_floor), 0))", ()),
    "prune at start-up (the first event not older than the cutoff)":
        ("SELECT seq FROM events WHERE created_ms >= ?1 ORDER BY seq LIMIT 1", (0,)),
    "pending outbox at start-up":
        ("SELECT id FROM outbox WHERE account = ?1 AND state IN ('accepted', 'sent') ORDER BY id", ("home",)),
}


def stamp(ms: int) -> str:
    t = time.gmtime(ms // 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{ms % 1000:03d}Z"


def fill(db_path: Path, n: int, peers: int) -> None:
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA synchronous = OFF")
    # The day before now: the daemon prunes events older than history_days at start-up.
    start_ms = int(time.time() * 1000) - 86_400_000
    step = max(1, 86_400_000 // max(1, n))
    seq0 = db.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]

    def rows():
        for i in range(n):
            seq = seq0 + 1 + i
            peer = "bob@localhost" if i % 10 == 0 else f"p{i % peers}@localhost"
            outgoing = i % 2 == 1
            ms = start_ms + i * step
            ev = {"event": "message", "seq": seq, "account": "home", "stamp": stamp(ms),
                  "from": "alice@localhost" if outgoing else peer + "/phone",
                  "to": peer if outgoing else "alice@localhost/stanzad", "type": "chat",
                  "body": f"message number {i} of the big store benchmark", "msg_id": f"m-{i}",
                  "delayed": False, "outgoing": outgoing, "carbon": "", "replaces": "", "history": False}
            yield (seq, "home", "message", ev["stamp"], ms, json.dumps(ev, separators=(",", ":")), peer,
                   ev["msg_id"], "out" if outgoing else "in")

    # Schema 6: the format (model::codec::format_version: 2, every field the daemon writes,
    # which the rows above have) and the columns beside the JSON,
    # and the conversation list built as the migration builds it.
    db.executemany("INSERT INTO events (seq, account, kind, stamp, created_ms, json, peer, format, msg_id, direction) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, 2, ?, ?)", rows())
    db.execute("INSERT INTO conversations (account, peer, last_seq, last_stamp) "
               "SELECT account, peer, max(seq), max(stamp) FROM events WHERE peer != '' GROUP BY account, peer "
               "ON CONFLICT (account, peer) DO UPDATE SET last_seq = excluded.last_seq, "
               "last_stamp = excluded.last_stamp")
    db.executemany("INSERT INTO inbound_ids (account, id, created_ms, value) VALUES ('home', ?, ?, ?)",
                   ((f"m-{i}", start_ms + i * step, str(seq0 + 1 + i)) for i in range(0, n, 2)))
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def plans(db_path: Path) -> "list[str]":
    db = sqlite3.connect(db_path)
    out = []
    for name, (sql, params) in QUERIES.items():
        nums = {f"?{i + 1}": p for i, p in enumerate(params)}
        plan = db.execute("EXPLAIN QUERY PLAN " + sql, nums_to_named(sql, nums)).fetchall()
        out.append(f"  {name}: " + "; ".join(row[-1] for row in plan))
    db.close()
    return out


def nums_to_named(sql: str, nums: dict) -> list:
    """Positional parameters for a statement with ?N placeholders (N up to 9)."""
    used = sorted({int(sql[i + 1]) for i in range(len(sql) - 1) if sql[i] == "?" and sql[i + 1].isdigit()})
    return [nums.get(f"?{k}") for k in range(1, (used[-1] if used else 0) + 1)]


def daemon_config(tmp: Path, irc_port: int) -> dict:
    dead_port = harness.free_port()  # nothing listens: the account stays offline
    config = harness.stanzad_config(tmp / "stanzad", [harness.account_section(
        "home", "alice@localhost", port=dead_port, ca_file=None, password="alice-pass")],
        log_level="info")
    config["irc"] = {"listen": f"{harness.LOOPBACK}:{irc_port}", "password": IRC_PASSWORD}
    return config


def start(config: dict, tmp: Path) -> "tuple[harness.Stanzad, float]":
    t0 = time.perf_counter()
    d = harness.Stanzad(config, tmp / "stanzad", echo=False).start()
    d.wait_for(harness.rx_listening(), timeout=120)
    return d, time.perf_counter() - t0


def time_hello(config: dict, last_seq: int, d) -> float:
    client = harness.JsonClient(config["daemon"]["socket"], timeout=60, name="big")
    try:
        t0 = time.perf_counter()
        client.send_json({"op": "hello", "id": 1, "client": "big", "since": last_seq - 1000})
        got, replied = set(), False
        while not replied or len(got) < 1000:
            objs = client.read_some(10.0)
            if not objs:
                raise SystemExit(f"bench: hello: {len(got)} of 1000 events after 10 s of silence; "
                                 "the daemon's log ends with:\n" + "\n".join(d.lines[-5:]))
            for obj in objs:
                if obj.get("id") == 1:
                    if not obj.get("ok"):
                        raise SystemExit(f"bench: hello failed: {obj}")
                    replied = True
                elif obj.get("event") and obj.get("seq", 0) > last_seq - 1000:
                    got.add(obj["seq"])
            if client.eof:
                raise SystemExit("bench: the daemon closed the connection")
            client.events.clear()
            client.replies.clear()
            client._pending.clear()
        return time.perf_counter() - t0
    finally:
        client.close()


def time_chathistory(irc: "bench_irc.RawIrc", command: str, want: int, what: bytes = b" PRIVMSG ") -> float:
    """Seconds from sending `command` to the end of its batch, which must hold `want` lines
    containing `what`."""
    t0 = time.perf_counter()
    irc.send(command)
    lines = []
    irc.wait(lambda l: lines.append(l) or (l.startswith(b":") and b" BATCH -" in l) or b"FAIL" in l,
             60, "the end of the chathistory batch")
    elapsed = time.perf_counter() - t0
    got = sum(1 for l in lines if what in l)
    if got != want:
        raise SystemExit(f"bench: {command}: {got} lines, not {want}: {lines[-3:]}")
    return elapsed


def figures(name: str, xs: "list[float]") -> str:
    return f"  {name:44s} median {1000 * statistics.median(xs):7.1f} ms, max {1000 * max(xs):7.1f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description="stanzad with a big store")
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--peers", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", help="build the store in this directory and keep it")
    args = ap.parse_args()
    print(f"bench_bigstore: {machine()}; {args.messages} messages; binary {harness.stanzad_bin()}",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="stanzad-big-") as tmp:
        tmp = Path(args.keep) if args.keep else Path(tmp)
        irc_port = harness.free_port()
        config = daemon_config(tmp, irc_port)
        db_path = Path(config["daemon"]["state_dir"]) / "stanzad.db"
        d, t = start(config, tmp)
        d.stop(10)
        if not db_path.exists():
            raise SystemExit(f"bench: no store at {db_path}")
        t0 = time.perf_counter()
        fill(db_path, args.messages, args.peers)
        print(f"filled in {time.perf_counter() - t0:.0f} s", flush=True)
        size = sum(p.stat().st_size for p in db_path.parent.glob(db_path.name + "*"))
        db = sqlite3.connect(db_path)
        last_seq = db.execute("SELECT max(seq) FROM events").fetchone()[0]
        total = db.execute("SELECT count(*) FROM events").fetchone()[0]
        db.close()
        print(f"store: {total} events, {size / 2**20:.1f} MiB with its WAL, "
              f"{size / total:.0f} bytes per message", flush=True)
        print("query plans:\n" + "\n".join(plans(db_path)), flush=True)
        starts, hellos, chats, befores, targets = [], [], [], [], []
        for _ in range(args.repeat):
            d, t = start(config, tmp)
            starts.append(t)
            try:
                hellos.append(time_hello(config, last_seq, d))
                irc = bench_irc.RawIrc(irc_port)
                register_irc(irc)
                mid = args.messages // 2 // 10 * 10  # one of bob's
                chats.append(time_chathistory(irc, "CHATHISTORY LATEST #bob@localhost * 100", 100))
                befores.append(time_chathistory(
                    irc, f"CHATHISTORY BEFORE #bob@localhost msgid=m-{mid} 100", 100))
                targets.append(time_chathistory(
                    irc, "CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z "
                         "timestamp=2100-01-01T00:00:00.000Z 50", 50, b"CHATHISTORY TARGETS"))
                irc.send("QUIT :bench")
                irc.sock.close()
            finally:
                d.stop(30)
        print(f"over {args.repeat} runs (load average {os.getloadavg()[0]:.2f}):")
        print(figures("start-up (spawn to listening)", starts))
        print(figures("hello replaying the last 1,000 events", hellos))
        print(figures("CHATHISTORY LATEST #bob@localhost * 100", chats))
        print(figures("CHATHISTORY BEFORE msgid= (middle) 100", befores))
        print(figures("CHATHISTORY TARGETS (all) 50", targets))
    print(f"end: {machine()}")
    return 0


def register_irc(irc: "bench_irc.RawIrc") -> None:
    irc.send(f"PASS {IRC_PASSWORD}")
    irc.send("CAP LS 302")
    irc.send("NICK alice")
    irc.send("USER alice@big 0 * :bench")
    irc.send("CAP REQ :batch server-time message-tags draft/chathistory")
    irc.wait(lambda l: b" ACK " in l, 10, "CAP ACK")
    irc.send("CAP END")
    irc.wait(lambda l: b" 001 " in l, 30, "the welcome")


if __name__ == "__main__":
    sys.exit(main())
