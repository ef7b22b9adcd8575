/*
 * handlers/attempts.c — a run's task attempts: attempts.list (every
 * attempt, without output) and attempts.get (one attempt with its captured
 * stdout and stderr).
 *
 * The engine writes an attempt row when a task attempt starts and
 * completes it when the attempt ends (runtime/engine/engine_task.c); only
 * task nodes have attempts. A missing node is NodeNotFound; a node without
 * the asked iteration, or without the asked attempt number, is
 * IterationNotFound (the v1 code closest to "no such attempt of this node
 * iteration"; its message and details say which). Lists are bounded by
 * `limit` with an explicit `truncated`; one attempt's output by maxPayload.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anvil_handlers.h"
#include "dup_opt.h"
#include "call.h"
#include "payload_bound.h"
#include "run_lookup.h"
#include "store_runs.h"

#define ATTEMPTS_LIST_DEFAULT 1000

static int oom(anvil_call *call)
{
    return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
}

/* The run exists; node_id (when not NULL) is one of its nodes; and, when
 * has_iteration, that node has the iteration. 0, or -1 with RunNotFound,
 * NodeNotFound or IterationNotFound set. */
static int check_target(anvil_call *call, const char *run_id, const char *node_id,
                        bool has_iteration, int64_t iteration)
{
    anvil_store *s = call->svc->store;
    anvil_run_record rec;
    if (anvil_handler_load_run(call, run_id, &rec) != 0)
        return -1;
    anvil_run_record_clear(&rec);
    if (!node_id)
        return 0;
    int found = anvil_store_node_exists(s, run_id, node_id, -1);
    if (found < 0)
        return anvil_store_error(s, &call->err, NULL);
    if (found == 0) {
        anvil_error_set(&call->err, ANVIL_ERR_NODE_NOT_FOUND, "Run %s has no node %s", run_id, node_id);
        anvil_error_detail_str(&call->err, "nodeId", node_id);
        return -1;
    }
    if (!has_iteration)
        return 0;
    found = anvil_store_node_exists(s, run_id, node_id, iteration);
    if (found < 0)
        return anvil_store_error(s, &call->err, NULL);
    if (found == 0) {
        anvil_error_set(&call->err, ANVIL_ERR_ITERATION_NOT_FOUND, "Node %s has no iteration %lld",
                        node_id, (long long)iteration);
        anvil_error_detail_str(&call->err, "nodeId", node_id);
        anvil_error_detail_int(&call->err, "iteration", iteration);
        return -1;
    }
    return 0;
}

/* ---- attempts.list ------------------------------------------------------------ */

typedef struct attempts_ctx {
    anvil_attempts_list_response *res;
    size_t limit, cap;
    bool oom;
} attempts_ctx;

static int add_attempt(void *ctx, const anvil_attempt_record *a)
{
    attempts_ctx *c = ctx;
    anvil_attempts_list_response *res = c->res;
    /* The store was asked for one row more than the limit: that row only
     * says the list goes on. */
    if (res->attempts.count == c->limit) {
        res->truncated = true;
        return 1;
    }
    anvil_attempt_summary *items = anvil_grow(res->attempts.items, res->attempts.count, &c->cap,
                                              sizeof *items);
    if (!items) {
        c->oom = true;
        return 1;
    }
    res->attempts.items = items;
    anvil_attempt_summary *s = &items[res->attempts.count++];
    s->node_id = anvil_dup_opt(a->node_id, &c->oom);
    s->iteration = a->iteration;
    s->attempt = a->attempt;
    s->state = anvil_dup_opt(a->state, &c->oom);
    s->started_at_ms = a->started_at_ms;
    if ((s->has_finished_at_ms = a->finished_at_ms >= 0))
        s->finished_at_ms = a->finished_at_ms;
    if ((s->has_exit_code = a->exit_code >= 0))
        s->exit_code = a->exit_code;
    s->error = anvil_dup_opt(a->error, &c->oom);
    return c->oom ? 1 : 0;
}

int anvil_handle_attempts_list(anvil_call *call, const anvil_attempts_list_request *req,
                               anvil_attempts_list_response *res)
{
    if (check_target(call, req->run_id, req->node_id, req->node_id && req->has_iteration,
                     req->iteration) != 0)
        return -1;
    if (!(res->run_id = strdup(req->run_id)))
        return oom(call);
    /* The contract bounds limit to 1..1000. */
    int64_t limit = req->has_limit ? req->limit : ATTEMPTS_LIST_DEFAULT;
    attempts_ctx c = { .res = res, .limit = (size_t)limit };
    if (anvil_store_attempts_list(call->svc->store, req->run_id, req->node_id,
                                  req->has_iteration ? req->iteration : -1, limit + 1, add_attempt,
                                  &c) < 0)
        return anvil_store_error(call->svc->store, &call->err, NULL);
    return c.oom ? oom(call) : 0;
}

/* ---- attempts.get ---------------------------------------------------------------- */

int anvil_handle_attempts_get(anvil_call *call, const anvil_attempts_get_request *req,
                              anvil_attempts_get_response *res)
{
    anvil_store *s = call->svc->store;
    int64_t iteration = req->has_iteration ? req->iteration : 0;
    if (check_target(call, req->run_id, req->node_id, true, iteration) != 0)
        return -1;
    anvil_attempt_record a;
    int found = anvil_store_attempt_get(s, req->run_id, req->node_id, iteration, req->attempt, &a);
    if (found < 0)
        return anvil_store_error(s, &call->err, NULL);
    if (found == 0) {
        anvil_error_set(&call->err, ANVIL_ERR_ITERATION_NOT_FOUND,
                        "Attempt %lld of node %s iteration %lld does not exist", (long long)req->attempt,
                        req->node_id, (long long)iteration);
        anvil_error_detail_str(&call->err, "nodeId", req->node_id);
        anvil_error_detail_int(&call->err, "iteration", iteration);
        anvil_error_detail_int(&call->err, "attempt", req->attempt);
        return -1;
    }
    char what[200];
    snprintf(what, sizeof what, "The output of attempt %lld of %s", (long long)req->attempt, req->node_id);
    if (anvil_handler_check_payload(call, (a.out ? strlen(a.out) : 0) + (a.err ? strlen(a.err) : 0),
                                    what) != 0) {
        anvil_attempt_record_clear(&a);
        return -1;
    }
    /* The record's strings move into the response, which the dispatcher
     * frees after encoding. */
    res->node_id = a.node_id;
    res->state = a.state;
    res->error = a.error;
    res->stdout_ = a.out;
    res->stderr_ = a.err;
    res->iteration = a.iteration;
    res->attempt = a.attempt;
    res->started_at_ms = a.started_at_ms;
    if ((res->has_finished_at_ms = a.finished_at_ms >= 0))
        res->finished_at_ms = a.finished_at_ms;
    if ((res->has_exit_code = a.exit_code >= 0))
        res->exit_code = a.exit_code;
    memset(&a, 0, sizeof a);
    return (res->run_id = strdup(req->run_id)) ? 0 : oom(call);
}
