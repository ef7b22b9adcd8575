/*
 * runtime/store/store_txn.c — transactions and group commit (store_txn.h).
 */
#include <assert.h>
#include <stdlib.h>

#include "metrics.h"
#include "store_db.h"
#include "store_sql.h"
#include "store_txn.h"

struct anvil_store_waiter {
    anvil_store_durable_fn fn;
    void *ctx;
    struct anvil_store_waiter *next;
};

/* The statements are literals so store_sql.c prepares each once. */
static const char sql_savepoint[] = "SAVEPOINT anvil_change";
static const char sql_release[] = "RELEASE anvil_change";
static const char sql_undo[] = "ROLLBACK TO anvil_change";

/* Take the batch's callbacks and call them: the batch is closed first, so
 * a callback may begin the next change. */
static void finish_waiters(anvil_store *s, bool ok)
{
    struct anvil_store_waiter *w = s->waiters;
    s->waiters = NULL;
    s->waiters_tail = &s->waiters;
    while (w) {
        struct anvil_store_waiter *next = w->next;
        w->fn(w->ctx, ok);
        free(w);
        w = next;
    }
}

/* anvil_store_fail's hook, and after a failed undo. */
static void note_failure(anvil_store *s)
{
    /* After a full disk or an I/O error SQLite may roll the whole
     * transaction back by itself. In a batch that loses every change
     * released into it since it opened: their owners must hear it now,
     * before they build more changes on state the database no longer has
     * (a later statement would otherwise commit on its own). */
    if (!s->batch || !s->db || !sqlite3_get_autocommit(s->db))
        return;
    s->batch = false;
    s->batch_lost = s->txn_depth > 0;   /* the change in progress is gone too */
    finish_waiters(s, false);
}

int anvil_store_begin(anvil_store *s)
{
    if (s->txn_depth++ > 0)
        return 0;
    s->batch_lost = false;
    char msg[200];
    if (!s->batch_opened) {
        if (anvil_store_exec(s, "BEGIN IMMEDIATE", msg, sizeof msg) != 0) {
            s->txn_depth = 0;
            return anvil_store_fail(s, NULL, 0, "begin: %s", msg);
        }
        return 0;
    }
    if (!s->batch) {
        if (anvil_store_exec(s, "BEGIN IMMEDIATE", msg, sizeof msg) != 0) {
            s->txn_depth = 0;
            return anvil_store_fail(s, NULL, 0, "begin: %s", msg);
        }
        s->batch = true;
        s->batch_opened(s->batch_ctx);
    }
    if (anvil_sql_exec(s, sql_savepoint, NULL) < 0) {
        s->txn_depth = 0;
        return -1;
    }
    return 0;
}

/* docs/metrics.md: every COMMIT, a batch's or a plain transaction's. */
static anvil_histogram m_commit_time;
static anvil_counter m_commits, m_commit_failures, m_batch_changes;

void anvil_store_metrics_render(anvil_metrics_out *o)
{
    anvil_metrics_family(o, "anvil_store_commit_duration_seconds", "histogram",
                         "Time of a SQLite COMMIT (a group-commit batch or a plain transaction).");
    anvil_metrics_histogram(o, "anvil_store_commit_duration_seconds", NULL, &m_commit_time);
    const anvil_metric_value values[] = {
        { "anvil_store_commits_total", "counter",
          "SQLite COMMITs that succeeded.",
          (double)anvil_counter_get(&m_commits) },
        { "anvil_store_commit_failures_total", "counter",
          "SQLite COMMITs that failed (their changes were lost, and said so).",
          (double)anvil_counter_get(&m_commit_failures) },
        { "anvil_store_batched_changes_total", "counter",
          "Changes released into a group-commit batch.",
          (double)anvil_counter_get(&m_batch_changes) },
    };
    anvil_metrics_values(o, values, sizeof values / sizeof values[0]);
}

static bool timed_commit(anvil_store *s, char *msg, size_t msglen)
{
    int64_t t0 = anvil_metrics_now_us();
    bool ok = anvil_store_exec(s, "COMMIT", msg, msglen) == 0;
    anvil_histogram_observe(&m_commit_time, anvil_metrics_now_us() - t0);
    anvil_counter_inc(ok ? &m_commits : &m_commit_failures);
    return ok;
}

int anvil_store_commit(anvil_store *s)
{
    if (s->txn_depth <= 0)
        return anvil_store_fail(s, NULL, 0, "commit without begin");
    if (--s->txn_depth > 0)
        return 0;
    char msg[200];
    if (!s->batch_opened) {
        if (!timed_commit(s, msg, sizeof msg)) {
            anvil_store_fail(s, NULL, 0, "commit: %s", msg);
            anvil_store_rollback_quietly(s);
            return -1;
        }
        anvil_store_recovered(s);
        return 0;
    }
    if (s->batch_lost || !s->batch) {
        s->batch_lost = false;
        return anvil_store_fail(s, NULL, 0, "the change was lost with its batch");
    }
    if (anvil_sql_exec(s, sql_release, NULL) < 0) {
        s->txn_depth = 1;
        anvil_store_rollback(s);
        return -1;
    }
    anvil_counter_inc(&m_batch_changes);
    return 0;
}

void anvil_store_rollback(anvil_store *s)
{
    if (s->txn_depth <= 0)
        return;
    s->txn_depth = 0;
    s->batch_lost = false;
    if (!s->batch_opened) {
        anvil_store_rollback_quietly(s);
        return;
    }
    if (!s->batch)
        return;   /* lost already, with the whole batch */
    /* Keep the failure that explains the rollback: these two must not
     * replace its message. */
    if (sqlite3_exec(s->db, sql_undo, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(s->db, sql_release, NULL, NULL, NULL) != SQLITE_OK)
        note_failure(s);
}

void anvil_store_group_commit(anvil_store *s, void (*opened)(void *ctx), void *ctx)
{
    assert(s->txn_depth == 0 && !s->batch);
    s->batch_opened = opened;
    s->batch_ctx = ctx;
    s->after_failure = note_failure;
    s->waiters_tail = &s->waiters;
}

bool anvil_store_batch_open(const anvil_store *s)
{
    return s->batch;
}

int anvil_store_when_durable(anvil_store *s, anvil_store_durable_fn fn, void *ctx)
{
    if (!s->batch)
        return -1;
    struct anvil_store_waiter *w = malloc(sizeof *w);
    if (!w)
        return -1;
    w->fn = fn;
    w->ctx = ctx;
    w->next = NULL;
    *s->waiters_tail = w;
    s->waiters_tail = &w->next;
    return 0;
}

int anvil_store_flush(anvil_store *s)
{
    assert(s->txn_depth == 0);
    if (!s->batch)
        return 0;
    s->batch = false;
    char msg[200];
    bool ok = timed_commit(s, msg, sizeof msg);
    if (ok) {
        anvil_store_recovered(s);
    } else {
        anvil_store_fail(s, NULL, 0, "commit: %s", msg);
        anvil_store_rollback_quietly(s);
    }
    finish_waiters(s, ok);
    return ok ? 0 : -1;
}
