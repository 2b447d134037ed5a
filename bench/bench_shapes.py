#!/usr/bin/python3
"""What each element stanzad adds to a chat message costs Prosody (issue 15).

Usage (Debian's python3, which has slixmpp; no stanzad build needed beyond the one the
bench world starts):

    /usr/bin/python3 bench/bench_shapes.py                 # 4 rounds, N=5000 per shape
    /usr/bin/python3 bench/bench_shapes.py --rounds 2 --n 2000

One quiet Prosody (MAM on) and bob, the slixmpp echo peer of bench_compare; carol, the
direct slixmpp client of bench_compare (no gateway), sends bursts of N chat messages (100
not yet echoed) shaped in turn as: slixmpp's plain message; with an id; with each one of
the elements stanzad adds (protocol/im.cpp make_message: XEP-0359 origin-id, XEP-0184
request, XEP-0085 active, XEP-0333 markable); and with all of stanzad's default ones
(bench_compare.our_children). Each shape once per round, round after round, so that a
slow moment of the machine hits them alike. Prints messages per second and Prosody's CPU
per message (time on CPU of all its threads) for each burst, then the medians of the rounds
after the first (the first warms Prosody up). Every message is counted (bench_compare's
Direct.run).
Environment: STANZAD_BIN as for the tests (the bench world starts stanzad too; it stays idle).
"""

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))

import bench_compare  # noqa: E402
import bench_roundtrip  # noqa: E402

SHAPES = {
    "plain": None,
    "id": [],
    "origin-id": ["<origin-id xmlns='urn:xmpp:sid:0' id='{id}'/>"],
    "request": ["<request xmlns='urn:xmpp:receipts'/>"],
    "active": ["<active xmlns='http://jabber.org/protocol/chatstates'/>"],
    "markable": ["<markable xmlns='urn:xmpp:chat-markers:0'/>"],
    "stanzad's": bench_compare.our_children(markable=False),
}


def main() -> int:
    ap = argparse.ArgumentParser(description="Prosody's cost of each element of our messages")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--n", type=int, default=5000, help="messages per burst (default 5000)")
    args = ap.parse_args()
    world = argparse.Namespace(no_mam=False, log_level="info", state_dir=None, chat_markers=False)
    results = {k: [] for k in SHAPES}
    with bench_roundtrip.bench_world(world, "stanzad-shapes-") as (d, config, prosody, peer_proc, bob_jid):
        prosody.register("carol", "carol-pass")
        direct = bench_compare.Direct(prosody, bob_jid)
        try:
            for r in range(args.rounds):
                for name, children in SHAPES.items():
                    f = direct.run(args.n, 100, 32, 30.0, children)
                    rate, prosody_us = args.n / f["elapsed"], f["prosody"] / args.n * 1e6
                    results[name].append((rate, prosody_us))
                    print(f"round {r + 1} {name:10s} {rate:6.0f} msg/s  Prosody {prosody_us:5.0f} us/msg",
                          flush=True)
        finally:
            direct.close()
    kept = slice(1, None) if args.rounds > 1 else slice(None)
    print(f"\nmedians of rounds {'2' if args.rounds > 1 else '1'}-{args.rounds}, N={args.n} per burst\n")
    print("| shape | msg/s | Prosody CPU per message |\n| --- | --- | --- |")
    for name, rows in results.items():
        rows = rows[kept]
        print(f"| {name} | {statistics.median(x[0] for x in rows):.0f} | "
              f"{statistics.median(x[1] for x in rows):.0f} us |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
