"""Test bed for stanzad's integration tests and demo.

Everything here is real: a Prosody started on loopback with its own config, data and
certificates (generated at run time with the openssl CLI), slixmpp as the second XMPP
client, and the stanzad binary read through its stderr log.

    Certs     make_ca(dir): a test CA, a server certificate for "localhost", plus an
              untrusted CA and a certificate for the wrong host name (negative TLS tests);
              make_leaf (more names, signed by the test CA), make_self_signed (no CA at
              all) and spki_pin (the "sha256/BASE64" form of tls_pin) beside it;
              make_client_cert (an XEP-0178 client certificate with an xmppAddr).
    SASL on Prosody   client_certs_plugin (mod_client_certs fixed for 0.12),
              pin_client_cert (writes its store), Prosody(request_client_certs=True,
              plugin_paths=[...]); Prosody(tls_protocol="tlsv1_2") for SCRAM-*-PLUS;
              Prosody(sasl2=True, fast=True): XEP-0388 SASL2 + XEP-0386 Bind2 (+ XEP-0484
              FAST), with sasl2_plugins (mod_sasl2 fixed for 0.12).
    Prosody   one throwaway server per test: start/stop/kill/restart, register users,
              read and wait on its debug log.
    Stanzad   the daemon under test: writes its config (0600), reads its stderr on a
              thread, wait_for(regex) wakes up as soon as a matching line arrives.
    Peer      a slixmpp client on its own asyncio loop in a background thread, with
              blocking helpers: ping, disco_info, version, raw_iq.
    IntegrationTest   unittest.TestCase wiring the above together with cleanups.
    JsonClient        a client of the daemon's JSON-lines socket: request() with auto ids,
              wait_event() on socket reads with a deadline (docs/json-protocol.md).
    JsonlTest         IntegrationTest + start_daemon() (waits for `listening on`) and
              client(); Peer also sends and collects messages (send_message,
              wait_message); LineReader follows a child's output (stanzactl tail).
    IM and MUC (test_im_*.py)   Peer keeps every presence too (wait_presence,
              ReceivedPresence with the XEP-0045 fields); muc_join/muc_send/muc_subject/
              muc_nick/muc_kick/muc_leave, enable_carbons, roster_set/roster_remove/
              roster_get, send_chat_state, manual_subscriptions; ReceivedMessage reads
              receipts, chat states, corrections, markers, subjects and carbons;
              wire_stanzas/wait_wire read the daemon's wire log (log_level = "trace").

Rules kept here so the tests need not think about them:
- No fixed sleeps to wait for something to happen: waits are on a condition variable
  (stanzad's log) or a bounded poll (Prosody's log file, a TCP port). The only fixed
  windows are explicit absence checks (Stanzad.assert_absent), bounded and documented.
- No orphans: every child runs under `setpriv --pdeathsig KILL` in its own session and is
  registered for an atexit kill; SIGTERM/SIGHUP to the test process become SystemExit so
  cleanups and atexit run. Spawn children from the main thread only (PDEATHSIG follows the
  thread that forked, not the process).
- Each test gets its own temp dir, Prosody and ports, so test files run in parallel.

Needs Debian's /usr/bin/python3 (python3-slixmpp 1.8.3 is installed for it), prosody 0.12,
openssl. The daemon binary comes from $STANZAD_BIN, else build/daemon/stanzad in the repo.

The code lives in harness_*.py beside this file, each part importing only the ones before
it (process <- certs <- prosody <- stanzad <- peer <- testcase <- jsonl <- faults <- traffic;
im after peer and stanzad):
    harness_process    paths, LOOPBACK/XMPP_DOMAIN, _say, _spawn/_track, poll_until
    harness_certs      Certs, make_ca and friends; Prosody plugins (client certs, SASL2)
    harness_prosody    Prosody, start_on_free_ports
    harness_stanzad    to_toml and the config sections, rx_* log lines, Stanzad, run_stanzad
    harness_peer       Peer, ReceivedMessage, ReceivedPresence, the *_NS namespaces
    harness_testcase   IntegrationTest, main
    harness_jsonl      JsonClient, stanzactl (run_stanzactl, LineReader), JsonlTest
    harness_faults     XEP-0198 rx_*, Peer.start_bulk/BulkSender and friends, Fault
    harness_traffic    Traffic, count_replayed, FaultTest
    harness_im         Peer.muc_*/roster_*/enable_carbons, MucJoin, wire_stanzas/wait_wire
This module imports them all (which also adds the methods some parts attach to Peer and
JsonClient) and re-exports every name they define or import, private ones included, so
`import harness; harness.X` and `from harness import X` work as before: tests, netpeers.py,
ejabberd.py and bench/ import harness only. No part keeps state that a caller assigns: a
name re-exported here is the part's own object, so mutate it, never rebind harness.X.
"""

from __future__ import annotations

import harness_process
import harness_certs
import harness_prosody
import harness_stanzad
import harness_peer
import harness_testcase
import harness_jsonl
import harness_faults
import harness_traffic
import harness_im

_PARTS = (harness_process, harness_certs, harness_prosody, harness_stanzad, harness_peer,
          harness_testcase, harness_jsonl, harness_faults, harness_traffic, harness_im)

for _part in _PARTS:
    for _name, _value in vars(_part).items():
        if _name.startswith("__"):
            continue
        if globals().get(_name, _value) is not _value:
            raise ImportError(f"harness: {_part.__name__}.{_name} is not the {_name} "
                              f"another part defines")
        globals()[_name] = _value
del _part, _name, _value
