/*
 * handlers/workflows.c — `listWorkflows`: the registered workflows, sorted
 * by key, optionally only those with (or without) a UI mount.
 *
 * The upstream hides its internal plumbing workflows (`system: true`)
 * unless the filter says includeSystem. Anvil registers only the
 * workflows of the operator's config, none of them internal, so every
 * summary says `system: false` and includeSystem changes nothing
 * (docs/workflows.md#visibility).
 *
 * `inputSchema` is the workflow's declared launch input, read from the
 * engine's loaded copy of the file (the config keeps only its header);
 * absent when the workflow declares none.
 */
#include <stdlib.h>
#include <string.h>

#include "anvil_handlers.h"
#include "call.h"
#include "config.h"
#include "engine.h"
#include "field_desc.h"

static int by_key(const void *a, const void *b)
{
    return strcmp(((const anvil_workflow_summary *)a)->key, ((const anvil_workflow_summary *)b)->key);
}

static char *dup_or_null(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

int anvil_handle_list_workflows(anvil_call *call, const anvil_list_workflows_request *req,
                                anvil_list_workflows_response *res)
{
    const anvil_config *cfg = call->svc->config;
    bool filter = req->has_filter && req->filter.has_has_ui;
    if (cfg->n_workflows == 0)
        return 0;
    res->items = calloc(cfg->n_workflows, sizeof *res->items);
    if (!res->items)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
    bool oom = false;
    for (size_t i = 0; i < cfg->n_workflows; i++) {
        const anvil_workflow_ref *w = &cfg->workflows[i];
        bool has_ui = w->ui.path != NULL;
        if (filter && has_ui != req->filter.has_ui)
            continue;
        anvil_workflow_summary *s = &res->items[res->count++];
        s->key = dup_or_null(w->name, &oom);
        s->readable_name = dup_or_null(w->readable_name, &oom);
        s->description = dup_or_null(w->description, &oom);
        s->has_ui = has_ui;
        s->ui_path = dup_or_null(w->ui.path, &oom);
        s->system = false;
        if (!s->key)
            oom = true;
        const anvil_workflow *wf = call->svc->engine
                                       ? anvil_engine_workflow(call->svc->engine, w->name) : NULL;
        if (wf && wf->input_schema) {
            s->has_input_schema = true;
            if (anvil_field_desc_fill(wf->input_schema, &s->input_schema.fields.items,
                                      &s->input_schema.fields.count) != 0)
                oom = true;
        }
    }
    if (oom)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
    qsort(res->items, res->count, sizeof *res->items, by_key);
    return 0;
}
