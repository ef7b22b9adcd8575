/*
 * runtime/engine/engine_run.c — one run's state machine: which node starts next,
 * how results roll up the tree, and how every change is recorded.
 *
 * advance() walks the tree from the root and starts whatever may start now;
 * it is called after every change and is guarded against reentrancy (a
 * static task finishing inside advance() asks for another pass instead of
 * recursing). Each node transition is one transaction (anvil_run_begin /
 * anvil_run_note / anvil_run_end).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_print.h"
#include "clock.h"
#include "engine_internal.h"
#include "log.h"
#include "store_runs.h"

bool anvil_run_ended_status(const char *status)
{
    return anvil_status_name_terminal(&anvil_run_status_table, status);
}

const char *anvil_node_kind_name(anvil_node_kind k)
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

/* ---- recording ----------------------------------------------------------- */

static cJSON *tree_json(run_rt *r, const anvil_wf_node *def)
{
    const node_rt *n = &r->nodes[def->index];
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "id", def->id);
    cJSON_AddStringToObject(o, "kind", anvil_node_kind_name(def->kind));
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

int anvil_run_begin(run_rt *r)
{
    if (r->broken)
        return -1;
    if (anvil_store_begin(r->eng->store) != 0) {
        anvil_log(ANVIL_LOG_ERROR, "run %s: cannot begin a transaction: %s", r->rec.run_id,
                  anvil_store_errmsg(r->eng->store));
        r->broken = true;
        return -1;
    }
    return 0;
}

static int set_status(run_rt *r, anvil_run_status st)
{
    const char *status = anvil_run_status_name(st);
    if (strcmp(r->rec.status, status) == 0)
        return 0;
    char *copy = strdup(status);
    if (!copy)
        return -1;
    free(r->rec.status);
    r->rec.status = copy;
    return 0;
}

void anvil_run_derive_status(run_rt *r)
{
    if (anvil_run_ended_status(r->rec.status))
        return;
    const node_rt *root = &r->nodes[r->wf->root->index];
    anvil_run_status st = ANVIL_RUN_STATUS_RUNNING;
    if (r->rec.cancel_requested) {
        /* Cancelling: the run ends only once every node has stopped (the
         * root is cancelled last); until then it keeps its status. */
        if (!anvil_node_state_terminal(root->state))
            return;
        st = ANVIL_RUN_STATUS_CANCELLED;
    } else if (root->state == ANVIL_NODE_STATE_FINISHED) {
        st = ANVIL_RUN_STATUS_FINISHED;
    } else if (root->state == ANVIL_NODE_STATE_FAILED || root->state == ANVIL_NODE_STATE_SKIPPED) {
        st = ANVIL_RUN_STATUS_FAILED;
    } else if (root->state == ANVIL_NODE_STATE_CANCELLED) {
        st = ANVIL_RUN_STATUS_CANCELLED;
    } else if (r->running_tasks == 0 && !r->rec.cancel_requested) {
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
    set_status(r, st);
}

static int note_completed(run_rt *r);

int anvil_run_note(run_rt *r, bool frame, const char *event, cJSON *payload)
{
    anvil_engine *e = r->eng;
    int64_t now = anvil_now_ms();
    bool was_terminal = anvil_run_ended_status(r->rec.status);
    anvil_run_derive_status(r);
    r->rec.updated_at_ms = now;
    if (!was_terminal && anvil_run_ended_status(r->rec.status))
        r->rec.finished_at_ms = now;
    if (frame)
        r->rec.frame_no++;
    r->rec.last_seq++;
    int64_t sv = ++e->state_version;

    char *tree = frame ? frame_text(r) : NULL;
    char *ptext = payload ? anvil_json_print(payload) : NULL;
    int rc = (!payload || !ptext || (frame && !tree)) ? -1 : 0;
    if (rc == 0)
        rc = anvil_store_run_update(e->store, &r->rec);
    if (rc == 0 && frame)
        rc = anvil_store_frame_insert(e->store, r->rec.run_id, r->rec.frame_no, now, tree);
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
        /* The change that ends the run records run.completed in the same
         * transaction: a crash or a failed write can never leave a run
         * ended without it (recovery only reloads runs that have not). */
        if (!was_terminal && anvil_run_ended_status(r->rec.status) &&
            strcmp(event, "run.completed") != 0)
            return note_completed(r);
        return 0;
    }
    if (q) {
        free(q->run_id);
        free(q);
    }
    cJSON_Delete(payload);
    return -1;
}

void anvil_engine_flush_events(anvil_engine *e, bool publish)
{
    queued_event *q = e->queue;
    e->queue = NULL;
    e->queue_tail = &e->queue;
    while (q) {
        queued_event *next = q->next;
        if (publish) {
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

int anvil_run_end(run_rt *r, bool ok)
{
    anvil_engine *e = r->eng;
    if (ok && anvil_store_commit(e->store) == 0) {
        anvil_engine_flush_events(e, true);
        return 0;
    }
    anvil_log(ANVIL_LOG_ERROR, "run %s: state change not recorded: %s", r->rec.run_id,
              anvil_store_errmsg(e->store));
    anvil_store_rollback(e->store);
    anvil_engine_flush_events(e, false);
    r->broken = true;
    return -1;
}

int anvil_run_put_node(run_rt *r, node_rt *n)
{
    anvil_node_record rec = {
        .node_id = n->def->id, .iteration = 0, .kind = (char *)anvil_node_kind_name(n->def->kind),
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
        !cJSON_AddStringToObject(p, "kind", anvil_node_kind_name(n->def->kind))) {
        cJSON_Delete(p);
        return NULL;
    }
    return p;
}

/* One node transition as one transaction, with its event. */
static void transition(run_rt *r, node_rt *n, anvil_node_state to, const char *error,
                       const char *event, cJSON *extra)
{
    int64_t now = anvil_now_ms();
    bool withdraw = n->def->kind == ANVIL_NODE_APPROVAL && n->state == ANVIL_NODE_STATE_WAITING &&
                    (to == ANVIL_NODE_STATE_CANCELLED || to == ANVIL_NODE_STATE_SKIPPED);
    n->state = to;
    if (to == ANVIL_NODE_STATE_RUNNING || to == ANVIL_NODE_STATE_WAITING) {
        if (n->started_at_ms < 0)
            n->started_at_ms = now;
    } else if (anvil_node_state_terminal(to)) {
        n->finished_at_ms = now;
    }
    free(n->error);
    n->error = error ? strdup(error) : NULL;
    if (anvil_run_begin(r) != 0) {
        cJSON_Delete(extra);
        return;
    }
    cJSON *p = anvil_run_node_payload(r, n);
    if (p && error)
        cJSON_AddStringToObject(p, "error", error);
    for (cJSON *m = extra ? extra->child : NULL; p && m; m = m->next)
        cJSON_AddItemToObject(p, m->string, cJSON_Duplicate(m, true));
    cJSON_Delete(extra);
    bool ok = p && anvil_run_put_node(r, n) == 0;
    /* A withdrawn approval leaves the pending list in the same transaction
     * (0 rows when it was already decided is fine). */
    if (ok && withdraw)
        ok = anvil_store_approval_withdraw(r->eng->store, r->rec.run_id, n->def->id, 0, now) == 0;
    if (ok)
        ok = anvil_run_note(r, true, event, p) == 0;   /* consumes p */
    else
        cJSON_Delete(p);
    anvil_run_end(r, ok);
}

/* Inside a transaction: the run.completed event (with its frame). */
static int note_completed(run_rt *r)
{
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

static void complete_run_if_done(run_rt *r)
{
    if (r->completed || r->broken)
        return;
    /* Status is derived and stored at every recorded change, and the
     * change that ends the run records run.completed with it; this covers
     * a run whose end is only found by deriving its status here. */
    anvil_run_derive_status(r);
    if (!anvil_run_ended_status(r->rec.status))
        return;
    if (anvil_run_begin(r) != 0)
        return;
    anvil_run_end(r, note_completed(r) == 0);
}

/* ---- scheduling ----------------------------------------------------------- */

static void fail_node(run_rt *r, node_rt *n, const char *why)
{
    transition(r, n, ANVIL_NODE_STATE_FAILED, why, "node.failed", NULL);
}

static void finish_node(run_rt *r, node_rt *n)
{
    transition(r, n, ANVIL_NODE_STATE_FINISHED, NULL, "node.finished", NULL);
}

/* Stop everything below `def` that has not ended: running tasks are killed
 * (their exit is recorded as skipped or cancelled), the rest are skipped.
 * A container ends only once nothing below it runs any more, so its parent
 * (and the run) cannot end while a killed task's exit is still on its way.
 * Returns whether the subtree has ended. */
static bool stop_subtree(run_rt *r, const anvil_wf_node *def, anvil_node_state pending_to)
{
    node_rt *n = &r->nodes[def->index];
    bool below_ended = true;
    for (size_t i = 0; i < def->n_children; i++)
        if (!stop_subtree(r, def->children[i], pending_to))
            below_ended = false;
    if (anvil_node_state_terminal(n->state))
        return true;
    if (n->proc) {
        anvil_task_kill(n);
        return false;
    }
    if (!below_ended)
        return false;
    transition(r, n, pending_to, NULL,
               pending_to == ANVIL_NODE_STATE_CANCELLED ? "node.cancelled" : "node.skipped", NULL);
    return anvil_node_state_terminal(n->state);
}

static void request_approval(run_rt *r, node_rt *n)
{
    const anvil_wf_node *d = n->def;
    const char *title = d->title ? d->title : d->id;
    int64_t now = anvil_now_ms();
    n->state = ANVIL_NODE_STATE_WAITING;
    n->started_at_ms = now;
    if (anvil_run_begin(r) != 0)
        return;
    /* The approval row and its announcement are one transaction: the
     * moment a client sees approval.requested, submitApproval works. */
    cJSON *p = anvil_run_node_payload(r, n);
    if (p) {
        cJSON_AddStringToObject(p, "workflowKey", r->rec.workflow);
        cJSON_AddStringToObject(p, "requestTitle", title);
        cJSON_AddNumberToObject(p, "requestedAtMs", (double)now);
    }
    bool ok = p && anvil_run_put_node(r, n) == 0 &&
              anvil_store_approval_request(r->eng->store, r->rec.run_id, d->id, 0, r->rec.workflow,
                                           title, now) == 0;
    if (ok)
        ok = anvil_run_note(r, true, "approval.requested", p) == 0;
    else
        cJSON_Delete(p);
    anvil_run_end(r, ok);
}

/* A signal node starts waiting; a matching signal that arrived earlier is
 * taken at once. */
static void wait_for_signal(run_rt *r, node_rt *n)
{
    const anvil_wf_node *d = n->def;
    char err[200];
    char *key = NULL;
    if (d->correlation_key) {
        key = anvil_template_expand(d->correlation_key, ANVIL_TEMPLATE_TEXT, r->input, r->outputs,
                                    err, sizeof err);
        if (!key) {
            fail_node(r, n, err);
            return;
        }
    }
    transition(r, n, ANVIL_NODE_STATE_WAITING, NULL, "node.started", NULL);
    if (!r->broken)
        anvil_signal_take(r, n, key);
    free(key);
}

int anvil_signal_take(run_rt *r, node_rt *n, const char *key)
{
    /* Taking the signal and finishing the node are one transaction: a
     * signal is consumed only together with the node it finished, so a
     * failed write (or a crash) leaves it stored for the next wait. */
    if (anvil_run_begin(r) != 0)
        return -1;
    char *payload_json = NULL;
    int took = anvil_store_signal_take(r->eng->store, r->rec.run_id, n->def->signal_name, key,
                                       n->def->id, &payload_json);
    if (took <= 0)
        return anvil_run_end(r, took == 0) == 0 ? 0 : -1;
    cJSON *payload = payload_json ? cJSON_Parse(payload_json) : NULL;
    free(payload_json);
    cJSON *row = NULL;
    if (cJSON_IsObject(payload)) {
        row = payload;
        payload = NULL;
    } else {
        row = cJSON_CreateObject();
        if (row)
            cJSON_AddItemToObject(row, "payload", payload ? payload : cJSON_CreateNull());
        payload = NULL;
    }
    cJSON_Delete(payload);
    char *text = row ? anvil_json_print(row) : NULL;
    int64_t now = anvil_now_ms();
    anvil_node_state was = n->state;
    int64_t was_finished = n->finished_at_ms;
    n->state = ANVIL_NODE_STATE_FINISHED;
    n->finished_at_ms = now;
    cJSON *p = text ? anvil_run_node_payload(r, n) : NULL;
    bool ok = p && anvil_run_put_node(r, n) == 0 &&
              anvil_store_output_put(r->eng->store, r->rec.run_id, n->def->id, 0, text, now) == 0;
    if (ok)
        ok = anvil_run_note(r, true, "node.finished", p) == 0;
    else
        cJSON_Delete(p);
    free(text);
    if (anvil_run_end(r, ok) != 0) {
        n->state = was;
        n->finished_at_ms = was_finished;
        cJSON_Delete(row);
        return -1;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(r->outputs, n->def->id);
    cJSON_AddItemToObject(r->outputs, n->def->id, row);
    return 1;
}

static void visit(run_rt *r, const anvil_wf_node *def);

/* Failed, skipped or cancelled. */
static bool ended_badly(anvil_node_state s)
{
    return anvil_node_state_terminal(s) && s != ANVIL_NODE_STATE_FINISHED;
}

static void visit_sequence(run_rt *r, node_rt *n)
{
    const anvil_wf_node *d = n->def;
    for (size_t i = 0; i < d->n_children; i++) {
        node_rt *c = &r->nodes[d->children[i]->index];
        if (!anvil_node_state_terminal(c->state))
            visit(r, d->children[i]);
        if (r->broken)
            return;
        if (c->state == ANVIL_NODE_STATE_FINISHED)
            continue;
        if (ended_badly(c->state)) {
            char why[200];
            snprintf(why, sizeof why, "%s %s", c->def->id,
                     anvil_node_state_name(c->state));
            for (size_t j = i + 1; j < d->n_children; j++)
                stop_subtree(r, d->children[j], ANVIL_NODE_STATE_SKIPPED);
            fail_node(r, n, why);
            return;
        }
        return;   /* this child is still running or waiting */
    }
    finish_node(r, n);
}

static void visit_parallel(run_rt *r, node_rt *n)
{
    const anvil_wf_node *d = n->def;
    bool all_done = true, failed = false;
    const char *failed_id = NULL;
    for (size_t i = 0; i < d->n_children; i++) {
        node_rt *c = &r->nodes[d->children[i]->index];
        if (ended_badly(c->state)) {
            failed = true;
            failed_id = c->def->id;
        }
    }
    if (failed) {
        /* Fail fast: stop the siblings, and fail once none is running. */
        bool running = false;
        for (size_t i = 0; i < d->n_children; i++) {
            stop_subtree(r, d->children[i], ANVIL_NODE_STATE_SKIPPED);
            if (!anvil_node_state_terminal(r->nodes[d->children[i]->index].state))
                running = true;
        }
        if (!running) {
            char why[200];
            snprintf(why, sizeof why, "%s failed", failed_id);
            fail_node(r, n, why);
        }
        return;
    }
    for (size_t i = 0; i < d->n_children; i++) {
        node_rt *c = &r->nodes[d->children[i]->index];
        if (!anvil_node_state_terminal(c->state))
            visit(r, d->children[i]);
        if (c->state != ANVIL_NODE_STATE_FINISHED)
            all_done = false;
    }
    if (all_done)
        finish_node(r, n);
}

static void visit(run_rt *r, const anvil_wf_node *def)
{
    node_rt *n = &r->nodes[def->index];
    if (r->broken || anvil_node_state_terminal(n->state))
        return;
    switch (def->kind) {
    case ANVIL_NODE_SEQUENCE:
    case ANVIL_NODE_PARALLEL:
        if (n->state == ANVIL_NODE_STATE_PENDING)
            transition(r, n, ANVIL_NODE_STATE_RUNNING, NULL, "node.started", NULL);
        if (r->broken)
            return;
        if (def->kind == ANVIL_NODE_SEQUENCE)
            visit_sequence(r, n);
        else
            visit_parallel(r, n);
        return;
    case ANVIL_NODE_TASK:
        if (n->state == ANVIL_NODE_STATE_PENDING &&
            (r->max_concurrency <= 0 || r->running_tasks < r->max_concurrency)) {
            anvil_task_start(r, n);
            r->again = true;
        }
        return;
    case ANVIL_NODE_APPROVAL:
        if (n->state == ANVIL_NODE_STATE_PENDING)
            request_approval(r, n);
        return;
    case ANVIL_NODE_SIGNAL:
        if (n->state == ANVIL_NODE_STATE_PENDING) {
            wait_for_signal(r, n);
            r->again = true;
        }
        return;
    }
}

void anvil_run_maybe_finish_cancel(run_rt *r)
{
    if (!r->rec.cancel_requested || r->running_tasks > 0 || anvil_run_ended_status(r->rec.status))
        return;
    /* Children before parents (reverse pre-order): the root ends last, and
     * with it the run. */
    for (size_t i = r->wf->n_nodes; i-- > 0;) {
        node_rt *n = &r->nodes[i];
        if (anvil_node_state_terminal(n->state))
            continue;
        transition(r, n, ANVIL_NODE_STATE_CANCELLED, NULL, "node.cancelled", NULL);
    }
    complete_run_if_done(r);
}

void anvil_run_advance(run_rt *r)
{
    if (r->advancing) {
        r->again = true;
        return;
    }
    r->advancing = true;
    int passes = 0;
    do {
        r->again = false;
        if (r->broken)
            break;
        if (anvil_run_ended_status(r->rec.status)) {
            complete_run_if_done(r);
            break;
        }
        if (r->rec.cancel_requested) {
            anvil_run_maybe_finish_cancel(r);
            break;
        }
        visit(r, r->wf->root);
        complete_run_if_done(r);
    } while (r->again && ++passes < 10000);
    r->advancing = false;
    if (anvil_run_ended_status(r->rec.status) && r->running_tasks == 0)
        anvil_engine_forget(r->eng, r);
}

void anvil_run_free(run_rt *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->nodes && i < r->wf->n_nodes; i++)
        free(r->nodes[i].error);
    free(r->nodes);
    cJSON_Delete(r->input);
    cJSON_Delete(r->outputs);
    anvil_run_record_clear(&r->rec);
    free(r);
}
