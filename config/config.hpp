#pragma once
// The TOML configuration of DESIGN.md, validated into a typed Config (toml++).
// Every problem names the file, line and key. No I/O beyond reading the file (and, in
// load(), the client_cert and client_key files it names), the permission checks, and
// running a password_command when asked to.
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/base/jid.hpp"
#include "protocol/base/result.hpp"

namespace config {

enum class TlsMode { Auto, StartTls, Direct };
enum class ChannelBinding { Auto, Required };  // SCRAM-*-PLUS: when offered, or always

struct Room {
    std::string jid;
    std::string nick;
    friend bool operator==(const Room&, const Room&) = default;
};

// `proxy = "socks5h://[user:pass@]host:port"` (RFC 1928; RFC 1929 credentials).
struct Proxy {
    bool remote_dns = true;        // socks5h: the proxy resolves names, we make no DNS query
    std::string host;              // the proxy's address (an IP literal or a name)
    std::uint16_t port = 0;
    std::string username, password;  // from the URL or proxy_username/proxy_password; "" for
                                     // none: the daemon then uses per-account credentials
                                     // ("stanzad-ACCOUNT") so Tor isolates each account
    friend bool operator==(const Proxy&, const Proxy&) = default;
};

// `tls_pin = ["sha256/BASE64"]`: SHA-256 of a certificate's SubjectPublicKeyInfo.
using Pin = std::array<unsigned char, 32>;

struct Account {
    std::string name;                         // short name used by front ends
    xmpp::Jid jid;                            // bare JID, prepared
    std::optional<std::string> password;
    std::optional<std::string> password_command;
    std::string resource = "stanzad";
    std::string host;                         // empty: the JID's domain
    std::uint16_t port = 0;                   // 0: the default for `tls`
    TlsMode tls = TlsMode::Auto;
    std::string ca_file;                      // extra trust anchor, "" for none
    std::string client_cert, client_key;      // SASL EXTERNAL (XEP-0178), PEM files
    std::optional<std::string> client_key_password_command;  // passphrase of an encrypted client_key
    std::vector<std::string> sasl;            // "EXTERNAL", "SCRAM", "PLAIN" in order; empty: default
    ChannelBinding channel_binding = ChannelBinding::Auto;
    std::optional<Proxy> proxy;               // every connection of the account goes through it
    std::vector<Pin> tls_pins;                // when set, the server's key must match one
    std::vector<Room> rooms;
    bool chat_markers = false;                // send XEP-0333 displayed markers
    // RFC 6121 §4.7.2.3: -128..127. Where the server routes a bare-JID message to the
    // available resources with the highest priority, a client above this one gets them.
    int priority = 0;
    // OMEMO (XEP-0384, issue 14): "off" (default while OMEMO is being built), "omemo" or
    // "auto": anything but off makes and publishes this account's device and bundle.
    std::string encryption = "off";
    int line = 0;                             // where [[account]] starts, for messages
    friend bool operator==(const Account&, const Account&) = default;
};

struct DaemonSection {
    std::string state_dir;   // default $XDG_STATE_HOME/stanzad (~/.local/state/stanzad)
    std::string socket;      // default $XDG_RUNTIME_DIR/stanzad.sock
    std::string log_level = "info";  // trace|debug|info|warn|error|critical|off
    int history_days = 90;   // events older than this are pruned once every client has them
    int ping_interval = 60;  // seconds of silence before we check the link (XEP-0198 <r/> or a ping)
    int ping_timeout = 30;   // seconds without an answer after which the link is dead
    std::string resolver;    // "HOST:PORT" (IPv6 as [ADDR]:PORT): DNS server; "" = the system's
};

struct IrcSection {
    std::string listen;      // "" disables the IRC front end
    std::optional<std::string> password;
    std::optional<std::string> password_command;
    // The IRC server's name: 001-004, PONG and the source of every server message. A host
    // name (letters, digits, '-', '.'; at most 63 bytes), so never a nick!user@host.
    std::string server_name = "stanzad";
    int registration_timeout = 30;  // seconds a connection may take to register
    int max_unregistered = 16;      // connections at once that have not registered
    int max_clients = 64;           // registered IRC clients at once
    bool allow_remote = false;      // listen on an address other than loopback (needs TLS)
    std::string tls_cert, tls_key;  // PEM files: the listener speaks TLS (both, or neither)
    // Put before the text of each OMEMO-encrypted message shown to IRC clients ("": none);
    // irc::SessionOptions::encrypted_prefix has the same default.
    std::string encrypted_prefix = "[OMEMO] ";
};

struct Config {
    std::string path;        // the file it came from
    DaemonSection daemon;
    IrcSection irc;
    std::vector<Account> accounts;
};

struct Problem {
    enum class Severity { Error, Warning };
    Severity severity = Severity::Error;
    std::string file;
    int line = 0;            // 0 when the problem has no line (unreadable file)
    int column = 0;
    std::string key;         // dotted path: "account[1].jid", "daemon.log_level"
    std::string message;
    // "FILE:LINE:COLUMN: error: KEY: MESSAGE", like a compiler.
    std::string to_string() const;
};

struct LoadResult {
    std::optional<Config> config;     // set when there are no errors (warnings allowed)
    std::vector<Problem> problems;    // every error and warning, in file order
    bool ok() const { return config.has_value(); }
};

// Reads and validates `path`. Also warns when the file holds a password, or client_key
// a private key, and is readable by group or others; checks that client_cert and
// client_key are readable PEM and belong together (parse() leaves files alone).
LoadResult load(const std::string& path);
// Validates TOML text; `source_name` is used in problems. No file access.
LoadResult parse(std::string_view text, const std::string& source_name);

// $XDG_CONFIG_HOME/stanzad/config.toml, else ~/.config/stanzad/config.toml.
std::string default_path();


}  // namespace config
