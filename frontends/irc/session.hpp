#pragma once
// One IRC client's session with stanzad, sans-I/O: IRC lines in, IRC lines out; model
// commands out to the daemon (numbered, answered through reply()); model events in.
//
// What the client sees (docs/irc.md): the control channel &stanzad with the service nick
// "stanzad" and every roster contact (voiced while online, away-notify for away ones);
// contacts as nicks (NickMap: stable across sessions); rooms as channels named after the
// room JID (#room@conference.example.org); IRCv3 caps (server-time, message-tags,
// echo-message, batch, labeled-response, away-notify, multi-prefix, userhost-in-names,
// sasl, cap-notify, draft/chathistory, draft/read-marker, extended-monitor, setname) and
// MONITOR over the contacts' presence. Replay follows soju: a client names itself as
// user@client (USER or SASL identity); with draft/chathistory it gets no automatic replay,
// otherwise it gets the messages its name has not confirmed, in chathistory batches, and
// its cursor moves when it answers the PING sent after them.
//
// Specs: ../shared/specs/modern-irc/ (messages-*.md), ../shared/specs/ircv3/.
// Files by concern: session.cpp (input, output, requests), registration.cpp, commands.cpp,
// control.cpp (&stanzad), history.cpp (CHATHISTORY, MARKREAD, replay), render.cpp
// (events), queries.cpp, monitor.cpp.
// Loop thread only. Memory: the splitter's one partial line, the state of the accounts
// (rosters, rooms), at most max_monitor monitored nicks and, during a replay, at most
// max_replay messages.
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "frontends/irc/message.hpp"
#include "frontends/irc/nicks.hpp"
#include "frontends/model/model.hpp"

namespace irc {

// The message tags of an encrypted message (clients with message-tags): its encryption
// ("omemo") and, when not blind or trusted, the trust of the sending device.
inline constexpr std::string_view encryption_tag = "+stanzad/encryption";
inline constexpr std::string_view trust_tag = "+stanzad/trust";
inline constexpr std::string_view default_encrypted_prefix = "[OMEMO] ";

struct SessionOptions {
    std::string password;           // PASS or SASL PLAIN; "" lets anyone on the socket in
    std::string version = "0";
    std::string server = "stanzad";  // our server name ([irc] server_name): source of numerics
    std::function<std::int64_t()> clock;  // Unix time, seconds (TIME); unset: 0
    std::function<bool()> may_register;    // false: no room for one more client ([irc] max_clients)
    // [irc] encrypted_prefix: put before the text of every message that came OMEMO-encrypted
    // (XEP-0384); "" marks them only with the tag below.
    std::string encrypted_prefix = std::string(default_encrypted_prefix);
};

class Session {
public:
    static constexpr std::size_t max_replay = 5000;       // messages replayed at most
    // Bytes of message bodies replayed at most (each message counts 256 more for its
    // prefix and tags), so that what the replay writes at once stays well under the
    // listener's backlog limit: a replay must never get its own client dropped.
    static constexpr std::size_t max_replay_bytes = 4 << 20;
    static constexpr int chathistory_limit = 500;          // ISUPPORT CHATHISTORY=
    static constexpr std::size_t max_nicks = 10000;        // stored nicks (strangers beyond get none)
    static constexpr std::size_t max_monitor = 100;        // ISUPPORT MONITOR=: nicks one client monitors
    static constexpr int max_auth_failures = 3;            // failed logins before the connection is closed

    Session(SessionOptions options, NickMap& nicks, std::string id_prefix);

    void receive(std::string_view bytes);
    std::string take_output();
    // After QUIT or a fatal error: write what is left, then close.
    bool closing() const { return closing_; }

    struct Request {
        std::uint64_t id;
        model::Command command;
        std::string client;  // the client name the command is on behalf of (hello, ack)
    };
    std::optional<Request> next_request();
    void reply(std::uint64_t id, const model::Reply& reply);

    // Live events; message events are skipped while a replay runs (the replay brings them).
    void event(const model::Event& event);
    // Once registered and set up: replay stored events after this seq (nullopt: none).
    std::optional<model::Seq> replay_after() const { return ready_ ? replay_after_ : std::nullopt; }
    void replay_event(const model::Event& event);
    void replay_end();
    // Called by the owner every keepalive period: PING when idle; false when the previous
    // PING went unanswered (the client is gone).
    bool keepalive();
    bool registered() const { return registered_; }
    // Failed logins so far (PASS or SASL): the owner answers each after a delay.
    int auth_failures() const { return auth_failures_; }
    const std::string& nick() const { return nick_; }

private:
    struct Contact {
        std::string account, jid;     // bare
        model::RosterItem item;
        std::map<std::string, model::Presence> resources;  // available ones, by full JID
    };
    struct Channel {                  // a room we are in
        std::string account, room;    // room: bare JID
        std::string our_nick;         // our nick in the room
        std::string topic, topic_nick;
        std::map<std::string, model::OccupantInfo> occupants;  // by room nick
    };
    using Handler = std::function<void(const model::Reply&)>;

    // session.cpp: lines in, the verbs allowed at any time, output, requests, helpers.
    std::optional<std::string> raw_label(std::string_view raw) const;
    void unparsed(std::string_view raw, const std::string& code, const std::string& message);
    void line(const Message& m);
    void ping(const Message& m);
    void pong(const Message& m);
    void quit(const Message& m);

    // registration.cpp (modern-irc "Connection Registration", IRCv3 CAP and SASL).
    void registration(const Message& m);
    void pass(const Message& m);
    void nick_at_registration(const Message& m);
    void user(const Message& m);
    void cap(const Message& m);
    void authenticate(const Message& m);
    void try_finish_registration();
    void welcome();
    void setup(const model::Reply& hello);
    void setup_done();

    // commands.cpp: the commands of a registered client, by name.
    void command(const Message& m);
    void privmsg(const Message& m);  // PRIVMSG and NOTICE
    std::optional<model::Send> send_to(const std::string& target);  // nullopt: no such target
    void message_to_self(const std::string& text, const std::string& command);
    void send_message(model::Send s, const std::string& shown, const std::string& command);
    void join(const Message& m);
    void joined(const model::Reply& r, const std::string& target, const std::string& room, const std::string& account);
    void part(const Message& m);
    void topic(const Message& m);
    void names(const std::string& channel);
    std::string name_entry(const std::string& nick, const std::string& user_host) const;
    void who(const Message& m);
    void whois(const Message& m);
    void mode(const Message& m);
    void kick(const Message& m);
    void invite(const Message& m);
    void away(const Message& m);
    void tagmsg(const Message& m);
    void nick_change(const Message& m);
    void ison(const Message& m);
    void userhost(const Message& m);

    // control.cpp: the control channel &stanzad (and /msg stanzad), a table of commands.
    struct ControlCall;     // one command being run
    struct ControlCommand;  // name, arguments, one line of help, handler
    static const std::vector<ControlCommand>& control_commands();
    void control(const std::string& text, const std::string& reply_to);

    // history.cpp: CHATHISTORY, MARKREAD, the replay on attach and the cursor's PINGs.
    struct HistoryPoint {  // a reference made a seq (from a msgid) or a stamp
        std::optional<model::Seq> seq;
        std::string stamp;
    };
    struct HistoryQuery {  // one CHATHISTORY request, its target known
        std::string sub, target, account, peer;
        int limit = 0;
    };
    void chathistory(const Message& m);
    void chathistory_targets(const Message& m);
    void history_resolve(const HistoryQuery& q, const std::string& msgid, const std::string& stamp,
                         std::function<void(HistoryPoint)> then);
    void history_run(const HistoryQuery& q, const HistoryPoint& a, const HistoryPoint& b);
    static model::StoredMessages history_request(const HistoryQuery& q, const HistoryPoint& a, const HistoryPoint& b);
    void history_batch(const std::string& target, const std::vector<model::Event>& events, char kind);
    void markread(const Message& m);
    void ping_acks();

    // queries.cpp: commands answered from what the session knows.
    void time_query();
    void help(const Message& m);
    void list(const Message& m);
    // monitor.cpp: MONITOR over presence, SETNAME.
    void monitor(const Message& m);
    void monitor_add(const std::vector<std::string>& targets);
    void monitor_report(const std::vector<std::string>& nicks);
    void monitor_changed(const std::string& nick, const Contact& c);
    void numeric_lists(std::string_view code, const std::vector<std::string>& items);
    void setname(const Message& m);

    // Output (session.cpp).
    void send(Message m);
    void fit_line(Message& m, bool colon_last) const;
    void numeric(std::string_view code, std::vector<std::string> params);
    void fail(std::string_view command, std::string_view code, std::vector<std::string> context, std::string text);
    void notice_control(const std::string& text);
    void reply_service(const std::string& reply_to, const std::string& text);

    // render.cpp: events as IRC lines.
    struct Renderer;  // one overload per event type
    void show_channel(Channel& channel, bool with_join);
    void show_control_channel();
    // A room we are in becomes a channel (keyed by `room`), shown when `show` and new.
    void open_channel(const std::string& account, const std::string& room, const model::RoomInfo& info, bool show);
    void render_message(const model::Event& event, const std::string& batch, bool replay);
    void render_event(const model::Event& event);
    void render_presence(const std::string& account, const model::Presence& presence);

    // Helpers (session.cpp).
    // `response`: the answer is the command's response (labeled-response carries its label).
    void ask(model::Command command, Handler handler, bool response = false);
    // Runs `work` with `label` as the label of what it sends (IRCv3 labeled-response).
    void labeled(const std::optional<std::string>& label, const std::function<void()>& work);
    std::string name_prefix() const;
    std::string contact_nick(const std::string& account, const std::string& jid);
    std::string hostmask(const std::string& nick, const std::string& jid) const;
    std::string own_mask() const { return nick_ + "!" + user_ + "@stanzad"; }
    std::string occupant_irc_nick(const Channel& c, const std::string& room_nick) const;
    std::string not_ours(std::string nick) const;
    Channel* channel(std::string_view name);
    Contact* contact_by_nick(std::string_view nick);
    std::string channel_name(const std::string& room) const { return "#" + room; }
    std::string prefix_of(const model::OccupantInfo& o) const;
    bool online(const Contact& c) const { return !c.resources.empty(); }
    std::string away_text(const Contact& c) const;
    std::string default_account() const;
    std::string target_of(const model::Event& event, const model::Message& m);
    std::string next_client_id();
    bool has(std::string_view cap) const { return caps_.count(std::string(cap)) > 0; }

    SessionOptions options_;
    NickMap& nicks_;
    std::string id_prefix_;
    LineSplitter splitter_;
    std::string output_;
    bool closing_ = false;

    // Registration (modern-irc "Connection Registration").
    bool registered_ = false, cap_negotiating_ = false, password_ok_ = false, sasl_in_progress_ = false;
    std::string nick_, user_, realname_, pass_;
    std::string client_name_ = "irc";
    std::set<std::string> caps_;
    std::string sasl_buffer_;
    int auth_failures_ = 0;

    // The world as this client sees it.
    bool ready_ = false;
    int setup_pending_ = 0;
    std::vector<model::AccountInfo> accounts_;
    std::map<std::pair<std::string, std::string>, Contact> contacts_;  // (account, bare JID)
    std::map<std::string, Channel> channels_;                          // by fold(name)
    std::map<std::string, std::string> monitor_;  // MONITOR list: fold(nick) -> the nick as given

    // Requests to the daemon.
    std::deque<Request> requests_;
    std::map<std::uint64_t, Handler> handlers_;
    std::uint64_t next_id_ = 1;
    unsigned long next_client_id_ = 1;
    std::map<std::string, std::string> echo_labels_;  // our client_id -> the label to echo with
    std::set<std::string> own_sends_;                 // client_ids this client sent

    // Labeled responses (IRCv3 labeled-response): lines produced while handling one
    // labeled command.
    std::optional<std::string> label_;
    std::vector<Message> labeled_;
    bool label_deferred_ = false;  // an answer to come will carry the label

    // Replay.
    std::optional<model::Seq> replay_after_;
    bool replaying_ = false;
    std::map<std::string, std::vector<model::Event>> replay_;  // by IRC target
    std::size_t replay_count_ = 0, replay_dropped_ = 0, replay_bytes_ = 0;
    model::Seq replay_last_ = 0;
    std::string replay_ping_;   // the PING token whose PONG confirms the replay
    model::Seq last_live_ = 0, acked_live_ = 0, ack_pinged_ = 0;  // live messages and their confirmation
    unsigned long next_batch_ = 1;

    // Keepalive.
    bool ping_out_ = false;
    bool heard_ = true;         // something came from the client since the last keepalive
};

}  // namespace irc
