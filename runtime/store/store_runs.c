/*
 * runtime/store/store_runs.c — the SQL for durable run state (store_runs.h).
 *
 * Every function is its statement plus one anvil_sql_* call; grouping into
 * transactions is the engine's job. Terminal statuses are spelled out in
 * anvil_store_runs_unfinished, which cannot read the contract's table (the
 * store does not link the contract layer): they must be RunStatus's
 * x-anvil-terminal in openapi.yaml, and tests/unit/test_status.c checks it.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json_print.h"
#include "store_compact.h"
#include "store_runs.h"
#include "store_sql.h"

/* ---- runs -------------------------------------------------------------- */

void anvil_run_record_clear(anvil_run_record *r)
{
    free(r->run_id);
    free(r->workflow);
    free(r->status);
    free(r->input_json);
    free(r->options_json);
    free(r->owner_id);
    free(r->triggered_by);
    free(r->role);
    free(r->scopes_json);
    free(r->token_id);
    free(r->idempotency_key);
    free(r->error);
    free(r->workspace_head);
    free(r->started_by_json);
    memset(r, 0, sizeof *r);
}

#define RUN_COLUMNS \
    "run_id, workflow, status, input_json, options_json, owner_id, triggered_by, role," \
    " scopes_json, token_id, idempotency_key, error, cancel_requested, last_seq, frame_no," \
    " created_at_ms, updated_at_ms, finished_at_ms, workspace_head, held, started_by_json"

static int read_run(sqlite3_stmt *st, anvil_run_record *r)
{
    memset(r, 0, sizeof *r);
    r->run_id = anvil_sql_text(st, 0);
    r->workflow = anvil_sql_text(st, 1);
    r->status = anvil_sql_text(st, 2);
    r->input_json = anvil_sql_text(st, 3);
    r->options_json = anvil_sql_text(st, 4);
    r->owner_id = anvil_sql_text(st, 5);
    r->triggered_by = anvil_sql_text(st, 6);
    r->role = anvil_sql_text(st, 7);
    r->scopes_json = anvil_sql_text(st, 8);
    r->token_id = anvil_sql_text(st, 9);
    r->idempotency_key = anvil_sql_text(st, 10);
    r->error = anvil_sql_text(st, 11);
    r->cancel_requested = anvil_sql_int(st, 12, 0) != 0;
    r->last_seq = anvil_sql_int(st, 13, 0);
    r->frame_no = anvil_sql_int(st, 14, 0);
    r->created_at_ms = anvil_sql_int(st, 15, 0);
    r->updated_at_ms = anvil_sql_int(st, 16, 0);
    r->finished_at_ms = anvil_sql_int(st, 17, -1);
    r->workspace_head = anvil_sql_text(st, 18);
    r->held = anvil_sql_int(st, 19, 0) != 0;
    r->started_by_json = anvil_sql_text(st, 20);
    if (!r->run_id || !r->workflow || !r->status || !r->input_json || !r->options_json ||
        !r->triggered_by || !r->role || !r->scopes_json) {
        anvil_run_record_clear(r);
        return -1;
    }
    return 0;
}

int anvil_store_run_insert(anvil_store *s, const anvil_run_record *r)
{
    static const char sql[] =
        "INSERT INTO runs(" RUN_COLUMNS ") VALUES "
        "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,"
        " ?20, ?21)";
    return anvil_sql_exec(s, sql, "ssssssssssssiiiiinsis", r->run_id, r->workflow, r->status,
                          r->input_json, r->options_json, r->owner_id, r->triggered_by, r->role,
                          r->scopes_json, r->token_id, r->idempotency_key, r->error,
                          (int64_t)r->cancel_requested, r->last_seq, r->frame_no,
                          r->created_at_ms, r->updated_at_ms, r->finished_at_ms,
                          r->workspace_head, (int64_t)r->held, r->started_by_json) < 0 ? -1 : 0;
}

int anvil_store_run_update(anvil_store *s, const anvil_run_record *r)
{
    static const char sql[] =
        "UPDATE runs SET status = ?2, error = ?3, cancel_requested = ?4, last_seq = ?5,"
        " frame_no = ?6, updated_at_ms = ?7, finished_at_ms = ?8, workspace_head = ?9,"
        " held = ?10 WHERE run_id = ?1";
    int n = anvil_sql_exec(s, sql, "sssiiiinsi", r->run_id, r->status, r->error,
                           (int64_t)r->cancel_requested, r->last_seq, r->frame_no,
                           r->updated_at_ms, r->finished_at_ms, r->workspace_head,
                           (int64_t)r->held);
    if (n == 0)
        return anvil_store_fail(s, NULL, 0, "run %s vanished", r->run_id);
    return n < 0 ? -1 : 0;
}

int anvil_store_run_progress(anvil_store *s, const anvil_run_record *r)
{
    /* No indexed column is set, so no index entry of the run is rewritten. */
    static const char sql[] =
        "UPDATE runs SET error = ?2, cancel_requested = ?3, last_seq = ?4, frame_no = ?5,"
        " updated_at_ms = ?6, workspace_head = ?7, held = ?8 WHERE run_id = ?1";
    int n = anvil_sql_exec(s, sql, "ssiiiisi", r->run_id, r->error, (int64_t)r->cancel_requested,
                           r->last_seq, r->frame_no, r->updated_at_ms, r->workspace_head,
                           (int64_t)r->held);
    if (n == 0)
        return anvil_store_fail(s, NULL, 0, "run %s vanished", r->run_id);
    return n < 0 ? -1 : 0;
}

static int run_row(void *ctx, sqlite3_stmt *st)
{
    anvil_run_record *out = ctx;
    return read_run(st, out) == 0 ? 1 : -1;
}

int anvil_store_run_get(anvil_store *s, const char *run_id, anvil_run_record *out)
{
    static const char sql[] = "SELECT " RUN_COLUMNS " FROM runs WHERE run_id = ?1";
    memset(out, 0, sizeof *out);
    int n = anvil_sql_query(s, sql, run_row, out, "s", run_id);
    if (n < 0)
        return -1;
    if (n == 0)
        return 0;
    return out->run_id ? 1 : -1;
}

static int first_text(void *ctx, sqlite3_stmt *st)
{
    *(char **)ctx = anvil_sql_text(st, 0);
    return 1;
}

int anvil_store_run_by_idempotency(anvil_store *s, const char *workflow, const char *key,
                                   char **run_id)
{
    static const char sql[] =
        "SELECT run_id FROM runs WHERE workflow = ?1 AND idempotency_key = ?2";
    *run_id = NULL;
    int n = anvil_sql_query(s, sql, first_text, run_id, "ss", workflow, key);
    if (n < 0)
        return -1;
    return *run_id ? 1 : 0;
}

typedef struct run_each {
    anvil_run_record_fn fn;
    void *ctx;
    int failed;
} run_each;

static int each_run(void *ctx, sqlite3_stmt *st)
{
    run_each *e = ctx;
    anvil_run_record r;
    if (read_run(st, &r) != 0) {
        e->failed = 1;
        return 1;
    }
    int stop = e->fn(e->ctx, &r);
    anvil_run_record_clear(&r);
    return stop;
}

int anvil_store_runs_list(anvil_store *s, const char *status, int64_t limit,
                          anvil_run_record_fn fn, void *ctx)
{
    static const char all_sql[] =
        "SELECT " RUN_COLUMNS " FROM runs ORDER BY created_at_ms DESC, rowid DESC LIMIT ?1";
    static const char status_sql[] =
        "SELECT " RUN_COLUMNS " FROM runs WHERE status = ?2"
        " ORDER BY created_at_ms DESC, rowid DESC LIMIT ?1";
    run_each e = { fn, ctx, 0 };
    int n = status ? anvil_sql_query(s, status_sql, each_run, &e, "is", limit, status)
                   : anvil_sql_query(s, all_sql, each_run, &e, "i", limit);
    return e.failed ? -1 : n;
}

static int each_summary(void *ctx, sqlite3_stmt *st)
{
    run_each *e = ctx;
    anvil_run_record r = {
        .run_id = (char *)sqlite3_column_text(st, 0), .workflow = (char *)sqlite3_column_text(st, 1),
        .status = (char *)sqlite3_column_text(st, 2), .created_at_ms = anvil_sql_int(st, 3, 0),
        .started_by_json = (char *)sqlite3_column_text(st, 4), .finished_at_ms = -1,
    };
    if (!r.run_id || !r.workflow || !r.status) {
        e->failed = 1;
        return 1;
    }
    return e->fn(e->ctx, &r);   /* borrowed column text: valid during the call */
}

/* One statement per combination of filters, each written out whole: a
 * filter bound as "?3 IS NULL OR status = ?3" would keep SQLite from
 * walking the matching index in order (runs_newest, runs_status_newest,
 * runs_workflow_newest), and the page would be sorted from every row. */
int anvil_store_run_summaries(anvil_store *s, const anvil_run_filter *f,
                              anvil_run_record_fn fn, void *ctx)
{
    static const char all_sql[] =
        "SELECT run_id, workflow, status, created_at_ms, started_by_json FROM runs"
        " ORDER BY created_at_ms DESC, rowid DESC LIMIT ?1 OFFSET ?2";
    static const char status_sql[] =
        "SELECT run_id, workflow, status, created_at_ms, started_by_json FROM runs"
        " WHERE status = ?3 ORDER BY created_at_ms DESC, rowid DESC LIMIT ?1 OFFSET ?2";
    static const char workflow_sql[] =
        "SELECT run_id, workflow, status, created_at_ms, started_by_json FROM runs"
        " WHERE workflow = ?3 ORDER BY created_at_ms DESC, rowid DESC LIMIT ?1 OFFSET ?2";
    static const char both_sql[] =
        "SELECT run_id, workflow, status, created_at_ms, started_by_json FROM runs"
        " WHERE status = ?3 AND workflow = ?4"
        " ORDER BY created_at_ms DESC, rowid DESC LIMIT ?1 OFFSET ?2";
    run_each e = { fn, ctx, 0 };
    int n;
    if (f->status && f->workflow)
        n = anvil_sql_query(s, both_sql, each_summary, &e, "iiss", f->limit, f->offset, f->status,
                            f->workflow);
    else if (f->status)
        n = anvil_sql_query(s, status_sql, each_summary, &e, "iis", f->limit, f->offset, f->status);
    else if (f->workflow)
        n = anvil_sql_query(s, workflow_sql, each_summary, &e, "iis", f->limit, f->offset,
                            f->workflow);
    else
        n = anvil_sql_query(s, all_sql, each_summary, &e, "ii", f->limit, f->offset);
    return e.failed ? -1 : n;
}

int anvil_store_runs_unfinished(anvil_store *s, anvil_run_record_fn fn, void *ctx)
{
    static const char sql[] =
        "SELECT " RUN_COLUMNS " FROM runs"
        " WHERE status NOT IN ('finished', 'failed', 'cancelled')"   /* = runs_unfinished's */
        " ORDER BY created_at_ms, rowid";
    run_each e = { fn, ctx, 0 };
    int n = anvil_sql_query(s, sql, each_run, &e, NULL);
    return e.failed ? -1 : n;
}

static int first_int(void *ctx, sqlite3_stmt *st)
{
    *(int64_t *)ctx = anvil_sql_int(st, 0, 0);
    return 1;
}

/* ---- nodes and attempts ---------------------------------------------- */

void anvil_node_record_clear(anvil_node_record *n)
{
    free(n->node_id);
    free(n->kind);
    free(n->state);
    free(n->error);
    memset(n, 0, sizeof *n);
}

int anvil_store_node_put(anvil_store *s, const char *run_id, const anvil_node_record *n)
{
    static const char sql[] =
        "INSERT INTO nodes(run_id, node_id, iteration, kind, state, attempts,"
        " started_at_ms, finished_at_ms, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        " ON CONFLICT(run_id, node_id, iteration) DO UPDATE SET kind = excluded.kind,"
        " state = excluded.state, attempts = excluded.attempts,"
        " started_at_ms = excluded.started_at_ms, finished_at_ms = excluded.finished_at_ms,"
        " error = excluded.error";
    return anvil_sql_exec(s, sql, "ssissinns", run_id, n->node_id, n->iteration, n->kind, n->state,
                          n->attempts, n->started_at_ms, n->finished_at_ms, n->error) < 0 ? -1 : 0;
}

typedef struct node_each {
    anvil_node_record_fn fn;
    void *ctx;
} node_each;

static int each_node(void *ctx, sqlite3_stmt *st)
{
    node_each *e = ctx;
    anvil_node_record n = {
        .node_id = anvil_sql_text(st, 0), .iteration = anvil_sql_int(st, 1, 0),
        .kind = anvil_sql_text(st, 2), .state = anvil_sql_text(st, 3),
        .attempts = anvil_sql_int(st, 4, 0), .started_at_ms = anvil_sql_int(st, 5, -1),
        .finished_at_ms = anvil_sql_int(st, 6, -1), .error = anvil_sql_text(st, 7),
    };
    int stop = (n.node_id && n.kind && n.state) ? e->fn(e->ctx, &n) : -1;
    anvil_node_record_clear(&n);
    return stop;
}

int anvil_store_nodes(anvil_store *s, const char *run_id, anvil_node_record_fn fn, void *ctx)
{
    static const char sql[] =
        "SELECT node_id, iteration, kind, state, attempts, started_at_ms, finished_at_ms, error"
        " FROM nodes WHERE run_id = ?1 ORDER BY rowid";
    node_each e = { fn, ctx };
    return anvil_sql_query(s, sql, each_node, &e, "s", run_id);
}

int anvil_store_node_exists(anvil_store *s, const char *run_id, const char *node_id,
                            int64_t iteration)
{
    /* Two statements rather than "(?3 < 0 OR iteration = ?3)", so each is
     * a plain primary-key prefix probe. */
    static const char any_sql[] =
        "SELECT 1 FROM nodes WHERE run_id = ?1 AND node_id = ?2 LIMIT 1";
    static const char one_sql[] =
        "SELECT 1 FROM nodes WHERE run_id = ?1 AND node_id = ?2 AND iteration = ?3";
    int64_t found = 0;
    int n = iteration < 0 ? anvil_sql_query(s, any_sql, first_int, &found, "ss", run_id, node_id)
                          : anvil_sql_query(s, one_sql, first_int, &found, "ssi", run_id, node_id,
                                            iteration);
    return n < 0 ? -1 : found ? 1 : 0;
}

int anvil_store_attempt_start(anvil_store *s, const char *run_id, const char *node_id,
                              int64_t iteration, int64_t attempt, int64_t started_at_ms,
                              int64_t started_seq)
{
    static const char sql[] =
        "INSERT OR REPLACE INTO attempts(run_id, node_id, iteration, attempt, state, started_at_ms,"
        " started_seq) VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6)";
    return anvil_sql_exec(s, sql, "ssiiii", run_id, node_id, iteration, attempt, started_at_ms,
                          started_seq) < 0 ? -1 : 0;
}

int anvil_store_attempt_finish(anvil_store *s, const char *run_id, const char *node_id,
                               int64_t iteration, int64_t attempt, const char *state,
                               int64_t finished_at_ms, int64_t exit_code, const char *error,
                               const char *out, const char *err, const char *commit_id)
{
    static const char sql[] =
        "UPDATE attempts SET state = ?5, finished_at_ms = ?6, exit_code = ?7, error = ?8,"
        " stdout = ?9, stderr = ?10, commit_id = ?11"
        " WHERE run_id = ?1 AND node_id = ?2 AND iteration = ?3 AND attempt = ?4";
    return anvil_sql_exec(s, sql, "ssiisinssss", run_id, node_id, iteration, attempt, state,
                          finished_at_ms, exit_code, error, out, err, commit_id) < 0 ? -1 : 0;
}

typedef struct interruptions {
    int64_t total, streak;
} interruptions;

static int count_interruption(void *ctx, sqlite3_stmt *st)
{
    interruptions *c = ctx;
    const unsigned char *state = sqlite3_column_text(st, 0);
    if (state && strcmp((const char *)state, "interrupted") == 0) {
        c->total++;
        c->streak++;
    } else if (!state || strcmp((const char *)state, "running") != 0) {
        c->streak = 0;   /* an attempt that ended on its own breaks the run */
    }
    return 0;
}

int anvil_store_attempt_interruptions(anvil_store *s, const char *run_id, const char *node_id,
                                      int64_t iteration, int64_t *total, int64_t *streak)
{
    static const char sql[] =
        "SELECT state FROM attempts WHERE run_id = ?1 AND node_id = ?2 AND iteration = ?3"
        " ORDER BY attempt";
    interruptions c = { 0, 0 };
    int rc = anvil_sql_query(s, sql, count_interruption, &c, "ssi", run_id, node_id, iteration);
    *total = c.total;
    *streak = c.streak;
    return rc < 0 ? -1 : 0;
}

void anvil_attempt_record_clear(anvil_attempt_record *a)
{
    free(a->node_id);
    free(a->state);
    free(a->error);
    free(a->out);
    free(a->err);
    memset(a, 0, sizeof *a);
}

/* Columns 0-7 of both attempt queries; 8 and 9 (stdout, stderr) when
 * with_output. false when out of memory. */
static bool read_attempt(sqlite3_stmt *st, bool with_output, anvil_attempt_record *a)
{
    *a = (anvil_attempt_record){
        .node_id = anvil_sql_text(st, 0), .iteration = anvil_sql_int(st, 1, 0),
        .attempt = anvil_sql_int(st, 2, 0), .state = anvil_sql_text(st, 3),
        .started_at_ms = anvil_sql_int(st, 4, 0), .finished_at_ms = anvil_sql_int(st, 5, -1),
        .exit_code = anvil_sql_int(st, 6, -1), .error = anvil_sql_text(st, 7),
    };
    bool ok = a->node_id && a->state &&
              (sqlite3_column_type(st, 7) == SQLITE_NULL || a->error);
    if (ok && with_output) {
        a->out = anvil_sql_text(st, 8);
        a->err = anvil_sql_text(st, 9);
        ok = (sqlite3_column_type(st, 8) == SQLITE_NULL || a->out) &&
             (sqlite3_column_type(st, 9) == SQLITE_NULL || a->err);
    }
    return ok;
}

typedef struct attempt_each {
    anvil_attempt_record_fn fn;
    void *ctx;
    bool failed;
} attempt_each;

static int each_attempt(void *ctx, sqlite3_stmt *st)
{
    attempt_each *e = ctx;
    anvil_attempt_record a;
    int stop;
    if (read_attempt(st, false, &a)) {
        stop = e->fn(e->ctx, &a);
    } else {
        e->failed = true;
        stop = 1;
    }
    anvil_attempt_record_clear(&a);
    return stop;
}

int anvil_store_attempts_list(anvil_store *s, const char *run_id, const char *node_id,
                              int64_t iteration, int64_t limit, anvil_attempt_record_fn fn,
                              void *ctx)
{
    /* The (run_id, node_id, iteration, attempt) primary key narrows the
     * scan to the run (and the node); the few rows left are sorted. */
    static const char sql[] =
        "SELECT node_id, iteration, attempt, state, started_at_ms, finished_at_ms, exit_code, error"
        " FROM attempts WHERE run_id = ?1 AND (?2 IS NULL OR node_id = ?2)"
        " AND (?3 < 0 OR iteration = ?3)"
        " ORDER BY started_at_ms, node_id, iteration, attempt LIMIT ?4";
    attempt_each e = { fn, ctx, false };
    int n = anvil_sql_query(s, sql, each_attempt, &e, "ssii", run_id, node_id, iteration,
                            limit > 0 ? limit : (int64_t)-1);
    if (e.failed)
        return anvil_store_fail(s, NULL, 0, "reading attempts: out of memory");
    return n;
}

typedef struct attempt_one {
    anvil_attempt_record *out;
    bool failed;
} attempt_one;

static int attempt_row(void *ctx, sqlite3_stmt *st)
{
    attempt_one *o = ctx;
    if (!read_attempt(st, true, o->out)) {
        anvil_attempt_record_clear(o->out);
        o->failed = true;
    }
    return 1;
}

int anvil_store_attempt_get(anvil_store *s, const char *run_id, const char *node_id,
                            int64_t iteration, int64_t attempt, anvil_attempt_record *out)
{
    static const char sql[] =
        "SELECT node_id, iteration, attempt, state, started_at_ms, finished_at_ms, exit_code, error,"
        " stdout, stderr FROM attempts"
        " WHERE run_id = ?1 AND node_id = ?2 AND iteration = ?3 AND attempt = ?4";
    memset(out, 0, sizeof *out);
    attempt_one o = { out, false };
    int n = anvil_sql_query(s, sql, attempt_row, &o, "ssii", run_id, node_id, iteration, attempt);
    if (o.failed)
        return anvil_store_fail(s, NULL, 0, "reading an attempt: out of memory");
    return n < 0 ? -1 : n > 0 ? 1 : 0;
}

/* ---- outputs ----------------------------------------------------------- */

int anvil_store_output_put(anvil_store *s, const char *run_id, const char *node_id,
                           int64_t iteration, const char *row_json, int64_t at_ms)
{
    static const char sql[] =
        "INSERT OR REPLACE INTO outputs(run_id, node_id, iteration, row_json, created_at_ms)"
        " VALUES (?1, ?2, ?3, ?4, ?5)";
    return anvil_sql_exec(s, sql, "ssisi", run_id, node_id, iteration, row_json, at_ms) < 0 ? -1 : 0;
}

int anvil_store_output_delete(anvil_store *s, const char *run_id, const char *node_id,
                              int64_t iteration)
{
    static const char sql[] =
        "DELETE FROM outputs WHERE run_id = ?1 AND node_id = ?2 AND iteration = ?3";
    return anvil_sql_exec(s, sql, "ssi", run_id, node_id, iteration) < 0 ? -1 : 0;
}

int anvil_store_output_get(anvil_store *s, const char *run_id, const char *node_id,
                           int64_t iteration, char **row_json)
{
    static const char sql[] =
        "SELECT row_json FROM outputs WHERE run_id = ?1 AND node_id = ?2 AND iteration = ?3";
    *row_json = NULL;
    int n = anvil_sql_query(s, sql, first_text, row_json, "ssi", run_id, node_id, iteration);
    if (n < 0)
        return -1;
    return *row_json ? 1 : 0;
}

static int add_output(void *ctx, sqlite3_stmt *st)
{
    cJSON *obj = ctx;
    const char *id = (const char *)sqlite3_column_text(st, 0);
    const char *row = (const char *)sqlite3_column_text(st, 1);
    cJSON *v = row ? cJSON_Parse(row) : NULL;
    if (!id || !v || !cJSON_AddItemToObject(obj, id, v)) {
        cJSON_Delete(v);
        return -1;
    }
    return 0;
}

int anvil_store_outputs_json(anvil_store *s, const char *run_id, char **json)
{
    static const char sql[] =
        "SELECT node_id, row_json FROM outputs WHERE run_id = ?1 AND iteration = 0 ORDER BY rowid";
    *json = NULL;
    cJSON *obj = cJSON_CreateObject();
    if (!obj)
        return anvil_store_fail(s, NULL, 0, "out of memory");
    int n = anvil_sql_query(s, sql, add_output, obj, "s", run_id);
    if (n >= 0)
        *json = anvil_json_print(obj);
    cJSON_Delete(obj);
    if (n >= 0 && !*json)
        return anvil_store_fail(s, NULL, 0, "out of memory");
    return n < 0 ? -1 : 0;
}

/* ---- approvals --------------------------------------------------------- */

void anvil_approval_record_clear(anvil_approval_record *a)
{
    free(a->run_id);
    free(a->node_id);
    free(a->workflow);
    free(a->status);
    free(a->title);
    free(a->decided_by);
    free(a->value_json);
    free(a->note);
    memset(a, 0, sizeof *a);
}

#define APPROVAL_COLUMNS \
    "run_id, node_id, iteration, workflow, status, title, requested_at_ms, decided_at_ms," \
    " decided_by, value_json, note"

static void read_approval(sqlite3_stmt *st, anvil_approval_record *a)
{
    a->run_id = anvil_sql_text(st, 0);
    a->node_id = anvil_sql_text(st, 1);
    a->iteration = anvil_sql_int(st, 2, 0);
    a->workflow = anvil_sql_text(st, 3);
    a->status = anvil_sql_text(st, 4);
    a->title = anvil_sql_text(st, 5);
    a->requested_at_ms = anvil_sql_int(st, 6, 0);
    a->decided_at_ms = anvil_sql_int(st, 7, -1);
    a->decided_by = anvil_sql_text(st, 8);
    a->value_json = anvil_sql_text(st, 9);
    a->note = anvil_sql_text(st, 10);
}

int anvil_store_approval_request(anvil_store *s, const char *run_id, const char *node_id,
                                 int64_t iteration, const char *workflow, const char *title,
                                 int64_t at_ms)
{
    static const char sql[] =
        "INSERT OR REPLACE INTO approvals(run_id, node_id, iteration, workflow, status, title,"
        " requested_at_ms) VALUES (?1, ?2, ?3, ?4, 'requested', ?5, ?6)";
    return anvil_sql_exec(s, sql, "ssissi", run_id, node_id, iteration, workflow, title, at_ms) < 0
               ? -1 : 0;
}

int anvil_store_approval_decide(anvil_store *s, const char *run_id, const char *node_id,
                                int64_t iteration, const char *status, int64_t at_ms,
                                const char *decided_by, const char *value_json, const char *note)
{
    /* Only a pending approval can be decided: the WHERE clause makes a
     * second decision a no-op that the caller sees as 0 rows. */
    static const char sql[] =
        "UPDATE approvals SET status = ?4, decided_at_ms = ?5, decided_by = ?6, value_json = ?7,"
        " note = ?8 WHERE run_id = ?1 AND node_id = ?2 AND iteration = ?3"
        " AND status = 'requested'";
    int n = anvil_sql_exec(s, sql, "ssisisss", run_id, node_id, iteration, status, at_ms,
                           decided_by, value_json, note);
    if (n == 0)
        return anvil_store_fail(s, NULL, 0, "approval %s was not pending", node_id);
    return n < 0 ? -1 : 0;
}

int anvil_store_approval_withdraw(anvil_store *s, const char *run_id, const char *node_id,
                                  int64_t iteration, int64_t at_ms)
{
    static const char sql[] =
        "UPDATE approvals SET status = 'cancelled', decided_at_ms = ?4"
        " WHERE run_id = ?1 AND node_id = ?2 AND iteration = ?3 AND status = 'requested'";
    return anvil_sql_exec(s, sql, "ssii", run_id, node_id, iteration, at_ms) < 0 ? -1 : 0;
}

static int approval_row(void *ctx, sqlite3_stmt *st)
{
    read_approval(st, ctx);
    return 1;
}

int anvil_store_approval_get(anvil_store *s, const char *run_id, const char *node_id,
                             int64_t iteration, anvil_approval_record *out)
{
    static const char sql[] =
        "SELECT " APPROVAL_COLUMNS " FROM approvals WHERE run_id = ?1 AND node_id = ?2"
        " AND iteration = ?3";
    memset(out, 0, sizeof *out);
    int n = anvil_sql_query(s, sql, approval_row, out, "ssi", run_id, node_id, iteration);
    if (n < 0)
        return -1;
    if (n == 0)
        return 0;
    return out->run_id && out->status ? 1 : -1;
}

typedef struct approval_each {
    anvil_approval_record_fn fn;
    void *ctx;
} approval_each;

static int each_approval(void *ctx, sqlite3_stmt *st)
{
    approval_each *e = ctx;
    anvil_approval_record a = { 0 };
    read_approval(st, &a);
    int stop = (a.run_id && a.node_id && a.workflow && a.title) ? e->fn(e->ctx, &a) : -1;
    anvil_approval_record_clear(&a);
    return stop;
}

int anvil_store_approvals_pending(anvil_store *s, const char *run_id, const char *workflow,
                                  int64_t limit, anvil_approval_record_fn fn, void *ctx)
{
    static const char sql[] =
        "SELECT " APPROVAL_COLUMNS " FROM approvals WHERE status = 'requested'"
        " AND (?1 IS NULL OR run_id = ?1) AND (?2 IS NULL OR workflow = ?2)"
        " ORDER BY requested_at_ms, run_id, node_id LIMIT ?3";
    approval_each e = { fn, ctx };
    return anvil_sql_query(s, sql, each_approval, &e, "ssi", run_id, workflow,
                           limit > 0 ? limit : INT64_MAX);
}

/* ---- signals ----------------------------------------------------------- */

int anvil_store_signal_insert(anvil_store *s, const char *run_id, const char *signal_name,
                              const char *correlation_id, const char *payload_json,
                              int64_t at_ms, const char *received_by, const char *delivery_key,
                              int64_t *seq)
{
    static const char next_sql[] = "SELECT COALESCE(MAX(seq), 0) + 1 FROM signals WHERE run_id = ?1";
    static const char sql[] =
        "INSERT INTO signals(run_id, seq, signal_name, correlation_id, payload_json,"
        " received_at_ms, received_by, delivery_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    *seq = 0;
    if (anvil_sql_query(s, next_sql, first_int, seq, "s", run_id) < 0)
        return -1;
    return anvil_sql_exec(s, sql, "sisssiss", run_id, *seq, signal_name, correlation_id,
                          payload_json, at_ms, received_by, delivery_key) < 0 ? -1 : 0;
}

typedef struct keyed_signal {
    int64_t *seq, *at_ms;
} keyed_signal;

static int keyed_signal_row(void *ctx, sqlite3_stmt *st)
{
    keyed_signal *k = ctx;
    *k->seq = anvil_sql_int(st, 0, 0);
    *k->at_ms = anvil_sql_int(st, 1, 0);
    return 1;
}

int anvil_store_signal_by_key(anvil_store *s, const char *run_id, const char *delivery_key,
                              int64_t *seq, int64_t *received_at_ms)
{
    static const char sql[] =
        "SELECT seq, received_at_ms FROM signals WHERE delivery_key = ?2 AND run_id = ?1";
    keyed_signal k = { seq, received_at_ms };
    *seq = *received_at_ms = 0;
    int n = anvil_sql_query(s, sql, keyed_signal_row, &k, "ss", run_id, delivery_key);
    return n < 0 ? -1 : n > 0;
}

typedef struct signal_hit {
    int64_t seq;
    char *payload;
    bool found;
} signal_hit;

static int signal_row(void *ctx, sqlite3_stmt *st)
{
    signal_hit *h = ctx;
    h->seq = anvil_sql_int(st, 0, 0);
    h->payload = anvil_sql_text(st, 1);
    h->found = true;
    return 1;
}

int anvil_store_signal_take(anvil_store *s, const char *run_id, const char *name,
                            const char *correlation, const char *consumer, char **payload_json)
{
    static const char find_sql[] =
        "SELECT seq, payload_json FROM signals WHERE run_id = ?1 AND consumed_by IS NULL"
        " AND (signal_name IS NULL OR signal_name = ?2)"
        " AND (?3 IS NULL OR correlation_id = ?3) ORDER BY seq LIMIT 1";
    static const char take_sql[] =
        "UPDATE signals SET consumed_by = ?3 WHERE run_id = ?1 AND seq = ?2";
    signal_hit h = { 0, NULL, false };
    *payload_json = NULL;
    if (anvil_sql_query(s, find_sql, signal_row, &h, "sss", run_id, name, correlation) < 0)
        return -1;
    if (!h.found)
        return 0;
    if (anvil_sql_exec(s, take_sql, "sis", run_id, h.seq, consumer) < 0) {
        free(h.payload);
        return -1;
    }
    *payload_json = h.payload;
    return 1;
}

/* ---- frames, events, hijack sessions ------------------------------------ */

int anvil_store_frame_insert(anvil_store *s, const char *run_id, int64_t frame_no,
                             int64_t at_ms, const char *tree_json, int64_t seq,
                             const char *workspace_ref)
{
    static const char sql[] =
        "INSERT INTO frames(run_id, frame_no, created_at_ms, tree_json, seq, workspace_ref)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    char *stored = anvil_frame_compact(tree_json, run_id, frame_no);
    int rc = anvil_sql_exec(s, sql, "siisis", run_id, frame_no, at_ms, stored ? stored : tree_json,
                            seq, workspace_ref);
    free(stored);
    return rc < 0 ? -1 : 0;
}

typedef struct frame_each {
    anvil_frame_record_fn fn;
    void *ctx;
    const char *run_id;
} frame_each;

static int each_frame(void *ctx, sqlite3_stmt *st)
{
    frame_each *e = ctx;
    const char *stored = (const char *)sqlite3_column_text(st, 2);
    anvil_frame_record r = {
        .frame_no = anvil_sql_int(st, 0, 0),
        .created_at_ms = anvil_sql_int(st, 1, 0),
    };
    char *tree = anvil_frame_expand(stored ? stored : "{}", e->run_id, r.frame_no);
    if (!tree)
        return -1;
    r.tree_json = tree;
    int rc = e->fn(e->ctx, &r);
    free(tree);
    return rc;
}

int anvil_store_frames_range(anvil_store *s, const char *run_id, int64_t after_no,
                             int64_t upto_no, int64_t limit, anvil_frame_record_fn fn, void *ctx)
{
    static const char sql[] =
        "SELECT frame_no, created_at_ms, tree_json FROM frames"
        " WHERE run_id = ?1 AND frame_no > ?2 AND frame_no <= ?3 ORDER BY frame_no LIMIT ?4";
    frame_each e = { fn, ctx, run_id };
    return anvil_sql_query(s, sql, each_frame, &e, "siii", run_id, after_no,
                           upto_no < 0 ? INT64_MAX : upto_no, limit > 0 ? limit : (int64_t)-1);
}

static int each_frame_header(void *ctx, sqlite3_stmt *st)
{
    frame_each *e = ctx;
    anvil_frame_record r = {
        .frame_no = anvil_sql_int(st, 0, 0),
        .created_at_ms = anvil_sql_int(st, 1, 0),
        .tree_json = NULL,
    };
    return e->fn(e->ctx, &r);
}

int anvil_store_frame_headers(anvil_store *s, const char *run_id, int64_t after_no, int64_t limit,
                              anvil_frame_record_fn fn, void *ctx)
{
    static const char sql[] =
        "SELECT frame_no, created_at_ms FROM frames"
        " WHERE run_id = ?1 AND frame_no > ?2 ORDER BY frame_no LIMIT ?3";
    frame_each e = { fn, ctx, run_id };
    return anvil_sql_query(s, sql, each_frame_header, &e, "sii", run_id, after_no,
                           limit > 0 ? limit : (int64_t)-1);
}

int anvil_store_event_insert(anvil_store *s, const char *run_id, int64_t seq, const char *event,
                             const char *payload_json, int64_t state_version, int64_t at_ms)
{
    static const char sql[] =
        "INSERT INTO events(run_id, seq, event, payload_json, state_version, created_at_ms, compact)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    char *stored = anvil_payload_compact(payload_json, run_id);
    int rc = anvil_sql_exec(s, sql, "sissiin", run_id, seq, event, stored ? stored : payload_json,
                            state_version, at_ms, stored ? (int64_t)1 : (int64_t)-1);
    free(stored);
    return rc < 0 ? -1 : 0;
}

typedef struct event_each {
    anvil_event_record_fn fn;
    void *ctx;
    const char *run_id;
} event_each;

static int each_event(void *ctx, sqlite3_stmt *st)
{
    event_each *e = ctx;
    anvil_event_record r = {
        .seq = anvil_sql_int(st, 0, 0),
        .event = (const char *)sqlite3_column_text(st, 1),
        .payload_json = (const char *)sqlite3_column_text(st, 2),
        .state_version = anvil_sql_int(st, 3, 0),
        .created_at_ms = anvil_sql_int(st, 4, 0),
    };
    if (!r.event)
        r.event = "";
    if (!r.payload_json)
        r.payload_json = "{}";
    char *payload = NULL;
    if (anvil_sql_int(st, 5, 0) == 1 && !(payload = anvil_payload_expand(r.payload_json, e->run_id)))
        return -1;
    if (payload)
        r.payload_json = payload;
    int rc = e->fn(e->ctx, &r);
    free(payload);
    return rc;
}

int anvil_store_events_range(anvil_store *s, const char *run_id, int64_t after_seq,
                             int64_t upto_seq, int64_t limit, anvil_event_record_fn fn, void *ctx)
{
    static const char sql[] =
        "SELECT seq, event, payload_json, state_version, created_at_ms, compact FROM events"
        " WHERE run_id = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq LIMIT ?4";
    event_each e = { fn, ctx, run_id };
    return anvil_sql_query(s, sql, each_event, &e, "siii", run_id, after_seq,
                           upto_seq < 0 ? INT64_MAX : upto_seq, limit > 0 ? limit : (int64_t)-1);
}

int anvil_store_events_max_state_version(anvil_store *s, int64_t *out)
{
    /* Events are appended with increasing state versions, so the newest
     * row holds the largest: one index step instead of a scan of every
     * event ever stored (MAX(state_version) has no index). A removed run
     * may have held the newest events; its deletion raised the floor in
     * store_meta to what they carried (store_retention.c). */
    static const char sql[] =
        "SELECT MAX(COALESCE((SELECT state_version FROM events ORDER BY rowid DESC LIMIT 1), 0),"
        " COALESCE((SELECT value FROM store_meta WHERE key = 'state_version_floor'), 0))";
    *out = 0;
    return anvil_sql_query(s, sql, first_int, out, NULL) < 0 ? -1 : 0;
}

int anvil_store_hijack_insert(anvil_store *s, const char *session_id, const char *run_id,
                              const char *user_id, const char *role, const char *token_id,
                              const char *options_json, int64_t at_ms)
{
    static const char sql[] =
        "INSERT INTO hijack_sessions(session_id, run_id, user_id, role, token_id, options_json,"
        " created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    return anvil_sql_exec(s, sql, "ssssssi", session_id, run_id, user_id, role, token_id,
                          options_json, at_ms) < 0 ? -1 : 0;
}
