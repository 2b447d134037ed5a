#include "daemon/store_vfs.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <new>
#include <string>

namespace stanzad::store_detail {
namespace {

// The system VFS writes at most 0x1ffff bytes per call (os_unix.c, seekAndWrite masks the
// count with it), so what waits goes in pieces below that: 29 frames of a 4 KiB page each.
constexpr std::size_t kSendAt = 120 * 1024;

// A WAL file: SQLite sees `base`; the system VFS's own file object lives after this struct,
// in the same allocation (sqlite3_vfs::szOsFile covers both).
struct WalFile {
    sqlite3_file base;
    sqlite3_file* real = nullptr;
    std::string waiting;              // bytes written, not yet sent to the kernel
    sqlite3_int64 waiting_at = 0;     // their offset in the file
};
constexpr std::size_t kHead = (sizeof(WalFile) + 7) & ~std::size_t{7};

sqlite3_vfs* g_system = nullptr;
sqlite3_vfs g_vfs;

WalFile* wal(sqlite3_file* f) { return reinterpret_cast<WalFile*>(f); }
const sqlite3_io_methods& real_methods(WalFile* f) { return *f->real->pMethods; }

// Sends what waits as one write. On failure what waited is dropped: the write's error is
// the caller's (a sync, say), so SQLite fails the commit and keeps nothing of it.
int send(WalFile* f) {
    int rc = SQLITE_OK;
    for (std::size_t done = 0; done < f->waiting.size() && rc == SQLITE_OK; done += kSendAt) {
        const std::size_t n = std::min(kSendAt, f->waiting.size() - done);
        rc = real_methods(f).xWrite(f->real, f->waiting.data() + done, static_cast<int>(n),
                                    f->waiting_at + static_cast<sqlite3_int64>(done));
    }
    f->waiting.clear();
    return rc;
}

// A commit larger than kSendAt: its first kSendAt bytes go now, the rest waits on.
int send_first_piece(WalFile* f) {
    int rc = real_methods(f).xWrite(f->real, f->waiting.data(), static_cast<int>(kSendAt), f->waiting_at);
    if (rc != SQLITE_OK) {
        f->waiting.clear();
        return rc;
    }
    f->waiting.erase(0, kSendAt);
    f->waiting_at += static_cast<sqlite3_int64>(kSendAt);
    return SQLITE_OK;
}

int wal_close(sqlite3_file* file) {
    WalFile* f = wal(file);
    int sent = send(f);
    int rc = real_methods(f).xClose(f->real);
    f->~WalFile();
    return sent != SQLITE_OK ? sent : rc;
}

int wal_read(sqlite3_file* file, void* out, int amount, sqlite3_int64 offset) {
    WalFile* f = wal(file);
    if (int rc = send(f); rc != SQLITE_OK) return rc;
    return real_methods(f).xRead(f->real, out, amount, offset);
}

int wal_write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
    WalFile* f = wal(file);
    if (!f->waiting.empty() && offset != f->waiting_at + static_cast<sqlite3_int64>(f->waiting.size()))
        if (int rc = send(f); rc != SQLITE_OK) return rc;
    if (f->waiting.empty()) f->waiting_at = offset;
    f->waiting.append(static_cast<const char*>(data), static_cast<std::size_t>(amount));
    return f->waiting.size() >= kSendAt ? send_first_piece(f) : SQLITE_OK;
}

int wal_truncate(sqlite3_file* file, sqlite3_int64 size) {
    WalFile* f = wal(file);
    if (int rc = send(f); rc != SQLITE_OK) return rc;
    return real_methods(f).xTruncate(f->real, size);
}

int wal_sync(sqlite3_file* file, int flags) {
    WalFile* f = wal(file);
    if (int rc = send(f); rc != SQLITE_OK) return rc;
    return real_methods(f).xSync(f->real, flags);
}

int wal_file_size(sqlite3_file* file, sqlite3_int64* size) {
    WalFile* f = wal(file);
    if (int rc = send(f); rc != SQLITE_OK) return rc;
    return real_methods(f).xFileSize(f->real, size);
}

int wal_lock(sqlite3_file* file, int level) { return real_methods(wal(file)).xLock(wal(file)->real, level); }
int wal_unlock(sqlite3_file* file, int level) { return real_methods(wal(file)).xUnlock(wal(file)->real, level); }
int wal_check_reserved(sqlite3_file* file, int* out) {
    return real_methods(wal(file)).xCheckReservedLock(wal(file)->real, out);
}

int wal_file_control(sqlite3_file* file, int op, void* arg) {
    WalFile* f = wal(file);
    if (int rc = send(f); rc != SQLITE_OK) return rc;
    return real_methods(f).xFileControl(f->real, op, arg);
}

int wal_sector_size(sqlite3_file* file) { return real_methods(wal(file)).xSectorSize(wal(file)->real); }
int wal_device(sqlite3_file* file) { return real_methods(wal(file)).xDeviceCharacteristics(wal(file)->real); }

// Version 1: SQLite maps and shares memory through the database file, never through its WAL.
const sqlite3_io_methods kWalMethods = {
    1,
    wal_close,
    wal_read,
    wal_write,
    wal_truncate,
    wal_sync,
    wal_file_size,
    wal_lock,
    wal_unlock,
    wal_check_reserved,
    wal_file_control,
    wal_sector_size,
    wal_device,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

int open_file(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
    // Every other file is the system VFS's own object, at the start of SQLite's allocation.
    if (!(flags & SQLITE_OPEN_WAL)) return g_system->xOpen(g_system, name, file, flags, out_flags);
    auto* f = new (file) WalFile{};
    f->base.pMethods = nullptr;
    f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kHead);
    int rc = g_system->xOpen(g_system, name, f->real, flags, out_flags);
    // SQLite calls xClose when pMethods is set, also after a failed open (sqlite3_vfs docs).
    if (f->real->pMethods) {
        f->base.pMethods = &kWalMethods;
    } else {
        f->~WalFile();
    }
    return rc;
}

}  // namespace

const char* buffered_wal_vfs() {
    static std::once_flag once;
    static const char* name = nullptr;
    std::call_once(once, [] {
        g_system = sqlite3_vfs_find(nullptr);
        if (!g_system) return;
        g_vfs = *g_system;  // the same functions and pAppData, so they behave as the system's
        g_vfs.pNext = nullptr;
        g_vfs.zName = "stanzad-wal";
        g_vfs.szOsFile = static_cast<int>(kHead) + g_system->szOsFile;
        g_vfs.xOpen = open_file;
        if (sqlite3_vfs_register(&g_vfs, 0) == SQLITE_OK) name = g_vfs.zName;
    });
    return name;
}

}  // namespace stanzad::store_detail
