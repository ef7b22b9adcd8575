/*
 * runtime/engine/engine_retention.c — the retention timer
 * (engine_retention.h): which runs a tick removes, and the vacuum after.
 */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "engine_delete.h"
#include "engine_registry.h"
#include "engine_retention.h"
#include "log.h"
#include "store_retention.h"
#include "store_txn.h"

#define ASSERT_ON_LOOP(e) assert(pthread_equal((e)->loop_thread, pthread_self()))

/* Remove the runs of ids (freeing them all) until the tick's deadline,
 * adding to *removed. A run that is Busy (still held) is skipped. false
 * when the tick must stop: the store failed or the deadline passed (the
 * next tick goes on). */
static bool remove_ids(anvil_engine *e, char **ids, size_t n, int64_t deadline, int *removed)
{
    bool go_on = true;
    for (size_t i = 0; i < n; i++) {
        anvil_error err;
        memset(&err, 0, sizeof err);
        if (go_on && anvil_mono_ms() >= deadline)
            go_on = false;
        else if (go_on && anvil_engine_delete_run(e, ids[i], &err) == 0)
            (*removed)++;
        else if (go_on && err.code != ANVIL_ERR_BUSY && err.code != ANVIL_ERR_RUN_NOT_FOUND) {
            anvil_log(ANVIL_LOG_WARN, "retention: run %s stays for now: %s", ids[i],
                      err.message ? err.message : "unknown error");
            go_on = false;
        }
        anvil_error_clear(&err);
        free(ids[i]);
    }
    return go_on;
}

/* One workflow's share of a tick: by age, then by count, within *budget
 * and before the deadline, adding to *removed. false when the tick must
 * stop. */
static bool apply_workflow(anvil_engine *e, const char *workflow, int64_t now, int64_t deadline,
                           int64_t *budget, int *removed)
{
    anvil_retention_limits l = anvil_retention_for(&e->cfg->retention, workflow);
    char *ids[ANVIL_RETENTION_BATCH];
    size_t n = 0;
    for (int pass = 0; pass < 2 && *budget > 0; pass++) {
        int rc = 0;
        if (pass == 0 && l.max_age_ms > 0)
            rc = anvil_store_runs_ended_before(e->store, workflow, now - l.max_age_ms, *budget, ids, &n);
        else if (pass == 1 && l.max_runs > 0)
            rc = anvil_store_runs_ended_beyond(e->store, workflow, l.max_runs, *budget, ids, &n);
        else
            continue;
        if (rc != 0) {
            anvil_log(ANVIL_LOG_WARN, "retention: reading the runs of %s: %s", workflow,
                      anvil_store_errmsg(e->store));
            return false;
        }
        *budget -= (int64_t)n;
        if (!remove_ids(e, ids, n, deadline, removed))
            return false;
    }
    return true;
}

static void vacuum(anvil_engine *e)
{
    /* Pages go back to the file outside any batch (store_txn.h). */
    if (anvil_store_flush(e->store) != 0)
        return;
    int on = anvil_store_incremental_vacuum_on(e->store);
    if (on == 1 && anvil_store_incremental_vacuum(e->store, ANVIL_RETENTION_VACUUM_PAGES) != 0)
        anvil_log(ANVIL_LOG_WARN, "retention: %s", anvil_store_errmsg(e->store));
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    anvil_engine *e = arg;
    ASSERT_ON_LOOP(e);
    char err[256];
    if (anvil_engine_finish_removals(e, 8, err, sizeof err) < 0)
        anvil_log(ANVIL_LOG_WARN, "retention: %s", err);
    size_t n = e->cfg->n_workflows;
    int64_t budget = ANVIL_RETENTION_BATCH, now = anvil_now_ms();
    int64_t deadline = anvil_mono_ms() + ANVIL_RETENTION_TICK_WORK_MS;
    int removed = 0;
    /* Start one workflow further each tick, so a large backlog in one
     * cannot starve the others. */
    for (size_t k = 0; k < n && budget > 0; k++) {
        const char *name = e->cfg->workflows[(e->retention_next + k) % n].name;
        if (name && !apply_workflow(e, name, now, deadline, &budget, &removed))
            break;
    }
    if (n)
        e->retention_next = (e->retention_next + 1) % n;
    if (removed > 0) {
        anvil_log(ANVIL_LOG_INFO, "retention: removed %d run(s)", removed);
        vacuum(e);
    }
}

/* Existing databases were created without incremental vacuum; turning it
 * on rewrites the file once. */
static void ensure_vacuum_mode(anvil_engine *e)
{
    /* VACUUM cannot run inside a transaction: commit recovery's changes. */
    if (anvil_store_flush(e->store) != 0)
        return;
    int on = anvil_store_incremental_vacuum_on(e->store);
    if (on != 0)
        return;
    char err[256];
    int64_t t0 = anvil_mono_ms();
    anvil_log(ANVIL_LOG_INFO, "retention: enabling incremental vacuum (a one-time VACUUM of the database)");
    if (anvil_store_enable_incremental_vacuum(e->store, err, sizeof err) != 0)
        anvil_log(ANVIL_LOG_WARN, "retention: incremental vacuum stays off: %s", err);
    else
        anvil_log(ANVIL_LOG_INFO, "retention: incremental vacuum on (%lld ms)",
                  (long long)(anvil_mono_ms() - t0));
}

int anvil_retention_start(anvil_engine *e, char *err, size_t errlen)
{
    ASSERT_ON_LOOP(e);
    if (!e->cfg->retention.enabled)
        return 0;
    ensure_vacuum_mode(e);
    e->retention = event_new(e->base, -1, EV_PERSIST, on_tick, e);
    struct timeval tv = { ANVIL_RETENTION_TICK_MS / 1000, (ANVIL_RETENTION_TICK_MS % 1000) * 1000 };
    if (!e->retention || event_add(e->retention, &tv) != 0) {
        snprintf(err, errlen, "cannot start the retention timer");
        return -1;
    }
    return 0;
}

void anvil_retention_stop(anvil_engine *e)
{
    if (e->retention)
        event_free(e->retention);
    e->retention = NULL;
}
