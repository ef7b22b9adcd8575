/*
 * runtime/store/store_cron.c — the SQL for cron schedule rows (store_cron.h).
 */
#include <stdlib.h>
#include <string.h>

#include "store_cron.h"
#include "store_sql.h"

void anvil_cron_record_clear(anvil_cron_record *r)
{
    free(r->cron_id);
    free(r->workflow);
    free(r->pattern);
    memset(r, 0, sizeof *r);
}

#define CRON_COLUMNS \
    "cron_id, workflow, pattern, enabled, next_run_at_ms, last_run_at_ms, created_at_ms," \
    " updated_at_ms"

static int read_cron(sqlite3_stmt *st, anvil_cron_record *r)
{
    memset(r, 0, sizeof *r);
    r->cron_id = anvil_sql_text(st, 0);
    r->workflow = anvil_sql_text(st, 1);
    r->pattern = anvil_sql_text(st, 2);
    r->enabled = anvil_sql_int(st, 3, 1) != 0;
    r->next_run_at_ms = anvil_sql_int(st, 4, -1);
    r->last_run_at_ms = anvil_sql_int(st, 5, -1);
    r->created_at_ms = anvil_sql_int(st, 6, 0);
    r->updated_at_ms = anvil_sql_int(st, 7, 0);
    if (!r->cron_id || !r->workflow || !r->pattern) {
        anvil_cron_record_clear(r);
        return -1;
    }
    return 0;
}

int anvil_store_cron_put(anvil_store *s, const anvil_cron_record *r)
{
    static const char sql[] =
        "INSERT INTO crons(" CRON_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)"
        " ON CONFLICT(cron_id) DO UPDATE SET workflow = excluded.workflow,"
        " pattern = excluded.pattern, enabled = excluded.enabled,"
        " next_run_at_ms = excluded.next_run_at_ms, updated_at_ms = excluded.updated_at_ms";
    return anvil_sql_exec(s, sql, "sssinni", r->cron_id, r->workflow, r->pattern,
                          (int64_t)r->enabled, r->next_run_at_ms, r->last_run_at_ms,
                          r->updated_at_ms) < 0 ? -1 : 0;
}

static int cron_row(void *ctx, sqlite3_stmt *st)
{
    return read_cron(st, ctx) == 0 ? 1 : -1;
}

int anvil_store_cron_get(anvil_store *s, const char *cron_id, anvil_cron_record *out)
{
    static const char sql[] = "SELECT " CRON_COLUMNS " FROM crons WHERE cron_id = ?1";
    memset(out, 0, sizeof *out);
    int n = anvil_sql_query(s, sql, cron_row, out, "s", cron_id);
    if (n < 0)
        return -1;
    if (n == 0)
        return 0;
    return out->cron_id ? 1 : -1;
}

int anvil_store_cron_delete(anvil_store *s, const char *cron_id)
{
    static const char sql[] = "DELETE FROM crons WHERE cron_id = ?1";
    int n = anvil_sql_exec(s, sql, "s", cron_id);
    return n < 0 ? -1 : n > 0;
}

int anvil_store_cron_mark(anvil_store *s, const char *cron_id, int64_t next_ms, int64_t last_ms)
{
    static const char sql[] =
        "UPDATE crons SET next_run_at_ms = ?2,"
        " last_run_at_ms = CASE WHEN ?3 IS NULL THEN last_run_at_ms ELSE ?3 END"
        " WHERE cron_id = ?1";
    int n = anvil_sql_exec(s, sql, "snn", cron_id, next_ms, last_ms);
    return n < 0 ? -1 : n > 0;
}

int anvil_store_cron_restore(anvil_store *s, const char *cron_id, int64_t next_ms, int64_t last_ms)
{
    static const char sql[] =
        "UPDATE crons SET next_run_at_ms = ?2, last_run_at_ms = ?3 WHERE cron_id = ?1";
    int n = anvil_sql_exec(s, sql, "snn", cron_id, next_ms, last_ms);
    return n < 0 ? -1 : n > 0;
}

int anvil_store_cron_ran(anvil_store *s, const char *cron_id, int64_t last_ms)
{
    static const char sql[] = "UPDATE crons SET last_run_at_ms = ?2 WHERE cron_id = ?1";
    int n = anvil_sql_exec(s, sql, "si", cron_id, last_ms);
    return n < 0 ? -1 : n > 0;
}

typedef struct cron_each {
    anvil_cron_record_fn fn;
    void *ctx;
    int failed;
} cron_each;

static int each_cron(void *ctx, sqlite3_stmt *st)
{
    cron_each *e = ctx;
    anvil_cron_record r;
    if (read_cron(st, &r) != 0) {
        e->failed = 1;
        return 1;
    }
    int rc = e->fn(e->ctx, &r);
    anvil_cron_record_clear(&r);
    return rc;
}

int anvil_store_crons_list(anvil_store *s, const char *workflow, anvil_cron_record_fn fn,
                           void *ctx)
{
    static const char all_sql[] = "SELECT " CRON_COLUMNS " FROM crons ORDER BY cron_id";
    static const char wf_sql[] =
        "SELECT " CRON_COLUMNS " FROM crons WHERE workflow = ?1 ORDER BY cron_id";
    cron_each e = { fn, ctx, 0 };
    int n = workflow ? anvil_sql_query(s, wf_sql, each_cron, &e, "s", workflow)
                     : anvil_sql_query(s, all_sql, each_cron, &e, "");
    return e.failed ? -1 : n;
}

int anvil_store_crons_due(anvil_store *s, int64_t now_ms, anvil_cron_record_fn fn, void *ctx)
{
    static const char sql[] =
        "SELECT " CRON_COLUMNS " FROM crons WHERE enabled = 1 AND next_run_at_ms IS NOT NULL"
        " AND next_run_at_ms <= ?1 ORDER BY next_run_at_ms, cron_id";
    cron_each e = { fn, ctx, 0 };
    int n = anvil_sql_query(s, sql, each_cron, &e, "i", now_ms);
    return e.failed ? -1 : n;
}
