/*
 * runtime/engine/engine_delete.c — deleteRun: which runs may be removed,
 * the removal, the run.deleted notification and the workspace files
 * (engine_delete.h). The SQL is store_retention.c's.
 */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anvil_statuses.h"
#include "clock.h"
#include "engine_delete.h"
#include "engine_registry.h"
#include "log.h"
#include "store_retention.h"
#include "store_runs.h"
#include "workspace.h"

#define ASSERT_ON_LOOP(e) assert(pthread_equal((e)->loop_thread, pthread_self()))

/* A run may be removed once it has ended and nothing holds it: not a
 * rewind, not the registry (a run there is still driven, or its end is
 * still being recorded). 0, or -1 with RunNotFound / Busy / a store error. */
static int removable(anvil_engine *e, const char *run_id, anvil_error *err)
{
    if (anvil_registry_rewinding(e, run_id))
        return anvil_error_set(err, ANVIL_ERR_BUSY, "Run %s is being rewound; retry when the rewind is done",
                               run_id);
    anvil_run_record rec;
    int found = anvil_store_run_get(e->store, run_id, &rec);
    if (found < 0)
        return anvil_store_error(e->store, err, "reading the run failed");
    if (found == 0)
        return anvil_error_set(err, ANVIL_ERR_RUN_NOT_FOUND, "Run not found: %s", run_id);
    anvil_run_status st = ANVIL_RUN_STATUS_RUNNING;
    bool ended = anvil_run_status_parse(rec.status, &st) && anvil_run_status_terminal(st);
    int rc = 0;
    if (!ended || anvil_registry_find(e, run_id))
        rc = anvil_error_set(err, ANVIL_ERR_BUSY, "Run %s has not ended (%s); cancel it first",
                             run_id, rec.status);
    anvil_run_record_clear(&rec);
    return rc;
}

/* Streams on the run learn it is gone. The notification takes the state
 * version the removal recorded as its floor; it has no run seq. */
static void publish_deleted(anvil_engine *e, const char *run_id, int64_t sv, int64_t now)
{
    cJSON *p = cJSON_CreateObject();
    if (!p || !cJSON_AddStringToObject(p, "runId", run_id)) {
        /* Streams on the run then stay open and quiet; the run is still gone. */
        anvil_log(ANVIL_LOG_ERROR, "deleteRun %s: out of memory notifying streams", run_id);
        cJSON_Delete(p);
        return;
    }
    anvil_event ev = { run_id, 0, ANVIL_EVENT_RUN_DELETED, p, sv, now };
    anvil_events_publish(&e->bus, &ev);
    cJSON_Delete(p);
}

/* Remove the run's directory and repository, then its queue row. 0, or -1
 * (logged; the row stays, so a later pass tries again). */
static int remove_files(anvil_engine *e, const char *run_id)
{
    char err[512] = "";
    char *dir = anvil_workspace_dir(e->workspace_root, run_id);
    char *gitdir = anvil_workspace_gitdir(e->workspace_root, run_id);
    int rc = -1;
    if (!dir || !gitdir)
        snprintf(err, sizeof err, "out of memory");
    else if (anvil_workspace_remove(dir, err, sizeof err) == 0 &&
             anvil_workspace_remove(gitdir, err, sizeof err) == 0)
        rc = anvil_store_workspace_removal_done(e->store, run_id);
    if (rc != 0 && !err[0])
        snprintf(err, sizeof err, "%s", anvil_store_errmsg(e->store));
    free(dir);
    free(gitdir);
    if (rc != 0)
        anvil_log_run(ANVIL_LOG_WARN, run_id,
                      "run %s: its workspace stays queued for removal: %s", run_id, err);
    return rc;
}

int anvil_engine_delete_run(anvil_engine *e, const char *run_id, anvil_error *err)
{
    ASSERT_ON_LOOP(e);
    assert(!e->in_txn);
    if (removable(e, run_id, err) != 0)
        return -1;
    int64_t now = anvil_now_ms();
    int64_t sv = e->state_version + 1;
    int rc = anvil_store_run_delete(e->store, run_id, sv, now);
    if (rc < 0)
        return anvil_store_error(e->store, err, "deleting the run failed");
    if (rc == 0)
        return anvil_error_set(err, ANVIL_ERR_RUN_NOT_FOUND, "Run not found: %s", run_id);
    /* Streams hear of it, and its files go, only once the removal is
     * durable (group commit, store_txn.h). */
    if (anvil_store_flush(e->store) != 0)
        return anvil_store_error(e->store, err, "deleting the run failed");
    e->state_version = sv;
    anvil_log_run(ANVIL_LOG_INFO, run_id, "run %s deleted", run_id);
    publish_deleted(e, run_id, sv, now);
    (void)remove_files(e, run_id);
    return 0;
}

/* The queue is read first and acted on after: removing a row while its
 * SELECT still steps would be undefined for the cached statement. */
typedef struct removal_list {
    char **ids;
    size_t n, cap;
    bool oom;
} removal_list;

static int collect(void *ctx, const char *run_id)
{
    removal_list *l = ctx;
    char *id = l->n < l->cap ? strdup(run_id) : NULL;
    if (!id) {
        l->oom = true;
        return 1;
    }
    l->ids[l->n++] = id;
    return 0;
}

/* A queued removal whose run id was launched again since (the files
 * failed to go, then someone reused the id) now names the new run's
 * workspace: only the row goes. */
static int finish_one(anvil_engine *e, const char *run_id)
{
    anvil_run_record rec;
    int found = anvil_store_run_get(e->store, run_id, &rec);
    if (found < 0) {
        anvil_log_run(ANVIL_LOG_WARN, run_id,
                      "run %s: its workspace stays queued for removal: %s", run_id,
                      anvil_store_errmsg(e->store));
        return -1;
    }
    if (found == 0)
        return remove_files(e, run_id);
    anvil_run_record_clear(&rec);
    anvil_log_run(ANVIL_LOG_WARN, run_id,
                  "run %s exists again; its old workspace is left to it", run_id);
    return anvil_store_workspace_removal_done(e->store, run_id);
}

int anvil_engine_finish_removals(anvil_engine *e, int64_t limit, char *err, size_t errlen)
{
    ASSERT_ON_LOOP(e);
    if (limit <= 0)
        return 0;
    removal_list l = { .cap = (size_t)limit };
    if (!(l.ids = calloc(l.cap, sizeof *l.ids))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int done = 0;
    if (anvil_store_workspace_removals(e->store, limit, collect, &l) < 0) {
        snprintf(err, errlen, "reading the workspace removals: %s", anvil_store_errmsg(e->store));
        done = -1;
    }
    for (size_t i = 0; i < l.n; i++) {
        if (done >= 0 && finish_one(e, l.ids[i]) == 0)
            done++;
        free(l.ids[i]);
    }
    free(l.ids);
    if (done >= 0 && l.oom) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return done;
}
