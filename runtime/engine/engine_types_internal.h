/*
 * runtime/engine/engine_types_internal.h — the engine's in-memory mirror of
 * active runs: the types shared by engine*.c, and nothing else. Each .c
 * declares its functions in its own header, so the #include lines show who
 * calls whom. (Not engine_internal.h: scripts/check-layers.py counts a
 * foo_internal.h as part of foo.c, which includes every other engine file.)
 *
 * The database is the truth; this mirror exists so scheduling does not read
 * SQLite on every step. A run is in memory from launch (or recovery) until it
 * reaches a terminal status.
 *
 * Threading: everything here belongs to the loop thread, the one that
 * called anvil_engine_new (asserted at every public entry point).
 */
#ifndef ANVIL_ENGINE_TYPES_INTERNAL_H
#define ANVIL_ENGINE_TYPES_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "anvil_statuses.h"
#include "config.h"
#include "events.h"
#include "htab.h"
#include "proc.h"
#include "store_runs.h"
#include "workflow.h"

/* As in engine.h. Only engine.c (the public operations) includes engine.h:
 * were this header to, every engine file would lean on engine.c's module
 * and the include graph would show a circle that is not there. */
typedef struct anvil_engine anvil_engine;

struct run_rt;

typedef struct node_rt {
    const anvil_wf_node *def;
    anvil_node_state state;         /* changed only through engine_mirror.h */
    int64_t attempts;
    int64_t started_at_ms, finished_at_ms;
    char *error;
    anvil_proc *proc;               /* the running attempt of a run: task */
    void *proc_ctx;                 /* its callback context (freed on exit, or at shutdown) */
    int64_t proc_started_ms;
    anvil_node_state kill_to;       /* what a killed attempt leaves the node as */
    bool interrupting;              /* being killed because the server stops */
    int64_t interrupted;            /* attempts the server's own stop cut short:
                                       not charged to the task's retries */
    int64_t interrupt_streak;       /* the latest of those in a row */
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
    int running_tasks;              /* nodes with a proc */
    bool advancing, again;          /* reentrancy guard for advance() */
    bool broken;                    /* a write failed: stop driving it */
    bool completed;                 /* run.completed has been recorded */
    bool row_dirty;                 /* a note changed rec since the row was written */
    char written_status[24];        /* rec.status as last written ("" unknown) */
    int64_t written_finished_at_ms;
    uint64_t batch_no;              /* the engine's batch_no when it last changed */
    bool forget_when_durable;       /* ended in the open batch: leaves the
                                       registry once that batch is durable */
    anvil_hnode link;               /* in anvil_engine.runs, keyed by rec.run_id */
} run_rt;

/* The repair timer's first delay after a failed write; it doubles to
 * ANVIL_ENGINE_REPAIR_MAX_MS while writes keep failing. */
#define ANVIL_ENGINE_REPAIR_FIRST_MS 1000
#define ANVIL_ENGINE_REPAIR_MAX_MS 30000

/* A rewind past its checks whose rows are not written yet
 * (engine_rewind.c): its run answers Busy meanwhile. The first member of
 * the rewind's own struct. */
typedef struct rewind_slot {
    char run_id[65];
    struct rewind_slot *next;
} rewind_slot;

typedef struct workflow_entry {
    char *name;
    anvil_workflow *wf;
} workflow_entry;

struct anvil_engine {
    struct event_base *base;
    pthread_t loop_thread;          /* the caller of anvil_engine_new */
    anvil_store *store;
    const anvil_config *cfg;
    anvil_event_bus bus;
    int64_t state_version;
    workflow_entry *workflows;
    size_t n_workflows;
    anvil_htab runs;                /* active runs (engine_registry.h) */
    struct event *heartbeat;
    char *workspace_root;           /* runs' workspaces and repositories (workspace.h) */
    bool in_txn;                    /* between anvil_run_begin and anvil_run_end */
    bool draining;                  /* the server stops: no attempt starts */
    int64_t txn_state_version;      /* state_version at anvil_run_begin */
    struct event *repair;           /* reloads runs whose write failed (engine.c) */
    int64_t repair_backoff_ms;      /* doubles while writes keep failing */
    bool repair_due;                /* a run broke since the last repair */
    struct queued_event *queue, **queue_tail;   /* recorded, not yet committed */
    /* Group commit (store_txn.h): the changes released into the store's
     * open batch. Their events wait for it to be durable; should it be
     * lost, the runs they touched are reloaded from the database. */
    struct queued_event *durable, **durable_tail;
    bool batch_waiting;             /* registered for the open batch's end */
    bool batch_failures;            /* a change of the open batch failed */
    uint64_t batch_no;              /* counts batches; a run's batch_no says it is in this one */
    int64_t batch_state_version;    /* state_version when the open batch began */
    char **touched;                 /* run ids changed in the open batch */
    size_t n_touched, cap_touched;
    /* Rewinds in flight (engine_rewind.c): their workers hand each one
     * back to the loop by writing its pointer to the wake pipe. */
    rewind_slot *rewinds;
    size_t n_rewinds;
    int rewind_wake[2];             /* -1 until the first rewind */
    struct event *rewind_ev;
    struct event *retention;        /* the retention policy's timer, or NULL (engine_retention.c) */
    size_t retention_next;          /* the workflow the next tick starts with */
};

typedef struct queued_event {
    char *run_id;
    char *event;
    cJSON *payload;
    int64_t seq, state_version, at_ms;
    struct queued_event *next;
} queued_event;

#endif
