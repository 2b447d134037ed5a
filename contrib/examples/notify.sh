#!/bin/sh
# notify.sh: a desktop notification for every incoming XMPP message, from stanzad.
#
# Usage: notify.sh [STANZACTL OPTIONS...]      e.g.  notify.sh -s /run/user/1000/stanzad.sock
#
# Follows `stanzactl tail --json` (one JSON event per line, docs/json-protocol.md) and, for
# each incoming message (not the ones we send), runs `notify-send FROM BODY`; without
# notify-send it prints "FROM: BODY" on stdout instead. Arguments are passed to stanzactl
# before `tail` (-s SOCKET or -c CONFIG to find the daemon).
#
# Environment:
#   STANZACTL     the stanzactl to run (default: stanzactl on PATH)
#   NOTIFY_SEND   the notifier (default: notify-send; a missing one means "print")
#
# POSIX sh; the JSON is read by python3's json module (no jq needed). Exits with
# stanzactl's status when the daemon goes away.

set -u

STANZACTL=${STANZACTL:-stanzactl}
NOTIFY_SEND=${NOTIFY_SEND:-notify-send}

# One incoming message per output line: FROM, a tab, BODY (tabs and newlines in the body
# become spaces, so that each message stays one line for `read`).
filter='
import json, sys
for line in sys.stdin:
    try:
        ev = json.loads(line)
    except ValueError:
        continue
    if ev.get("event") != "message" or ev.get("outgoing"):
        continue
    body = " ".join(str(ev.get("body", "")).split())
    sender = str(ev.get("from", "")).replace("\t", " ")
    print(sender + "\t" + body, flush=True)
'

tab=$(printf '\t')

notify() {
    # $1: from, $2: body
    if command -v "$NOTIFY_SEND" >/dev/null 2>&1; then
        "$NOTIFY_SEND" -- "$1" "$2" || printf '%s: %s\n' "$1" "$2"
    else
        printf '%s: %s\n' "$1" "$2"
    fi
}

# The pipeline's status is the last command's; keep stanzactl's in a file descriptor.
exec 4>&1
status=$(
    {
        { "$STANZACTL" "$@" tail --json; echo $? >&3; } | python3 -u -c "$filter" |
        while IFS="$tab" read -r from body; do
            notify "$from" "$body" >&4
        done
    } 3>&1 >&4
)
exec 4>&-
exit "${status:-1}"
