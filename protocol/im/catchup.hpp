#pragma once
// The IM core: catching up with an archive after a gap (XEP-0313, paged with XEP-0059), the
// same way for our own archive and for a room's. Sans-I/O: the owner sends the page queries
// this asks for, says how each archived message went, feeds the <fin/> (or the failure), and
// keeps the position it is told to keep.
//
// The gap rule: while a catch-up is open, what arrives live is newer than what the catch-up
// still has to bring, so live messages do not move the kept position (gap_open()); the gap
// closes when a page says it is complete, or when the archive turns out not to exist.
#include <optional>
#include <string>
#include <string_view>

namespace xmpp::im {

class CatchUp {
public:
    enum class Archive {
        Own,   // the account's: without a position, from when the account was first seen
        Room,  // a room's: without a position, only the newest page (what we missed lately)
    };
    struct Page {
        std::string after;   // XEP-0059 <after/>: the position ("" for none)
        bool newest = false; // Room without a position: <before/> empty, the last page
        bool since = false;  // Own without a position: the owner adds its start time
        int max = 0;         // results per page
    };
    struct Fin {
        std::optional<Page> next;  // the next page to ask for; nullopt: done
        std::string keep;          // the position to keep now ("" : keep the old one)
    };

    explicit CatchUp(Archive archive) : archive_(archive) {}

    // There is a gap (we joined a room: what was said while we were not there), whether or
    // not a catch-up can start now.
    void open_gap() { open_ = true; }
    // Opens the gap (if closed) and gives the first page after `position`, the last archive
    // id kept ("" for none). Counts start again unless a catch-up was already running.
    Page begin(const std::string& position);
    // One archived message of the current page was handled; `fresh`: new to us.
    void counted(bool fresh);
    // The current page ended with <fin complete=... ><last>...</last></fin>.
    Fin fin(bool complete, const std::string& last);
    // The query failed: `condition` is the server's error condition, "" for a result without
    // a <fin/> or our own failure (timeout, disconnected). The gap stays open (the next login
    // or rejoin tries again) unless the answer shows there is no archive to catch up with.
    void failed(std::string_view condition, bool answered);

    bool gap_open() const { return open_; }
    bool running() const { return running_; }
    int count() const { return count_; }  // archived messages looked at in this catch-up
    int fresh() const { return fresh_; }  // of which new to us

    static constexpr int own_page = 100;
    static constexpr int room_page = 50;

private:
    Archive archive_;
    bool open_ = false;     // a gap exists: what we have ends before what the archive has
    bool running_ = false;  // a page query is out
    bool paging_ = false;   // the current page was asked for after a position
    int count_ = 0, fresh_ = 0;
};

}  // namespace xmpp::im
