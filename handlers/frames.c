/*
 * handlers/frames.c — a run's recorded frames: frames.list (their numbers
 * and times), frames.get (one frame as recorded) and getDevToolsSnapshot
 * (one frame as the DevTools snapshot that streamDevTools starts with).
 *
 * The engine records one frame per state change, numbered from 1, as
 * {"frameNo","runId","status","root"} (runtime/engine/engine_record.c); the
 * run record's frame_no is the latest. Everything here only reads the
 * store. A frame's tree is read only when one frame is asked for, and is
 * bounded by maxPayload (payload_bound.h).
 *
 * frames.get answers the tree as recorded (Anvil's own node shape, the one
 * rewindRun reads back); getDevToolsSnapshot answers it in the upstream's
 * DevTools node shape (runtime/engine/devtools_node.h), built with the
 * run's workflow key and, while it is configured, its definition.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anvil_handlers.h"
#include "call.h"
#include "devtools.h"
#include "engine.h"
#include "json_print.h"
#include "payload_bound.h"
#include "run_lookup.h"
#include "schema.h"
#include "store_runs.h"

#define FRAMES_LIST_DEFAULT 100

static int oom(anvil_call *call)
{
    return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
}

/* ---- frames.list ------------------------------------------------------------ */

typedef struct frames_ctx {
    anvil_frames_list_response *res;
    size_t cap;
} frames_ctx;

static int add_frame(void *ctx, const anvil_frame_record *fr)
{
    frames_ctx *c = ctx;
    if (c->res->frames.count == c->cap)
        return 1;   /* the store honours the limit; never write past it */
    anvil_frame_summary *f = &c->res->frames.items[c->res->frames.count++];
    f->frame_no = fr->frame_no;
    f->created_at_ms = fr->created_at_ms;
    return 0;
}

int anvil_handle_frames_list(anvil_call *call, const anvil_frames_list_request *req,
                             anvil_frames_list_response *res)
{
    anvil_run_record rec;
    if (anvil_handler_load_run(call, req->run_id, &rec) != 0)
        return -1;
    res->latest_frame_no = rec.frame_no;
    anvil_run_record_clear(&rec);
    if (!(res->run_id = strdup(req->run_id)))
        return oom(call);
    /* The contract bounds limit to 1..1000. */
    int64_t limit = req->has_limit ? req->limit : FRAMES_LIST_DEFAULT;
    int64_t after = req->has_after_frame_no ? req->after_frame_no : 0;
    if (after >= res->latest_frame_no)
        return 0;   /* nothing newer: no query, and an empty (not absent) list */
    int64_t n = res->latest_frame_no - after < limit ? res->latest_frame_no - after : limit;
    frames_ctx c = { .res = res, .cap = (size_t)n };
    if (!(res->frames.items = calloc(c.cap, sizeof *res->frames.items)))
        return oom(call);
    if (anvil_store_frame_headers(call->svc->store, req->run_id, after, n, add_frame, &c) < 0)
        return anvil_store_error(call->svc->store, &call->err, NULL);
    return 0;
}

/* ---- one frame ---------------------------------------------------------------- */

typedef struct frame_read {
    int64_t created_at_ms;
    size_t bytes;                 /* the recorded text's length */
    char *text;                   /* a copy, when within the bound */
    int64_t cap;
    bool oom;
} frame_read;

static int read_frame(void *ctx, const anvil_frame_record *fr)
{
    frame_read *f = ctx;
    f->created_at_ms = fr->created_at_ms;
    f->bytes = strlen(fr->tree_json);
    /* Over the bound: remember the size only, so an oversized frame is
     * refused without copying or parsing it. */
    if ((uint64_t)f->bytes <= (uint64_t)f->cap && !(f->text = strdup(fr->tree_json)))
        f->oom = true;
    return 1;
}

/* Frame `want` of a run whose latest frame is `latest`: see load_frame. */
static int read_one(anvil_call *call, const char *run_id, int64_t want, int64_t latest, cJSON **frame,
                    int64_t *created_at_ms)
{
    anvil_store *s = call->svc->store;
    frame_read f = { .cap = anvil_handler_max_payload(call) };
    int n = 0;
    /* Frames live in 1..latest; a rewind may also have left holes. */
    if (want >= 1 && want <= latest &&
        (n = anvil_store_frames_range(s, run_id, want - 1, want, 1, read_frame, &f)) < 0)
        return anvil_store_error(s, &call->err, NULL);
    if (n == 0) {
        anvil_error_set(&call->err, ANVIL_ERR_FRAME_OUT_OF_RANGE, "Run %s has no frame %lld (frames 1-%lld)",
                        run_id, (long long)want, (long long)latest);
        anvil_error_detail_int(&call->err, "frameNo", want);
        anvil_error_detail_int(&call->err, "latestFrameNo", latest);
        return -1;
    }
    if (f.oom)
        return oom(call);
    char what[160];
    snprintf(what, sizeof what, "Frame %lld of run %s", (long long)want, run_id);
    if (anvil_handler_check_payload(call, f.bytes, what) != 0)
        return -1;
    *frame = cJSON_Parse(f.text);
    free(f.text);
    if (!*frame || !cJSON_IsObject(*frame)) {
        cJSON_Delete(*frame);
        *frame = NULL;
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "%s is not a JSON object as recorded",
                               what);
    }
    *created_at_ms = f.created_at_ms;
    return 0;
}

/* Frame `frame_no` of the run (has_no false: the latest), parsed into
 * *frame (caller-owned). RunNotFound; FrameOutOfRange when the run has no
 * such frame; PayloadTooLarge when it is over maxPayload. With `workflow`,
 * also the run's workflow key (caller-owned, set only on success). 0 or -1. */
static int load_frame(anvil_call *call, const char *run_id, bool has_no, int64_t frame_no,
                      cJSON **frame, int64_t *no_out, int64_t *created_at_ms, char **workflow)
{
    anvil_run_record rec;
    if (anvil_handler_load_run(call, run_id, &rec) != 0)
        return -1;
    int64_t latest = rec.frame_no;
    char *wf = workflow && rec.workflow ? strdup(rec.workflow) : NULL;
    bool wf_oom = workflow && !wf;
    anvil_run_record_clear(&rec);
    if (wf_oom)
        return oom(call);
    int rc = read_one(call, run_id, has_no ? frame_no : latest, latest, frame, created_at_ms);
    if (rc != 0) {
        free(wf);
        return -1;
    }
    *no_out = has_no ? frame_no : latest;
    if (workflow)
        *workflow = wf;
    return 0;
}

/* ---- frames.get ---------------------------------------------------------------- */

int anvil_handle_frames_get(anvil_call *call, const anvil_frames_get_request *req,
                            anvil_frames_get_response *res)
{
    if (load_frame(call, req->run_id, true, req->frame_no, &res->tree, &res->frame_no,
                   &res->created_at_ms, NULL) != 0)
        return -1;
    return (res->run_id = strdup(req->run_id)) ? 0 : oom(call);
}

/* ---- getDevToolsSnapshot ------------------------------------------------------------ */

int anvil_handle_get_dev_tools_snapshot(anvil_call *call,
                                        const anvil_get_dev_tools_snapshot_request *req,
                                        anvil_get_dev_tools_snapshot_response *res)
{
    cJSON *frame = NULL;
    char *workflow = NULL;
    int64_t no, created_at_ms;
    if (load_frame(call, req->run_id, req->has_frame_no, req->frame_no, &frame, &no, &created_at_ms,
                   &workflow) != 0)
        return -1;
    anvil_engine *e = call->svc->engine;
    anvil_devtools_source src = { workflow, e ? anvil_engine_workflow(e, workflow) : NULL };
    /* The very function that builds streamDevTools' first event. */
    cJSON *snap = anvil_devtools_snapshot(frame, created_at_ms, &src);
    cJSON_Delete(frame);
    free(workflow);
    if (!snap)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL,
                               "frame %lld of run %s has no DevTools snapshot (malformed, or out of memory)",
                               (long long)no, req->run_id);
    /* The upstream shape is larger than the recorded frame the bound was
     * checked on: bound the answer itself too. */
    char *text = anvil_json_print(snap);
    bool printed = text != NULL;
    size_t bytes = printed ? strlen(text) : 0;
    free(text);
    char what[160];
    snprintf(what, sizeof what, "The DevTools snapshot of frame %lld of run %s", (long long)no, req->run_id);
    if (!printed || anvil_handler_check_payload(call, bytes, what) != 0) {
        cJSON_Delete(snap);
        return printed ? -1 : oom(call);
    }
    /* Read back through the contract's schema: the answer is the snapshot,
     * and one that drifted from the contract fails here, by name. */
    anvil_schema_error se;
    int rc = anvil_schema_decode(&anvil_schema_get_dev_tools_snapshot_response, snap, res, "$.snapshot",
                                 &se);
    cJSON_Delete(snap);
    if (rc != 0)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "DevTools snapshot of frame %lld: %s: %s",
                               (long long)no, se.path, se.message);
    return 0;
}
