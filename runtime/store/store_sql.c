/*
 * runtime/store/store_sql.c — format-driven binding and a per-store statement
 * cache, so each store function is its SQL plus one call.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sql.h"

static sqlite3_stmt *cached(anvil_store *s, const char *sql)
{
    for (size_t i = 0; i < s->n_sql_cache; i++) {
        if (s->sql_cache[i].sql == sql) {
            sqlite3_stmt *st = s->sql_cache[i].st;
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            return st;
        }
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        anvil_store_fail(s, NULL, 0, "prepare: %s", sqlite3_errmsg(s->db));
        return NULL;
    }
    if (s->n_sql_cache < sizeof s->sql_cache / sizeof s->sql_cache[0]) {
        s->sql_cache[s->n_sql_cache].sql = sql;
        s->sql_cache[s->n_sql_cache].st = st;
        s->n_sql_cache++;
    } else {
        /* Cache full: a programming error (too many distinct statements);
         * keep working, uncached, and say so once. */
        static int warned;
        if (!warned++)
            fprintf(stderr, "anvil: store statement cache is full; raise sql_cache\n");
    }
    return st;
}

static bool is_cached(anvil_store *s, sqlite3_stmt *st)
{
    for (size_t i = 0; i < s->n_sql_cache; i++)
        if (s->sql_cache[i].st == st)
            return true;
    return false;
}

static void release(anvil_store *s, sqlite3_stmt *st)
{
    if (is_cached(s, st))
        sqlite3_reset(st);
    else
        sqlite3_finalize(st);
}

static int bind_all(anvil_store *s, sqlite3_stmt *st, const char *fmt, va_list ap)
{
    int idx = 1, rc = SQLITE_OK;
    for (const char *f = fmt ? fmt : ""; *f && rc == SQLITE_OK; f++, idx++) {
        switch (*f) {
        case 's': {
            const char *v = va_arg(ap, const char *);
            rc = v ? sqlite3_bind_text(st, idx, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, idx);
            break;
        }
        case 'i':
            rc = sqlite3_bind_int64(st, idx, va_arg(ap, int64_t));
            break;
        case 'n': {
            int64_t v = va_arg(ap, int64_t);
            rc = v < 0 ? sqlite3_bind_null(st, idx) : sqlite3_bind_int64(st, idx, v);
            break;
        }
        default:
            anvil_store_fail(s, NULL, 0, "bad bind format '%c'", *f);
            return -1;
        }
    }
    if (rc != SQLITE_OK) {
        anvil_store_fail(s, NULL, 0, "bind: %s", sqlite3_errmsg(s->db));
        return -1;
    }
    return 0;
}

/* The cached statement for sql with every argument bound, or NULL. */
static sqlite3_stmt *prepare_bound(anvil_store *s, const char *sql, const char *fmt, va_list ap)
{
    sqlite3_stmt *st = cached(s, sql);
    if (st && bind_all(s, st, fmt, ap) != 0) {
        release(s, st);
        return NULL;
    }
    return st;
}

int anvil_sql_exec(anvil_store *s, const char *sql, const char *fmt, ...)
{
    anvil_store_clear_failure(s);
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *st = prepare_bound(s, sql, fmt, ap);
    va_end(ap);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    int changes = sqlite3_changes(s->db);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        anvil_store_fail(s, NULL, 0, "%s", sqlite3_errmsg(s->db));
        release(s, st);
        return -1;
    }
    release(s, st);
    return changes;
}

int anvil_sql_query(anvil_store *s, const char *sql, anvil_sql_row_fn row, void *ctx,
                    const char *fmt, ...)
{
    anvil_store_clear_failure(s);
    va_list ap;
    va_start(ap, fmt);
    sqlite3_stmt *st = prepare_bound(s, sql, fmt, ap);
    va_end(ap);
    if (!st)
        return -1;
    int rc;
    int n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        n++;
        if (row && row(ctx, st) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE) {
        anvil_store_fail(s, NULL, 0, "%s", sqlite3_errmsg(s->db));
        release(s, st);
        return -1;
    }
    release(s, st);
    return n;
}

char *anvil_sql_text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? strdup((const char *)t) : NULL;
}

int64_t anvil_sql_int(sqlite3_stmt *st, int col, int64_t dflt)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL ? dflt : sqlite3_column_int64(st, col);
}
