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

/* The retention policy's candidates among the ended runs of `workflow`
 * (ids malloc'd into ids[], at most `limit`, *n of them): those that ended
 * before before_ms, oldest first; or those beyond the newest `keep`, in
 * any order. Searches of the partial index runs_ended: the cost is the
 * rows returned (plus `keep` index entries skipped), never the history.
 * 0 / -1 (nothing returned). */
int anvil_store_runs_ended_before(anvil_store *s, const char *workflow, int64_t before_ms,
                                  int64_t limit, char **ids, size_t *n);
int anvil_store_runs_ended_beyond(anvil_store *s, const char *workflow, int64_t keep,
                                  int64_t limit, char **ids, size_t *n);

/* Whether the database hands freed pages back (auto_vacuum INCREMENTAL):
 * 1, 0, or -1. Only a database a retention policy ran on does: the mode
 * changes how a full disk shows (freed pages are given back, so a write
 * can fit again), which a server without a policy has no reason to risk. */
int anvil_store_incremental_vacuum_on(anvil_store *s);

/* Make an older database hand freed pages back: set auto_vacuum to
 * INCREMENTAL and VACUUM, which rewrites the whole file once (its time
 * grows with the database, and it needs that much free disk). Not inside
 * a transaction. 0 / -1 (the database is unchanged). */
int anvil_store_enable_incremental_vacuum(anvil_store *s, char *err, size_t errlen);

/* Hand at most `pages` free pages back to the file system (a no-op
 * unless incremental vacuum is on). 0 / -1. */
int anvil_store_incremental_vacuum(anvil_store *s, int64_t pages);

#endif
