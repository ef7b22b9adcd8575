/*
 * runtime/ws/ws_stream_devtools.c — streamDevTools streams: the frames of
 * one run as snapshot/delta events.
 *
 * Once the call's answer is out, the frames after the starting point are
 * read from the store (the first becomes the snapshot); on every later
 * event of the run the frames after the last delivered frameNo are read
 * again and each becomes a delta or a re-baseline snapshot
 * (runtime/engine/devtools.c). The engine publishes only after
 * committing, so the store already holds an event's frames; reading
 * "after the last delivered frameNo" keeps each stream exactly-once and in
 * order whatever events carry the frames.
 *
 * Each event's payload is {streamId, runId, event}, `event` the
 * DevToolsEvent (a snapshot or a delta of the upstream's node shape), as
 * the upstream sends it: its client tells streams apart by streamId and
 * reads the event from `event`. The tree is built with the run's workflow
 * key and, while it is configured, its definition (devtools_node.h).
 *
 * Owns the devtools.event payloads and each stream's tree. Must not touch
 * the stream list or its lifecycle (ws_stream.c).
 */
#include <stdlib.h>
#include <string.h>

#include "devtools.h"
#include "engine.h"
#include "htab.h"
#include "log.h"
#include "store_runs.h"
#include "ws_gateway_internal.h"

typedef struct dt_stream {
    ws_stream base;
    int64_t sent_frame;           /* highest frameNo delivered (or the starting point) */
    anvil_devtools_state state;   /* the tree the client has, the delta count */
    char *workflow;               /* the run's workflow key, read on the first pull */
} dt_stream;

_Static_assert(offsetof(dt_stream, base) == 0, "ws_stream.c allocates and frees the whole struct");

static dt_stream *as_dt(ws_stream *st)
{
    return ANVIL_CONTAINER_OF(st, dt_stream, base);
}

typedef struct dt_ctx {
    ws_conn *c;
    dt_stream *dt;
    anvil_devtools_source src;
} dt_ctx;

static int dt_frame(void *ctx, const anvil_frame_record *fr)
{
    dt_ctx *x = ctx;
    ws_conn *c = x->c;
    dt_stream *dt = x->dt;
    if (c->closing)
        return 1;
    if (fr->frame_no <= dt->sent_frame)
        return 0;
    /* A hole in the frame numbers (frames the client never saw in the
     * tree it holds): the delta would be against the wrong base. */
    if (dt->state.root && fr->frame_no != dt->state.seq + 1)
        anvil_devtools_request_rebaseline(&dt->state);
    cJSON *frame = cJSON_Parse(fr->tree_json);
    cJSON *ev = frame ? anvil_devtools_next(&dt->state, frame, fr->created_at_ms, &x->src) : NULL;
    cJSON_Delete(frame);
    dt->sent_frame = fr->frame_no;
    if (!ev) {
        /* Unreadable frame (or out of memory): skip it; the next one is a
         * snapshot so the client's tree stays right. */
        anvil_log(ANVIL_LOG_ERROR, "ws %llu: devtools stream %s: frame %lld of run %s is not usable",
                  (unsigned long long)c->id, dt->base.id, (long long)fr->frame_no, dt->base.run_id);
        anvil_devtools_request_rebaseline(&dt->state);
        return 0;
    }
    /* Which stream (a connection may hold several) and run it belongs to. */
    cJSON *p = cJSON_CreateObject();
    if (!p || !cJSON_AddStringToObject(p, "streamId", dt->base.id) ||
        !cJSON_AddStringToObject(p, "runId", dt->base.run_id) || !cJSON_AddItemToObject(p, "event", ev)) {
        if (!p || cJSON_GetObjectItemCaseSensitive(p, "event") != ev)
            cJSON_Delete(ev);
        cJSON_Delete(p);
        ws_send_text(c, NULL);
        return 1;
    }
    ws_send_owned_event(c, "devtools.event", p, ws_state_version(c->w));
    return c->closing ? 1 : 0;
}

/* The run's workflow key, read once: a run never changes workflow. 0, or
 * -1 when the store cannot say (logged). */
static int dt_workflow(ws_conn *c, dt_stream *dt)
{
    if (dt->workflow)
        return 0;
    anvil_store *s = c->w->svc->store;
    anvil_run_record rec;
    memset(&rec, 0, sizeof rec);
    int found = anvil_store_run_get(s, dt->base.run_id, &rec);
    if (found == 1)
        dt->workflow = rec.workflow ? strdup(rec.workflow) : NULL;
    anvil_run_record_clear(&rec);
    if (!dt->workflow) {
        anvil_log(ANVIL_LOG_ERROR, "ws %llu: devtools stream %s: reading run %s: %s",
                  (unsigned long long)c->id, dt->base.id, dt->base.run_id,
                  found < 0 ? anvil_store_errmsg(s) : found == 0 ? "no such run" : "out of memory");
        return -1;
    }
    return 0;
}

/* Send the run's frames after sent_frame, straight from the store. */
static void dt_pull(ws_conn *c, ws_stream *st)
{
    dt_stream *dt = as_dt(st);
    anvil_store *s = c->w->svc->store;
    if (c->closing)
        return;
    if (dt_workflow(c, dt) != 0) {
        ws_conn_close(c, 1011, "Internal");
        return;
    }
    /* Looked up on every pull: the definition belongs to the engine. */
    anvil_engine *e = c->w->svc->engine;
    dt_ctx x = { c, dt, { dt->workflow, e ? anvil_engine_workflow(e, dt->workflow) : NULL } };
    if (anvil_store_frames_range(s, st->run_id, dt->sent_frame, -1, 0, dt_frame, &x) < 0) {
        anvil_log(ANVIL_LOG_ERROR, "ws %llu: devtools stream %s: reading frames: %s",
                  (unsigned long long)c->id, st->id, anvil_store_errmsg(s));
        ws_conn_close(c, 1011, "Internal");
    }
}

static void dt_deliver(ws_conn *c, ws_stream *st, const anvil_event *ev, char **ptext)
{
    (void)ptext;
    dt_stream *dt = as_dt(st);
    if (strcmp(ev->event, "run.time_travel_jumped") == 0) {
        /* A rewind: frames after toFrameNo were removed and are recorded
         * again; re-read from the target and send it as a snapshot. */
        const cJSON *to = cJSON_GetObjectItemCaseSensitive(ev->payload, "toFrameNo");
        if (cJSON_IsNumber(to) && (int64_t)to->valuedouble - 1 < dt->sent_frame)
            dt->sent_frame = (int64_t)to->valuedouble - 1;
        anvil_devtools_request_rebaseline(&dt->state);
    }
    dt_pull(c, st);
}

static void dt_release(ws_stream *st)
{
    anvil_devtools_state_clear(&as_dt(st)->state);
    free(as_dt(st)->workflow);
}

static const ws_stream_kind dt_kind = {
    .size = sizeof(dt_stream), .slot = WS_STREAM_DEVTOOLS,
    .start = dt_pull, .deliver = dt_deliver, .heartbeat = NULL, .release = dt_release,
    .error_event = "devtools.error",
};

int ws_devtools_stream_open(void *conn, const char *run_id, int64_t start_after, char stream_id[37],
                            anvil_error *err)
{
    ws_stream *st = ws_stream_register(conn, &dt_kind, run_id, stream_id, err);
    if (!st)
        return -1;
    as_dt(st)->sent_frame = start_after;
    return 0;
}
