#!/usr/bin/env python3
"""echo_bot.py: answer every incoming chat message with "echo: BODY", through stanzad's
JSON-lines socket (docs/json-protocol.md). Python standard library only.

Usage:
    echo_bot.py [--replay] [--client NAME] [--prefix TEXT] [--once] [SOCKET]

    SOCKET      the daemon's socket; default $STANZAD_SOCKET, else
                $XDG_RUNTIME_DIR/stanzad.sock
    --replay    also answer messages that arrived while the bot was away (replayed on
                attach) and delayed ones (offline storage); by default only live ones
    --client    the client name the daemon keeps the bot's place under (default echo-bot)
    --prefix    what goes before the body (default "echo: ")
    --once      exit when the daemon goes away, instead of reconnecting

How it stays correct across restarts (its own and the daemon's):
- It says hello as one client name, so the daemon remembers up to which event (`seq`) the
  bot has confirmed and replays only what comes after.
- It confirms (`ack`) an event only once it is handled: for a message, once the daemon has
  accepted the answer (the `send` reply). A crash in between replays the message at the
  next start, and the answer is sent again with the same `client_id` (derived from the
  incoming event), which the daemon recognises as a duplicate: nobody gets two echoes.
- Acks go out in order (never past an event that is not handled yet).

It prints one line per answer on stdout and its state on stderr.
"""

import argparse
import json
import os
import select
import signal
import socket
import sys
import time
from collections import deque


def default_socket() -> str:
    if os.environ.get("STANZAD_SOCKET"):
        return os.environ["STANZAD_SOCKET"]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "stanzad.sock")
    sys.exit("echo_bot: no socket given and neither $STANZAD_SOCKET nor $XDG_RUNTIME_DIR "
             "is set")


def log(text: str) -> None:
    print(f"echo-bot: {text}", file=sys.stderr, flush=True)


def client_id_for(event: dict) -> str:
    """A stable id for the answer to `event`: the same event always gives the same id."""
    safe = "".join(ch for ch in str(event.get("msg_id", "")) if 0x20 < ord(ch) < 0x7F)
    return f"echo-{event['seq']}-{safe}"[:128]


class Bot:
    def __init__(self, path: str, client: str, prefix: str, replay: bool):
        self.path, self.client, self.prefix, self.replay = path, client, prefix, replay
        self.sock = None
        self.buf = b""
        self.next_id = 1
        self.last_seq_at_hello = 0
        self.attached = False
        self.order = deque()      # [seq, handled] for every event, in order
        self.waiting = {}         # request id of a send -> its entry in self.order
        self.acked = 0

    # -- wire
    def write(self, obj: dict) -> None:
        self.sock.sendall(json.dumps(obj, separators=(",", ":")).encode() + b"\n")

    def request(self, op: str, **fields) -> int:
        rid = self.next_id
        self.next_id += 1
        self.write({"op": op, "id": rid, **fields})
        return rid

    def lines(self):
        """Complete lines as they arrive; returns when the daemon closes."""
        while True:
            ready, _, _ = select.select([self.sock], [], [], 30.0)
            if not ready:
                continue
            chunk = self.sock.recv(65536)
            if not chunk:
                return
            self.buf += chunk
            *complete, self.buf = self.buf.split(b"\n")
            for raw in complete:
                if raw.strip():
                    yield json.loads(raw)
            self.flush_acks()  # once per batch read, not once per event

    # -- logic
    def run(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)
        hello_id = self.request("hello", client=self.client)
        for obj in self.lines():
            if "event" in obj:
                self.on_event(obj)
            elif obj.get("id") == hello_id:
                if not obj.get("ok"):
                    raise SystemExit(f"echo-bot: hello refused: {obj.get('error')}")
                self.attached = True
                self.last_seq_at_hello = obj.get("last_seq", 0)
                self.acked = obj.get("cursor", 0)
                log(f"attached to {self.path} as {self.client} (cursor {self.acked}, "
                    f"last_seq {self.last_seq_at_hello})")
            else:
                self.on_reply(obj)

    def on_event(self, ev: dict) -> None:
        entry = [ev["seq"], True]
        self.order.append(entry)
        if not self.wanted(ev):
            return
        rid = self.request("send", account=ev["account"], to=ev["from"], type="chat",
                           body=self.prefix + ev["body"], client_id=client_id_for(ev))
        entry[1] = False  # handled once the daemon has accepted the answer
        self.waiting[rid] = (entry, ev)

    def wanted(self, ev: dict) -> bool:
        if ev.get("event") != "message" or ev.get("outgoing") or not ev.get("body"):
            return False
        if ev.get("type", "chat") != "chat":
            return False
        old = ev.get("delayed") or ev["seq"] <= self.last_seq_at_hello
        return self.replay or not old

    def on_reply(self, reply: dict) -> None:
        pending = self.waiting.pop(reply.get("id"), None)
        if pending is None:
            if not reply.get("ok"):
                log(f"error: {reply.get('error')}")
            return
        entry, ev = pending
        entry[1] = True  # also on error: a message we cannot answer is not retried forever
        if reply.get("ok"):
            dup = " (already answered)" if reply.get("duplicate") else ""
            print(f"{ev['account']}: {ev['from']}: {self.prefix}{ev['body']}{dup}", flush=True)
        else:
            log(f"could not answer {ev['from']}: {reply.get('error')}")

    def flush_acks(self) -> None:
        upto = self.acked
        while self.order and self.order[0][1]:
            upto = self.order.popleft()[0]
        if upto > self.acked:
            self.request("ack", seq=upto)
            self.acked = upto


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("socket", nargs="?", help="the daemon's JSON socket")
    ap.add_argument("--replay", action="store_true",
                    help="also answer replayed and delayed messages")
    ap.add_argument("--client", default="echo-bot", help="client name (default echo-bot)")
    ap.add_argument("--prefix", default="echo: ", help='default "echo: "')
    ap.add_argument("--once", action="store_true", help="exit when the daemon goes away")
    args = ap.parse_args()
    path = args.socket or default_socket()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    delay = 0.5
    while True:
        bot = Bot(path, args.client, args.prefix, args.replay)
        try:
            bot.run()
            log("the daemon closed the connection")
        except (ConnectionRefusedError, FileNotFoundError) as e:
            log(f"cannot connect to {path}: {e.strerror}")
        except (ConnectionResetError, BrokenPipeError) as e:
            log(f"connection lost: {e.strerror}")
        except KeyboardInterrupt:
            return 0
        finally:
            if bot.sock:
                bot.sock.close()
        if args.once:
            return 1
        if bot.attached:
            delay = 0.5
        log(f"reconnecting in {delay:.1f}s")
        time.sleep(delay)
        delay = min(delay * 2, 30.0)


if __name__ == "__main__":
    sys.exit(main())
