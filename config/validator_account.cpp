// The [[account]] checks of the config's Validator; see validator.hpp.
#include <sys/stat.h>

#include <cstring>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "config/validator.hpp"

namespace config::detail {

std::optional<Account> Validator::account(const toml::table& t, const std::string& prefix) {
    std::size_t errors_before = error_count();
    Account a;
    a.line = static_cast<int>(t.source().begin.line);
    check_unknown(t, account_keys, prefix);
    account_identity(t, prefix, a);
    password_pair(t, prefix, a.password, a.password_command);
    account_server(t, prefix, a);
    account_credentials(t, prefix, a);
    proxy_keys(t, prefix, a);
    onion_checks(t, prefix, a);
    if (const toml::node* pins = t.get("tls_pin")) tls_pins(*pins, prefix, a);

    if (const toml::node* rooms = t.get("rooms")) this->rooms(*rooms, prefix, a);
    if (auto v = bool_at(t, "chat_markers", prefix)) a.chat_markers = *v;
    if (auto v = choice_at(t, "encryption", prefix, encryption_modes)) a.encryption = *v;
    // RFC 6121 §4.7.2.3: the priority is an integer from -128 to +127.
    integer_at(t, "priority", -128, 127, "a presence priority", a.priority, prefix);

    if (error_count() != errors_before) return std::nullopt;
    return a;
}

// name (unique among the accounts) and jid (bare).
void Validator::account_identity(const toml::table& t, const std::string& prefix, Account& a) {
    if (!t.contains("name")) error(t, prefix + ".name", "missing required key 'name'");
    if (auto name = string_at(t, "name", prefix)) {
        const toml::node& at = *t.get("name");
        if (!is_account_name(*name)) {
            error(at, prefix + ".name",
                  "'" + *name + "' is not a valid name: use letters, digits, '_' and '-'");
        } else {
            a.name = *name;
            // Checked against every earlier [[account]], valid or not, so that a
            // duplicate is reported even when the first one has other problems.
            auto same = std::find_if(seen_names_.begin(), seen_names_.end(),
                                     [&](const auto& seen) { return seen.first == *name; });
            if (same != seen_names_.end()) {
                error(at, prefix + ".name",
                      "account name '" + *name + "' is already used by the account at line " +
                          std::to_string(same->second));
            } else {
                seen_names_.emplace_back(*name, a.line);
            }
        }
    }

    if (!t.contains("jid")) error(t, prefix + ".jid", "missing required key 'jid'");
    if (auto text = string_at(t, "jid", prefix)) {
        const toml::node& at = *t.get("jid");
        auto jid = xmpp::Jid::parse(*text);
        if (!jid) {
            error(at, prefix + ".jid", "invalid JID '" + *text + "': " + jid.error().message);
        } else if (!jid.value().is_bare()) {
            error(at, prefix + ".jid",
                  "expected a bare JID (no /resource; set resource instead), got '" + *text + "'");
        } else {
            a.jid = jid.value();
        }
    }
}

// resource, host, port, tls: where and how to connect.
void Validator::account_server(const toml::table& t, const std::string& prefix, Account& a) {
    if (auto resource = string_at(t, "resource", prefix)) {
        // Prepare it the way the server will, so a bad resource fails here and not at bind.
        auto full = xmpp::Jid::parse((a.jid.empty() ? std::string("x") : a.jid.bare()) + "/" + *resource);
        if (!full) {
            error(*t.get("resource"), prefix + ".resource",
                  "invalid resource '" + *resource + "': " + full.error().message);
        } else {
            a.resource = full.value().resource();
        }
    }

    if (auto host = string_at(t, "host", prefix)) {
        if (host->find_first_of(" \t/:") != std::string::npos) {
            error(*t.get("host"), prefix + ".host",
                  "expected a host name or address without port or scheme, got '" + *host + "'");
        } else {
            a.host = *host;
        }
    }

    if (const toml::node* port = t.get("port")) {
        if (const auto* i = port->as_integer()) {
            std::int64_t v = i->get();
            if (v < 1 || v > 65535)
                error(*port, prefix + ".port", "expected a port between 1 and 65535, got " + std::to_string(v));
            else
                a.port = static_cast<std::uint16_t>(v);
        } else {
            error(*port, prefix + ".port", "expected an integer, got " + std::string(type_name(*port)));
        }
    }

    if (auto tls = choice_at(t, "tls", prefix, tls_modes)) {
        a.tls = *tls == "starttls" ? TlsMode::StartTls : *tls == "direct" ? TlsMode::Direct : TlsMode::Auto;
    }
}

// The CA, the client certificate and its key, SASL mechanisms and channel binding: which
// credentials go together, and that each mechanism has its own.
void Validator::account_credentials(const toml::table& t, const std::string& prefix, Account& a) {
    if (auto v = path_at(t, "ca_file", prefix)) a.ca_file = *v;
    if (auto v = path_at(t, "client_cert", prefix)) a.client_cert = *v;
    if (auto v = path_at(t, "client_key", prefix)) a.client_key = *v;
    a.client_key_password_command = string_at(t, "client_key_password_command", prefix);
    bool has_cert = t.contains("client_cert"), has_key = t.contains("client_key");
    bool has_password = t.contains("password") || t.contains("password_command");
    if (has_cert && !has_key) {
        error(*t.get("client_cert"), prefix + ".client_key", "client_cert is set but client_key is not");
    } else if (has_key && !has_cert) {
        error(*t.get("client_key"), prefix + ".client_cert", "client_key is set but client_cert is not");
    } else if (!has_cert && !has_password) {
        error(t, prefix + ".password",
              "missing: set password, password_command, or client_cert and client_key");
    }
    if (t.contains("client_key_password_command") && !has_key && !has_cert) {
        error(*t.get("client_key_password_command"), prefix + ".client_key",
              "client_key_password_command is set but client_key is not");
    }
    if (const toml::node* sasl = t.get("sasl")) sasl_list(*sasl, prefix, a, has_cert || has_key, has_password);
    if (auto v = choice_at(t, "channel_binding", prefix, channel_bindings)) {
        a.channel_binding = *v == "required" ? ChannelBinding::Required : ChannelBinding::Auto;
    }
    if (check_files_ && !a.client_cert.empty() && !a.client_key.empty()) certificate_files(t, prefix, a);
}

void Validator::sasl_list(const toml::node& node, const std::string& prefix, Account& a, bool any_cert,
               bool has_password) {
    // Without any credentials the "missing" error already says what to add.
    const bool check_credentials = any_cert || has_password;
    const std::string key = prefix + ".sasl";
    const std::string valid = "expected " + one_of(sasl_names);
    const toml::array* list = node.as_array();
    if (!list) {
        error(node, key,
              "expected an array in order of preference, like sasl = [\"EXTERNAL\", \"SCRAM\"], got " +
                  std::string(type_name(node)));
        return;
    }
    if (list->empty()) {
        error(node, key,
              "an empty list allows no way to log in; remove sasl for the default order (EXTERNAL when "
              "client_cert is set, then SCRAM when a password is)");
        return;
    }
    for (std::size_t i = 0; i < list->size(); ++i) {
        const toml::node& item = *list->get(i);
        const std::string item_key = key + "[" + std::to_string(i + 1) + "]";
        const auto* text = item.as_string();
        if (!text) {
            error(item, item_key, valid + ", got " + std::string(type_name(item)));
            continue;
        }
        std::string name = text->get();
        std::transform(name.begin(), name.end(), name.begin(), ascii_upper);
        if (std::find(sasl_names.begin(), sasl_names.end(), name) == sasl_names.end()) {
            std::string message = "unknown mechanism '" + text->get() + "': " + valid;
            if (name.starts_with("SCRAM-")) {
                message += "; write SCRAM: the hash and -PLUS are chosen from what the server offers";
            } else if (auto hint = closest(name, sasl_names)) {
                message += "; did you mean '" + std::string(*hint) + "'?";
            }
            error(item, item_key, std::move(message));
        } else if (std::find(a.sasl.begin(), a.sasl.end(), name) != a.sasl.end()) {
            error(item, item_key, "'" + name + "' is listed twice");
        } else if (check_credentials && name == "EXTERNAL" && !any_cert) {
            error(item, item_key, "EXTERNAL needs client_cert and client_key");
        } else if (check_credentials && name != "EXTERNAL" && !has_password) {
            error(item, item_key, name + " needs password or password_command");
        } else {
            a.sasl.push_back(std::move(name));
        }
    }
}

void Validator::certificate_files(const toml::table& t, const std::string& prefix, const Account& a) {
    const toml::node& cert_at = *t.get("client_cert");
    const toml::node& key_at = *t.get("client_key");
    const std::string cert_key = prefix + ".client_cert", key_key = prefix + ".client_key";
    const std::string cert_name = "client_cert " + a.client_cert, key_name = "client_key " + a.client_key;

    X509Ptr cert;
    if (auto file = read_small_file(a.client_cert); !file) {
        error(cert_at, cert_key, file.error().message);
    } else if (cert = first_certificate(file.value().text); !cert) {
        std::string message = cert_name + " holds no PEM certificate (-----BEGIN CERTIFICATE-----)";
        if (has_pem_label(file.value().text, "PRIVATE KEY-----"))
            message += "; it holds a private key: are client_cert and client_key swapped?";
        error(cert_at, cert_key, std::move(message));
    } else if (const ASN1_TIME* not_after = X509_get0_notAfter(cert.get());
               X509_cmp_current_time(not_after) < 0) {
        warning(cert_at, cert_key,
                cert_name + " expired on " + utc_date(not_after) + "; servers will refuse it");
    }

    auto file = read_small_file(a.client_key);
    if (!file) {
        error(key_at, key_key, file.error().message);
        return;
    }
    FileText& key_file = file.value();
    PrivateKey key = private_key(key_file.text);
    bool holds_certificate = has_pem_label(key_file.text, "CERTIFICATE-----");
    OPENSSL_cleanse(key_file.text.data(), key_file.text.size());
    if ((key.key || key.encrypted) && (key_file.mode & (S_IRGRP | S_IROTH))) {
        warning(key_at, key_key,
                a.client_key + " is readable by others (mode " + file_mode(key_file.mode) +
                    ") and holds a private key; chmod 600 " + a.client_key);
    }

    if (key.encrypted) {
        if (!a.client_key_password_command)
            error(key_at, key_key, key_name + " is encrypted: set client_key_password_command");
        // With the command, the key stays locked until the daemon runs it.
        return;
    }
    if (!key.key) {
        std::string message = key_name + " holds no PEM private key (-----BEGIN PRIVATE KEY-----)";
        if (holds_certificate) message += "; it holds a certificate: are client_cert and client_key swapped?";
        error(key_at, key_key, std::move(message));
        return;
    }
    if (a.client_key_password_command) {
        warning(*t.get("client_key_password_command"), prefix + ".client_key_password_command",
                key_name + " is not encrypted: the command is not needed");
    }
    if (cert && EVP_PKEY_eq(X509_get0_pubkey(cert.get()), key.key.get()) != 1) {
        error(key_at, key_key, key_name + " does not belong to " + cert_name);
    }
    ERR_clear_error();
}

void Validator::proxy_keys(const toml::table& t, const std::string& prefix, Account& a) {
    if (auto url = string_at(t, "proxy", prefix)) {
        auto proxy = parse_proxy_url(*url);
        if (!proxy) {
            error(*t.get("proxy"), prefix + ".proxy", proxy.error().message);
        } else {
            if (!proxy.value().password.empty()) saw_password_ = true;
            a.proxy = std::move(proxy.value());
        }
    }
    auto username = socks_credential_at(t, "proxy_username", prefix);
    auto password = socks_credential_at(t, "proxy_password", prefix);
    bool has_user = t.contains("proxy_username"), has_pass = t.contains("proxy_password");
    if (has_pass) saw_password_ = true;
    if ((has_user || has_pass) && !t.contains("proxy")) {
        std::string_view present = has_user ? "proxy_username" : "proxy_password";
        error(*t.get(present), prefix + ".proxy", std::string(present) + " is set but proxy is not");
    } else if (has_user && !has_pass) {
        error(*t.get("proxy_username"), prefix + ".proxy_password",
              "proxy_username is set but proxy_password is not (RFC 1929 needs both)");
    } else if (has_pass && !has_user) {
        error(*t.get("proxy_password"), prefix + ".proxy_username",
              "proxy_password is set but proxy_username is not (RFC 1929 needs both)");
    } else if (username && password && a.proxy) {
        a.proxy->username = std::move(*username);
        a.proxy->password = std::move(*password);
    }
}

std::optional<std::string> Validator::socks_credential_at(const toml::table& t, std::string_view key,
                                               const std::string& prefix) {
    auto value = string_at(t, key, prefix);
    if (value && value->size() > max_socks_credential) {
        error(*t.get(key), join_key(prefix, key),
              "must be at most 255 bytes (RFC 1929), got " + std::to_string(value->size()));
        return std::nullopt;
    }
    return value;
}

void Validator::onion_checks(const toml::table& t, const std::string& prefix, const Account& a) {
    bool onion_host = is_onion(a.host);
    // What the daemon resolves or hands to the proxy: host, else the JID's domain.
    std::string_view target = !a.host.empty() ? std::string_view(a.host) : std::string_view(a.jid.domain());
    if (!is_onion(target)) return;
    const toml::node& at = onion_host ? *t.get("host") : *t.get("jid");
    if (!t.contains("proxy")) {
        error(at, prefix + ".proxy",
              std::string(target) + " is an onion service: it can only be reached through Tor's SOCKS port; "
              "set proxy = \"socks5h://127.0.0.1:9050\"");
    } else if (a.proxy && !a.proxy->remote_dns) {
        warning(*t.get("proxy"), prefix + ".proxy",
                "socks5:// resolves host names here, but " + std::string(target) +
                    " is an onion service that only Tor can resolve (and the lookup would tell your DNS "
                    "server about it): use socks5h://");
    }
}

void Validator::tls_pins(const toml::node& node, const std::string& prefix, Account& a) {
    const std::string key = prefix + ".tls_pin";
    const toml::array* list = node.as_array();
    if (!list) {
        error(node, key,
              "expected an array, like tls_pin = [\"sha256/BASE64\"] (several pins for a key change), got " +
                  std::string(type_name(node)));
        return;
    }
    const std::string expected =
        "expected \"sha256/\" followed by the base64 of 32 bytes (44 characters), as printed by `stanzactl pin " +
        (a.name.empty() ? std::string("ACCOUNT") : a.name) + "`";
    for (std::size_t i = 0; i < list->size(); ++i) {
        const toml::node& item = *list->get(i);
        std::string item_key = key + "[" + std::to_string(i + 1) + "]";
        const auto* text = item.as_string();
        if (!text) {
            error(item, item_key, expected + ", got " + std::string(type_name(item)));
            continue;
        }
        auto pin = parse_pin(text->get());
        if (!pin) {
            error(item, item_key, expected + "; " + pin.error().message);
        } else if (std::find(a.tls_pins.begin(), a.tls_pins.end(), pin.value()) != a.tls_pins.end()) {
            warning(item, item_key, "the same pin is listed twice");
        } else {
            a.tls_pins.push_back(pin.value());
        }
    }
}

void Validator::rooms(const toml::node& node, const std::string& prefix, Account& a) {
    const std::string key = prefix + ".rooms";
    const toml::array* list = node.as_array();
    if (!list) {
        error(node, key,
              "expected an array like [ { jid = \"room@conference.example.org\", nick = \"me\" } ], got " +
                  std::string(type_name(node)));
        return;
    }
    for (std::size_t i = 0; i < list->size(); ++i) {
        const toml::node& item = *list->get(i);
        std::string room_prefix = key + "[" + std::to_string(i + 1) + "]";
        const toml::table* t = item.as_table();
        if (!t) {
            error(item, room_prefix,
                  "expected a table like { jid = \"room@conference.example.org\", nick = \"me\" }, got " +
                      std::string(type_name(item)));
            continue;
        }
        check_unknown(*t, room_keys, room_prefix);
        Room room;
        bool ok = true;
        if (!t->contains("jid")) {
            error(*t, room_prefix + ".jid", "missing required key 'jid'");
            ok = false;
        }
        if (auto text = string_at(*t, "jid", room_prefix)) {
            auto jid = xmpp::Jid::parse(*text);
            if (!jid) {
                error(*t->get("jid"), room_prefix + ".jid", "invalid JID '" + *text + "': " + jid.error().message);
                ok = false;
            } else if (!jid.value().is_bare()) {
                error(*t->get("jid"), room_prefix + ".jid",
                      "expected a bare room JID (set the nick with nick), got '" + *text + "'");
                ok = false;
            } else {
                room.jid = jid.value().bare();
            }
        } else {
            ok = false;
        }
        if (auto nick = string_at(*t, "nick", room_prefix)) {
            room.nick = *nick;
        } else if (t->contains("nick")) {
            ok = false;
        } else {
            // The usual choice in XMPP clients: the account's localpart.
            room.nick = !a.jid.local().empty() ? a.jid.local() : a.name;
        }
        if (ok) {
            auto dup = std::find_if(a.rooms.begin(), a.rooms.end(),
                                    [&](const Room& r) { return r.jid == room.jid; });
            if (dup != a.rooms.end()) {
                error(*t->get("jid"), room_prefix + ".jid", "room '" + room.jid + "' is listed twice");
            } else {
                a.rooms.push_back(std::move(room));
            }
        }
    }
}

}  // namespace config::detail
