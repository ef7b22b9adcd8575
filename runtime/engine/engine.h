/*
 * runtime/engine/engine.h — durable workflow runs.
 *
 * The engine owns the registered workflows and every active run. Each state
 * change of a run is one SQLite transaction that updates the node and run
 * rows, records a frame (the node tree with states) and appends an event
 * with the run's next seq; the event is published on the bus only after
 * the commit. A restart reloads unfinished runs: waits keep waiting, and a
 * task that was running is recorded as an interrupted attempt and re-run
 * (or failed when out of retries).
 *
 * Everything runs on the server's libevent loop: every function here must
 * be called on the thread that called anvil_engine_new (asserted).
 * Ownership: the engine belongs to the gateway; strings it returns are
 * malloc'd for the caller. Run and node statuses are the contract's
 * (anvil_statuses.h).
 */
#ifndef ANVIL_ENGINE_H
#define ANVIL_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <cjson/cJSON.h>

#include "config.h"
#include "diag.h"
#include "error.h"
#include "events.h"
#include "store.h"
#include "workflow.h"

typedef struct anvil_engine anvil_engine;

/* Load every configured workflow (problems go to diags), recover unfinished
 * runs and resume them. Returns 0, or -1 with diags or err filled. */
int anvil_engine_new(struct event_base *base, anvil_store *store, const anvil_config *cfg,
                     anvil_engine **out, anvil_diags *diags, char *err, size_t errlen);

/* Stop: kill running tasks (their attempts count as interrupted on the next
 * start) and release everything. */
void anvil_engine_free(anvil_engine *e);

/* Shutdown, in three steps (runtime/server/gateway.c; docs/runs.md):
 * anvil_engine_drain stops new task attempts from starting (decisions and
 * signals are still recorded); the server then waits its grace period for
 * anvil_engine_running_tasks to reach 0; anvil_engine_interrupt_tasks
 * kills what still runs, and each such attempt is recorded as interrupted:
 * the next start runs it again without using one of its retries. */
void anvil_engine_drain(anvil_engine *e);
size_t anvil_engine_running_tasks(anvil_engine *e);
void anvil_engine_interrupt_tasks(anvil_engine *e);

typedef struct anvil_launch {
    const char *workflow;
    const cJSON *input;              /* object or NULL (= {}) */
    const char *input_at;            /* its JSON path in the caller's request, for
                                        messages; NULL = "$.params.input" */
    const char *run_id;              /* NULL = generate */
    const char *idempotency_key;     /* NULL = none */
    int64_t max_concurrency;         /* 0 = unlimited */
    int64_t tool_timeout_ms;         /* 0 = none beyond each task's own */
    int64_t max_output_bytes;        /* 0 = default (1 MiB) */
    const char *owner_id;            /* launching user, may be NULL */
    const char *triggered_by;
    const char *role;
    char *const *scopes;
    size_t n_scopes;
    const char *token_id;            /* may be NULL */
    /* Self-reported launch provenance (RunStartedBy, already normalised
     * by the caller), recorded with the run as is; NULL = none. Borrowed. */
    const cJSON *started_by;
    /* An event recorded in the launch transaction right after run.started
     * (e.g. "cron.triggered"), so it precedes everything the run does even
     * when the run ends inside the launch. NULL = none. The payload is
     * copied; runId is added. */
    const char *trigger_event;
    const cJSON *trigger_payload;
    /* Optional: set to true once the run is durable, even when the call
     * then fails (out of memory after the commit), so a caller that would
     * retry a failed launch (the cron scheduler) knows not to. */
    bool *recorded;
} anvil_launch;

/* Start a run (or, for a known idempotency key, find the earlier one).
 * *run_id is malloc'd. InvalidInput for an unknown workflow or a bad or
 * taken run id; InvalidRequest (with `path`) for input its workflow's
 * inputSchema refuses (launch_input.h). */
int anvil_engine_launch(anvil_engine *e, const anvil_launch *l, char **run_id, bool *existing,
                        anvil_error *err);

/* Request cancellation; the run ends "cancelled" once its tasks are gone.
 * RunNotFound; Busy when the run already ended. */
int anvil_engine_cancel(anvil_engine *e, const char *run_id, anvil_error *err);

/* Pause: no task attempt starts until resumeRun (attempts already running
 * finish); recorded as run.paused, and a restart keeps the run paused.
 * Pausing a paused run changes nothing. RunNotFound; Busy when the run
 * already ended, is being cancelled, or a rewind of it is in flight. */
int anvil_engine_pause(anvil_engine *e, const char *run_id, anvil_error *err);

/* *terminal is set when the run had already ended (and force did not
 * reopen it). A paused or rewound run is let go. RunNotFound. */
int anvil_engine_resume(anvil_engine *e, const char *run_id, bool force, bool *terminal,
                        anvil_error *err);

typedef struct anvil_decision {
    const char *run_id;
    const char *node_id;
    int64_t iteration;
    bool approved;
    const cJSON *value;              /* may be NULL */
    const char *note;                /* may be NULL */
    const char *user_id;             /* deciding user, may be NULL */
    char *const *scopes;             /* the caller's grants, for allowedScopes */
    size_t n_scopes;
} anvil_decision;

/* RunNotFound, NodeNotFound, IterationNotFound, AlreadyDecided, Forbidden
 * (allowedScopes / allowedUsers). */
int anvil_engine_decide(anvil_engine *e, const anvil_decision *d, anvil_error *err);

typedef struct anvil_signal_receipt {
    int64_t seq;                     /* the run's signal number */
    int64_t received_at_ms;
    bool delivered;                  /* a waiting node took it now */
    bool repeated;                   /* the run already had this key's signal:
                                        seq and time are that one's, nothing new
                                        was recorded (anvil_engine_signal_once) */
} anvil_signal_receipt;

/* Record a signal and deliver it to the waiting node that matches, or keep
 * it for a node that starts waiting later. RunNotFound. */
int anvil_engine_signal(anvil_engine *e, const char *run_id, const char *name,
                        const char *correlation, const cJSON *payload, const char *received_by,
                        anvil_signal_receipt *receipt, anvil_error *err);

/* anvil_engine_signal at most once per run and `key` (not NULL; e.g. a
 * webhook delivery id): the key is stored with the signal in the same
 * write, so when the run already recorded a signal with it - even just
 * before a crash - nothing is recorded or delivered again and *receipt is
 * the earlier signal's, with `repeated` set. RunNotFound. */
int anvil_engine_signal_once(anvil_engine *e, const char *run_id, const char *name,
                             const char *correlation, const cJSON *payload,
                             const char *received_by, const char *key,
                             anvil_signal_receipt *receipt, anvil_error *err);

/* One signal recorded by anvil_engine_signal_waiting. */
typedef struct anvil_signal_delivery {
    char *run_id;                    /* malloc'd */
    anvil_signal_receipt receipt;
} anvil_signal_delivery;

/* Deliver a signal to every active run of `workflow` that has a signal node
 * waiting now for `name` whose correlation key matches `correlation` (a node
 * without a correlationKey matches any; a NULL correlation matches only
 * such nodes). Each run gets the signal through anvil_engine_signal, so it
 * is recorded and delivered exactly as submitSignal would; with a `key`
 * (may be NULL) through anvil_engine_signal_once, so a run that already
 * has that key's signal gets nothing new (its receipt says `repeated`).
 * *out (malloc'd, free with anvil_signal_deliveries_free) lists the runs
 * in no particular order. Returns 0, or -1 with err (deliveries made so
 * far stay in *out). */
int anvil_engine_signal_waiting(anvil_engine *e, const char *workflow, const char *name,
                                const char *correlation, const cJSON *payload,
                                const char *received_by, const char *key,
                                anvil_signal_delivery **out, size_t *n_out, anvil_error *err);
void anvil_signal_deliveries_free(anvil_signal_delivery *d, size_t n);

const anvil_workflow *anvil_engine_workflow(const anvil_engine *e, const char *name);
anvil_event_bus *anvil_engine_bus(anvil_engine *e);
int64_t anvil_engine_state_version(const anvil_engine *e);
anvil_store *anvil_engine_store(anvil_engine *e);
/* Where runs' workspaces and their repositories live (workspace.h). */
const char *anvil_engine_workspace_root(const anvil_engine *e);

#endif
