/*
 * runtime/engine/engine_load.h — a run's in-memory mirror rebuilt from its
 * database rows (engine_types_internal.h), and the two checks a reloaded run
 * needs before it is driven: attempts the last server left running, and
 * signals stored while a node waited.
 *
 * Loop thread only, like the rest of the engine.
 */
#ifndef ANVIL_ENGINE_LOAD_H
#define ANVIL_ENGINE_LOAD_H

#include <stdbool.h>

#include "engine_types_internal.h"

/* A run's mirror built from its rows (the record is taken over: *rec is
 * left empty). NULL when out of memory or a read failed; *no_workflow is
 * set (and NULL returned) when its workflow is no longer configured. Not
 * yet in the registry. */
run_rt *anvil_run_load(anvil_engine *e, anvil_run_record *rec, bool *no_workflow);

/* anvil_run_load and add to the registry; an anvil_run_record_fn (ctx is
 * the engine). A run whose workflow is gone is logged and skipped. 0 / -1. */
int anvil_run_load_register(void *ctx, const anvil_run_record *rec);

/* Attempts the last server left running were cut short by its end, not
 * by the task: each is recorded as interrupted and its node runs again
 * without using a retry (engine_task.h). */
void anvil_run_recover_interrupted(run_rt *r);

/* Deliver signals that were stored while a node waited but not taken. */
void anvil_run_recover_signal_waits(run_rt *r);

/* The correlation key a waiting signal node matches: *key is its
 * expansion (malloc'd), or NULL when the node has none. False when the
 * template cannot be expanded for this run (then no signal matches). */
bool anvil_run_correlation_key(const run_rt *r, const node_rt *n, char **key);

#endif
