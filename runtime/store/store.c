/*
 * runtime/store/store.c — opening, tuning, migrating and closing the SQLite store.
 *
 * Owns the connection and its pragmas (WAL, synchronous=NORMAL, foreign keys,
 * busy timeout, page cache size) and applying store_migrations.c in order; the handle and
 * its caches are store_db.c's. Queries for one domain live in their own store_*.c
 * (tokens: store_tokens.c); no file outside store*.c issues SQL.
 */
#include "error.h"
#include "store.h"
#include "store_db.h"
#include "store_txn.h"
#include "store_migrations.h"
#include "store_walbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Single-value pragma/query read as text into out. */
static int query_text(anvil_store *s, const char *sql, char *out, size_t outlen)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, outlen, "%s", t ? (const char *)t : "");
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

static int user_version(anvil_store *s, int *out)
{
    char buf[32];
    if (query_text(s, "PRAGMA user_version", buf, sizeof buf) != 0)
        return -1;
    *out = atoi(buf);
    return 0;
}

int anvil_store_latest_version(void)
{
    return (int)anvil_store_n_migrations;
}

int anvil_store_schema_version(anvil_store *s)
{
    int v;
    return user_version(s, &v) == 0 ? v : -1;
}

static int too_new(anvil_store *s, const char *path, int v, char *err, size_t errlen)
{
    return anvil_store_fail(s, err, errlen,
                            "%s: database schema version %d is newer than this anvil "
                            "supports (%d); use a newer anvil binary",
                            path, v, anvil_store_latest_version());
}

/*
 * One migration per transaction. The version is re-read after taking the
 * write lock, so two processes opening a fresh database at once (serve and
 * `anvil token issue`) do not both apply the same migration.
 */
static int migrate(anvil_store *s, const char *path, char *err, size_t errlen)
{
    int latest = anvil_store_latest_version();
    for (;;) {
        int v;
        if (user_version(s, &v) != 0)
            return anvil_store_fail(s, err, errlen, "%s: cannot read schema version: %s",
                                    path, sqlite3_errmsg(s->db));
        if (v > latest)
            return too_new(s, path, v, err, errlen);
        if (v == latest)
            return 0;
        char msg[200];
        if (anvil_store_exec(s, "BEGIN IMMEDIATE", msg, sizeof msg) != 0)
            return anvil_store_fail(s, err, errlen, "%s: migration %d: %s", path, v + 1, msg);
        if (user_version(s, &v) != 0 || v >= latest) {
            anvil_store_exec(s, "ROLLBACK", NULL, 0);
            if (v >= latest)
                continue; /* someone else migrated while we waited for the lock */
            return anvil_store_fail(s, err, errlen, "%s: cannot read schema version: %s",
                                    path, sqlite3_errmsg(s->db));
        }
        char set_version[64];
        snprintf(set_version, sizeof set_version, "PRAGMA user_version = %d", v + 1);
        if (anvil_store_exec(s, anvil_store_migrations[v], msg, sizeof msg) != 0 ||
            anvil_store_exec(s, set_version, msg, sizeof msg) != 0 ||
            anvil_store_exec(s, "COMMIT", msg, sizeof msg) != 0) {
            anvil_store_exec(s, "ROLLBACK", NULL, 0);
            return anvil_store_fail(s, err, errlen, "%s: migration %d failed: %s", path,
                                    v + 1, msg);
        }
    }
}

static int tune(anvil_store *s, const char *path, char *err, size_t errlen)
{
    char mode[32] = "";
    sqlite3_busy_timeout(s->db, 5000);
    if (query_text(s, "PRAGMA journal_mode=WAL", mode, sizeof mode) != 0)
        return anvil_store_fail(s, err, errlen, "%s: cannot set journal mode: %s", path,
                                sqlite3_errmsg(s->db));
    /* In-memory and temporary databases cannot use WAL and say "memory". */
    bool in_memory = !strcmp(path, ":memory:") || !*path;
    if (!in_memory && strcmp(mode, "wal") != 0)
        return anvil_store_fail(s, err, errlen,
                                "%s: could not enable WAL journal mode (got \"%s\")", path, mode);
    /* cache_size: 16 MiB instead of SQLite's 2,000 KiB per connection.
     * On an API-built database of 1M runs, getRun of runs at random places
     * in the history read 7.3 pages per call from the OS with the default,
     * 5.0 with 16 MiB and 5.0 with 64 MiB (bench/RESULTS.md, issue 12):
     * 16 MiB holds the interior pages of the run_id-keyed indexes (1-2 %
     * of their 674 MiB of leaves), so a lookup reads only its leaves.
     * Launches need less since run ids are time-ordered (their inserts
     * stay at the right edge). It is a bound, filled as pages are read.
     * mmap_size stays 0: it saved no reads on these paths, and an I/O
     * error on a mapped page is a SIGBUS, not an error to return. */
    char msg[200];
    /* temp_store: each change in a group-commit batch is a savepoint
     * (store_txn.h), whose undo copies go to a statement journal; in a
     * file that is a pwrite per page touched, in memory a memcpy. */
    if (anvil_store_exec(s, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                            " PRAGMA cache_size=-16384; PRAGMA temp_store=MEMORY;", msg,
                         sizeof msg) != 0)
        return anvil_store_fail(s, err, errlen, "%s: %s", path, msg);
    return 0;
}

int anvil_store_open(const char *path, anvil_store **out, char *err, size_t errlen)
{
    *out = NULL;
    anvil_store *s = calloc(1, sizeof *s);
    if (!s)
        return anvil_store_fail(NULL, err, errlen, "%s: out of memory", path);
    /* Before SQLite first initializes (a later call is refused, harmlessly):
     * its memory statistics take a global mutex on every allocation, and
     * nothing here reads them. */
    static bool configured;
    if (!configured) {
        configured = true;
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    }
    /* The server is single-threaded, so SQLite's own locking is pure cost. */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    /* NULL (no VFS to wrap) opens with SQLite's default: slower, same
     * guarantees. */
    int rc = sqlite3_open_v2(path, &s->db, flags, anvil_store_walbuf_vfs());
    if (rc != SQLITE_OK) {
        anvil_store_fail(NULL, err, errlen, "%s: cannot open database: %s", path,
                         s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        anvil_store_close(s);
        return -1;
    }
    sqlite3_extended_result_codes(s->db, 1);
    if (tune(s, path, err, errlen) != 0 || migrate(s, path, err, errlen) != 0) {
        anvil_store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void anvil_store_close(anvil_store *s)
{
    if (!s)
        return;
    /* Changes still in a batch were never answered, but they happened:
     * keep them (their owners flush first when they need the answer). */
    anvil_store_flush(s);
    anvil_store_db_free(s);
}

int anvil_store_error(const anvil_store *s, anvil_error *err, const char *what)
{
    const char *cause = s->errmsg[0] ? s->errmsg : "not a database error";
    const char *sep = what ? ": " : "";
    what = what ? what : "";
    if (!anvil_store_unavailable(s))
        return anvil_error_set(err, ANVIL_ERR_INTERNAL, "%s%s%s", what, sep, cause);
    anvil_error_set(err, ANVIL_ERR_STORAGE_UNAVAILABLE, "%s%s%s", what, sep, cause);
    anvil_error_detail_int(err, "retryAfterMs", ANVIL_STORE_RETRY_AFTER_MS);
    return -1;
}
