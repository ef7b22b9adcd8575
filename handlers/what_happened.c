/*
 * handlers/what_happened.c — whatHappened: a plain-text account of a run,
 * or of one node iteration, from what the run recorded (docs/runs.md).
 *
 * The upstream may ask an agent to write the account; Anvil has no agent,
 * so the text is built from the facts alone (the run's row and its node
 * rows) and says only what they say: source "facts", agentId null, never
 * cached. The same run state always gives the same text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anvil_handlers.h"
#include "call.h"
#include "clock.h"
#include "engine.h"
#include "run_lookup.h"
#include "store_runs.h"

/* The run's node rows, in the workflow's pre-order, and the one asked for. */
typedef struct facts {
    FILE *out;                    /* the account being written */
    const char *node_id;          /* NULL: the run's account */
    bool node_found;
    size_t n, finished, failed, running, waiting, other;
} facts;

static void node_line(FILE *out, const anvil_node_record *n)
{
    fprintf(out, "%s (%s) is %s", n->node_id, n->kind, n->state);
    if (n->attempts > 0)
        fprintf(out, " after %lld attempt%s", (long long)n->attempts, n->attempts == 1 ? "" : "s");
    if (n->started_at_ms > 0 && n->finished_at_ms >= n->started_at_ms)
        fprintf(out, ", in %lld ms", (long long)(n->finished_at_ms - n->started_at_ms));
    if (n->error && *n->error)
        fprintf(out, "; last error: %s", n->error);
    fputs(".", out);
}

static int each_node(void *ctx, const anvil_node_record *n)
{
    facts *f = ctx;
    if (f->node_id) {
        if (!strcmp(n->node_id, f->node_id) && n->iteration == 0) {
            f->node_found = true;
            node_line(f->out, n);
        }
        return 0;
    }
    f->n++;
    if (!strcmp(n->state, "finished"))
        f->finished++;
    else if (!strcmp(n->state, "failed"))
        f->failed++;
    else if (!strcmp(n->state, "running"))
        f->running++;
    else if (!strcmp(n->state, "waiting"))
        f->waiting++;
    else
        f->other++;
    /* Only what needs a reader's attention is named one by one. */
    if (!strcmp(n->state, "failed") || !strcmp(n->state, "waiting")) {
        fputs(" ", f->out);
        node_line(f->out, n);
    }
    return 0;
}

/* The node asked for must be the workflow's (or, if the workflow is gone,
 * the run's) and iteration 0, the only one there is. */
static int check_node(anvil_call *call, const anvil_run_record *rec,
                      const anvil_what_happened_request *req)
{
    if (req->has_iteration && req->iteration != 0)
        return anvil_error_set(&call->err, ANVIL_ERR_ITERATION_NOT_FOUND,
                               "Node %s has no iteration %lld (only 0)", req->node_id,
                               (long long)req->iteration);
    const anvil_workflow *wf = anvil_engine_workflow(call->svc->engine, rec->workflow);
    int known = wf ? anvil_workflow_node(wf, req->node_id) != NULL
                   : anvil_store_node_exists(call->svc->store, rec->run_id, req->node_id, 0);
    if (known < 0)
        return anvil_store_error(call->svc->store, &call->err, NULL);
    if (!known)
        return anvil_error_set(&call->err, ANVIL_ERR_NODE_NOT_FOUND,
                               "Run %s has no node %s", rec->run_id, req->node_id);
    return 0;
}

static int write_account(anvil_call *call, const anvil_run_record *rec,
                         const anvil_what_happened_request *req, char **text)
{
    size_t len = 0;
    facts f = { .out = open_memstream(text, &len), .node_id = req->node_id };
    if (!f.out)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
    if (!req->node_id)
        fprintf(f.out, "Run %s of workflow %s is %s at frame %lld.", rec->run_id, rec->workflow,
                rec->status, (long long)rec->frame_no);
    int rc = anvil_store_nodes(call->svc->store, rec->run_id, each_node, &f);
    if (rc >= 0 && req->node_id && !f.node_found)
        fprintf(f.out, "%s has not started.", req->node_id);
    if (rc >= 0 && !req->node_id) {
        fprintf(f.out, " Of its %zu nodes %zu finished, %zu failed, %zu running, %zu waiting, "
                       "%zu not started or skipped.", f.n, f.finished, f.failed, f.running,
                f.waiting, f.other);
        if (rec->error && *rec->error)
            fprintf(f.out, " The run failed: %s.", rec->error);
    }
    bool bad = ferror(f.out);
    if (fclose(f.out) != 0 || bad) {
        free(*text);
        *text = NULL;
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
    }
    if (rc < 0) {
        free(*text);
        *text = NULL;
        return anvil_store_error(call->svc->store, &call->err, NULL);
    }
    return 0;
}

int anvil_handle_what_happened(anvil_call *call, const anvil_what_happened_request *req,
                               anvil_what_happened_response *res)
{
    if (!call->svc->engine)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "no engine is running");
    anvil_run_record rec;
    if (anvil_handler_load_run(call, req->run_id, &rec) != 0)
        return -1;
    int rc = req->node_id ? check_node(call, &rec, req) : 0;
    if (rc == 0)
        rc = write_account(call, &rec, req, &res->summary);
    anvil_run_record_clear(&rec);
    if (rc != 0)
        return -1;
    bool node = req->node_id != NULL;
    res->run_id = strdup(req->run_id);
    res->node_id = node ? strdup(req->node_id) : NULL;
    res->has_iteration = node;
    res->iteration = 0;
    res->scope = strdup(node ? "node" : "run");
    res->agent_id = cJSON_CreateNull();
    res->source = strdup("facts");
    res->cached = false;
    res->generated_at_ms = anvil_now_ms();
    if (!res->run_id || (node && !res->node_id) || !res->scope || !res->agent_id || !res->source)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
    return 0;
}
