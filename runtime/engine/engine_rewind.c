/*
 * runtime/engine/engine_rewind.c — rewindRun's business logic and the
 * startup settling of rewinds a crash interrupted (engine_rewind.h).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "engine_load.h"
#include "engine_mirror.h"
#include "engine_record.h"
#include "engine_registry.h"
#include "engine_rewind.h"
#include "engine_run.h"
#include "log.h"
#include "store_time_travel.h"
#include "workspace.h"

#define ASSERT_ON_LOOP(e) assert(pthread_equal((e)->loop_thread, pthread_self()))

void anvil_rewind_outcome_clear(anvil_rewind_outcome *o)
{
    for (size_t i = 0; i < o->n_warnings; i++) {
        anvil_crossed_effect *w = &o->warnings[i];
        free(w->kind);
        free(w->tool_name);
        free(w->node_id);
        free(w->effect_status);
        free(w->reason);
    }
    free(o->warnings);
    memset(o, 0, sizeof *o);
}

/* Who the audit trail and the quota name: the user, else the token. */
static void caller_name(const anvil_principal *p, char *out, size_t len)
{
    if (p->user_id && *p->user_id)
        snprintf(out, len, "%s", p->user_id);
    else if (p->token_id && *p->token_id)
        snprintf(out, len, "token:%s", p->token_id);
    else
        snprintf(out, len, "anonymous");
}

/* One rewind call in progress: what the audit row needs. */
typedef struct rewind_ctx {
    anvil_engine *e;
    const char *run_id;
    int64_t frame_no;
    char caller[160];
    const char *role;
    int64_t from_frame_no;
    int64_t started_ms, started_mono;
    int64_t audit_id;             /* 0 until the in_progress row is written */
    const char *before;           /* workspace commit before (rec.workspace_head) */
} rewind_ctx;

/* A refusal or failure: settle (or write) the audit row, then set err.
 * Returns -1. The audit write is best effort: the error the caller gets
 * is the rewind's, not the audit's (a failing write is logged). */
static int refuse(rewind_ctx *x, const char *result, anvil_error *err, anvil_error_code code,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int refuse(rewind_ctx *x, const char *result, anvil_error *err, anvil_error_code code,
                  const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *name = anvil_error_info_of(code)->code;
    anvil_store *s = x->e->store;
    int rc;
    if (x->audit_id) {
        rc = anvil_store_audit_settle(s, x->audit_id, result, name, msg, NULL, anvil_now_ms());
    } else {
        anvil_audit_row a = {
            .run_id = (char *)x->run_id, .caller = x->caller, .role = (char *)x->role,
            .from_frame_no = x->from_frame_no, .to_frame_no = x->frame_no,
            .result = (char *)result, .code = (char *)name, .message = msg,
            .workspace_before = (char *)x->before, .started_at_ms = x->started_ms,
            .finished_at_ms = anvil_now_ms(),
        };
        int64_t id;
        rc = anvil_store_audit_insert(s, &a, &id);
    }
    if (rc != 0)
        anvil_log_run(ANVIL_LOG_ERROR, x->run_id,
                      "rewind of run %s by %s: audit row not written: %s", x->run_id,
                      x->caller, anvil_store_errmsg(s));
    anvil_error_set(err, code, "%s", msg);
    if (code == ANVIL_ERR_STORAGE_UNAVAILABLE)
        anvil_error_detail_int(err, "retryAfterMs", 1000);
    return -1;
}

/* ---- applying a frame to the mirror and the rows ------------------------------ */

typedef struct apply_ctx {
    run_rt *r;
    anvil_rewind_outcome *out;
    bool oom;
} apply_ctx;

static int removed_attempt(void *ctx, const anvil_removed_attempt *a)
{
    apply_ctx *x = ctx;
    x->out->deleted_attempts++;
    if (a->commit_id)
        x->out->invalidated_diffs++;
    const anvil_wf_node *def = anvil_workflow_node(x->r->wf, a->node_id);
    if (!def || !def->run)
        return 0;   /* static tasks change nothing outside the run */
    anvil_crossed_effect *grown = realloc(x->out->warnings,
                                          (x->out->n_warnings + 1) * sizeof *grown);
    if (!grown) {
        x->oom = true;
        return -1;
    }
    x->out->warnings = grown;
    anvil_crossed_effect *w = &grown[x->out->n_warnings++];
    memset(w, 0, sizeof *w);
    bool ok = !strcmp(a->state, "succeeded");
    w->kind = strdup("task");
    w->tool_name = strdup("sh");
    w->node_id = strdup(a->node_id);
    w->iteration = a->iteration;
    w->attempt = a->attempt;
    w->seq = a->started_seq;
    w->effect_status = strdup(ok ? "succeeded" : "unknown");
    w->idempotent = false;
    w->has_revert = false;
    w->started_at_ms = a->started_at_ms;
    w->reason = strdup("the task ran after the target frame; only its workspace changes are "
                       "reverted");
    if (!w->kind || !w->tool_name || !w->node_id || !w->effect_status || !w->reason) {
        x->oom = true;
        return -1;
    }
    return 0;
}

/* Put one node back to the frame's record of it, mirror and rows. */
static int apply_node(apply_ctx *x, const cJSON *tn)
{
    run_rt *r = x->r;
    anvil_store *s = r->eng->store;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(tn, "id");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(tn, "state");
    const cJSON *attempts = cJSON_GetObjectItemCaseSensitive(tn, "attempts");
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(tn, "error");
    if (!cJSON_IsString(id) || !cJSON_IsString(state))
        return -1;
    const anvil_wf_node *def = anvil_workflow_node(r->wf, id->valuestring);
    if (!def)
        return 0;   /* a node of an older version of the file */
    node_rt *n = &r->nodes[def->index];
    anvil_node_state st;
    if (!anvil_node_state_parse(state->valuestring, &st))
        return -1;
    int64_t count = cJSON_IsNumber(attempts) ? (int64_t)attempts->valuedouble : 0;
    if (st == ANVIL_NODE_STATE_RUNNING) {
        /* The attempt the frame saw running is removed and runs again. */
        st = ANVIL_NODE_STATE_PENDING;
        if (count > 0)
            count--;
    }
    if (anvil_node_rewind(n, st, count, cJSON_IsString(error) ? error->valuestring : NULL) != 0) {
        x->oom = true;
        return -1;
    }
    if (anvil_run_put_node(r, n) != 0)
        return -1;
    if (def->kind == ANVIL_NODE_TASK &&
        anvil_store_truncate_attempts(s, r->rec.run_id, def->id, 0, count, removed_attempt, x) != 0)
        return -1;
    if (st != ANVIL_NODE_STATE_FINISHED) {
        if (anvil_store_output_delete(s, r->rec.run_id, def->id, 0) != 0)
            return -1;
        cJSON_DeleteItemFromObjectCaseSensitive(r->outputs, def->id);
    }
    if (def->kind == ANVIL_NODE_APPROVAL) {
        if (st == ANVIL_NODE_STATE_WAITING &&
            anvil_store_approval_undecide(s, r->rec.run_id, def->id, 0) != 0)
            return -1;
        if (st == ANVIL_NODE_STATE_PENDING &&
            anvil_store_approval_delete(s, r->rec.run_id, def->id, 0) != 0)
            return -1;
    }
    if (def->kind == ANVIL_NODE_SIGNAL && st != ANVIL_NODE_STATE_FINISHED &&
        anvil_store_signals_release(s, r->rec.run_id, def->id) != 0)
        return -1;
    return 0;
}

static int apply_tree(apply_ctx *x, const cJSON *tn, int depth)
{
    if (depth > 256 || !cJSON_IsObject(tn) || apply_node(x, tn) != 0)
        return -1;
    const cJSON *kids = cJSON_GetObjectItemCaseSensitive(tn, "children");
    for (const cJSON *k = cJSON_IsArray(kids) ? kids->child : NULL; k; k = k->next)
        if (apply_tree(x, k, depth + 1) != 0)
            return -1;
    return 0;
}

/* ---- the workspace ---------------------------------------------------------------- */

static int checkout(anvil_engine *e, const char *run_id, const char *commit, char *err,
                    size_t errlen)
{
    char *dir = anvil_workspace_dir(e->workspace_root, run_id);
    char *git = anvil_workspace_gitdir(e->workspace_root, run_id);
    int rc = dir && git ? anvil_workspace_checkout(git, dir, commit, err, errlen)
                        : (snprintf(err, errlen, "out of memory"), -1);
    free(dir);
    free(git);
    return rc;
}

/* The rewind changed the workspace but not the database: put the
 * workspace back. On failure the run needs an operator: needs_attention,
 * audit `partial`, RewindFailed. `cause` is what went wrong first. */
static int roll_back(rewind_ctx *x, anvil_run_record *rec, anvil_error *err,
                     anvil_error_code code, const char *cause)
{
    char why[256];
    if (checkout(x->e, x->run_id, x->before, why, sizeof why) == 0)
        return refuse(x, "failed", err, code, "%s; the workspace was put back, the run is unchanged",
                      cause);
    anvil_log_run(ANVIL_LOG_ERROR, x->run_id,
                  "rewind of run %s: putting the workspace back failed: %s",
                  x->run_id, why);
    free(rec->status);
    rec->status = strdup(anvil_run_status_name(ANVIL_RUN_STATUS_NEEDS_ATTENTION));
    rec->updated_at_ms = anvil_now_ms();
    if (!rec->status || anvil_store_run_update(x->e->store, rec) != 0)
        anvil_log_run(ANVIL_LOG_ERROR, x->run_id,
                      "rewind of run %s: cannot mark it needs_attention: %s",
                      x->run_id, anvil_store_errmsg(x->e->store));
    return refuse(x, "partial", err, ANVIL_ERR_REWIND_FAILED,
                  "%s, and putting the workspace back failed too (%s); the run is marked "
                  "needs_attention", cause, why);
}

/* Drive a run that is back in the database's hands (after a rewind, or a
 * failed one that left it as before). */
static void drive(anvil_engine *e, const char *run_id)
{
    anvil_run_record rec;
    if (anvil_registry_find(e, run_id) || anvil_store_run_get(e->store, run_id, &rec) != 1)
        return;
    anvil_run_status st = ANVIL_RUN_STATUS_RUNNING;
    bool ended = anvil_run_status_parse(rec.status, &st) && anvil_run_status_terminal(st);
    if (!ended && st != ANVIL_RUN_STATUS_NEEDS_ATTENTION &&
        anvil_run_load_register(e, &rec) != 0)
        anvil_log_run(ANVIL_LOG_ERROR, run_id,
                      "run %s: cannot be loaded after a rewind: %s", run_id,
                      anvil_store_errmsg(e->store));
    anvil_run_record_clear(&rec);
    run_rt *r = anvil_registry_find(e, run_id);
    if (r) {
        anvil_run_recover_interrupted(r);
        anvil_run_recover_signal_waits(r);
        anvil_run_advance(r);
    }
}

/* ---- the rewind --------------------------------------------------------------------------- */

/* Steps 3: one transaction. The mirror r is built from the rows as they
 * are (before), changed to the frame, and written with every deletion. */
static int commit_rewind(rewind_ctx *x, const anvil_frame_row *frame,
                         const cJSON *tree, anvil_rewind_outcome *out, anvil_error *err,
                         run_rt **rp)
{
    anvil_engine *e = x->e;
    *rp = NULL;
    char *last_event = NULL;
    if (anvil_store_event_name(e->store, x->run_id, frame->seq, &last_event) < 0)
        return anvil_store_error(e->store, err, "reading the frame's event failed");
    bool completed = last_event && !strcmp(last_event, "run.completed");
    free(last_event);
    anvil_run_record copy;
    if (anvil_store_run_get(e->store, x->run_id, &copy) != 1)
        return anvil_store_error(e->store, err, "reading the run failed");
    bool no_workflow = false;
    run_rt *r = anvil_run_load(e, &copy, &no_workflow);
    anvil_run_record_clear(&copy);
    if (!r)
        return anvil_store_error(e->store, err, "loading the run failed");
    apply_ctx ax = { r, out, false };
    char *head = frame->workspace_ref ? strdup(frame->workspace_ref) : NULL;
    if ((frame->workspace_ref && !head) || anvil_run_rewind(r, completed) != 0) {
        free(head);
        anvil_run_free(r);
        return anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    }
    free(r->rec.workspace_head);
    r->rec.workspace_head = head;
    r->rec.frame_no = frame->frame_no;
    r->rec.held = true;   /* nothing starts until resumeRun (cleared below if it ended) */
    if (anvil_run_begin(r) != 0) {
        anvil_run_free(r);
        return anvil_store_error(e->store, err, "starting the rewind's transaction failed");
    }
    bool ok = apply_tree(&ax, cJSON_GetObjectItemCaseSensitive(tree, "root"), 0) == 0 &&
              anvil_store_truncate_frames(e->store, x->run_id, frame->frame_no, frame->seq,
                                          &out->deleted_frames) == 0;
    out->duration_ms = anvil_mono_ms() - x->started_mono;
    if (ok)
        ok = anvil_store_audit_settle(e->store, x->audit_id, "success", NULL, NULL,
                                      frame->workspace_ref, anvil_now_ms()) == 0;
    cJSON *p = ok ? cJSON_CreateObject() : NULL;
    if (p) {
        cJSON_AddStringToObject(p, "runId", x->run_id);
        cJSON_AddNumberToObject(p, "fromFrameNo", (double)x->from_frame_no);
        cJSON_AddNumberToObject(p, "toFrameNo", (double)frame->frame_no);
        cJSON_AddNumberToObject(p, "timestampMs", (double)anvil_now_ms());
        cJSON_AddStringToObject(p, "caller", x->caller);
    }
    ok = p && anvil_run_note(r, false, "run.time_travel_jumped", p) == 0;
    if (ok && anvil_run_ended(r))
        r->rec.held = false;   /* the frame shows the run ended: nothing to hold it for
                                  (anvil_run_end writes the row) */
    if (anvil_run_end(r, ok) != 0) {
        anvil_run_free(r);
        if (ax.oom)
            return anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
        return anvil_store_error(e->store, err, "recording the rewind failed");
    }
    *rp = r;
    return 0;
}

/* ---- one rewind, from its checks to its answer ------------------------------------------ */

struct anvil_rewind {
    rewind_slot slot;             /* first: in e->rewinds while in flight */
    rewind_ctx x;                 /* x.run_id is slot.run_id, x.before rec's */
    anvil_run_record rec;         /* the run as it was */
    anvil_frame_row frame;
    cJSON *tree;                  /* the frame's node tree */
    /* The worker's: copies, so it never touches the engine. */
    char *dir, *git;
    pthread_t thread;
    bool threaded;
    int checkout_rc;
    char why[256];
    /* Back on the loop. */
    anvil_rewind_done_fn done;
    void *done_ctx;
};

static void rewind_free(anvil_rewind *rw)
{
    cJSON_Delete(rw->tree);
    anvil_frame_row_clear(&rw->frame);
    anvil_run_record_clear(&rw->rec);
    free(rw->dir);
    free(rw->git);
    free(rw);
}

static void on_rewind_wake(evutil_socket_t fd, short what, void *arg);

/* The wake pipe the workers hand their rewinds back through, made on the
 * first rewind. 0, or -1. */
static int wake_pipe(anvil_engine *e)
{
    if (e->rewind_ev)
        return 0;
    if (pipe2(e->rewind_wake, O_CLOEXEC) != 0) {
        e->rewind_wake[0] = e->rewind_wake[1] = -1;
        return -1;
    }
    if (fcntl(e->rewind_wake[0], F_SETFL, O_NONBLOCK) != 0 ||
        !(e->rewind_ev = event_new(e->base, e->rewind_wake[0], EV_READ | EV_PERSIST,
                                   on_rewind_wake, e)) ||
        event_add(e->rewind_ev, NULL) != 0) {
        if (e->rewind_ev)
            event_free(e->rewind_ev);
        e->rewind_ev = NULL;
        close(e->rewind_wake[0]);
        close(e->rewind_wake[1]);
        e->rewind_wake[0] = e->rewind_wake[1] = -1;
        return -1;
    }
    return 0;
}

int anvil_rewind_begin(anvil_engine *e, const char *run_id, int64_t frame_no,
                       const anvil_principal *caller, anvil_rewind **rwp, anvil_error *err)
{
    ASSERT_ON_LOOP(e);
    *rwp = NULL;
    if (!anvil_run_id_valid(run_id)) {
        /* No audit row: it could not name a run. */
        anvil_error_set(err, ANVIL_ERR_INVALID_REQUEST,
                        "$.params.runId: must match ^[a-z0-9_-]{1,64}$ (legacy code InvalidRunId)");
        anvil_error_detail_str(err, "path", "$.params.runId");
        return -1;
    }
    anvil_rewind *rw = calloc(1, sizeof *rw);
    if (!rw)
        return anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    snprintf(rw->slot.run_id, sizeof rw->slot.run_id, "%s", run_id);
    rewind_ctx *x = &rw->x;
    *x = (rewind_ctx){
        .e = e, .run_id = rw->slot.run_id, .frame_no = frame_no,
        .role = caller->role ? caller->role : "", .from_frame_no = -1,
        .started_ms = anvil_now_ms(), .started_mono = anvil_mono_ms(),
    };
    caller_name(caller, x->caller, sizeof x->caller);
    int found = anvil_store_run_get(e->store, run_id, &rw->rec);
    if (found != 1) {
        if (found < 0)
            anvil_store_error(e->store, err, "reading the run failed");
        else
            refuse(x, "failed", err, ANVIL_ERR_RUN_NOT_FOUND, "Run not found: %s", run_id);
        free(rw);
        return -1;
    }
    anvil_run_record *rec = &rw->rec;
    x->from_frame_no = rec->frame_no;
    x->before = rec->workspace_head;
    bool owner = rec->owner_id && caller->user_id && !strcmp(rec->owner_id, caller->user_id);
    bool admin = caller->role && !strcmp(caller->role, "admin");
    if (!owner && !admin) {
        refuse(x, "failed", err, ANVIL_ERR_UNAUTHORIZED,
               "Only the run's owner or an admin may rewind run %s", run_id);
        goto fail;
    }
    int64_t used = 0;
    if (anvil_store_audit_quota_used(e->store, run_id, x->caller,
                                     x->started_ms - ANVIL_REWIND_QUOTA_WINDOW_MS, &used) != 0) {
        anvil_store_error(e->store, err, "reading the rewind quota failed");
        goto fail;
    }
    if (used >= ANVIL_REWIND_QUOTA) {
        refuse(x, "failed", err, ANVIL_ERR_RATE_LIMITED,
               "%s has rewound run %s %lld times in the last hour (the limit is %d)", x->caller,
               run_id, (long long)used, ANVIL_REWIND_QUOTA);
        goto fail;
    }
    if (anvil_registry_rewinding(e, run_id)) {
        refuse(x, "failed", err, ANVIL_ERR_BUSY,
               "A rewind of run %s is in flight; retry once it is done", run_id);
        goto fail;
    }
    run_rt *live = anvil_registry_find(e, run_id);
    if (live && (live->running_tasks > 0 || live->advancing)) {
        refuse(x, "failed", err, ANVIL_ERR_BUSY,
               "Run %s has %d task(s) executing; cancel it or wait for them before rewinding",
               run_id, live->running_tasks);
        goto fail;
    }
    if (e->n_rewinds >= ANVIL_REWIND_MAX_IN_FLIGHT) {
        refuse(x, "failed", err, ANVIL_ERR_BUSY,
               "%d rewinds are in flight, the most the server runs at once; retry shortly",
               ANVIL_REWIND_MAX_IN_FLIGHT);
        goto fail;
    }
    int got = frame_no >= 1 && frame_no <= rec->frame_no
                  ? anvil_store_frame_get(e->store, run_id, frame_no, &rw->frame) : 0;
    if (got < 0) {
        anvil_store_error(e->store, err, "reading the frame failed");
        goto fail;
    }
    if (got == 0) {
        refuse(x, "failed", err, ANVIL_ERR_FRAME_OUT_OF_RANGE,
               "Run %s has frames 1 to %lld; there is no frame %lld", run_id,
               (long long)rec->frame_no, (long long)frame_no);
        goto fail;
    }
    const anvil_workflow *wf = anvil_registry_workflow(e, rec->workflow);
    if (!wf || !wf->version_workspace || rw->frame.seq < 0) {
        refuse(x, "failed", err, ANVIL_ERR_UNSUPPORTED_SANDBOX, "%s",
               !wf ? "the run's workflow is no longer configured; it cannot be driven again"
               : !wf->version_workspace ? "the workflow does not version its workspace "
                                          "(versionWorkspace: false)"
                                        : "the frame was recorded before time travel existed");
        goto fail;
    }
    rw->dir = anvil_workspace_dir(e->workspace_root, run_id);
    rw->git = anvil_workspace_gitdir(e->workspace_root, run_id);
    if (!rw->dir || !rw->git) {
        anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
        goto fail;
    }
    const char *target = rw->frame.workspace_ref;
    if ((rec->workspace_head && !anvil_workspace_has(rw->git, rec->workspace_head)) ||
        (target && !anvil_workspace_has(rw->git, target))) {
        refuse(x, "failed", err, ANVIL_ERR_UNSUPPORTED_SANDBOX,
               "the workspace repository of run %s is missing or lacks the commits of the run and "
               "of frame %lld", run_id, (long long)frame_no);
        goto fail;
    }
    rw->tree = cJSON_Parse(rw->frame.tree_json);
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(rw->tree, "root"))) {
        refuse(x, "failed", err, ANVIL_ERR_REWIND_FAILED, "frame %lld of run %s is unreadable",
               (long long)frame_no, run_id);
        goto fail;
    }
    if (wake_pipe(e) != 0) {
        anvil_error_set(err, ANVIL_ERR_INTERNAL, "cannot create the rewind wake pipe: %s",
                        strerror(errno));
        goto fail;
    }

    /* 1. The audit row, committed before anything changes. */
    anvil_audit_row a = {
        .run_id = (char *)run_id, .caller = x->caller, .role = (char *)x->role,
        .from_frame_no = x->from_frame_no, .to_frame_no = frame_no, .result = "in_progress",
        .workspace_before = rec->workspace_head, .started_at_ms = x->started_ms,
        .finished_at_ms = -1,
    };
    if (anvil_store_audit_insert(e->store, &a, &x->audit_id) != 0 ||
        anvil_store_flush(e->store) != 0) {
        anvil_store_error(e->store, err, "writing the rewind's audit row failed");
        goto fail;
    }
    /* The flush may have let a run that ended in its batch go. */
    live = anvil_registry_find(e, run_id);
    /* The mirror is dropped: from here the rows are the truth, and the run
     * is loaded again from them whatever happens. Until then it is Busy. */
    if (live)
        anvil_registry_forget(e, live);
    rw->slot.next = e->rewinds;
    e->rewinds = &rw->slot;
    e->n_rewinds++;
    *rwp = rw;
    return 0;

fail:
    rewind_free(rw);
    return -1;
}

/* 2. The workspace: on the worker thread, or inline. */
static void check_out(anvil_rewind *rw)
{
    rw->checkout_rc = anvil_workspace_checkout(rw->git, rw->dir, rw->frame.workspace_ref, rw->why,
                                               sizeof rw->why);
}

/* 3., on the loop: the rows, or the way back; then the answer. */
static void complete(anvil_rewind *rw)
{
    rewind_ctx *x = &rw->x;
    anvil_engine *e = x->e;
    ASSERT_ON_LOOP(e);
    for (rewind_slot **pp = &e->rewinds; *pp; pp = &(*pp)->next) {
        if (*pp == &rw->slot) {
            *pp = rw->slot.next;
            e->n_rewinds--;
            break;
        }
    }
    anvil_rewind_outcome out = { 0 };
    anvil_error err = { 0 };
    int rc = -1;
    run_rt *r = NULL;
    if (rw->checkout_rc != 0) {
        char cause[400];
        snprintf(cause, sizeof cause, "checking out frame %lld's workspace failed: %s",
                 (long long)x->frame_no, rw->why);
        roll_back(x, &rw->rec, &err, ANVIL_ERR_VCS_ERROR, cause);
        drive(e, x->run_id);
        goto answer;
    }
    out.reverted_sandboxes = 1;
    anvil_error db = { 0 };
    if (commit_rewind(x, &rw->frame, rw->tree, &out, &db, &r) != 0) {
        char cause[400];
        snprintf(cause, sizeof cause, "%s", db.message ? db.message : "recording the rewind failed");
        anvil_error_code code = db.code;
        anvil_error_clear(&db);
        anvil_rewind_outcome_clear(&out);
        roll_back(x, &rw->rec, &err, code, cause);
        drive(e, x->run_id);
        goto answer;
    }
    out.from_frame_no = x->from_frame_no;
    out.new_frame_no = x->frame_no;
    anvil_log_run(ANVIL_LOG_INFO, x->run_id,
                  "run %s rewound from frame %lld to %lld by %s (%lld frames, %lld "
                  "attempts removed)", x->run_id, (long long)x->from_frame_no, (long long)x->frame_no,
                  x->caller, (long long)out.deleted_frames, (long long)out.deleted_attempts);
    if (anvil_run_ended(r)) {
        anvil_run_free(r);
    } else if (anvil_registry_add(e, r) != 0) {
        anvil_run_free(r);
        drive(e, x->run_id);   /* tries again from the rows */
    } else {
        anvil_run_recover_interrupted(r);
        anvil_run_recover_signal_waits(r);
        anvil_run_advance(r);
    }
    rc = 0;
answer:
    rw->done(rw->done_ctx, rc, &out, &err);
    anvil_rewind_outcome_clear(&out);
    anvil_error_clear(&err);
    rewind_free(rw);
}

static void *worker(void *arg)
{
    anvil_rewind *rw = arg;
    check_out(rw);
    /* The pointer is the message: a write this small is atomic. */
    int fd = rw->x.e->rewind_wake[1];
    ssize_t n;
    do
        n = write(fd, &rw, sizeof rw);
    while (n < 0 && errno == EINTR);
    assert(n == (ssize_t)sizeof rw);
    return NULL;
}

/* Rewinds handed back by their workers. */
static void on_rewind_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    anvil_rewind *rw;
    while (read(fd, &rw, sizeof rw) == (ssize_t)sizeof rw) {
        if (rw->threaded)
            pthread_join(rw->thread, NULL);
        complete(rw);
    }
}

void anvil_rewind_finish_later(anvil_rewind *rw, anvil_rewind_done_fn done, void *ctx)
{
    ASSERT_ON_LOOP(rw->x.e);
    rw->done = done;
    rw->done_ctx = ctx;
    rw->threaded = pthread_create(&rw->thread, NULL, worker, rw) == 0;
    if (!rw->threaded) {
        /* No thread to spare: check out here, but still answer from the
         * loop, never inside the caller. */
        anvil_log_run(ANVIL_LOG_WARN, rw->x.run_id,
                      "rewind of run %s: no worker thread; checking out on the loop",
                      rw->x.run_id);
        worker(rw);
    }
}

typedef struct sync_result {
    int rc;
    anvil_rewind_outcome *out;
    anvil_error *err;
} sync_result;

static void sync_done(void *ctx, int rc, anvil_rewind_outcome *out, anvil_error *err)
{
    sync_result *s = ctx;
    s->rc = rc;
    *s->out = *out;
    memset(out, 0, sizeof *out);
    *s->err = *err;
    memset(err, 0, sizeof *err);
}

int anvil_rewind_finish_now(anvil_rewind *rw, anvil_rewind_outcome *out, anvil_error *err)
{
    ASSERT_ON_LOOP(rw->x.e);
    sync_result s = { -1, out, err };
    memset(out, 0, sizeof *out);
    rw->done = sync_done;
    rw->done_ctx = &s;
    check_out(rw);
    complete(rw);
    return s.rc;
}

void anvil_rewind_shutdown(anvil_engine *e)
{
    ASSERT_ON_LOOP(e);
    /* Every rewind in flight has a worker that will write to the pipe:
     * wait for each, then finish it. */
    while (e->rewinds) {
        anvil_rewind *rw;
        ssize_t n = read(e->rewind_wake[0], &rw, sizeof rw);
        if (n == (ssize_t)sizeof rw) {
            if (rw->threaded)
                pthread_join(rw->thread, NULL);
            complete(rw);
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd p = { .fd = e->rewind_wake[0], .events = POLLIN };
            poll(&p, 1, -1);
        } else {
            break;   /* cannot happen while workers hold the write end */
        }
    }
    if (e->rewind_ev)
        event_free(e->rewind_ev);
    e->rewind_ev = NULL;
    for (int i = 0; i < 2; i++)
        if (e->rewind_wake[i] >= 0)
            close(e->rewind_wake[i]);
    e->rewind_wake[0] = e->rewind_wake[1] = -1;
}

/* ---- startup ---------------------------------------------------------------------------- */

typedef struct recover_ctx {
    anvil_engine *e;
    int failures;
} recover_ctx;

static int recover_row(void *ctx, const anvil_audit_row *a)
{
    recover_ctx *x = ctx;
    anvil_engine *e = x->e;
    /* The rewind's transaction never committed: the rows are as before.
     * Make the workspace match them again. */
    char why[256] = "";
    anvil_run_record rec;
    int found = anvil_store_run_get(e->store, a->run_id, &rec);
    bool put_back = found == 1 && checkout(e, a->run_id, rec.workspace_head, why, sizeof why) == 0;
    if (found == 1 && !put_back) {
        free(rec.status);
        rec.status = strdup(anvil_run_status_name(ANVIL_RUN_STATUS_NEEDS_ATTENTION));
        if (!rec.status || anvil_store_run_update(e->store, &rec) != 0)
            x->failures++;
    }
    if (found == 1)
        anvil_run_record_clear(&rec);
    char msg[512];
    snprintf(msg, sizeof msg,
             put_back ? "the server stopped during the rewind; the run is as before it"
                      : "the server stopped during the rewind; the run's rows are as before it but "
                        "its workspace could not be put back (%s): marked needs_attention",
             why);
    if (anvil_store_audit_settle(e->store, a->audit_id, "partial", "RewindFailed", msg, NULL,
                                 anvil_now_ms()) != 0)
        x->failures++;
    anvil_log(put_back ? ANVIL_LOG_WARN : ANVIL_LOG_ERROR, "rewind %lld of run %s: %s",
              (long long)a->audit_id, a->run_id, msg);
    return 0;
}

int anvil_rewind_recover(anvil_engine *e, char *err, size_t errlen)
{
    recover_ctx x = { e, 0 };
    if (anvil_store_audit_open(e->store, recover_row, &x) < 0 || x.failures) {
        snprintf(err, errlen, "settling interrupted rewinds: %s", anvil_store_errmsg(e->store));
        return -1;
    }
    return 0;
}
