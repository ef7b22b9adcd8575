/*
 * runtime/engine/engine_delete.h — removing ended runs (deleteRun;
 * docs/runs.md#deleterun).
 *
 * Order, so that kill -9 at any point leaves either the run or nothing:
 *   1. one transaction removes the run's rows and queues its workspace
 *      (store_retention.h);
 *   2. run.deleted is published on the bus (streams on the run end with a
 *      RunNotFound error; nothing of it is stored);
 *   3. the workspace directory and its <runId>.git repository are removed
 *      and the queue row cleared.
 * A crash between 1 and 3 leaves the files with their queue row; the next
 * start removes them (anvil_engine_finish_removals) before any run is
 * driven. Loop thread only.
 */
#ifndef ANVIL_ENGINE_DELETE_H
#define ANVIL_ENGINE_DELETE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct anvil_engine;

/* deleteRun: remove an ended run with everything recorded for it and its
 * workspace, in the order above; streams on it get run.deleted on the bus.
 * RunNotFound; Busy when the run has not ended (or is still driven) or a
 * rewind of it is in flight; StorageUnavailable / Internal when the
 * transaction fails (nothing was removed). */
int anvil_engine_delete_run(struct anvil_engine *e, const char *run_id, anvil_error *err);

/* Queued removals finished at startup (more wait for the next pass). */
#define ANVIL_ENGINE_REMOVALS_AT_START 1024

/* Remove the files of at most `limit` queued removals (oldest first) and
 * clear their rows. A removal that fails is logged and stays queued for
 * the next call. Removals done, or -1 when the queue cannot be read (err
 * filled). */
int anvil_engine_finish_removals(struct anvil_engine *e, int64_t limit, char *err, size_t errlen);

#endif
