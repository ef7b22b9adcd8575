/*
 * runtime/engine/engine_mirror.c — one run's in-memory mirror (engine_mirror.h):
 * its allocation, and the only writes of a run's status and its nodes'
 * states, each checked against the legal changes.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "engine_mirror.h"

/* calloc'd nodes start pending. */
_Static_assert(ANVIL_NODE_STATE_PENDING == 0, "a zeroed node_rt must be pending");

run_rt *anvil_run_new(anvil_engine *e, const anvil_workflow *wf)
{
    run_rt *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->eng = e;
    r->wf = wf;
    r->nodes = calloc(wf->n_nodes, sizeof *r->nodes);
    r->outputs = cJSON_CreateObject();
    if (!r->nodes || !r->outputs) {
        free(r->nodes);
        cJSON_Delete(r->outputs);
        free(r);
        return NULL;
    }
    for (size_t i = 0; i < wf->n_nodes; i++) {
        r->nodes[i].def = wf->nodes[i];
        r->nodes[i].started_at_ms = -1;
        r->nodes[i].finished_at_ms = -1;
        r->nodes[i].run = r;
    }
    return r;
}

void anvil_run_apply_options(run_rt *r)
{
    cJSON *o = cJSON_Parse(r->rec.options_json);
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "maxConcurrency")) && cJSON_IsNumber(v))
        r->max_concurrency = (int64_t)v->valuedouble;
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "toolTimeoutMs")) && cJSON_IsNumber(v))
        r->tool_timeout_ms = (int64_t)v->valuedouble;
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "maxOutputBytes")) && cJSON_IsNumber(v))
        r->max_output_bytes = (int64_t)v->valuedouble;
    cJSON_Delete(o);
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

/* ---- the run's status ------------------------------------------------------ */

bool anvil_run_ended(const run_rt *r)
{
    return anvil_status_name_terminal(&anvil_run_status_table, r->rec.status);
}

static int put_status(run_rt *r, anvil_run_status status)
{
    const char *name = anvil_run_status_name(status);
    if (r->rec.status && strcmp(r->rec.status, name) == 0)
        return 0;
    char *copy = strdup(name);
    if (!copy)
        return -1;
    free(r->rec.status);
    r->rec.status = copy;
    return 0;
}

int anvil_run_set_status(run_rt *r, anvil_run_status status)
{
    assert(!anvil_run_ended(r));
    return put_status(r, status);
}

/* Running again, with no error, no cancellation and no finish time. */
static int restart(run_rt *r, bool completed)
{
    if (put_status(r, ANVIL_RUN_STATUS_RUNNING) != 0)
        return -1;
    free(r->rec.error);
    r->rec.error = NULL;
    r->rec.cancel_requested = false;
    r->rec.finished_at_ms = -1;
    r->completed = completed;
    return 0;
}

int anvil_run_reopen(run_rt *r)
{
    assert(anvil_run_ended(r));
    return restart(r, false);
}

/* ---- node states --------------------------------------------------------------- */

#ifndef NDEBUG
static bool legal(anvil_node_state from, anvil_node_state to)
{
    switch (from) {
    case ANVIL_NODE_STATE_PENDING:
        return to == ANVIL_NODE_STATE_RUNNING || to == ANVIL_NODE_STATE_WAITING ||
               to == ANVIL_NODE_STATE_FAILED || to == ANVIL_NODE_STATE_CANCELLED ||
               to == ANVIL_NODE_STATE_SKIPPED;
    case ANVIL_NODE_STATE_RUNNING:
        return to == ANVIL_NODE_STATE_PENDING || anvil_node_state_terminal(to);
    case ANVIL_NODE_STATE_WAITING:
        return anvil_node_state_terminal(to);
    default:
        return false;   /* terminal: only anvil_node_reopen */
    }
}
#endif

void anvil_node_load(node_rt *n, const anvil_node_record *rec)
{
    if (!anvil_node_state_parse(rec->state, &n->state))
        n->state = ANVIL_NODE_STATE_PENDING;
    n->attempts = rec->attempts;
    n->started_at_ms = rec->started_at_ms;
    n->finished_at_ms = rec->finished_at_ms;
    free(n->error);
    n->error = rec->error ? strdup(rec->error) : NULL;
}

void anvil_node_set_state(node_rt *n, anvil_node_state to)
{
    assert(legal(n->state, to));
    n->state = to;
}

void anvil_node_restore(node_rt *n, anvil_node_state was, int64_t was_finished_at_ms)
{
    /* The undo of one legal change. */
    assert(legal(was, n->state));
    n->state = was;
    n->finished_at_ms = was_finished_at_ms;
}

void anvil_node_reopen(node_rt *n)
{
    assert(anvil_node_state_terminal(n->state) && n->state != ANVIL_NODE_STATE_FINISHED);
    n->state = ANVIL_NODE_STATE_PENDING;
    n->finished_at_ms = -1;
    free(n->error);
    n->error = NULL;
}

int anvil_node_rewind(node_rt *n, anvil_node_state state, int64_t attempts, const char *error)
{
    assert(state != ANVIL_NODE_STATE_RUNNING && !n->proc && attempts >= 0);
    char *copy = error ? strdup(error) : NULL;
    if (error && !copy)
        return -1;
    free(n->error);
    n->error = copy;
    n->state = state;
    n->attempts = attempts;
    if (state == ANVIL_NODE_STATE_PENDING)
        n->started_at_ms = -1;
    if (!anvil_node_state_terminal(state))
        n->finished_at_ms = -1;
    n->kill_to = ANVIL_NODE_STATE_PENDING;
    return 0;
}

int anvil_run_rewind(run_rt *r, bool completed)
{
    assert(r->running_tasks == 0);
    return restart(r, completed);
}
