/*
 * runtime/store/store_db.c — the store handle's connection primitives:
 * failure messages, plain exec, the slot statements, and the teardown of
 * every cache the handle holds (store_db.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "store_db.h"

int anvil_store_fail(anvil_store *s, char *err, size_t errlen, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    if (s)
        snprintf(s->errmsg, sizeof s->errmsg, "%s", msg);
    return -1;
}

const char *anvil_store_errmsg(const anvil_store *s)
{
    return s->errmsg;
}

int anvil_store_exec(anvil_store *s, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return 0;
    anvil_store_fail(s, err, errlen, "%s", msg ? msg : sqlite3_errmsg(s->db));
    sqlite3_free(msg);
    return -1;
}

sqlite3_stmt *anvil_store_stmt(anvil_store *s, enum anvil_store_stmt_slot slot,
                               const char *sql)
{
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
