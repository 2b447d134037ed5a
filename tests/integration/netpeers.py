"""Network stand-ins for the connection tests (test_connect_*.py): a DNS server, SOCKS5
proxies and an unreachable address, all on loopback, owned by one test and killed at its
end (and at exit, like every child of the harness).

    Dnsmasq(workdir, srv=[...], hosts=[...])   a real DNS server (dnsmasq) on a loopback
              port that serves SRV, A and AAAA records for the test domain and logs every
              query it receives: queries() is the proof of what the daemon asked, and of
              what it did not (no leak while a socks5h proxy is in use).
    Microsocks(...)   a real SOCKS5 proxy (microsocks), with or without RFC 1929
              username/password; hosts={name: address} gives it a private /etc/hosts (a
              mount namespace of its own), so it can resolve names that nobody else on
              this machine can: a stand-in for Tor resolving a name (or an .onion) that
              the daemon must never look up itself.
    FakeSocks5(mode)  a small SOCKS5 server written here: it records every greeting,
              credentials and CONNECT request (ATYP, name or address, port), and then
              forwards (mode "forward", with its own routes: names resolve only here),
              answers the CONNECT with a reply code (mode "refuse", e.g. 5 connection
              refused, 4 host unreachable, 6 TTL expired, 0xF0 onion descriptor not found)
              or closes the connection as soon as it is accepted (mode "drop").
              set_mode() switches for the next connections. RefusingProxy(code) and
              DroppingProxy() are the two broken starts.
    BlackHole(host, port)   a TCP port where connect() hangs: a listener with a full accept
              queue (listen(0), one connection of ours never accepted), so Linux drops
              further SYNs: an IPv6 (or IPv4) address that does not answer.
    dns_query(server, name, qtype)   a DNS client in 60 lines (no dnspython): UDP, one
              question, answers decoded for A, AAAA and SRV.
    socks5_connect(proxy, host, port)   a hand-written SOCKS5 client (fixture self-test).
    NetTest   JsonlTest for the domain "stanzad.test" (Prosody's VirtualHost and the name
              on its certificate), with helpers to make the fixtures above with cleanups.

Readiness is always an event: an answer to a real DNS query, a SOCKS5 greeting answered,
a port accepting; never a sleep.

Run this file to check the fixtures without the daemon:
    /usr/bin/python3 tests/integration/netpeers.py

The code lives in netpeers_*.py beside this file, each part importing harness and, for
netpeers_testcase only, the parts before it (dns, socks, fakesocks, listeners <- testcase):
    netpeers_dns         QTYPES, DnsReply, dns_query, free_udp_tcp_port, Dnsmasq
    netpeers_socks       _LineLog, Microsocks, Socks5Error, socks5_connect
    netpeers_fakesocks   SOCKS_REPLIES, SocksRequest, FakeSocks5, RefusingProxy,
                         DroppingProxy
    netpeers_listeners   BlackHole, TlsSniffer (records a direct-TLS client's SNI and ALPN)
    netpeers_testcase    NetTest, FixturesSelfTest
This module imports them all and re-exports every name they define or import, private ones
included, so `import netpeers; netpeers.X` and `from netpeers import X` work as before:
the test_connect_*.py files import netpeers only. No part keeps state that a caller
assigns: a name re-exported here is the part's own object, so mutate it, never rebind
netpeers.X.
"""

from __future__ import annotations

import harness
import netpeers_dns
import netpeers_socks
import netpeers_fakesocks
import netpeers_listeners
import netpeers_testcase

_PARTS = (netpeers_dns, netpeers_socks, netpeers_fakesocks, netpeers_listeners,
          netpeers_testcase)

for _part in _PARTS:
    for _name, _value in vars(_part).items():
        if _name.startswith("__"):
            continue
        if globals().get(_name, _value) is not _value:
            raise ImportError(f"netpeers: {_part.__name__}.{_name} is not the {_name} "
                              f"another part defines")
        globals()[_name] = _value
del _part, _name, _value


if __name__ == "__main__":
    harness.main()
