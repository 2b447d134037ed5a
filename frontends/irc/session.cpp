// irc::Session's core: lines in (labeled-response around each), the verbs allowed at any
// time (PING, PONG, QUIT, CAP), output, requests to the daemon and the small helpers. The
// other concerns have their own files (see session.hpp).
#include "frontends/irc/session.hpp"

#include <algorithm>
#include <map>

#include "frontends/irc/session_util.hpp"

namespace irc {
using namespace detail;

Session::Session(SessionOptions options, NickMap& nicks, std::string id_prefix)
    : options_(std::move(options)), nicks_(nicks), id_prefix_(std::move(id_prefix)) {}

// ---- input ------------------------------------------------------------------------------

void Session::receive(std::string_view bytes) {
    splitter_.feed(bytes);
    while (!closing_) {
        auto next = splitter_.next();
        if (!next) break;
        heard_ = true;
        if (!*next) {  // longer than any line may be (modern-irc ERR_INPUTTOOLONG)
            numeric("417", {"Input line was too long"});
            continue;
        }
        auto parsed = parse(next->value());
        if (!parsed) {
            // IRCv3 labeled-response: the error answers a labeled line too.
            labeled(raw_label(next->value()), [&] { unparsed(next->value(), parsed.error().code, parsed.error().message); });
            continue;
        }
        const Message& m = parsed.value();
        // IRCv3 labeled-response: what this command makes goes out with its label.
        std::optional<std::string> label;
        if (const std::string* l = m.tag("label"); l && has("labeled-response") && !l->empty()) label = *l;
        labeled(label, [&] { line(m); });
    }
}

std::optional<std::string> Session::raw_label(std::string_view raw) const {
    // The label tag of a line that did not parse, when its tag section can still be read.
    if (!has("labeled-response") || !raw.starts_with('@')) return std::nullopt;
    std::string_view section = raw.substr(1, raw.find(' ') == std::string_view::npos ? 0 : raw.find(' ') - 1);
    if (section.size() > max_tag_bytes) return std::nullopt;
    while (!section.empty()) {
        std::string_view tag = section.substr(0, section.find(';'));
        section = tag.size() < section.size() ? section.substr(tag.size() + 1) : std::string_view{};
        if (!tag.starts_with("label=")) continue;
        std::string value = unescape_tag_value(tag.substr(6));
        if (value.empty() || !valid_utf8(value)) return std::nullopt;
        return value;
    }
    return std::nullopt;
}

void Session::unparsed(std::string_view raw, const std::string& code, const std::string& message) {
    if (code == "empty") return;
    if (code == "tags-too-long" || code == "line-too-long") return numeric("417", {"Input line was too long"});
    if (code != "invalid-utf8") return numeric("421", {"*", "Unknown command (" + message + ")"});
    // IRCv3 utf8-only: FAIL names the command when it can be read.
    std::string_view rest = raw;
    if (rest.starts_with('@')) rest.remove_prefix(std::min(rest.size(), rest.find(' ') + 1));
    while (rest.starts_with(' ')) rest.remove_prefix(1);
    if (rest.starts_with(':')) rest.remove_prefix(std::min(rest.size(), rest.find(' ') + 1));
    while (rest.starts_with(' ')) rest.remove_prefix(1);
    std::string command = upper(rest.substr(0, rest.find(' ')));
    bool word = !command.empty() && command.size() <= 32 &&
                std::all_of(command.begin(), command.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
    fail(word ? command : "*", "INVALID_UTF8", {}, "Message rejected, your IRC software MUST use UTF-8 encoding on this network");
}

void Session::labeled(const std::optional<std::string>& label, const std::function<void()>& work) {
    auto saved_label = std::exchange(label_, label);
    auto saved_lines = std::exchange(labeled_, {});
    bool saved_deferred = std::exchange(label_deferred_, false);
    work();
    std::optional<std::string> done = std::exchange(label_, saved_label);
    auto lines = std::exchange(labeled_, std::move(saved_lines));
    bool deferred = std::exchange(label_deferred_, saved_deferred);
    // The response comes later (an answer from the daemon, an echo): it carries the label.
    if (!done || (deferred && lines.empty())) {
        for (auto& l : lines) send(std::move(l));
        return;
    }
    if (lines.empty()) {
        Message ack = make(options_.server, "ACK", {});
        ack.tags.emplace_back("label", *done);
        send(std::move(ack));
    } else if (lines.size() == 1) {
        lines[0].tags.insert(lines[0].tags.begin(), {"label", *done});
        send(std::move(lines[0]));
    } else {
        std::string id = "l" + std::to_string(next_batch_++);
        Message open = make(options_.server, "BATCH", {"+" + id, "labeled-response"});
        open.tags.emplace_back("label", *done);
        send(std::move(open));
        for (auto& l : lines) {
            l.tags.emplace_back("batch", id);
            send(std::move(l));
        }
        send(make(options_.server, "BATCH", {"-" + id}));
    }
}

void Session::line(const Message& m) {
    // What a client may send before and after registration; the rest depends on it.
    using Verb = void (Session::*)(const Message&);
    static const std::map<std::string, Verb, std::less<>> any_time = {
        {"PING", &Session::ping}, {"PONG", &Session::pong}, {"QUIT", &Session::quit}, {"CAP", &Session::cap}};
    if (auto it = any_time.find(m.command); it != any_time.end()) return (this->*it->second)(m);
    if (!registered_) return registration(m);
    command(m);
}

void Session::ping(const Message& m) {
    // modern-irc PING: the token is required (ERR_NEEDMOREPARAMS); an empty one is echoed.
    if (m.params.empty()) return numeric("461", {"PING", "Not enough parameters"});
    send(make(options_.server, "PONG", {options_.server, m.params[0]}));
}

void Session::pong(const Message& m) {
    ping_out_ = false;
    if (!replay_ping_.empty() && !m.params.empty() && m.params.back() == replay_ping_) {
        // The client has everything sent before this PING: its name's cursor moves.
        replay_ping_.clear();
        ask(model::Ack{replay_last_, false}, [](const model::Reply&) {});
        ping_acks();  // what came live during the replay
    }
    if (!m.params.empty() && m.params.back().starts_with("ack-")) {
        model::Seq seq = std::strtoll(m.params.back().c_str() + 4, nullptr, 10);
        if (seq == ack_pinged_) {
            ack_pinged_ = 0;
            // Not durable on its own: a commit (an fsync) per PONG tripled the fsyncs of an
            // incoming message through IRC in a burst (issue 15: 0.16 per message, 0.056
            // through JSON). Lost with a kill -9, it only means those lines are replayed
            // again (at least once, docs/irc.md).
            ask(model::Ack{seq, false}, [](const model::Reply&) {});
            ping_acks();  // more may have come meanwhile
        }
    }
}

void Session::quit(const Message& m) {
    send(make("", "ERROR", {"Closing link: " + (m.params.empty() ? std::string("quit") : m.params[0])}));
    closing_ = true;
}

bool Session::keepalive() {
    if (!registered_) return true;
    if (heard_) {
        heard_ = false;
        ping_out_ = false;
        return true;
    }
    if (ping_out_) return false;
    ping_out_ = true;
    send(make(options_.server, "PING", {options_.server}));
    return true;
}

// ---- output -----------------------------------------------------------------------------

void Session::send(Message m) {
    // Tags only for clients that asked (IRCv3 message-tags and the caps that add tags).
    std::erase_if(m.tags, [this](const auto& t) {
        const std::string& k = t.first;
        if (k == "time") return !has("server-time");
        if (k == "batch") return !has("batch");
        if (k == "label") return !has("labeled-response");
        return !has("message-tags");
    });
    if (label_) {
        labeled_.push_back(std::move(m));
        return;
    }
    // Message text always gets its ':' (clients that look for " :" find it).
    static const std::set<std::string, std::less<>> text_last = {"PRIVMSG", "NOTICE", "PART", "KICK", "TOPIC",
                                                                 "QUIT", "AWAY", "ERROR", "FAIL"};
    // RPL_MYINFO (004) ends with mode letters, not text: "<client> <servername> <version>
    // <available user modes> <available channel modes>" (modern-irc appendix).
    bool colon = text_last.count(m.command) > 0 ||
                 (m.command.size() == 3 && std::isdigit(static_cast<unsigned char>(m.command[0])) && m.command != "004");
    fit_line(m, colon && m.params.size() > 1);
    output_ += wire(m, colon && m.params.size() > 1);
}

void Session::fit_line(Message& m, bool colon_last) const {
    // modern-irc "Message Format": 512 bytes with CR LF, tags aside. Text from elsewhere (a
    // topic, a kick or part reason) that does not fit is cut between code points.
    std::size_t rough = m.source.size() + m.command.size() + 4 + m.params.size();
    for (const auto& p : m.params) rough += p.size();
    if (rough <= max_body_bytes || m.params.empty()) return;
    auto tags = std::exchange(m.tags, {});
    std::size_t size = serialize(m, colon_last).size();
    m.tags = std::move(tags);
    if (size <= max_body_bytes) return;
    std::string& last = m.params.back();
    std::size_t keep = size - max_body_bytes >= last.size() ? 0 : last.size() - (size - max_body_bytes);
    while (keep > 0 && (static_cast<unsigned char>(last[keep]) & 0xC0) == 0x80) --keep;
    last.resize(keep);
}

void Session::numeric(std::string_view code, std::vector<std::string> params) {
    Message m;
    m.source = options_.server;
    m.command = std::string(code);
    m.params.push_back(nick_.empty() ? "*" : nick_);
    for (auto& p : params) m.params.push_back(std::move(p));
    send(std::move(m));
}

void Session::fail(std::string_view command, std::string_view code, std::vector<std::string> context, std::string text) {
    // IRCv3 standard-replies.
    Message m;
    m.source = options_.server;
    m.command = "FAIL";
    m.params = {std::string(command), std::string(code)};
    for (auto& c : context) m.params.push_back(std::move(c));
    m.params.push_back(std::move(text));
    send(std::move(m));
}

void Session::notice_control(const std::string& text) {
    if (!registered_) return;
    for (const auto& piece : split_text(text, text_bytes))
        send(make(std::string(service_nick) + "!stanzad@stanzad", "NOTICE", {std::string(control_channel), piece}));
}

void Session::reply_service(const std::string& reply_to, const std::string& text) {
    std::string to = reply_to == control_channel ? std::string(control_channel) : nick_;
    for (const auto& piece : split_text(text, text_bytes))
        send(make(std::string(service_nick) + "!stanzad@stanzad", "PRIVMSG", {to, piece}));
}


// ---- helpers ----------------------------------------------------------------------------

void Session::ask(model::Command command, Handler handler, bool response) {
    std::uint64_t id = next_id_++;
    if (response && label_) {
        // This answer is the command's response: it goes out labeled, when it comes.
        label_deferred_ = true;
        handler = [this, label = *label_, inner = std::move(handler)](const model::Reply& r) {
            labeled(label, [&] { inner(r); });
        };
    }
    handlers_[id] = std::move(handler);
    requests_.push_back({id, std::move(command), "irc-" + client_name_});
}

std::optional<Session::Request> Session::next_request() {
    if (requests_.empty()) return std::nullopt;
    Request r = std::move(requests_.front());
    requests_.pop_front();
    return r;
}

void Session::reply(std::uint64_t id, const model::Reply& reply) {
    auto it = handlers_.find(id);
    if (it == handlers_.end()) return;
    Handler h = std::move(it->second);
    handlers_.erase(it);
    h(reply);
}

std::string Session::take_output() { return std::exchange(output_, {}); }

std::string Session::contact_nick(const std::string& account, const std::string& jid) {
    // Contacts keep their nick for good; so do strangers who write, up to a bound (a
    // spammer writing from endless JIDs must not grow the stored map without end).
    if (auto known = nicks_.find_nick(account, jid)) return *known;
    if (nicks_.size() >= max_nicks && !contacts_.count({account, jid})) return sanitize_nick(nick_base(jid)) + "_";
    return nicks_.nick_for(account, jid);
}

std::string Session::hostmask(const std::string& nick, const std::string& jid) const {
    return nick + "!" + sanitize_nick(local_part(jid)) + "@" + domain_part(jid);
}

std::string Session::occupant_irc_nick(const Channel& c, const std::string& room_nick) const {
    if (room_nick == c.our_nick) return nick_;
    return not_ours(sanitize_nick(room_nick));
}

std::string Session::not_ours(std::string nick) const {
    // A nick made from remote text (a room nick, an inviter's JID) never looks like us, the
    // service or the server: it gets a '_'.
    if (fold(nick) == fold(nick_) || fold(nick) == fold(service_nick) || fold(nick) == fold(options_.server)) nick += "_";
    return nick;
}

Session::Channel* Session::channel(std::string_view name) {
    auto it = channels_.find(fold(name));
    return it == channels_.end() ? nullptr : &it->second;
}

Session::Contact* Session::contact_by_nick(std::string_view nick) {
    auto who = nicks_.lookup(nick);
    if (!who) return nullptr;
    auto it = contacts_.find(*who);
    return it == contacts_.end() ? nullptr : &it->second;
}

std::string Session::prefix_of(const model::OccupantInfo& o) const {
    // XEP-0045 affiliations and roles as IRC prefixes (PREFIX=(qaov)~&@+), multi-prefix when asked.
    std::string all;
    if (o.affiliation == "owner") all += '~';
    if (o.affiliation == "admin") all += '&';
    if (o.role == "moderator") all += '@';
    if (o.role == "participant" && o.affiliation == "member") all += '+';
    if (all.empty()) return "";
    return has("multi-prefix") ? all : all.substr(0, 1);
}

std::string Session::away_text(const Contact& c) const {
    // The most available resource decides (RFC 6121 §4.7.2.2 show values).
    bool any_available = false;
    std::string away;
    for (const auto& [full, p] : c.resources) {
        if (p.show.empty() || p.show == "chat") any_available = true;
        else if (away.empty()) away = p.show + (p.status.empty() ? "" : ": " + p.status);
    }
    return any_available ? "" : away;
}

std::string Session::default_account() const { return accounts_.empty() ? "" : accounts_.front().account; }

std::string Session::name_prefix() const { return "irc-" + client_name_ + "-"; }

// Our message ids say which client name sent them, so a replay to that name skips them.
std::string Session::next_client_id() { return name_prefix() + id_prefix_ + "-" + std::to_string(next_client_id_++); }

}  // namespace irc
