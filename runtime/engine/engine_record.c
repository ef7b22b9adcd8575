/*
 * runtime/engine/engine_record.c — recording a run's changes
 * (engine_record.h): the transaction around each change, the run row with
 * its derived status, frames, events and their publication after commit.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "engine_metrics.h"
#include "clock.h"
#include "engine_mirror.h"
#include "engine_record.h"
#include "engine_registry.h"
#include "json_print.h"
#include "log.h"
#include "store_runs.h"

static const char *kind_name(anvil_node_kind k)
{
    switch (k) {
    case ANVIL_NODE_SEQUENCE: return "sequence";
    case ANVIL_NODE_PARALLEL: return "parallel";
    case ANVIL_NODE_TASK: return "task";
    case ANVIL_NODE_APPROVAL: return "approval";
    case ANVIL_NODE_SIGNAL: return "signal";
    }
    return "node";
}

/* ---- the run's status, from its node states -------------------------------- */

/* Why a failed run failed, for getRun and run.completed: the first node
 * (in workflow order) that failed on its own, i.e. not a sequence or
 * parallel failing because a child did. NULL when out of memory. */
static char *failure_reason(const run_rt *r)
{
    const node_rt *culprit = NULL;
    for (size_t i = 0; i < r->wf->n_nodes && !culprit; i++) {
        const node_rt *n = &r->nodes[i];
        if (n->state == ANVIL_NODE_STATE_FAILED && n->def->kind != ANVIL_NODE_SEQUENCE &&
            n->def->kind != ANVIL_NODE_PARALLEL)
            culprit = n;
    }
    if (!culprit)
        culprit = &r->nodes[r->wf->root->index];
    char msg[512];
    if (culprit->error)
        snprintf(msg, sizeof msg, "node %s failed: %s", culprit->def->id, culprit->error);
    else
        snprintf(msg, sizeof msg, "node %s failed", culprit->def->id);
    return strdup(msg);
}

static void derive_status(run_rt *r)
{
    if (anvil_run_ended(r))
        return;
    anvil_node_state root = r->nodes[r->wf->root->index].state;
    anvil_run_status st = ANVIL_RUN_STATUS_RUNNING;
    if (r->rec.cancel_requested) {
        /* Cancelling: the run ends only once every node has stopped (the
         * root is cancelled last); until then it keeps its status. */
        if (!anvil_node_state_terminal(root))
            return;
        st = ANVIL_RUN_STATUS_CANCELLED;
    } else if (root == ANVIL_NODE_STATE_FINISHED) {
        st = ANVIL_RUN_STATUS_FINISHED;
    } else if (root == ANVIL_NODE_STATE_FAILED || root == ANVIL_NODE_STATE_SKIPPED) {
        st = ANVIL_RUN_STATUS_FAILED;
    } else if (root == ANVIL_NODE_STATE_CANCELLED) {
        st = ANVIL_RUN_STATUS_CANCELLED;
    } else if (r->running_tasks == 0) {
        bool approval = false, signal = false;
        for (size_t i = 0; i < r->wf->n_nodes; i++) {
            if (r->nodes[i].state != ANVIL_NODE_STATE_WAITING)
                continue;
            if (r->nodes[i].def->kind == ANVIL_NODE_APPROVAL)
                approval = true;
            else if (r->nodes[i].def->kind == ANVIL_NODE_SIGNAL)
                signal = true;
        }
        st = approval ? ANVIL_RUN_STATUS_WAITING_APPROVAL
           : signal ? ANVIL_RUN_STATUS_WAITING_EVENT : ANVIL_RUN_STATUS_RUNNING;
    }
    anvil_run_set_status(r, st);
    if (st == ANVIL_RUN_STATUS_FAILED && !r->rec.error)
        r->rec.error = failure_reason(r);
}

/* ---- frames ---------------------------------------------------------------- */

static cJSON *tree_json(run_rt *r, const anvil_wf_node *def)
{
    const node_rt *n = &r->nodes[def->index];
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "id", def->id);
    cJSON_AddStringToObject(o, "kind", kind_name(def->kind));
    cJSON_AddStringToObject(o, "state", anvil_node_state_name(n->state));
    if (def->kind == ANVIL_NODE_TASK)
        cJSON_AddNumberToObject(o, "attempts", (double)n->attempts);
    if (n->error)
        cJSON_AddStringToObject(o, "error", n->error);
    if (def->n_children) {
        cJSON *kids = cJSON_AddArrayToObject(o, "children");
        for (size_t i = 0; kids && i < def->n_children; i++) {
            cJSON *c = tree_json(r, def->children[i]);
            if (!c || !cJSON_AddItemToArray(kids, c)) {
                cJSON_Delete(c);
                cJSON_Delete(o);
                return NULL;
            }
        }
    }
    return o;
}

static char *frame_text(run_rt *r)
{
    cJSON *f = cJSON_CreateObject();
    cJSON *root = tree_json(r, r->wf->root);
    char *text = NULL;
    if (f && root) {
        cJSON_AddNumberToObject(f, "frameNo", (double)r->rec.frame_no);
        cJSON_AddStringToObject(f, "runId", r->rec.run_id);
        cJSON_AddStringToObject(f, "status", r->rec.status);
        cJSON_AddItemToObject(f, "root", root);
        root = NULL;
        text = anvil_json_print(f);
    }
    cJSON_Delete(root);
    cJSON_Delete(f);
    return text;
}

/* ---- transactions ------------------------------------------------------------ */

static void on_batch_end(void *ctx, bool ok);

/* Join the store's open batch: the engine hears when it ends, and r is
 * remembered as changed in it. 0 / -1 (out of memory). */
static int join_batch(run_rt *r)
{
    anvil_engine *e = r->eng;
    if (!e->batch_waiting) {
        if (anvil_store_when_durable(e->store, on_batch_end, e) != 0)
            return -1;
        e->batch_waiting = true;
        e->batch_state_version = e->txn_state_version;
    }
    if (r->batch_no == e->batch_no)
        return 0;
    if (e->n_touched == e->cap_touched) {
        size_t cap = e->cap_touched ? e->cap_touched * 2 : 32;
        char **t = realloc(e->touched, cap * sizeof *t);
        if (!t)
            return -1;
        e->touched = t;
        e->cap_touched = cap;
    }
    if (!(e->touched[e->n_touched] = strdup(r->rec.run_id)))
        return -1;
    e->n_touched++;
    r->batch_no = e->batch_no;
    return 0;
}

int anvil_run_begin(run_rt *r)
{
    anvil_engine *e = r->eng;
    assert(!e->in_txn && !e->queue);
    if (r->broken)
        return -1;
    e->txn_state_version = e->state_version;
    if (anvil_store_begin(e->store) != 0) {
        if (!anvil_store_unavailable(e->store))
            anvil_log_run(ANVIL_LOG_ERROR, r->rec.run_id,
                          "run %s: cannot begin a transaction: %s", r->rec.run_id,
                          anvil_store_errmsg(e->store));
        /* Nothing changed yet, but the caller has already moved the mirror:
         * repaired like a failed commit. */
        e->in_txn = true;
        return anvil_run_end(r, false);
    }
    e->in_txn = true;
    if (anvil_store_batch_open(e->store) && join_batch(r) != 0) {
        anvil_log_run(ANVIL_LOG_ERROR, r->rec.run_id,
                      "run %s: out of memory joining the batch", r->rec.run_id);
        return anvil_run_end(r, false);
    }
    return 0;
}

static int note_completed(run_rt *r);

int anvil_run_note(run_rt *r, bool frame, const char *event, cJSON *payload)
{
    anvil_engine *e = r->eng;
    assert(e->in_txn);
    int64_t now = anvil_now_ms();
    bool was_terminal = anvil_run_ended(r);
    derive_status(r);
    /* A run ends only once none of its tasks runs. */
    assert(!anvil_run_ended(r) || r->running_tasks == 0);
    r->rec.updated_at_ms = now;
    if (!was_terminal && anvil_run_ended(r))
        r->rec.finished_at_ms = now;
    if (frame)
        r->rec.frame_no++;
    r->rec.last_seq++;
    int64_t sv = ++e->state_version;

    char *tree = frame ? frame_text(r) : NULL;
    char *ptext = payload ? anvil_json_print(payload) : NULL;
    int rc = (!payload || !ptext || (frame && !tree)) ? -1 : 0;
    r->row_dirty = true;   /* written once, at the end of the change */
    if (rc == 0 && frame)
        rc = anvil_store_frame_insert(e->store, r->rec.run_id, r->rec.frame_no, now, tree,
                                      r->rec.last_seq, r->rec.workspace_head);
    if (rc == 0)
        rc = anvil_store_event_insert(e->store, r->rec.run_id, r->rec.last_seq, event, ptext, sv, now);
    free(tree);
    free(ptext);

    queued_event *q = rc == 0 ? calloc(1, sizeof *q) : NULL;
    if (q && (q->run_id = strdup(r->rec.run_id)) && (q->event = strdup(event))) {
        q->payload = payload;
        q->seq = r->rec.last_seq;
        q->state_version = sv;
        q->at_ms = now;
        *e->queue_tail = q;
        e->queue_tail = &q->next;
        return 0;
    }
    if (q) {
        free(q->run_id);
        free(q);
    }
    cJSON_Delete(payload);
    return -1;
}

/* Publish (after a commit) or drop (after a rollback) the recorded events. */
static void settle(anvil_engine *e, queued_event *q, bool publish)
{
    while (q) {
        queued_event *next = q->next;
        if (publish) {
            anvil_engine_metrics_event(q->event, q->payload);
            anvil_event ev = { q->run_id, q->seq, q->event, q->payload, q->state_version, q->at_ms };
            anvil_events_publish(&e->bus, &ev);
        }
        free(q->run_id);
        free(q->event);
        cJSON_Delete(q->payload);
        free(q);
        q = next;
    }
}

static void flush_events(anvil_engine *e, bool publish)
{
    queued_event *q = e->queue;
    e->queue = NULL;
    e->queue_tail = &e->queue;
    settle(e, q, publish);
}

/* Writes work again: reload the runs a failure left behind now, not after
 * the backoff the failures built up. */
static void repair_now_if_due(anvil_engine *e)
{
    if (e->repair_due && e->repair) {
        e->repair_due = false;
        e->repair_backoff_ms = ANVIL_ENGINE_REPAIR_FIRST_MS;
        struct timeval now = { 0, 0 };
        evtimer_add(e->repair, &now);
    }
}

/* The run row as the change left it. Most changes move neither the status
 * nor the end time, and then the cheaper statement leaves the run's index
 * entries alone. */
static int write_row(run_rt *r)
{
    anvil_store *s = r->eng->store;
    bool moved = strcmp(r->written_status, r->rec.status) != 0 ||
                 r->written_finished_at_ms != r->rec.finished_at_ms;
    int rc = moved ? anvil_store_run_update(s, &r->rec) : anvil_store_run_progress(s, &r->rec);
    if (rc != 0)
        return -1;
    anvil_run_row_written(r);
    return 0;
}

void anvil_run_row_written(run_rt *r)
{
    r->row_dirty = false;
    if (strlen(r->rec.status) < sizeof r->written_status)
        strcpy(r->written_status, r->rec.status);
    else
        r->written_status[0] = '\0';
    r->written_finished_at_ms = r->rec.finished_at_ms;
}

int anvil_run_end(run_rt *r, bool ok)
{
    anvil_engine *e = r->eng;
    assert(e->in_txn);
    /* The change that ends the run records run.completed in the same
     * transaction, after the change's own events (deciding a root approval
     * notes approval.decided, then node.finished: run.completed comes
     * last). So a crash or a failed write can never leave a run ended
     * without it (recovery only reloads runs that have not). */
    if (ok && !r->completed && anvil_run_ended(r))
        ok = note_completed(r) == 0;
    if (ok && r->row_dirty)
        ok = write_row(r) == 0;
    /* Closed before publishing: a subscriber may start the next change. */
    e->in_txn = false;
    if (ok && anvil_store_commit(e->store) == 0) {
        if (anvil_store_batch_open(e->store)) {
            /* Part of the batch now: its events wait for it to be durable. */
            if (e->queue) {
                *e->durable_tail = e->queue;
                e->durable_tail = e->queue_tail;
                e->queue = NULL;
                e->queue_tail = &e->queue;
            }
            return 0;
        }
        flush_events(e, true);
        repair_now_if_due(e);
        return 0;
    }
    /* An unavailable database was logged once by the store already. */
    if (!anvil_store_unavailable(e->store))
        anvil_log_run(ANVIL_LOG_ERROR, r->rec.run_id,
                      "run %s: state change not recorded: %s", r->rec.run_id,
                      anvil_store_errmsg(e->store));
    anvil_store_rollback(e->store);
    flush_events(e, false);
    /* Its batch committing says nothing about writes working again. */
    if (e->batch_waiting)
        e->batch_failures = true;
    /* Nothing of the change was published: the versions it took are free. */
    e->state_version = e->txn_state_version;
    anvil_run_mark_broken(r);
    return -1;
}

/* The store's batch ended (store_txn.h). Durable: publish its events, in
 * order, and let the runs that ended in it go. Lost: nothing of it
 * happened, so every run it touched is reloaded from the database (the
 * repair timer), and the state versions it took are free again. */
static void on_batch_end(void *ctx, bool ok)
{
    anvil_engine *e = ctx;
    queued_event *q = e->durable;
    e->durable = NULL;
    e->durable_tail = &e->durable;
    char **touched = e->touched;
    size_t n = e->n_touched;
    e->touched = NULL;
    e->n_touched = e->cap_touched = 0;
    bool failures = e->batch_failures;
    e->batch_waiting = e->batch_failures = false;
    e->batch_no++;
    settle(e, q, ok);
    if (!ok) {
        e->state_version = e->batch_state_version;
        if (e->in_txn)   /* the change in progress is lost with the batch */
            e->txn_state_version = e->batch_state_version;
        if (!anvil_store_unavailable(e->store))
            anvil_log(ANVIL_LOG_ERROR, "%zu run(s) changed but not recorded: %s", n,
                      anvil_store_errmsg(e->store));
    }
    for (size_t i = 0; i < n; i++) {
        run_rt *r = anvil_registry_find(e, touched[i]);
        if (r && !ok) {
            r->forget_when_durable = false;
            anvil_run_mark_broken(r);
        } else if (r && r->forget_when_durable && !r->advancing && !r->broken &&
                   r->running_tasks == 0 && anvil_run_ended(r)) {
            anvil_registry_forget(e, r);
        }
        free(touched[i]);
    }
    free(touched);
    if (ok && !failures)
        repair_now_if_due(e);
}

void anvil_run_forget_when_done(run_rt *r)
{
    anvil_engine *e = r->eng;
    if (e->batch_waiting && r->batch_no == e->batch_no)
        r->forget_when_durable = true;
    else
        anvil_registry_forget(e, r);
}

void anvil_run_mark_broken(run_rt *r)
{
    anvil_engine *e = r->eng;
    /* The mirror is now ahead of (or unsure of) the database. Nothing more
     * is written for it; the engine's repair timer reloads it from its rows
     * once its tasks have ended (and the next call on it does so first). */
    r->broken = true;
    e->repair_due = true;
    if (e->repair && !evtimer_pending(e->repair, NULL)) {
        struct timeval tv = { (time_t)(e->repair_backoff_ms / 1000),
                              (suseconds_t)((e->repair_backoff_ms % 1000) * 1000) };
        evtimer_add(e->repair, &tv);
    }
}

void anvil_engine_repair_soon(anvil_engine *e)
{
    if (e->repair) {
        struct timeval now = { 0, 0 };
        evtimer_add(e->repair, &now);
    }
}

/* ---- rows and payloads -------------------------------------------------------- */

int anvil_run_put_node(run_rt *r, node_rt *n)
{
    assert(r->eng->in_txn);
    anvil_node_record rec = {
        .node_id = n->def->id, .iteration = 0, .kind = (char *)kind_name(n->def->kind),
        .state = (char *)anvil_node_state_name(n->state), .attempts = n->attempts,
        .started_at_ms = n->started_at_ms, .finished_at_ms = n->finished_at_ms, .error = n->error,
    };
    return anvil_store_node_put(r->eng->store, r->rec.run_id, &rec);
}

cJSON *anvil_run_node_payload(run_rt *r, const node_rt *n)
{
    cJSON *p = cJSON_CreateObject();
    if (!p)
        return NULL;
    if (!cJSON_AddStringToObject(p, "runId", r->rec.run_id) ||
        !cJSON_AddStringToObject(p, "nodeId", n->def->id) ||
        !cJSON_AddNumberToObject(p, "iteration", 0) ||
        !cJSON_AddStringToObject(p, "kind", kind_name(n->def->kind))) {
        cJSON_Delete(p);
        return NULL;
    }
    return p;
}

/* ---- completion ----------------------------------------------------------------- */

/* Inside a transaction: the run.completed event (with its frame). */
static int note_completed(run_rt *r)
{
    assert(!r->completed);   /* exactly once per run (a forced resume resets it) */
    cJSON *p = cJSON_CreateObject();
    if (p) {
        cJSON_AddStringToObject(p, "runId", r->rec.run_id);
        cJSON_AddStringToObject(p, "workflow", r->rec.workflow);
        cJSON_AddStringToObject(p, "status", r->rec.status);
        if (r->rec.error)
            cJSON_AddStringToObject(p, "error", r->rec.error);
    }
    if (!p || anvil_run_note(r, true, "run.completed", p) != 0)
        return -1;
    /* Set before the commit; should it fail the run is broken, and
     * resumeRun reloads it from its rows. */
    r->completed = true;
    return 0;
}

void anvil_run_complete_if_done(run_rt *r)
{
    if (r->completed || r->broken)
        return;
    /* Status is derived and stored at every recorded change, and the
     * change that ends the run records run.completed with it; this covers
     * a run whose end is only found by deriving its status here. */
    derive_status(r);
    if (!anvil_run_ended(r))
        return;
    if (anvil_run_begin(r) != 0)
        return;
    anvil_run_end(r, true);   /* records run.completed */
}
