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
 * Loop thread only. The principal is only read.
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

/* Rewind run_id to frame_no for `caller`. Every call with a well-formed
 * run id writes an audit row. Errors: InvalidRequest (run id outside
 * ^[a-z0-9_-]{1,64}$); RunNotFound; Unauthorized (neither the run's owner nor role
 * admin); RateLimited (ANVIL_REWIND_QUOTA in the window); Busy (a task of
 * the run is executing); FrameOutOfRange; UnsupportedSandbox (the workflow
 * does not version its workspace, the repository or a commit is missing,
 * or the frame predates time travel); VcsError (the checkout failed and the
 * workspace was put back); RewindFailed (and the workspace could not be
 * put back: the run is marked needs_attention); StorageUnavailable.
 * On success *out is filled (release with anvil_rewind_outcome_clear). */
int anvil_engine_rewind(struct anvil_engine *e, const char *run_id, int64_t frame_no,
                        const anvil_principal *caller, anvil_rewind_outcome *out,
                        anvil_error *err);

void anvil_rewind_outcome_clear(anvil_rewind_outcome *o);

/* Startup: settle every audit row left in_progress by a crash (see above).
 * 0, or -1 when the database cannot be read (err filled). */
int anvil_rewind_recover(struct anvil_engine *e, char *err, size_t errlen);

#endif
