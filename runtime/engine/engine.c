/*
 * runtime/engine/engine.c — the engine's lifecycle and its public operations:
 * loading workflows, recovering runs after a restart, launch, cancel,
 * resume, approval decisions and signals.
 *
 * Recovery is what makes `kill -9` safe: unfinished runs are reloaded from
 * their rows; a task recorded as running was interrupted, so its attempt is
 * marked so and the node is retried (or fails when out of retries); waits
 * keep waiting, and a waiting signal node first looks for a signal that was
 * stored but not yet delivered when the server stopped.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_metrics.h"
#include "anvil_contract.h"
#include "clock.h"
#include "engine.h"
#include "engine_delete.h"
#include "engine_load.h"
#include "engine_retention.h"
#include "engine_mirror.h"
#include "engine_record.h"
#include "engine_registry.h"
#include "engine_rewind.h"
#include "engine_run.h"
#include "engine_task.h"
#include "json_number.h"
#include "json_print.h"
#include "launch_input.h"
#include "log.h"
#include "scope.h"
#include "store_time_travel.h"
#include "workspace.h"

/* Every public entry point runs on the loop thread (engine_types_internal.h). */
#define ASSERT_ON_LOOP(e) assert(pthread_equal((e)->loop_thread, pthread_self()))

const anvil_workflow *anvil_engine_workflow(const anvil_engine *e, const char *name)
{
    ASSERT_ON_LOOP(e);
    return anvil_registry_workflow(e, name);
}

const char *anvil_engine_workspace_root(const anvil_engine *e)
{
    return e->workspace_root;
}

anvil_event_bus *anvil_engine_bus(anvil_engine *e)
{
    ASSERT_ON_LOOP(e);
    return &e->bus;
}

int64_t anvil_engine_state_version(const anvil_engine *e)
{
    ASSERT_ON_LOOP(e);
    return e->state_version;
}

anvil_store *anvil_engine_store(anvil_engine *e)
{
    ASSERT_ON_LOOP(e);
    return e->store;
}

/* ---- recovery ---------------------------------------------------------------- */

typedef struct run_list {
    run_rt **runs;
    size_t n;
} run_list;

static void collect(run_rt *r, void *ctx)
{
    run_list *l = ctx;
    l->runs[l->n++] = r;
}

/* Unfinished runs are driven again, except one a failed rewind left
 * needing attention: its workspace is not what its rows say, so it waits
 * for an operator's resumeRun. */
static int recover_unfinished(void *ctx, const anvil_run_record *rec)
{
    if (strcmp(rec->status, anvil_run_status_name(ANVIL_RUN_STATUS_NEEDS_ATTENTION)) == 0) {
        anvil_log_run(ANVIL_LOG_WARN, rec->run_id,
                      "run %s needs attention (a rewind failed halfway); resumeRun "
                      "drives it again", rec->run_id);
        return 0;
    }
    return anvil_run_load_register(ctx, rec);
}

static int recover(anvil_engine *e)
{
    if (anvil_store_runs_unfinished(e->store, recover_unfinished, e) < 0)
        return -1;
    /* Collect first, then drive: advancing may forget (free) a run. */
    size_t count = anvil_registry_count(e);
    run_list l = { NULL, 0 };
    if (count && !(l.runs = calloc(count, sizeof *l.runs)))
        return -1;
    anvil_registry_each(e, collect, &l);
    if (l.n)
        anvil_log(ANVIL_LOG_INFO, "recovering %zu unfinished run(s)", l.n);
    for (size_t i = 0; i < l.n; i++) {
        anvil_run_recover_interrupted(l.runs[i]);
        anvil_run_recover_signal_waits(l.runs[i]);
        anvil_run_advance(l.runs[i]);
    }
    free(l.runs);
    return 0;
}

/* ---- repair after a failed write ------------------------------------------------------ */

static int not_active(anvil_engine *e, const char *run_id, anvil_run_record *rec,
                      anvil_error *err);

/* A write of *rp failed, so its mirror is ahead of the database. Drop the
 * mirror and reload the run from its rows, as a restart would: attempts
 * the mirror had running are interrupted and run again, waits keep
 * waiting, and the run is driven on. Its tasks must have ended first
 * (Busy otherwise). *rp becomes the reloaded run, or NULL when the
 * database says it has ended. 0, or -1 with err set. */
static int reload_run(anvil_engine *e, run_rt **rp, anvil_error *err)
{
    run_rt *old = *rp;
    assert(old->broken && !old->advancing);
    if (old->running_tasks > 0)
        return anvil_error_set(err, ANVIL_ERR_BUSY,
                               "Run %s is recovering from a failed write; %d task(s) must end "
                               "first, retry shortly", old->rec.run_id, old->running_tasks);
    /* Read everything first: should any read fail, the broken mirror stays
     * and the repair timer tries again (dropping it would leave a run the
     * database calls running with nothing in memory to drive it). */
    anvil_run_record rec;
    if (not_active(e, old->rec.run_id, &rec, err) != 0) {
        if (err->code == ANVIL_ERR_RUN_NOT_FOUND) {
            /* Its launch was lost with its batch (store_txn.h): the run
             * never existed for anyone, and its caller was told so. */
            anvil_error_clear(err);
            anvil_log_run(ANVIL_LOG_INFO, old->rec.run_id,
                          "run %s: its launch was not recorded; dropped",
                          old->rec.run_id);
            anvil_registry_forget(e, old);
            *rp = NULL;
            return 0;
        }
        anvil_run_mark_broken(old);
        return -1;
    }
    anvil_run_status st = ANVIL_RUN_STATUS_RUNNING;
    bool ended = anvil_run_status_parse(rec.status, &st) && anvil_run_status_terminal(st);
    run_rt *fresh = NULL;
    bool no_workflow = false;
    if (!ended && !(fresh = anvil_run_load(e, &rec, &no_workflow)) && !no_workflow) {
        anvil_run_record_clear(&rec);
        anvil_run_mark_broken(old);
        return anvil_store_error(e->store, err, "reloading the run failed");
    }
    anvil_run_record_clear(&rec);
    char *run_id = strdup(old->rec.run_id);
    if (!run_id) {
        if (fresh)
            anvil_run_free(fresh);
        anvil_run_mark_broken(old);
        return anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    }
    anvil_registry_forget(e, old);
    *rp = NULL;
    if (fresh) {
        /* Cannot fail: the slot the old mirror held was just freed. */
        int added = anvil_registry_add(e, fresh);
        assert(added == 0);
        (void)added;
        anvil_log_run(ANVIL_LOG_INFO, run_id,
                      "run %s: reloaded from the database after a failed write",
                      run_id);
        anvil_run_recover_interrupted(fresh);
        anvil_run_recover_signal_waits(fresh);
        anvil_run_advance(fresh);
        *rp = anvil_registry_find(e, run_id);   /* advancing may have ended it */
    }
    free(run_id);
    return 0;
}

typedef struct broken_list {
    char **ids;
    size_t n, cap;
    bool oom;
} broken_list;

static void collect_broken(run_rt *r, void *ctx)
{
    broken_list *l = ctx;
    if (!r->broken)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **ids = realloc(l->ids, cap * sizeof *ids);
        if (!ids) {
            l->oom = true;
            return;
        }
        l->ids = ids;
        l->cap = cap;
    }
    if (!(l->ids[l->n] = strdup(r->rec.run_id)))
        l->oom = true;
    else
        l->n++;
}

/* The watchdog: no run whose write failed is left undriven. It reloads
 * every broken run whose tasks have ended (found again by id, since a
 * reload frees the old mirror), backing off while the cause (a full disk,
 * an I/O error) persists. */
static void on_repair(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    anvil_engine *e = arg;
    broken_list l = { 0 };
    anvil_registry_each(e, collect_broken, &l);
    bool again = l.oom;
    for (size_t i = 0; i < l.n; i++) {
        run_rt *r = anvil_registry_find(e, l.ids[i]);
        anvil_error err = { 0 };
        if (r && r->broken && reload_run(e, &r, &err) != 0)
            again = true;
        if (r && r->broken)
            again = true;
        anvil_error_clear(&err);
        free(l.ids[i]);
    }
    free(l.ids);
    if (!again) {
        e->repair_backoff_ms = ANVIL_ENGINE_REPAIR_FIRST_MS;
        return;
    }
    if (e->repair_backoff_ms < ANVIL_ENGINE_REPAIR_MAX_MS)
        e->repair_backoff_ms *= 2;
    struct timeval tv = { (time_t)(e->repair_backoff_ms / 1000),
                          (suseconds_t)((e->repair_backoff_ms % 1000) * 1000) };
    evtimer_add(e->repair, &tv);
}

/* The run a public operation acts on, reloaded first when a write of it
 * failed. 0 with *rp (NULL when not in memory), or -1 with err set. */
/* Busy while a rewind of the run is in flight: its rows and its workspace
 * are being put back, and nothing may act on it until that is done. */
static int not_rewinding(anvil_engine *e, const char *run_id, anvil_error *err)
{
    if (!anvil_registry_rewinding(e, run_id))
        return 0;
    anvil_error_set(err, ANVIL_ERR_BUSY, "A rewind of run %s is in flight; retry once it is done",
                    run_id);
    anvil_error_detail_int(err, "retryAfterMs", 500);
    return -1;
}

static int live_run(anvil_engine *e, const char *run_id, run_rt **rp, anvil_error *err)
{
    *rp = NULL;
    if (not_rewinding(e, run_id, err) != 0)
        return -1;
    *rp = anvil_registry_find(e, run_id);
    if (*rp && (*rp)->broken)
        return reload_run(e, rp, err);
    return 0;
}


/* ---- lifecycle ----------------------------------------------------------------- */

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    anvil_task_heartbeats(arg);
}

static char *workspace_root_for(const char *database)
{
    char *out = NULL;
    if (!database || !strcmp(database, ":memory:") || !*database) {
        const char *tmp = getenv("TMPDIR");
        if (asprintf(&out, "%s/anvil-workspaces-%d", tmp && *tmp ? tmp : "/tmp", (int)getpid()) < 0)
            return NULL;
        return out;
    }
    const char *slash = strrchr(database, '/');
    if (!slash)
        return strdup("workspaces");
    if (asprintf(&out, "%.*s/workspaces", (int)(slash - database), database) < 0)
        return NULL;
    return out;
}

int anvil_engine_new(struct event_base *base, anvil_store *store, const anvil_config *cfg,
                     anvil_engine **out, anvil_diags *diags, char *err, size_t errlen)
{
    *out = NULL;
    anvil_engine *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    e->base = base;
    e->loop_thread = pthread_self();
    e->store = store;
    e->cfg = cfg;
    e->queue_tail = &e->queue;
    e->durable_tail = &e->durable;
    e->batch_no = 1;   /* a new run's batch_no (0) is never the open batch's */
    e->rewind_wake[0] = e->rewind_wake[1] = -1;
    e->workspace_root = workspace_root_for(cfg->database);
    e->workflows = cfg->n_workflows ? calloc(cfg->n_workflows, sizeof *e->workflows) : NULL;
    if (!e->workspace_root || (cfg->n_workflows && !e->workflows)) {
        snprintf(err, errlen, "out of memory");
        anvil_engine_free(e);
        return -1;
    }
    int bad = 0;
    for (size_t i = 0; i < cfg->n_workflows; i++) {
        anvil_workflow *wf = NULL;
        if (anvil_workflow_load(cfg->workflows[i].file, &wf, diags) != 0) {
            bad++;
            continue;
        }
        char warning[1200];
        if (anvil_launch_input_schedule_warning(&cfg->workflows[i], wf, warning, sizeof warning))
            anvil_log(ANVIL_LOG_WARN, "%s", warning);
        e->workflows[e->n_workflows].name = strdup(cfg->workflows[i].name);
        e->workflows[e->n_workflows].wf = wf;
        if (!e->workflows[e->n_workflows].name) {
            anvil_workflow_free(wf);
            bad++;
            continue;
        }
        e->n_workflows++;
    }
    if (bad) {
        snprintf(err, errlen, "%d workflow file(s) have problems", bad);
        anvil_engine_free(e);
        return -1;
    }
    if (anvil_proc_module_init(base) != 0) {
        snprintf(err, errlen, "cannot watch child processes (SIGCHLD)");
        anvil_engine_free(e);
        return -1;
    }
    if (anvil_store_events_max_state_version(store, &e->state_version) != 0) {
        snprintf(err, errlen, "%s", anvil_store_errmsg(store));
        anvil_engine_free(e);
        return -1;
    }
    e->repair_backoff_ms = ANVIL_ENGINE_REPAIR_FIRST_MS;
    if (!(e->repair = evtimer_new(base, on_repair, e))) {
        snprintf(err, errlen, "cannot create the repair timer");
        anvil_engine_free(e);
        return -1;
    }
    int64_t hb = cfg->heartbeat_ms > 0 ? cfg->heartbeat_ms : 15000;
    e->heartbeat = event_new(base, -1, EV_PERSIST, on_heartbeat, e);
    struct timeval tv = { (time_t)(hb / 1000), (suseconds_t)((hb % 1000) * 1000) };
    if (!e->heartbeat || event_add(e->heartbeat, &tv) != 0) {
        snprintf(err, errlen, "cannot start the heartbeat timer");
        anvil_engine_free(e);
        return -1;
    }
    /* Before any run is driven, so a run id launched again cannot meet
     * them: the workspaces of runs removed just before a crash. */
    if (anvil_engine_finish_removals(e, ANVIL_ENGINE_REMOVALS_AT_START, err, errlen) < 0) {
        anvil_engine_free(e);
        return -1;
    }
    /* Before any run is driven: a rewind a crash cut short leaves its
     * workspace ahead of its rows. */
    if (anvil_rewind_recover(e, err, errlen) != 0) {
        anvil_engine_free(e);
        return -1;
    }
    if (recover(e) != 0) {
        snprintf(err, errlen, "recovering runs: %s", anvil_store_errmsg(store));
        anvil_engine_free(e);
        return -1;
    }
    if (anvil_retention_start(e, err, errlen) != 0) {
        anvil_engine_free(e);
        return -1;
    }
    *out = e;
    return 0;
}

void anvil_engine_free(anvil_engine *e)
{
    if (!e)
        return;
    ASSERT_ON_LOOP(e);
    /* Rewinds in flight finish first: they drive their runs again. */
    anvil_rewind_shutdown(e);
    anvil_retention_stop(e);
    /* Nothing may still wait on the engine when it is gone. */
    anvil_store_flush(e->store);
    if (e->heartbeat)
        event_free(e->heartbeat);
    if (e->repair)
        event_free(e->repair);
    /* Children die with the server; on the next start their attempts are
     * recorded as interrupted and re-run. */
    anvil_proc_module_shutdown();
    anvil_registry_clear(e);
    for (size_t i = 0; i < e->n_workflows; i++) {
        free(e->workflows[i].name);
        anvil_workflow_free(e->workflows[i].wf);
    }
    free(e->workflows);
    free(e->workspace_root);
    anvil_workspace_shutdown();
    anvil_events_clear(&e->bus);
    free(e);
}

/* ---- shutdown ------------------------------------------------------------------------ */

void anvil_engine_drain(anvil_engine *e)
{
    ASSERT_ON_LOOP(e);
    e->draining = true;
}

static void add_running(run_rt *r, void *ctx)
{
    *(size_t *)ctx += (size_t)r->running_tasks;
}

size_t anvil_engine_running_tasks(anvil_engine *e)
{
    ASSERT_ON_LOOP(e);
    size_t n = 0;
    anvil_registry_each(e, add_running, &n);
    return n;
}

static void interrupt_run(run_rt *r, void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i < r->wf->n_nodes; i++)
        anvil_task_interrupt(&r->nodes[i]);
}

void anvil_engine_interrupt_tasks(anvil_engine *e)
{
    ASSERT_ON_LOOP(e);
    assert(e->draining);
    anvil_registry_each(e, interrupt_run, NULL);
}

/* ---- launch ------------------------------------------------------------------------ */

/* run_ and a version-7 UUID's 32 hex digits: time first, so each new run's
 * rows go to the right edge of every index keyed by run_id (runs, nodes,
 * attempts, outputs, frames, events), where the pages are already cached,
 * instead of to a random leaf of each (bench/RESULTS.md, issue 12). */
static char *new_run_id(void)
{
    char uuid[37], *id = malloc(4 + 32 + 1);
    if (!id || anvil_uuid7(anvil_now_ms(), uuid) != 0) {
        free(id);
        return NULL;
    }
    char *p = id + 4;
    memcpy(id, "run_", 4);
    for (const char *u = uuid; *u; u++)
        if (*u != '-')
            *p++ = *u;
    *p = '\0';
    return id;
}

static char *json_text_or(const cJSON *j, const char *dflt)
{
    char *t = j ? anvil_json_print(j) : NULL;
    return t ? t : strdup(dflt);
}

int anvil_engine_launch(anvil_engine *e, const anvil_launch *l, char **run_id, bool *existing,
                        anvil_error *err)
{
    ASSERT_ON_LOOP(e);
    *run_id = NULL;
    *existing = false;
    const anvil_workflow *wf = anvil_engine_workflow(e, l->workflow);
    if (!wf)
        return anvil_error_set(err, ANVIL_ERR_INVALID_INPUT, "Unknown workflow: %s", l->workflow);
    if (l->input && !cJSON_IsObject(l->input))
        return anvil_error_set(err, ANVIL_ERR_INVALID_INPUT, "input must be an object");
    /* Before the idempotency lookup too: a key does not excuse bad input. */
    if (anvil_launch_input_check(wf, l->input, l->input_at, err) != 0)
        return -1;
    if (l->run_id && !anvil_run_id_valid(l->run_id))
        return anvil_error_set(err, ANVIL_ERR_INVALID_INPUT,
                               "options.runId \"%.80s\" must match ^[a-z0-9_-]{1,64}$", l->run_id);
    if (l->idempotency_key) {
        char *prior = NULL;
        int found = anvil_store_run_by_idempotency(e->store, l->workflow, l->idempotency_key, &prior);
        if (found < 0)
            return anvil_store_error(e->store, err, NULL);
        if (found == 1) {
            if (l->run_id && strcmp(l->run_id, prior) != 0) {
                anvil_error_set(err, ANVIL_ERR_INVALID_INPUT,
                                "idempotencyKey was already used for run %s", prior);
                free(prior);
                return -1;
            }
            *run_id = prior;
            *existing = true;
            return 0;
        }
    }
    char *id = l->run_id ? strdup(l->run_id) : new_run_id();
    if (!id)
        return anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    /* A mirror left by a launch whose batch was lost goes first. */
    run_rt *stale = anvil_registry_find(e, id);
    if (stale && stale->broken && !stale->advancing && reload_run(e, &stale, err) != 0) {
        free(id);
        return -1;
    }
    /* A generated id is new by construction (its INSERT would refuse a
     * duplicate anyway); one the caller chose may name an existing run. */
    anvil_run_record probe;
    int taken = l->run_id ? anvil_store_run_get(e->store, id, &probe) : 0;
    if (l->run_id)
        anvil_run_record_clear(&probe);
    if (taken != 0) {
        if (taken < 0)
            anvil_store_error(e->store, err, NULL);
        else
            anvil_error_set(err, ANVIL_ERR_INVALID_INPUT, "run %s already exists", id);
        free(id);
        return -1;
    }
    run_rt *r = anvil_run_new(e, wf);
    if (!r) {
        free(id);
        return anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    }
    cJSON *scopes = cJSON_CreateArray();
    for (size_t i = 0; scopes && i < l->n_scopes; i++)
        cJSON_AddItemToArray(scopes, cJSON_CreateString(l->scopes[i]));
    cJSON *opts = cJSON_CreateObject();
    if (opts && l->max_concurrency > 0)
        cJSON_AddNumberToObject(opts, "maxConcurrency", (double)l->max_concurrency);
    if (opts && l->tool_timeout_ms > 0)
        cJSON_AddNumberToObject(opts, "toolTimeoutMs", (double)l->tool_timeout_ms);
    if (opts && l->max_output_bytes > 0)
        cJSON_AddNumberToObject(opts, "maxOutputBytes", (double)l->max_output_bytes);
    int64_t now = anvil_now_ms();
    r->rec.run_id = id;
    r->rec.workflow = strdup(l->workflow);
    bool status_set = anvil_run_set_status(r, ANVIL_RUN_STATUS_RUNNING) == 0;
    r->rec.input_json = json_text_or(l->input, "{}");
    r->rec.options_json = json_text_or(opts, "{}");
    r->rec.owner_id = l->owner_id ? strdup(l->owner_id) : NULL;
    r->rec.triggered_by = strdup(l->triggered_by ? l->triggered_by : "gateway");
    r->rec.role = strdup(l->role ? l->role : "operator");
    r->rec.scopes_json = json_text_or(scopes, "[]");
    r->rec.token_id = l->token_id ? strdup(l->token_id) : NULL;
    r->rec.idempotency_key = l->idempotency_key ? strdup(l->idempotency_key) : NULL;
    r->rec.started_by_json = l->started_by ? anvil_json_print(l->started_by) : NULL;
    r->rec.created_at_ms = r->rec.updated_at_ms = now;
    r->rec.finished_at_ms = -1;
    cJSON_Delete(scopes);
    cJSON_Delete(opts);
    r->input = l->input ? cJSON_Duplicate(l->input, true) : cJSON_CreateObject();
    anvil_run_apply_options(r);
    if (!r->rec.workflow || !status_set || !r->rec.input_json || !r->rec.options_json ||
        !r->rec.triggered_by || !r->rec.role || !r->rec.scopes_json || !r->input ||
        (l->owner_id && !r->rec.owner_id) || (l->token_id && !r->rec.token_id) ||
        (l->idempotency_key && !r->rec.idempotency_key) ||
        (l->started_by && !r->rec.started_by_json)) {
        anvil_run_free(r);
        return anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    }

    /* One transaction: the run, every node as pending, frame 1, seq 1. */
    if (anvil_run_begin(r) != 0) {
        anvil_store_error(e->store, err, NULL);
        anvil_run_free(r);
        return -1;
    }
    bool ok = anvil_store_run_insert(e->store, &r->rec) == 0;
    if (ok)
        anvil_run_row_written(r);
    for (size_t i = 0; ok && i < wf->n_nodes; i++)
        ok = anvil_run_put_node(r, &r->nodes[i]) == 0;
    cJSON *p = ok ? cJSON_CreateObject() : NULL;
    if (p) {
        cJSON_AddStringToObject(p, "runId", r->rec.run_id);
        cJSON_AddStringToObject(p, "workflow", r->rec.workflow);
        cJSON_AddStringToObject(p, "triggeredBy", r->rec.triggered_by);
        ok = anvil_run_note(r, true, "run.started", p) == 0;
        if (ok && l->trigger_event) {
            cJSON *tp = l->trigger_payload ? cJSON_Duplicate(l->trigger_payload, true)
                                           : cJSON_CreateObject();
            if (tp && !cJSON_GetObjectItemCaseSensitive(tp, "runId"))
                cJSON_AddStringToObject(tp, "runId", r->rec.run_id);
            ok = tp && anvil_run_note(r, false, l->trigger_event, tp) == 0;
        }
    } else {
        ok = false;
    }
    /* Commits, then publishes run.started. */
    if (anvil_run_end(r, ok) != 0) {
        /* A unique-key race (the same idempotency key in flight) lands here. */
        anvil_store_error(e->store, err, "recording the run failed");
        anvil_run_free(r);
        return -1;
    }
    if (l->recorded)
        *l->recorded = true;
    if (anvil_registry_add(e, r) != 0) {
        anvil_run_free(r);
        return anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    }
    *run_id = strdup(r->rec.run_id);
    if (!*run_id)
        anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    anvil_run_advance(r);   /* may free r when the run ends at once */
    return *run_id ? 0 : -1;
}

/* ---- cancel, resume ------------------------------------------------------------------- */

static int not_active(anvil_engine *e, const char *run_id, anvil_run_record *rec, anvil_error *err)
{
    int found = anvil_store_run_get(e->store, run_id, rec);
    if (found < 0)
        return anvil_store_error(e->store, err, NULL);
    if (found == 0)
        return anvil_error_set(err, ANVIL_ERR_RUN_NOT_FOUND, "Run not found: %s", run_id);
    return 0;
}

/* One transaction: the run row as r now is (and a frame when `frame`) with
 * the event {runId} (plus the boolean `key` when not NULL). 0, or -1 and
 * the caller puts back what it changed in r. */
static int note_run_event(run_rt *r, bool frame, const char *event, const char *key, bool value)
{
    if (anvil_run_begin(r) != 0)
        return -1;
    cJSON *p = cJSON_CreateObject();
    if (p) {
        cJSON_AddStringToObject(p, "runId", r->rec.run_id);
        if (key)
            cJSON_AddBoolToObject(p, key, value);
    }
    return anvil_run_end(r, p && anvil_run_note(r, frame, event, p) == 0) != 0 ? -1 : 0;
}

int anvil_engine_cancel(anvil_engine *e, const char *run_id, anvil_error *err)
{
    ASSERT_ON_LOOP(e);
    run_rt *r = anvil_registry_find(e, run_id);
    if (r && r->broken && r->running_tasks > 0) {
        /* A broken run cannot record the cancellation, nor be reloaded
         * while its tasks run (one may never end by itself): stop them, so
         * the reload happens and the same call succeeds after it. */
        for (size_t i = 0; i < r->wf->n_nodes; i++)
            anvil_task_kill(&r->nodes[i]);
        return anvil_error_set(err, ANVIL_ERR_BUSY,
                               "Run %s is recovering from a failed write; its tasks are being "
                               "stopped, retry shortly", run_id);
    }
    if (live_run(e, run_id, &r, err) != 0)
        return -1;
    if (!r) {
        anvil_run_record rec;
        if (not_active(e, run_id, &rec, err) != 0)
            return -1;
        anvil_error_set(err, ANVIL_ERR_BUSY, "Run %s already ended (%s); there is nothing to cancel",
                        run_id, rec.status);
        anvil_run_record_clear(&rec);
        return -1;
    }
    if (r->rec.cancel_requested)
        return 0;
    /* "cancelling" is an acknowledgement: answer it only once recorded. A
     * run whose earlier write failed records nothing until resumeRun
     * reloads it. A rewound run held for resumeRun is let go: cancelling
     * needs the engine to drive its nodes to cancelled. */
    bool was_held = r->rec.held;
    r->rec.cancel_requested = true;
    r->rec.held = false;
    if (note_run_event(r, true, "run.cancelling", NULL, false) != 0) {
        r->rec.held = was_held;
        r->rec.cancel_requested = false;
        return anvil_store_error(e->store, err, "recording the cancellation failed");
    }
    for (size_t i = 0; i < r->wf->n_nodes; i++) {
        if (r->nodes[i].proc) {
            r->nodes[i].kill_to = ANVIL_NODE_STATE_CANCELLED;
            anvil_task_kill(&r->nodes[i]);
        }
    }
    anvil_run_advance(r);   /* ends the run now when no task was running */
    return 0;
}

int anvil_engine_pause(anvil_engine *e, const char *run_id, anvil_error *err)
{
    ASSERT_ON_LOOP(e);
    run_rt *r;
    if (live_run(e, run_id, &r, err) != 0)
        return -1;
    if (!r) {
        anvil_run_record rec;
        if (not_active(e, run_id, &rec, err) != 0)
            return -1;
        anvil_run_status st = ANVIL_RUN_STATUS_RUNNING;
        bool ended = anvil_run_status_parse(rec.status, &st) && anvil_run_status_terminal(st);
        anvil_error_set(err, ANVIL_ERR_BUSY, ended ? "Run %s already ended (%s); there is nothing to pause"
                                                   : "Run %s is not being driven (%s); resumeRun it first",
                        run_id, rec.status);
        anvil_run_record_clear(&rec);
        return -1;
    }
    if (r->rec.cancel_requested)
        return anvil_error_set(err, ANVIL_ERR_BUSY, "Run %s is being cancelled", run_id);
    if (r->rec.held)
        return 0;
    r->rec.held = true;
    if (note_run_event(r, false, "run.paused", NULL, false) != 0) {
        r->rec.held = false;
        return anvil_store_error(e->store, err, "recording the pause failed");
    }
    return 0;
}

/* resumeRun of a run a pause or a rewind holds: recorded (run.resumed
 * {afterRewind}) before anything starts. 0, or -1 (the run stays held;
 * when the write failed it is broken and reloaded as held). */
static int release_held(run_rt *r)
{
    char *cause = NULL;
    if (anvil_store_hold_event(r->eng->store, r->rec.run_id, &cause) < 0)
        return -1;
    bool after_rewind = !cause || strcmp(cause, "run.paused") != 0;
    free(cause);
    r->rec.held = false;
    if (note_run_event(r, false, "run.resumed", "afterRewind", after_rewind) != 0) {
        r->rec.held = true;
        return -1;
    }
    return 0;
}

int anvil_engine_resume(anvil_engine *e, const char *run_id, bool force, bool *terminal,
                        anvil_error *err)
{
    ASSERT_ON_LOOP(e);
    *terminal = false;
    if (not_rewinding(e, run_id, err) != 0)
        return -1;
    run_rt *r = anvil_registry_find(e, run_id);
    if (r) {
        /* A run whose write failed is reloaded and driven on (it may even
         * end inside the reload): that is what resuming it means. */
        if (r->broken)
            return reload_run(e, &r, err);
        if (r->rec.held && release_held(r) != 0)
            return anvil_store_error(e->store, err, "recording the resume failed");
        anvil_run_advance(r);
        return 0;
    }
    anvil_run_record rec;
    if (not_active(e, run_id, &rec, err) != 0)
        return -1;
    anvil_run_status status = ANVIL_RUN_STATUS_RUNNING;
    bool is_terminal = anvil_run_status_parse(rec.status, &status) && anvil_run_status_terminal(status);
    if (is_terminal && (!force || status == ANVIL_RUN_STATUS_FINISHED)) {
        *terminal = true;
        anvil_run_record_clear(&rec);
        return 0;
    }
    /* Not in memory: a non-terminal run whose workflow was missing at start,
     * or a failed/cancelled run reopened with force. */
    if (anvil_run_load_register(e, &rec) != 0) {
        anvil_run_record_clear(&rec);
        return anvil_store_error(e->store, err, "loading the run failed");
    }
    anvil_run_record_clear(&rec);
    r = anvil_registry_find(e, run_id);
    if (!r)
        return anvil_error_set(err, ANVIL_ERR_INTERNAL, "run %s has no registered workflow", run_id);
    bool *reopened = is_terminal ? calloc(r->wf->n_nodes ? r->wf->n_nodes : 1, sizeof *reopened) : NULL;
    if (is_terminal && !reopened)
        return anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    if (is_terminal) {
        for (size_t i = 0; i < r->wf->n_nodes; i++) {
            node_rt *n = &r->nodes[i];
            if (anvil_node_state_terminal(n->state) && n->state != ANVIL_NODE_STATE_FINISHED) {
                anvil_node_reopen(n);
                /* A reopened node's old row (e.g. a denial) must not read
                 * as its output while it runs or waits again. */
                cJSON_DeleteItemFromObjectCaseSensitive(r->outputs, n->def->id);
                reopened[i] = true;
            }
        }
        if (anvil_run_reopen(r) != 0 || anvil_run_begin(r) != 0) {
            free(reopened);
            return anvil_store_error(e->store, err, "reopening the run failed");
        }
        bool ok = true;
        for (size_t i = 0; ok && i < r->wf->n_nodes; i++)
            ok = anvil_run_put_node(r, &r->nodes[i]) == 0 &&
                 (!reopened[i] || anvil_store_output_delete(e->store, r->rec.run_id,
                                                            r->nodes[i].def->id, 0) == 0);
        free(reopened);
        reopened = NULL;
        cJSON *p = ok ? cJSON_CreateObject() : NULL;
        if (p) {
            cJSON_AddStringToObject(p, "runId", r->rec.run_id);
            cJSON_AddBoolToObject(p, "force", true);
        }
        if (anvil_run_end(r, p && anvil_run_note(r, true, "run.resumed", p) == 0) != 0)
            return anvil_store_error(e->store, err, "reopening the run failed");
    }
    anvil_run_recover_interrupted(r);
    anvil_run_recover_signal_waits(r);
    anvil_run_advance(r);
    return 0;
}

/* ---- approvals ------------------------------------------------------------------------- */

/* decisionSchema, minimal: type, enum, required and properties' types. */
static bool schema_type_ok(const cJSON *schema, const cJSON *v)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(schema, "type");
    if (!cJSON_IsString(t))
        return true;
    const char *s = t->valuestring;
    if (!strcmp(s, "object"))
        return cJSON_IsObject(v);
    if (!strcmp(s, "array"))
        return cJSON_IsArray(v);
    if (!strcmp(s, "string"))
        return cJSON_IsString(v);
    if (!strcmp(s, "boolean"))
        return cJSON_IsBool(v);
    if (!strcmp(s, "null"))
        return cJSON_IsNull(v);
    if (!strcmp(s, "number"))
        return cJSON_IsNumber(v);
    if (!strcmp(s, "integer"))
        return anvil_json_exact_int(v, NULL);
    return true;
}

static bool decision_valid(const cJSON *schema, const cJSON *v, char *why, size_t whylen)
{
    if (!schema)
        return true;
    if (!v) {
        snprintf(why, whylen, "decision.value is required by the approval's decisionSchema");
        return false;
    }
    if (!schema_type_ok(schema, v)) {
        snprintf(why, whylen, "decision.value does not have the type the decisionSchema requires");
        return false;
    }
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(schema, "enum");
    if (cJSON_IsArray(en)) {
        bool hit = false;
        for (const cJSON *x = en->child; x && !hit; x = x->next)
            hit = cJSON_Compare(x, v, true);
        if (!hit) {
            snprintf(why, whylen, "decision.value is not one of the decisionSchema's enum values");
            return false;
        }
    }
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(schema, "required");
    for (const cJSON *x = cJSON_IsArray(req) ? req->child : NULL; x; x = x->next) {
        if (cJSON_IsString(x) && !cJSON_GetObjectItemCaseSensitive(v, x->valuestring)) {
            snprintf(why, whylen, "decision.value.%s is required", x->valuestring);
            return false;
        }
    }
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    for (const cJSON *p = cJSON_IsObject(props) ? props->child : NULL; p; p = p->next) {
        const cJSON *pv = cJSON_GetObjectItemCaseSensitive(v, p->string);
        if (pv && !schema_type_ok(p, pv)) {
            snprintf(why, whylen, "decision.value.%s does not have the required type", p->string);
            return false;
        }
    }
    return true;
}

int anvil_engine_decide(anvil_engine *e, const anvil_decision *d, anvil_error *err)
{
    ASSERT_ON_LOOP(e);
    run_rt *r;
    if (live_run(e, d->run_id, &r, err) != 0)
        return -1;
    anvil_approval_record a;
    int found = anvil_store_approval_get(e->store, d->run_id, d->node_id, d->iteration, &a);
    if (found < 0)
        return anvil_store_error(e->store, err, NULL);
    if (!r) {
        anvil_run_record rec;
        if (not_active(e, d->run_id, &rec, err) != 0) {
            anvil_approval_record_clear(&a);
            return -1;
        }
        anvil_run_record_clear(&rec);
    }
    if (found == 1 && strcmp(a.status, "cancelled") == 0) {
        /* Withdrawn, not decided: its node was cancelled or skipped. */
        anvil_error_set(err, ANVIL_ERR_NODE_NOT_FOUND,
                        "Approval %s is no longer pending: its node was cancelled", d->node_id);
        anvil_approval_record_clear(&a);
        return -1;
    }
    if (found == 1 && strcmp(a.status, "requested") != 0) {
        anvil_error_set(err, ANVIL_ERR_ALREADY_DECIDED, "Approval for %s has already been decided (%s)",
                        d->node_id, a.status);
        anvil_error_detail_str(err, "runId", d->run_id);
        anvil_error_detail_str(err, "nodeId", d->node_id);
        anvil_error_detail_int(err, "iteration", d->iteration);
        anvil_error_detail_str(err, "status", a.status);
        anvil_approval_record_clear(&a);
        return -1;
    }
    anvil_approval_record_clear(&a);
    const anvil_workflow *wf = r ? r->wf : NULL;
    const anvil_wf_node *def = wf ? anvil_workflow_node(wf, d->node_id) : NULL;
    if (!r)
        return anvil_error_set(err, ANVIL_ERR_NODE_NOT_FOUND, "Run %s has ended; no approval is pending",
                               d->run_id);
    if (!def || def->kind != ANVIL_NODE_APPROVAL)
        return anvil_error_set(err, ANVIL_ERR_NODE_NOT_FOUND, "Run %s has no approval node %s",
                               d->run_id, d->node_id);
    if (d->iteration != 0)
        return anvil_error_set(err, ANVIL_ERR_ITERATION_NOT_FOUND,
                               "Approval %s has no iteration %lld (only 0)", d->node_id,
                               (long long)d->iteration);
    node_rt *n = &r->nodes[def->index];
    if (found == 0 || n->state != ANVIL_NODE_STATE_WAITING)
        return anvil_error_set(err, ANVIL_ERR_NODE_NOT_FOUND,
                               "Approval %s is not waiting for a decision (node is %s)", d->node_id,
                               anvil_node_state_name(n->state));
    if (def->n_allowed_users) {
        bool ok = false;
        for (size_t i = 0; !ok && d->user_id && i < def->n_allowed_users; i++)
            ok = !strcmp(def->allowed_users[i], d->user_id);
        if (!ok)
            return anvil_error_set(err, ANVIL_ERR_FORBIDDEN,
                                   "%s may not decide approval %s (allowedUsers)",
                                   d->user_id ? d->user_id : "this caller", d->node_id);
    }
    if (def->n_allowed_scopes) {
        bool ok = false;
        for (size_t i = 0; !ok && i < def->n_allowed_scopes; i++)
            ok = anvil_scope_allows(&anvil_scopes, d->scopes, d->n_scopes, def->allowed_scopes[i],
                                    "submitApproval", "submitApproval");
        if (!ok) {
            anvil_error_set(err, ANVIL_ERR_FORBIDDEN,
                            "The caller has none of the scopes approval %s allows", d->node_id);
            anvil_error_detail_str(err, "requiredScope", def->allowed_scopes[0]);
            return -1;
        }
    }
    char why[200];
    if (d->approved && !decision_valid(def->decision_schema, d->value, why, sizeof why))
        return anvil_error_set(err, ANVIL_ERR_INVALID_INPUT, "%s", why);

    int64_t now = anvil_now_ms();
    cJSON *row = cJSON_CreateObject();
    if (row) {
        cJSON_AddBoolToObject(row, "approved", d->approved);
        if (d->value)
            cJSON_AddItemToObject(row, "value", cJSON_Duplicate(d->value, true));
        if (d->note)
            cJSON_AddStringToObject(row, "note", d->note);
        if (d->user_id)
            cJSON_AddStringToObject(row, "decidedBy", d->user_id);
    }
    char *row_text = row ? anvil_json_print(row) : NULL;
    char *value_text = d->value ? anvil_json_print(d->value) : NULL;
    anvil_node_set_state(n, d->approved ? ANVIL_NODE_STATE_FINISHED : ANVIL_NODE_STATE_FAILED);
    n->finished_at_ms = now;
    free(n->error);
    n->error = NULL;
    if (!d->approved) {
        char msg[200];
        snprintf(msg, sizeof msg, "approval denied%s%s", d->user_id ? " by " : "",
                 d->user_id ? d->user_id : "");
        n->error = strdup(msg);
    }
    bool ok = row_text && (!d->value || value_text) && anvil_run_begin(r) == 0;
    if (ok) {
        ok = anvil_store_approval_decide(e->store, d->run_id, d->node_id, 0,
                                         d->approved ? "approved" : "denied", now, d->user_id,
                                         value_text, d->note) == 0 &&
             anvil_run_put_node(r, n) == 0 &&
             anvil_store_output_put(e->store, d->run_id, d->node_id, 0, row_text, now) == 0;
        cJSON *p1 = ok ? anvil_run_node_payload(r, n) : NULL;
        if (p1) {
            cJSON_AddBoolToObject(p1, "approved", d->approved);
            if (d->user_id)
                cJSON_AddStringToObject(p1, "decidedBy", d->user_id);
            if (d->note)
                cJSON_AddStringToObject(p1, "note", d->note);
            ok = anvil_run_note(r, false, "approval.decided", p1) == 0;
        } else {
            ok = false;
        }
        cJSON *p2 = ok ? anvil_run_node_payload(r, n) : NULL;
        if (p2 && n->error)
            cJSON_AddStringToObject(p2, "error", n->error);
        ok = p2 && anvil_run_note(r, true, d->approved ? "node.finished" : "node.failed", p2) == 0;
        ok = anvil_run_end(r, ok) == 0;
    }
    free(row_text);
    free(value_text);
    if (!ok) {
        cJSON_Delete(row);
        return anvil_store_error(e->store, err, "recording the decision failed");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(r->outputs, d->node_id);
    cJSON_AddItemToObject(r->outputs, d->node_id, row);
    anvil_run_advance(r);
    return 0;
}

/* ---- signals ------------------------------------------------------------------------------- */

static int signal_run(anvil_engine *e, const char *run_id, const char *name,
                      const char *correlation, const cJSON *payload, const char *received_by,
                      const char *once_key, anvil_signal_receipt *receipt, anvil_error *err)
{
    ASSERT_ON_LOOP(e);
    memset(receipt, 0, sizeof *receipt);
    run_rt *r;
    if (live_run(e, run_id, &r, err) != 0)
        return -1;
    if (!r) {
        anvil_run_record rec;
        if (not_active(e, run_id, &rec, err) != 0)
            return -1;
        anvil_run_record_clear(&rec);
    }
    if (once_key) {
        /* The loop is the only writer, so nothing can come between this
         * probe and the insert; the unique index backs it up. */
        int had = anvil_store_signal_by_key(e->store, run_id, once_key, &receipt->seq,
                                            &receipt->received_at_ms);
        if (had < 0)
            return anvil_store_error(e->store, err, NULL);
        if (had == 1) {
            /* Delivered then, or kept for a node (a reload takes it). */
            receipt->repeated = true;
            return 0;
        }
    }
    char *text = payload ? anvil_json_print(payload) : NULL;
    if (payload && !text)
        return anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    receipt->received_at_ms = anvil_now_ms();
    /* No correlation is stored as "" (the column is NOT NULL): a node
     * without a correlationKey takes it, one with a key does not. */
    int rc = anvil_store_signal_insert(e->store, run_id, name, correlation ? correlation : "", text,
                                       receipt->received_at_ms, received_by, once_key,
                                       &receipt->seq);
    free(text);
    if (rc != 0)
        return anvil_store_error(e->store, err, NULL);
    if (!r || r->rec.cancel_requested)
        return 0;   /* stored; an ended run keeps it for the record only */
    for (size_t i = 0; i < r->wf->n_nodes; i++) {
        node_rt *n = &r->nodes[i];
        if (n->def->kind != ANVIL_NODE_SIGNAL || n->state != ANVIL_NODE_STATE_WAITING)
            continue;
        if (name && strcmp(n->def->signal_name, name) != 0)
            continue;
        char *key;
        if (!anvil_run_correlation_key(r, n, &key))
            continue;
        int took = anvil_signal_take(r, n, key);
        free(key);
        if (took == 1)
            receipt->delivered = true;   /* recorded: the node finished with it */
        if (took != 0)
            break;
    }
    anvil_run_advance(r);
    return 0;
}

int anvil_engine_signal(anvil_engine *e, const char *run_id, const char *name,
                        const char *correlation, const cJSON *payload, const char *received_by,
                        anvil_signal_receipt *receipt, anvil_error *err)
{
    int rc = signal_run(e, run_id, name, correlation, payload, received_by, NULL, receipt, err);
    if (rc == 0)
        anvil_engine_metrics_signal();
    return rc;
}

int anvil_engine_signal_once(anvil_engine *e, const char *run_id, const char *name,
                             const char *correlation, const cJSON *payload,
                             const char *received_by, const char *key,
                             anvil_signal_receipt *receipt, anvil_error *err)
{
    assert(key);
    return signal_run(e, run_id, name, correlation, payload, received_by, key, receipt, err);
}

/* A signal node of r waiting now for `name` with a matching correlation. */
static bool waits_for(run_rt *r, const char *name, const char *correlation)
{
    for (size_t i = 0; i < r->wf->n_nodes; i++) {
        node_rt *n = &r->nodes[i];
        if (n->def->kind != ANVIL_NODE_SIGNAL || n->state != ANVIL_NODE_STATE_WAITING ||
            strcmp(n->def->signal_name, name) != 0)
            continue;
        if (!n->def->correlation_key)
            return true;
        if (!correlation)
            continue;
        char why[200];
        char *key = anvil_template_expand(n->def->correlation_key, ANVIL_TEMPLATE_TEXT, r->input,
                                          r->outputs, why, sizeof why);
        bool same = key && strcmp(key, correlation) == 0;
        free(key);
        if (same)
            return true;
    }
    return false;
}

void anvil_signal_deliveries_free(anvil_signal_delivery *d, size_t n)
{
    for (size_t i = 0; d && i < n; i++)
        free(d[i].run_id);
    free(d);
}

/* The runs anvil_engine_signal_waiting delivers to. */
typedef struct waiting_runs {
    const char *workflow, *name, *correlation;
    anvil_signal_delivery *d;
    size_t n, cap;
    bool oom;
} waiting_runs;

static void collect_waiting(run_rt *r, void *ctx)
{
    waiting_runs *w = ctx;
    if (w->oom || r->broken || r->rec.cancel_requested || strcmp(r->rec.workflow, w->workflow) != 0 ||
        !waits_for(r, w->name, w->correlation))
        return;
    if (w->n == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 4;
        anvil_signal_delivery *nd = realloc(w->d, ncap * sizeof *nd);
        if (!nd) {
            w->oom = true;
            return;
        }
        w->d = nd;
        w->cap = ncap;
    }
    memset(&w->d[w->n], 0, sizeof w->d[w->n]);
    w->d[w->n].run_id = strdup(r->rec.run_id);
    if (!w->d[w->n].run_id) {
        w->oom = true;
        return;
    }
    w->n++;
}

int anvil_engine_signal_waiting(anvil_engine *e, const char *workflow, const char *name,
                                const char *correlation, const cJSON *payload,
                                const char *received_by, const char *key,
                                anvil_signal_delivery **out, size_t *n_out, anvil_error *err)
{
    ASSERT_ON_LOOP(e);
    *out = NULL;
    *n_out = 0;
    /* Collect first: delivering advances a run, which may end it and take
     * it out of the registry while we would still be walking it. */
    waiting_runs w = { .workflow = workflow, .name = name, .correlation = correlation };
    anvil_registry_each(e, collect_waiting, &w);
    if (w.oom) {
        anvil_signal_deliveries_free(w.d, w.n);
        return anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    }
    anvil_signal_delivery *d = w.d;
    size_t n = w.n;
    size_t done = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (signal_run(e, d[i].run_id, name, correlation, payload, received_by, key,
                       &d[i].receipt, err) != 0) {
            rc = -1;
            break;
        }
        if (done != i) {
            anvil_signal_delivery t = d[done];
            d[done] = d[i];
            d[i] = t;
        }
        done++;
    }
    for (size_t i = done; i < n; i++) {
        free(d[i].run_id);
        d[i].run_id = NULL;
    }
    *out = d;
    *n_out = done;
    return rc;
}
