#pragma once
// The store's SQLite VFS: the system's own ("unix"), except that a WAL file gathers the
// frames one commit appends into one write (issue 15, docs/performance.md).
//
// SQLite writes each WAL frame as two pwrite64 calls (its 24-byte header, then the page), so
// a commit that changed 20 pages made 40 syscalls before its fsync; on this project's
// virtual machines a syscall costs about 2 us. Here writes to a WAL file that continue the
// previous one are kept in memory and go to the kernel as one pwrite64 before anything
// else touches the file: before a sync (so a commit is on disk exactly when SQLite says it
// is), a read, a size, a truncate, a file control and a close, and when 120 KiB wait.
// A write that does not continue the previous one (SQLite rewriting a frame of the same
// transaction, or starting the WAL over) first sends what waits. Other files (the database,
// its -shm index) are the system VFS's, unchanged.
//
// This keeps SQLite's guarantees because the store commits with synchronous = FULL: every
// commit syncs the WAL before it updates the WAL index that makes its frames visible, so no
// reader (of this or another connection) is ever pointed at a frame still in memory; frames
// written without a commit (a transaction larger than the page cache) are read back only by
// this connection, through xRead, which sends what waits first.
namespace stanzad::store_detail {

// Registers the VFS with SQLite once (not as the default) and returns its name, for
// sqlite3_open_v2. nullptr when SQLite has no default VFS to build on.
const char* buffered_wal_vfs();

}  // namespace stanzad::store_detail
