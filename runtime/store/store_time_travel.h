/*
 * runtime/store/store_time_travel.h — the rows time travel reads and
 * rewrites: a frame with its workspace commit, a node's latest attempt,
 * the truncation a rewind performs, and the rewind audit trail.
 *
 * A rewind's truncation calls run inside the caller's transaction
 * (store_runs.h anvil_store_begin / commit), so they land with the run's new
 * state and the audit row's outcome or not at all. Strings filled in are
 * malloc'd for the caller; release records with their *_clear function.
 */
#ifndef ANVIL_STORE_TIME_TRAVEL_H
#define ANVIL_STORE_TIME_TRAVEL_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

typedef struct anvil_frame_row {
    int64_t frame_no, created_at_ms;
    int64_t seq;                  /* the event recorded with it; -1 before migration 5 */
    char *tree_json;
    char *workspace_ref;          /* the run's workspace commit then, or NULL */
} anvil_frame_row;

void anvil_frame_row_clear(anvil_frame_row *f);

/* 1 found, 0 no such frame, -1 error. */
int anvil_store_frame_get(anvil_store *s, const char *run_id, int64_t frame_no,
                          anvil_frame_row *out);

/* Only the workspace commit frame `frame_no` of the run saw, without
 * reading its tree (runs.diff compares two frames' commits): 1 with *ref
 * malloc'd, or NULL when the workspace had no commit yet; *recorded is
 * false when the frame predates time travel (migration 5), whose commit
 * was never written down, so a NULL *ref there does not mean "empty".
 * 0 when the run has no such frame, -1 on a store error or out of memory
 * (*ref NULL either way). */
int anvil_store_frame_ref(anvil_store *s, const char *run_id, int64_t frame_no, char **ref,
                          bool *recorded);

/* The highest-numbered attempt of a node iteration: 1 (with *attempt, and
 * *state and *commit_id malloc'd; commit_id may be NULL), 0 when the node
 * has no attempt, -1. */
int anvil_store_attempt_latest(anvil_store *s, const char *run_id, const char *node_id,
                               int64_t iteration, int64_t *attempt, char **state,
                               char **commit_id);

/* The name of the run's event with this seq: 1 (*name malloc'd), 0, -1. */
int anvil_store_event_name(anvil_store *s, const char *run_id, int64_t seq, char **name);

/* What holds a run (runs.held) was recorded by: the name of its latest
 * run.paused or run.time_travel_jumped event into *name (malloc'd). 1,
 * 0 when it has neither, -1 on a store error. */
int anvil_store_hold_event(anvil_store *s, const char *run_id, char **name);

/* ---- a rewind's truncation (inside a transaction) ------------------------ */

/* Delete the run's frames numbered above frame_no, and its events with a
 * seq above `seq`. *deleted gets the number of frames. */
int anvil_store_truncate_frames(anvil_store *s, const char *run_id, int64_t frame_no,
                                int64_t seq, int64_t *deleted);

/* One attempt a rewind removes. */
typedef struct anvil_removed_attempt {
    const char *node_id;
    int64_t iteration, attempt, started_at_ms;
    const char *state;            /* as recorded: succeeded, failed, running, ... */
    const char *commit_id;        /* NULL when it made no workspace commit */
    int64_t started_seq;          /* its node.started event; 0 before migration 5 */
} anvil_removed_attempt;
typedef int (*anvil_removed_attempt_fn)(void *ctx, const anvil_removed_attempt *a);

/* Delete the attempts of a node iteration numbered above `keep`, calling
 * fn (may be NULL) for each first, in attempt order. 0 / -1. */
int anvil_store_truncate_attempts(anvil_store *s, const char *run_id, const char *node_id,
                                  int64_t iteration, int64_t keep, anvil_removed_attempt_fn fn,
                                  void *ctx);

/* An approval decided after the frame is requested again (decision,
 * decider and note cleared). 0 / -1. */
int anvil_store_approval_undecide(anvil_store *s, const char *run_id, const char *node_id,
                                  int64_t iteration);
/* An approval requested after the frame is removed. 0 / -1. */
int anvil_store_approval_delete(anvil_store *s, const char *run_id, const char *node_id,
                                int64_t iteration);
/* Signals taken by `node_id` become deliverable again (the node waits anew
 * and takes the same signal). 0 / -1. */
int anvil_store_signals_release(anvil_store *s, const char *run_id, const char *node_id);

/* ---- the rewind audit trail ------------------------------------------------ */

typedef struct anvil_audit_row {
    int64_t audit_id;
    char *run_id, *caller, *role;
    int64_t from_frame_no;        /* -1: unknown (the run was not found) */
    int64_t to_frame_no;
    char *result;                 /* in_progress, success, failed, partial */
    char *code, *message;         /* NULL on success */
    char *workspace_before, *workspace_after;
    int64_t started_at_ms, finished_at_ms;   /* finished: -1 while in progress */
} anvil_audit_row;

void anvil_audit_row_clear(anvil_audit_row *a);

/* Insert a row (its audit_id is assigned and written to *audit_id). */
int anvil_store_audit_insert(anvil_store *s, const anvil_audit_row *a, int64_t *audit_id);

/* Settle a row: result, code, message (NULLs allowed), the workspace
 * commit after, and finished_at_ms. 0 / -1 (a row that is gone is an
 * error). */
int anvil_store_audit_settle(anvil_store *s, int64_t audit_id, const char *result,
                             const char *code, const char *message,
                             const char *workspace_after, int64_t at_ms);

/* Rewinds of run_id by caller since since_ms that count against the
 * quota: every call that got past authorization and the quota itself. */
int anvil_store_audit_quota_used(anvil_store *s, const char *run_id, const char *caller,
                                 int64_t since_ms, int64_t *count);

typedef int (*anvil_audit_row_fn)(void *ctx, const anvil_audit_row *a);
/* Every row still in_progress, oldest first. Returns rows seen or -1. */
int anvil_store_audit_open(anvil_store *s, anvil_audit_row_fn fn, void *ctx);

/* A run's audit rows, newest first, at most `limit`. Returns rows or -1. */
int anvil_store_audit_list(anvil_store *s, const char *run_id, int64_t limit,
                           anvil_audit_row_fn fn, void *ctx);

#endif
