/*
 * runtime/store/store_retention.h — removing runs (migration 8).
 *
 * A run is removed with every row recorded for it in one transaction
 * (docs/runs.md#deleterun). Its workspace directory and repository are
 * files, outside any transaction: the same transaction queues them in
 * workspace_removals, and the engine clears the row once the files are
 * gone, so a crash between the commit and the removal leaves a row the
 * next start (or retention pass) finishes, never an orphan no one knows of.
 *
 * The store does not decide whether a run may be removed (the engine
 * does: ended, not being rewound); it only removes what it is told to.
 */
#ifndef ANVIL_STORE_RETENTION_H
#define ANVIL_STORE_RETENTION_H

#include <stdint.h>

#include "store.h"

/* Remove run_id's rows (events, frames, nodes, attempts, outputs,
 * approvals, signals with their delivery keys, hijack sessions, rewind
 * audit rows, the run) and queue its workspace for removal, in one
 * transaction (nested in the caller's, if any). state_version is the
 * version the removal itself takes: the floor below which the version
 * read at startup may not fall (anvil_store_events_max_state_version).
 * 1 removed, 0 no such run (nothing changed), -1 (rolled back). Every
 * statement is a search of a run_id index. */
int anvil_store_run_delete(anvil_store *s, const char *run_id, int64_t state_version,
                           int64_t now_ms);

/* The run ids whose workspaces are queued for removal, oldest first, at
 * most `limit`; fn's run_id is valid during the call only, and fn may
 * return non-zero to stop. Rows seen, or -1. */
typedef int (*anvil_removal_fn)(void *ctx, const char *run_id);
int anvil_store_workspace_removals(anvil_store *s, int64_t limit, anvil_removal_fn fn, void *ctx);

/* run_id's workspace is gone from disk: forget its queue row. 0 / -1. */
int anvil_store_workspace_removal_done(anvil_store *s, const char *run_id);

#endif
