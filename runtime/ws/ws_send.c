/*
 * runtime/ws/ws_send.c — frames out on one connection, and its close.
 *
 * Owns how a response or event becomes text on the bridge's queue: the
 * event envelope and the per-connection seq, the BackpressureDisconnect
 * sequence when a connection's queue is full, and the close. Must not
 * decide what is sent to whom (the fan-out, streams and handshake do).
 *
 * Every event passes prefix_of, so that is where Debug builds check it
 * against the contract: its name declared in x-anvil-websocket, its
 * payload valid for that event's schema. A mismatch is a server bug the
 * clients generated from the contract would trip over.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anvil_contract.h"
#include "engine.h"
#include "json_print.h"
#include "log.h"
#include "rpc.h"
#include "ws_contract.h"
#include "ws_gateway_internal.h"

int64_t ws_state_version(const anvil_ws_gateway *w)
{
    return w->svc->engine ? anvil_engine_state_version(w->svc->engine) : 0;
}

void ws_conn_mark_closing(ws_conn *c)
{
    c->closing = true;
    if (c->deadline)
        event_del(c->deadline);
    if (c->stream_hb)
        event_del(c->stream_hb);
}

void ws_conn_close(ws_conn *c, int code, const char *reason)
{
    if (c->closing)
        return;
    ws_conn_mark_closing(c);
    anvil_ws_close(c->w->bridge, c->id, code, reason);
}

#ifndef NDEBUG
/* The event frame `text` (whole, as printed) conforms to the contract. It
 * is read back from the text because payloads may hold raw JSON nodes. */
static void assert_conforms(const char *name, const char *text)
{
    cJSON *o = cJSON_Parse(text);
    anvil_schema_error se = { .path = "$", .message = "the frame is not JSON" };
    int rc = o ? anvil_ws_event_check(name, cJSON_GetObjectItemCaseSensitive(o, "payload"), &se) : -1;
    if (rc != 0)
        anvil_log(ANVIL_LOG_ERROR, "event %s does not match the contract: %s: %s", name, se.path, se.message);
    cJSON_Delete(o);
    assert(rc == 0);
}
#endif

/* The prefix of an event whose payload is p (consumed; NULL: out of
 * memory). */
static char *prefix_of(const char *name, cJSON *p)
{
    char *text = NULL;
    cJSON *o = p ? cJSON_CreateObject() : NULL;
    if (o && cJSON_AddStringToObject(o, "type", "event") && cJSON_AddStringToObject(o, "event", name) &&
        cJSON_AddItemToObject(o, "payload", p)) {
        p = NULL;
        text = anvil_json_print(o);
    }
    cJSON_Delete(p);
    cJSON_Delete(o);
#ifndef NDEBUG
    if (text)
        assert_conforms(name, text);
#endif
    if (text) {
        size_t n = strlen(text);
        if (n && text[n - 1] == '}')
            text[n - 1] = '\0';
    }
    return text;
}

char *ws_event_prefix(const char *name, const cJSON *payload)
{
    return prefix_of(name, payload ? cJSON_Duplicate(payload, true) : cJSON_CreateObject());
}

/* A whole event frame: the prefix and the members of this delivery. */
static char *event_frame(const char *prefix, int64_t seq, int64_t sv)
{
    char tail[96];
    int tn = snprintf(tail, sizeof tail, ",\"seq\":%lld,\"stateVersion\":%lld,\"apiVersion\":\"%s\"}",
                      (long long)seq, (long long)sv, ANVIL_API_VERSION);
    size_t pn = strlen(prefix);
    char *text = malloc(pn + (size_t)tn + 1);
    if (text) {
        memcpy(text, prefix, pn);
        memcpy(text + pn, tail, (size_t)tn + 1);
    }
    return text;
}

/* The connection's outbound queue is full (it does not keep up): after
 * what is already queued, send one last event telling it why —
 * run.error with the contract error BackpressureDisconnect — and close with
 * 1008 "BackpressureDisconnect". Other connections are not affected and
 * nothing here waits for the peer. */
/* docs/metrics.md */
static anvil_counter m_frames_out, m_event_frames, m_backpressure;

void ws_send_metrics_render(anvil_metrics_out *o)
{
    const anvil_metric_value values[] = {
        { "anvil_ws_frames_sent_total", "counter",
          "WebSocket text frames queued to clients (answers and events).",
          (double)anvil_counter_get(&m_frames_out) },
        { "anvil_ws_event_frames_sent_total", "counter",
          "Event frames fanned out to WebSocket clients.",
          (double)anvil_counter_get(&m_event_frames) },
        { "anvil_ws_backpressure_disconnects_total", "counter",
          "WebSocket clients disconnected because their outbound queue was full " "(the fan-out's drops: they resume with afterSeq).",
          (double)anvil_counter_get(&m_backpressure) },
    };
    anvil_metrics_values(o, values, sizeof values / sizeof values[0]);
}

static void backpressure_disconnect(ws_conn *c)
{
    anvil_ws_gateway *w = c->w;
    if (w->stopping) {
        /* Sends fail during shutdown; the close frame is on its way. */
        ws_conn_close(c, 1001, "server shutting down");
        return;
    }
    anvil_counter_inc(&m_backpressure);
    anvil_log(ANVIL_LOG_WARN, "ws %llu: outbound queue exceeded %zu bytes; disconnecting",
              (unsigned long long)c->id, w->queue_limit);
    anvil_error e;
    memset(&e, 0, sizeof e);
    anvil_error_set(&e, ANVIL_ERR_BACKPRESSURE_DISCONNECT,
                    "outbound queue exceeded %zu bytes; reconnect and resume with "
                    "streamRunEvents afterSeq", w->queue_limit);
    char *text = NULL;
    cJSON *payload = cJSON_CreateObject();
    cJSON *ej = anvil_error_to_json(&e);
    anvil_error_clear(&e);
    if (payload && ej && cJSON_AddItemToObject(payload, "error", ej)) {
        ej = NULL;
        char *prefix = prefix_of("run.error", payload);
        payload = NULL;
        if (prefix && (text = event_frame(prefix, c->seq + 1, ws_state_version(w))))
            c->seq++;
        free(prefix);
    }
    cJSON_Delete(ej);
    cJSON_Delete(payload);
    /* Mark closing first (timers stop; nothing else is sent), then hand the
     * bridge the final frame and the close in one step. */
    ws_conn_mark_closing(c);
    if (!text || anvil_ws_send_final(w->bridge, c->id, text, strlen(text), 1008,
                                     "BackpressureDisconnect") != 0)
        anvil_ws_close(w->bridge, c->id, 1008, "BackpressureDisconnect");
    free(text);
}

bool ws_send_text(ws_conn *c, char *text)
{
    if (!text) {
        anvil_log(ANVIL_LOG_ERROR, "ws %llu: out of memory building a frame", (unsigned long long)c->id);
        ws_conn_close(c, 1011, "Internal");
        return false;
    }
    bool ok = !c->closing && anvil_ws_send(c->w->bridge, c->id, text, strlen(text)) == 0;
    free(text);
    if (ok)
        anvil_counter_inc(&m_frames_out);
    if (!ok && !c->closing)
        backpressure_disconnect(c);
    return ok;
}

void ws_send_error(ws_conn *c, const char *id, anvil_error *e)
{
    ws_send_text(c, anvil_rpc_error_frame(id, e));
    anvil_error_clear(e);
}

void ws_send_event_prefix(ws_conn *c, const char *prefix, int64_t sv)
{
    if (c->closing)
        return;
    /* The seq is taken only when the frame is queued: the
     * BackpressureDisconnect event reuses the number of the frame that did
     * not fit, so the client sees no gap. */
    if (ws_send_text(c, event_frame(prefix, c->seq + 1, sv))) {
        c->seq++;
        anvil_counter_inc(&m_event_frames);
    }
}

void ws_send_owned_event(ws_conn *c, const char *name, cJSON *p, int64_t sv)
{
    char *prefix = prefix_of(name, p);
    if (!prefix) {
        ws_send_text(c, NULL);
        return;
    }
    ws_send_event_prefix(c, prefix, sv);
    free(prefix);
}
