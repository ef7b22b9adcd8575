/*
 * handlers/approvals.c — submitApproval, approve (submitApproval with the
 * decision {approved: true, note}) and listApprovals.
 *
 * submitApproval takes the verdict and the note either inside `decision`
 * or at the top level of the params (the upstream client's types allow
 * both); given twice they must agree, so no call is decided on a value
 * its sender did not mean. The engine enforces the approval's
 * allowedScopes / allowedUsers and decisionSchema and refuses a second
 * decision with AlreadyDecided (409).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anvil_handlers.h"
#include "call.h"
#include "engine.h"
#include "store_runs.h"

#define LIST_APPROVALS_MAX 1000

/* Record decision *d (its run, node, iteration and verdict) as the calling
 * principal and fill the answer submitApproval and approve share. */
static int decide(anvil_call *call, anvil_decision *d, anvil_submit_approval_response *res)
{
    if (!call->svc->engine)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "the run engine is not running");
    const anvil_principal *p = call->principal;
    d->user_id = p->user_id;
    d->scopes = p->scopes;
    d->n_scopes = p->n_scopes;
    if (anvil_engine_decide(call->svc->engine, d, &call->err) != 0)
        return -1;
    res->run_id = strdup(d->run_id);
    res->node_id = strdup(d->node_id);
    res->iteration = d->iteration;
    res->approved = d->approved;
    if (!res->run_id || !res->node_id)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
    return 0;
}

static int bad_param(anvil_call *call, const char *path, const char *why)
{
    anvil_error_set(&call->err, ANVIL_ERR_INVALID_REQUEST, "%s: %s", path, why);
    anvil_error_detail_str(&call->err, "path", path);
    return -1;
}

/* The verdict from decision.approved and/or the top-level approved. */
static int verdict(anvil_call *call, const anvil_submit_approval_request *req, bool *approved)
{
    const anvil_submit_approval_request_decision *dec = &req->decision;
    if (!dec->has_approved && !req->has_approved)
        return bad_param(call, "$.params.decision.approved",
                         "required property \"approved\" is missing (give decision.approved or the"
                         " top-level approved)");
    if (dec->has_approved && req->has_approved && dec->approved != req->approved) {
        char why[160];
        snprintf(why, sizeof why, "%s contradicts $.params.decision.approved (%s)",
                 req->approved ? "true" : "false", dec->approved ? "true" : "false");
        return bad_param(call, "$.params.approved", why);
    }
    *approved = dec->has_approved ? dec->approved : req->approved;
    return 0;
}

/* The note from decision.note and/or the top-level note (NULL: none). */
static int decision_note(anvil_call *call, const anvil_submit_approval_request *req,
                         const char **note)
{
    const char *inner = req->decision.note, *outer = req->note;
    if (inner && outer && strcmp(inner, outer) != 0)
        return bad_param(call, "$.params.note", "differs from $.params.decision.note");
    *note = inner ? inner : outer;
    return 0;
}

int anvil_handle_submit_approval(anvil_call *call, const anvil_submit_approval_request *req,
                                 anvil_submit_approval_response *res)
{
    anvil_decision d = {
        .run_id = req->run_id,
        .node_id = req->node_id,
        .iteration = req->has_iteration ? req->iteration : 0,
        .value = req->decision.value,
    };
    if (verdict(call, req, &d.approved) != 0 || decision_note(call, req, &d.note) != 0)
        return -1;
    return decide(call, &d, res);
}

int anvil_handle_approve(anvil_call *call, const anvil_approve_request *req,
                         anvil_submit_approval_response *res)
{
    anvil_decision d = {
        .run_id = req->run_id,
        .node_id = req->node_id,
        .iteration = req->has_iteration ? req->iteration : 0,
        .approved = true,
        .note = req->note,
    };
    return decide(call, &d, res);
}

typedef struct approvals_ctx {
    anvil_list_approvals_response *res;
    size_t cap;
    bool oom;
} approvals_ctx;

static int add_approval(void *ctx, const anvil_approval_record *a)
{
    approvals_ctx *c = ctx;
    anvil_approval_summary *items = anvil_grow(c->res->items, c->res->count, &c->cap, sizeof *items);
    if (!items) {
        c->oom = true;
        return 1;
    }
    c->res->items = items;
    anvil_approval_summary *s = &c->res->items[c->res->count++];
    s->run_id = strdup(a->run_id);
    s->workflow_key = strdup(a->workflow);
    s->node_id = strdup(a->node_id);
    s->iteration = a->iteration;
    s->request_title = strdup(a->title);
    s->requested_at_ms = a->requested_at_ms;
    if (!s->run_id || !s->workflow_key || !s->node_id || !s->request_title)
        c->oom = true;
    return c->oom ? 1 : 0;
}

int anvil_handle_list_approvals(anvil_call *call, const anvil_list_approvals_request *req,
                                anvil_list_approvals_response *res)
{
    const anvil_list_approvals_request_filter *f = req->has_filter ? &req->filter : NULL;
    int64_t limit = f && f->has_limit ? f->limit : LIST_APPROVALS_MAX;
    if (limit > LIST_APPROVALS_MAX) {
        anvil_error_set(&call->err, ANVIL_ERR_INVALID_REQUEST,
                        "$.params.filter.limit: must be <= %d", LIST_APPROVALS_MAX);
        anvil_error_detail_str(&call->err, "path", "$.params.filter.limit");
        return -1;
    }
    approvals_ctx c = { .res = res };
    if (anvil_store_approvals_pending(call->svc->store, f ? f->run_id : NULL, f ? f->workflow : NULL,
                                      limit, add_approval, &c) < 0)
        return anvil_store_error(call->svc->store, &call->err, NULL);
    return c.oom ? anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory") : 0;
}
