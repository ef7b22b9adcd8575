/*
 * runtime/store/store_cron.h — cron schedule rows (migration 3).
 *
 * Records filled by lookups are caller-owned: release them with
 * anvil_cron_record_clear. Optional timestamps are -1 when absent.
 */
#ifndef ANVIL_STORE_CRON_H
#define ANVIL_STORE_CRON_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

typedef struct anvil_cron_record {
    char *cron_id, *workflow, *pattern;
    bool enabled;
    int64_t next_run_at_ms, last_run_at_ms;
    int64_t created_at_ms, updated_at_ms;
} anvil_cron_record;

void anvil_cron_record_clear(anvil_cron_record *r);

/* Insert, or replace the workflow, pattern, enabled and next run of an
 * existing row (created_at_ms and last_run_at_ms are kept). 0 / -1. */
int anvil_store_cron_put(anvil_store *s, const anvil_cron_record *r);
/* 1 found, 0 not found, -1 error. */
int anvil_store_cron_get(anvil_store *s, const char *cron_id, anvil_cron_record *out);
/* 1 removed, 0 not found, -1 error. */
int anvil_store_cron_delete(anvil_store *s, const char *cron_id);
/* Set next_run_at_ms and (when last >= 0) last_run_at_ms. 1 / 0 / -1. */
int anvil_store_cron_mark(anvil_store *s, const char *cron_id, int64_t next_ms, int64_t last_ms);
/* Put both times back as they were (a negative one stores NULL). 1 / 0 / -1. */
int anvil_store_cron_restore(anvil_store *s, const char *cron_id, int64_t next_ms, int64_t last_ms);
/* Set last_run_at_ms only. 1 / 0 / -1. */
int anvil_store_cron_ran(anvil_store *s, const char *cron_id, int64_t last_ms);

typedef int (*anvil_cron_record_fn)(void *ctx, const anvil_cron_record *r);
/* By cron id; workflow NULL = all. Rows seen or -1. */
int anvil_store_crons_list(anvil_store *s, const char *workflow, anvil_cron_record_fn fn,
                           void *ctx);
/* Enabled rows with next_run_at_ms <= now, oldest due first. Rows or -1. */
int anvil_store_crons_due(anvil_store *s, int64_t now_ms, anvil_cron_record_fn fn, void *ctx);

#endif
