/*
 * handlers/nodes.c — getNodeOutput (a node's output row with its schema
 * descriptor) and getNodeDiff (what a node iteration's latest attempt
 * changed in the run's versioned workspace; docs/time-travel.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anvil_handlers.h"
#include "anvil_statuses.h"
#include "call.h"
#include "run_lookup.h"
#include "engine.h"
#include "field_desc.h"
#include "store_runs.h"
#include "store_time_travel.h"
#include "workspace.h"

typedef struct node_find {
    const char *id;
    char *state;
} node_find;

static int find_node(void *ctx, const anvil_node_record *n)
{
    node_find *f = ctx;
    if (strcmp(n->node_id, f->id) != 0 || n->iteration != 0)
        return 0;
    f->state = strdup(n->state);
    return 1;
}

/* The task's outputSchema -> {fields: [...]}, in declaration order. */
static int fill_schema(anvil_get_node_output_response *res, const anvil_output_schema *s)
{
    res->has_schema = true;
    return anvil_field_desc_fill(s, &res->schema.fields.items, &res->schema.fields.count);
}

/* Which node a request names, or NodeNotFound / IterationNotFound. *def
 * may be NULL for a node of an older workflow file; *state (when asked
 * for: malloc'd, NULL when the run has no row for it) is its stored state. */
static int find_request_node(anvil_call *call, const char *run_id, const char *node_id,
                             bool has_iteration, int64_t iteration, const anvil_workflow *wf,
                             const anvil_wf_node **def, char **state)
{
    anvil_store *s = call->svc->store;
    *def = wf ? anvil_workflow_node(wf, node_id) : NULL;
    node_find nf = { node_id, NULL };
    if (anvil_store_nodes(s, run_id, find_node, &nf) < 0)
        return anvil_store_error(s, &call->err, NULL);
    bool known = *def || nf.state;
    int rc = 0;
    if (!known)
        rc = anvil_error_set(&call->err, ANVIL_ERR_NODE_NOT_FOUND, "Run %s has no node %s",
                             run_id, node_id);
    else if (has_iteration && iteration != 0)
        rc = anvil_error_set(&call->err, ANVIL_ERR_ITERATION_NOT_FOUND,
                             "Node %s has no iteration %lld (only 0)", node_id,
                             (long long)iteration);
    if (rc == 0 && state)
        *state = nf.state;
    else
        free(nf.state);
    return rc;
}

int anvil_handle_get_node_output(anvil_call *call, const anvil_get_node_output_request *req,
                                 anvil_get_node_output_response *res)
{
    anvil_store *s = call->svc->store;
    anvil_engine *e = call->svc->engine;
    anvil_run_record rec;
    if (anvil_handler_load_run(call, req->run_id, &rec) != 0)
        return -1;
    const anvil_workflow *wf = e ? anvil_engine_workflow(e, rec.workflow) : NULL;
    anvil_run_record_clear(&rec);
    const anvil_wf_node *def;
    char *stored = NULL;   /* the node's stored state */
    if (find_request_node(call, req->run_id, req->node_id, req->has_iteration, req->iteration, wf,
                          &def, &stored) != 0)
        return -1;
    if (def && (def->kind == ANVIL_NODE_SEQUENCE || def->kind == ANVIL_NODE_PARALLEL)) {
        free(stored);
        return anvil_error_set(&call->err, ANVIL_ERR_NODE_HAS_NO_OUTPUT,
                               "%s is a %s; only task, approval and signal nodes produce output",
                               req->node_id, def->kind == ANVIL_NODE_SEQUENCE ? "sequence" : "parallel");
    }
    char *row = NULL;
    int have = anvil_store_output_get(s, req->run_id, req->node_id, 0, &row);
    if (have < 0) {
        free(stored);
        return anvil_store_error(s, &call->err, NULL);
    }
    int64_t cap = call->svc->config->max_payload > 0 ? call->svc->config->max_payload : 1048576;
    if (row && (int64_t)strlen(row) > cap) {
        anvil_error_set(&call->err, ANVIL_ERR_PAYLOAD_TOO_LARGE,
                        "The output row of %s is %zu bytes, over the %lld-byte limit (maxPayload)",
                        req->node_id, strlen(row), (long long)cap);
        anvil_error_detail_int(&call->err, "maxBytes", cap);
        free(row);
        free(stored);
        return -1;
    }
    /* No row yet (or a state this version does not know) reads as pending. */
    anvil_node_state state = ANVIL_NODE_STATE_PENDING;
    anvil_node_state_parse(stored, &state);
    bool failed = anvil_node_state_terminal(state) && state != ANVIL_NODE_STATE_FINISHED;
    res->status = strdup(row ? "produced" : failed ? "failed" : "pending");
    res->row = row ? cJSON_Parse(row) : NULL;
    free(row);
    free(stored);
    if (!res->status || (have == 1 && !res->row))
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
    if (def && def->kind == ANVIL_NODE_TASK && def->output_schema &&
        fill_schema(res, def->output_schema) != 0)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
    return 0;
}

int anvil_handle_get_node_diff(anvil_call *call, const anvil_get_node_diff_request *req,
                               anvil_get_node_diff_response *res)
{
    anvil_store *s = call->svc->store;
    anvil_engine *e = call->svc->engine;
    if (!e)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "no engine is running");
    anvil_run_record rec;
    if (anvil_handler_load_run(call, req->run_id, &rec) != 0)
        return -1;
    const anvil_workflow *wf = anvil_engine_workflow(e, rec.workflow);
    anvil_run_record_clear(&rec);
    const anvil_wf_node *def;
    if (find_request_node(call, req->run_id, req->node_id, req->has_iteration, req->iteration, wf,
                          &def, NULL) != 0)
        return -1;
    if (!(res->run_id = strdup(req->run_id)) || !(res->node_id = strdup(req->node_id)))
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
    res->iteration = 0;
    int64_t attempt = 0;
    char *state = NULL, *commit = NULL;
    int got = anvil_store_attempt_latest(s, req->run_id, req->node_id, 0, &attempt, &state, &commit);
    if (got < 0)
        return anvil_store_error(s, &call->err, NULL);
    bool ended = got == 1 && strcmp(state, "running") != 0;
    free(state);
    if (!commit) {
        /* Nothing to diff: no attempt yet, one still running, or a node
         * that does not touch the workspace (approval, signal, static
         * task). An ended attempt of a command task of a versioned
         * workflow always has a commit; without one its commit failed. */
        bool expected = ended && def && def->run && wf && wf->version_workspace;
        if (expected)
            return anvil_error_set(&call->err, ANVIL_ERR_VCS_ERROR,
                                   "attempt %lld of node %s made no workspace commit (see the "
                                   "server log)", (long long)attempt, req->node_id);
        if (wf && !wf->version_workspace && def && def->run)
            return anvil_error_set(&call->err, ANVIL_ERR_VCS_ERROR,
                                   "workflow %s does not version its workspace "
                                   "(versionWorkspace: false)", wf->name ? wf->name : "");
        return 0;   /* an empty bundle: attempt, commits null */
    }
    res->has_attempt = true;
    res->attempt = attempt;
    res->commit = commit;
    char *git = anvil_workspace_gitdir(anvil_engine_workspace_root(e), req->run_id);
    if (!git)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
    char parent[ANVIL_COMMIT_HEX], err[300];
    bool has_parent = false;
    int64_t cap = call->svc->config->max_payload > 0 ? call->svc->config->max_payload : 1048576;
    int rc = anvil_workspace_parent(git, commit, parent, &has_parent, err, sizeof err);
    if (rc == 0 && has_parent && !(res->base_commit = strdup(parent)))
        rc = -1, snprintf(err, sizeof err, "out of memory");
    anvil_diff_file *files = NULL;
    size_t n = 0;
    if (rc == 0)
        rc = anvil_workspace_diff(git, has_parent ? parent : NULL, commit, (size_t)cap, NULL,
                                  &res->summary, &files, &n, err, sizeof err);
    free(git);
    if (rc == -2) {
        anvil_error_set(&call->err, ANVIL_ERR_PAYLOAD_TOO_LARGE, "node %s: %s", req->node_id, err);
        anvil_error_detail_int(&call->err, "maxBytes", cap);
        return -1;
    }
    if (rc != 0)
        return anvil_error_set(&call->err, ANVIL_ERR_VCS_ERROR, "run %s: %s", req->run_id, err);
    res->files.items = files;
    res->files.count = n;
    return 0;
}
