/*
 * runtime/store/store_time_travel.c — frames, latest attempts, a rewind's
 * truncation and the rewind audit trail (store_time_travel.h).
 */
#include <stdlib.h>
#include <string.h>

#include "store_compact.h"
#include "store_sql.h"
#include "store_time_travel.h"

void anvil_frame_row_clear(anvil_frame_row *f)
{
    free(f->tree_json);
    free(f->workspace_ref);
    memset(f, 0, sizeof *f);
}

typedef struct frame_read {
    anvil_frame_row *f;
    const char *run_id;
} frame_read;

static int frame_row(void *ctx, sqlite3_stmt *st)
{
    frame_read *x = ctx;
    anvil_frame_row *f = x->f;
    f->frame_no = anvil_sql_int(st, 0, 0);
    f->created_at_ms = anvil_sql_int(st, 1, 0);
    f->seq = anvil_sql_int(st, 2, -1);
    const char *stored = (const char *)sqlite3_column_text(st, 3);
    f->tree_json = stored ? anvil_frame_expand(stored, x->run_id, f->frame_no) : NULL;
    f->workspace_ref = anvil_sql_text(st, 4);
    return f->tree_json ? 1 : -1;
}

int anvil_store_frame_get(anvil_store *s, const char *run_id, int64_t frame_no,
                          anvil_frame_row *out)
{
    static const char sql[] =
        "SELECT frame_no, created_at_ms, seq, tree_json, workspace_ref FROM frames"
        " WHERE run_id = ?1 AND frame_no = ?2";
    memset(out, 0, sizeof *out);
    frame_read x = { out, run_id };
    int n = anvil_sql_query(s, sql, frame_row, &x, "si", run_id, frame_no);
    if (n < 0) {
        anvil_frame_row_clear(out);
        return -1;
    }
    return n > 0 ? 1 : 0;
}

typedef struct frame_ref {
    char *ref;
    bool recorded;
    bool oom;
} frame_ref;

static int frame_ref_row(void *ctx, sqlite3_stmt *st)
{
    frame_ref *f = ctx;
    /* Frames written since migration 5 always carry their event seq. */
    f->recorded = sqlite3_column_type(st, 0) != SQLITE_NULL;
    f->ref = anvil_sql_text(st, 1);
    f->oom = !f->ref && sqlite3_column_type(st, 1) != SQLITE_NULL;
    return 1;
}

int anvil_store_frame_ref(anvil_store *s, const char *run_id, int64_t frame_no, char **ref,
                          bool *recorded)
{
    static const char sql[] =
        "SELECT seq, workspace_ref FROM frames WHERE run_id = ?1 AND frame_no = ?2";
    frame_ref f = { 0 };
    *ref = NULL;
    *recorded = false;
    int n = anvil_sql_query(s, sql, frame_ref_row, &f, "si", run_id, frame_no);
    if (n > 0 && f.oom)
        return anvil_store_fail(s, NULL, 0, "out of memory reading frame %lld",
                                (long long)frame_no);
    if (n <= 0) {
        free(f.ref);
        return n < 0 ? -1 : 0;
    }
    *ref = f.ref;
    *recorded = f.recorded;
    return 1;
}

typedef struct latest {
    int64_t attempt;
    char *state, *commit_id;
} latest;

static int latest_row(void *ctx, sqlite3_stmt *st)
{
    latest *l = ctx;
    l->attempt = anvil_sql_int(st, 0, 0);
    l->state = anvil_sql_text(st, 1);
    l->commit_id = anvil_sql_text(st, 2);
    return l->state ? 1 : -1;
}

int anvil_store_attempt_latest(anvil_store *s, const char *run_id, const char *node_id,
                               int64_t iteration, int64_t *attempt, char **state,
                               char **commit_id)
{
    static const char sql[] =
        "SELECT attempt, state, commit_id FROM attempts"
        " WHERE run_id = ?1 AND node_id = ?2 AND iteration = ?3 ORDER BY attempt DESC LIMIT 1";
    latest l = { 0 };
    int n = anvil_sql_query(s, sql, latest_row, &l, "ssi", run_id, node_id, iteration);
    if (n <= 0) {
        free(l.state);
        free(l.commit_id);
        return n < 0 ? -1 : 0;
    }
    *attempt = l.attempt;
    *state = l.state;
    *commit_id = l.commit_id;
    return 1;
}

static int name_row(void *ctx, sqlite3_stmt *st)
{
    *(char **)ctx = anvil_sql_text(st, 0);
    return *(char **)ctx ? 1 : -1;
}

int anvil_store_event_name(anvil_store *s, const char *run_id, int64_t seq, char **name)
{
    static const char sql[] = "SELECT event FROM events WHERE run_id = ?1 AND seq = ?2";
    *name = NULL;
    int n = anvil_sql_query(s, sql, name_row, name, "si", run_id, seq);
    return n < 0 ? -1 : n > 0 ? 1 : 0;
}

int anvil_store_hold_event(anvil_store *s, const char *run_id, char **name)
{
    /* Walks the run's events back from the newest; a hold is recent. */
    static const char sql[] = "SELECT event FROM events WHERE run_id = ?1 AND event IN "
                              "('run.paused', 'run.time_travel_jumped') ORDER BY seq DESC LIMIT 1";
    *name = NULL;
    int n = anvil_sql_query(s, sql, name_row, name, "s", run_id);
    return n < 0 ? -1 : n > 0 ? 1 : 0;
}

/* ---- a rewind's truncation ---------------------------------------------------- */

int anvil_store_truncate_frames(anvil_store *s, const char *run_id, int64_t frame_no,
                                int64_t seq, int64_t *deleted)
{
    static const char frames_sql[] = "DELETE FROM frames WHERE run_id = ?1 AND frame_no > ?2";
    static const char events_sql[] = "DELETE FROM events WHERE run_id = ?1 AND seq > ?2";
    int n = anvil_sql_exec(s, frames_sql, "si", run_id, frame_no);
    if (n < 0 || anvil_sql_exec(s, events_sql, "si", run_id, seq) < 0)
        return -1;
    *deleted = n;
    return 0;
}

typedef struct removed_each {
    anvil_removed_attempt_fn fn;
    void *ctx;
    const char *node_id;
} removed_each;

static int removed_row(void *ctx, sqlite3_stmt *st)
{
    removed_each *e = ctx;
    anvil_removed_attempt a = {
        .node_id = e->node_id,
        .iteration = anvil_sql_int(st, 0, 0),
        .attempt = anvil_sql_int(st, 1, 0),
        .started_at_ms = anvil_sql_int(st, 2, 0),
        .state = (const char *)sqlite3_column_text(st, 3),
        .commit_id = (const char *)sqlite3_column_text(st, 4),
        .started_seq = anvil_sql_int(st, 5, 0),
    };
    if (!a.state)
        a.state = "unknown";
    return e->fn(e->ctx, &a) == 0 ? 0 : -1;
}

int anvil_store_truncate_attempts(anvil_store *s, const char *run_id, const char *node_id,
                                  int64_t iteration, int64_t keep, anvil_removed_attempt_fn fn,
                                  void *ctx)
{
    static const char list_sql[] =
        "SELECT iteration, attempt, started_at_ms, state, commit_id, started_seq FROM attempts"
        " WHERE run_id = ?1 AND node_id = ?2 AND iteration = ?3 AND attempt > ?4"
        " ORDER BY attempt";
    static const char delete_sql[] =
        "DELETE FROM attempts WHERE run_id = ?1 AND node_id = ?2 AND iteration = ?3"
        " AND attempt > ?4";
    removed_each e = { fn, ctx, node_id };
    if (fn && anvil_sql_query(s, list_sql, removed_row, &e, "ssii", run_id, node_id, iteration,
                              keep) < 0)
        return -1;
    return anvil_sql_exec(s, delete_sql, "ssii", run_id, node_id, iteration, keep) < 0 ? -1 : 0;
}

int anvil_store_approval_undecide(anvil_store *s, const char *run_id, const char *node_id,
                                  int64_t iteration)
{
    static const char sql[] =
        "UPDATE approvals SET status = 'requested', decided_at_ms = NULL, decided_by = NULL,"
        " value_json = NULL, note = NULL WHERE run_id = ?1 AND node_id = ?2 AND iteration = ?3";
    return anvil_sql_exec(s, sql, "ssi", run_id, node_id, iteration) < 0 ? -1 : 0;
}

int anvil_store_approval_delete(anvil_store *s, const char *run_id, const char *node_id,
                                int64_t iteration)
{
    static const char sql[] =
        "DELETE FROM approvals WHERE run_id = ?1 AND node_id = ?2 AND iteration = ?3";
    return anvil_sql_exec(s, sql, "ssi", run_id, node_id, iteration) < 0 ? -1 : 0;
}

int anvil_store_signals_release(anvil_store *s, const char *run_id, const char *node_id)
{
    static const char sql[] =
        "UPDATE signals SET consumed_by = NULL WHERE run_id = ?1 AND consumed_by = ?2";
    return anvil_sql_exec(s, sql, "ss", run_id, node_id) < 0 ? -1 : 0;
}

/* ---- the audit trail ------------------------------------------------------------ */

void anvil_audit_row_clear(anvil_audit_row *a)
{
    free(a->run_id);
    free(a->caller);
    free(a->role);
    free(a->result);
    free(a->code);
    free(a->message);
    free(a->workspace_before);
    free(a->workspace_after);
    memset(a, 0, sizeof *a);
}

static int id_row(void *ctx, sqlite3_stmt *st)
{
    *(int64_t *)ctx = anvil_sql_int(st, 0, 0);
    return 1;
}

int anvil_store_audit_insert(anvil_store *s, const anvil_audit_row *a, int64_t *audit_id)
{
    static const char sql[] =
        "INSERT INTO rewind_audit(run_id, caller, role, from_frame_no, to_frame_no, result, code,"
        " message, workspace_before, workspace_after, started_at_ms, finished_at_ms)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING audit_id";
    *audit_id = 0;
    int n = anvil_sql_query(s, sql, id_row, audit_id, "sssnissssiin", a->run_id, a->caller,
                            a->role, a->from_frame_no, a->to_frame_no, a->result, a->code,
                            a->message, a->workspace_before, a->workspace_after,
                            a->started_at_ms, a->finished_at_ms);
    return n == 1 ? 0 : -1;
}

int anvil_store_audit_settle(anvil_store *s, int64_t audit_id, const char *result,
                             const char *code, const char *message,
                             const char *workspace_after, int64_t at_ms)
{
    static const char sql[] =
        "UPDATE rewind_audit SET result = ?2, code = ?3, message = ?4, workspace_after = ?5,"
        " finished_at_ms = ?6 WHERE audit_id = ?1";
    int n = anvil_sql_exec(s, sql, "issssi", audit_id, result, code, message, workspace_after,
                           at_ms);
    if (n == 0)
        return anvil_store_fail(s, NULL, 0, "rewind audit row %lld vanished", (long long)audit_id);
    return n < 0 ? -1 : 0;
}

static int count_row(void *ctx, sqlite3_stmt *st)
{
    *(int64_t *)ctx = anvil_sql_int(st, 0, 0);
    return 1;
}

int anvil_store_audit_quota_used(anvil_store *s, const char *run_id, const char *caller,
                                 int64_t since_ms, int64_t *count)
{
    static const char sql[] =
        "SELECT count(*) FROM rewind_audit WHERE run_id = ?1 AND caller = ?2"
        " AND started_at_ms >= ?3 AND (code IS NULL OR code NOT IN ('Unauthorized', 'RateLimited'))";
    *count = 0;
    return anvil_sql_query(s, sql, count_row, count, "ssi", run_id, caller, since_ms) < 0 ? -1 : 0;
}

#define AUDIT_COLUMNS \
    "audit_id, run_id, caller, role, from_frame_no, to_frame_no, result, code, message," \
    " workspace_before, workspace_after, started_at_ms, finished_at_ms"

typedef struct audit_each {
    anvil_audit_row_fn fn;
    void *ctx;
} audit_each;

static int audit_row(void *ctx, sqlite3_stmt *st)
{
    audit_each *e = ctx;
    anvil_audit_row a = {
        .audit_id = anvil_sql_int(st, 0, 0),
        .run_id = anvil_sql_text(st, 1),
        .caller = anvil_sql_text(st, 2),
        .role = anvil_sql_text(st, 3),
        .from_frame_no = anvil_sql_int(st, 4, -1),
        .to_frame_no = anvil_sql_int(st, 5, 0),
        .result = anvil_sql_text(st, 6),
        .code = anvil_sql_text(st, 7),
        .message = anvil_sql_text(st, 8),
        .workspace_before = anvil_sql_text(st, 9),
        .workspace_after = anvil_sql_text(st, 10),
        .started_at_ms = anvil_sql_int(st, 11, 0),
        .finished_at_ms = anvil_sql_int(st, 12, -1),
    };
    int rc = (a.run_id && a.caller && a.role && a.result) ? e->fn(e->ctx, &a) : -1;
    anvil_audit_row_clear(&a);
    return rc == 0 ? 0 : -1;
}

int anvil_store_audit_open(anvil_store *s, anvil_audit_row_fn fn, void *ctx)
{
    /* The WHERE matches the partial index rewind_audit_open. */
    static const char sql[] =
        "SELECT " AUDIT_COLUMNS " FROM rewind_audit WHERE result = 'in_progress' ORDER BY audit_id";
    audit_each e = { fn, ctx };
    return anvil_sql_query(s, sql, audit_row, &e, "");
}

int anvil_store_audit_list(anvil_store *s, const char *run_id, int64_t limit,
                           anvil_audit_row_fn fn, void *ctx)
{
    static const char sql[] =
        "SELECT " AUDIT_COLUMNS " FROM rewind_audit WHERE run_id = ?1"
        " ORDER BY started_at_ms DESC, audit_id DESC LIMIT ?2";
    audit_each e = { fn, ctx };
    return anvil_sql_query(s, sql, audit_row, &e, "si", run_id, limit > 0 ? limit : (int64_t)-1);
}
