/*
 * runtime/engine/engine_registry.c — the active runs by id (engine_registry.h).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "engine_mirror.h"
#include "engine_registry.h"

static run_rt *run_of(anvil_hnode *node)
{
    return ANVIL_CONTAINER_OF(node, run_rt, link);
}

static bool has_id(const anvil_hnode *node, const void *run_id)
{
    return strcmp(ANVIL_CONTAINER_OF(node, const run_rt, link)->rec.run_id, run_id) == 0;
}

run_rt *anvil_registry_find(anvil_engine *e, const char *run_id)
{
    anvil_hnode *node = anvil_htab_find(&e->runs, anvil_hash_str(run_id), has_id, run_id);
    return node ? run_of(node) : NULL;
}

int anvil_registry_add(anvil_engine *e, run_rt *r)
{
    assert(!anvil_registry_find(e, r->rec.run_id));
    return anvil_htab_insert(&e->runs, &r->link, anvil_hash_str(r->rec.run_id));
}

void anvil_registry_forget(anvil_engine *e, run_rt *r)
{
    assert(r->running_tasks == 0 && !r->advancing);
    /* A running task's exit callback still points at r. */
    if (r->running_tasks > 0)
        return;
    if (anvil_htab_remove(&e->runs, &r->link))
        anvil_run_free(r);
}

size_t anvil_registry_count(const anvil_engine *e)
{
    return e->runs.count;
}

typedef struct each_ctx {
    void (*fn)(run_rt *r, void *ctx);
    void *ctx;
} each_ctx;

static void each_one(anvil_hnode *node, void *ctx)
{
    each_ctx *c = ctx;
    c->fn(run_of(node), c->ctx);
}

void anvil_registry_each(anvil_engine *e, void (*fn)(run_rt *r, void *ctx), void *ctx)
{
    each_ctx c = { fn, ctx };
    anvil_htab_each(&e->runs, each_one, &c);
}

static void free_one(anvil_hnode *node, void *ctx)
{
    (void)ctx;
    run_rt *r = run_of(node);
    for (size_t i = 0; i < r->wf->n_nodes; i++)
        free(r->nodes[i].proc_ctx);
    anvil_run_free(r);
}

void anvil_registry_clear(anvil_engine *e)
{
    anvil_htab_each(&e->runs, free_one, NULL);
    anvil_htab_clear(&e->runs);
}

const anvil_workflow *anvil_registry_workflow(const anvil_engine *e, const char *name)
{
    for (size_t i = 0; i < e->n_workflows; i++)
        if (strcmp(e->workflows[i].name, name) == 0)
            return e->workflows[i].wf;
    return NULL;
}

bool anvil_registry_rewinding(const anvil_engine *e, const char *run_id)
{
    for (const rewind_slot *s = e->rewinds; s; s = s->next)
        if (strcmp(s->run_id, run_id) == 0)
            return true;
    return false;
}

bool anvil_run_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return false;
    return true;
}
