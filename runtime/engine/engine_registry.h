/*
 * runtime/engine/engine_registry.h — the engine's active runs, by run id.
 *
 * An intrusive table (htab.h) of run_rt.link: a lookup allocates nothing.
 * The registry owns the runs in it; forgetting one frees it.
 */
#ifndef ANVIL_ENGINE_REGISTRY_H
#define ANVIL_ENGINE_REGISTRY_H

#include "engine_types_internal.h"

/* The active run with this id, or NULL. */
run_rt *anvil_registry_find(anvil_engine *e, const char *run_id);

/* Take ownership of r, whose id is not active yet (asserted). 0, or -1
 * when out of memory (r stays the caller's). */
int anvil_registry_add(anvil_engine *e, run_rt *r);

/* Drop r and free it. Only once no task of it runs and no advance() of it
 * is on the stack (asserted; a run with tasks is kept in a release build). */
void anvil_registry_forget(anvil_engine *e, run_rt *r);

size_t anvil_registry_count(const anvil_engine *e);

/* Whether a rewind of run_id is in flight (its run is then in no one's
 * hands: every operation on it answers Busy). */
bool anvil_registry_rewinding(const anvil_engine *e, const char *run_id);

/* Whether a run id matches ^[a-z0-9_-]{1,64}$, the pattern every run id
 * has (so every run can be rewound). */
bool anvil_run_id_valid(const char *id);

/* The configured workflow named `name`, or NULL. */
const anvil_workflow *anvil_registry_workflow(const anvil_engine *e, const char *name);

/* Call fn for every active run, in no particular order. fn may forget the
 * run it is given, and no other. */
void anvil_registry_each(anvil_engine *e, void (*fn)(run_rt *r, void *ctx), void *ctx);

/* Shutdown: free every run. Exit callbacks will not run any more, so the
 * attempt contexts they would have freed are freed here. */
void anvil_registry_clear(anvil_engine *e);

#endif
