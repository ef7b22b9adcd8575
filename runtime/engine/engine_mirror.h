/*
 * runtime/engine/engine_mirror.h — one run's in-memory mirror: building and
 * freeing it, and every change of its status and node states.
 *
 * No other file writes node_rt.state or run_rt.rec.status, and every
 * change is asserted to be a legal one:
 *   pending  -> running, waiting, failed, cancelled, skipped
 *   running  -> pending (a retry), finished, failed, cancelled, skipped
 *   waiting  -> finished, failed, cancelled, skipped
 * A terminal node (finished, failed, cancelled, skipped) changes only
 * through a forced resume (anvil_node_reopen) or a rewind (anvil_node_rewind).
 * A run's status moves between non-terminal values and into a terminal
 * one; out of a terminal status only through a forced resume
 * (anvil_run_reopen) or a rewind (anvil_run_rewind). These change the mirror
 * only: recording them is engine_record.h's job.
 */
#ifndef ANVIL_ENGINE_MIRROR_H
#define ANVIL_ENGINE_MIRROR_H

#include "engine_types_internal.h"

/* A run of `wf` with every node pending and an empty record. NULL when out
 * of memory. Freed with anvil_run_free. */
run_rt *anvil_run_new(anvil_engine *e, const anvil_workflow *wf);
/* Read maxConcurrency, toolTimeoutMs and maxOutputBytes from rec.options_json. */
void anvil_run_apply_options(run_rt *r);
void anvil_run_free(run_rt *r);

/* True once the run's status is terminal. */
bool anvil_run_ended(const run_rt *r);
/* Set the status of a run that has not ended (asserted). 0, or -1 when
 * out of memory (unchanged). */
int anvil_run_set_status(run_rt *r, anvil_run_status status);
/* Forced resume of an ended run: running again, no error, no cancellation,
 * not finished and not completed. 0, or -1 when out of memory. */
int anvil_run_reopen(run_rt *r);

/* Fill a node from its stored row (recovery). An unknown state reads as
 * pending. */
void anvil_node_load(node_rt *n, const anvil_node_record *rec);
/* A legal state change (asserted). The caller stamps the times, with the
 * same clock reading it records elsewhere in the transaction. */
void anvil_node_set_state(node_rt *n, anvil_node_state to);
/* Put back the state and finish time a change had before its recording
 * failed, so the mirror stays what the database holds. */
void anvil_node_restore(node_rt *n, anvil_node_state was, int64_t was_finished_at_ms);
/* Forced resume: an ended node other than finished back to pending, with
 * no error and no finish time. */
void anvil_node_reopen(node_rt *n);

/* Rewind (engine_rewind.h): the node is put back to what a frame recorded,
 * whatever it is now. `state` must not be running (a rewind restarts the
 * attempt a frame saw running); `error` is copied (NULL: none). Pending
 * clears both times, waiting the finish time. 0, or -1 when out of memory
 * (unchanged). */
int anvil_node_rewind(node_rt *n, anvil_node_state state, int64_t attempts, const char *error);
/* Rewind: the run is running again, with no error, no cancellation and no
 * finish time, whatever its status was; `completed` says whether the frame
 * it goes back to already holds run.completed. 0, or -1 when out of memory. */
int anvil_run_rewind(run_rt *r, bool completed);

#endif
