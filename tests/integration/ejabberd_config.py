# ejabberd's files for one test: EJABBERDCTL, SCRAM_MECHANISM, TLS12_ONLY, check_installed,
# and EjabberdConfig (mixed into Ejabberd): the PEM, cookie, private ejabberdctl, `ctl`
# wrapper and SQLite file written once, the environment of ejabberdctl, and ejabberd.yml and
# ejabberdctl.cfg rewritten by every start.

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from pathlib import Path
from typing import Union

from harness import LOOPBACK


EJABBERDCTL = Path("/usr/sbin/ejabberdctl")
SCRAM_MECHANISM = {"sha": "SCRAM-SHA-1", "sha256": "SCRAM-SHA-256",
                   "sha512": "SCRAM-SHA-512"}
# Listener `protocol_options` (fast_tls: OpenSSL SSL_OP_* names, joined with "|") that cap
# a c2s listener at TLS 1.2. The option replaces fast_tls's default
# "no_sslv3|cipher_server_preference|no_compression", so those are repeated here.
TLS12_ONLY = ["no_sslv3", "cipher_server_preference", "no_compression", "no_tlsv1_3"]


def check_installed() -> None:
    """Fail with what to install when ejabberd or its SQLite driver is missing."""
    missing = []
    if not EJABBERDCTL.exists():
        missing.append(f"ejabberd ({EJABBERDCTL} not found)")
    if not list(Path("/usr/lib/erlang/lib").glob("p1_sqlite3-*")):
        missing.append("erlang-p1-sqlite3 (the SQLite driver for mod_mam/mod_offline)")
    if missing:
        raise AssertionError("ejabberd tests need Debian's " + " and ".join(missing)
                             + ": apt-get install ejabberd erlang-p1-sqlite3, then stop "
                             "the system service and its epmd")


def _yq(s: Union[str, Path]) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(str(s))


class EjabberdConfig:
    """The files of an Ejabberd (ejabberd_server.py), which mixes this in and sets in its
    __init__ the attributes read here (workdir, certs, host, ports, paths, options)."""

    # -- files written once
    def _write_static_files(self) -> None:
        # ejabberd wants the certificate and its key in one PEM file.
        self.pem_path.write_text(Path(self.certs.server_cert).read_text()
                                 + Path(self.certs.server_key).read_text())
        os.chmod(self.pem_path, 0o600)
        cookie = self.home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(16).upper())
            os.chmod(cookie, 0o400)
        # The private ejabberdctl: see ejabberd.py's docstring for the two edits.
        script = EJABBERDCTL.read_text()
        edits = [("\nINSTALLUSER=ejabberd\n", "\nINSTALLUSER=\n"),
                 ('        as_current_user) "$@" ;;\n',
                  '        as_current_user) [ -n "$EJABBERDCTL_EXEC" ] && exec "$@"; "$@" ;;\n')]
        for old, new in edits:
            if script.count(old) != 1:
                raise AssertionError(f"{EJABBERDCTL} changed: cannot find {old.strip()!r}")
            script = script.replace(old, new)
        self.ctl_path.write_text(script)
        os.chmod(self.ctl_path, 0o700)
        # ejabberdctl points ERL_INETRC at CONFIG_DIR/inetrc; without the file every VM
        # logs an "inet_config: file ... not found" error report.
        (self.config_dir / "inetrc").write_text("%% Erlang resolver settings: defaults.\n")
        wrapper = self.workdir / "ctl"
        wrapper.write_text("#!/bin/sh\n# ejabberdctl for this test's ejabberd\n"
                           + "".join(f"export {k}='{v}'\n" for k, v in self._env(False).items()
                                     if k in ("HOME", "CONFIG_DIR", "LOGS_DIR", "SPOOL_DIR"))
                           + f"exec '{self.ctl_path}' \"$@\"\n")
        os.chmod(wrapper, 0o700)
        if not self.db_path.exists():
            # WAL before the first start (the mode is kept in the file); ejabberd then
            # finds no tables and creates its schema (lite.sql) itself.
            db = sqlite3.connect(self.db_path)
            try:
                mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            finally:
                db.close()
            assert mode == "wal", mode

    def _env(self, exec_: bool = True) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ERL_", "EJABBERD"))}
        env.update(HOME=str(self.home), CONFIG_DIR=str(self.config_dir),
                   LOGS_DIR=str(self.logs_dir), SPOOL_DIR=str(self.spool_dir),
                   EJABBERDCTL_CONFIG_PATH=str(self.ctl_config_path),
                   EJABBERD_CONFIG_PATH=str(self.config_path))
        if exec_:
            env["EJABBERDCTL_EXEC"] = "1"
        return env

    # -- configuration (rewritten by every start, as ports may change on a retry)
    def ctl_config_text(self) -> str:
        return f"""\
# Written by tests/integration/ejabberd.py for one test run.
ERLANG_NODE={self.node}
# The node listens on this port itself: no epmd (-erl_epmd_port, -start_epmd false).
ERL_DIST_PORT={self.dist_port}
# ... and only on loopback.
ERL_OPTIONS="-kernel inet_dist_use_interface {{127,0,0,1}} -env ERL_CRASH_DUMP_BYTES 0"
EJABBERD_BYPASS_WARNINGS=true
CONTRIB_MODULES_PATH={self.workdir / "contrib"}
CONTRIB_MODULES_CONF_DIR={self.workdir / "contrib" / "conf"}
"""

    def _listener(self, port: int, direct: bool) -> str:
        lines = ["  -",
                 f"    port: {port}",
                 f"    ip: {_yq(LOOPBACK)}",
                 "    module: ejabberd_c2s",
                 "    max_stanza_size: 262144",
                 "    shaper: none",
                 "    access: c2s"]
        lines.append("    tls: true" if direct else "    starttls_required: true")
        if self.tls_verify:
            lines += ["    tls_verify: true", f"    cafile: {_yq(self.certs.ca_cert)}"]
        if self.tls_protocol_options is not None:
            lines.append("    protocol_options:")
            lines += [f"      - {_yq(o)}" for o in self.tls_protocol_options]
        return "\n".join(lines)

    def config_text(self) -> str:
        listeners = [self._listener(self.port, False)]
        if self.direct_tls:
            listeners.append(self._listener(self.direct_tls_port, True))
        muc = ""
        if self.muc:
            muc = f"""\
  mod_muc:
    host: {_yq("conference.@HOST@")}
    access: all
    access_create: all
    access_persistent: all
    access_mam: all
    history_size: 20
    default_room_options:
      mam: true
"""
        return f"""\
# Written by tests/integration/ejabberd.py for one test run.
hosts:
  - {_yq(self.host)}
loglevel: {self.loglevel}
log_rotate_count: 0
hide_sensitive_log_data: false
certfiles:
  - {_yq(self.pem_path)}
ca_file: {_yq(self.certs.ca_cert)}
acme:
  auto: false
listen:
{chr(10).join(listeners)}
s2s_access: none
auth_method: internal
auth_password_format: scram
auth_scram_hash: {self.scram_hash}
disable_sasl_mechanisms:
  - "digest-md5"
  - "X-OAUTH2"
sql_type: sqlite
sql_database: {_yq(self.db_path)}
acl:
  local:
    user_regexp: ""
  loopback:
    ip:
      - 127.0.0.0/8
      - ::1/128
access_rules:
  local:
    allow: local
  c2s:
    allow: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
shaper_rules:
  max_user_sessions: 10
  max_user_offline_messages: 100000
{self.extra_global}
modules:
  mod_admin_extra: {{}}
  mod_blocking: {{}}
  mod_carboncopy: {{}}
  mod_disco: {{}}
  mod_mam:
    db_type: sql
    default: always
    clear_archive_on_room_destroy: false
{muc}  mod_offline:
    db_type: sql
    access_max_user_messages: max_user_offline_messages
  mod_ping: {{}}
  mod_privacy: {{}}
  mod_private: {{}}
  mod_roster:
    versioning: true
  mod_stream_mgmt:
    resume_timeout: {int(self.resume_timeout)}
  mod_version:
    show_os: false
{self.extra_modules}"""

    def write_config(self) -> None:
        self.ctl_config_path.write_text(self.ctl_config_text())
        self.config_path.write_text(self.config_text())
