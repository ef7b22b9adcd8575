/*
 * runtime/cron/cron_sched.h — the cron scheduler: config schedules become rows
 * gateway:<workflow>, and a libevent timer fires the rows that are due.
 *
 * Every poll (each clamp(heartbeatMs, 1 s, 15 s)) takes the enabled rows
 * with nextRunAtMs <= now; for each, one transaction advances nextRunAtMs
 * to the first fire time after now and sets lastRunAtMs, and only then is
 * the run launched (role system, triggeredBy cron:gateway, scopes ["*"])
 * and cron.triggered recorded as an event of that run. So a schedule
 * missed during downtime fires once, and no poll can fire a row twice.
 *
 * "Now" is the wall clock, or, when ANVIL_TEST_CLOCK_FILE names a file,
 * the integer milliseconds in that file (test-only; docs/cron.md).
 */
#ifndef ANVIL_CRON_SCHED_H
#define ANVIL_CRON_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "config.h"
#include "engine.h"
#include "store_cron.h"

/* The scheduler's parts. The caller fills base, cfg, store and engine
 * (engine may be NULL: rows then advance without launching) and keeps
 * them alive until anvil_cron_sched_stop; the timer is the scheduler's. */
typedef struct anvil_cron_sched {
    struct event_base *base;
    const anvil_config *cfg;
    anvil_store *store;
    anvil_engine *engine;
    struct event *timer;
} anvil_cron_sched;

/* Upsert the config's schedules as rows gateway:<name> (removing such rows
 * whose schedule is gone) and start the poll timer. 0, or -1 with err. */
int anvil_cron_sched_start(anvil_cron_sched *cs, char *err, size_t errlen);
void anvil_cron_sched_stop(anvil_cron_sched *cs);

/* Fire every due row once. Returns how many runs were launched. */
int anvil_cron_sched_poll(anvil_cron_sched *cs);

/* The scheduler's now: ANVIL_TEST_CLOCK_FILE's value, else the wall clock. */
int64_t anvil_cron_now_ms(void);


/* anvil_cron_fires_total (docs/metrics.md). */
struct anvil_metrics_out;
void anvil_cron_metrics_render(struct anvil_metrics_out *o);
/* A cronRun by hand, launched or not. */
void anvil_cron_metrics_manual(bool launched);

#endif
