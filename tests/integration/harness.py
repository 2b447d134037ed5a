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
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Union

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_STANZAD_BIN = REPO / "build" / "daemon" / "stanzad"
XMPP_DOMAIN = "localhost"
LOOPBACK = "127.0.0.1"

Pattern = Union[str, "re.Pattern[str]"]


def stanzad_bin() -> Path:
    """The daemon under test: $STANZAD_BIN, else build/daemon/stanzad in this repo."""
    return Path(os.environ.get("STANZAD_BIN") or DEFAULT_STANZAD_BIN)


def _say(prefix: str, text: str) -> None:
    """Echo a line to the test's output (CTest shows it when a test fails)."""
    with _print_lock:
        sys.stderr.write(f"{prefix}{text}\n")
        sys.stderr.flush()


_print_lock = threading.Lock()


# --------------------------------------------------------------------------------------
# Process hygiene: nothing we start survives us.

_live: "set[Any]" = set()
_live_lock = threading.Lock()


def _track(obj: Any) -> None:
    with _live_lock:
        _live.add(obj)


def _untrack(obj: Any) -> None:
    with _live_lock:
        _live.discard(obj)


@atexit.register
def _kill_leftovers() -> None:
    with _live_lock:
        leftovers = list(_live)
    for obj in leftovers:
        with contextlib.suppress(Exception):
            obj.kill()


def _exit_on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


if threading.current_thread() is threading.main_thread():
    for _sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(_sig) in (signal.SIG_DFL, None):
            signal.signal(_sig, _exit_on_signal)

_SETPRIV = shutil.which("setpriv")


def _spawn(argv: list, **kwargs: Any) -> subprocess.Popen:
    """Start a child that dies with us (PDEATHSIG) and ignores our terminal's Ctrl-C
    (own session): the harness decides how and in which order children stop."""
    if _SETPRIV:
        argv = [_SETPRIV, "--pdeathsig", "KILL", "--"] + [str(a) for a in argv]
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen([str(a) for a in argv], start_new_session=True, **kwargs)


def free_port(host: str = LOOPBACK) -> int:
    """A port that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_accepts(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def poll_until(predicate: Callable[[], Any], timeout: float, what: str,
               on_timeout: Optional[Callable[[], str]] = None) -> Any:
    """Call predicate with a short growing backoff (5 ms .. 100 ms) until it returns a
    true value, for at most `timeout` seconds. For things that cannot notify us (a file
    written by another process, a TCP port)."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = on_timeout() if on_timeout else ""
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}\n{detail}")
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.1)


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------------------
# Certificates

@dataclass
class Certs:
    """PEM files made by make_ca(). Keys are EC P-256 (fast to generate)."""
    dir: Path
    ca_cert: Path                # the test CA: give it to stanzad as ca_file
    ca_key: Path
    server_cert: Path            # "localhost" (SAN DNS:localhost, IP:127.0.0.1), by ca
    server_key: Path
    wrong_host_cert: Path        # "wrong.example" only, signed by the trusted ca
    wrong_host_key: Path
    untrusted_ca_cert: Path      # a second CA that nobody trusts
    untrusted_ca_key: Path
    untrusted_server_cert: Path  # "localhost", signed by the untrusted CA
    untrusted_server_key: Path
    ip_only_cert: Path           # names only IP:127.0.0.1 (the connect address, not the
    ip_only_key: Path            # XMPP domain), signed by the trusted ca


def _openssl(*args: Any, cwd: Optional[Path] = None) -> None:
    env = dict(os.environ, OPENSSL_CONF="/dev/null")  # no surprises from the system config
    proc = subprocess.run(["openssl", *map(str, args)], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed:\n{proc.stderr}")


def _ec_key(path: Path) -> Path:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", path)
    os.chmod(path, 0o600)
    return path


def _make_ca_pair(d: Path, stem: str, cn: str) -> "tuple[Path, Path]":
    key = _ec_key(d / f"{stem}.key")
    cnf = d / f"{stem}.cnf"
    cnf.write_text(textwrap.dedent(f"""\
        [req]
        distinguished_name = dn
        prompt = no
        x509_extensions = v3_ca
        [dn]
        CN = {cn}
        [v3_ca]
        basicConstraints = critical, CA:TRUE
        keyUsage = critical, keyCertSign, cRLSign
        subjectKeyIdentifier = hash
        authorityKeyIdentifier = keyid:always
        """))
    cert = d / f"{stem}.pem"
    _openssl("req", "-config", cnf, "-x509", "-new", "-key", key, "-days", "30",
             "-sha256", "-set_serial", "0x" + secrets.token_hex(8), "-out", cert)
    return cert, key


def _make_leaf(d: Path, stem: str, cn: str, sans: "list[str]",
               ca_cert: Path, ca_key: Path) -> "tuple[Path, Path]":
    key = _ec_key(d / f"{stem}.key")
    csr = d / f"{stem}.csr"
    cnf = d / f"{stem}.cnf"
    cnf.write_text(textwrap.dedent(f"""\
        [req]
        distinguished_name = dn
        prompt = no
        [dn]
        CN = {cn}
        [leaf]
        basicConstraints = critical, CA:FALSE
        keyUsage = critical, digitalSignature
        extendedKeyUsage = serverAuth, clientAuth
        subjectAltName = {", ".join(sans)}
        subjectKeyIdentifier = hash
        authorityKeyIdentifier = keyid
        """))
    _openssl("req", "-config", cnf, "-new", "-key", key, "-out", csr)
    cert = d / f"{stem}.pem"
    _openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
             "-set_serial", "0x" + secrets.token_hex(8), "-days", "30", "-sha256",
             "-extfile", cnf, "-extensions", "leaf", "-out", cert)
    return cert, key


def make_ca(directory: Union[str, Path], hostname: str = XMPP_DOMAIN) -> Certs:
    """Generate a test CA and certificates into `directory` (created if needed)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = _make_ca_pair(d, "ca", "stanzad test CA")
    server_cert, server_key = _make_leaf(
        d, "server", hostname, [f"DNS:{hostname}", "IP:127.0.0.1"], ca_cert, ca_key)
    wrong_cert, wrong_key = _make_leaf(
        d, "wrong-host", "wrong.example", ["DNS:wrong.example"], ca_cert, ca_key)
    uca_cert, uca_key = _make_ca_pair(d, "untrusted-ca", "stanzad UNTRUSTED test CA")
    userver_cert, userver_key = _make_leaf(
        d, "untrusted-server", hostname, [f"DNS:{hostname}", "IP:127.0.0.1"],
        uca_cert, uca_key)
    ip_cert, ip_key = _make_leaf(d, "ip-only", LOOPBACK, [f"IP:{LOOPBACK}"], ca_cert, ca_key)
    return Certs(d, ca_cert, ca_key, server_cert, server_key, wrong_cert, wrong_key,
                 uca_cert, uca_key, userver_cert, userver_key, ip_cert, ip_key)


def make_leaf(certs: Certs, stem: str, names: "list[str]") -> "tuple[Path, Path]":
    """A server certificate signed by the test CA of `certs` for `names` (SAN entries
    such as "DNS:xmpp.example.test" or "IP:::1"; the first DNS name is also the CN).
    Returns (cert, key), written into certs.dir as STEM.pem and STEM.key."""
    cn = next((n.split(":", 1)[1] for n in names if n.startswith("DNS:")), stem)
    return _make_leaf(certs.dir, stem, cn, list(names), certs.ca_cert, certs.ca_key)


def make_self_signed(directory: Union[str, Path], stem: str,
                     names: "list[str]") -> "tuple[Path, Path]":
    """A self-signed server certificate (no CA behind it, CA:FALSE) for `names` (SAN
    entries, e.g. ["DNS:localhost"]): what a home server reached over Tor often has.
    OpenSSL's verdict on it is "self-signed certificate" (error 18). Returns (cert, key)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cn = next((n.split(":", 1)[1] for n in names if n.startswith("DNS:")), stem)
    key = _ec_key(d / f"{stem}.key")
    cnf = d / f"{stem}.cnf"
    cnf.write_text(textwrap.dedent(f"""\
        [req]
        distinguished_name = dn
        prompt = no
        x509_extensions = leaf
        [dn]
        CN = {cn}
        O = stanzad self-signed test server
        [leaf]
        basicConstraints = critical, CA:FALSE
        keyUsage = critical, digitalSignature
        extendedKeyUsage = serverAuth
        subjectAltName = {", ".join(names)}
        subjectKeyIdentifier = hash
        """))
    cert = d / f"{stem}.pem"
    _openssl("req", "-config", cnf, "-x509", "-new", "-key", key, "-days", "30",
             "-sha256", "-set_serial", "0x" + secrets.token_hex(8), "-out", cert)
    return cert, key


def spki_pin(cert: Union[str, Path]) -> str:
    """The tls_pin of a certificate: "sha256/" + base64 of the SHA-256 of its DER
    SubjectPublicKeyInfo (HPKP's and curl's form), computed with the openssl CLI the way
    a user would: openssl x509 -pubkey -noout | openssl pkey -pubin -outform der |
    openssl dgst -sha256 -binary | base64."""
    env = dict(os.environ, OPENSSL_CONF="/dev/null")

    def run(args: "list[str]", data: Optional[bytes] = None) -> bytes:
        proc = subprocess.run(["openssl", *args], input=data, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stderr.decode()}")
        return proc.stdout

    pubkey_pem = run(["x509", "-in", str(cert), "-pubkey", "-noout"])
    spki_der = run(["pkey", "-pubin", "-outform", "der"], pubkey_pem)
    digest = run(["dgst", "-sha256", "-binary"], spki_der)
    assert len(digest) == 32, digest
    import base64
    return "sha256/" + base64.b64encode(digest).decode()


XMPP_ADDR_OID = "1.3.6.1.5.5.7.8.5"  # id-on-xmppAddr (RFC 6120 §13.7.1.4, XEP-0178)


def make_client_cert(certs: Certs, jid: str, stem: Optional[str] = None, *,
                     passphrase: Optional[str] = None,
                     xmpp_addrs: Optional["list[str]"] = None) -> "tuple[Path, Path]":
    """A client certificate for `jid` signed by the test CA of `certs` (XEP-0178): CN =
    the JID, subjectAltName otherName id-on-xmppAddr;UTF8:JID (or one per entry of
    `xmpp_addrs`, which may be empty), extendedKeyUsage clientAuth. With `passphrase` the
    key is an encrypted PKCS#8 PEM ("BEGIN ENCRYPTED PRIVATE KEY", AES-256-CBC).
    Returns (cert, key), written into certs.dir as STEM.pem and STEM.key (STEM defaults
    to "client-" + the local part)."""
    d = certs.dir
    stem = stem or "client-" + re.sub(r"[^A-Za-z0-9_.-]", "_", jid.split("@")[0])
    addrs = [jid] if xmpp_addrs is None else list(xmpp_addrs)
    key = _ec_key(d / f"{stem}.key")
    csr = d / f"{stem}.csr"
    cnf = d / f"{stem}.cnf"
    san = ", ".join(f"otherName:{XMPP_ADDR_OID};UTF8:{a}" for a in addrs)
    cnf.write_text(textwrap.dedent(f"""\
        [req]
        distinguished_name = dn
        prompt = no
        [dn]
        CN = {jid}
        [leaf]
        basicConstraints = critical, CA:FALSE
        keyUsage = critical, digitalSignature
        extendedKeyUsage = clientAuth
        subjectKeyIdentifier = hash
        authorityKeyIdentifier = keyid
        """) + (f"subjectAltName = {san}\n" if addrs else ""))
    _openssl("req", "-config", cnf, "-new", "-key", key, "-out", csr)
    cert = d / f"{stem}.pem"
    _openssl("x509", "-req", "-in", csr, "-CA", certs.ca_cert, "-CAkey", certs.ca_key,
             "-set_serial", "0x" + secrets.token_hex(8), "-days", "30", "-sha256",
             "-extfile", cnf, "-extensions", "leaf", "-out", cert)
    if passphrase is not None:
        plain = d / f"{stem}.plain.key"
        key.rename(plain)
        _openssl("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", plain, "-out", key,
                 "-passout", f"pass:{passphrase}")
        os.chmod(key, 0o600)
        plain.unlink()
    return cert, key


def cert_der(cert: Union[str, Path]) -> bytes:
    """The DER bytes of the first certificate in a PEM file."""
    import base64
    text = Path(cert).read_text()
    m = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S)
    if not m:
        raise ValueError(f"no PEM certificate in {cert}")
    return base64.b64decode("".join(m.group(1).split()))


# Prosody 0.12 with prosody-modules' mod_client_certs (XEP-0257): SASL EXTERNAL for a
# client certificate that the user pinned. Facts (Debian prosody 0.12.3, prosody-modules
# 0.0~hg20230223):
# - The module does not load on 0.12 as shipped: its ad-hoc command asks for the
#   permission "user", which 0.12's adhoc.lib renamed "any" (it raises an error).
#   client_certs_plugin() writes a copy with that one word changed.
# - It offers EXTERNAL only on a TLS session in which the client presented a certificate
#   (its stream-features hook; without one it logs "No Client Certificate" at error level),
#   and Prosody asks for a certificate only with request_client_certs=True.
# - It authenticates against the store "client_certs" of the user (util.datamanager:
#   DATA/<host, %XX-escaped>/client_certs/<user>.dat, a Lua `return { ... }` table keyed
#   by the certificate's name; each entry has name, x509cert (base64 DER), pem (LuaSec's
#   cert:pem()), digest (cert:digest("sha1"): lower-case hex, no colons),
#   no_cert_management). A certificate matches when both digest and pem are equal.
#   pin_client_cert() writes that file: the module's own ways to pin (XEP-0257 <append/>,
#   its ad-hoc command) crash on Debian's Lua 5.4 in util.x509.der2pem, which passes the
#   float (#data-1)/64 as gsub's count ("number has no integer representation").
# - <auth mechanism='EXTERNAL'>=</auth> (empty authzid) takes the user from the
#   certificate's single xmppAddr; base64 of a JID names it. Refusals are
#   <failure><not-authorized/></failure> with no <text/>.
CLIENT_CERTS_MODULE = Path("/usr/lib/prosody/modules/mod_client_certs/mod_client_certs.lua")


def client_certs_plugin(directory: Union[str, Path]) -> Path:
    """Write mod_client_certs, fixed for Prosody 0.12, as DIRECTORY/mod_client_certs/
    mod_client_certs.lua; returns DIRECTORY (a plugin_paths entry)."""
    src = CLIENT_CERTS_MODULE.read_text()
    old = 'adhoc_new("Manage certificates", "http://prosody.im/protocol/certs", adhoc_handler, "user")'
    if src.count(old) != 1:
        raise AssertionError(f"{CLIENT_CERTS_MODULE} changed: the line to fix is not there")
    d = Path(directory)
    (d / "mod_client_certs").mkdir(parents=True, exist_ok=True)
    (d / "mod_client_certs" / "mod_client_certs.lua").write_text(
        src.replace(old, old.replace('"user"', '"any"')))
    return d


# Prosody 0.12 with prosody-modules' XEP-0388 SASL2 (mod_sasl2), XEP-0386 Bind2
# (mod_sasl2_bind2) and XEP-0484 FAST (mod_sasl2_fast). Facts (Debian prosody 0.12.3,
# prosody-modules 0.0~hg20230223, LuaSec 1.2):
# - mod_sasl2 as shipped fails every STARTTLS session's features ("attempt to call a nil
#   value (method 'ssl_info')"): it calls the 0.13 connection methods ssl_info and
#   ssl_peerfinished. sasl2_plugins() writes a copy that asks the LuaSec socket instead,
#   as 0.12's mod_saslauth does (socket:info(), socket:getpeerfinished(), the socket as
#   the "tls-unique" userdata). Its tls-exporter branch stays off (it looks for the 0.13
#   method conn.ssl_exportkeyingmaterial), so: SCRAM-SHA-1-PLUS and HT-SHA-256-UNIQ with
#   tls-unique on TLS 1.2 only, like legacy SASL; on TLS 1.3 SCRAM-SHA-1, PLAIN and
#   HT-SHA-256-NONE.
# - mod_sasl2_fast offers <fast/> only when the stream header names a user ('from' with a
#   localpart), which it reads from the stream-features event's `stream` (the header's
#   attributes): 0.12's mod_c2s passes none (a Lua error, no features at all). The copy
#   keeps the client's 'from' through the session's stream_attrs callback (util.xmppstream
#   calls it with the client's 'from' when it opens its reply) and passes that. It keeps tokens in the map store "fast_tokens" (on 0.12 a shim over
#   keyval: DATA/<host>/fast_tokens/<user>.dat, keys "<sha256(user-agent id)>-new" and
#   "-cur", each with its `secret`). After a refused token the same stream refuses every
#   other mechanism (invalid-mechanism: the FAST handler stays selected).
# - mod_sasl2_bind2 binds "<tag>~<base64 of sha1(user-agent id), 9 bytes>" and offers
#   carbons and csi inline; no XEP-0198 inline.
# - mod_sasl2_sm cannot work on 0.12: it calls mod_smacks.do_resume and do_enable, which
#   0.12's mod_smacks does not export (the Lua error happens on the first inline
#   <enable/>). XEP-0198 is enabled (or resumed, without Bind2) the legacy way after the
#   <success/> and the features that follow it.
# - mod_sasl2_fast gives util.datetime a float expiry (now() + ttl), which 0.12's os.date
#   refuses on Lua 5.4 ("number has no integer representation"): no <success/> at all for
#   a login that asks for a token. The copy rounds it down. It also reads the user-agent id
#   with stanza:get_child_attr, which 0.12 lacks (a FAST login gets no answer).
SASL2_FIXES = {  # module: ((0.13 code, 0.12 code), ...), each exactly once in the source
    "mod_sasl2": (
    ("return self.userdata[\"tls-unique\"]:ssl_peerfinished();",
     "return self.userdata[\"tls-unique\"]:getpeerfinished();"),
    ("local info = origin.conn:ssl_info();",
     "local socket = origin.conn:socket();\n\t\t\tlocal info = socket.info and socket:info();"),
    ("elseif origin.conn.ssl_peerfinished and origin.conn:ssl_peerfinished() then",
     "elseif socket.getpeerfinished and socket:getpeerfinished() then"),
    ("[\"tls-unique\"] = origin.conn;", "[\"tls-unique\"] = socket;"),
    ("stream = event.stream });",
     "stream = event.stream or { from = origin.sasl2_stream_from } });"),
    ("local host = module.host;\n", """local host = module.host;
-- Prosody 0.12 (stanzad's harness.sasl2_plugins): keep the client's stream 'from'.
local function keep_stream_from(session)
	if session.type == "c2s_unauthed" and not session.stream_attrs then
		function session.stream_attrs(s, _, client_from) s.sasl2_stream_from = client_from; end
	end
end
require "util.filters".add_filter_hook(keep_stream_from);
function module.unload() require "util.filters".remove_filter_hook(keep_stream_from); end
"""),
    ),
    "mod_sasl2_fast": (
        ("expiry = dt.datetime(token_info.expires_at);",
         "expiry = dt.datetime(math.floor(token_info.expires_at));"),
        ('local client_id = auth:get_child_attr("user-agent", nil, "id");',
         'local client_id = (auth:get_child("user-agent") or { attr = {} }).attr.id;'),
    ),
}


def sasl2_plugins(directory: Union[str, Path]) -> Path:
    """Write mod_sasl2 and mod_sasl2_fast, fixed for Prosody 0.12, as DIRECTORY/MOD/MOD.lua;
    returns DIRECTORY (a plugin_paths entry; mod_sasl2_bind2 loads as shipped and finds
    this mod_sasl2 through its module:depends("sasl2"))."""
    d = Path(directory)
    for module, fixes in SASL2_FIXES.items():
        path = Path(f"/usr/lib/prosody/modules/{module}/{module}.lua")
        src = path.read_text()
        for old, new in fixes:
            if src.count(old) != 1:
                raise AssertionError(f"{path} changed: {old!r} is not there once")
            src = src.replace(old, new)
        (d / module).mkdir(parents=True, exist_ok=True)
        (d / module / f"{module}.lua").write_text(src)
    return d


def _lua_literal(s: str) -> str:
    out = []
    for ch in s:
        if ch in "\\\"":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):03d}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _prosody_escape(s: str) -> str:
    """util.datamanager's encode(): every non-alphanumeric byte becomes %xx."""
    return "".join(c if c.isascii() and c.isalnum() else
                   "".join(f"%{b:02x}" for b in c.encode()) for c in s)


def pin_client_cert(prosody: "Prosody", user: str, cert: Union[str, Path],
                    name: str = "stanzad") -> Path:
    """Pin `cert` for USER@prosody.host the way mod_client_certs stores an added
    certificate, by writing its store file directly (before or while Prosody runs: the
    module reads the file on every EXTERNAL attempt). Replaces the user's earlier pins.
    Returns the file's path."""
    import base64
    import hashlib
    der = cert_der(cert)
    b64 = base64.b64encode(der).decode()
    # LuaSec's cert:pem() is OpenSSL's PEM_write_bio_X509: 64 columns, final newline.
    pem = ("-----BEGIN CERTIFICATE-----\n"
           + "".join(b64[i:i + 64] + "\n" for i in range(0, len(b64), 64))
           + "-----END CERTIFICATE-----\n")
    entry = {"name": name, "x509cert": b64, "pem": pem,
             "digest": hashlib.sha1(der).hexdigest()}
    fields = "".join(f"\t\t[{_lua_literal(k)}] = {_lua_literal(v)};\n"
                     for k, v in entry.items())
    path = (prosody.data_path / _prosody_escape(prosody.host) / "client_certs"
            / f"{_prosody_escape(user)}.dat")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"return {{\n\t[{_lua_literal(name)}] = {{\n{fields}"
                    "\t\t[\"no_cert_management\"] = false;\n\t};\n};\n")
    return path


# --------------------------------------------------------------------------------------
# Prosody

def _lua_str(s: Union[str, Path]) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


class Prosody:
    """A throwaway Prosody 0.12 on loopback, configured and owned by one test.

    Runs `prosody --config FILE -F` in the foreground with run_as_root, its own pidfile,
    data_path and a debug log inside `workdir`. No s2s. One VirtualHost ("localhost")
    with internal_hashed authentication (SCRAM-SHA-1 and PLAIN after STARTTLS) and
    c2s_require_encryption. The c2s port is chosen at the first start() and kept by
    restart(), so clients can reconnect to the same address.

    direct_tls=True adds a XEP-0368 direct-TLS listener (c2s_direct_tls_ports) on
    `direct_tls_port` (chosen like the c2s port when not given); `interfaces` are the
    addresses both listeners bind (default 127.0.0.1 only; add "::1" for IPv6). start()
    waits until every (listener, interface) pair is bound and accepts connections.

    TLS and SASL options (issue 12), written into the global and the host `ssl` tables
    (the global one serves the direct-TLS port, the host one STARTTLS, both SNI):
    - tls_protocol: LuaSec's `protocol`, e.g. "tlsv1_2" (exactly TLS 1.2: the only
      version on which Prosody 0.12 offers SCRAM-SHA-1-PLUS, with tls-unique) or
      "tlsv1_2+" (1.2 and later, Prosody's default).
    - request_client_certs: `verify = { "peer", "client_once" }`: ask every client for a
      certificate (Prosody's c2s default is verify "none": no CertificateRequest at all,
      so a client certificate never arrives). Core's verifyext { "lsec_continue",
      "lsec_ignore_purpose" } stays, so an unverifiable certificate does not fail the
      handshake; mod_client_certs checks it against what the user pinned.
    - sasl2: also offer XEP-0388 SASL2 with XEP-0386 Bind2 (sasl2_plugins() into
      workdir/sasl2-plugins) and, with fast (the default), XEP-0484 FAST tokens.
    - plugin_paths: directories searched for modules before Prosody's own (e.g. the one
      client_certs_plugin() writes); name the modules in `modules`.
    """

    DEFAULT_MODULES = ("roster", "saslauth", "tls", "disco", "ping", "version", "time",
                       "smacks", "mam", "carbons", "blocklist", "private", "vcard")

    def __init__(self, workdir: Union[str, Path], certs: Optional[Certs] = None, *,
                 cert: Optional[Path] = None, key: Optional[Path] = None,
                 port: Optional[int] = None, host: str = XMPP_DOMAIN,
                 modules: Iterable[str] = DEFAULT_MODULES, muc: bool = False,
                 extra_global: str = "", extra_host: str = "", name: str = "prosody",
                 smacks_hibernation_time: int = 60, direct_tls: bool = False,
                 direct_tls_port: Optional[int] = None,
                 interfaces: Iterable[str] = (LOOPBACK,),
                 tls_protocol: Optional[str] = None, request_client_certs: bool = False,
                 plugin_paths: Iterable[Union[str, Path]] = (),
                 sasl2: bool = False, fast: bool = True):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if certs is None and (cert is None or key is None):
            certs = make_ca(self.workdir / "certs", host)
        self.certs = certs
        self.cert = Path(cert or certs.server_cert)
        self.key = Path(key or certs.server_key)
        self.host = host
        self.modules = list(modules)
        self.muc = muc
        self.extra_global = extra_global
        # How long mod_smacks keeps a session whose connection dropped, for resumption
        # (Prosody's default is 600 s; a minute is plenty for every test and lets a test
        # outwait it when it must).
        self.smacks_hibernation_time = smacks_hibernation_time
        self.extra_host = extra_host
        self.name = name
        self.port = port or free_port()
        self.direct_tls = direct_tls or direct_tls_port is not None
        self.direct_tls_port = (direct_tls_port or self._other_port()) if self.direct_tls else None
        self.interfaces = list(interfaces)
        self.tls_protocol = tls_protocol
        self.request_client_certs = request_client_certs
        self.plugin_paths = [Path(p) for p in plugin_paths]
        if sasl2:
            self.plugin_paths.append(sasl2_plugins(self.workdir / "sasl2-plugins"))
            self.modules += ["sasl2", "sasl2_bind2"] + (["sasl2_fast"] if fast else [])
        self._port_fixed = port is not None or direct_tls_port is not None
        self.config_path = self.workdir / "prosody.cfg.lua"
        self.log_path = self.workdir / "prosody.log"
        self.console_path = self.workdir / "prosody.console.log"
        self.pidfile = self.workdir / "prosody.pid"
        self.data_path = self.workdir / "data"
        self.data_path.mkdir(exist_ok=True)
        self.proc: Optional[subprocess.Popen] = None
        self._console = None

    def _other_port(self) -> int:
        """A free port that is not the c2s port (for the direct-TLS listener)."""
        while True:
            port = free_port()
            if port != self.port:
                return port

    # -- configuration
    def ssl_table(self) -> str:
        """The Lua `ssl = { ... }` table of the global section and the VirtualHost."""
        fields = [f"certificate = {_lua_str(self.cert)}", f"key = {_lua_str(self.key)}"]
        if self.tls_protocol:
            fields.append(f"protocol = {_lua_str(self.tls_protocol)}")
        if self.request_client_certs:
            fields.append('verify = { "peer", "client_once" }')
        return "{ " + ", ".join(fields) + " }"

    def config_text(self) -> str:
        modules = ", ".join(_lua_str(m) for m in self.modules)
        plugin_paths = ("plugin_paths = { " + ", ".join(_lua_str(p) for p in self.plugin_paths)
                        + " }\n") if self.plugin_paths else ""
        text = f"""\
-- Written by stanzad's tests/integration/harness.py for one test run.
run_as_root = true
pidfile = {_lua_str(self.pidfile)}
data_path = {_lua_str(self.data_path)}
log = {{ {{ levels = {{ min = "debug" }}, to = "file", filename = {_lua_str(self.log_path)} }} }}
interfaces = {{ {", ".join(_lua_str(i) for i in self.interfaces)} }}
local_interfaces = {{ "{LOOPBACK}" }}
c2s_ports = {{ {self.port} }}
c2s_direct_tls_ports = {{ {self.direct_tls_port or ""} }}
s2s_ports = {{ }}
modules_enabled = {{ {modules} }}
modules_disabled = {{ "s2s", "s2s_auth_certs" }}
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = true
allow_registration = false
default_archive_policy = true
storage_archive_item_limit = 1000000
archive_expires_after = "never"
smacks_hibernation_time = {int(self.smacks_hibernation_time)}
certificates = {_lua_str(self.workdir)}
ssl = {self.ssl_table()}
{plugin_paths}{self.extra_global}

VirtualHost {_lua_str(self.host)}
    ssl = {self.ssl_table()}
{textwrap.indent(self.extra_host, "    ")}
"""
        if self.muc:
            text += f"""
Component {_lua_str("conference." + self.host)} "muc"
    modules_enabled = {{ "muc_mam" }}
    muc_room_locking = false
    restrict_room_creation = false
"""
        return text

    def write_config(self) -> None:
        self.config_path.write_text(self.config_text())

    # -- lifecycle
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 20.0) -> "Prosody":
        """Start and wait until the c2s port is bound and accepts connections."""
        def new_ports() -> None:
            self.port = free_port()
            if self.direct_tls:
                self.direct_tls_port = self._other_port()
        return start_on_free_ports(self, timeout, new_ports)

    def _start_once(self, timeout: float) -> None:
        assert not self.running, "already running"
        self.write_config()
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._console = open(self.console_path, "ab")
        self.proc = _spawn(["prosody", "--config", self.config_path, "-F"],
                           stdout=self._console, stderr=subprocess.STDOUT,
                           cwd=self.workdir)
        _track(self)
        listeners = [("c2s", self.port)]
        if self.direct_tls:
            listeners.append(("c2s_direct_tls", self.direct_tls_port))
        bound = [re.compile(rf"Added listening service {service} to \[{re.escape(iface)}\]:"
                            rf"{port}\b")
                 for service, port in listeners for iface in self.interfaces]
        failed = re.compile(rf"Failed to open server port "
                            rf"({'|'.join(str(p) for _, p in listeners)})\b")

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.proc.returncode} while starting\n"
                    f"{self.console_text()}\n{_tail(self.log_text())}")
            new_log = self.log_text()[log_offset:]
            if failed.search(new_log):
                raise _PortInUse()
            return (all(rx.search(new_log) for rx in bound)
                    and all(port_accepts(port, iface)
                            for _, port in listeners for iface in self.interfaces))

        where = ", ".join(f"[{i}]:{p}" for _, p in listeners for i in self.interfaces)
        poll_until(ready, timeout, f"{self.name} to listen on {where}",
                   lambda: f"{self.console_text()}\n{_tail(self.log_text())}")

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """SIGTERM (Prosody closes every stream), wait, SIGKILL if it hangs."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _say(f"[{self.name}] ", f"did not stop within {timeout:g}s; killing")
                self.proc.kill()
                self.proc.wait()
        return self._reap()

    def kill(self) -> Optional[int]:
        """SIGKILL: the server vanishes, its clients see the TCP connection drop."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return self._reap()

    def _reap(self) -> Optional[int]:
        rc = self.proc.returncode if self.proc else None
        _untrack(self)
        if self._console:
            self._console.close()
            self._console = None
        with contextlib.suppress(FileNotFoundError):
            self.pidfile.unlink()
        return rc

    def restart(self, kill: bool = False, timeout: float = 20.0) -> "Prosody":
        """Stop (or SIGKILL) and start again on the same port, same data."""
        self.kill() if kill else self.stop()
        return self.start(timeout)

    def __enter__(self) -> "Prosody":
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- accounts
    def prosodyctl(self, *args: str, timeout: float = 30.0) -> str:
        proc = subprocess.run(["prosodyctl", "--config", str(self.config_path), *args],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"prosodyctl {' '.join(args)} failed "
                                 f"({proc.returncode}):\n{proc.stdout}")
        return proc.stdout

    def register(self, user: str, password: str) -> str:
        """Create an account (works whether or not the server is running)."""
        if not self.config_path.exists():
            self.write_config()
        self.prosodyctl("register", user, self.host, password)
        return f"{user}@{self.host}"

    # -- log
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def console_text(self) -> str:
        try:
            return self.console_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_mark(self) -> int:
        """Current size of the log: pass as `since` to look only at what comes later."""
        return len(self.log_text())

    def wait_for_log(self, pattern: Pattern, timeout: float = 10.0,
                     since: int = 0) -> "re.Match[str]":
        """Poll the debug log (a file: nothing to wait on) until `pattern` matches."""
        rx = re.compile(pattern, re.M) if isinstance(pattern, str) else pattern
        return poll_until(lambda: rx.search(self.log_text(), since), timeout,
                          f"{rx.pattern!r} in {self.name}'s log",
                          lambda: _tail(self.log_text()[since:]))

    # Prosody writes "<timestamp> <session-id> <level> <message>"; a c2s session id
    # looks like "c2s55d5c8b0a1c0", and "Authenticated as user@host" ties it to a user.
    def session_ids(self, bare_jid: str, since: int = 0) -> "list[str]":
        """Ids of the c2s sessions that authenticated as `bare_jid`, oldest first."""
        rx = re.compile(rf"^.*?\s(c2s[0-9a-f]+)\s+info\s+Authenticated as "
                        rf"{re.escape(bare_jid)}\s*$", re.M)
        return rx.findall(self.log_text(), since)

    def session_lines(self, session_id: str) -> "list[str]":
        rx = re.compile(rf"\s{re.escape(session_id)}\s")
        return [line for line in self.log_text().splitlines() if rx.search(line)]

    def wait_for_session(self, bare_jid: str, timeout: float = 10.0,
                         since: int = 0) -> str:
        """Id of the first session authenticated as `bare_jid` after `since`."""
        return poll_until(lambda: (self.session_ids(bare_jid, since) or [None])[0],
                          timeout, f"a session authenticated as {bare_jid}",
                          lambda: _tail(self.log_text()[since:]))

    def wait_for_session_line(self, session_id: str, pattern: Pattern,
                              timeout: float = 10.0) -> str:
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern

        def find() -> Optional[str]:
            return next((l for l in self.session_lines(session_id) if rx.search(l)), None)

        return poll_until(find, timeout, f"{rx.pattern!r} for session {session_id}",
                          lambda: "\n".join(self.session_lines(session_id)[-40:]))


class _PortInUse(Exception):
    pass


def start_on_free_ports(server: Any, timeout: float, new_ports: Callable[[], None]) -> Any:
    """Runs server._start_once(timeout). The first start of a server is retried twice on
    new ports (new_ports() picks them) when one was taken between free_port() and the
    server's bind (_start_once raises _PortInUse); later starts keep their addresses."""
    attempts = 1 if server._port_fixed else 3
    for attempt in range(attempts):
        if attempt > 0:
            new_ports()
        try:
            server._start_once(timeout)
            server._port_fixed = True  # restarts keep the addresses
            return server
        except _PortInUse:
            server.kill()
            if attempt + 1 == attempts:
                raise AssertionError(f"{server.name}: a port was in use\n{_tail(server.log_text())}")
    return server


# --------------------------------------------------------------------------------------
# stanzad configuration (TOML)

def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (str, Path)):
        s = str(v)
        out = []
        for ch in s:
            if ch == "\\":
                out.append("\\\\")
            elif ch == '"':
                out.append('\\"')
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\t":
                out.append("\\t")
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                out.append(f"\\u{ord(ch):04X}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}"
                                for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else _toml_value(k)


def to_toml(config: dict) -> str:
    """Write a dict as TOML: scalars first, then [tables], then [[arrays of tables]].
    Lists of dicts at top level become [[name]] blocks; deeper ones inline tables."""
    lines: "list[str]" = []
    for k, v in config.items():
        if not isinstance(v, dict) and not (isinstance(v, list) and v
                                            and all(isinstance(x, dict) for x in v)):
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    for k, v in config.items():
        if isinstance(v, dict):
            lines += ["", f"[{_toml_key(k)}]"]
            lines += [f"{_toml_key(kk)} = {_toml_value(vv)}" for kk, vv in v.items()]
    for k, v in config.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for item in v:
                lines += ["", f"[[{_toml_key(k)}]]"]
                lines += [f"{_toml_key(kk)} = {_toml_value(vv)}" for kk, vv in item.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def daemon_section(workdir: Union[str, Path], **overrides: Any) -> dict:
    workdir = Path(workdir)
    section = {"state_dir": str(workdir / "state"),
               "socket": str(workdir / "stanzad.sock"),
               "log_level": "debug"}
    section.update(overrides)
    return section


def account_section(name: str, jid: str, *, port: int, ca_file: Optional[Path],
                    password: Optional[str] = None, host: str = LOOPBACK,
                    tls: str = "starttls", **extra: Any) -> dict:
    """One [[account]]; ca_file=None leaves the key out (system trust store only)."""
    acct: dict = {"name": name, "jid": jid}
    if password is not None:
        acct["password"] = password
    acct.update({"host": host, "port": port, "tls": tls})
    if ca_file is not None:
        acct["ca_file"] = str(ca_file)
    acct.update(extra)
    return acct


def stanzad_config(workdir: Union[str, Path], accounts: "list[dict]",
                   **daemon_overrides: Any) -> dict:
    return {"daemon": daemon_section(workdir, **daemon_overrides), "account": list(accounts)}


# --------------------------------------------------------------------------------------
# stanzad

# The log lines of the daemon's contract, as regular expressions (searched in a line).
def rx_connecting(account: str) -> str:
    """`account NAME: connecting to HOST:PORT`; groups: host, port."""
    return rf"account {re.escape(account)}: connecting to (\S+):(\d+)"


def rx_online(account: str) -> str:
    """`account NAME: online as FULLJID`; group: the full JID."""
    return rf"account {re.escape(account)}: online as (\S+)"


def rx_disconnected(account: str) -> str:
    """`account NAME: disconnected: REASON; reconnecting in 1.3s`; group: seconds."""
    return rf"account {re.escape(account)}: disconnected: .*; reconnecting in ([0-9.]+)s"


def rx_auth_failed(account: str) -> str:
    return (rf"account {re.escape(account)}: authentication failed: .*; "
            rf"not retrying until the config changes")


def rx_tls_failed(account: str) -> str:
    return rf"account {re.escape(account)}: TLS certificate verification failed: "


RX_SHUTTING_DOWN = r"stanzad: shutting down"
RX_STOPPED = r"stanzad: stopped"


def rx_reloaded(unchanged: int, added: int, removed: int, changed: int) -> str:
    return (rf"stanzad: config reloaded: {unchanged} unchanged, {added} added, "
            rf"{removed} removed, {changed} changed")

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Stanzad:
    """The daemon under test, in the foreground, its stderr read line by line.

    Lines are kept in `lines` (ANSI colours stripped) and echoed to our stderr with a
    prefix. wait_for() blocks on a condition variable that the reader thread notifies on
    every line, so a test continues the moment the daemon logs what it waits for.
    Positions: mark() returns the number of lines so far; pass it as `since` to look only
    at later lines.
    """

    def __init__(self, config: Union[dict, str], workdir: Union[str, Path], *,
                 name: str = "stanzad", binary: Optional[Union[str, Path]] = None,
                 args: Iterable[str] = (), echo: Union[bool, str] = True,
                 env: Optional[dict] = None, config_name: str = "stanzad.toml"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.binary = Path(binary) if binary else stanzad_bin()
        self.args = list(args)
        self.echo = echo
        self.env = env
        self.config_path = self.workdir / config_name
        self.lines: "list[str]" = []
        self.proc: Optional[subprocess.Popen] = None
        self._cond = threading.Condition()
        self._eof = False
        self._reader: Optional[threading.Thread] = None
        self._stdout_reader: Optional[threading.Thread] = None
        self.stdout_lines: "list[str]" = []
        self.write_config(config)

    def write_config(self, config: Union[dict, str]) -> None:
        """(Re)write the config file with mode 0600; a dict is written as TOML."""
        text = to_toml(config) if isinstance(config, dict) else config
        tmp = self.config_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.config_path)  # atomic: a reload never sees half a file
        self.config_text = text

    def start(self) -> "Stanzad":
        if not self.binary.exists():
            raise AssertionError(
                f"stanzad binary not found at {self.binary}: run `make build` "
                f"(or set STANZAD_BIN)")
        argv = [self.binary, "-c", self.config_path, *self.args]
        env = dict(os.environ)
        env.update(self.env or {})
        self.proc = _spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           cwd=self.workdir, env=env)
        _track(self)
        self._reader = threading.Thread(target=self._read, args=(self.proc.stderr, True),
                                        name=f"{self.name}-stderr", daemon=True)
        self._stdout_reader = threading.Thread(target=self._read,
                                               args=(self.proc.stdout, False),
                                               name=f"{self.name}-stdout", daemon=True)
        self._reader.start()
        self._stdout_reader.start()
        return self

    def _read(self, stream: Any, is_log: bool) -> None:
        prefix = self.echo if isinstance(self.echo, str) else f"[{self.name}] "
        try:
            for raw in iter(stream.readline, b""):
                line = _ANSI.sub("", raw.decode("utf-8", "replace").rstrip("\r\n"))
                if self.echo:
                    _say(prefix, line)
                with self._cond:
                    (self.lines if is_log else self.stdout_lines).append(line)
                    self._cond.notify_all()
        finally:
            with contextlib.suppress(Exception):
                stream.close()
            if is_log:
                with self._cond:
                    self._eof = True
                    self._cond.notify_all()

    # -- reading the log
    def mark(self) -> int:
        with self._cond:
            return len(self.lines)

    def output(self, since: int = 0) -> str:
        with self._cond:
            return "\n".join(self.lines[since:])

    @staticmethod
    def _rx(pattern: Pattern) -> "re.Pattern[str]":
        return re.compile(pattern) if isinstance(pattern, str) else pattern

    def matches(self, pattern: Pattern, since: int = 0) -> "list[re.Match[str]]":
        rx = self._rx(pattern)
        with self._cond:
            return [m for m in map(rx.search, self.lines[since:]) if m]

    def count(self, pattern: Pattern, since: int = 0) -> int:
        return len(self.matches(pattern, since))

    def index(self, pattern: Pattern, since: int = 0) -> Optional[int]:
        """Index in `lines` of the first line matching `pattern` from `since`, or None."""
        rx = self._rx(pattern)
        with self._cond:
            return next((i for i in range(since, len(self.lines))
                         if rx.search(self.lines[i])), None)

    def wait_for(self, pattern: Pattern, timeout: float = 10.0, since: int = 0,
                 nth: int = 1) -> "re.Match[str]":
        """Block until the nth line (since `since`) matching `pattern` has appeared, and
        return its match. Fails at once if the daemon exits first."""
        rx = self._rx(pattern)
        deadline = time.monotonic() + timeout
        scanned, found = since, 0
        with self._cond:
            while True:
                while scanned < len(self.lines):
                    m = rx.search(self.lines[scanned])
                    scanned += 1
                    if m:
                        found += 1
                        if found >= nth:
                            return m
                if self._eof:
                    rc = self.proc.wait() if self.proc else None
                    raise AssertionError(
                        f"{self.name} exited (status {rc}) before logging "
                        f"{rx.pattern!r}\n{self._tail_locked()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out after {timeout:g}s waiting for {self.name} to log "
                        f"{rx.pattern!r} (found {found} of {nth})\n{self._tail_locked()}")
                self._cond.wait(remaining)

    def assert_absent(self, pattern: Pattern, window: float, since: int = 0) -> None:
        """Fail as soon as `pattern` appears; pass if it has not after `window` seconds.

        An absence cannot be observed, only waited out: this is the one place where a
        test spends a fixed amount of time. Keep windows short and say what they cover.
        """
        rx = self._rx(pattern)
        deadline = time.monotonic() + window
        scanned = since
        with self._cond:
            while True:
                while scanned < len(self.lines):
                    if rx.search(self.lines[scanned]):
                        raise AssertionError(
                            f"{self.name} logged {rx.pattern!r}, which must not happen:\n"
                            f"{self.lines[scanned]}\n{self._tail_locked()}")
                    scanned += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._eof:
                    return
                self._cond.wait(remaining)

    def _tail_locked(self, n: int = 40) -> str:
        return "--- last lines of stanzad's log ---\n" + "\n".join(self.lines[-n:])

    # -- process
    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> Optional[int]:
        return self.proc.poll() if self.proc else None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 5.0) -> int:
        """Wait for the process to exit and for its log to be read to the end."""
        assert self.proc is not None
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running {timeout:g}s later\n"
                                 f"{self.output()[-4000:]}") from None
        for t in (self._reader, self._stdout_reader):
            if t:
                t.join(5)
        _untrack(self)
        return rc

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM and wait for exit; SIGKILL if it does not stop in time."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _say(f"[{self.name}] ", f"did not stop within {timeout:g}s; killing")
                self.kill()
        return self.wait_exit(5)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for t in (self._reader, self._stdout_reader):
            if t and t is not threading.current_thread():
                t.join(5)
        _untrack(self)

    def __enter__(self) -> "Stanzad":
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is not None:
            self.kill()
        else:
            self.stop()


def run_stanzad(args: Iterable[Union[str, Path]], timeout: float = 10.0,
                binary: Optional[Union[str, Path]] = None) -> subprocess.CompletedProcess:
    """Run stanzad to completion (e.g. --check-config, --version), capturing output."""
    binary = Path(binary) if binary else stanzad_bin()
    if not binary.exists():
        raise AssertionError(f"stanzad binary not found at {binary}: run `make build` "
                             f"(or set STANZAD_BIN)")
    return subprocess.run([str(binary), *map(str, args)], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout)


# --------------------------------------------------------------------------------------
# Peer: slixmpp on its own loop

class PeerError(AssertionError):
    pass


class Peer:
    """A second XMPP client (slixmpp 1.8) logged in over STARTTLS, verifying the server
    with the test CA. slixmpp is asyncio-only: it gets its own event loop on a daemon
    thread, and every blocking helper hands a coroutine to that loop with
    run_coroutine_threadsafe and waits for the result.

    It answers XEP-0199 ping, XEP-0030 disco#info and XEP-0092 version itself, so two
    Peers can stand in for stanzad when testing the harness. `plugins` names more slixmpp
    plugins to register before connecting (e.g. "xep_0045"). Every <message/> and every
    <presence/> it receives is kept (`messages`, `presences`) for the wait_* helpers.
    """

    def __init__(self, jid: str, password: str, ca_file: Union[str, Path], port: int, *,
                 host: str = LOOPBACK, timeout: float = 15.0, presence: bool = True,
                 connect: bool = True, plugins: Iterable[str] = ()):
        self.jid = jid
        self.password = password
        self.ca_file = Path(ca_file)
        self.port = port
        self.host = host
        self.presence = presence
        self.plugins = list(plugins)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name=f"peer-{jid}",
                                        daemon=True)
        self._thread.start()
        self.xmpp: Any = None
        self._closed = False
        # Every <message/> this peer receives, as ReceivedMessage (see wait_message), and
        # hooks called on the peer's loop thread for each one (e.g. an echo bot).
        self.messages: "list[ReceivedMessage]" = []
        self.message_hooks: "list[Callable[[Any], None]]" = []
        self._msg_cond = threading.Condition()
        # Every <presence/> it receives, as ReceivedPresence (see wait_presence).
        self.presences: "list[ReceivedPresence]" = []
        self._pres_cond = threading.Condition()
        _track(self)
        try:
            self._call(self._create(), 10)
            if connect:
                self.connect(timeout)
        except BaseException:
            self.kill()
            raise

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _call(self, coro: Any, timeout: float) -> Any:
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise PeerError(f"{self.jid}: no answer within {timeout:g}s") from None

    async def _create(self) -> None:
        # Built inside the loop: slixmpp binds futures to the running loop.
        import slixmpp
        xmpp = slixmpp.ClientXMPP(self.jid, self.password)
        xmpp.register_plugin("xep_0030")
        xmpp.register_plugin("xep_0199")
        xmpp.register_plugin("xep_0092", pconfig={"software_name": "stanzad-test-peer"})
        for plugin in self.plugins:
            xmpp.register_plugin(plugin)
        xmpp.ca_certs = self.ca_file
        # slixmpp 1.8.3 pitfalls when given an IP address to connect to:
        # - it leaves default_domain empty, and that is the name it checks the server's
        #   certificate against: with "" the chain is verified but NOT the host name.
        #   Verify against the XMPP domain, as a client must (RFC 6120 13.7.2.1).
        # - it still resolves default_domain (A and AAAA) and then connects to the
        #   answers on default_port (5222), not on the port we gave it.
        xmpp.default_domain = xmpp.boundjid.domain
        xmpp.use_ipv6 = False
        xmpp.use_aiodns = False
        xmpp.default_port = self.port
        xmpp.whitespace_keepalive = False
        from slixmpp.xmlstream.handler import Callback
        from slixmpp.xmlstream.matcher import MatchXPath
        xmpp.register_handler(Callback("harness: record messages",
                                       MatchXPath("{jabber:client}message"),
                                       self._record_message))
        xmpp.register_handler(Callback("harness: record presences",
                                       MatchXPath("{jabber:client}presence"),
                                       self._record_presence))
        self.xmpp = xmpp

    def connect(self, timeout: float = 15.0) -> "Peer":
        self._call(self._connect(timeout), timeout + 2)
        return self

    async def _connect(self, timeout: float) -> None:
        xmpp = self.xmpp
        done = self.loop.create_future()

        def finish(exc: Optional[BaseException] = None) -> None:
            if not done.done():
                done.set_exception(exc) if exc else done.set_result(True)

        async def on_session_start(_event: Any) -> None:
            if self.presence:
                xmpp.send_presence()
            finish()

        handlers = {
            "session_start": on_session_start,
            "failed_all_auth": lambda e: finish(PeerError(f"{self.jid}: authentication failed")),
            "ssl_invalid_chain": lambda e: finish(PeerError(f"{self.jid}: TLS verification failed: {e}")),
            "connection_failed": lambda e: finish(PeerError(f"{self.jid}: connection failed: {e}")),
            "disconnected": lambda e: finish(PeerError(f"{self.jid}: disconnected while connecting: {e}")),
        }
        for event, handler in handlers.items():
            xmpp.add_event_handler(event, handler)
        try:
            xmpp.connect((self.host, self.port), force_starttls=True)
            await asyncio.wait_for(done, timeout)
        except BaseException:
            xmpp.cancel_connection_attempt()
            raise
        finally:
            for event, handler in handlers.items():
                xmpp.del_event_handler(event, handler)

    @property
    def full_jid(self) -> str:
        return str(self.xmpp.boundjid.full)

    # -- queries (each raises slixmpp's IqError / IqTimeout on an error reply / silence)
    def ping(self, to: str, timeout: float = 5.0) -> float:
        """XEP-0199 ping; returns the round trip in seconds."""
        async def run() -> float:
            start = time.monotonic()
            await self.xmpp["xep_0199"].send_ping(to, timeout=timeout)
            return time.monotonic() - start
        return self._call(run(), timeout + 2)

    def disco_info(self, to: str, timeout: float = 5.0) -> "tuple[list, set]":
        """XEP-0030 disco#info: ([(category, type, name), ...], {feature, ...})."""
        async def run() -> Any:
            return await self.xmpp["xep_0030"].get_info(jid=to, local=False, cached=False,
                                                        timeout=timeout)
        iq = self._call(run(), timeout + 2)
        info = iq["disco_info"]
        identities = [(c, t, n) for (c, t, _lang, n) in info["identities"]]
        return identities, set(info["features"])

    def version(self, to: str, timeout: float = 5.0) -> dict:
        """XEP-0092 software version: {"name": ..., "version": ..., "os": ...}."""
        async def run() -> Any:
            return await self.xmpp["xep_0092"].get_version(to, timeout=timeout)
        iq = self._call(run(), timeout + 2)
        v = iq["software_version"]
        return {"name": v["name"], "version": v["version"], "os": v["os"]}

    def raw_iq(self, to: str, payload: str, type: str = "get",
               timeout: float = 5.0) -> Any:
        """Send <iq type=TYPE to=TO>PAYLOAD</iq> and return the reply stanza, result or
        error alike (slixmpp Iq: reply['type'], reply['error']['condition'],
        reply['error']['type'], reply.xml)."""
        from slixmpp.exceptions import IqError

        async def run() -> Any:
            iq = self.xmpp.make_iq(ito=to, itype=type)
            iq.append(ET.fromstring(payload))
            try:
                return await iq.send(timeout=timeout)
            except IqError as e:
                return e.iq
        return self._call(run(), timeout + 2)

    # -- messages (sent and received)
    def _record_message(self, msg: Any) -> None:
        """Loop thread: keep every received <message/> and run the hooks."""
        record = ReceivedMessage.from_xml(msg.xml)
        with self._msg_cond:
            self.messages.append(record)
            self._msg_cond.notify_all()
        for hook in list(self.message_hooks):
            try:
                hook(msg)
            except Exception as e:  # a broken hook must not kill the peer's loop
                _say(f"[{self.jid}] ", f"message hook failed: {e!r}")

    def message_mark(self) -> int:
        """Number of messages received so far: pass as `since` to wait_message."""
        with self._msg_cond:
            return len(self.messages)

    def received(self, predicate: Optional[Callable[["ReceivedMessage"], bool]] = None,
                 since: int = 0, **fields: Any) -> "list[ReceivedMessage]":
        """Messages received so far (from index `since`) that match."""
        match = _message_matcher(predicate, fields)
        with self._msg_cond:
            return [m for m in self.messages[since:] if match(m)]

    def wait_message(self, predicate: Optional[Callable[["ReceivedMessage"], bool]] = None,
                     timeout: float = 10.0, since: int = 0, nth: int = 1,
                     **fields: Any) -> "ReceivedMessage":
        """Block until the nth received message (from index `since`) matching `predicate`
        and every field given (body=..., origin_id=..., from_=..., type=..., id=...) has
        arrived; returns it."""
        match = _message_matcher(predicate, fields)
        deadline = time.monotonic() + timeout
        scanned, found = since, 0
        with self._msg_cond:
            while True:
                while scanned < len(self.messages):
                    m = self.messages[scanned]
                    scanned += 1
                    if match(m):
                        found += 1
                        if found >= nth:
                            return m
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    recent = "\n".join(repr(m) for m in self.messages[-10:])
                    raise PeerError(f"{self.jid}: timed out after {timeout:g}s waiting for "
                                    f"message {fields or predicate} (found {found} of "
                                    f"{nth}); last received:\n{recent}")
                self._msg_cond.wait(remaining)

    # -- presences received
    def _record_presence(self, pres: Any) -> None:
        """Loop thread: keep every received <presence/>."""
        record = ReceivedPresence.from_xml(pres.xml)
        with self._pres_cond:
            self.presences.append(record)
            self._pres_cond.notify_all()

    def presence_mark(self) -> int:
        """Number of presences received so far: pass as `since` to wait_presence."""
        with self._pres_cond:
            return len(self.presences)

    def received_presences(self, predicate: Optional[Callable[["ReceivedPresence"], bool]] = None,
                           since: int = 0, **fields: Any) -> "list[ReceivedPresence]":
        """Presences received so far (from index `since`) that match."""
        match = _message_matcher(predicate, fields)
        with self._pres_cond:
            return [p for p in self.presences[since:] if match(p)]

    def wait_presence(self, predicate: Optional[Callable[["ReceivedPresence"], bool]] = None,
                      timeout: float = 10.0, since: int = 0, nth: int = 1,
                      **fields: Any) -> "ReceivedPresence":
        """Block until the nth received presence (from index `since`) matching `predicate`
        and every field given (from_=..., type=..., show=..., room=..., nick=...) has
        arrived; returns it. `type` is "" for an available presence."""
        match = _message_matcher(predicate, fields)
        deadline = time.monotonic() + timeout
        scanned, found = since, 0
        with self._pres_cond:
            while True:
                while scanned < len(self.presences):
                    p = self.presences[scanned]
                    scanned += 1
                    if match(p):
                        found += 1
                        if found >= nth:
                            return p
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    recent = "\n".join(repr(p) for p in self.presences[-10:])
                    raise PeerError(f"{self.jid}: timed out after {timeout:g}s waiting for "
                                    f"presence {fields or predicate} (found {found} of "
                                    f"{nth}); last received:\n{recent}")
                self._pres_cond.wait(remaining)

    def send_message(self, to: str, body: Optional[str], mtype: str = "chat",
                     id: Optional[str] = None, origin_id: Optional[str] = None,
                     timeout: float = 5.0) -> str:
        """Send <message type=MTYPE to=TO id=ID><body>BODY</body></message> (plus a
        XEP-0359 origin-id when given); returns the stanza id (made up when not given).
        Messages sent one after the other leave in that order."""
        stanza_id = id or f"peer-{secrets.token_hex(6)}"

        async def run() -> str:
            msg = self.xmpp.make_message(mto=to, mbody=body, mtype=mtype)
            msg["id"] = stanza_id
            if origin_id is not None:
                ET.SubElement(msg.xml, "{urn:xmpp:sid:0}origin-id").set("id", origin_id)
            msg.send()
            return stanza_id
        return self._call(run(), timeout)

    def send_presence(self, to: Optional[str] = None, show: Optional[str] = None,
                      status: Optional[str] = None, ptype: Optional[str] = None,
                      priority: Optional[int] = None, timeout: float = 5.0) -> None:
        """Send a presence (directed when `to` is given; `ptype` e.g. "unavailable",
        "subscribe", "subscribed"; `priority` RFC 6121 §4.7.2.3)."""
        async def run() -> None:
            self.xmpp.send_presence(pto=to, pshow=show, pstatus=status, ptype=ptype,
                                    ppriority=priority)
        self._call(run(), timeout)

    def send_raw(self, xml: str, timeout: float = 5.0) -> None:
        """Write XML as is to the stream."""
        async def run() -> None:
            self.xmpp.send_raw(xml)
        self._call(run(), timeout)

    # -- teardown
    def close(self, timeout: float = 5.0) -> None:
        """Close the stream properly (</stream:stream>), then stop the loop."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.xmpp is not None and self.xmpp.transport is not None:
                async def run() -> None:
                    await self.xmpp.disconnect(wait=timeout)
                with contextlib.suppress(Exception):
                    self._call(run(), timeout + 2)
        finally:
            self._stop_loop()

    def kill(self) -> None:
        """Drop the connection without a goodbye and stop the loop."""
        self._closed = True
        xmpp = self.xmpp

        def abort() -> None:
            with contextlib.suppress(Exception):
                xmpp.abort()

        if xmpp is not None and self.loop.is_running():
            with contextlib.suppress(Exception):
                self.loop.call_soon_threadsafe(abort)
        self._stop_loop()

    def _stop_loop(self) -> None:
        if self.loop.is_running():
            async def cancel_all() -> None:
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(3)
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5)
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()
        _untrack(self)

    def __enter__(self) -> "Peer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --------------------------------------------------------------------------------------
# unittest glue

class IntegrationTest(unittest.TestCase):
    """Each test method gets a temp dir, fresh certificates and its own Prosody with the
    users in USERS registered. Cleanups run in reverse: stanzad, peers, Prosody, temp dir.
    On failure the temp dir is kept and the tail of Prosody's log printed; set
    STANZAD_KEEP_TMP=1 to keep it always."""

    USERS = {"alice": "alice-Pw-1!", "bob": "bob-Pw-2!", "carol": "carol-Pw-3!"}
    PROSODY_OPTIONS: dict = {}
    # The XMPP domain of the test's users, Prosody's VirtualHost and the name on the
    # server certificate made by make_ca (a test that needs DNS uses e.g. "stanzad.test").
    DOMAIN = XMPP_DOMAIN
    maxDiff = None

    def setUp(self) -> None:
        name = self.id().rsplit(".", 2)[-2:]
        self.tmp = Path(tempfile.mkdtemp(prefix=f"stanzad-{'-'.join(name)}-"))
        self.addCleanup(self._cleanup_tmp)
        self.certs = self.make_certs()
        self.prosody = self.start_prosody(**self.PROSODY_OPTIONS)

    def make_certs(self) -> Certs:
        """The test's certificates (make_ca for DOMAIN; about 1.4 s): a class may share
        one set between its tests by overriding this."""
        return make_ca(self.tmp / "certs", self.DOMAIN)

    def start_prosody(self, name: str = "prosody", users: Optional[dict] = None,
                      **options: Any) -> Prosody:
        options.setdefault("certs", self.certs)
        options.setdefault("host", self.DOMAIN)
        prosody = Prosody(self.tmp / name, name=name, **options)
        self.addCleanup(prosody.stop)
        for user, password in (self.USERS if users is None else users).items():
            prosody.register(user, password)
        prosody.start()
        return prosody

    def jid(self, user: str) -> str:
        return f"{user}@{self.DOMAIN}"

    def account(self, name: str, user: str, password: Optional[str] = None, *,
                prosody: Optional[Prosody] = None, ca_file: Any = "default",
                **extra: Any) -> dict:
        """An [[account]] for `user` on this test's Prosody. Pass password_command=... in
        extra to use a command instead (then no password key is written)."""
        prosody = prosody or self.prosody
        if password is None and "password_command" not in extra:
            password = self.USERS[user]
        return account_section(name, self.jid(user), port=prosody.port,
                               ca_file=self.certs.ca_cert if ca_file == "default" else ca_file,
                               password=password, **extra)

    def config(self, accounts: "list[dict]", name: str = "stanzad", **daemon: Any) -> dict:
        """The config of the daemon called `name` (its files live in tmp/NAME/)."""
        return stanzad_config(self.tmp / name, accounts, **daemon)

    def start_stanzad(self, accounts_or_config: Union[list, dict, str],
                      name: str = "stanzad", **kwargs: Any) -> Stanzad:
        """Start the daemon with a list of [[account]] dicts, a config dict or TOML text.
        It is stopped with SIGTERM at the end of the test, which must exit 0."""
        config = (self.config(accounts_or_config, name)
                  if isinstance(accounts_or_config, list) else accounts_or_config)
        d = Stanzad(config, self.tmp / name, name=name, **kwargs)
        self.addCleanup(d.kill)
        self.addCleanup(self._stop_and_check, d)
        return d.start()

    SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|"
                                  r"runtime error: |AddressSanitizer:DEADLYSIGNAL")

    def _stop_and_check(self, d: Stanzad) -> None:
        """Every test ends with a clean SIGTERM shutdown (exit 0 within 5 s) and no
        sanitizer report; under the asan preset this is where leaks show up."""
        if d.proc is None:
            return
        if d.running:
            rc = d.stop(5)
            self.assertEqual(rc, 0, f"{d.name} exited with status {rc} on SIGTERM")
        report = self.SANITIZER_REPORT.search(d.output())
        self.assertIsNone(report, f"{d.name}: sanitizer report in its log")

    def peer(self, user: str, password: Optional[str] = None,
             prosody: Optional[Prosody] = None, resource: Optional[str] = None,
             **kwargs: Any) -> Peer:
        """A Peer logged in as `user` (with `resource` when given, else the server's
        choice), closed at cleanup."""
        prosody = prosody or self.prosody
        jid = self.jid(user) + (f"/{resource}" if resource else "")
        p = Peer(jid, password or self.USERS[user], self.certs.ca_cert,
                 prosody.port, **kwargs)
        self.addCleanup(p.close)
        return p

    def wait_online(self, d: Stanzad, account: str, timeout: float = 15.0,
                    since: int = 0) -> str:
        """Wait for `account NAME: online as FULLJID`; returns the full JID."""
        return d.wait_for(rx_online(account), timeout, since=since).group(1)

    def _failed_so_far(self) -> bool:
        """Whether this test has failed (test method, subtests or earlier cleanups)."""
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is None:
            return False
        problems = list(getattr(result, "errors", [])) + list(getattr(result, "failures", []))
        return any(getattr(test, "test_case", test) is self for test, _ in problems)

    def _cleanup_tmp(self) -> None:
        failed = self._failed_so_far()
        if failed:
            for p in self.tmp.glob("*/prosody.log"):
                _say("", f"--- tail of {p} ---\n{_tail(p.read_text(errors='replace'), 80)}")
        if failed or os.environ.get("STANZAD_KEEP_TMP"):
            _say("", f"kept test directory {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def main() -> None:
    """Entry point of every test file: unittest with verbose output, exit status 1 on
    failure."""
    unittest.main(verbosity=2)


# --------------------------------------------------------------------------------------
# Messages as a Peer sees them

SID_NS = "urn:xmpp:sid:0"
DELAY_NS = "urn:xmpp:delay"
RECEIPTS_NS = "urn:xmpp:receipts"
CHATSTATES_NS = "http://jabber.org/protocol/chatstates"
CORRECT_NS = "urn:xmpp:message-correct:0"
MARKERS_NS = "urn:xmpp:chat-markers:0"
CARBONS_NS = "urn:xmpp:carbons:2"
FORWARD_NS = "urn:xmpp:forward:0"
MUC_NS = "http://jabber.org/protocol/muc"
MUC_USER_NS = "http://jabber.org/protocol/muc#user"
MUC_ADMIN_NS = "http://jabber.org/protocol/muc#admin"
ROSTER_NS = "jabber:iq:roster"
MAM_NS = "urn:xmpp:mam:2"


@dataclass
class ReceivedMessage:
    """One <message/> a Peer received. `origin_id` is the XEP-0359 origin-id (or None),
    `stanza_ids` the XEP-0359 stanza-ids as (by, id), `delay` the XEP-0203 stamp."""
    from_: str
    to: str
    type: str
    id: str
    body: Optional[str]
    origin_id: Optional[str]
    stanza_ids: "list[tuple[str, str]]"
    delay: Optional[str]
    xml: str
    received_at: float  # time.monotonic()

    @classmethod
    def from_xml(cls, el: Any) -> "ReceivedMessage":
        body = el.find("{jabber:client}body")
        origin = el.find(f"{{{SID_NS}}}origin-id")
        delay = el.find(f"{{{DELAY_NS}}}delay")
        return cls(from_=el.get("from", ""), to=el.get("to", ""),
                   type=el.get("type", "normal"), id=el.get("id", ""),
                   body=body.text if body is not None else None,
                   origin_id=origin.get("id") if origin is not None else None,
                   stanza_ids=[(s.get("by", ""), s.get("id", ""))
                               for s in el.findall(f"{{{SID_NS}}}stanza-id")],
                   delay=delay.get("stamp") if delay is not None else None,
                   xml=ET.tostring(el, encoding="unicode"),
                   received_at=time.monotonic())

    def __repr__(self) -> str:
        return (f"<message from={self.from_!r} type={self.type!r} id={self.id!r} "
                f"origin-id={self.origin_id!r} body={self.body!r}>")

    # What else the stanza carries (parsed from `xml` on demand).
    @property
    def el(self) -> Any:
        """The stanza as an ElementTree element."""
        return ET.fromstring(self.xml)

    def child(self, ns: str, name: str) -> Any:
        """The first child element {ns}name, or None."""
        return self.el.find(f"{{{ns}}}{name}")

    @property
    def receipt_for(self) -> Optional[str]:
        """XEP-0184 <received id=X/>: X, else None."""
        c = self.child(RECEIPTS_NS, "received")
        return c.get("id", "") if c is not None else None

    @property
    def receipt_requested(self) -> bool:
        """XEP-0184 <request/>."""
        return self.child(RECEIPTS_NS, "request") is not None

    @property
    def chat_state(self) -> Optional[str]:
        """XEP-0085: active, composing, paused, inactive or gone; None without one."""
        for c in self.el:
            if c.tag.startswith(f"{{{CHATSTATES_NS}}}"):
                return c.tag.split("}", 1)[1]
        return None

    @property
    def replace_id(self) -> Optional[str]:
        """XEP-0308 <replace id=X/>: X, else None."""
        c = self.child(CORRECT_NS, "replace")
        return c.get("id", "") if c is not None else None

    @property
    def displayed_id(self) -> Optional[str]:
        """XEP-0333 <displayed id=X/>: X, else None."""
        c = self.child(MARKERS_NS, "displayed")
        return c.get("id", "") if c is not None else None

    @property
    def subject(self) -> Optional[str]:
        """The <subject/> text ("" for an empty one), None without a subject."""
        c = self.child("jabber:client", "subject")
        return (c.text or "") if c is not None else None

    @property
    def carbon(self) -> "Optional[tuple[str, Optional[ReceivedMessage]]]":
        """XEP-0280: ("sent" | "received", the forwarded message) for a carbon, else None."""
        for direction in ("sent", "received"):
            c = self.child(CARBONS_NS, direction)
            if c is not None:
                inner = c.find(f"{{{FORWARD_NS}}}forwarded/{{jabber:client}}message")
                return direction, (ReceivedMessage.from_xml(inner) if inner is not None
                                   else None)
        return None


@dataclass
class ReceivedPresence:
    """One <presence/> a Peer received. `type` is "" for available; `priority` 0 when the
    presence has none. From a room (XEP-0045), `muc_codes` are the <status code=.../> of
    its muc#user <x/>, `affiliation`, `role`, `real_jid` (item jid) and `new_nick` (item
    nick, with status 303) come from its <item/>, `actor` (nick) and `reason` from a kick
    or ban; `error` is the condition of a type='error' presence."""
    from_: str
    to: str
    type: str
    show: str
    status: str
    priority: int
    muc: bool
    muc_codes: "frozenset[int]"
    affiliation: str
    role: str
    real_jid: str
    new_nick: str
    actor: str
    reason: str
    error: str
    xml: str
    received_at: float

    @classmethod
    def from_xml(cls, el: Any) -> "ReceivedPresence":
        def text(parent: Any, tag: str) -> str:
            c = parent.find(tag) if parent is not None else None
            return (c.text or "") if c is not None else ""
        x = el.find(f"{{{MUC_USER_NS}}}x")
        item = x.find(f"{{{MUC_USER_NS}}}item") if x is not None else None
        actor = item.find(f"{{{MUC_USER_NS}}}actor") if item is not None else None
        codes = frozenset(int(s.get("code", "0")) for s in
                          (x.findall(f"{{{MUC_USER_NS}}}status") if x is not None else []))
        error = el.find("{jabber:client}error")
        condition = ""
        if error is not None:
            condition = next((c.tag.split("}", 1)[1] for c in error
                              if c.tag.startswith("{urn:ietf:params:xml:ns:xmpp-stanzas}")
                              and not c.tag.endswith("}text")), "undefined-condition")
        prio = text(el, "{jabber:client}priority")
        return cls(from_=el.get("from", ""), to=el.get("to", ""), type=el.get("type", ""),
                   show=text(el, "{jabber:client}show"),
                   status=text(el, "{jabber:client}status"),
                   priority=int(prio) if prio.strip().lstrip("-").isdigit() else 0,
                   muc=x is not None, muc_codes=codes,
                   affiliation=item.get("affiliation", "") if item is not None else "",
                   role=item.get("role", "") if item is not None else "",
                   real_jid=item.get("jid", "") if item is not None else "",
                   new_nick=item.get("nick", "") if item is not None else "",
                   actor=((actor.get("nick", "") or actor.get("jid", ""))
                          if actor is not None else ""),
                   reason=text(item, f"{{{MUC_USER_NS}}}reason"),
                   error=condition, xml=ET.tostring(el, encoding="unicode"),
                   received_at=time.monotonic())

    @property
    def bare(self) -> str:
        return self.from_.split("/", 1)[0]

    @property
    def room(self) -> str:
        """The room's bare JID when this comes from a room occupant (else the bare from)."""
        return self.bare

    @property
    def nick(self) -> str:
        """The resource of `from` (the occupant's nick for a room presence)."""
        return self.from_.split("/", 1)[1] if "/" in self.from_ else ""

    @property
    def self_presence(self) -> bool:
        """XEP-0045 status 110: the room speaks of us."""
        return 110 in self.muc_codes

    def __repr__(self) -> str:
        extra = (f" muc codes={sorted(self.muc_codes)} role={self.role!r} "
                 f"affiliation={self.affiliation!r}" if self.muc else "")
        return (f"<presence from={self.from_!r} type={self.type!r} show={self.show!r} "
                f"status={self.status!r} priority={self.priority}{extra}"
                f"{' error=' + self.error if self.error else ''}>")


def _message_matcher(predicate: Optional[Callable[[Any], bool]],
                     fields: dict) -> Callable[[Any], bool]:
    def match(m: Any) -> bool:
        if predicate is not None and not predicate(m):
            return False
        return all(getattr(m, k) == v for k, v in fields.items())
    return match


# --------------------------------------------------------------------------------------
# The JSON-lines socket (docs/json-protocol.md)

def rx_listening(path: Optional[Union[str, Path]] = None) -> str:
    """`stanzad: listening on PATH` (the JSON socket is ready); group: the path."""
    return (rf"stanzad: listening on ({re.escape(str(path))})" if path
            else r"stanzad: listening on (\S+)")


class JsonlError(AssertionError):
    pass


class JsonClient:
    """A client of stanzad's JSON-lines socket, single-threaded and blocking with
    deadlines.

    Everything the daemon writes is read by the same loop (select with the time left to a
    deadline, then recv): events go to `events`, replies to `replies` (all, in order of
    arrival). request() sends one request with the next integer id and returns its reply;
    events that arrive before the reply (the daemon may send the events a request caused
    before its reply) are kept in `events`. wait_event() waits for an event by predicate
    or by name and fields. Nothing sleeps: every wait ends the moment the line arrives.

        c = JsonClient(sock_path)
        hello = c.hello("tests")                     # reply dict
        r = c.request("send", account="home", to="bob@localhost", body="hi")
        ev = c.wait_event("message", msg_id=r["msg_id"])
    """

    def __init__(self, path: Union[str, Path], *, timeout: float = 10.0,
                 name: str = "jsonl", echo: bool = False):
        self.path = str(path)
        self.timeout = timeout
        self.name = name
        self.echo = echo
        self.events: "list[dict]" = []
        self.replies: "list[dict]" = []
        self.lines: "list[bytes]" = []     # every line received, raw
        self.hello_reply: Optional[dict] = None
        self.eof = False
        self._pending: "list[dict]" = []   # replies not yet returned by request/next_reply
        self._buf = bytearray()
        self._next_id = 1
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)      # bounds connect() and sendall()
        try:
            self.sock.connect(self.path)
        except OSError:
            self.sock.close()
            raise

    # -- writing
    def send_raw_line(self, data: Union[bytes, str]) -> None:
        """Write `data` as one line (a newline is added unless it ends with one)."""
        if isinstance(data, str):
            data = data.encode()
        if not data.endswith(b"\n"):
            data += b"\n"
        self.sock.sendall(data)

    def send_json(self, obj: dict) -> None:
        self.send_raw_line(json.dumps(obj, separators=(",", ":")).encode())

    def next_id(self) -> int:
        i = self._next_id
        self._next_id += 1
        return i

    # -- reading
    def _handle_line(self, raw: bytes) -> Optional[dict]:
        self.lines.append(raw)
        if self.echo:
            _say(f"[{self.name}] <- ", raw.decode("utf-8", "replace")[:500])
        try:
            obj = json.loads(raw)
        except ValueError as e:
            raise JsonlError(f"{self.name}: the daemon wrote a line that is not JSON "
                             f"({e}): {raw[:300]!r}") from None
        if not isinstance(obj, dict):
            raise JsonlError(f"{self.name}: the daemon wrote a non-object: {raw[:300]!r}")
        if "event" in obj:
            self.events.append(obj)
        else:
            self.replies.append(obj)
            self._pending.append(obj)
        return obj

    def read_some(self, timeout: float) -> "list[dict]":
        """Wait at most `timeout` seconds for data, read what is there, and return the
        objects of the complete lines it finished (empty on timeout or EOF)."""
        if self.eof:
            return []
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not ready:
            return []
        try:
            chunk = self.sock.recv(1 << 16)
        except (ConnectionResetError, socket.timeout):
            chunk = b""
        if not chunk:
            self.eof = True
            return []
        self._buf += chunk
        out = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                break
            raw = bytes(self._buf[:nl])
            del self._buf[:nl + 1]
            if raw.strip():
                out.append(self._handle_line(raw))
        return out

    def _wait(self, found: Callable[[], Any], timeout: Optional[float], what: str) -> Any:
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            value = found()
            if value is not None:
                return value
            remaining = deadline - time.monotonic()
            if self.eof:
                raise JsonlError(f"{self.name}: the daemon closed the connection while "
                                 f"waiting for {what}\n{self._recent()}")
            if remaining <= 0:
                raise JsonlError(f"{self.name}: timed out after {timeout:g}s waiting for "
                                 f"{what}\n{self._recent()}")
            self.read_some(remaining)

    def _recent(self, n: int = 15) -> str:
        return "--- last lines received ---\n" + "\n".join(
            l.decode("utf-8", "replace")[:400] for l in self.lines[-n:])

    # -- replies
    def wait_reply(self, id: Any, timeout: Optional[float] = None) -> dict:
        """The reply whose id is `id` (taken out of the pending replies)."""
        def found() -> Optional[dict]:
            for i, r in enumerate(self._pending):
                if "id" in r and r["id"] == id:
                    return self._pending.pop(i)
            return None
        return self._wait(found, timeout, f"the reply with id {id!r}")

    def next_reply(self, timeout: Optional[float] = None) -> dict:
        """The oldest reply not yet returned (for replies without an id)."""
        return self._wait(lambda: self._pending.pop(0) if self._pending else None,
                          timeout, "a reply")

    def request(self, op: Optional[str], timeout: Optional[float] = None,
                **fields: Any) -> dict:
        """Send {"op": op, "id": N, **fields} and return its reply (ok or not). Pass
        id=... to choose the id; op=None leaves "op" out."""
        rid = fields.pop("id") if "id" in fields else self.next_id()
        obj = {} if op is None else {"op": op}
        obj["id"] = rid
        obj.update(fields)
        self.send_json(obj)
        return self.wait_reply(rid, timeout)

    def ok(self, op: str, timeout: Optional[float] = None, **fields: Any) -> dict:
        """request() that must succeed."""
        reply = self.request(op, timeout, **fields)
        if reply.get("ok") is not True:
            raise JsonlError(f"{self.name}: {op} {fields} failed: {reply}")
        return reply

    def hello(self, client: str, since: Optional[int] = None, replay: bool = True,
              timeout: Optional[float] = None) -> dict:
        fields: dict = {"client": client}
        if since is not None:
            fields["since"] = since
        if not replay:
            fields["replay"] = False
        reply = self.request("hello", timeout, **fields)
        if reply.get("ok"):
            self.hello_reply = reply
        return reply

    def ack(self, seq: int, timeout: Optional[float] = None) -> dict:
        return self.ok("ack", timeout, seq=seq)

    # -- events
    def mark(self) -> int:
        """Number of events so far: pass as `since` to look only at later ones."""
        return len(self.events)

    @staticmethod
    def _event_matcher(what: Union[None, str, Callable[[dict], bool]],
                       fields: dict) -> Callable[[dict], bool]:
        def match(e: dict) -> bool:
            if callable(what) and not what(e):
                return False
            if isinstance(what, str) and e.get("event") != what:
                return False
            return all(k in e and e[k] == v for k, v in fields.items())
        return match

    def find_events(self, what: Union[None, str, Callable[[dict], bool]] = None,
                    since: int = 0, **fields: Any) -> "list[dict]":
        """Events received so far (from index `since`) matching name/predicate and fields."""
        match = self._event_matcher(what, fields)
        return [e for e in self.events[since:] if match(e)]

    def wait_event(self, what: Union[None, str, Callable[[dict], bool]] = None,
                   timeout: Optional[float] = None, since: int = 0, nth: int = 1,
                   **fields: Any) -> dict:
        """Block until the nth event (from index `since`) that matches: `what` is an event
        name ("message") or a predicate on the event dict; every keyword must be equal
        (e.g. msg_id="c-1", outgoing=True)."""
        match = self._event_matcher(what, fields)
        state = {"scanned": since, "found": 0}

        def found() -> Optional[dict]:
            while state["scanned"] < len(self.events):
                e = self.events[state["scanned"]]
                state["scanned"] += 1
                if match(e):
                    state["found"] += 1
                    if state["found"] >= nth:
                        return e
            return None
        desc = what if isinstance(what, str) else getattr(what, "__name__", "event")
        return self._wait(found, timeout, f"event {desc} {fields} (#{nth})")

    def wait_events(self, what: Union[None, str, Callable[[dict], bool]], count: int,
                    timeout: Optional[float] = None, since: int = 0,
                    **fields: Any) -> "list[dict]":
        """Block until `count` matching events have arrived; returns the first `count`."""
        self.wait_event(what, timeout, since, nth=count, **fields)
        return self.find_events(what, since, **fields)[:count]

    def wait_eof(self, timeout: Optional[float] = None) -> None:
        self._wait(lambda: True if self.eof else None, timeout, "the end of the stream")

    # -- teardown
    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()
        self.eof = True

    def __enter__(self) -> "JsonClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def parse_stamp(stamp: str) -> float:
    """An RFC 3339 UTC stamp ("...Z", with or without fractions) as a Unix time."""
    import datetime
    s = stamp.replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(s).timestamp()


# --------------------------------------------------------------------------------------
# stanzactl

def stanzactl_bin() -> Path:
    """$STANZACTL_BIN, else ctl/stanzactl under $STANZAD_BUILD_DIR, else build/ctl/stanzactl."""
    if os.environ.get("STANZACTL_BIN"):
        return Path(os.environ["STANZACTL_BIN"])
    if os.environ.get("STANZAD_BUILD_DIR"):
        return Path(os.environ["STANZAD_BUILD_DIR"]) / "ctl" / "stanzactl"
    return REPO / "build" / "ctl" / "stanzactl"


def run_stanzactl(args: Iterable[Union[str, Path]], *, input: Optional[str] = None,
                  timeout: float = 15.0, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    binary = stanzactl_bin()
    if not binary.exists():
        raise AssertionError(f"stanzactl binary not found at {binary}: run `make build` "
                             f"(or set STANZACTL_BIN)")
    full_env = dict(os.environ)
    full_env.update(env or {})
    stdin = {} if input is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run([str(binary), *map(str, args)], input=input,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, env=full_env, **stdin)


class LineReader:
    """A child process whose stdout is read line by line on a thread; wait_line() blocks
    on a condition variable until a matching line arrives (or the deadline passes)."""

    def __init__(self, argv: list, *, env: Optional[dict] = None, name: str = "child",
                 cwd: Optional[Union[str, Path]] = None):
        self.name = name
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = _spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=full_env, cwd=cwd)
        _track(self)
        self.lines: "list[str]" = []
        self.err_lines: "list[str]" = []
        self._cond = threading.Condition()
        self._ended: "set[int]" = set()   # id() of the line lists whose stream ended
        self._threads = [threading.Thread(target=self._read, args=(s, l), daemon=True,
                                          name=f"{name}-{n}")
                         for s, l, n in ((self.proc.stdout, self.lines, "out"),
                                         (self.proc.stderr, self.err_lines, "err"))]
        for t in self._threads:
            t.start()

    def _read(self, stream: Any, into: "list[str]") -> None:
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                _say(f"[{self.name}{'' if into is self.lines else ' stderr'}] ", line)
                with self._cond:
                    into.append(line)
                    self._cond.notify_all()
        finally:
            with contextlib.suppress(Exception):
                stream.close()
            with self._cond:
                self._ended.add(id(into))
                self._cond.notify_all()

    def mark(self, stream: str = "out") -> int:
        with self._cond:
            return len(self.lines if stream == "out" else self.err_lines)

    def wait_line(self, pattern: Pattern, timeout: float = 10.0, since: int = 0,
                  stream: str = "out") -> "re.Match[str]":
        """Block until a line of stdout (stream="out") or stderr ("err") from index
        `since` matches; fails at once when that stream has ended without it."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        lines = self.lines if stream == "out" else self.err_lines
        deadline = time.monotonic() + timeout
        scanned = since
        with self._cond:
            while True:
                while scanned < len(lines):
                    m = rx.search(lines[scanned])
                    scanned += 1
                    if m:
                        return m
                remaining = deadline - time.monotonic()
                ended = id(lines) in self._ended
                if ended or remaining <= 0:
                    why = (f"exited with {self.proc.poll()}" if ended
                           else f"timed out after {timeout:g}s")
                    raise AssertionError(
                        f"{self.name} {why} before printing {rx.pattern!r}\n"
                        f"stdout:\n" + "\n".join(self.lines[-20:]) +
                        "\nstderr:\n" + "\n".join(self.err_lines[-20:]))
                self._cond.wait(remaining)

    def kill(self) -> None:
        """SIGKILL to the child's whole process group (it runs in its own session), so a
        shell pipeline leaves nothing behind."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for t in self._threads:
            t.join(5)
        _untrack(self)

    def terminate(self, timeout: float = 5.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        rc = self.proc.wait()
        for t in self._threads:
            t.join(5)
        _untrack(self)
        return rc


# --------------------------------------------------------------------------------------
# unittest glue for the JSON socket

class JsonlTest(IntegrationTest):
    """IntegrationTest plus the JSON-lines socket: start_daemon() starts stanzad with
    alice as account "home", waits for `listening on` (and, by default, for the account
    to be online) and sets `d.socket_path`; client() opens a JsonClient closed at
    cleanup."""

    def start_daemon(self, accounts: Optional[list] = None, name: str = "stanzad",
                     online: bool = True, **daemon: Any) -> Stanzad:
        if "socket" not in daemon:
            daemon["socket"] = str(self.socket_path_for(name))
        config = self.config(accounts if accounts is not None
                             else [self.account("home", "alice")], name, **daemon)
        sock = Path(config["daemon"]["socket"])
        d = self.start_stanzad(config, name)
        d.socket_path = sock  # type: ignore[attr-defined]
        d.config = config     # type: ignore[attr-defined]
        d.wait_for(rx_listening(sock), timeout=10)
        if online:
            self.wait_online(d, "home")
        return d

    def socket_path_for(self, name: str = "stanzad") -> Path:
        """tmp/NAME/stanzad.sock, or a short directory of its own when that path is too
        long for a Unix socket address (108 bytes, long test names)."""
        path = self.tmp / name / "stanzad.sock"
        if len(str(path).encode()) < 100:
            return path
        short = getattr(self, "_short_socket_dir", None)
        if short is None:
            short = Path(tempfile.mkdtemp(prefix="stanzad-sock-"))
            self._short_socket_dir = short
            self.addCleanup(shutil.rmtree, short, True)
        return short / f"{name}.sock"

    def client(self, where: Union[Stanzad, str, Path], hello: Optional[str] = None,
               name: Optional[str] = None, **hello_args: Any) -> JsonClient:
        """A connected JsonClient; with hello=NAME it has said hello (and must be ok)."""
        path = getattr(where, "socket_path", where)
        c = JsonClient(path, name=name or hello or "jsonl")
        self.addCleanup(c.close)
        if hello is not None:
            reply = c.hello(hello, **hello_args)
            self.assertIs(reply.get("ok"), True, f"hello failed: {reply}")
        return c

    def watcher(self, where: Union[Stanzad, str, Path], name: str = "watcher") -> JsonClient:
        """A client attached for live events only (replay false). The daemon stores an
        event before it shows it to any client, so an event seen here is committed: the
        barrier before a kill -9. (Since the group commit an XEP-0199 pong is one too: it
        leaves only after the commit of its read, docs/reliability.md; the tests use events.)"""
        return self.client(where, hello=name, replay=False)


# --------------------------------------------------------------------------------------
# Fault tests (test_fault_*.py): bulk traffic in both directions, counted by id, while a
# FaultProxy (faultproxy.py) between stanzad and Prosody breaks the link.


def rx_sm_enabled(account: str) -> str:
    """`account NAME: stream management enabled` (a new XEP-0198 session)."""
    return rf"account {re.escape(account)}: stream management enabled"


def rx_resumed(account: str) -> str:
    """`account NAME: resumed the previous session`."""
    return rf"account {re.escape(account)}: resumed the previous session"


def rx_resume_failed(account: str) -> str:
    """`account NAME: could not resume (WHY); new session`; group: why."""
    return rf"account {re.escape(account)}: could not resume \((.*)\); new session"


def rx_session_up(account: str) -> str:
    """Either of the lines that end a (re)connection with a working XEP-0198 stream."""
    return (rf"account {re.escape(account)}: (?:resumed the previous session|"
            rf"stream management enabled)")


def rx_catch_up(account: str) -> str:
    """`account NAME: archive catch-up: N message(s)`; group: N."""
    return rf"account {re.escape(account)}: archive catch-up: (\d+) message\(s\)"


def _peer_answer_receipts(self: "Peer") -> None:
    """Make this peer answer XEP-0184 receipt requests, as a modern client does: for each
    <message id=X> with <request xmlns='urn:xmpp:receipts'/>, send
    <message to=FROM><received xmlns='urn:xmpp:receipts' id=X/></message>. Idempotent."""
    if getattr(self, "_answers_receipts", False):
        return
    self._answers_receipts = True
    self.receipts_sent = 0

    def hook(msg: Any) -> None:
        el = msg.xml
        if el.find(f"{{{RECEIPTS_NS}}}request") is None or not el.get("id"):
            return
        if el.get("type") == "error":
            return
        reply = self.xmpp.make_message(mto=el.get("from"))
        ET.SubElement(reply.xml, f"{{{RECEIPTS_NS}}}received").set("id", el.get("id"))
        reply.send()
        self.receipts_sent += 1

    self.message_hooks.append(hook)


def _peer_sync(self: "Peer", timeout: float = 10.0) -> float:
    """A round trip to our own server (XEP-0199 ping to the domain). The server handles a
    session's stanzas in order, so when this returns every stanza this peer sent before
    has been processed (routed, archived or stored offline)."""
    return self.ping(self.xmpp.boundjid.domain, timeout=timeout)


def _peer_wait_disconnected(self: "Peer", timeout: float = 15.0) -> None:
    """Block until slixmpp has noticed that its connection is gone (e.g. the server was
    stopped)."""
    async def gone() -> bool:
        return self.xmpp.transport is None
    poll_until(lambda: self._call(gone(), 5), timeout, f"{self.jid} to notice the disconnect")


def _peer_reconnect(self: "Peer", timeout: float = 15.0) -> "Peer":
    """After the server went away and came back: wait until the old connection is gone,
    log in again (new session, initial presence, so the server flushes offline storage).
    Everything received before and after stays in `messages`."""
    _peer_wait_disconnected(self, timeout)
    return self.connect(timeout)


def _peer_start_bulk(self: "Peer", to: str, items: "list[tuple[str, str]]",
                     rate: float = 100.0, mtype: str = "chat",
                     origin_ids: bool = False) -> "BulkSender":
    """Start sending `items` [(stanza id, body), ...] to `to` from this peer's loop, in
    order, at most `rate` per second; returns at once with a BulkSender (progress,
    pause/resume, wait)."""
    return BulkSender(self, to, items, rate=rate, mtype=mtype, origin_ids=origin_ids)


# Methods added to Peer and JsonClient here rather than in their classes, so that this
# section stays one appended block.
Peer.answer_receipts = _peer_answer_receipts          # type: ignore[attr-defined]
Peer.sync = _peer_sync                                # type: ignore[attr-defined]
Peer.wait_disconnected = _peer_wait_disconnected      # type: ignore[attr-defined]
Peer.reconnect = _peer_reconnect                      # type: ignore[attr-defined]
Peer.start_bulk = _peer_start_bulk                    # type: ignore[attr-defined]


class BulkSender:
    """Messages sent by a Peer on its own loop, paced to `rate` per second. `sent` counts
    the messages handed to slixmpp (on the wire soon after, in order; a Peer.sync() after
    pause() or wait() proves the server has them). pause() returns once no further message
    will leave until resume()."""

    def __init__(self, peer: Peer, to: str, items: "list[tuple[str, str]]", *,
                 rate: float, mtype: str = "chat", origin_ids: bool = False):
        self.peer = peer
        self.to = to
        self.items = list(items)
        self.rate = float(rate)
        self.mtype = mtype
        self.origin_ids = origin_ids
        self.sent = 0
        self.started = time.monotonic()
        self.finished: Optional[float] = None
        self._running: Optional[asyncio.Event] = None

        async def make_event() -> None:  # created on the peer's loop, which owns it
            self._running = asyncio.Event()
            self._running.set()
        peer._call(make_event(), 5)
        self.future = asyncio.run_coroutine_threadsafe(self._run(), peer.loop)

    @property
    def done(self) -> bool:
        return self.future.done()

    async def _run(self) -> int:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.rate if self.rate > 0 else 0.0
        next_at = loop.time()
        for stanza_id, body in self.items:
            if not self._running.is_set():
                await self._running.wait()
                next_at = loop.time()
            now = loop.time()
            if next_at > now:
                await asyncio.sleep(next_at - now)
                if not self._running.is_set():  # paused while we slept
                    await self._running.wait()
                    next_at = loop.time()
            next_at = max(next_at, loop.time() - 0.5) + interval  # no burst after a stall
            msg = self.peer.xmpp.make_message(mto=self.to, mbody=body, mtype=self.mtype)
            msg["id"] = stanza_id
            if self.origin_ids:
                ET.SubElement(msg.xml, f"{{{SID_NS}}}origin-id").set("id", stanza_id)
            msg.send()
            self.sent += 1
        self.finished = time.monotonic()
        return self.sent

    def pause(self) -> int:
        """Stop sending (between two messages); returns how many were sent."""
        async def run() -> int:
            self._running.clear()
            return self.sent
        return self.peer._call(run(), 5)

    def resume(self) -> None:
        async def run() -> None:
            self._running.set()
        self.peer._call(run(), 5)

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise AssertionError(f"{self.peer.jid}: sent only {self.sent} of "
                                 f"{len(self.items)} within {timeout:g}s") from None


def _jsonl_submit(self: "JsonClient", op: str, **fields: Any) -> Any:
    """Pipelining: send a request without waiting for its reply; returns its id. Collect
    replies with take_replies() (or wait_reply(id))."""
    rid = fields.pop("id") if "id" in fields else self.next_id()
    obj = {"op": op, "id": rid}
    obj.update(fields)
    self.send_json(obj)
    return rid


def _jsonl_take_replies(self: "JsonClient") -> "list[dict]":
    """Every reply read so far that request()/wait_reply() has not returned; clears them."""
    out, self._pending = self._pending, []
    return out


def _jsonl_wait_until(self: "JsonClient", predicate: Callable[[], Any], timeout: float,
                      what: str) -> Any:
    """Read from the socket until predicate() returns a true value (checked after every
    read), for at most `timeout` seconds."""
    return self._wait(lambda: predicate() or None, timeout, what)


def _jsonl_wait_replay(self: "JsonClient", timeout: Optional[float] = None) -> int:
    """After hello (with replay): block until the replayed events up to the hello reply's
    `last_seq` have all arrived; returns last_seq."""
    last = (self.hello_reply or {}).get("last_seq", 0)
    if last:
        self._wait(lambda: True if any(e.get("seq", 0) >= last for e in self.events)
                   else None, timeout, f"the replay up to seq {last}")
    return last


JsonClient.submit = _jsonl_submit              # type: ignore[attr-defined]
JsonClient.take_replies = _jsonl_take_replies  # type: ignore[attr-defined]
JsonClient.wait_until = _jsonl_wait_until      # type: ignore[attr-defined]
JsonClient.wait_replay = _jsonl_wait_replay    # type: ignore[attr-defined]


def log_line_time(line: str) -> float:
    """The Unix time of a stanzad log line ("2026-11-25 14:34:23.515 info ..."; local
    time, as spdlog writes it by default)."""
    import datetime
    m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)", line)
    if not m:
        raise ValueError(f"no timestamp at the start of {line!r}")
    return datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()


def daemon_link_up(d: Stanzad, account: str = "home", since: int = 0) -> bool:
    """Whether the daemon's latest word on `account` (from line `since`) is that its
    stream works: a session-up line (resumed / stream management enabled) with no
    `disconnected` line after it."""
    up_rx, down_rx = re.compile(rx_session_up(account)), re.compile(rx_disconnected(account))
    with d._cond:
        for line in reversed(d.lines[since:]):
            if down_rx.search(line):
                return False
            if up_rx.search(line):
                return True
    return False


@dataclass
class Fault:
    """One fault of a Traffic run: fire() once the run's progress (0..1, messages sent
    both ways) reaches `at` and ready() says the link is in a state worth breaking (e.g.
    the daemon is back online after the previous fault). When fire() returns False the
    fault did not happen (e.g. the connection dropped on its own a moment before): it stays
    pending and is tried again."""
    at: float
    fire: Callable[[], Any]
    name: str = "fault"
    ready: Callable[[], bool] = lambda: True
    fired_at: Optional[float] = None   # seconds since the run started


class Traffic:
    """Messages both ways at once, each counted by id, from the test thread.

    alice -> bob: `send` requests on the JsonClient `client` (pipelined: at most `window`
    without a reply, at most `rate_out` per second), client_id "{tag}-a2b-NNNN", body
    "a2b NNNN {tag}"; bob must receive each (by XEP-0359 origin-id).
    bob -> alice: a BulkSender from the Peer `bob` to `alice` (the bare JID by default) at
    `rate_in` per second, stanza id "{tag}-b2a-NNNN", body "b2a NNNN {tag}"; the
    JsonClient must show each as one incoming `message` event.

    run(faults) drives both until everything is sent and every fault has fired;
    wait_complete() waits (event-driven, with a deadline) until everything has arrived;
    settle(seconds) keeps reading for a fixed window to catch late duplicates; counts()
    and check() report and assert.
    """

    # The contract as briefed: every message reaches `acked` (the server has it), also
    # when its `delivered` receipt came first. Set True to count `delivered` as implying
    # `acked` (if the daemon's states are made monotonic and skip `acked` after it).
    # States only move forward: a receipt (delivered) that beats the server's ack leaves
    # no room for acked, and delivered means the server had it.
    DELIVERED_IMPLIES_ACKED = True

    def __init__(self, test: unittest.TestCase, client: JsonClient, bob: Peer, *,
                 n_out: int, n_in: int, tag: str, account: str = "home",
                 alice: str = "alice@localhost", to_bob: str = "bob@localhost",
                 rate_out: float = 100.0, rate_in: float = 100.0, window: int = 32):
        self.test = test
        self.client = client
        self.bob = bob
        self.account = account
        self.alice = alice
        self.to_bob = to_bob
        self.tag = tag
        self.rate_out = rate_out
        self.rate_in = rate_in
        self.window = window
        self.out_ids = [f"{tag}-a2b-{i:04d}" for i in range(n_out)]
        self.out_body = {mid: f"a2b {i:04d} {tag}" for i, mid in enumerate(self.out_ids)}
        self.in_ids = [f"{tag}-b2a-{i:04d}" for i in range(n_in)]
        self.in_body = {sid: f"b2a {i:04d} {tag}" for i, sid in enumerate(self.in_ids)}
        self.in_index = {body: i for i, body in enumerate(self.in_body.values())}
        self._out_bodies = set(self.out_body.values())
        # alice -> bob, JSON side
        self.next_out = 0
        self.request_of: "dict[Any, str]" = {}      # JSON request id -> msg id
        self.replies: "dict[str, dict]" = {}        # msg id -> reply
        self.states: "dict[str, dict[str, int]]" = {mid: {} for mid in self.out_ids}
        self.out_events: "dict[str, int]" = {}      # msg id -> outgoing `message` events
        # bob -> alice, JSON side
        self.in_events: "dict[str, list[dict]]" = {}  # body -> incoming `message` events
        self.in_order: "list[int]" = []             # index of each incoming event, in order
        self.strange_events: "list[dict]" = []      # our bodies where they must not be
        self._event_scan = 0
        # alice -> bob, bob's side
        self.bob_seen: "dict[str, int]" = {}         # origin-id -> copies received
        self.bob_bad: "list[ReceivedMessage]" = []   # our body, but no/wrong origin-id
        self._bob_scan = bob.message_mark()
        self.sender: Optional[BulkSender] = None
        self.faults: "list[Fault]" = []
        self.started = 0.0
        self.sending_done: Optional[float] = None
        self.complete_at: Optional[float] = None

    # -- bookkeeping
    def _scan(self) -> None:
        for r in self.client.take_replies():
            mid = self.request_of.get(r.get("id"))
            if mid is not None:
                self.replies[mid] = r
        events = self.client.events
        while self._event_scan < len(events):
            e = events[self._event_scan]
            self._event_scan += 1
            kind = e.get("event")
            if kind == "message":
                body = e.get("body", "")
                if e.get("outgoing"):
                    mid = e.get("msg_id")
                    if mid in self.states:
                        self.out_events[mid] = self.out_events.get(mid, 0) + 1
                    elif body in self.in_index:
                        self.strange_events.append(e)  # bob's message shown as ours
                elif body in self.in_index:
                    self.in_events.setdefault(body, []).append(e)
                    self.in_order.append(self.in_index[body])
                elif body in self._out_bodies or e.get("msg_id") in self.states:
                    self.strange_events.append(e)      # our own message shown as incoming
            elif kind == "message-state":
                st = self.states.get(e.get("msg_id"))
                if st is not None:
                    st[e.get("state")] = st.get(e.get("state"), 0) + 1
        with self.bob._msg_cond:
            new = self.bob.messages[self._bob_scan:]
            self._bob_scan += len(new)
        for m in new:
            if not (m.body or "").startswith("a2b ") or not (m.body or "").endswith(self.tag):
                continue
            if m.origin_id in self.out_body and self.out_body[m.origin_id] == m.body:
                self.bob_seen[m.origin_id] = self.bob_seen.get(m.origin_id, 0) + 1
            else:
                self.bob_bad.append(m)

    def progress(self) -> float:
        total = len(self.out_ids) + len(self.in_ids)
        done = len(self.replies) + (self.sender.sent if self.sender else 0)
        return done / total if total else 1.0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # -- driving
    def start(self) -> None:
        self.started = time.monotonic()
        if self.in_ids:
            self.sender = self.bob.start_bulk(
                self.alice, [(sid, self.in_body[sid]) for sid in self.in_ids],
                rate=self.rate_in)

    def _submit_some(self) -> None:
        allowed = int(self.elapsed() * self.rate_out) + 1
        inflight = len(self.request_of) - len(self.replies)
        while (self.next_out < len(self.out_ids) and self.next_out < allowed
               and inflight < self.window):
            mid = self.out_ids[self.next_out]
            rid = self.client.submit("send", account=self.account, to=self.to_bob,
                                     body=self.out_body[mid], client_id=mid)
            self.request_of[rid] = mid
            self.next_out += 1
            inflight += 1

    def step(self, timeout: float = 0.02) -> None:
        """Submit what the pace and window allow, read what the daemon wrote (waiting up
        to `timeout`), update the counts."""
        self._submit_some()
        self.client.read_some(timeout)
        if self.client.eof:
            raise JsonlError(f"{self.client.name}: the daemon closed the socket during the "
                             f"run\n{self.client._recent()}")
        self._scan()

    def sending_finished(self) -> bool:
        return (len(self.replies) == len(self.out_ids)
                and (self.sender is None or self.sender.done))

    def run(self, faults: Iterable[Fault] = (), timeout: float = 60.0) -> None:
        """Send everything, firing each fault in turn when its time has come. Ends when
        every message has been sent both ways (replies for every `send`) and every fault
        has fired; fails after `timeout` seconds."""
        self.faults = sorted(faults, key=lambda f: f.at)
        if not self.started:
            self.start()
        pending = list(self.faults)
        deadline = self.started + timeout
        while True:
            self.step()
            if pending and self.progress() >= pending[0].at and pending[0].ready():
                f = pending[0]
                at = round(self.elapsed(), 2)
                if f.fire() is not False:
                    pending.pop(0)
                    f.fired_at = at
                    _say("[traffic] ", f"{f.name} at {at:.2f}s "
                         f"(progress {self.progress():.0%})")
            if not pending and self.sending_finished():
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"traffic {self.tag}: not everything sent within {timeout:g}s: "
                    f"{len(self.replies)}/{len(self.out_ids)} send replies, bob sent "
                    f"{self.sender.sent if self.sender else 0}/{len(self.in_ids)}, faults "
                    f"not fired: {[f.name for f in pending]}")
        if self.sender is not None:
            self.sender.wait(5)
        self.sending_done = time.monotonic()
        failed = {mid: r for mid, r in self.replies.items() if r.get("ok") is not True}
        self.test.assertEqual(failed, {}, "send requests that failed")

    def acked(self, mid: str) -> bool:
        st = self.states[mid]
        return bool(st.get("acked") or (self.DELIVERED_IMPLIES_ACKED and st.get("delivered")))

    def missing(self) -> "dict[str, list[str]]":
        """What has not arrived yet, by kind (lists of ids)."""
        return {
            "bob never got": [m for m in self.out_ids if m not in self.bob_seen],
            "never acked": [m for m in self.out_ids if not self.acked(m)],
            "front end never showed": [s for s in self.in_ids
                                       if self.in_body[s] not in self.in_events],
        }

    def wait_complete(self, timeout: float = 30.0) -> None:
        """Read until bob has every alice -> bob message, every one is acked and the front
        end has shown every bob -> alice message; fail after `timeout` with what is
        missing."""
        deadline = time.monotonic() + timeout
        while True:
            self.step(0.05)
            missing = self.missing()
            if not any(missing.values()):
                self.complete_at = time.monotonic()
                return
            if time.monotonic() > deadline:
                summary = {k: f"{len(v)}: {v[:8]}{' ...' if len(v) > 8 else ''}"
                           for k, v in missing.items() if v}
                states = {m: self.states[m] for m in missing["never acked"][:5]}
                raise AssertionError(f"traffic {self.tag}: incomplete {timeout:g}s after "
                                     f"the last message was sent: {summary}\n"
                                     f"state events of some never acked: {states}\n"
                                     f"counts: {self.counts()}")

    def wait_catch_up(self, d: Stanzad, since: int = 0, timeout: float = 30.0) -> None:
        """If the daemon bound a new session (`stream management enabled`) since line
        `since`, wait until the last such session has logged its archive catch-up (so a
        late duplicate from it lands before settle()), reading the front end meanwhile."""
        enabled = [i for i in range(since, len(d.lines))
                   if re.search(rx_sm_enabled(self.account), d.lines[i])]
        if not enabled:
            return
        deadline = time.monotonic() + timeout
        while d.index(rx_catch_up(self.account), since=enabled[-1]) is None:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the daemon's last new session (log line {enabled[-1]}) has not logged "
                    f"its archive catch-up within {timeout:g}s\n{d.output(enabled[-1])[-3000:]}")
            self.step(0.05)

    def settle(self, seconds: float) -> None:
        """A fixed window, for duplicates that would arrive late (an absence check)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.step(min(0.1, max(0.0, end - time.monotonic())))

    # -- results
    def counts(self) -> dict:
        in_dups = {b: len(es) for b, es in self.in_events.items() if len(es) > 1}
        bob_dups = {m: n for m, n in self.bob_seen.items() if n > 1}
        out_ev_dups = {m: n for m, n in self.out_events.items() if n != 1}
        return {
            "tag": self.tag,
            "out_sent": len(self.out_ids),
            "out_accepted": sum(1 for r in self.replies.values() if r.get("ok")),
            "out_acked": sum(1 for s in self.states.values() if s.get("acked")),
            "out_delivered": sum(1 for s in self.states.values() if s.get("delivered")),
            "out_failed": sum(1 for s in self.states.values() if s.get("failed")),
            "out_event_not_once": len(out_ev_dups),
            "bob_distinct": len(self.bob_seen),
            "bob_raw": sum(self.bob_seen.values()),
            "bob_raw_duplicates": sum(n - 1 for n in bob_dups.values()),
            "bob_bad": len(self.bob_bad),
            "in_sent": self.sender.sent if self.sender else 0,
            "fe_distinct": len(self.in_events),
            "fe_duplicates": sum(n - 1 for n in in_dups.values()),
            "fe_strange": len(self.strange_events),
            "fe_in_order": self.in_order == sorted(self.in_order),
            "faults": [(f.name, f.fired_at) for f in self.faults],
            "send_seconds": round((self.sending_done or time.monotonic()) - self.started, 2),
            "complete_seconds": (round(self.complete_at - self.started, 2)
                                 if self.complete_at else None),
        }

    def report(self, **extra: Any) -> dict:
        """Print the counts as one line (`FAULT-RESULT {...}`) for docs/reliability.md."""
        c = self.counts()
        c.update(extra)
        _say("", "FAULT-RESULT " + json.dumps(c, separators=(",", ":")))
        return c

    def check(self, *, in_order: bool = False) -> None:
        """The contract: nothing lost, nothing shown twice at the front end, bob gets every
        message (copies only with the same origin-id), each acked."""
        t = self.test
        lost_bob = [m for m in self.out_ids if m not in self.bob_seen]
        t.assertEqual(lost_bob, [], "alice -> bob: messages bob never received")
        t.assertEqual([repr(m) for m in self.bob_bad], [],
                      "alice -> bob: bob got one of ours without its origin-id (or with "
                      "another body)")
        not_acked = [m for m in self.out_ids if not self.acked(m)]
        t.assertEqual(not_acked, [], "alice -> bob: messages never acked by the server")
        out_ev = {m: self.out_events.get(m, 0) for m in self.out_ids
                  if self.out_events.get(m, 0) != 1}
        t.assertEqual(out_ev, {}, "alice -> bob: outgoing `message` events per msg_id "
                                  "(must be exactly 1)")
        lost_fe = [s for s in self.in_ids if self.in_body[s] not in self.in_events]
        t.assertEqual(lost_fe, [], "bob -> alice: messages the front end never showed")
        dups = {b: [e.get("msg_id") for e in es] for b, es in self.in_events.items()
                if len(es) > 1}
        t.assertEqual(dups, {}, "bob -> alice: messages the front end showed more than "
                                "once (body: msg_ids)")
        t.assertEqual(self.strange_events, [],
                      "events showing our own messages as incoming (or bob's as ours)")
        if in_order:
            t.assertEqual(self.in_order, sorted(self.in_order),
                          "bob -> alice: the front end showed them out of bob's order")


def count_replayed(test: unittest.TestCase, client: JsonClient, *,
                   incoming_bodies: Iterable[str] = (), outgoing_ids: Iterable[str] = (),
                   what: str = "replay") -> dict:
    """A front end that replays the whole store (hello since=0, then wait_replay()) must
    see each incoming body once and each outgoing msg_id once: counts them in
    client.events, asserts, and returns {"incoming": n, "outgoing": n}."""
    bodies, ids = set(incoming_bodies), set(outgoing_ids)
    inc: "dict[str, int]" = {}
    out: "dict[str, int]" = {}
    for e in client.events:
        if e.get("event") != "message":
            continue
        if e.get("outgoing"):
            if e.get("msg_id") in ids:
                out[e["msg_id"]] = out.get(e["msg_id"], 0) + 1
        elif e.get("body") in bodies:
            inc[e["body"]] = inc.get(e["body"], 0) + 1
    test.assertEqual({b: inc.get(b, 0) for b in bodies if inc.get(b, 0) != 1}, {},
                     f"{what}: incoming messages not stored exactly once (body: count)")
    test.assertEqual({m: out.get(m, 0) for m in ids if out.get(m, 0) != 1}, {},
                     f"{what}: outgoing messages not stored exactly once (msg_id: count)")
    return {"incoming": len(inc), "outgoing": len(out)}


class FaultTest(JsonlTest):
    """JsonlTest with stanzad's account connected through a FaultProxy (self.proxy) and
    quick dead-link detection (ping_interval = ping_timeout = 2 s)."""

    PING_INTERVAL = 2
    PING_TIMEOUT = 2

    def audit_replay(self, d: "Stanzad", traffic: "Traffic") -> None:
        """A front end that attaches now and replays everything sees each message once."""
        audit = self.client(d, hello="audit", since=0)
        audit.wait_replay(timeout=20)
        count_replayed(self, audit, incoming_bodies=traffic.in_body.values(),
                       outgoing_ids=traffic.out_ids)

    def fault_proxy(self, prosody: Optional[Prosody] = None) -> Any:
        from faultproxy import FaultProxy
        proxy = FaultProxy((prosody or self.prosody).port)
        self.addCleanup(proxy.close)
        return proxy

    def proxied_account(self, proxy: Any, name: str = "home", user: str = "alice",
                        **extra: Any) -> dict:
        acct = self.account(name, user, **extra)
        acct["port"] = proxy.port  # host stays 127.0.0.1; TLS checks the JID's domain
        return acct

    def start_fault_daemon(self, proxy: Any = None, name: str = "stanzad",
                           online: bool = True, **daemon: Any) -> Stanzad:
        """stanzad with alice as "home" (through `proxy` when given) and the fast
        dead-link settings; `daemon` overrides [daemon] keys."""
        daemon.setdefault("ping_interval", self.PING_INTERVAL)
        daemon.setdefault("ping_timeout", self.PING_TIMEOUT)
        acct = (self.proxied_account(proxy) if proxy is not None
                else self.account("home", "alice"))
        d = self.start_daemon([acct], name=name, online=online, **daemon)
        return d

    def bob_peer(self) -> Peer:
        bob = self.peer("bob")
        bob.answer_receipts()
        return bob


# --------------------------------------------------------------------------------------
# Instant messaging and multi-user chat (test_im_*.py): peers that take part in rooms
# (XEP-0045), enable carbons (XEP-0280), edit their roster and answer subscriptions by
# hand; and the daemon's wire log (log_level = "trace") read as stanzas.
#
# The MUC helpers write the XEP-0045 stanzas themselves (no slixmpp xep_0045 state in
# between), so a test sees exactly what the room sends: every presence is in
# Peer.presences, every message in Peer.messages.

def _xml_attr(value: str) -> str:
    from xml.sax.saxutils import quoteattr
    return quoteattr(str(value))


def _xml_text(value: str) -> str:
    from xml.sax.saxutils import escape
    return escape(str(value))


def _peer_manual_subscriptions(self: "Peer") -> "Peer":
    """Stop slixmpp from answering subscription requests by itself (its default approves
    every request and asks back): the test sends subscribed/subscribe when it means to."""
    async def run() -> None:
        self.xmpp.auto_authorize = None
        self.xmpp.auto_subscribe = False
    self._call(run(), 5)
    return self


def _peer_enable_carbons(self: "Peer", timeout: float = 5.0) -> None:
    """XEP-0280 §4: ask our server to copy this account's chats to this session."""
    reply = self.raw_iq(None, f"<enable xmlns='{CARBONS_NS}'/>", type="set",
                        timeout=timeout)
    if reply["type"] != "result":
        raise PeerError(f"{self.jid}: enabling carbons failed: {reply}")


def _peer_roster_set(self: "Peer", jid: str, name: str = "", groups: Iterable[str] = (),
                     timeout: float = 5.0) -> Any:
    """RFC 6121 §2.3: add or change a roster item from this session; returns the result
    (raises PeerError on an error reply)."""
    item = f"<item jid={_xml_attr(jid)}" + (f" name={_xml_attr(name)}" if name else "") + ">"
    item += "".join(f"<group>{_xml_text(g)}</group>" for g in groups) + "</item>"
    reply = self.raw_iq(None, f"<query xmlns='{ROSTER_NS}'>{item}</query>", type="set",
                        timeout=timeout)
    if reply["type"] != "result":
        raise PeerError(f"{self.jid}: roster set of {jid} failed: {reply}")
    return reply


def _peer_roster_remove(self: "Peer", jid: str, timeout: float = 5.0) -> Any:
    """RFC 6121 §2.5: remove a roster item from this session."""
    reply = self.raw_iq(None, f"<query xmlns='{ROSTER_NS}'><item jid={_xml_attr(jid)} "
                              f"subscription='remove'/></query>", type="set", timeout=timeout)
    if reply["type"] != "result":
        raise PeerError(f"{self.jid}: roster remove of {jid} failed: {reply}")
    return reply


def _peer_roster_get(self: "Peer", ver: Optional[str] = None, timeout: float = 5.0) -> Any:
    """RFC 6121 §2.1.3 (with `ver`, §2.6.3): the server's answer as an ElementTree
    element (an <iq/> whose <query/> may be absent: "nothing changed")."""
    attr = f" ver={_xml_attr(ver)}" if ver is not None else ""
    reply = self.raw_iq(None, f"<query xmlns='{ROSTER_NS}'{attr}/>", timeout=timeout)
    return ET.fromstring(ET.tostring(reply.xml))


def _peer_send_chat_state(self: "Peer", to: str, state: str, mtype: str = "chat",
                          timeout: float = 5.0) -> str:
    """XEP-0085 §5: a standalone chat state notification (no body); returns its id."""
    stanza_id = f"cs-{secrets.token_hex(6)}"
    self.send_raw(f"<message to={_xml_attr(to)} type={_xml_attr(mtype)} id='{stanza_id}'>"
                  f"<{state} xmlns='{CHATSTATES_NS}'/></message>", timeout)
    return stanza_id


@dataclass
class MucJoin:
    """What a Peer saw when it entered a room: its own presence (status 110), the other
    occupants' presences that came before it, whether the room was created for us
    (status 201) and the subject message that completes the join (§7.2.15)."""
    room: str
    nick: str
    self_presence: ReceivedPresence
    occupants: "list[ReceivedPresence]"
    created: bool
    subject: Optional[ReceivedMessage]


def _peer_muc_join(self: "Peer", room: str, nick: str, *, password: Optional[str] = None,
                   maxstanzas: int = 0, timeout: float = 10.0) -> MucJoin:
    """XEP-0045 §7.2: enter `room` as `nick` asking for `maxstanzas` messages of history;
    blocks until the room has sent our own presence (status 110) and the subject. A new
    room on the test Prosody is created at once (muc_room_locking = false): we become its
    owner. Raises PeerError with the condition when the room refuses."""
    pmark, mmark = self.presence_mark(), self.message_mark()
    pw = f"<password>{_xml_text(password)}</password>" if password is not None else ""
    self.send_raw(f"<presence to={_xml_attr(room + '/' + nick)}><x xmlns='{MUC_NS}'>{pw}"
                  f"<history maxstanzas='{int(maxstanzas)}'/></x></presence>", timeout)
    mine = self.wait_presence(lambda p: p.bare == room and (p.self_presence or p.type == "error"),
                              timeout=timeout, since=pmark)
    if mine.type == "error":
        raise PeerError(f"{self.jid}: the room {room} refused us as {nick!r}: {mine.error}\n"
                        f"{mine.xml}")
    with self._pres_cond:
        before = self.presences[pmark:self.presences.index(mine)]
    occupants = [p for p in before if p.bare == room and p.muc and p.type != "unavailable"]
    subject = self.wait_message(lambda m: m.from_.split("/")[0] == room
                                and m.type == "groupchat" and m.subject is not None
                                and m.body is None, timeout=timeout, since=mmark)
    return MucJoin(room, mine.nick, mine, occupants, 201 in mine.muc_codes, subject)


def _peer_muc_send(self: "Peer", room: str, body: str, id: Optional[str] = None,
                   timeout: float = 5.0) -> str:
    """A groupchat message to the room; returns its stanza id. The room echoes it back to
    us (with its stanza-id, by the room's JID) like to everyone else."""
    return self.send_message(room, body, mtype="groupchat", id=id, timeout=timeout)


def _peer_muc_subject(self: "Peer", room: str, subject: str,
                      timeout: float = 10.0) -> ReceivedMessage:
    """XEP-0045 §8.1: change the subject; returns the room's broadcast of it (to us)."""
    mark = self.message_mark()
    stanza_id = f"subj-{secrets.token_hex(6)}"
    self.send_raw(f"<message to={_xml_attr(room)} type='groupchat' id='{stanza_id}'>"
                  f"<subject>{_xml_text(subject)}</subject></message>", timeout)
    return self.wait_message(lambda m: m.from_.split("/")[0] == room and m.subject == subject,
                             timeout=timeout, since=mark)


def _peer_muc_nick(self: "Peer", room: str, new_nick: str,
                   timeout: float = 10.0) -> ReceivedPresence:
    """XEP-0045 §7.6: change our nick; returns our presence under the new nick."""
    mark = self.presence_mark()
    self.send_raw(f"<presence to={_xml_attr(room + '/' + new_nick)}/>", timeout)
    p = self.wait_presence(lambda p: p.bare == room and (p.type == "error" or (
        p.self_presence and p.type == "" and p.nick == new_nick)), timeout=timeout, since=mark)
    if p.type == "error":
        raise PeerError(f"{self.jid}: nick change to {new_nick!r} refused: {p.error}")
    return p


def _peer_muc_kick(self: "Peer", room: str, nick: str, reason: str = "",
                   timeout: float = 10.0) -> Any:
    """XEP-0045 §8.2: kick `nick` (role none); we must be a moderator. Returns the
    room's result; raises PeerError on an error reply."""
    why = f"<reason>{_xml_text(reason)}</reason>" if reason else ""
    reply = self.raw_iq(room, f"<query xmlns='{MUC_ADMIN_NS}'><item nick={_xml_attr(nick)} "
                              f"role='none'>{why}</item></query>", type="set", timeout=timeout)
    if reply["type"] != "result":
        raise PeerError(f"{self.jid}: kicking {nick!r} from {room} failed: {reply}")
    return reply


def _peer_muc_leave(self: "Peer", room: str, nick: str, status: str = "",
                    timeout: float = 10.0) -> ReceivedPresence:
    """XEP-0045 §7.14: leave; returns the room's unavailable presence for us."""
    mark = self.presence_mark()
    st = f"<status>{_xml_text(status)}</status>" if status else ""
    self.send_raw(f"<presence to={_xml_attr(room + '/' + nick)} type='unavailable'>{st}"
                  f"</presence>", timeout)
    return self.wait_presence(lambda p: p.bare == room and p.type == "unavailable"
                              and p.self_presence, timeout=timeout, since=mark)


def room_stanza_id(m: ReceivedMessage, room: str) -> Optional[str]:
    """The XEP-0359 stanza-id a room stamped on a groupchat message (its archive id)."""
    return next((i for by, i in m.stanza_ids if by == room), None)


Peer.manual_subscriptions = _peer_manual_subscriptions  # type: ignore[attr-defined]
Peer.enable_carbons = _peer_enable_carbons              # type: ignore[attr-defined]
Peer.roster_set = _peer_roster_set                      # type: ignore[attr-defined]
Peer.roster_remove = _peer_roster_remove                # type: ignore[attr-defined]
Peer.roster_get = _peer_roster_get                      # type: ignore[attr-defined]
Peer.send_chat_state = _peer_send_chat_state            # type: ignore[attr-defined]
Peer.muc_join = _peer_muc_join                          # type: ignore[attr-defined]
Peer.muc_send = _peer_muc_send                          # type: ignore[attr-defined]
Peer.muc_subject = _peer_muc_subject                    # type: ignore[attr-defined]
Peer.muc_nick = _peer_muc_nick                          # type: ignore[attr-defined]
Peer.muc_kick = _peer_muc_kick                          # type: ignore[attr-defined]
Peer.muc_leave = _peer_muc_leave                        # type: ignore[attr-defined]


# The daemon's wire log. With [daemon] log_level = "trace", daemon/connection.cpp logs
# every stanza as `<time> trace account NAME: SEND <xml>` or `... RECV <xml>` (one line:
# what we wrote as we wrote it, what we received re-serialized by pugixml, so attribute
# quotes and order differ between the two; SASL payloads are "[redacted]").

def rx_wire(account: str) -> str:
    """A wire log line of `account`; groups: SEND|RECV, the XML."""
    return rf"account {re.escape(account)}: (SEND|RECV) (<.*)$"


@dataclass
class WireStanza:
    """One stanza from the wire log: its line in Stanzad.lines, SEND or RECV, the parsed
    element (namespaces as in ElementTree: "{jabber:iq:roster}query") and the raw text."""
    index: int
    direction: str
    el: Any
    text: str

    @property
    def tag(self) -> str:
        """The local name of the root (iq, message, presence, ...)."""
        return self.el.tag.split("}", 1)[-1]

    def find(self, ns: str, name: str) -> Any:
        return self.el.find(f"{{{ns}}}{name}")

    def __repr__(self) -> str:
        return f"<wire #{self.index} {self.direction} {self.text[:300]}>"


def _parse_wire(d: Stanzad, i: int, rx: "re.Pattern[str]") -> Optional[WireStanza]:
    m = rx.search(d.lines[i])
    if not m:
        return None
    try:
        el = ET.fromstring(m.group(2))
    except ET.ParseError:  # stream headers, <stream:features> (prefix declared elsewhere)
        return None
    return WireStanza(i, m.group(1), el, m.group(2))


def wire_stanzas(d: Stanzad, account: str = "home", since: int = 0,
                 direction: Optional[str] = None,
                 predicate: Optional[Callable[[WireStanza], bool]] = None) -> "list[WireStanza]":
    """The stanzas of `account` in the daemon's wire log from line `since` (SEND, RECV or
    both), that match `predicate`."""
    rx = re.compile(rx_wire(account))
    out = []
    with d._cond:
        for i in range(since, len(d.lines)):
            w = _parse_wire(d, i, rx)
            if w and (direction is None or w.direction == direction) and (
                    predicate is None or predicate(w)):
                out.append(w)
    return out


def wait_wire(d: Stanzad, predicate: Callable[[WireStanza], bool], account: str = "home",
              since: int = 0, direction: Optional[str] = None, timeout: float = 10.0,
              what: str = "a stanza") -> WireStanza:
    """Block until the daemon logs a wire stanza (from line `since`) that matches."""
    rx = re.compile(rx_wire(account))
    deadline = time.monotonic() + timeout
    scanned = since
    with d._cond:
        while True:
            while scanned < len(d.lines):
                w = _parse_wire(d, scanned, rx)
                scanned += 1
                if w and (direction is None or w.direction == direction) and predicate(w):
                    return w
            if d._eof:
                raise AssertionError(f"{d.name} exited before logging {what} on the wire\n"
                                     f"{d._tail_locked()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {d.name} to "
                                     f"log {what} on the wire\n{d._tail_locked()}")
            d._cond.wait(remaining)
