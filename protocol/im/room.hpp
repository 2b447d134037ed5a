#pragma once
// The IM core: one multi-user chat room (XEP-0045) as the account sees it: whether we are in
// it, who is there, its subject, and what front ends must be told when that changes, after a
// rejoin only the differences. Also when to ask whether we are still in (XEP-0410 self-ping)
// and when to try again after the chat service shut down (§9.8, status 332).
// Sans-I/O: room presences, subjects, self-ping answers and the time go in; model events and
// what the owner must do come out. The owner sends the stanzas (make_muc_join, ...), answers
// the join requests waiting, keeps the archive position and the list of rooms to rejoin.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "frontends/model/model.hpp"
#include "protocol/im/catchup.hpp"
#include "protocol/muc.hpp"

namespace xmpp::im {

class Room {
public:
    using TimePoint = std::chrono::steady_clock::time_point;
    enum class Phase { Joining, Joined, Error };

    Room(std::string jid, std::string nick) : jid(std::move(jid)), nick(std::move(nick)) {}

    // What one presence from the room did.
    struct Outcome {
        enum class Answer {
            None,     // the join or nick-change requests waiting stay waiting
            Joined,   // answer them with info()
            Refused,  // answer them with `error`
        };
        std::vector<model::EventBody> events;  // to publish, in this order
        Answer answer = Answer::None;
        std::string error;
        bool joined = false;    // we are in now and were not: catch up with the room's archive
        bool remember = false;  // the rooms to rejoin changed (added, or our nick): save them
        // We are out for good (left, kicked, banned, removed, destroyed, or refused a room
        // we were not keeping): the owner forgets the room, telling the waiting requests,
        // and publishes this.
        std::optional<model::RoomState> gone;
    };
    Outcome presence(const MucPresence& p, TimePoint now);

    // §8.1, §7.2.15: the subject; an event only when it is new or changed.
    std::optional<model::Subject> subject_changed(const std::string& text, const std::string& by);

    // A join (or a rejoin) goes out now. The occupants seen before are kept aside, so that
    // after the rejoin only who came, went or changed is told.
    model::RoomState begin_join(TimePoint now);

    // What the time asks for, with the account online: nothing, a join again (after the
    // service shut down), or a self-ping (XEP-0410 §3) every `interval` while joined.
    enum class Due { Nothing, Rejoin, SelfPing };
    Due tick(TimePoint now, std::chrono::seconds interval);
    // The self-ping's answer: `not_joined` when the room says we are not in (§3.3). True
    // when we must join again.
    bool self_ping_answered(bool not_joined, TimePoint now);

    Phase phase() const { return phase_; }
    static const char* name(Phase phase);  // joining | joined | error
    model::RoomInfo info() const;
    std::size_t occupant_count() const { return occupants_.size(); }

    std::string jid;
    std::string nick;            // ours
    std::string password;
    std::string reason;          // Error: why
    std::string subject, subject_nick;
    bool created = false;        // we created it (status 201)
    bool remembered = false;     // joined again after every new session
    TimePoint asked{};           // the last join or nick change we asked for
    // The room's archive (XEP-0313 at the room): the gap after a (re)join.
    CatchUp catch_up{CatchUp::Archive::Room};

private:
    void joined(const MucPresence& self, TimePoint now, Outcome& out);
    void someone_else(const MucPresence& p, Outcome& out);

    Phase phase_ = Phase::Joining;
    std::map<std::string, model::OccupantInfo> occupants_, previous_;  // by nick
    bool was_joined_ = false;  // we were in before this join: only differences are events
    bool has_subject_ = false;
    bool retry_ = false;       // join again every self-ping interval (the service went down)
    bool ping_out_ = false;
    TimePoint pinged_{};
};

}  // namespace xmpp::im
