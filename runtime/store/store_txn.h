/*
 * runtime/store/store_txn.h — transactions, and group commit.
 *
 * Without group commit (the CLI, the unit tests) anvil_store_begin opens a
 * transaction and the outermost anvil_store_commit commits it: durable on
 * return.
 *
 * With group commit (anvil_store_group_commit, the server) the changes of
 * one loop turn share one SQLite transaction, the batch. The first begin
 * opens it and calls the owner's `opened` hook, which schedules
 * anvil_store_flush for the end of the turn. Each change inside it is a
 * savepoint: anvil_store_commit releases it (the change is then part of
 * the batch, not yet durable) and anvil_store_rollback undoes that change
 * alone. Statements outside begin/commit join the batch too. Whoever must
 * not act before a change is durable (answer a caller, publish an event,
 * start a process, remove a file) registers with anvil_store_when_durable
 * or flushes at once with anvil_store_flush.
 *
 * A failed flush loses the whole batch: every callback is told so (ok
 * false), and the store's failure (anvil_store_error) says why. SQLite may
 * also roll the batch back on its own after a full disk or an I/O error in
 * any statement; the store notices, refuses further changes, and the next
 * flush reports the loss.
 *
 * Loop thread only (the store's connection is the loop's).
 */
#ifndef ANVIL_STORE_TXN_H
#define ANVIL_STORE_TXN_H

#include <stdbool.h>

/* As in store.h (C11 allows the repeat): store.c closes through this
 * header, so it must not include store.h back. */
typedef struct anvil_store anvil_store;

/* Begin a change; nested calls only count. 0 / -1. */
int anvil_store_begin(anvil_store *s);
/* End the outermost change: COMMIT (without group commit) or release it
 * into the batch. 0 / -1 (the change is rolled back). */
int anvil_store_commit(anvil_store *s);
/* Undo the current change whatever the nesting (the batch's earlier
 * changes stay). */
void anvil_store_rollback(anvil_store *s);

/* Turn group commit on: `opened(ctx)` is called when a batch opens and
 * must arrange for anvil_store_flush to run soon (on the loop thread). */
void anvil_store_group_commit(anvil_store *s, void (*opened)(void *ctx), void *ctx);

/* Whether changes are waiting in an open batch. */
bool anvil_store_batch_open(const anvil_store *s);

/* Called once the open batch is durable (ok) or lost (!ok). */
typedef void (*anvil_store_durable_fn)(void *ctx, bool ok);

/* Call fn(ctx, ok) when the open batch ends, in registration order; the
 * batch is closed by then, so fn may begin new changes. 0, or -1 when no
 * batch is open or out of memory (then nothing is registered: flush and
 * act at once). */
int anvil_store_when_durable(anvil_store *s, anvil_store_durable_fn fn, void *ctx);

/* Commit the open batch now and call its callbacks. 0 when it is durable
 * (or none was open), -1 when it was lost (the failure is recorded for
 * anvil_store_error). Never inside a change. */
int anvil_store_flush(anvil_store *s);

/* The store's metrics (docs/metrics.md): commit latency and counts. */
struct anvil_metrics_out;
void anvil_store_metrics_render(struct anvil_metrics_out *o);

#endif
