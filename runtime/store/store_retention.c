/*
 * runtime/store/store_retention.c — the SQL that removes runs
 * (store_retention.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_retention.h"
#include "store_db.h"
#include "store_runs.h"
#include "store_sql.h"

/* Children first, the run row last: a reader between statements cannot
 * happen (one transaction), but the order keeps "the run exists" true for
 * as long as any of its rows do, should a statement ever move out. */
static const char *const delete_sql[] = {
    "DELETE FROM events WHERE run_id = ?1",
    "DELETE FROM frames WHERE run_id = ?1",
    "DELETE FROM attempts WHERE run_id = ?1",
    "DELETE FROM outputs WHERE run_id = ?1",
    "DELETE FROM approvals WHERE run_id = ?1",
    "DELETE FROM signals WHERE run_id = ?1",
    "DELETE FROM nodes WHERE run_id = ?1",
    "DELETE FROM hijack_sessions WHERE run_id = ?1",
    "DELETE FROM rewind_audit WHERE run_id = ?1",
};

static int delete_rows(anvil_store *s, const char *run_id)
{
    for (size_t i = 0; i < sizeof delete_sql / sizeof delete_sql[0]; i++)
        if (anvil_sql_exec(s, delete_sql[i], "s", run_id) < 0)
            return -1;
    static const char run_sql[] = "DELETE FROM runs WHERE run_id = ?1";
    return anvil_sql_exec(s, run_sql, "s", run_id);
}

static int queue_removal(anvil_store *s, const char *run_id, int64_t now_ms)
{
    static const char sql[] =
        "INSERT INTO workspace_removals(run_id, queued_at_ms) VALUES (?1, ?2)"
        " ON CONFLICT(run_id) DO NOTHING";
    return anvil_sql_exec(s, sql, "si", run_id, now_ms) < 0 ? -1 : 0;
}

static int raise_floor(anvil_store *s, int64_t state_version)
{
    static const char sql[] =
        "INSERT INTO store_meta(key, value) VALUES ('state_version_floor', ?1)"
        " ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)";
    return anvil_sql_exec(s, sql, "i", state_version) < 0 ? -1 : 0;
}

int anvil_store_run_delete(anvil_store *s, const char *run_id, int64_t state_version,
                           int64_t now_ms)
{
    if (anvil_store_begin(s) != 0)
        return -1;
    int n = delete_rows(s, run_id);
    if (n < 0 || (n > 0 && (queue_removal(s, run_id, now_ms) != 0 ||
                            raise_floor(s, state_version) != 0))) {
        anvil_store_rollback(s);
        return -1;
    }
    if (anvil_store_commit(s) != 0)
        return -1;
    return n > 0 ? 1 : 0;
}

typedef struct removal_each {
    anvil_removal_fn fn;
    void *ctx;
} removal_each;

static int each_removal(void *ctx, sqlite3_stmt *st)
{
    removal_each *e = ctx;
    const char *run_id = (const char *)sqlite3_column_text(st, 0);
    return run_id ? e->fn(e->ctx, run_id) : -1;
}

int anvil_store_workspace_removals(anvil_store *s, int64_t limit, anvil_removal_fn fn, void *ctx)
{
    static const char sql[] =
        "SELECT run_id FROM workspace_removals ORDER BY rowid LIMIT ?1";
    removal_each e = { fn, ctx };
    return anvil_sql_query(s, sql, each_removal, &e, "i", limit > 0 ? limit : 1);
}

int anvil_store_workspace_removal_done(anvil_store *s, const char *run_id)
{
    static const char sql[] = "DELETE FROM workspace_removals WHERE run_id = ?1";
    return anvil_sql_exec(s, sql, "s", run_id) < 0 ? -1 : 0;
}

typedef struct id_list {
    char **ids;
    size_t *n;
    int64_t cap;
} id_list;

static int add_id(void *ctx, sqlite3_stmt *st)
{
    id_list *l = ctx;
    if ((int64_t)*l->n >= l->cap)
        return 1;
    char *id = anvil_sql_text(st, 0);
    if (!id)
        return -1;
    l->ids[(*l->n)++] = id;
    return 0;
}

/* A failed query returns nothing: the ids read before the failure go. */
static int ids_done(int rows, char **ids, size_t *n)
{
    if (rows >= 0)
        return 0;
    for (size_t i = 0; i < *n; i++)
        free(ids[i]);
    *n = 0;
    return -1;
}

int anvil_store_runs_ended_before(anvil_store *s, const char *workflow, int64_t before_ms,
                                  int64_t limit, char **ids, size_t *n)
{
    static const char sql[] =
        "SELECT run_id FROM runs WHERE workflow = ?1"
        " AND status IN ('finished', 'failed', 'cancelled')"
        " AND finished_at_ms < ?2 ORDER BY finished_at_ms, rowid LIMIT ?3";
    *n = 0;
    id_list l = { ids, n, limit };
    int rows = anvil_sql_query(s, sql, add_id, &l, "sii", workflow, before_ms, limit);
    return ids_done(rows, ids, n);
}

int anvil_store_runs_ended_beyond(anvil_store *s, const char *workflow, int64_t keep,
                                  int64_t limit, char **ids, size_t *n)
{
    static const char sql[] =
        "SELECT run_id FROM runs WHERE workflow = ?1"
        " AND status IN ('finished', 'failed', 'cancelled')"
        " ORDER BY finished_at_ms DESC, rowid DESC LIMIT ?3 OFFSET ?2";
    *n = 0;
    id_list l = { ids, n, limit };
    int rows = anvil_sql_query(s, sql, add_id, &l, "sii", workflow, keep, limit);
    return ids_done(rows, ids, n);
}

static int first_int(void *ctx, sqlite3_stmt *st)
{
    *(int64_t *)ctx = anvil_sql_int(st, 0, 0);
    return 1;
}

int anvil_store_incremental_vacuum_on(anvil_store *s)
{
    static const char sql[] = "PRAGMA auto_vacuum";
    int64_t mode = 0;
    if (anvil_sql_query(s, sql, first_int, &mode, NULL) < 0)
        return -1;
    return mode == 2 ? 1 : 0;     /* 0 NONE, 1 FULL, 2 INCREMENTAL */
}

int anvil_store_enable_incremental_vacuum(anvil_store *s, char *err, size_t errlen)
{
    return anvil_store_exec(s, "PRAGMA auto_vacuum=INCREMENTAL; VACUUM;", err, errlen);
}

int anvil_store_incremental_vacuum(anvil_store *s, int64_t pages)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%lld)", (long long)(pages > 0 ? pages : 1));
    char msg[200];
    if (anvil_store_exec(s, sql, msg, sizeof msg) != 0)
        return anvil_store_fail(s, NULL, 0, "incremental vacuum: %s", msg);
    return 0;
}
