// Dispatch (dispatch.hpp): one visit over the command, and a handler per group.
#include "daemon/dispatch.hpp"

#include <type_traits>

#include "daemon/account.hpp"
#include "protocol/base/rfc3339.hpp"

namespace stanzad {
namespace {

using xmpp::im::is_one_of;

template <class C>
constexpr bool daemon_kind = is_one_of<C, model::Hello, model::Ack, model::ListAccounts, model::Conversations>;
// XEP-0384 first: a `send` may go encrypted before the session stores it.
template <class C>
constexpr bool encryption_kind = is_one_of<C, model::Send, model::SetEncryption, model::OmemoDevices, model::OmemoTrust>;
// The account's session (protocol/im/session_commands.cpp): messages, contacts, rooms.
template <class C>
constexpr bool session_kind = xmpp::im::AccountSession::handles<C> && !encryption_kind<C>;
template <class C>
constexpr bool account_kind = is_one_of<C, model::Raw, model::SetAccountEnabled, model::ProbeCertificate>;
template <class>
constexpr bool no_handler = false;

std::optional<model::Reply> need_online(Account& a) {
    if (a.state() == Account::State::Online) return std::nullopt;
    return model::Reply::error("not-online", "account " + a.name() + " is " + to_string(a.state()));
}

}  // namespace

void Dispatch::handle(const model::Command& command, const std::string& client, Respond respond) {
    std::visit(
        [&](const auto& c) {
            using C = std::decay_t<decltype(c)>;
            if constexpr (daemon_kind<C>) {
                respond(daemon_command(c, client));
            } else {
                Account* a = find_(c.account);
                if (!a) {
                    std::string known;
                    for (Account* each : list_()) known += (known.empty() ? "" : ", ") + each->name();
                    return respond(model::Reply::error("unknown-account", "no account named '" + c.account +
                                                                              "' (known: " +
                                                                              (known.empty() ? "none" : known) + ")"));
                }
                if constexpr (encryption_kind<C>) encryption_command(*a, c, std::move(respond));
                else if constexpr (session_kind<C>) link_(*a).account_session.handle(c, std::move(respond));
                else if constexpr (account_kind<C>) account_command(*a, c, std::move(respond));
                else static_assert(no_handler<C>, "a command kind without a handler");
            }
        },
        command);
}

template <class C>
model::Reply Dispatch::daemon_command(const C& c, const std::string& client) {
    model::Reply reply;
    if constexpr (std::is_same_v<C, model::Hello>) {
        auto cursor = store_.cursor(c.client);
        if (!cursor) return model::Reply::error("internal", cursor.error().message);
        reply.cursor = cursor.value();
        reply.last_seq = store_.last_seq();
        reply.accounts = account_infos();
    } else if constexpr (std::is_same_v<C, model::Ack>) {
        if (c.seq > store_.last_seq())
            return model::Reply::error("bad-request", "seq " + std::to_string(c.seq) + " is past the last event (" +
                                                          std::to_string(store_.last_seq()) + ")");
        auto st = c.durable ? store_.set_cursor(client, c.seq) : store_.set_cursor_later(client, c.seq);
        if (!st) return model::Reply::error("internal", st.error().message);
        auto cursor = store_.cursor(client);
        reply.cursor = cursor ? cursor.value() : c.seq;
    } else if constexpr (std::is_same_v<C, model::ListAccounts>) {
        reply.accounts = account_infos();
    } else if constexpr (std::is_same_v<C, model::Conversations>) {
        std::string after = c.after_stamp, before = c.before_stamp;
        if (!xmpp::im::normalize_stamp(after) || !xmpp::im::normalize_stamp(before)) return model::Reply::error("bad-request", "not a time");
        auto list = store_.conversations(after, before, static_cast<std::size_t>(c.limit));
        if (!list) return model::Reply::error("internal", list.error().message);
        for (const auto& conv : list.value()) reply.conversations.push_back({conv.account, conv.peer, conv.last_stamp});
    }
    return reply;
}

template <class C>
void Dispatch::encryption_command(Account& a, const C& c, Respond respond) {
    if constexpr (std::is_same_v<C, model::Send>) {
        // XEP-0384: encrypted when the contact's setting (or the account's) says so.
        auto& link = link_(a);
        auto wanted = link.omemo_session.wanted(c);
        if (!wanted) return respond(model::Reply::error(wanted.error().code, wanted.error().message));
        if (wanted.value()) return link.omemo_session.send(c, *wanted.value(), std::move(respond));
        return link.account_session.handle(c, std::move(respond));
    } else if constexpr (std::is_same_v<C, model::SetEncryption>) {
        return respond(link_(a).omemo_session.set_encryption(c));
    } else if constexpr (std::is_same_v<C, model::OmemoDevices>) {
        return link_(a).omemo_session.devices(c, std::move(respond));
    } else if constexpr (std::is_same_v<C, model::OmemoTrust>) {
        return respond(link_(a).omemo_session.trust(c));
    }
}

template <class C>
void Dispatch::account_command(Account& a, const C& c, Respond respond) {
    if constexpr (std::is_same_v<C, model::Raw>) {
        if (auto st = xmpp::check_raw_stanza(c.xml); !st) return respond(model::Reply::error("bad-xml", st.error().message));
        if (auto e = need_online(a)) return respond(*e);
        a.send(c.xml);
    } else if constexpr (std::is_same_v<C, model::SetAccountEnabled>) {
        if (c.enabled) a.enable();
        else a.disable();
    } else if constexpr (std::is_same_v<C, model::ProbeCertificate>) {
        return a.probe([respond = std::move(respond)](xmpp::Result<Account::Probe> r) {
            if (!r) return respond(model::Reply::error(r.error().code, r.error().message));
            const auto& p = r.value();
            model::Reply reply;
            reply.certificate = {p.server,
                                 p.certificate.pin,
                                 p.certificate.subject,
                                 p.certificate.issuer,
                                 p.certificate.not_before,
                                 p.certificate.not_after,
                                 p.certificate.names,
                                 p.certificate.verify_error};
            respond(std::move(reply));
        });
    }
    respond(model::Reply{});
}

std::vector<model::AccountInfo> Dispatch::account_infos() const {
    std::vector<model::AccountInfo> out;
    for (Account* a : list_()) {
        model::AccountInfo::Capabilities caps;
        if (const auto& c = a->capabilities(); c.known && a->state() == Account::State::Online)
            caps = {true, c.stream_management, c.archive, c.carbons};
        out.push_back({a->name(), a->config().jid.bare(), to_string(a->state()), a->reason(), a->bound_jid(),
                       a->auth(), a->connection_text(), caps, a->priority()});
    }
    return out;
}

}  // namespace stanzad
