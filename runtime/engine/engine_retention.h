/*
 * runtime/engine/engine_retention.h — the configured retention policy
 * (docs/config.md#retention), applied on the loop.
 *
 * A timer removes, every ANVIL_RETENTION_TICK_MS, at most
 * ANVIL_RETENTION_BATCH ended runs that the policy no longer keeps (and
 * starts none after ANVIL_RETENTION_TICK_WORK_MS of work), each
 * through deleteRun's path (engine_delete.h: one transaction, run.deleted,
 * the files), finishes queued workspace removals, and then hands freed
 * pages back to the file system with an incremental vacuum. Small batches
 * keep each tick short, so requests are never held behind a large
 * backlog; a backlog drains at the batch rate. Candidates come from the
 * partial index of ended runs (store_retention.h): a tick's cost is what it
 * removes. Runs that have not ended, or that a rewind or the registry
 * holds, are never touched.
 *
 * Loop thread only.
 */
#ifndef ANVIL_ENGINE_RETENTION_H
#define ANVIL_ENGINE_RETENTION_H

#include <stddef.h>

struct anvil_engine;

#define ANVIL_RETENTION_TICK_MS 1000
#define ANVIL_RETENTION_BATCH 32
/* A tick starts no removal after this much time: removing a run's
 * workspace costs what its files do, and requests wait meanwhile. */
#define ANVIL_RETENTION_TICK_WORK_MS 20
/* Pages handed back after a tick that removed runs (4 MiB of 4 KiB pages). */
#define ANVIL_RETENTION_VACUUM_PAGES 1024

/* When the config has a retention section: make sure the database can
 * hand pages back (an older one is rewritten once with VACUUM; if that
 * fails the policy still applies, without giving space back) and start
 * the timer. 0, or -1 with err (the timer could not be created). */
int anvil_retention_start(struct anvil_engine *e, char *err, size_t errlen);

/* Stop the timer (engine shutdown). */
void anvil_retention_stop(struct anvil_engine *e);

#endif
