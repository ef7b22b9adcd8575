/*
 * runtime/engine/engine_load.c — a run's mirror built from its rows: at
 * startup, after a failed write, for a forced resume and after a rewind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_load.h"
#include "engine_mirror.h"
#include "engine_record.h"
#include "engine_registry.h"
#include "engine_run.h"
#include "engine_task.h"
#include "log.h"

static int load_node(void *ctx, const anvil_node_record *rec)
{
    run_rt *r = ctx;
    const anvil_wf_node *def = anvil_workflow_node(r->wf, rec->node_id);
    if (!def || rec->iteration != 0)
        return 0;   /* a node of an older version of the file: ignored */
    anvil_node_load(&r->nodes[def->index], rec);
    return 0;
}

void anvil_run_recover_interrupted(run_rt *r)
{
    for (size_t i = 0; i < r->wf->n_nodes && !r->broken; i++) {
        node_rt *n = &r->nodes[i];
        if (n->def->kind != ANVIL_NODE_TASK || n->attempts == 0)
            continue;
        /* Any task that ran: its earlier interruptions are not charged to
         * its retries either. */
        if (anvil_store_attempt_interruptions(r->eng->store, r->rec.run_id, n->def->id, 0,
                                              &n->interrupted, &n->interrupt_streak) != 0) {
            anvil_run_mark_broken(r);
            return;
        }
        if (n->state == ANVIL_NODE_STATE_RUNNING)
            anvil_task_record_interrupted(r, n, "the server stopped while the task was running",
                                          NULL, NULL, NULL);
    }
}

bool anvil_run_correlation_key(const run_rt *r, const node_rt *n, char **key)
{
    *key = NULL;
    if (!n->def->correlation_key)
        return true;
    char err[200];
    *key = anvil_template_expand(n->def->correlation_key, ANVIL_TEMPLATE_TEXT, r->input,
                                 r->outputs, err, sizeof err);
    return *key != NULL;
}

void anvil_run_recover_signal_waits(run_rt *r)
{
    for (size_t i = 0; i < r->wf->n_nodes; i++) {
        node_rt *n = &r->nodes[i];
        if (n->def->kind != ANVIL_NODE_SIGNAL || n->state != ANVIL_NODE_STATE_WAITING)
            continue;
        char *key;
        if (!anvil_run_correlation_key(r, n, &key))
            continue;
        anvil_signal_take(r, n, key);
        free(key);
    }
}

run_rt *anvil_run_load(anvil_engine *e, anvil_run_record *rec, bool *no_workflow)
{
    *no_workflow = false;
    const anvil_workflow *wf = anvil_registry_workflow(e, rec->workflow);
    if (!wf) {
        *no_workflow = true;
        return NULL;
    }
    run_rt *r = anvil_run_new(e, wf);
    if (!r)
        return NULL;
    r->rec = *rec;
    memset(rec, 0, sizeof *rec);
    r->input = cJSON_Parse(r->rec.input_json);
    if (!r->input)
        r->input = cJSON_CreateObject();
    anvil_run_apply_options(r);
    char *outputs = NULL;
    if (anvil_store_nodes(e->store, r->rec.run_id, load_node, r) < 0 ||
        anvil_store_outputs_json(e->store, r->rec.run_id, &outputs) != 0) {
        free(outputs);
        anvil_run_free(r);
        return NULL;
    }
    cJSON *o = outputs ? cJSON_Parse(outputs) : NULL;
    free(outputs);
    if (o) {
        cJSON_Delete(r->outputs);
        r->outputs = o;
    }
    return r;
}

int anvil_run_load_register(void *ctx, const anvil_run_record *rec)
{
    anvil_engine *e = ctx;
    bool no_workflow;
    /* The record is the caller's and freed after this call: anvil_run_load
     * takes a copy's contents. */
    anvil_run_record copy = *rec;
    memset((void *)rec, 0, sizeof *rec);
    run_rt *r = anvil_run_load(e, &copy, &no_workflow);
    if (no_workflow) {
        anvil_log_run(ANVIL_LOG_WARN, copy.run_id,
                      "run %s: workflow %s is no longer configured; left as %s",
                      copy.run_id, copy.workflow, copy.status);
        anvil_run_record_clear(&copy);
        return 0;
    }
    anvil_run_record_clear(&copy);   /* empty unless anvil_run_load failed early */
    if (!r || anvil_registry_add(e, r) != 0) {
        if (r)
            anvil_run_free(r);
        return -1;
    }
    return 0;
}
