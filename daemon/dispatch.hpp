#pragma once
// Dispatch: each front-end command (model::Command) to what answers it. The daemon's own
// (hello, ack, accounts, conversations) from the store and the account list; an account's
// own (raw, enable, probe) to the live Account; XEP-0384's to the account's OmemoSession,
// and the rest (messages, contacts, rooms) to its AccountSession, both through the
// account's AccountLink (account_link.hpp). Every command answers through `respond`
// exactly once, at once or when the server has answered; a command kind without a handler
// does not compile. Owned by the hub; loop thread only.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/account_link.hpp"
#include "daemon/store.hpp"
#include "frontends/model/model.hpp"

namespace stanzad {

class Account;

class Dispatch {
public:
    using Respond = std::function<void(model::Reply)>;
    using FindAccount = std::function<Account*(std::string_view name)>;
    using ListAccounts = std::function<std::vector<Account*>()>;
    using Link = std::function<AccountLink&(Account&)>;  // the account's IM core, made on first use

    Dispatch(Store& store, FindAccount find, ListAccounts list, Link link)
        : store_(store), find_(std::move(find)), list_(std::move(list)), link_(std::move(link)) {}

    // `client` is the name given in hello (for hello and ack).
    void handle(const model::Command& command, const std::string& client, Respond respond);

private:
    template <class C>
    model::Reply daemon_command(const C& c, const std::string& client);
    template <class C>
    void encryption_command(Account& a, const C& c, Respond respond);
    template <class C>
    void account_command(Account& a, const C& c, Respond respond);
    std::vector<model::AccountInfo> account_infos() const;

    Store& store_;
    FindAccount find_;
    ListAccounts list_;
    Link link_;
};

}  // namespace stanzad
