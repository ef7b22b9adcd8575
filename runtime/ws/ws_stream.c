/*
 * runtime/ws/ws_stream.c — the life every stream kind shares.
 *
 * A streaming call (streamRunEvents, streamDevTools) registers its stream
 * during the call, pending; once the call's answer has gone out the stream
 * starts (it catches up from the store) if the call succeeded, and is
 * dropped if it did not (the client never learned its id); from then on it
 * gets its run's live events until the connection closes. Owns those steps,
 * the per-connection stream lists and the heartbeat timer. Must not know
 * what a kind sends: that is its ws_stream_kind (ws_stream_run.c,
 * ws_stream_devtools.c).
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "ws_gateway_internal.h"

static void stream_free(ws_stream *st)
{
    st->kind->release(st);
    free(st->run_id);
    free(st);
}

void ws_streams_free(ws_conn *c)
{
    for (unsigned k = 0; k < WS_STREAM__SLOTS; k++) {
        ws_stream *st = c->streams[k];
        while (st) {
            ws_stream *n = st->next;
            stream_free(st);
            st = n;
        }
        c->streams[k] = NULL;
    }
    if (c->stream_hb) {
        event_free(c->stream_hb);
        c->stream_hb = NULL;
    }
}

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ws_conn *c = arg;
    WS_ASSERT_CORE(c->w);
    int64_t now = anvil_now_ms();
    for (unsigned k = 0; k < WS_STREAM__SLOTS; k++)
        for (ws_stream *st = c->streams[k]; st && !c->closing; st = st->next)
            if (!st->pending && st->kind->heartbeat)
                st->kind->heartbeat(c, st, now);
}

ws_stream *ws_stream_register(void *conn, const ws_stream_kind *kind, const char *run_id,
                              char stream_id[37], anvil_error *err)
{
    ws_conn *c = conn;
    if (!c || c->closing) {
        anvil_error_set(err, ANVIL_ERR_INTERNAL, "the connection is closing");
        return NULL;
    }
    WS_ASSERT_CORE(c->w);
    if (kind->heartbeat && !c->stream_hb) {
        c->stream_hb = event_new(c->w->base, -1, EV_PERSIST, on_heartbeat, c);
        struct timeval tv = { ANVIL_RUN_EVENT_HEARTBEAT_MS / 1000, (ANVIL_RUN_EVENT_HEARTBEAT_MS % 1000) * 1000 };
        if (!c->stream_hb || event_add(c->stream_hb, &tv) != 0) {
            if (c->stream_hb)
                event_free(c->stream_hb);
            c->stream_hb = NULL;
            anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
            return NULL;
        }
    }
    ws_stream *st = calloc(1, kind->size);
    if (!st || !(st->run_id = strdup(run_id)) || anvil_uuid4(st->id) != 0) {
        if (st)
            free(st->run_id);
        free(st);
        anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    st->kind = kind;
    st->pending = true;
    ws_stream **pp = &c->streams[kind->slot];
    while (*pp)
        pp = &(*pp)->next;
    *pp = st;
    memcpy(stream_id, st->id, sizeof st->id);
    return st;
}

void ws_streams_after_call(ws_conn *c, bool ok)
{
    for (unsigned k = 0; k < WS_STREAM__SLOTS; k++) {
        ws_stream **pp = &c->streams[k];
        while (*pp) {
            ws_stream *st = *pp;
            if (!st->pending) {
                pp = &st->next;
            } else if (ok && !c->closing) {
                st->pending = false;
                st->kind->start(c, st);
                pp = &st->next;
            } else {
                *pp = st->next;
                stream_free(st);
            }
        }
    }
}

/* Tell the client st ended, and why: its kind's error event with the
 * contract error. */
static void send_end(ws_conn *c, ws_stream *st, anvil_error *e, int64_t sv)
{
    cJSON *p = cJSON_CreateObject();
    cJSON *ej = anvil_error_to_json(e);
    if (!p || !ej || !cJSON_AddStringToObject(p, "streamId", st->id) ||
        !cJSON_AddStringToObject(p, "runId", st->run_id) || !cJSON_AddItemToObject(p, "error", ej)) {
        if (ej && !(p && cJSON_GetObjectItemCaseSensitive(p, "error") == ej))
            cJSON_Delete(ej);
        cJSON_Delete(p);
        ws_send_text(c, NULL);
        return;
    }
    ws_send_owned_event(c, st->kind->error_event, p, sv);
}

/* The run is gone (deleteRun): every stream on it says so and ends; the
 * connection and its other streams go on. */
static void streams_end_run(ws_conn *c, const anvil_event *ev)
{
    for (unsigned k = 0; k < WS_STREAM__SLOTS; k++) {
        ws_stream **pp = &c->streams[k];
        while (*pp) {
            ws_stream *st = *pp;
            if (strcmp(st->run_id, ev->run_id) != 0) {
                pp = &st->next;
                continue;
            }
            if (!st->pending && !c->closing) {
                anvil_error e;
                memset(&e, 0, sizeof e);
                anvil_error_set(&e, ANVIL_ERR_RUN_NOT_FOUND, "Run not found: %s (deleted)", st->run_id);
                send_end(c, st, &e, ev->state_version);
                anvil_error_clear(&e);
            }
            *pp = st->next;
            stream_free(st);
        }
    }
}

void ws_streams_deliver(ws_conn *c, const anvil_event *ev, char **ptext)
{
    if (!ev->run_id)
        return;
    if (strcmp(ev->event, ANVIL_EVENT_RUN_DELETED) == 0) {
        streams_end_run(c, ev);
        return;
    }
    for (unsigned k = 0; k < WS_STREAM__SLOTS; k++)
        for (ws_stream *st = c->streams[k]; st && !c->closing; st = st->next)
            if (!st->pending && strcmp(st->run_id, ev->run_id) == 0)
                st->kind->deliver(c, st, ev, ptext);
}
