/*
 * runtime/engine/engine_rewind.h — rewinding a run to an earlier frame
 * (rewindRun; docs/time-travel.md).
 *
 * A rewind puts the run back to what frame N recorded: every frame,
 * attempt, output row and event recorded after it is deleted, node states
 * and attempt counts come from the frame's tree (an attempt the frame saw
 * running is removed and runs again), approvals decided later wait again,
 * signals taken later can be taken again, and the workspace is checked out
 * at the frame's commit. The run is then held at the frame (runs.held):
 * its status is the frame's, nothing starts until resumeRun (or cancelRun)
 * lets it go, and a restart keeps holding it. A frame that shows the run
 * ended leaves it ended.
 *
 * Order, so that kill -9 at any point leaves the run as before or as after:
 *   1. an audit row is committed `in_progress`;
 *   2. the workspace is checked out at the frame's commit;
 *   3. one transaction truncates the rows, writes the run's new state,
 *      appends run.time_travel_jumped and settles the audit row `success`.
 * A crash between 1 and 3 leaves the database as before with the row
 * in_progress; anvil_rewind_recover (at startup, before runs are driven)
 * checks the workspace out at the run's recorded commit again and marks
 * the row `partial` with a message saying the run is as before.
 *
 * Step 2 can take long on a large workspace, so it runs on a worker thread
 * of its own and the answer comes later (anvil_rewind_finish_later); the
 * run answers Busy from step 1 until step 3 is done.
 *
 * Loop thread only, except the worker, which touches only the rewind's own
 * copies of its paths. The principal is only read, during begin.
 */
#ifndef ANVIL_ENGINE_REWIND_H
#define ANVIL_ENGINE_REWIND_H

#include <stddef.h>
#include <stdint.h>

#include "anvil_types.h"
#include "auth.h"
#include "error.h"

struct anvil_engine;

/* The quota: rewinds per run per caller per window. */
#define ANVIL_REWIND_QUOTA 10
#define ANVIL_REWIND_QUOTA_WINDOW_MS (60 * 60 * 1000)
/* Rewinds the engine runs at once (each holds a thread while it checks
 * its workspace out). */
#define ANVIL_REWIND_MAX_IN_FLIGHT 4

typedef struct anvil_rewind_outcome {
    int64_t from_frame_no, new_frame_no;
    int64_t deleted_frames, deleted_attempts, invalidated_diffs;
    int64_t reverted_sandboxes;
    int64_t duration_ms;
    /* One warning per removed attempt of a `run:` task (malloc'd array of
     * malloc'd members: move it into the response, which frees it). */
    anvil_crossed_effect *warnings;
    size_t n_warnings;
} anvil_rewind_outcome;

/* A rewind past its checks: its audit row says in_progress, its run is
 * out of the engine's hands (every operation on it answers Busy) and its
 * workspace is not touched yet. */
typedef struct anvil_rewind anvil_rewind;

/* Check a rewind of run_id to frame_no for `caller` and start it (steps 1
 * and the refusals). Every call with a well-formed run id writes an audit
 * row. Errors: InvalidRequest (run id outside ^[a-z0-9_-]{1,64}$);
 * RunNotFound; Unauthorized (neither the run's owner nor role admin);
 * RateLimited (ANVIL_REWIND_QUOTA in the window); Busy (a task of the run
 * is executing, a rewind of it is in flight, or ANVIL_REWIND_MAX_IN_FLIGHT
 * rewinds are); FrameOutOfRange; UnsupportedSandbox (the workflow does not
 * version its workspace, the repository or a commit is missing, or the
 * frame predates time travel); StorageUnavailable. On success *out must be
 * finished with exactly one of the two calls below. */
int anvil_rewind_begin(struct anvil_engine *e, const char *run_id, int64_t frame_no,
                       const anvil_principal *caller, anvil_rewind **out, anvil_error *err);

/* How a rewind ended: rc 0 with *out filled (the callee may move members
 * out of it), or -1 with err set: VcsError (the checkout failed and the
 * workspace was put back), RewindFailed (and it could not be put back: the
 * run is marked needs_attention), StorageUnavailable. Both are released
 * after the call. */
typedef void (*anvil_rewind_done_fn)(void *ctx, int rc, anvil_rewind_outcome *out,
                                     anvil_error *err);

/* Finish off the loop: the checkout (step 2) runs on a thread of its own,
 * step 3 back on the loop thread, then done(ctx, ...) there, exactly once:
 * never before this returns, at the latest in anvil_engine_free. */
void anvil_rewind_finish_later(anvil_rewind *rw, anvil_rewind_done_fn done, void *ctx);

/* Finish here, on the loop thread: rc, out and err as for done (release
 * *out with anvil_rewind_outcome_clear). */
int anvil_rewind_finish_now(anvil_rewind *rw, anvil_rewind_outcome *out, anvil_error *err);

/* Engine shutdown: wait for every rewind in flight and finish it. */
void anvil_rewind_shutdown(struct anvil_engine *e);

void anvil_rewind_outcome_clear(anvil_rewind_outcome *o);

/* Startup: settle every audit row left in_progress by a crash (see above).
 * 0, or -1 when the database cannot be read (err filled). */
int anvil_rewind_recover(struct anvil_engine *e, char *err, size_t errlen);

#endif
