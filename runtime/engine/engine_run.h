/*
 * runtime/engine/engine_run.h — one run's state machine: which node starts
 * next, how results roll up the tree, signals reaching waiting nodes, and
 * the end of a cancelled run.
 */
#ifndef ANVIL_ENGINE_RUN_H
#define ANVIL_ENGINE_RUN_H

#include "engine_types_internal.h"

/* Drive the run until nothing more can start now. Called after every
 * change; a call made while one is already on the stack asks that one for
 * another pass. A run that has ended (and whose tasks are gone) is
 * forgotten: r may be freed on return. */
void anvil_run_advance(run_rt *r);

/* Take the oldest stored signal a waiting signal node matches (name, and
 * correlation `key` when not NULL): its payload becomes the node's output
 * row and the node finishes, in one transaction with the signal's
 * consumption. 1 delivered, 0 none stored, -1 not recorded (the signal
 * stays stored, the node waits, the run is broken). */
int anvil_signal_take(run_rt *r, node_rt *n, const char *key);

#endif
