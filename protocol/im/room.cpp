#include "protocol/im/room.hpp"

#include <utility>

namespace xmpp::im {
namespace {

model::OccupantInfo occupant_of(const MucPresence& p) { return {p.nick, p.jid, p.role, p.affiliation, p.show, p.status}; }

}  // namespace

const char* Room::name(Phase phase) {
    switch (phase) {
    case Phase::Joining: return "joining";
    case Phase::Joined: return "joined";
    case Phase::Error: return "error";
    }
    return "error";
}

model::RoomInfo Room::info() const {
    model::RoomInfo info{jid, name(phase_), nick, reason, subject, created, {}};
    for (const auto& [n, o] : occupants_) info.occupants.push_back(o);
    return info;
}

model::RoomState Room::begin_join(TimePoint now) {
    if (phase_ == Phase::Joined) {
        previous_ = occupants_;  // what we saw, to compare with after the rejoin
        was_joined_ = true;
    }
    occupants_.clear();
    phase_ = Phase::Joining;
    reason.clear();
    asked = now;
    ping_out_ = false;
    return model::RoomState{jid, "joining", nick, "", ""};
}

Room::Outcome Room::presence(const MucPresence& p, TimePoint now) {
    Outcome out;
    if (p.type == "error") {
        // §7.2.6-§7.2.9: the room refused us (or, joined, our nick change).
        if (phase_ == Phase::Joined || remembered) {
            out.answer = Outcome::Answer::Refused;
            out.error = p.error;
        }
        if (phase_ == Phase::Joined) return out;
        if (!remembered) {
            out.gone = model::RoomState{jid, "error", nick, p.error, ""};
            return out;
        }
        phase_ = Phase::Error;
        reason = p.error;
        out.events.push_back(model::RoomState{jid, "error", nick, p.error, ""});
        return out;
    }
    if (!p.self()) {
        someone_else(p, out);
        return out;
    }
    namespace st = muc_status;
    if (p.type != "unavailable") {
        if (phase_ != Phase::Joined) {
            joined(p, now, out);
        } else {  // §7.6: our nick change is done
            nick = p.nick;
            created = false;
            occupants_[p.nick] = occupant_of(p);
            out.answer = Outcome::Answer::Joined;
        }
        return out;
    }
    if (p.codes.count(st::new_nick)) {  // §7.6: our nick changes; the new presence follows
        nick = p.new_nick;
        occupants_.erase(p.nick);
        out.remember = true;
        out.events.push_back(model::RoomState{jid, "joined", nick, "", ""});
        return out;
    }
    if (p.codes.count(st::removed_shutdown) && remembered) {
        // §9.8 (332): the chat service is going down, not our choice: we join again when it
        // is back (tried every self-ping interval). Front ends keep the occupants they were
        // told of: the rejoin tells what changed meanwhile.
        if (phase_ == Phase::Joined) {
            previous_ = occupants_;
            was_joined_ = true;
        }
        phase_ = Phase::Error;
        reason = "the chat service shut down";
        retry_ = true;
        pinged_ = now;
        out.events.push_back(model::RoomState{jid, "error", nick, reason, ""});
        return out;
    }
    std::string state = p.codes.count(st::kicked)   ? "kicked"
                        : p.codes.count(st::banned) ? "banned"
                        : p.destroyed               ? "destroyed"
                        : p.codes.count(st::removed_affiliation) || p.codes.count(st::removed_members_only) ||
                                p.codes.count(st::removed_shutdown)
                            ? "removed"
                            : "left";
    out.gone = model::RoomState{jid, state, nick, p.reason, p.actor};
    return out;
}

void Room::joined(const MucPresence& self, TimePoint now, Outcome& out) {
    retry_ = false;
    nick = self.nick;  // §7.2.10: the room may have changed it
    phase_ = Phase::Joined;
    created = self.codes.count(muc_status::created) > 0;
    occupants_[self.nick] = occupant_of(self);
    pinged_ = now;
    if (was_joined_) {
        // After a rejoin: who came and went while we were away, and who changed.
        for (const auto& [n, o] : occupants_) {
            if (n == nick) continue;
            auto before = previous_.find(n);
            if (before == previous_.end()) out.events.push_back(model::Occupant{jid, o, model::OccupantChange::Join, "", "", ""});
            else if (!(before->second == o)) out.events.push_back(model::Occupant{jid, o, model::OccupantChange::Update, "", "", ""});
        }
        for (const auto& [n, o] : previous_)
            if (n != nick && !occupants_.count(n)) out.events.push_back(model::Occupant{jid, o, model::OccupantChange::Leave, "", "", ""});
    }
    previous_.clear();
    catch_up.open_gap();  // until the room's archive has brought what we missed
    if (!remembered) {
        remembered = true;
        out.remember = true;
    }
    out.events.push_back(model::RoomState{jid, "joined", nick, "", ""});
    out.answer = Outcome::Answer::Joined;
    out.joined = true;
}

void Room::someone_else(const MucPresence& p, Outcome& out) {
    namespace st = muc_status;
    auto o = occupant_of(p);
    if (phase_ != Phase::Joined) {
        // While joining, the room lists who is there (§7.2.3): collected quietly.
        if (p.type != "unavailable") occupants_[p.nick] = o;
        return;
    }
    if (p.type == "unavailable") {
        occupants_.erase(p.nick);
        if (p.codes.count(st::new_nick)) {
            out.events.push_back(model::Occupant{jid, o, model::OccupantChange::Nick, p.new_nick, "", ""});
            // The occupant's presence under the new nick follows; it must not look like a join.
            model::OccupantInfo renamed = o;
            renamed.nick = p.new_nick;
            occupants_[p.new_nick] = renamed;
        } else {
            auto change = p.codes.count(st::kicked)   ? model::OccupantChange::Kick
                          : p.codes.count(st::banned) ? model::OccupantChange::Ban
                                                      : model::OccupantChange::Leave;
            out.events.push_back(model::Occupant{jid, o, change, "", p.actor, p.reason});
        }
        return;
    }
    auto it = occupants_.find(p.nick);
    if (it == occupants_.end()) {
        occupants_[p.nick] = o;
        out.events.push_back(model::Occupant{jid, o, model::OccupantChange::Join, "", "", ""});
    } else if (!(it->second == o)) {
        it->second = o;
        out.events.push_back(model::Occupant{jid, o, model::OccupantChange::Update, "", "", ""});
    }
}

std::optional<model::Subject> Room::subject_changed(const std::string& text, const std::string& by) {
    if (has_subject_ && subject == text) return std::nullopt;
    subject = text;
    subject_nick = by;
    has_subject_ = true;
    return model::Subject{jid, text, by};
}

Room::Due Room::tick(TimePoint now, std::chrono::seconds interval) {
    if (phase_ == Phase::Error && retry_ && now - pinged_ >= interval) {
        pinged_ = now;
        return Due::Rejoin;
    }
    // XEP-0410 §3: are we still in the room? (A server restart or a netsplit may have removed
    // us without telling.)
    if (phase_ != Phase::Joined || ping_out_ || now - pinged_ < interval) return Due::Nothing;
    ping_out_ = true;
    pinged_ = now;
    return Due::SelfPing;
}

bool Room::self_ping_answered(bool not_joined, TimePoint now) {
    ping_out_ = false;
    pinged_ = now;
    return not_joined;
}

}  // namespace xmpp::im
