/*
 * runtime/engine/engine_internal.h — the engine's in-memory mirror of active runs,
 * shared by engine*.c only.
 *
 * The database is the truth; this mirror exists so scheduling does not read
 * SQLite on every step. A run is in memory from launch (or recovery) until it
 * reaches a terminal status.
 */
#ifndef ANVIL_ENGINE_INTERNAL_H
#define ANVIL_ENGINE_INTERNAL_H

#include "anvil_statuses.h"
#include "engine.h"
#include "proc.h"
#include "store_runs.h"

struct run_rt;

typedef struct node_rt {
    const anvil_wf_node *def;
    anvil_node_state state;
    int64_t attempts;
    int64_t started_at_ms, finished_at_ms;
    char *error;
    anvil_proc *proc;               /* the running attempt of a run: task */
    void *proc_ctx;                 /* its callback context (freed on exit, or at shutdown) */
    int64_t proc_started_ms;
    anvil_node_state kill_to;             /* what a killed attempt leaves the node as */
    struct run_rt *run;
} node_rt;

typedef struct run_rt {
    struct anvil_engine *eng;
    anvil_run_record rec;           /* mirrors the runs row */
    const anvil_workflow *wf;
    cJSON *input;
    cJSON *outputs;                 /* nodeId -> row */
    node_rt *nodes;                 /* wf->n_nodes, by node index */
    int64_t max_concurrency, tool_timeout_ms, max_output_bytes;
    int running_tasks;
    bool advancing, again;          /* reentrancy guard for advance() */
    bool broken;                    /* a write failed: stop driving it */
    bool completed;                 /* run.completed has been recorded */
    struct run_rt *next;            /* hash chain */
} run_rt;

typedef struct workflow_entry {
    char *name;
    anvil_workflow *wf;
} workflow_entry;

struct anvil_engine {
    struct event_base *base;
    anvil_store *store;
    const anvil_config *cfg;
    anvil_event_bus bus;
    int64_t state_version;
    workflow_entry *workflows;
    size_t n_workflows;
    run_rt **buckets;
    size_t n_buckets, n_runs;
    struct event *heartbeat;
    char *workspace_root;
    struct queued_event *queue, **queue_tail;   /* recorded, not yet committed */
};

typedef struct queued_event {
    char *run_id;
    char *event;
    cJSON *payload;
    int64_t seq, state_version, at_ms;
    struct queued_event *next;
} queued_event;

/* engine.c */
run_rt *anvil_engine_find(anvil_engine *e, const char *run_id);
void anvil_engine_forget(anvil_engine *e, run_rt *r);

/* engine_run.c */
/* True for a terminal run status (RunStatus's x-anvil-terminal). */
bool anvil_run_ended_status(const char *status);
const char *anvil_node_kind_name(anvil_node_kind k);
/* Drive the run until nothing more can start now. */
void anvil_run_advance(run_rt *r);
/* Begin a transaction for a change of r. 0 / -1 (run marked broken). */
int anvil_run_begin(run_rt *r);
/* Inside the transaction: persist the run row, a frame (when `frame`) and
 * one event with the run's next seq (payload consumed), queued for
 * publication. 0 / -1. */
int anvil_run_note(run_rt *r, bool frame, const char *event, cJSON *payload);
/* End the transaction: commit and publish when ok, else roll back and drop
 * the queued events. A failed write marks the run broken (it stays as the
 * database last saw it; a restart resumes from there). 0 / -1. */
int anvil_run_end(run_rt *r, bool ok);
/* Publish (after a commit) or drop (after a rollback) the recorded events. */
void anvil_engine_flush_events(anvil_engine *e, bool publish);
/* Write a node's row. */
int anvil_run_put_node(run_rt *r, node_rt *n);
/* Set status from the node states (non-terminal runs). */
void anvil_run_derive_status(run_rt *r);
/* A payload object with runId, nodeId, iteration (0). */
cJSON *anvil_run_node_payload(run_rt *r, const node_rt *n);
void anvil_run_free(run_rt *r);
/* Take the oldest stored signal a waiting signal node matches (name, and
 * correlation `key` when not NULL): its payload becomes the node's output
 * row and the node finishes, in one transaction with the signal's
 * consumption. 1 delivered, 0 none stored, -1 not recorded (the signal
 * stays stored, the node waits, the run is broken). */
int anvil_signal_take(run_rt *r, node_rt *n, const char *key);
/* End a cancelling run once no task is running. */
void anvil_run_maybe_finish_cancel(run_rt *r);

/* engine_task.c */
/* Start an attempt of a task node (static or process). */
void anvil_task_start(run_rt *r, node_rt *n);
/* Kill a running task's process (its exit is then handled as cancelled). */
void anvil_task_kill(node_rt *n);
/* Emit task.heartbeat for every running process task. */
void anvil_task_heartbeats(anvil_engine *e);

#endif
