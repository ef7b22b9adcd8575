/*
 * runtime/engine/engine_record.h — recording a run's changes.
 *
 * Each change is one transaction: anvil_run_begin, the rows it touches and
 * one anvil_run_note per event, anvil_run_end. A note updates the run row
 * (with the status derived from the node states), may add a frame (the
 * node tree with states) and appends an event with the run's next seq; the
 * events are published on the bus only once the change is durable: at its
 * commit, or with group commit (store_txn.h) when the batch it was released
 * into commits. A lost batch marks every run it touched broken. The change
 * that ends a run records run.completed with it.
 *
 * Transactions do not nest, and every note is inside one (asserted).
 */
#ifndef ANVIL_ENGINE_RECORD_H
#define ANVIL_ENGINE_RECORD_H

#include "engine_types_internal.h"

/* Begin the transaction for a change of r. 0 / -1 (the run is broken, or
 * is marked so now). */
int anvil_run_begin(run_rt *r);

/* Inside the transaction: persist the run row, a frame (when `frame`) and
 * one event with the run's next seq (payload consumed), queued for
 * publication. 0 / -1. */
int anvil_run_note(run_rt *r, bool frame, const char *event, cJSON *payload);

/* End the transaction: commit and publish when ok, else roll back and drop
 * the queued events. A failed write marks the run broken (it stays as the
 * database last saw it; a restart resumes from there). 0 / -1. */
int anvil_run_end(run_rt *r, bool ok);

/* The run row now holds r->rec (after an insert or a full update made
 * outside anvil_run_end), so the next change can tell what moved. */
void anvil_run_row_written(run_rt *r);

/* Inside the transaction: write a node's row. 0 / -1. */
int anvil_run_put_node(run_rt *r, node_rt *n);

/* A payload object with runId, nodeId, iteration (0) and kind; NULL when
 * out of memory. */
cJSON *anvil_run_node_payload(run_rt *r, const node_rt *n);

/* Record run.completed, in a transaction of its own, for a run whose end
 * is only found by deriving its status now (no-op otherwise). */
void anvil_run_complete_if_done(run_rt *r);

/* r has ended and no task of it runs: take it out of the registry, now,
 * or once the batch that recorded its end is durable (should that batch
 * be lost, r must still be there to be reloaded). */
void anvil_run_forget_when_done(run_rt *r);

/* A write of r failed or could not be made: stop writing for it and have
 * the repair timer reload it from the database (engine.c). */
void anvil_run_mark_broken(run_rt *r);

/* Run the repair timer at the next loop turn (a broken run's last task
 * just ended, so it can be reloaded now). */
void anvil_engine_repair_soon(anvil_engine *e);

#endif
