/*
 * handlers/runs.c — launching, inspecting and steering runs: launchRun,
 * runs.rerun, getRun, listRuns, cancelRun, deleteRun, resumeRun, hijackRun.
 *
 * Requests arrive validated against the contract; these functions only do
 * what the engine and the store cannot decide alone (who launched, which
 * filter) and fill the generated response structs.
 *
 * `system` is false in every answer: the upstream marks runs of its
 * internal plumbing workflows as system runs, and every Anvil workflow is
 * one the operator configured (docs/workflows.md#visibility).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_print.h"
#include "anvil_handlers.h"
#include "dup_opt.h"
#include "anvil_statuses.h"
#include "call.h"
#include "run_lookup.h"
#include "started_by.h"
#include "clock.h"
#include "engine.h"
#include "engine_delete.h"
#include "store_runs.h"

#define LIST_RUNS_DEFAULT 50
#define LIST_RUNS_MAX 1000

static int no_engine(anvil_call *call)
{
    return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "the run engine is not running");
}

static int oom(anvil_call *call)
{
    return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
}

/* A launch by the calling principal: it owns the run, which runs with its
 * role and scopes (launchRun and runs.rerun alike). */
static anvil_launch launch_as_caller(const anvil_call *call, const char *workflow, const cJSON *input)
{
    const anvil_principal *p = call->principal;
    return (anvil_launch){
        .workflow = workflow,
        .input = input,
        .owner_id = p->user_id,
        .triggered_by = p->user_id ? p->user_id : "gateway",
        .role = p->role,
        .scopes = p->scopes,
        .n_scopes = p->n_scopes,
        .token_id = p->token_id,
    };
}

int anvil_handle_launch_run(anvil_call *call, const anvil_launch_run_request *req,
                            anvil_launch_run_response *res)
{
    anvil_engine *e = call->svc->engine;
    if (!e)
        return no_engine(call);
    anvil_launch l = launch_as_caller(call, req->workflow, req->input);
    cJSON *started_by = NULL;
    if (req->has_options) {
        const anvil_launch_run_request_options *o = &req->options;
        l.run_id = o->run_id;
        l.idempotency_key = o->idempotency_key;
        l.max_concurrency = o->has_max_concurrency ? o->max_concurrency : 0;
        l.tool_timeout_ms = o->has_tool_timeout_ms ? o->tool_timeout_ms : 0;
        l.max_output_bytes = o->has_max_output_bytes ? o->max_output_bytes : 0;
        if (o->has_started_by && anvil_started_by_normalize(call, &o->started_by, &started_by) != 0)
            return -1;
        l.started_by = started_by;
    }
    /* A repeated idempotency key answers the earlier run, whose recorded
     * provenance stands: this call's startedBy is not recorded. */
    bool existing = false;
    int rc = anvil_engine_launch(e, &l, &res->run_id, &existing, &call->err);
    cJSON_Delete(started_by);
    if (rc != 0)
        return -1;
    res->system = false;
    res->workflow = strdup(req->workflow);
    return res->workflow ? 0 : oom(call);
}

/* ---- runs.rerun ------------------------------------------------------------- */

/* A launch option as the engine recorded it in options_json; 0 (the
 * engine's "not set") when absent. */
static int64_t recorded_option(const cJSON *options, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(options, name);
    return cJSON_IsNumber(v) && v->valuedouble > 0 ? (int64_t)v->valuedouble : 0;
}

int anvil_handle_runs_rerun(anvil_call *call, const anvil_runs_rerun_request *req,
                            anvil_launch_run_response *res)
{
    anvil_run_record rec;
    if (anvil_handler_load_run(call, req->run_id, &rec) != 0)
        return -1;
    anvil_engine *e = call->svc->engine;
    if (!e) {
        anvil_run_record_clear(&rec);
        return no_engine(call);
    }
    /* The recorded input and options are the engine's own JSON; the run
     * id and idempotency key are not among the options (a rerun gets a
     * fresh id and no key, or it would be the same run). */
    cJSON *input = cJSON_Parse(rec.input_json);
    cJSON *options = cJSON_Parse(rec.options_json);
    int rc;
    if (!cJSON_IsObject(input) || !cJSON_IsObject(options)) {
        rc = anvil_error_set(&call->err, ANVIL_ERR_INTERNAL,
                             "run %s: its recorded input or options are not JSON objects", rec.run_id);
    } else {
        anvil_launch l = launch_as_caller(call, rec.workflow, input);
        /* The input is the earlier run's, as getRun shows it: it is checked
         * against today's inputSchema, which may have changed since. */
        l.input_at = "$.input";
        l.max_concurrency = recorded_option(options, "maxConcurrency");
        l.tool_timeout_ms = recorded_option(options, "toolTimeoutMs");
        l.max_output_bytes = recorded_option(options, "maxOutputBytes");
        /* The rerun is this caller's launch: the earlier run's startedBy
         * described who launched that one, so it is not copied. */
        bool existing = false;
        rc = anvil_engine_launch(e, &l, &res->run_id, &existing, &call->err);
        res->system = false;
        if (rc == 0 && !(res->workflow = strdup(rec.workflow)))
            rc = oom(call);
    }
    cJSON_Delete(input);
    cJSON_Delete(options);
    anvil_run_record_clear(&rec);
    return rc;
}

/* ---- getRun ---------------------------------------------------------------- */

typedef struct run_view_ctx {
    anvil_get_run_response *res;
    cJSON *summary;
    size_t cap;
    bool oom;
} run_view_ctx;

static int add_node(void *ctx, const anvil_node_record *n)
{
    run_view_ctx *v = ctx;
    anvil_get_run_response *res = v->res;
    anvil_node_state_view *items = anvil_grow(res->nodes.items, res->nodes.count, &v->cap,
                                              sizeof *items);
    if (!items) {
        v->oom = true;
        return 1;
    }
    res->nodes.items = items;
    anvil_node_state_view *s = &res->nodes.items[res->nodes.count++];
    s->node_id = strdup(n->node_id);
    s->kind = strdup(n->kind);
    s->state = strdup(n->state);
    s->iteration = n->iteration;
    s->attempts = n->attempts;
    if ((s->has_started_at_ms = n->started_at_ms >= 0))
        s->started_at_ms = n->started_at_ms;
    if ((s->has_finished_at_ms = n->finished_at_ms >= 0))
        s->finished_at_ms = n->finished_at_ms;
    s->error = n->error ? strdup(n->error) : NULL;
    if (!s->node_id || !s->kind || !s->state || (n->error && !s->error))
        v->oom = true;
    cJSON *count = cJSON_GetObjectItemCaseSensitive(v->summary, n->state);
    if (count)
        cJSON_SetNumberValue(count, count->valuedouble + 1);
    else if (!cJSON_AddNumberToObject(v->summary, n->state, 1))
        v->oom = true;
    return v->oom ? 1 : 0;
}

int anvil_handle_get_run(anvil_call *call, const anvil_get_run_request *req, anvil_get_run_response *res)
{
    anvil_store *s = call->svc->store;
    anvil_run_record rec;
    if (anvil_handler_load_run(call, req->run_id, &rec) != 0)
        return -1;
    bool bad = false;
    res->run_id = anvil_dup_opt(rec.run_id, &bad);
    res->workflow_key = anvil_dup_opt(rec.workflow, &bad);
    res->status = anvil_dup_opt(rec.status, &bad);
    res->created_at_ms = rec.created_at_ms;
    res->has_updated_at_ms = true;
    res->updated_at_ms = rec.updated_at_ms;
    if ((res->has_finished_at_ms = rec.finished_at_ms >= 0))
        res->finished_at_ms = rec.finished_at_ms;
    res->owner_id = anvil_dup_opt(rec.owner_id, &bad);
    res->triggered_by = anvil_dup_opt(rec.triggered_by, &bad);
    res->role = anvil_dup_opt(rec.role, &bad);
    res->token_id = anvil_dup_opt(rec.token_id, &bad);
    res->error = anvil_dup_opt(rec.error, &bad);
    res->input = cJSON_Parse(rec.input_json);
    res->has_cancel_requested = true;
    res->cancel_requested = rec.cancel_requested;
    res->has_frame_no = res->has_last_seq = true;
    res->frame_no = rec.frame_no;
    res->last_seq = rec.last_seq;
    cJSON *scopes = cJSON_Parse(rec.scopes_json);
    size_t n = cJSON_IsArray(scopes) ? (size_t)cJSON_GetArraySize(scopes) : 0;
    res->has_scopes = true;
    if (n) {
        res->scopes.items = calloc(n, sizeof *res->scopes.items);
        bad |= !res->scopes.items;
        for (const cJSON *x = scopes ? scopes->child : NULL; res->scopes.items && x; x = x->next)
            if (cJSON_IsString(x))
                res->scopes.items[res->scopes.count++] = anvil_dup_opt(x->valuestring, &bad);
    }
    cJSON_Delete(scopes);
    res->system = false;
    int viewed = anvil_started_by_view(call, rec.run_id, rec.started_by_json, &res->started_by,
                                       &res->has_started_by);
    anvil_run_record_clear(&rec);
    if (viewed != 0)
        return -1;

    run_view_ctx v = { .res = res, .summary = cJSON_CreateObject() };
    res->summary = v.summary;
    res->has_nodes = true;
    if (!v.summary || bad)
        return oom(call);
    if (anvil_store_nodes(s, req->run_id, add_node, &v) < 0)
        return anvil_store_error(s, &call->err, NULL);
    return v.oom ? oom(call) : 0;
}

/* ---- listRuns ----------------------------------------------------------------- */

typedef struct list_ctx {
    anvil_call *call;
    anvil_list_runs_response *res;
    size_t cap;
    bool oom;
    bool failed;                    /* call->err is set */
} list_ctx;

static int add_summary(void *ctx, const anvil_run_record *r)
{
    list_ctx *l = ctx;
    if (l->res->count == l->cap) {
        l->oom = true;
        return 1;
    }
    anvil_run_summary *s = &l->res->items[l->res->count++];
    s->run_id = anvil_dup_opt(r->run_id, &l->oom);
    s->workflow_key = anvil_dup_opt(r->workflow, &l->oom);
    s->status = anvil_dup_opt(r->status, &l->oom);
    s->has_created_at_ms = true;
    s->created_at_ms = r->created_at_ms;
    s->system = false;
    if (anvil_started_by_view(l->call, r->run_id, r->started_by_json, &s->started_by,
                              &s->has_started_by) != 0)
        l->failed = true;
    return l->oom || l->failed ? 1 : 0;
}

static int bad_filter(anvil_call *call, const char *path, const char *why)
{
    anvil_error_set(&call->err, ANVIL_ERR_INVALID_REQUEST, "%s: %s", path, why);
    anvil_error_detail_str(&call->err, "path", path);
    return -1;
}

/* includeSystem needs no branch: there are no system runs to include. An
 * unknown workflow key is not an error: it matches no run, as a status no
 * run has would (runs of a workflow since removed from the config are
 * still listed under its key). */
int anvil_handle_list_runs(anvil_call *call, const anvil_list_runs_request *req,
                           anvil_list_runs_response *res)
{
    const anvil_list_runs_request_filter *f = req->has_filter ? &req->filter : NULL;
    anvil_run_filter q = {
        .status = f ? f->status : NULL,
        .workflow = f ? f->workflow : NULL,
        .limit = f && f->has_limit ? f->limit : LIST_RUNS_DEFAULT,
        .offset = f && f->has_offset ? f->offset : 0,
    };
    anvil_run_status known;
    if (q.status && !anvil_run_status_parse(q.status, &known)) {
        char names[256], why[400];
        if (anvil_status_list(&anvil_run_status_table, names, sizeof names) != 0)
            return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "listing the run statuses failed");
        snprintf(why, sizeof why, "\"%.64s\" is not a run status (%s)", q.status, names);
        return bad_filter(call, "$.params.filter.status", why);
    }
    if (q.limit > LIST_RUNS_MAX) {
        char why[32];
        snprintf(why, sizeof why, "must be <= %d", LIST_RUNS_MAX);
        return bad_filter(call, "$.params.filter.limit", why);
    }
    list_ctx l = { .call = call, .res = res, .cap = (size_t)q.limit };
    res->items = calloc((size_t)q.limit, sizeof *res->items);
    if (!res->items)
        return oom(call);
    if (anvil_store_run_summaries(call->svc->store, &q, add_summary, &l) < 0 && !l.failed)
        return anvil_store_error(call->svc->store, &call->err, NULL);
    if (l.failed)
        return -1;
    return l.oom ? oom(call) : 0;
}

/* ---- cancel, resume, hijack --------------------------------------------------------- */

int anvil_handle_cancel_run(anvil_call *call, const anvil_cancel_run_request *req,
                            anvil_cancel_run_response *res)
{
    if (!call->svc->engine)
        return no_engine(call);
    if (anvil_engine_cancel(call->svc->engine, req->run_id, &call->err) != 0)
        return -1;
    res->run_id = strdup(req->run_id);
    res->status = strdup("cancelling");
    return res->run_id && res->status ? 0 : oom(call);
}

int anvil_handle_delete_run(anvil_call *call, const anvil_delete_run_request *req,
                            anvil_delete_run_response *res)
{
    if (!call->svc->engine)
        return no_engine(call);
    if (anvil_engine_delete_run(call->svc->engine, req->run_id, &call->err) != 0)
        return -1;
    res->run_id = strdup(req->run_id);
    res->deleted = true;
    return res->run_id ? 0 : oom(call);
}

int anvil_handle_resume_run(anvil_call *call, const anvil_resume_run_request *req,
                            anvil_resume_run_response *res)
{
    if (!call->svc->engine)
        return no_engine(call);
    bool terminal = false;
    bool force = req->has_options && req->options.has_force && req->options.force;
    if (anvil_engine_resume(call->svc->engine, req->run_id, force, &terminal, &call->err) != 0)
        return -1;
    res->run_id = strdup(req->run_id);
    res->status = strdup(terminal ? "already_terminal" : "resume_requested");
    return res->run_id && res->status ? 0 : oom(call);
}

int anvil_handle_hijack_run(anvil_call *call, const anvil_hijack_run_request *req,
                            anvil_hijack_run_response *res)
{
    anvil_store *s = call->svc->store;
    anvil_run_record rec;
    if (anvil_handler_load_run(call, req->run_id, &rec) != 0)
        return -1;
    anvil_run_record_clear(&rec);
    char uuid[37];
    if (anvil_uuid4(uuid) != 0)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "no randomness for a session id");
    char *options = req->options ? anvil_json_print(req->options) : NULL;
    const anvil_principal *p = call->principal;
    int rc = anvil_store_hijack_insert(s, uuid, req->run_id, p->user_id, p->role ? p->role : "operator",
                                       p->token_id, options, anvil_now_ms());
    free(options);
    if (rc != 0)
        return anvil_store_error(s, &call->err, NULL);
    res->run_id = strdup(req->run_id);
    res->status = strdup("hijack-ready");
    res->session_id = strdup(uuid);
    return res->run_id && res->status && res->session_id ? 0 : oom(call);
}
