/*
 * runtime/client/client_stream.c — the resumable run stream: one run's
 * event log over streamRunEvents, reopened after a dropped socket with
 * afterSeq = the last seq delivered, so the caller sees every event once
 * and in order (a GapResync when the server's window no longer holds what
 * was missed).
 *
 * Frames of other streams on the socket, run.heartbeat and tick are
 * consumed here and never reach the caller.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_internal.h"
#include "client_ws.h"

#define MAX_RECONNECTS_IN_A_ROW 5

struct anvil_client_run_stream {
    anvil_client *c;
    anvil_client_ws *ws;
    char *run_id;
    char *stream_id;
    int64_t last_seq;        /* resume point: last delivered seq, or the one asked/current */
    bool has_last;
    int reconnects;
};

void anvil_client_run_item_clear(anvil_client_run_item *item)
{
    if (!item)
        return;
    free(item->event);
    cJSON_Delete(item->payload);
    cJSON_Delete(item->snapshot);
    memset(item, 0, sizeof *item);
}

static int64_t num(const cJSON *obj, const char *name, int64_t dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : dflt;
}

/* (Re)open the socket and the stream after s->last_seq when known. */
static int subscribe(anvil_client_run_stream *s, anvil_client_error *err)
{
    anvil_client_ws_close(s->ws);
    s->ws = NULL;
    const char *subs[1] = { s->run_id };
    if (anvil_client_ws_open(s->c, subs, 1, NULL, &s->ws, err) != 0)
        return -1;
    cJSON *params = cJSON_CreateObject();
    if (!params || !cJSON_AddStringToObject(params, "runId", s->run_id) ||
        (s->has_last && !cJSON_AddNumberToObject(params, "afterSeq", (double)s->last_seq))) {
        cJSON_Delete(params);
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "out of memory");
    }
    cJSON *res = NULL;
    int rc = anvil_client_ws_call_raw(s->ws, "streamRunEvents", params, &res, err);
    cJSON_Delete(params);
    if (rc != 0)
        return -1;
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(res, "streamId");
    if (!cJSON_IsString(sid)) {
        cJSON_Delete(res);
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_PROTOCOL, "streamRunEvents answered without a streamId");
    }
    free(s->stream_id);
    s->stream_id = strdup(sid->valuestring);
    /* Without afterSeq the stream starts after the current seq: that is
     * where a reconnect must resume if nothing arrived before it. */
    if (!s->has_last) {
        s->last_seq = num(res, "currentSeq", 0);
        s->has_last = true;
    }
    cJSON_Delete(res);
    return s->stream_id ? 0 : anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "out of memory");
}

int anvil_client_run_stream_open(anvil_client *c, const char *run_id, int64_t after_seq,
                                 anvil_client_run_stream **out, anvil_client_error *err)
{
    *out = NULL;
    anvil_client_run_stream *s = calloc(1, sizeof *s);
    if (!s || !(s->run_id = strdup(run_id ? run_id : ""))) {
        free(s);
        return anvil_client_err_set(err, ANVIL_CLIENT_ERR_TRANSPORT, "out of memory");
    }
    s->c = c;
    s->has_last = after_seq >= 0;
    s->last_seq = after_seq;
    if (subscribe(s, err) != 0) {
        anvil_client_run_stream_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

static bool mine(const anvil_client_run_stream *s, const cJSON *payload)
{
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(payload, "streamId");
    return cJSON_IsString(sid) && s->stream_id && !strcmp(sid->valuestring, s->stream_id);
}

/* An event of this stream into *item: 1 when it is one to deliver, 0 to
 * skip, -1 with *err when the stream ended (run.error). */
static int to_item(anvil_client_run_stream *s, anvil_client_event *ev, anvil_client_run_item *item,
                   anvil_client_error *err)
{
    if (!mine(s, ev->payload))
        return 0;
    if (!strcmp(ev->event, "run.event")) {
        int64_t seq = num(ev->payload, "seq", -1);
        if (seq <= s->last_seq)
            return 0;   /* already delivered before a reconnect */
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(ev->payload, "event");
        item->kind = ANVIL_RUN_ITEM_EVENT;
        item->event = strdup(cJSON_IsString(name) ? name->valuestring : "");
        item->payload = cJSON_DetachItemFromObjectCaseSensitive(ev->payload, "payload");
        item->seq = seq;
        s->last_seq = seq;
        return 1;
    }
    if (!strcmp(ev->event, "run.gap_resync")) {
        item->kind = ANVIL_RUN_ITEM_GAP;
        item->from_seq = num(ev->payload, "fromSeq", 0);
        item->to_seq = num(ev->payload, "toSeq", 0);
        item->snapshot = cJSON_DetachItemFromObjectCaseSensitive(ev->payload, "snapshot");
        if (item->to_seq > s->last_seq)
            s->last_seq = item->to_seq;
        return 1;
    }
    if (!strcmp(ev->event, "run.error"))
        return anvil_client_err_from_json(err, cJSON_GetObjectItemCaseSensitive(ev->payload, "error"), 0);
    return 0;   /* run.heartbeat */
}

int anvil_client_run_stream_next(anvil_client_run_stream *s, int timeout_ms,
                                 anvil_client_run_item *item, anvil_client_error *err)
{
    memset(item, 0, sizeof *item);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t start = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int failures = 0;
    for (;;) {
        int left = timeout_ms;
        if (timeout_ms >= 0) {
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t spent = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - start;
            if (spent >= timeout_ms)
                return 0;
            left = (int)(timeout_ms - spent);
        }
        if (!s->ws) {
            if (subscribe(s, err) != 0) {
                /* A refusal (the run is gone, the token revoked) will not
                 * get better; a transport failure might. */
                if (err && err->kind == ANVIL_CLIENT_ERR_SERVER)
                    return -1;
                if (++failures >= MAX_RECONNECTS_IN_A_ROW)
                    return -1;
                anvil_client_ws_close(s->ws);
                s->ws = NULL;
                struct timespec pause = { 0, 200 * 1000000L };
                nanosleep(&pause, NULL);
                continue;
            }
            s->reconnects++;
            failures = 0;
        }
        anvil_client_event ev;
        int rc = anvil_client_ws_next_event(s->ws, left, &ev, err);
        if (rc == 0)
            return 0;
        if (rc < 0) {
            anvil_client_ws_close(s->ws);
            s->ws = NULL;
            anvil_client_error_clear(err);
            continue;
        }
        rc = to_item(s, &ev, item, err);
        anvil_client_event_clear(&ev);
        if (rc != 0)
            return rc;
    }
}

int64_t anvil_client_run_stream_last_seq(const anvil_client_run_stream *s) { return s->last_seq; }
int anvil_client_run_stream_reconnects(const anvil_client_run_stream *s) { return s->reconnects; }

void anvil_client_run_stream_drop(anvil_client_run_stream *s)
{
    anvil_client_ws_close(s->ws);
    s->ws = NULL;
}

void anvil_client_run_stream_close(anvil_client_run_stream *s)
{
    if (!s)
        return;
    anvil_client_ws_close(s->ws);
    free(s->run_id);
    free(s->stream_id);
    free(s);
}
