/*
 * runtime/store/store_db.c — the store handle's connection primitives:
 * failure messages, plain exec, the slot statements, and the teardown of
 * every cache the handle holds (store_db.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"
#include "store_db.h"

/* Pages the current write has written so far (or was writing when its
 * commit failed: in WAL mode SQLite counts a commit's pages before it
 * appends them), counted from the last anvil_store_clear_failure outside
 * a transaction. */
static int64_t write_pages(anvil_store *s)
{
    int cur = 0, high = 0;
    if (!s->db || sqlite3_db_status(s->db, SQLITE_DBSTATUS_CACHE_WRITE, &cur, &high, 0) != SQLITE_OK)
        return 0;
    return cur;
}

/* SQLite's codes for "the database cannot be used right now", as opposed
 * to a bug or a broken invariant: the disk is full, an I/O error, the file
 * cannot be opened, another process holds the lock past the busy timeout,
 * or the file became read-only. */
static bool resource_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_READONLY:
        return true;
    default:
        return false;
    }
}

int anvil_store_fail(anvil_store *s, char *err, size_t errlen, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    if (s) {
        snprintf(s->errmsg, sizeof s->errmsg, "%s", msg);
        s->fail_rc = s->db ? sqlite3_extended_errcode(s->db) : SQLITE_OK;
        /* One log line per episode: a full disk fails every request until
         * it is fixed, and a line per request would bury the cause. */
        if (resource_code(s->fail_rc) &&
            anvil_store_episode_failed(&s->episode, write_pages(s), anvil_mono_ms())) {
            anvil_log(ANVIL_LOG_ERROR, "database unavailable: %s (requests that need it answer "
                      "503 StorageUnavailable; logged again once it has recovered)", msg);
        }
        if (s->after_failure)
            s->after_failure(s);
    }
    return -1;
}

bool anvil_store_unavailable(const anvil_store *s)
{
    return resource_code(s->fail_rc);
}

void anvil_store_clear_failure(anvil_store *s)
{
    s->fail_rc = SQLITE_OK;
    s->errmsg[0] = '\0';
    /* Between transactions: the next write's pages count from zero. */
    int cur, high;
    if (s->db && sqlite3_txn_state(s->db, NULL) == SQLITE_TXN_NONE)
        sqlite3_db_status(s->db, SQLITE_DBSTATUS_CACHE_WRITE, &cur, &high, 1);
}

void anvil_store_recovered(anvil_store *s)
{
    s->fail_rc = SQLITE_OK;
    int64_t now = anvil_mono_ms();
    if (anvil_store_episode_committed(&s->episode, write_pages(s), now))
        anvil_log(ANVIL_LOG_INFO, "database available again (unavailable for %.1f s)",
                  (double)(now - s->episode.opened_ms) / 1000.0);
}


const char *anvil_store_errmsg(const anvil_store *s)
{
    return s->errmsg;
}

int anvil_store_exec(anvil_store *s, const char *sql, char *err, size_t errlen)
{
    anvil_store_clear_failure(s);
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    anvil_store_fail(s, err, errlen, "%s", msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    return -1;
}

void anvil_store_rollback_quietly(anvil_store *s)
{
    /* After an I/O error or a full disk SQLite may already have rolled the
     * transaction back itself; "no transaction is active" then is no news,
     * and must not replace the error that explains the failure. */
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

sqlite3_stmt *anvil_store_stmt(anvil_store *s, enum anvil_store_stmt_slot slot,
                               const char *sql)
{
    anvil_store_clear_failure(s);
    sqlite3_stmt *st = s->stmts[slot];
    if (!st) {
        if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
            anvil_store_fail(s, NULL, 0, "prepare: %s", sqlite3_errmsg(s->db));
            return NULL;
        }
        s->stmts[slot] = st;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

void anvil_store_revocations_invalidate(anvil_store *s)
{
    for (size_t i = 0; i < s->n_revoked; i++)
        free(s->revoked[i].token_id);
    free(s->revoked);
    s->revoked = NULL;
    s->n_revoked = 0;
    s->revoked_loaded = false;
}

void anvil_sql_cache_clear(anvil_store *s)
{
    for (size_t i = 0; i < s->n_sql_cache; i++)
        sqlite3_finalize(s->sql_cache[i].st);
    s->n_sql_cache = 0;
}

void anvil_store_db_free(anvil_store *s)
{
    if (!s)
        return;
    for (int i = 0; i < ANVIL_STMT_COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    anvil_store_revocations_invalidate(s);
    anvil_sql_cache_clear(s);
    sqlite3_close(s->db);
    free(s);
}
