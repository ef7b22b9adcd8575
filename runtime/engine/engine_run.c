/*
 * runtime/engine/engine_run.c — one run's state machine (engine_run.h): which
 * node starts next, how results roll up the tree, and the end of a
 * cancelled run.
 *
 * advance() walks the tree from the root and starts whatever may start now;
 * it is called after every change and is guarded against reentrancy (a
 * static task finishing inside advance() asks for another pass instead of
 * recursing). Each node transition is one transaction (engine_record.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "engine_mirror.h"
#include "engine_record.h"
#include "engine_registry.h"
#include "engine_run.h"
#include "engine_task.h"
#include "json_print.h"
#include "store_runs.h"

/* One node transition as one transaction, with its event. */
static void transition(run_rt *r, node_rt *n, anvil_node_state to, const char *error,
                       const char *event)
{
    int64_t now = anvil_now_ms();
    bool withdraw = n->def->kind == ANVIL_NODE_APPROVAL && n->state == ANVIL_NODE_STATE_WAITING &&
                    (to == ANVIL_NODE_STATE_CANCELLED || to == ANVIL_NODE_STATE_SKIPPED);
    anvil_node_set_state(n, to);
    if (to == ANVIL_NODE_STATE_RUNNING || to == ANVIL_NODE_STATE_WAITING) {
        if (n->started_at_ms < 0)
            n->started_at_ms = now;
    } else if (anvil_node_state_terminal(to)) {
        n->finished_at_ms = now;
    }
    free(n->error);
    n->error = error ? strdup(error) : NULL;
    if (anvil_run_begin(r) != 0)
        return;
    cJSON *p = anvil_run_node_payload(r, n);
    if (p && error)
        cJSON_AddStringToObject(p, "error", error);
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

/* ---- scheduling ----------------------------------------------------------- */

static void fail_node(run_rt *r, node_rt *n, const char *why)
{
    transition(r, n, ANVIL_NODE_STATE_FAILED, why, "node.failed");
}

static void finish_node(run_rt *r, node_rt *n)
{
    transition(r, n, ANVIL_NODE_STATE_FINISHED, NULL, "node.finished");
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
               pending_to == ANVIL_NODE_STATE_CANCELLED ? "node.cancelled" : "node.skipped");
    return anvil_node_state_terminal(n->state);
}

static void request_approval(run_rt *r, node_rt *n)
{
    const anvil_wf_node *d = n->def;
    const char *title = d->title ? d->title : d->id;
    int64_t now = anvil_now_ms();
    anvil_node_set_state(n, ANVIL_NODE_STATE_WAITING);
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
    transition(r, n, ANVIL_NODE_STATE_WAITING, NULL, "node.started");
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
    anvil_node_set_state(n, ANVIL_NODE_STATE_FINISHED);
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
        anvil_node_restore(n, was, was_finished);
        cJSON_Delete(row);
        return -1;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(r->outputs, n->def->id);
    cJSON_AddItemToObject(r->outputs, n->def->id, row);
    return 1;
}

static void visit(run_rt *r, const anvil_wf_node *def);
static void task_ended(run_rt *r);

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
            snprintf(why, sizeof why, "%s %s", c->def->id, anvil_node_state_name(c->state));
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
    /* A rewound or paused run starts nothing until resumeRun lets it go. */
    if (r->broken || r->rec.held || anvil_node_state_terminal(n->state))
        return;
    switch (def->kind) {
    case ANVIL_NODE_SEQUENCE:
    case ANVIL_NODE_PARALLEL:
        if (n->state == ANVIL_NODE_STATE_PENDING)
            transition(r, n, ANVIL_NODE_STATE_RUNNING, NULL, "node.started");
        if (r->broken)
            return;
        if (def->kind == ANVIL_NODE_SEQUENCE)
            visit_sequence(r, n);
        else
            visit_parallel(r, n);
        return;
    case ANVIL_NODE_TASK:
        /* A draining engine starts nothing: the node stays pending and
         * the next start runs it. */
        if (n->state == ANVIL_NODE_STATE_PENDING && !r->eng->draining &&
            (r->max_concurrency <= 0 || r->running_tasks < r->max_concurrency)) {
            anvil_task_start(r, n, task_ended);
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

/* End a cancelling run once no task is running. */
static void maybe_finish_cancel(run_rt *r)
{
    if (!r->rec.cancel_requested || r->running_tasks > 0 || anvil_run_ended(r))
        return;
    /* Children before parents (reverse pre-order): the root ends last, and
     * with it the run. */
    for (size_t i = r->wf->n_nodes; i-- > 0;) {
        node_rt *n = &r->nodes[i];
        if (anvil_node_state_terminal(n->state))
            continue;
        transition(r, n, ANVIL_NODE_STATE_CANCELLED, NULL, "node.cancelled");
    }
    anvil_run_complete_if_done(r);
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
        if (anvil_run_ended(r)) {
            anvil_run_complete_if_done(r);
            break;
        }
        if (r->rec.cancel_requested) {
            maybe_finish_cancel(r);
            break;
        }
        visit(r, r->wf->root);
        anvil_run_complete_if_done(r);
    } while (r->again && ++passes < 10000);
    r->advancing = false;
    /* A broken run's mirror may say it ended when the database does not
     * know it: it stays for the repair timer to reload. */
    if (anvil_run_ended(r) && r->running_tasks == 0 && !r->broken)
        anvil_run_forget_when_done(r);
}

/* A process attempt ended and was recorded (engine_task.h). */
static void task_ended(run_rt *r)
{
    if (r->rec.cancel_requested)
        maybe_finish_cancel(r);
    anvil_run_advance(r);
}
