"""The IRC listener's locked door (docs/irc.md "The door"):

- on TCP the listener needs a password: without one the daemon does not start, and says
  which config line;
- before the password nothing tells the roster: a contact's nick given with NICK before
  a wrong PASS gets 464, never 433;
- failed SASL logins: each 904 comes after a delay, and the third closes the connection;
- [irc] max_unregistered: one connection more than that is told ERROR and closed;
  [irc] registration_timeout: a connection that does not register is closed;
- [irc] max_clients: a client more than that is refused at registration (no 001);
- [irc] tls_cert/tls_key: the listener speaks TLS (a client that checks the certificate
  registers; one that speaks plain IRC is dropped). Off loopback it is required (config).
"""

import base64
import ssl

import harness
from irc_client import IRC_PASSWORD, IrcClient, IrcTest


class IrcDoorTest(IrcTest):
    def test_tcp_needs_a_password(self):
        config = self.irc_config(password=None)
        d = self.start_stanzad(config)
        self.assertNotEqual(d.wait_exit(10), 0)
        self.assertRegex(d.output(), r":\d+:\d+: error: irc\.listen: on TCP the IRC listener needs "
                                     r"a password")

    def test_nothing_about_the_roster_before_the_password(self):
        self.add_to_roster("bob@localhost")
        d = self.start_irc_daemon()
        self.irc(d, name="first")  # its setup gives the contacts their nicks
        c = self.irc(d, name="stranger", register=False)
        c.send("PASS wrong")
        c.send("NICK bob")
        c.send("USER x 0 * :x")
        c.wait(None, "464")
        c.wait_closed()
        self.assertEqual(c.find(None, "433"), [], c.recent())

    def test_failed_logins_close_the_connection(self):
        d = self.start_irc_daemon()
        c = self.irc(d, register=False)
        c.send("CAP LS 302")
        c.send("NICK alice")
        c.send("USER alice 0 * :Alice")
        c.send("CAP REQ :sasl")
        c.wait(None, "CAP", None, "ACK")
        wrong = base64.b64encode(b"\0alice@laptop\0wrong").decode()
        for attempt in range(1, 4):
            mark = c.mark()
            c.send("AUTHENTICATE PLAIN")
            c.send(f"AUTHENTICATE {wrong}")
            c.wait(None, "904", since=mark, nth=1)
        c.wait(lambda l: "too many failed logins" in l.text, "ERROR")
        c.wait_closed()
        self.assertEqual(c.find(None, "900") + c.find(None, "001"), [])

    def test_connection_limits_and_registration_deadline(self):
        config = self.irc_config()
        config["irc"].update(max_unregistered=2, max_clients=1, registration_timeout=3)
        d = self.start_irc_daemon(config)
        first = self.irc(d, name="first")  # registered: the one client allowed

        idle = [self.irc(d, name=f"idle{i}", register=False) for i in range(2)]
        for c in idle:
            c.alive()  # PING is answered before registration: the connection is open
        third = self.irc(d, name="third", register=False)
        third.wait(lambda l: "too many unregistered connections" in l.text, "ERROR")
        third.wait_closed()
        for c in idle:
            c.wait(lambda l: "registration timed out" in l.text, "ERROR", timeout=15)
            c.wait_closed()

        # Room for unregistered ones again, but not for a second registered client.
        second = IrcClient(d.irc_port, name="second")
        self.addCleanup(second.close)
        second.send(f"PASS {IRC_PASSWORD}")
        second.send("NICK other")
        second.send("USER other 0 * :Other")
        second.wait(lambda l: "too many IRC clients" in l.text, "ERROR")
        second.wait_closed()
        self.assertEqual(second.find(None, "001"), [])
        first.alive()

    def test_tls(self):
        config = self.irc_config()
        config["irc"].update(tls_cert=str(self.certs.server_cert), tls_key=str(self.certs.server_key))
        d = self.start_irc_daemon(config)
        d.wait_for(r"stanzad: IRC on \S+ \(TLS\)")
        context = ssl.create_default_context(cafile=str(self.certs.ca_cert))
        c = IrcClient(d.irc_port, name="tls", tls=context)
        self.addCleanup(c.close)
        c.register()
        c.alive()
        self.assertIn(c.sock.version(), ("TLSv1.2", "TLSv1.3"))

        plain = IrcClient(d.irc_port, name="plain")
        self.addCleanup(plain.close)
        plain.send(f"PASS {IRC_PASSWORD}")
        plain.send("NICK clear")
        plain.wait_closed()
        self.assertEqual(plain.lines, [])
        c.alive()


if __name__ == "__main__":
    harness.main()
