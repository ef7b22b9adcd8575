/*
 * handlers/cron.c — cron schedules: cronList, cronCreate, cronDelete,
 * cronRun (legacy cron.list, cron.add, cron.remove, cron.trigger).
 *
 * Rows live in the store (store_cron.h); runtime/cron/cron_sched.c fires them.
 * nextRunAtMs is computed from the scheduler's clock (anvil_cron_now_ms),
 * so it agrees with what the scheduler will compare it against. A manual
 * cronRun launches as the caller (like launchRun); only scheduled firings
 * run as role system / triggeredBy cron:gateway. Neither is a "system"
 * run in the upstream's sense (a run of an internal workflow), so cronRun
 * answers `system: false` like launchRun.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anvil_handlers.h"
#include "call.h"
#include "clock.h"
#include "config.h"
#include "cron_expr.h"
#include "cron_sched.h"
#include "store_cron.h"

static int oom(anvil_call *call)
{
    return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
}

static int store_failed(anvil_call *call)
{
    return anvil_store_error(call->svc->store, &call->err, NULL);
}

static int bad_field(anvil_call *call, const char *path, const char *what, const char *arg)
{
    anvil_error_set(&call->err, ANVIL_ERR_INVALID_REQUEST, "%s: %s%s", path, what, arg);
    anvil_error_detail_str(&call->err, "path", path);
    return -1;
}

/* ---- the CronRow answer ------------------------------------------------------ */

/* The file the config loaded `workflow` from, or "" when the config no
 * longer names it (a cronCreate row outliving its workflow; it cannot fire
 * then). The upstream answers "" for an unknown path too. */
static const char *workflow_path(const anvil_call *call, const char *workflow)
{
    const anvil_config *cfg = call->svc->config;
    for (size_t i = 0; i < cfg->n_workflows; i++)
        if (strcmp(cfg->workflows[i].name, workflow) == 0 && cfg->workflows[i].file)
            return cfg->workflows[i].file;
    return "";
}

/* Fill *out from a stored row. 0, or -1 when out of memory (the strings
 * set so far are freed with the response). */
static int fill_row(const anvil_call *call, const anvil_cron_record *r, anvil_cron_row *out)
{
    out->cron_id = strdup(r->cron_id);
    out->workflow = strdup(r->workflow);
    out->workflow_path = strdup(workflow_path(call, r->workflow));
    out->pattern = strdup(r->pattern);
    out->enabled = r->enabled;
    out->created_at_ms = r->created_at_ms;
    if ((out->has_next_run_at_ms = r->next_run_at_ms >= 0))
        out->next_run_at_ms = r->next_run_at_ms;
    if ((out->has_last_run_at_ms = r->last_run_at_ms >= 0))
        out->last_run_at_ms = r->last_run_at_ms;
    return out->cron_id && out->workflow && out->workflow_path && out->pattern ? 0 : -1;
}

/* ---- cronList ------------------------------------------------------------- */

typedef struct list_ctx {
    const anvil_call *call;
    anvil_cron_list_response *res;
    size_t cap;
    bool oom;
} list_ctx;

static int add_row(void *ctx, const anvil_cron_record *r)
{
    list_ctx *l = ctx;
    anvil_cron_row *items = anvil_grow(l->res->items, l->res->count, &l->cap, sizeof *items);
    if (!items) {
        l->oom = true;
        return 1;
    }
    l->res->items = items;
    if (fill_row(l->call, r, &l->res->items[l->res->count++]) != 0) {
        l->oom = true;
        return 1;
    }
    return 0;
}

int anvil_handle_cron_list(anvil_call *call, const anvil_cron_list_request *req,
                           anvil_cron_list_response *res)
{
    const char *workflow = req->has_filter ? req->filter.workflow : NULL;
    list_ctx l = { .call = call, .res = res };
    if (anvil_store_crons_list(call->svc->store, workflow, add_row, &l) < 0)
        return store_failed(call);
    return l.oom ? oom(call) : 0;
}

/* ---- cronCreate ------------------------------------------------------------- */

int anvil_handle_cron_create(anvil_call *call, const anvil_cron_create_request *req,
                             anvil_cron_row *res)
{
    anvil_store *s = call->svc->store;
    anvil_cron c;
    char perr[200];
    if (anvil_cron_parse(req->pattern, &c, perr, sizeof perr) != 0)
        return bad_field(call, "$.params.pattern", "Invalid cron pattern: ", perr);
    if (!call->svc->engine || !anvil_engine_workflow(call->svc->engine, req->workflow))
        return bad_field(call, "$.params.workflow", "Unknown workflow: ", req->workflow);
    if (req->cron_id && (!*req->cron_id || strlen(req->cron_id) > 200))
        return bad_field(call, "$.params.cronId", "cronId must be 1-200 characters", "");

    char gen[64];
    const char *id = req->cron_id;
    if (!id) {
        char uuid[37];
        if (anvil_uuid4(uuid) != 0)
            return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "no randomness");
        size_t j = 0;
        j += (size_t)snprintf(gen, sizeof gen, "cron_");
        for (const char *p = uuid; *p && j + 1 < sizeof gen; p++)
            if (*p != '-')
                gen[j++] = *p;
        gen[j] = '\0';
        id = gen;
    }
    anvil_cron_record r = {
        .cron_id = (char *)id,
        .workflow = req->workflow,
        .pattern = req->pattern,
        .enabled = req->has_enabled ? req->enabled : true,
        .next_run_at_ms = anvil_cron_next(&c, anvil_cron_now_ms()),
        .last_run_at_ms = -1,
        .created_at_ms = anvil_now_ms(),
    };
    r.updated_at_ms = r.created_at_ms;
    if (anvil_store_cron_put(s, &r) != 0)
        return store_failed(call);
    anvil_cron_record saved;
    if (anvil_store_cron_get(s, id, &saved) != 1)
        return store_failed(call);
    int rc = fill_row(call, &saved, res);
    anvil_cron_record_clear(&saved);
    return rc == 0 ? 0 : oom(call);
}

/* ---- cronDelete ---------------------------------------------------------------- */

int anvil_handle_cron_delete(anvil_call *call, const anvil_cron_delete_request *req,
                             anvil_cron_delete_response *res)
{
    int n = anvil_store_cron_delete(call->svc->store, req->cron_id);
    if (n < 0)
        return store_failed(call);
    if (n == 0) {
        anvil_error_set(&call->err, ANVIL_ERR_RUN_NOT_FOUND, "Cron not found: %s", req->cron_id);
        anvil_error_detail_str(&call->err, "cronId", req->cron_id);
        return -1;
    }
    res->cron_id = strdup(req->cron_id);
    res->removed = true;
    return res->cron_id ? 0 : oom(call);
}

/* ---- cronRun ----------------------------------------------------------------------- */

int anvil_handle_cron_run(anvil_call *call, const anvil_cron_run_request *req,
                          anvil_cron_run_response *res)
{
    anvil_engine *e = call->svc->engine;
    anvil_store *s = call->svc->store;
    if (!req->cron_id && !req->workflow)
        return bad_field(call, "$.params", "cronRun needs cronId or workflow", "");
    if (!e)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "the run engine is not running");
    anvil_cron_record row = { 0 };
    const char *workflow = req->workflow;
    if (req->cron_id) {
        int found = anvil_store_cron_get(s, req->cron_id, &row);
        if (found < 0)
            return store_failed(call);
        if (found == 0) {
            anvil_error_set(&call->err, ANVIL_ERR_RUN_NOT_FOUND, "Cron not found: %s",
                            req->cron_id);
            anvil_error_detail_str(&call->err, "cronId", req->cron_id);
            return -1;
        }
        if (req->workflow && strcmp(req->workflow, row.workflow) != 0) {
            anvil_error_set(&call->err, ANVIL_ERR_INVALID_REQUEST,
                            "$.params.workflow: cron %s runs workflow %s, not %s", row.cron_id, row.workflow,
                            req->workflow);
            anvil_error_detail_str(&call->err, "path", "$.params.workflow");
            anvil_cron_record_clear(&row);
            return -1;
        }
        workflow = row.workflow;
    }
    const anvil_principal *p = call->principal;
    anvil_launch l = {
        .workflow = workflow,
        .input = req->input,
        .owner_id = p->user_id,
        .triggered_by = p->user_id ? p->user_id : "gateway",
        .role = p->role,
        .scopes = p->scopes,
        .n_scopes = p->n_scopes,
        .token_id = p->token_id,
    };
    bool existing = false;
    int rc = anvil_engine_launch(e, &l, &res->run_id, &existing, &call->err);
    if (rc == 0 && row.cron_id && anvil_store_cron_ran(s, row.cron_id, anvil_cron_now_ms()) < 0)
        rc = store_failed(call);
    res->system = false;
    if (rc == 0 && !(res->workflow = strdup(workflow)))
        rc = oom(call);
    anvil_cron_record_clear(&row);
    anvil_cron_metrics_manual(rc == 0);
    return rc;
}
