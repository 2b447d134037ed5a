#!/usr/bin/python3
"""`make demo`: stanzad against a throwaway Prosody on loopback, in the foreground.

Creates ./.demo/ (gitignored; wiped at each run): a test CA and certificate for
"localhost", a Prosody with the accounts alice and bob, and .demo/stanzad.toml for alice.
Starts stanzad showing its log; once it is online, bob pings alice and asks for her
disco#info, to show a working connection. Ctrl-C stops stanzad, then Prosody.

Environment: DEMO_SECONDS=N stops the demo by itself after N seconds (used to test it);
STANZAD_BIN overrides the daemon binary (default build/daemon/stanzad).
Run with Debian's /usr/bin/python3 (python3-slixmpp is installed for it).
"""

import json
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
import harness  # noqa: E402

DEMO = REPO / ".demo"
PASSWORDS = {"alice": "alice-demo", "bob": "bob-demo"}
ONLINE_TIMEOUT = 30.0

_tty = sys.stdout.isatty()


def say(text: str = "") -> None:
    prefix = "\033[1;36mdemo:\033[0m " if _tty else "demo: "
    for line in text.splitlines() or [""]:
        print(prefix + line, flush=True)


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


IRC_PASSWORD = "irc-demo"
ROOM = "demo@conference.localhost"


class IrcLines:
    """Lines from a raw IRC connection, for the demo."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, b""

    def next(self) -> str:
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("the IRC connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def until(self, last) -> "list[str]":
        lines = [self.next()]
        while not last(lines[-1]):
            lines.append(self.next())
        return lines

    def wait(self, match) -> str:
        return self.until(match)[-1]


def main() -> int:
    # Ctrl-C raises KeyboardInterrupt even if we were started with SIGINT ignored (as a
    # background job); the children run in their own sessions and never see it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    seconds = float(os.environ.get("DEMO_SECONDS") or 0) or None
    binary = harness.stanzad_bin()
    if not binary.exists():
        say(f"no stanzad binary at {binary}: run `make build` first (or set STANZAD_BIN)")
        return 1

    if DEMO.exists():
        shutil.rmtree(DEMO)
    DEMO.mkdir()
    say("starting a throwaway XMPP server (Prosody) on loopback ...")
    certs = harness.make_ca(DEMO / "certs")
    prosody = harness.Prosody(DEMO / "prosody", certs, muc=True)
    stanzad = None
    try:
        for user, password in PASSWORDS.items():
            prosody.register(user, password)
        prosody.start()
        port = prosody.port

        account = harness.account_section("home", "alice@localhost", port=port,
                                          ca_file=certs.ca_cert,
                                          password=PASSWORDS["alice"])
        config = harness.stanzad_config(DEMO / "stanzad", [account], log_level="debug")
        irc_port = harness.free_port()
        config["irc"] = {"listen": f"127.0.0.1:{irc_port}", "password": IRC_PASSWORD}
        stanzad = harness.Stanzad(config, DEMO, name="stanzad", echo="  stanzad | ",
                                  config_name="stanzad.toml")

        say(f"""\

XMPP server   Prosody on 127.0.0.1:{port}, domain "localhost", STARTTLS required
              (data and debug log in {rel(DEMO / 'prosody')}/)
CA            {rel(certs.ca_cert)}  (the server's certificate is for "localhost")
Accounts      alice@localhost  password {PASSWORDS['alice']}   <- stanzad logs in as alice
              bob@localhost    password {PASSWORDS['bob']}     <- free for you
stanzad       {binary}
Config        {rel(stanzad.config_path)}
IRC           127.0.0.1:{irc_port}, password {IRC_PASSWORD}   (irssi -c 127.0.0.1 -p {irc_port} -w {IRC_PASSWORD} -n alice)
Room          {ROOM}

To talk to alice from another XMPP client, log in as bob@localhost / {PASSWORDS['bob']} with
server 127.0.0.1 and port {port} (STARTTLS), trusting {rel(certs.ca_cert)}, e.g.
  profanity:  /connect bob@localhost server 127.0.0.1 port {port} tls force
Press Ctrl-C to stop stanzad and the server{f' (stopping by itself after {seconds:g} s)' if seconds else ''}.
""")
        started = time.monotonic()
        stanzad.start()
        full = stanzad.wait_for(harness.rx_online("home"), ONLINE_TIMEOUT).group(1)
        say(f"stanzad is online as {full}; bob says hello ...")

        with harness.Peer("bob@localhost", PASSWORDS["bob"], certs.ca_cert, port) as bob:
            rtt = bob.ping(full)
            say(f"bob -> {full}: XEP-0199 ping answered in {rtt * 1000:.1f} ms")
            identities, features = bob.disco_info(full)
            for category, type_, name in identities:
                say(f"bob -> {full}: disco#info identity {category}/{type_}"
                    + (f" ({name})" if name else ""))
            for feature in sorted(features):
                say(f"bob -> {full}: disco#info feature {feature}")
            version = bob.version(full)
            say(f"bob -> {full}: software version {version['name']} {version['version']}")

            # The JSON-lines front end, through stanzactl.
            sock = Path(config["daemon"]["socket"])
            ctl = ["-s", sock]
            status = harness.run_stanzactl([*ctl, "status"])
            for line in status.stdout.splitlines():
                say(f"stanzactl status: {line}")
            bob.send_message("alice@localhost", "hello alice, it is bob")
            sent = harness.run_stanzactl([*ctl, "send", "home", "bob@localhost", "hello bob, from the demo"])
            say(f"stanzactl send home bob@localhost ...: exit {sent.returncode}, msg_id {sent.stdout.strip()}")
            got = bob.wait_message(body="hello bob, from the demo")
            say(f"bob received it, origin-id {got.origin_id}")

            # A multi-user chat room: stanzad joins, bob joins and talks.
            joined = harness.run_stanzactl([*ctl, "join", "home", ROOM, "alice"])
            for line in joined.stdout.splitlines():
                say(f"stanzactl join: {line}")
            bob.muc_join(ROOM, "bob")
            bob.muc_send(ROOM, "hello room, from bob")
            say("bob said 'hello room, from bob' in the room")

            # The IRC front end: a raw IRC client registers and talks to bob.
            irc = socket.create_connection(("127.0.0.1", irc_port), timeout=10)
            irc_lines = IrcLines(irc)
            irc.sendall(f"PASS {IRC_PASSWORD}\r\nNICK alice\r\nUSER alice@demo 0 * :Alice\r\n".encode())
            for line in irc_lines.until(lambda l: " 366 alice #" in l):
                say(f"irc <- {line}")
            bob.send_message("alice@localhost", "hello IRC, it is bob")
            say(f"irc <- {irc_lines.wait(lambda l: 'hello IRC, it is bob' in l)}")
            irc.sendall(b"PRIVMSG bob :hi bob, from IRC\r\n")
            say("irc -> PRIVMSG bob :hi bob, from IRC")
            got = bob.wait_message(body="hi bob, from IRC")
            say(f"bob received it from {got.from_}")
            irc.sendall(b"QUIT :demo done\r\n")
            irc.close()

            # The Emacs mode, in batch: M-x stanza, then the roster buffer as it looks.
            if shutil.which("emacs"):
                elisp = f"""(progn (setq stanza-socket {json.dumps(str(sock))} stanza-client-name "demo")
                  (stanza)
                  (let ((deadline (+ (float-time) 10)))
                    (while (and (< (float-time) deadline)
                                (not (string-match-p "online" (with-current-buffer "*stanza*" (buffer-string)))))
                      (accept-process-output nil 0.1)))
                  (princ (with-current-buffer "*stanza*" (buffer-substring-no-properties (point-min) (point-max)))))"""
                shown = harness.subprocess.run(
                    ["emacs", "-Q", "--batch", "-L", str(REPO / "contrib" / "emacs"), "-l", "stanza",
                     "--eval", elisp], capture_output=True, text=True, timeout=30)
                for line in shown.stdout.splitlines():
                    if line.strip():
                        say(f"emacs | {line}")
            else:
                say("emacs is not installed: `make deps` installs emacs-nox for the Emacs mode")
            say(f"""the events so far, as a front end sees them:
  {rel(harness.stanzactl_bin())} -s {rel(sock)} tail --since 0
try also:
  {rel(harness.stanzactl_bin())} -s {rel(sock)} send home bob@localhost "text"
  python3 contrib/examples/echo_bot.py {rel(sock)}      (answers bob's messages)""")
        say("it all works. stanzad keeps running; Ctrl-C stops everything.")

        while True:
            remaining = None if seconds is None else seconds - (time.monotonic() - started)
            if remaining is not None and remaining <= 0:
                say(f"DEMO_SECONDS={seconds:g} reached")
                break
            try:
                rc = stanzad.proc.wait(remaining)
            except harness.subprocess.TimeoutExpired:
                continue
            say(f"stanzad exited by itself with status {rc}")
            return rc or 1
        return 0
    except KeyboardInterrupt:
        print()
        say("Ctrl-C")
        return 0
    except AssertionError as e:
        say(f"FAILED: {e}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip this
        if stanzad is not None and stanzad.running:
            say("stopping stanzad (SIGTERM) ...")
            rc = stanzad.stop(10)
            say(f"stanzad exited with status {rc}")
        if prosody.running:
            say("stopping Prosody ...")
            prosody.stop()
        say(f"done; files are left in {rel(DEMO)}/ (removed at the next `make demo`)")


if __name__ == "__main__":
    sys.exit(main())
