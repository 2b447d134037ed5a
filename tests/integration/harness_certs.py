# Certificates made with the openssl CLI (make_ca, make_leaf, make_self_signed, spki_pin,
# make_client_cert) and the Prosody 0.12 plugin fixes for client certificates and SASL2.

from __future__ import annotations

import os
import re
import secrets
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from harness_process import LOOPBACK, XMPP_DOMAIN

if TYPE_CHECKING:  # annotations only (harness_prosody imports this module)
    from harness_prosody import Prosody


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
