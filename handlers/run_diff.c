/*
 * handlers/run_diff.c — runs.diff: what changed in a run's versioned
 * workspace between two of its frames (docs/time-travel.md#runsdiff).
 *
 * Each frame row records the workspace commit the run was at when the
 * frame was recorded (frames.workspace_ref; NULL while nothing had been
 * committed), so the diff between two frames is the diff between their
 * commits. Frame 0 stands for the empty workspace before the run. Only the
 * store and the run's repository are read; the run is not touched, so this
 * works on active, held and ended runs alike.
 *
 * The bundle is the one getNodeDiff answers (DiffSummary, DiffFile), built
 * by the same anvil_workspace_diff, with the same error codes: VcsError
 * for anything the repository cannot answer, PayloadTooLarge over
 * maxPayload.
 *
 * getRunDiff is the upstream's whole-run form: from the empty workspace
 * every run starts with to the run's current commit, in the upstream's
 * DiffBundle shape, with an oversized marker instead of PayloadTooLarge.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "anvil_handlers.h"
#include "call.h"
#include "engine.h"
#include "engine_registry.h"
#include "payload_bound.h"
#include "run_lookup.h"
#include "store_runs.h"
#include "store_time_travel.h"
#include "workspace.h"

static int oom(anvil_call *call)
{
    return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
}

/* What the contract's schema cannot say: the run id's pattern (the one
 * every run id has, as rewindRun checks it) and the order of the frames
 * when both are given. A defaulted toFrameNo is checked once it is known. */
static int check_request(anvil_call *call, const anvil_runs_diff_request *req)
{
    if (!anvil_run_id_valid(req->run_id)) {
        anvil_error_set(&call->err, ANVIL_ERR_INVALID_REQUEST,
                        "$.params.runId: must match ^[a-z0-9_-]{1,64}$ (legacy code InvalidRunId)");
        anvil_error_detail_str(&call->err, "path", "$.params.runId");
        return -1;
    }
    if (req->has_from_frame_no && req->has_to_frame_no && req->from_frame_no > req->to_frame_no) {
        anvil_error_set(&call->err, ANVIL_ERR_INVALID_REQUEST,
                        "$.params.fromFrameNo: %lld is after toFrameNo %lld",
                        (long long)req->from_frame_no, (long long)req->to_frame_no);
        anvil_error_detail_str(&call->err, "path", "$.params.fromFrameNo");
        return -1;
    }
    return 0;
}

/* The workspace commit frame `frame_no` saw, into *ref (malloc'd; NULL for
 * frame 0 and for a frame recorded before the first commit). 0, or -1 with
 * FrameOutOfRange (the run has no such frame), VcsError (the frame predates
 * time travel, so its commit is unknown) or a store error set. */
static int frame_commit(anvil_call *call, const char *run_id, int64_t frame_no, int64_t latest,
                        char **ref)
{
    anvil_store *s = call->svc->store;
    *ref = NULL;
    if (frame_no == 0)
        return 0;
    bool recorded = false;
    /* Frames live in 1..latest; a rewind removes the ones after its target
     * and numbering continues from there, so no hole is expected, but a
     * missing row is still answered as out of range. */
    int got = frame_no <= latest ? anvil_store_frame_ref(s, run_id, frame_no, ref, &recorded) : 0;
    if (got < 0)
        return anvil_store_error(s, &call->err, "reading the frame failed");
    if (got == 0) {
        anvil_error_set(&call->err, ANVIL_ERR_FRAME_OUT_OF_RANGE,
                        "Run %s has no frame %lld (frames 1-%lld)", run_id, (long long)frame_no,
                        (long long)latest);
        anvil_error_detail_int(&call->err, "frameNo", frame_no);
        anvil_error_detail_int(&call->err, "latestFrameNo", latest);
        return -1;
    }
    if (!recorded) {
        free(*ref);
        *ref = NULL;
        return anvil_error_set(&call->err, ANVIL_ERR_VCS_ERROR,
                               "frame %lld of run %s was recorded before time travel existed; "
                               "its workspace commit is unknown", (long long)frame_no, run_id);
    }
    return 0;
}

/* Fill res->summary and res->files from the run's repository. The commits
 * are res->base_commit (NULL: the empty workspace) and res->commit. 0 or
 * -1 with VcsError / PayloadTooLarge set. */
static int diff_commits(anvil_call *call, const char *run_id, anvil_runs_diff_response *res)
{
    if (!res->commit) {
        /* A frame's commit is an ancestor of every later frame's, so a
         * later frame without one while an earlier has one means the rows
         * were changed behind the server's back. */
        return anvil_error_set(&call->err, ANVIL_ERR_VCS_ERROR,
                               "run %s: frame %lld has workspace commit %s but frame %lld has none",
                               run_id, (long long)res->from_frame_no, res->base_commit,
                               (long long)res->to_frame_no);
    }
    char *git = anvil_workspace_gitdir(anvil_engine_workspace_root(call->svc->engine), run_id);
    if (!git)
        return oom(call);
    int64_t cap = anvil_handler_max_payload(call);
    char err[300];
    anvil_diff_file *files = NULL;
    size_t n = 0;
    int rc = anvil_workspace_diff(git, res->base_commit, res->commit, (size_t)cap, NULL, &res->summary,
                                  &files, &n, err, sizeof err);
    free(git);
    if (rc == -2) {
        anvil_error_set(&call->err, ANVIL_ERR_PAYLOAD_TOO_LARGE, "frames %lld-%lld of run %s: %s",
                        (long long)res->from_frame_no, (long long)res->to_frame_no, run_id, err);
        anvil_error_detail_int(&call->err, "maxBytes", cap);
        return -1;
    }
    if (rc != 0)
        return anvil_error_set(&call->err, ANVIL_ERR_VCS_ERROR, "run %s: %s", run_id, err);
    res->files.items = files;
    res->files.count = n;
    return 0;
}

int anvil_handle_runs_diff(anvil_call *call, const anvil_runs_diff_request *req,
                           anvil_runs_diff_response *res)
{
    anvil_engine *e = call->svc->engine;
    if (check_request(call, req) != 0)
        return -1;
    if (!e)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "no engine is running");
    anvil_run_record rec;
    if (anvil_handler_load_run(call, req->run_id, &rec) != 0)
        return -1;
    int64_t latest = rec.frame_no;
    const anvil_workflow *wf = anvil_engine_workflow(e, rec.workflow);
    char *workflow = strdup(rec.workflow ? rec.workflow : "");
    anvil_run_record_clear(&rec);
    if (!workflow)
        return oom(call);

    res->from_frame_no = req->has_from_frame_no ? req->from_frame_no : 0;
    /* A run that has recorded no frame yet is at frame 0: 0..0, empty. */
    res->to_frame_no = req->has_to_frame_no ? req->to_frame_no : latest;
    int rc = frame_commit(call, req->run_id, res->to_frame_no, latest, &res->commit);
    if (rc == 0)
        rc = frame_commit(call, req->run_id, res->from_frame_no, latest, &res->base_commit);
    /* Both in range: from <= latest, and a defaulted to is latest. */
    assert(rc != 0 || res->from_frame_no <= res->to_frame_no);
    if (rc == 0 && wf && !wf->version_workspace)
        rc = anvil_error_set(&call->err, ANVIL_ERR_VCS_ERROR,
                             "workflow %s does not version its workspace (versionWorkspace: false)",
                             workflow);
    free(workflow);
    if (rc != 0)
        return -1;
    if (!(res->run_id = strdup(req->run_id)))
        return oom(call);
    if (!res->base_commit && !res->commit)
        return 0;   /* nothing committed by either frame: an empty bundle */
    return diff_commits(call, req->run_id, res);
}

/* ---- getRunDiff ------------------------------------------------------------------ */

/* git's empty tree: the workspace every run starts with. */
#define EMPTY_TREE "4b825dc642cb6eb9a060e54bf8d69288fbee4904"

static const char *operation_of(const char *status)
{
    return !strcmp(status, "added") ? "add" : !strcmp(status, "deleted") ? "delete" : "modify";
}

/* files (consumed) into res->patches. 0, or -1 when out of memory. */
static int to_patches(anvil_diff_file *files, size_t n, anvil_get_run_diff_response *res)
{
    res->has_patches = true;
    res->patches.items = n ? calloc(n, sizeof *res->patches.items) : NULL;
    bool ok = !n || res->patches.items;
    for (size_t i = 0; i < n; i++) {
        if (ok) {
            anvil_diff_patch *p = &res->patches.items[res->patches.count++];
            p->path = files[i].path;
            p->diff = files[i].patch;
            files[i].path = files[i].patch = NULL;
            ok = (p->operation = strdup(operation_of(files[i].status))) != NULL;
        }
        free(files[i].path);
        free(files[i].status);
        free(files[i].patch);
    }
    free(files);
    return ok ? 0 : -1;
}

int anvil_handle_get_run_diff(anvil_call *call, const anvil_get_run_diff_request *req,
                              anvil_get_run_diff_response *res)
{
    anvil_engine *e = call->svc->engine;
    if (!e)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "no engine is running");
    anvil_run_record rec;
    if (anvil_handler_load_run(call, req->run_id, &rec) != 0)
        return -1;
    const anvil_workflow *wf = anvil_engine_workflow(e, rec.workflow);
    int rc = 0;
    if (wf && !wf->version_workspace) {
        rc = anvil_error_set(&call->err, ANVIL_ERR_VCS_ERROR,
                             "workflow %s does not version its workspace (versionWorkspace: false)",
                             rec.workflow);
        goto done;
    }
    res->has_seq = true;
    res->seq = rec.last_seq;
    if (!(res->base_ref = strdup(EMPTY_TREE))) {
        rc = oom(call);
        goto done;
    }
    if (!rec.workspace_head) {
        res->has_patches = true;   /* nothing committed yet: no patches */
        goto done;
    }
    char *git = anvil_workspace_gitdir(anvil_engine_workspace_root(e), req->run_id);
    if (!git) {
        rc = oom(call);
        goto done;
    }
    int64_t cap = anvil_handler_max_payload(call);
    char err[300];
    size_t reached = 0, n = 0;
    anvil_diff_summary sum;
    anvil_diff_file *files = NULL;
    int drc = anvil_workspace_diff(git, NULL, rec.workspace_head, (size_t)cap, &reached, &sum,
                                   &files, &n, err, sizeof err);
    free(git);
    if (drc == -2) {
        /* The upstream's marker, not an error: the client shows it. */
        res->has_seq = false;
        res->status = strdup("oversized");
        res->terminal_ref = strdup(rec.workspace_head);
        res->has_size_bytes = res->has_max_bytes = true;
        res->size_bytes = (int64_t)reached;
        res->max_bytes = cap;
        if (!res->status || !res->terminal_ref)
            rc = oom(call);
    } else if (drc != 0) {
        rc = anvil_error_set(&call->err, ANVIL_ERR_VCS_ERROR, "run %s: %s", req->run_id, err);
    } else if (to_patches(files, n, res) != 0) {
        rc = oom(call);
    }
done:
    anvil_run_record_clear(&rec);
    return rc;
}
