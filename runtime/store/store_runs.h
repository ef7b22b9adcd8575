/*
 * runtime/store/store_runs.h — durable run state: runs, nodes, attempts, output
 * rows, approvals, signals, frames, events and hijack sessions.
 *
 * The engine groups these calls into transactions (anvil_store_begin /
 * commit) so that every state change lands whole or not at all. Records
 * filled by lookups are caller-owned: release them with the matching
 * *_clear function. Optional timestamps are -1 when absent.
 */
#ifndef ANVIL_STORE_RUNS_H
#define ANVIL_STORE_RUNS_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"
#include "store_txn.h"


typedef struct anvil_run_record {
    char *run_id, *workflow, *status, *input_json, *options_json;
    char *owner_id, *triggered_by, *role, *scopes_json, *token_id;
    char *idempotency_key, *error;
    char *workspace_head;           /* current workspace commit, or NULL */
    char *started_by_json;          /* launch provenance (RunStartedBy), or NULL; set at insert only */
    bool held;                      /* rewound or paused: nothing starts until resumeRun */
    bool cancel_requested;
    int64_t last_seq, frame_no;
    int64_t created_at_ms, updated_at_ms, finished_at_ms;
} anvil_run_record;

void anvil_run_record_clear(anvil_run_record *r);

int anvil_store_run_insert(anvil_store *s, const anvil_run_record *r);
/* Update the mutable columns of a run. */
int anvil_store_run_update(anvil_store *s, const anvil_run_record *r);
/* The same, but neither status nor finished_at_ms (which the run indexes
 * hold): for a change that moved neither. */
int anvil_store_run_progress(anvil_store *s, const anvil_run_record *r);
/* 1 found, 0 not found, -1 error. */
int anvil_store_run_get(anvil_store *s, const char *run_id, anvil_run_record *out);
/* Run id launched earlier with this idempotency key: 1 (and *run_id
 * malloc'd), 0, or -1. */
int anvil_store_run_by_idempotency(anvil_store *s, const char *workflow, const char *key,
                                   char **run_id);

typedef int (*anvil_run_record_fn)(void *ctx, const anvil_run_record *r);
/* Newest first; status NULL = any. Returns rows seen or -1. */
int anvil_store_runs_list(anvil_store *s, const char *status, int64_t limit,
                          anvil_run_record_fn fn, void *ctx);

/* Which runs anvil_store_run_summaries reads: those matching every filter
 * that is set, newest first, skipping `offset` of them. */
typedef struct anvil_run_filter {
    const char *status;             /* NULL = any */
    const char *workflow;           /* NULL = any */
    int64_t limit;                  /* > 0 */
    int64_t offset;                 /* >= 0; rows skipped after the sort */
} anvil_run_filter;

/* Newest first like anvil_store_runs_list, but only run_id, workflow,
 * status, created_at_ms and started_by_json are filled: what listRuns
 * returns, without reading each run's input and principal. The record's
 * strings are borrowed and valid during the callback only. Rows seen, or
 * -1. */
int anvil_store_run_summaries(anvil_store *s, const anvil_run_filter *f,
                              anvil_run_record_fn fn, void *ctx);
/* Every run whose status is not terminal, oldest first. */
int anvil_store_runs_unfinished(anvil_store *s, anvil_run_record_fn fn, void *ctx);

typedef struct anvil_node_record {
    char *node_id;
    int64_t iteration;
    char *kind, *state;
    int64_t attempts, started_at_ms, finished_at_ms;
    char *error;
} anvil_node_record;

void anvil_node_record_clear(anvil_node_record *n);
/* Insert or update the node's row (the first insert fixes its position in
 * anvil_store_nodes, which is the workflow's pre-order). */
int anvil_store_node_put(anvil_store *s, const char *run_id, const anvil_node_record *n);
typedef int (*anvil_node_record_fn)(void *ctx, const anvil_node_record *n);
int anvil_store_nodes(anvil_store *s, const char *run_id, anvil_node_record_fn fn, void *ctx);
/* Does the run have node `node_id` at `iteration` (iteration < 0: at any
 * iteration)? One primary-key probe. 1, 0, -1. */
int anvil_store_node_exists(anvil_store *s, const char *run_id, const char *node_id,
                            int64_t iteration);

/* started_seq: the seq of the node.started event recorded with it. */
int anvil_store_attempt_start(anvil_store *s, const char *run_id, const char *node_id,
                              int64_t iteration, int64_t attempt, int64_t started_at_ms,
                              int64_t started_seq);
/* exit_code < 0 stores NULL; commit_id: the workspace commit the attempt
 * made, or NULL. */
int anvil_store_attempt_finish(anvil_store *s, const char *run_id, const char *node_id,
                               int64_t iteration, int64_t attempt, const char *state,
                               int64_t finished_at_ms, int64_t exit_code, const char *error,
                               const char *out, const char *err, const char *commit_id);
/* How many of a node's attempts were "interrupted" (the server stopped
 * under them), in all (*total) and as the latest ones in a row (*streak;
 * an attempt still "running" neither counts nor breaks the row).
 * 0 or -1. */
int anvil_store_attempt_interruptions(anvil_store *s, const char *run_id, const char *node_id,
                                      int64_t iteration, int64_t *total, int64_t *streak);

/* One task attempt as recorded. finished_at_ms and exit_code are -1 when
 * NULL (running, a static task, a process ended by a signal); error,
 * out and err may be NULL. */
typedef struct anvil_attempt_record {
    char *node_id;
    int64_t iteration, attempt;
    char *state;                  /* running, succeeded, failed, timed_out, cancelled, interrupted */
    int64_t started_at_ms, finished_at_ms, exit_code;
    char *error;
    char *out, *err;              /* captured stdout / stderr */
} anvil_attempt_record;

void anvil_attempt_record_clear(anvil_attempt_record *a);
typedef int (*anvil_attempt_record_fn)(void *ctx, const anvil_attempt_record *a);
/* The run's attempts ordered by (started_at_ms, node_id, iteration,
 * attempt), only node_id's when it is not NULL and only iteration's when
 * it is >= 0, at most `limit` (<= 0: no limit). out and err are not read
 * (NULL): a listing must not pull every attempt's captured output. The
 * record is valid during the callback only; fn may return non-zero to
 * stop. Rows seen, or -1. */
int anvil_store_attempts_list(anvil_store *s, const char *run_id, const char *node_id,
                              int64_t iteration, int64_t limit, anvil_attempt_record_fn fn,
                              void *ctx);
/* One attempt with its output. 1 (and *out filled, caller-owned: clear it
 * with anvil_attempt_record_clear), 0, -1. */
int anvil_store_attempt_get(anvil_store *s, const char *run_id, const char *node_id,
                            int64_t iteration, int64_t attempt, anvil_attempt_record *out);

int anvil_store_output_put(anvil_store *s, const char *run_id, const char *node_id,
                           int64_t iteration, const char *row_json, int64_t at_ms);
/* Remove a node's row (its node was reopened). 0 / -1. */
int anvil_store_output_delete(anvil_store *s, const char *run_id, const char *node_id,
                              int64_t iteration);
/* 1 (and *row_json malloc'd), 0, -1. */
int anvil_store_output_get(anvil_store *s, const char *run_id, const char *node_id,
                           int64_t iteration, char **row_json);
/* Every output row of a run, as a JSON object text {nodeId: row} (iteration
 * 0), malloc'd into *json. 0 / -1. */
int anvil_store_outputs_json(anvil_store *s, const char *run_id, char **json);

typedef struct anvil_approval_record {
    char *run_id, *node_id;
    int64_t iteration;
    char *workflow, *status, *title;
    int64_t requested_at_ms, decided_at_ms;
    char *decided_by, *value_json, *note;
} anvil_approval_record;

void anvil_approval_record_clear(anvil_approval_record *a);
int anvil_store_approval_request(anvil_store *s, const char *run_id, const char *node_id,
                                 int64_t iteration, const char *workflow, const char *title,
                                 int64_t at_ms);
int anvil_store_approval_decide(anvil_store *s, const char *run_id, const char *node_id,
                                int64_t iteration, const char *status, int64_t at_ms,
                                const char *decided_by, const char *value_json, const char *note);
/* Take a pending approval off the list (its node was cancelled or
 * skipped). Already decided approvals are left alone. 0 / -1. */
int anvil_store_approval_withdraw(anvil_store *s, const char *run_id, const char *node_id,
                                  int64_t iteration, int64_t at_ms);
/* 1, 0, -1. */
int anvil_store_approval_get(anvil_store *s, const char *run_id, const char *node_id,
                             int64_t iteration, anvil_approval_record *out);
typedef int (*anvil_approval_record_fn)(void *ctx, const anvil_approval_record *a);
/* Pending approvals, oldest first; filters may be NULL; limit <= 0 = none. */
int anvil_store_approvals_pending(anvil_store *s, const char *run_id, const char *workflow,
                                  int64_t limit, anvil_approval_record_fn fn, void *ctx);

/* Record a signal; *seq gets its per-run signal number (1, 2, ...).
 * delivery_key (may be NULL) names what sent it, e.g. a webhook delivery:
 * a run holds at most one signal per key (a second insert fails on the
 * unique index). */
int anvil_store_signal_insert(anvil_store *s, const char *run_id, const char *signal_name,
                              const char *correlation_id, const char *payload_json,
                              int64_t at_ms, const char *received_by, const char *delivery_key,
                              int64_t *seq);
/* The signal of the run recorded with delivery_key: 1 (and *seq,
 * *received_at_ms set), 0, -1. One probe of the signals_delivery index. */
int anvil_store_signal_by_key(anvil_store *s, const char *run_id, const char *delivery_key,
                              int64_t *seq, int64_t *received_at_ms);
/* Take the oldest unconsumed signal of the run that matches: its name is
 * `name` (or it was sent without one) and, when correlation is not NULL, its
 * correlation id equals it. Marks it consumed by `consumer`. 1 (and
 * *payload_json malloc'd, may be NULL), 0, -1. */
int anvil_store_signal_take(anvil_store *s, const char *run_id, const char *name,
                            const char *correlation, const char *consumer, char **payload_json);

/* seq: the event recorded with the frame; workspace_ref: the run's
 * workspace commit then (NULL: none yet). */
int anvil_store_frame_insert(anvil_store *s, const char *run_id, int64_t frame_no,
                             int64_t at_ms, const char *tree_json, int64_t seq,
                             const char *workspace_ref);
int anvil_store_event_insert(anvil_store *s, const char *run_id, int64_t seq, const char *event,
                             const char *payload_json, int64_t state_version, int64_t at_ms);

/* One recorded frame of a run (the node tree after a state change). The
 * string is valid during the callback only. */
typedef struct anvil_frame_record {
    int64_t frame_no, created_at_ms;
    const char *tree_json;        /* {"frameNo","runId","status","root"} */
} anvil_frame_record;
typedef int (*anvil_frame_record_fn)(void *ctx, const anvil_frame_record *fr);
/* The run's frames with after_no < frame_no <= upto_no (upto_no < 0: no
 * upper bound), in frame order, at most `limit` (<= 0: no limit); a range
 * scan of the (run_id, frame_no) primary key. fn may return non-zero to
 * stop. Rows seen, or -1. The latest frame number is the run record's
 * frame_no. */
int anvil_store_frames_range(anvil_store *s, const char *run_id, int64_t after_no,
                             int64_t upto_no, int64_t limit, anvil_frame_record_fn fn, void *ctx);
/* The same rows as anvil_store_frames_range(s, run_id, after_no, -1, limit,
 * ...) without reading their trees (tree_json is NULL): listing frames
 * touches only their numbers and times. Rows seen, or -1. */
int anvil_store_frame_headers(anvil_store *s, const char *run_id, int64_t after_no, int64_t limit,
                              anvil_frame_record_fn fn, void *ctx);

/* One row of a run's event log. The strings are valid during the callback
 * only. */
typedef struct anvil_event_record {
    int64_t seq;
    const char *event;
    const char *payload_json;
    int64_t state_version, created_at_ms;
} anvil_event_record;
typedef int (*anvil_event_record_fn)(void *ctx, const anvil_event_record *ev);
/* The run's events with after_seq < seq <= upto_seq (upto_seq < 0: no upper
 * bound), in seq order, at most `limit` of them (<= 0: no limit). The read
 * is a range scan of the (run_id, seq) primary key: it touches only the rows
 * it returns. fn may return non-zero to stop. Rows seen, or -1. */
int anvil_store_events_range(anvil_store *s, const char *run_id, int64_t after_seq,
                             int64_t upto_seq, int64_t limit, anvil_event_record_fn fn, void *ctx);
/* Highest stateVersion ever recorded (0 when none), to continue after a restart. */
int anvil_store_events_max_state_version(anvil_store *s, int64_t *out);

int anvil_store_hijack_insert(anvil_store *s, const char *session_id, const char *run_id,
                              const char *user_id, const char *role, const char *token_id,
                              const char *options_json, int64_t at_ms);

#endif
