/*
 * runtime/ws/ws_stream_run.c — streamRunEvents streams: one run's events,
 * from the durable log, then live.
 *
 * A connection holds any number of them, each on one run, each with the
 * highest run seq it has delivered. Once the call's answer is out, the
 * stream sends its gap resync (if the handler asked for one), then the log
 * from the store, and from then on the run's live events, plus a
 * run.heartbeat every ANVIL_RUN_EVENT_HEARTBEAT_MS. The core thread is the
 * only writer and the engine publishes an event only after committing it,
 * so "read the log, then go live" leaves neither gap nor duplicate; a live
 * event at or below the delivered seq is dropped and one beyond the next
 * expected seq first pulls the missing ones from the log, so the stream
 * stays exactly-once whatever the publication order.
 *
 * Owns the run.event / run.gap_resync / run.heartbeat payloads. Must not
 * touch the stream list or its lifecycle (ws_stream.c).
 */
#include <stdlib.h>
#include <string.h>

#include "anvil_contract.h"
#include "htab.h"
#include "json_print.h"
#include "log.h"
#include "store_runs.h"
#include "ws_gateway_internal.h"

typedef struct run_stream {
    ws_stream base;
    int64_t sent_seq;             /* highest run seq delivered (or the starting point) */
    cJSON *gap_snapshot;          /* send run.gap_resync first (pending streams only) */
    int64_t gap_from, gap_to;
} run_stream;

_Static_assert(offsetof(run_stream, base) == 0, "ws_stream.c allocates and frees the whole struct");

static run_stream *as_run(ws_stream *st)
{
    return ANVIL_CONTAINER_OF(st, run_stream, base);
}

/* One run.event frame; payload_json is the event's payload as JSON text. */
static void stream_send(ws_conn *c, run_stream *rs, int64_t seq, const char *event,
                        const char *payload_json, int64_t sv)
{
    cJSON *p = cJSON_CreateObject();
    cJSON *raw = cJSON_CreateRaw(payload_json ? payload_json : "{}");
    if (!p || !raw || !cJSON_AddStringToObject(p, "streamId", rs->base.id) ||
        !cJSON_AddStringToObject(p, "apiVersion", ANVIL_API_VERSION) ||
        !cJSON_AddStringToObject(p, "type", "RunEvent") || !cJSON_AddStringToObject(p, "runId", rs->base.run_id) ||
        !cJSON_AddStringToObject(p, "event", event) || !cJSON_AddItemToObject(p, "payload", raw) ||
        !cJSON_AddNumberToObject(p, "seq", (double)seq) || !cJSON_AddNumberToObject(p, "stateVersion", (double)sv)) {
        if (raw && !(p && cJSON_GetObjectItemCaseSensitive(p, "payload") == raw))
            cJSON_Delete(raw);
        cJSON_Delete(p);
        ws_send_text(c, NULL);
        return;
    }
    ws_send_owned_event(c, "run.event", p, sv);
    if (seq > rs->sent_seq)
        rs->sent_seq = seq;
}

typedef struct replay_ctx {
    ws_conn *c;
    run_stream *rs;
} replay_ctx;

static int replay_row(void *ctx, const anvil_event_record *ev)
{
    replay_ctx *r = ctx;
    if (r->c->closing)
        return 1;
    if (ev->seq <= r->rs->sent_seq)
        return 0;
    stream_send(r->c, r->rs, ev->seq, ev->event, ev->payload_json, ev->state_version);
    return r->c->closing ? 1 : 0;
}

/* Send the logged events after rs->sent_seq up to `upto` (< 0: all), one
 * frame at a time straight from the statement. */
static void stream_replay(ws_conn *c, run_stream *rs, int64_t upto)
{
    anvil_store *s = c->w->svc->store;
    replay_ctx r = { c, rs };
    if (!c->closing && anvil_store_events_range(s, rs->base.run_id, rs->sent_seq, upto, 0, replay_row, &r) < 0) {
        anvil_log(ANVIL_LOG_ERROR, "ws %llu: stream %s: reading the event log: %s",
                  (unsigned long long)c->id, rs->base.id, anvil_store_errmsg(s));
        ws_conn_close(c, 1011, "Internal");
    }
}

static void run_start(ws_conn *c, ws_stream *st)
{
    run_stream *rs = as_run(st);
    if (rs->gap_snapshot) {
        cJSON *p = cJSON_CreateObject();
        cJSON *snap = rs->gap_snapshot;
        rs->gap_snapshot = NULL;
        if (!p || !cJSON_AddStringToObject(p, "apiVersion", ANVIL_API_VERSION) ||
            !cJSON_AddStringToObject(p, "type", "GapResync") || !cJSON_AddStringToObject(p, "streamId", st->id) ||
            !cJSON_AddStringToObject(p, "runId", st->run_id) ||
            !cJSON_AddNumberToObject(p, "fromSeq", (double)rs->gap_from) ||
            !cJSON_AddNumberToObject(p, "toSeq", (double)rs->gap_to) || !cJSON_AddItemToObject(p, "snapshot", snap)) {
            if (!p || cJSON_GetObjectItemCaseSensitive(p, "snapshot") != snap)
                cJSON_Delete(snap);
            cJSON_Delete(p);
            ws_send_text(c, NULL);
            return;
        }
        ws_send_owned_event(c, "run.gap_resync", p, ws_state_version(c->w));
    }
    stream_replay(c, rs, -1);
}

static void run_deliver(ws_conn *c, ws_stream *st, const anvil_event *ev, char **ptext)
{
    run_stream *rs = as_run(st);
    if (ev->seq <= rs->sent_seq)
        return;
    if (ev->seq > rs->sent_seq + 1)
        stream_replay(c, rs, ev->seq - 1);
    if (c->closing)
        return;
    if (!*ptext && !(*ptext = ev->payload ? anvil_json_print(ev->payload) : strdup("{}"))) {
        ws_send_text(c, NULL);
        return;
    }
    stream_send(c, rs, ev->seq, ev->event, *ptext, ev->state_version);
}

static void run_heartbeat(ws_conn *c, ws_stream *st, int64_t now)
{
    cJSON *p = cJSON_CreateObject();
    if (!p || !cJSON_AddStringToObject(p, "apiVersion", ANVIL_API_VERSION) ||
        !cJSON_AddStringToObject(p, "type", "Heartbeat") || !cJSON_AddStringToObject(p, "streamId", st->id) ||
        !cJSON_AddStringToObject(p, "runId", st->run_id) || !cJSON_AddNumberToObject(p, "ts", (double)now)) {
        cJSON_Delete(p);
        ws_send_text(c, NULL);
        return;
    }
    ws_send_owned_event(c, "run.heartbeat", p, ws_state_version(c->w));
}

static void run_release(ws_stream *st)
{
    cJSON_Delete(as_run(st)->gap_snapshot);
}

static const ws_stream_kind run_kind = {
    .size = sizeof(run_stream), .slot = WS_STREAM_RUN_EVENTS,
    .start = run_start, .deliver = run_deliver, .heartbeat = run_heartbeat, .release = run_release,
    .error_event = "run.error",
};

int ws_run_stream_open(void *conn, const anvil_run_stream *rs, char stream_id[37], anvil_error *err)
{
    ws_stream *st = ws_stream_register(conn, &run_kind, rs->run_id, stream_id, err);
    if (!st) {
        cJSON_Delete(rs->gap_snapshot);
        return -1;
    }
    run_stream *r = as_run(st);
    r->sent_seq = rs->replay_after;
    r->gap_snapshot = rs->gap_snapshot;
    r->gap_from = rs->gap_from;
    r->gap_to = rs->gap_to;
    return 0;
}
