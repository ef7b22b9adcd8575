/*
 * runtime/store/store_walbuf.c — the VFS that appends a commit's WAL
 * frames in one write (why and what it guarantees: store_walbuf.h).
 *
 * A file that is not a WAL is opened by the wrapped VFS in place, with its
 * own methods, so it costs nothing. A WAL file is a walbuf_file with the
 * wrapped VFS's file right behind it in the same allocation.
 *
 * The frame pattern (sqlite.org/fileformat2.html#walformat, and SQLite's
 * wal.c): each frame is written as its 24-byte header, whose bytes 4..7
 * hold the database size after the commit for the frame that commits and
 * zero otherwise, followed at the next offset by its page. Only that
 * pattern is gathered.
 */
#include "store_walbuf.h"

#include <assert.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    FRAME_HEADER_BYTES = 24,
    /* Past this, gathered frames are written at the next frame boundary:
     * a huge transaction needs no huge buffer. */
    GATHER_LIMIT = 1 << 20,
    /* The unix VFS writes at most 128 KiB - 1 per call (it masks the
     * length, and a longer call fails as if the disk were full). */
    WRITE_LIMIT = 0x1ffff,
};

typedef struct walbuf_file {
    sqlite3_file base;     /* pMethods is wal_methods */
    sqlite3_file *real;    /* the wrapped VFS's file, right behind us */
    unsigned char *buf;    /* gathered bytes, for the file from `start` on */
    size_t len, cap;
    sqlite3_int64 start;
    bool page_due;         /* a frame header was gathered; its page is next */
    bool commit_due;       /* ...and that frame commits */
} walbuf_file;

static sqlite3_vfs walbuf_vfs;
static sqlite3_vfs *wrapped;

static size_t round8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Write what is gathered, in as few calls of the wrapped VFS as it takes
 * (it loops on short writes and maps errno to SQLITE_FULL or
 * SQLITE_IOERR_WRITE). What is gathered is dropped even on failure: the
 * transaction that wrote it fails with that error. */
static int flush(walbuf_file *f)
{
    f->page_due = f->commit_due = false;
    int rc = SQLITE_OK;
    for (size_t done = 0; done < f->len && rc == SQLITE_OK;) {
        size_t n = f->len - done < WRITE_LIMIT ? f->len - done : WRITE_LIMIT;
        rc = f->real->pMethods->xWrite(f->real, f->buf + done, (int)n,
                                       f->start + (sqlite3_int64)done);
        done += n;
    }
    f->len = 0;
    return rc;
}

static int gather(walbuf_file *f, const void *data, int amount, sqlite3_int64 offset)
{
    assert(f->len == 0 || offset == f->start + (sqlite3_int64)f->len);
    size_t need = f->len + (size_t)amount;
    if (need > f->cap) {
        size_t cap = f->cap ? f->cap : 64 * 1024;
        while (cap < need)
            cap *= 2;
        unsigned char *grown = realloc(f->buf, cap);
        if (!grown)
            return SQLITE_NOMEM;
        f->buf = grown;
        f->cap = cap;
    }
    if (f->len == 0)
        f->start = offset;
    memcpy(f->buf + f->len, data, (size_t)amount);
    f->len = need;
    return SQLITE_OK;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int wal_write(sqlite3_file *file, const void *data, int amount, sqlite3_int64 offset)
{
    walbuf_file *f = (walbuf_file *)file;
    bool follows = f->len > 0 && offset == f->start + (sqlite3_int64)f->len;
    int rc;
    if (f->page_due && follows) {
        /* The page of the frame whose header we hold. */
        bool commits = f->commit_due;
        f->page_due = f->commit_due = false;
        if ((rc = gather(f, data, amount, offset)) != SQLITE_OK)
            return rc;
        /* The commit's last write: its error is the COMMIT's. */
        return commits ? flush(f) : SQLITE_OK;
    }
    if (amount == FRAME_HEADER_BYTES && !f->page_due) {
        if ((!follows || f->len >= GATHER_LIMIT) && (rc = flush(f)) != SQLITE_OK)
            return rc;
        if ((rc = gather(f, data, amount, offset)) != SQLITE_OK)
            return rc;
        f->page_due = true;
        f->commit_due = be32((const unsigned char *)data + 4) != 0;
        return SQLITE_OK;
    }
    /* Not the pattern (the WAL's own header, or a SQLite that writes
     * differently): write what we hold, then this, in order. */
    if ((rc = flush(f)) != SQLITE_OK)
        return rc;
    return f->real->pMethods->xWrite(f->real, data, amount, offset);
}

static int wal_close(sqlite3_file *file)
{
    walbuf_file *f = (walbuf_file *)file;
    int rc = flush(f);
    int crc = f->real->pMethods->xClose(f->real);
    free(f->buf);
    f->buf = NULL;
    f->cap = 0;
    return rc != SQLITE_OK ? rc : crc;
}

static int wal_read(sqlite3_file *file, void *data, int amount, sqlite3_int64 offset)
{
    walbuf_file *f = (walbuf_file *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, data, amount, offset);
}

static int wal_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    walbuf_file *f = (walbuf_file *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int wal_sync(sqlite3_file *file, int flags)
{
    walbuf_file *f = (walbuf_file *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int wal_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    walbuf_file *f = (walbuf_file *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int wal_lock(sqlite3_file *file, int level)
{
    walbuf_file *f = (walbuf_file *)file;
    return f->real->pMethods->xLock(f->real, level);
}

static int wal_unlock(sqlite3_file *file, int level)
{
    walbuf_file *f = (walbuf_file *)file;
    return f->real->pMethods->xUnlock(f->real, level);
}

static int wal_check_reserved(sqlite3_file *file, int *out)
{
    walbuf_file *f = (walbuf_file *)file;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int wal_file_control(sqlite3_file *file, int op, void *arg)
{
    walbuf_file *f = (walbuf_file *)file;
    /* A size hint or a vfsname query must see the file as it will be. */
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int wal_sector_size(sqlite3_file *file)
{
    walbuf_file *f = (walbuf_file *)file;
    return f->real->pMethods->xSectorSize(f->real);
}

static int wal_device_characteristics(sqlite3_file *file)
{
    walbuf_file *f = (walbuf_file *)file;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

/* SQLite maps no WAL file into memory and takes no shared-memory locks
 * on it; these only keep the method table whole. */
static int wal_shm_map(sqlite3_file *file, int region, int size, int extend, void volatile **out)
{
    walbuf_file *f = (walbuf_file *)file;
    return f->real->pMethods->xShmMap(f->real, region, size, extend, out);
}

static int wal_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    walbuf_file *f = (walbuf_file *)file;
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void wal_shm_barrier(sqlite3_file *file)
{
    walbuf_file *f = (walbuf_file *)file;
    f->real->pMethods->xShmBarrier(f->real);
}

static int wal_shm_unmap(sqlite3_file *file, int delete_flag)
{
    walbuf_file *f = (walbuf_file *)file;
    return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

static int wal_fetch(sqlite3_file *file, sqlite3_int64 offset, int amount, void **out)
{
    walbuf_file *f = (walbuf_file *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFetch(f->real, offset, amount, out);
}

static int wal_unfetch(sqlite3_file *file, sqlite3_int64 offset, void *page)
{
    walbuf_file *f = (walbuf_file *)file;
    return f->real->pMethods->xUnfetch(f->real, offset, page);
}

static const sqlite3_io_methods wal_methods = {
    .iVersion = 3,
    .xClose = wal_close,
    .xRead = wal_read,
    .xWrite = wal_write,
    .xTruncate = wal_truncate,
    .xSync = wal_sync,
    .xFileSize = wal_file_size,
    .xLock = wal_lock,
    .xUnlock = wal_unlock,
    .xCheckReservedLock = wal_check_reserved,
    .xFileControl = wal_file_control,
    .xSectorSize = wal_sector_size,
    .xDeviceCharacteristics = wal_device_characteristics,
    .xShmMap = wal_shm_map,
    .xShmLock = wal_shm_lock,
    .xShmBarrier = wal_shm_barrier,
    .xShmUnmap = wal_shm_unmap,
    .xFetch = wal_fetch,
    .xUnfetch = wal_unfetch,
};

static int vfs_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags,
                    int *out_flags)
{
    (void)vfs;
    if (!(flags & SQLITE_OPEN_WAL))
        /* Not ours to change: the wrapped file lives in our slot as is. */
        return wrapped->xOpen(wrapped, name, file, flags, out_flags);
    walbuf_file *f = (walbuf_file *)file;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)((char *)file + round8(sizeof *f));
    int rc = wrapped->xOpen(wrapped, name, f->real, flags, out_flags);
    /* SQLite calls xClose only when pMethods is set; the wrapped VFS may
     * have set its own even on failure, and then it must be closed. */
    if (rc != SQLITE_OK) {
        if (f->real->pMethods)
            f->real->pMethods->xClose(f->real);
        f->base.pMethods = NULL;
        return rc;
    }
    /* The wrapped file must support everything our table claims. */
    if (f->real->pMethods->iVersion < 3) {
        f->real->pMethods->xClose(f->real);
        f->base.pMethods = NULL;
        return SQLITE_CANTOPEN;
    }
    f->base.pMethods = &wal_methods;
    return SQLITE_OK;
}

/* The rest of the VFS is the wrapped one's, called with its own handle. */
static int vfs_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    return wrapped->xDelete(wrapped, name, sync_dir);
}

static int vfs_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return wrapped->xAccess(wrapped, name, flags, out);
}

static int vfs_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return wrapped->xFullPathname(wrapped, name, n, out);
}

static void *vfs_dl_open(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return wrapped->xDlOpen(wrapped, name);
}

static void vfs_dl_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    wrapped->xDlError(wrapped, n, out);
}

static void (*vfs_dl_sym(sqlite3_vfs *vfs, void *lib, const char *sym))(void)
{
    (void)vfs;
    return wrapped->xDlSym(wrapped, lib, sym);
}

static void vfs_dl_close(sqlite3_vfs *vfs, void *lib)
{
    (void)vfs;
    wrapped->xDlClose(wrapped, lib);
}

static int vfs_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return wrapped->xRandomness(wrapped, n, out);
}

static int vfs_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return wrapped->xSleep(wrapped, us);
}

static int vfs_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return wrapped->xCurrentTime(wrapped, out);
}

static int vfs_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return wrapped->xGetLastError ? wrapped->xGetLastError(wrapped, n, out) : 0;
}

static int vfs_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return wrapped->xCurrentTimeInt64(wrapped, out);
}

static const char vfs_name[] = "anvil-walbuf";

static void register_once(void)
{
    if (sqlite3_initialize() != SQLITE_OK)
        return;
    sqlite3_vfs *base = sqlite3_vfs_find(NULL);
    /* Version 2 gives xCurrentTimeInt64, which SQLite prefers; the system
     * call hooks of version 3 are for tests of the wrapped VFS. */
    if (!base || base->iVersion < 2 || !base->xCurrentTimeInt64)
        return;
    walbuf_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)(round8(sizeof(walbuf_file)) + (size_t)base->szOsFile),
        .mxPathname = base->mxPathname,
        .zName = vfs_name,
        .xOpen = vfs_open,
        .xDelete = vfs_delete,
        .xAccess = vfs_access,
        .xFullPathname = vfs_full_pathname,
        .xDlOpen = vfs_dl_open,
        .xDlError = vfs_dl_error,
        .xDlSym = vfs_dl_sym,
        .xDlClose = vfs_dl_close,
        .xRandomness = vfs_randomness,
        .xSleep = vfs_sleep,
        .xCurrentTime = vfs_current_time,
        .xGetLastError = vfs_last_error,
        .xCurrentTimeInt64 = vfs_current_time64,
    };
    wrapped = base;
    if (sqlite3_vfs_register(&walbuf_vfs, 0) != SQLITE_OK)
        wrapped = NULL;
}

const char *anvil_store_walbuf_vfs(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_once);
    return wrapped ? vfs_name : NULL;
}
