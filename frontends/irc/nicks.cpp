#include "frontends/irc/nicks.hpp"

namespace irc {
namespace {

bool is_letter(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// RFC 2812 §2.3.1: letter / digit / special ("[", "]", "\", "`", "_", "^", "{", "|", "}") / "-".
bool nick_char(char c) {
    return is_letter(c) || is_digit(c) || std::string_view("-[]\\`_^{|}").find(c) != std::string_view::npos;
}

// Allowed bytes kept, each run of other bytes one '_'; "" when no byte is allowed.
std::string clean(std::string_view text) {
    std::string out;
    bool any = false, in_run = false;
    for (char c : text) {
        if (nick_char(c)) {
            out += c;
            any = true;
            in_run = false;
        } else if (!in_run) {
            out += '_';
            in_run = true;
        }
    }
    return any ? out : std::string{};
}

// A suffix for base_<word>: at most 10 bytes of the word, "" when nothing is left.
std::string suffix_word(std::string_view word) {
    std::string w = clean(word);
    if (w.size() > 10) w.resize(10);
    return w.empty() ? w : "_" + w;
}

std::string with_suffix(const std::string& base, const std::string& suffix) {
    return base.substr(0, nick_len - suffix.size()) + suffix;
}

// base_<qualifier>: the domain's first label for user@host, the room for room@host/nick.
std::string qualifier(std::string_view jid) {
    auto slash = jid.find('/');
    std::string_view bare = jid.substr(0, slash);
    auto at = bare.find('@');
    if (slash != std::string_view::npos) return at == std::string_view::npos ? "" : suffix_word(bare.substr(0, at));
    if (at == std::string_view::npos) return "";
    std::string_view domain = bare.substr(at + 1);
    return suffix_word(domain.substr(0, domain.find('.')));
}

std::string escape_field(std::string_view s) {
    std::string out;
    for (char c : s) {
        switch (c) {
        case '%': out += "%25"; break;
        case '\t': out += "%09"; break;
        case '\r': out += "%0D"; break;
        case '\n': out += "%0A"; break;
        default: out += c;
        }
    }
    return out;
}

std::optional<std::string> unescape_field(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        auto code = s.substr(i + 1, 2);
        if (code == "25") out += '%';
        else if (code == "09") out += '\t';
        else if (code == "0D") out += '\r';
        else if (code == "0A") out += '\n';
        else return std::nullopt;
        i += 2;
    }
    return out;
}

constexpr std::string_view header = "stanzad-nicks 1";

}  // namespace

std::string fold(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

bool valid_nick(std::string_view nick) {
    if (nick.empty() || nick.size() > nick_len) return false;
    // NICK message: servers "MAY disallow digits as the first character"; '-' too.
    if (is_digit(nick.front()) || nick.front() == '-') return false;
    for (char c : nick)
        if (!nick_char(c)) return false;
    return true;
}

std::string sanitize_nick(std::string_view text) {
    std::string out = clean(text);
    if (out.empty()) return "user";
    if (is_digit(out.front()) || out.front() == '-') out.insert(out.begin(), '_');
    if (out.size() > nick_len) out.resize(nick_len);
    return out;
}

std::string nick_base(std::string_view jid) {
    // RFC 7622 §3.1: the first '/' starts the resource (the occupant nick in a room JID,
    // XEP-0045 §7.2.3); the '@' before it ends the local part.
    auto slash = jid.find('/');
    if (slash != std::string_view::npos) return sanitize_nick(jid.substr(slash + 1));
    auto at = jid.find('@');
    if (at != std::string_view::npos) return sanitize_nick(jid.substr(0, at));
    return sanitize_nick(jid.substr(0, jid.find('.')));
}

NickMap::NickMap(std::vector<std::string> reserved) {
    for (const auto& r : reserved) reserved_.insert(fold(r));
}

bool NickMap::free_for(const std::string& folded, const Contact& who) const {
    if (reserved_.count(folded)) return false;
    auto it = by_nick_.find(folded);
    return it == by_nick_.end() || it->second == who;
}

void NickMap::assign(const Contact& who, std::string nick) {
    auto old = by_contact_.find(who);
    if (old != by_contact_.end()) by_nick_.erase(fold(old->second));
    by_nick_[fold(nick)] = who;
    by_contact_[who] = std::move(nick);
}

std::string NickMap::nick_for(const std::string& account, const std::string& jid) {
    Contact who{account, jid};
    if (auto it = by_contact_.find(who); it != by_contact_.end()) return it->second;

    std::string base = nick_base(jid);
    std::vector<std::string> candidates{base};
    bool jid_in_other_account = false;
    for (const auto& [c, nick] : by_contact_)
        if (c.second == jid && c.first != account) jid_in_other_account = true;
    if (auto q = qualifier(jid); !q.empty() && !jid_in_other_account) candidates.push_back(with_suffix(base, q));
    if (auto a = suffix_word(account); !a.empty()) candidates.push_back(with_suffix(base, a));
    for (const auto& c : candidates) {
        if (free_for(fold(c), who)) {
            assign(who, c);
            return c;
        }
    }
    // At most size() + reserved nicks are taken, so this ends.
    for (std::size_t n = 2;; ++n) {
        std::string c = with_suffix(base, std::to_string(n));
        if (free_for(fold(c), who)) {
            assign(who, c);
            return c;
        }
    }
}

std::optional<std::string> NickMap::find_nick(const std::string& account, const std::string& jid) const {
    auto it = by_contact_.find(Contact{account, jid});
    if (it == by_contact_.end()) return std::nullopt;
    return it->second;
}

std::optional<NickMap::Contact> NickMap::lookup(std::string_view nick) const {
    auto it = by_nick_.find(fold(nick));
    if (it == by_nick_.end()) return std::nullopt;
    return it->second;
}

xmpp::Status NickMap::rename(const std::string& account, const std::string& jid, std::string_view nick) {
    if (!valid_nick(nick))
        return xmpp::make_error("erroneous-nick", "'" + std::string(nick.substr(0, 64)) + "' is not a usable nick");
    Contact who{account, jid};
    if (!free_for(fold(nick), who))
        return xmpp::make_error("nick-in-use", "'" + std::string(nick) + "' is already in use");
    assign(who, std::string(nick));
    return xmpp::Ok{};
}

void NickMap::forget(const std::string& account, const std::string& jid) {
    auto it = by_contact_.find(Contact{account, jid});
    if (it == by_contact_.end()) return;
    by_nick_.erase(fold(it->second));
    by_contact_.erase(it);
}

bool NickMap::reserve(std::string_view nick) {
    std::string f = fold(nick);
    if (by_nick_.count(f)) return false;
    reserved_.insert(std::move(f));
    return true;
}

void NickMap::release(std::string_view nick) { reserved_.erase(fold(nick)); }

bool NickMap::is_reserved(std::string_view nick) const { return reserved_.count(fold(nick)) > 0; }

bool NickMap::taken(std::string_view nick) const {
    std::string f = fold(nick);
    return reserved_.count(f) > 0 || by_nick_.count(f) > 0;
}

std::string NickMap::serialize() const {
    std::string out(header);
    out += '\n';
    for (const auto& [who, nick] : by_contact_) {
        out += nick;
        out += '\t';
        out += escape_field(who.first);
        out += '\t';
        out += escape_field(who.second);
        out += '\n';
    }
    return out;
}

NickMap NickMap::deserialize(std::string_view text, std::vector<std::string> reserved) {
    NickMap map(std::move(reserved));
    bool first = true;
    while (!text.empty()) {
        auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (first) {
            if (line != header) return map;  // another format: start afresh
            first = false;
            continue;
        }
        auto t1 = line.find('\t');
        if (t1 == std::string_view::npos) continue;
        auto t2 = line.find('\t', t1 + 1);
        if (t2 == std::string_view::npos || line.find('\t', t2 + 1) != std::string_view::npos) continue;
        std::string_view nick = line.substr(0, t1);
        auto account = unescape_field(line.substr(t1 + 1, t2 - t1 - 1));
        auto jid = unescape_field(line.substr(t2 + 1));
        if (!account || !jid || !valid_nick(nick)) continue;
        Contact who{std::move(*account), std::move(*jid)};
        std::string f = fold(nick);
        if (map.reserved_.count(f) || map.by_nick_.count(f) || map.by_contact_.count(who)) continue;
        map.assign(who, std::string(nick));
    }
    return map;
}

}  // namespace irc
