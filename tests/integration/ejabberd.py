"""ejabberd 23.01 (Debian) as the second server of the integration suite, started by a
test on loopback like Prosody (harness.Prosody): its own ejabberd.yml, state, ports and
Erlang node, nothing shared with the system service or with another test.

    ej = Ejabberd(tmp / "ejabberd", certs, scram_hash="sha256", direct_tls=True)
    ej.start()                          # waits: c2s port accepts AND `status` says started
    ej.register("alice", "pw")          # ejabberdctl register (register_many: in parallel)
    ej.port, ej.direct_tls_port         # 127.0.0.1 only
    ej.restart()                        # same ports, node, mnesia and SQLite data
    mark = ej.log_barrier()             # a log position after all that was logged so far
    ej.stop() / ej.kill()

What it sets up (see /work/shared/notes/testing-with-real-peers.md, "ejabberd 23.01"):
- ejabberd.yml: one host, c2s on 127.0.0.1 with starttls_required (and with `tls: true`
  for XEP-0368 direct TLS when asked), no s2s listener, no http; the test CA's server
  certificate and its key in one PEM (`certfiles`); `auth_password_format: scram` with
  one `auth_scram_hash` (exactly one SCRAM family is offered, with its -PLUS variant);
  mod_mam and mod_offline on SQLite (`sql_type: sqlite`, `db_type: sql`; `mod_mam:
  default: always`, as 23.01 archives nothing by default): the file is created in WAL mode
  before the first start, and ejabberd 23.01 loads its own schema (lite.sql) into it when
  it finds no tables, which happens at the first SQL query, not at start (the SQL pool
  starts lazily; 23.01 has no `update_sql_schema` option); mnesia (accounts, rosters,
  rooms) in the spool dir. Carbons are `mod_carboncopy` in ejabberd.
- Erlang distribution without epmd: ERL_DIST_PORT=<free port> in a private
  ejabberdctl.cfg makes the node listen on that port itself (-erl_epmd_port, -start_epmd
  false) and the ejabberdctl client nodes connect straight to it (-dist_listen false);
  `-kernel inet_dist_use_interface {127,0,0,1}` in ERL_OPTIONS keeps the listener on
  loopback (INET_DIST_INTERFACE=127.0.0.1 would only pass the same flag, after booting one
  more Erlang VM per ejabberdctl call to parse the address, so it is left out). The cookie
  is in a private HOME (.erlang.cookie, 0400), so it is not in any argv. Node name
  ejabberd_<c2s port>@localhost: unique per instance, so tests run in parallel.
- A private copy of /usr/sbin/ejabberdctl (bin/ejabberdctl) with two edits: INSTALLUSER
  emptied (the stock script, run as root, su's to the `ejabberd` user, who cannot enter
  the test's 0700 temp dir) and `exec` for the final command when EJABBERDCTL_EXEC is
  set, so that `ejabberdctl foreground` ends up *being* beam.smp (bash -> erl -> erlexec ->
  beam.smp, all by exec): the process we spawn is the server, PDEATHSIG reaches it and
  SIGTERM stops it (OTP turns SIGTERM into init:stop()). `ctl` in the workdir is a wrapper
  with the environment set, for a human looking into a kept temp dir:
  `WORKDIR/ctl status`, `WORKDIR/ctl connected_users`.

Each ejabberdctl call boots an Erlang VM (0.5-1 s, more on a loaded machine): start()
polls the port first (cheap) and asks `status` only once it accepts; register_many() runs
the registrations in parallel. A start takes 4-6 s, the first one included (mnesia schema;
ejabberd itself reports "started in" about 2-3 s, the rest is booting the VM and `status`).

The code lives in ejabberd_*.py beside this file, each part importing only the ones before
it (config <- server <- testcase):
    ejabberd_config     EJABBERDCTL, SCRAM_MECHANISM, TLS12_ONLY, check_installed, _yq;
                        EjabberdConfig: the files above and ejabberdctl's environment
    ejabberd_server     Ejabberd (an EjabberdConfig): ports, start/stop/kill/restart,
                        ejabberdctl, logs, SQLite; _strip_root_warning
    ejabberd_testcase   EjabberdMixin (unittest glue, SHARE_EJABBERD)
This module imports them all and re-exports every name they define or import, private ones
included, so `import ejabberd; ejabberd.X` and `from ejabberd import X` work as before:
the test_ejabberd_*.py files import ejabberd only. No part keeps state that a caller
assigns: a name re-exported here is the part's own object, so mutate it, never rebind
ejabberd.X.
"""

from __future__ import annotations

import ejabberd_config
import ejabberd_server
import ejabberd_testcase

_PARTS = (ejabberd_config, ejabberd_server, ejabberd_testcase)

for _part in _PARTS:
    for _name, _value in vars(_part).items():
        if _name.startswith("__"):
            continue
        if globals().get(_name, _value) is not _value:
            raise ImportError(f"ejabberd: {_part.__name__}.{_name} is not the {_name} "
                              f"another part defines")
        globals()[_name] = _value
del _part, _name, _value
