/*
 * runtime/ws/ws_gateway.c — the WebSocket protocol (see ws_gateway.h).
 *
 * Frames: req {type:"req", id, method, params?}; res (anvil_rpc_*_frame);
 * event {type:"event", event, payload, seq, stateVersion, apiVersion}.
 *
 * Life of a connection: on_open sends connect.challenge and arms the
 * connect deadline; the first request must be `connect` (anything else is
 * Unauthorized and the connection stays open until the deadline); connect
 * negotiates the protocol, authenticates (auth.token, else the upgrade
 * request's headers, copied at on_open because the request is only valid
 * during that callback) and answers hello with a snapshot. After that every
 * request goes through anvil_rpc_handle and engine events are fanned out.
 *
 * Events published while a connection's own launchRun / submitApproval /
 * submitSignal / cronRun is being handled belong to a run the connection
 * is about to be subscribed to; when the connection has an explicit
 * subscription set they are held and delivered right after the response
 * (with seq assigned at delivery), so the subscribe-on-call never misses
 * the first events of the run it started.
 *
 * Run event streams (streamRunEvents): a connection holds any number of
 * them, each on one run, each with the highest run seq it has delivered.
 * The handler registers a stream during its call (pending); once the
 * response has gone out, the stream sends its gap resync (if any), then the
 * durable log from the store, and from then on the run's live events. The
 * core thread is the only writer and the engine publishes an event only
 * after committing it, so "read the log, then go live" leaves neither gap
 * nor duplicate; a live event at or below the delivered seq is dropped and
 * one beyond the next expected seq first pulls the missing ones from the
 * log, so the stream stays exactly-once whatever the publication order.
 *
 * DevTools streams (streamDevTools) work the same way on the run's frames:
 * after the response, the frames after the starting point are read from
 * the store (the first becomes the snapshot); on every later event of the
 * run the frames after the last delivered frameNo are read again and each
 * becomes a delta or a re-baseline snapshot (runtime/devtools.c).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "anvil_contract.h"
#include "auth.h"
#include "clock.h"
#include "config.h"
#include "devtools.h"
#include "engine.h"
#include "error.h"
#include "events.h"
#include "frame.h"
#include "htab.h"
#include "json_number.h"
#include "json_print.h"
#include "log.h"
#include "method.h"
#include "rpc.h"
#include "store_runs.h"
#include "ws_gateway.h"

#define CONNECT_TIMEOUT_MS 10000
#define PING_INTERVAL_S 30

typedef struct held_event {
    char *run_id;
    char *prefix;                 /* {"type":"event","event":..,"payload":.. (no closing brace) */
    int64_t state_version;
    struct held_event *next;
} held_event;

typedef struct ws_conn ws_conn;
typedef struct ws_stream ws_stream;

/* What one kind of stream does at each step of the shared lifecycle. */
typedef struct ws_stream_kind {
    size_t size;                  /* of the kind's struct, which starts with a ws_stream */
    unsigned slot;                /* its list in ws_conn.streams (WS_STREAM_*) */
    /* The call that registered st succeeded and its answer is out (st is
     * no longer pending): send what the client asked to catch up on. */
    void (*start)(ws_conn *c, ws_stream *st);
    /* A live engine event of st's run. *ptext caches the event's payload
     * as JSON text across the streams of every connection (freed by the
     * caller). */
    void (*deliver)(ws_conn *c, ws_stream *st, const anvil_event *ev, char **ptext);
    /* Every ANVIL_RUN_EVENT_HEARTBEAT_MS while started; NULL for none. */
    void (*heartbeat)(ws_conn *c, ws_stream *st, int64_t now_ms);
    /* Free the kind's part (not the ws_stream, not st itself). */
    void (*release)(ws_stream *st);
} ws_stream_kind;

/* The kinds, in the order each live event reaches them. */
enum { WS_STREAM_RUN_EVENTS, WS_STREAM_DEVTOOLS, WS_STREAM__SLOTS };

/* A stream a streaming call opened on the connection: one run's events
 * pushed as they happen, under its own id. */
struct ws_stream {
    char id[37];
    char *run_id;
    bool pending;                 /* registered by the call in progress: waits for its response */
    const ws_stream_kind *kind;
    ws_stream *next;
};

/* streamRunEvents: the run's events from the durable log, then live. */
typedef struct run_stream {
    ws_stream base;
    int64_t sent_seq;             /* highest run seq delivered (or the starting point) */
    cJSON *gap_snapshot;          /* send run.gap_resync first (pending streams only) */
    int64_t gap_from, gap_to;
} run_stream;

/* streamDevTools: the frames of one run as snapshot/delta events. */
typedef struct dt_stream {
    ws_stream base;
    int64_t sent_frame;           /* highest frameNo delivered (or the starting point) */
    anvil_devtools_state state;   /* the tree the client has, the delta count */
} dt_stream;

struct ws_conn {
    uint64_t id;
    struct anvil_ws_gateway *w;
    bool authenticated;
    bool closing;                 /* we sent a close; ignore further input */
    anvil_principal principal;
    char **subs;                  /* subscribed run ids; all runs when !has_subs */
    size_t n_subs, cap_subs;
    bool has_subs;
    int64_t seq;
    struct event *deadline;
    /* Copy of the upgrade request's headers until connect (auth input). */
    char **hdr_names, **hdr_values;
    size_t n_hdrs;
    /* Set while this connection's own subscribing call runs. */
    bool holding;
    held_event *held, **held_tail;
    ws_stream *streams[WS_STREAM__SLOTS]; /* by kind, each oldest first */
    struct event *stream_hb;      /* heartbeat timer, once a kind with heartbeats opened */
    struct ws_conn *next, *prev;  /* all connections */
    struct ws_conn *hnext;        /* hash chain */
};

struct anvil_ws_gateway {
    struct event_base *base;
    const anvil_services *svc;          /* config, store, engine, handlers */
    const anvil_token_store *tokens;
    anvil_http_reject_fn refuse;        /* renders refused upgrades */
    void *refuse_ctx;
    anvil_ws_bridge *bridge;
    ws_conn *head;
    ws_conn **buckets;
    size_t n_buckets, n_conns;
    struct event *tick;
    bool subscribed;
    bool stopping;                /* anvil_ws_gateway_shutdown was called */
    size_t queue_limit;           /* the bridge's max_queued_bytes_per_conn */
};

/* ---------------------------------------------------------------- table */

static size_t bucket_of(const anvil_ws_gateway *w, uint64_t id)
{
    uint64_t h = id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (w->n_buckets - 1);
}

static ws_conn *conn_find(anvil_ws_gateway *w, uint64_t id)
{
    for (ws_conn *c = w->buckets[bucket_of(w, id)]; c; c = c->hnext)
        if (c->id == id)
            return c;
    return NULL;
}

static int conn_insert(anvil_ws_gateway *w, ws_conn *c)
{
    if (w->n_conns + 1 > w->n_buckets) {
        size_t nb = w->n_buckets * 2;
        ws_conn **b = calloc(nb, sizeof *b);
        if (!b)
            return -1;
        ws_conn **old = w->buckets;
        size_t on = w->n_buckets;
        w->buckets = b;
        w->n_buckets = nb;
        for (size_t i = 0; i < on; i++) {
            ws_conn *x = old[i];
            while (x) {
                ws_conn *nx = x->hnext;
                size_t k = bucket_of(w, x->id);
                x->hnext = b[k];
                b[k] = x;
                x = nx;
            }
        }
        free(old);
    }
    size_t k = bucket_of(w, c->id);
    c->hnext = w->buckets[k];
    w->buckets[k] = c;
    c->next = w->head;
    c->prev = NULL;
    if (w->head)
        w->head->prev = c;
    w->head = c;
    w->n_conns++;
    return 0;
}

static void conn_unlink(anvil_ws_gateway *w, ws_conn *c)
{
    ws_conn **pp = &w->buckets[bucket_of(w, c->id)];
    while (*pp && *pp != c)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = c->hnext;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->n_conns--;
}

static void free_headers(ws_conn *c)
{
    for (size_t i = 0; i < c->n_hdrs; i++) {
        free(c->hdr_names[i]);
        free(c->hdr_values[i]);
    }
    free(c->hdr_names);
    free(c->hdr_values);
    c->hdr_names = c->hdr_values = NULL;
    c->n_hdrs = 0;
}

static void free_held(ws_conn *c)
{
    held_event *h = c->held;
    while (h) {
        held_event *n = h->next;
        free(h->run_id);
        free(h->prefix);
        free(h);
        h = n;
    }
    c->held = NULL;
    c->held_tail = &c->held;
}

static void stream_free(ws_stream *st)
{
    st->kind->release(st);
    free(st->run_id);
    free(st);
}

static void free_streams(ws_conn *c)
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

static void conn_free(ws_conn *c)
{
    if (c->deadline)
        event_free(c->deadline);
    free_streams(c);
    anvil_principal_clear(&c->principal);
    anvil_strv_free(c->subs, c->n_subs);
    free_headers(c);
    free_held(c);
    free(c);
}

/* ---------------------------------------------------------------- sending */

static void conn_close(ws_conn *c, int code, const char *reason)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->deadline)
        event_del(c->deadline);
    if (c->stream_hb)
        event_del(c->stream_hb);
    anvil_ws_close(c->w->bridge, c->id, code, reason);
}

static char *event_prefix(const char *name, const cJSON *payload);
static int64_t state_version(anvil_ws_gateway *w);

/* The connection's outbound queue is full (it does not keep up): after
 * what is already queued, send one last event telling it why —
 * run.error with the contract error BackpressureDisconnect — and close with
 * 1008 "BackpressureDisconnect". Other connections are not affected and
 * nothing here waits for the peer. */
static void backpressure_disconnect(ws_conn *c)
{
    anvil_ws_gateway *w = c->w;
    if (w->stopping) {
        /* Sends fail during shutdown; the close frame is on its way. */
        conn_close(c, 1001, "server shutting down");
        return;
    }
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
        char *prefix = event_prefix("run.error", payload);
        if (prefix) {
            char tail[96];
            int tn = snprintf(tail, sizeof tail,
                              ",\"seq\":%lld,\"stateVersion\":%lld,\"apiVersion\":\"%s\"}",
                              (long long)(c->seq + 1), (long long)state_version(w),
                              ANVIL_API_VERSION);
            size_t pn = strlen(prefix);
            text = malloc(pn + (size_t)tn + 1);
            if (text) {
                memcpy(text, prefix, pn);
                memcpy(text + pn, tail, (size_t)tn + 1);
                c->seq++;
            }
            free(prefix);
        }
    }
    cJSON_Delete(ej);
    cJSON_Delete(payload);
    /* Mark closing first (timers stop; nothing else is sent), then hand the
     * bridge the final frame and the close in one step. */
    c->closing = true;
    if (c->deadline)
        event_del(c->deadline);
    if (c->stream_hb)
        event_del(c->stream_hb);
    if (!text || anvil_ws_send_final(w->bridge, c->id, text, strlen(text), 1008,
                                     "BackpressureDisconnect") != 0)
        anvil_ws_close(w->bridge, c->id, 1008, "BackpressureDisconnect");
    free(text);
}

/* Send text (freed here); true when queued. A full connection gets
 * BackpressureDisconnect. */
static bool send_text(ws_conn *c, char *text)
{
    if (!text) {
        anvil_log(ANVIL_LOG_ERROR, "ws %llu: out of memory building a frame", (unsigned long long)c->id);
        conn_close(c, 1011, "Internal");
        return false;
    }
    bool ok = !c->closing && anvil_ws_send(c->w->bridge, c->id, text, strlen(text)) == 0;
    free(text);
    if (!ok && !c->closing)
        backpressure_disconnect(c);
    return ok;
}

static void send_error(ws_conn *c, const char *id, anvil_error *e)
{
    send_text(c, anvil_rpc_error_frame(id, e));
    anvil_error_clear(e);
}

/* {"type":"event","event":name,"payload":payload  — without the closing
 * brace, so the per-connection members can be appended. */
static char *event_prefix(const char *name, const cJSON *payload)
{
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    if (o && cJSON_AddStringToObject(o, "type", "event") && cJSON_AddStringToObject(o, "event", name)) {
        cJSON *p = payload ? cJSON_Duplicate(payload, true) : cJSON_CreateObject();
        if (p && cJSON_AddItemToObject(o, "payload", p))
            text = anvil_json_print(o);
        else
            cJSON_Delete(p);
    }
    cJSON_Delete(o);
    if (text) {
        size_t n = strlen(text);
        if (n && text[n - 1] == '}')
            text[n - 1] = '\0';
    }
    return text;
}

static void send_event_prefix(ws_conn *c, const char *prefix, int64_t state_version)
{
    if (c->closing)
        return;
    char tail[96];
    int tn = snprintf(tail, sizeof tail, ",\"seq\":%lld,\"stateVersion\":%lld,\"apiVersion\":\"%s\"}",
                      (long long)(c->seq + 1), (long long)state_version, ANVIL_API_VERSION);
    size_t pn = strlen(prefix);
    char *text = malloc(pn + (size_t)tn + 1);
    if (text) {
        memcpy(text, prefix, pn);
        memcpy(text + pn, tail, (size_t)tn + 1);
    }
    /* The seq is taken only when the frame is queued: the
     * BackpressureDisconnect event reuses the number of the frame that did
     * not fit, so the client sees no gap. */
    if (send_text(c, text))
        c->seq++;
}

static void send_event(ws_conn *c, const char *name, const cJSON *payload, int64_t state_version)
{
    char *prefix = event_prefix(name, payload);
    if (!prefix) {
        send_text(c, NULL);
        return;
    }
    send_event_prefix(c, prefix, state_version);
    free(prefix);
}

static int64_t state_version(anvil_ws_gateway *w)
{
    return w->svc->engine ? anvil_engine_state_version(w->svc->engine) : 0;
}

/* ---------------------------------------------------------------- subscriptions */

static bool subscribed_to(const ws_conn *c, const char *run_id)
{
    if (!c->has_subs || !run_id)
        return true;
    for (size_t i = 0; i < c->n_subs; i++)
        if (strcmp(c->subs[i], run_id) == 0)
            return true;
    return false;
}

static int subscribe(ws_conn *c, const char *run_id)
{
    if (subscribed_to(c, run_id))
        return 0;
    if (c->n_subs == c->cap_subs) {
        size_t nc = c->cap_subs ? c->cap_subs * 2 : 4;
        char **ns = realloc(c->subs, nc * sizeof *ns);
        if (!ns)
            return -1;
        c->subs = ns;
        c->cap_subs = nc;
    }
    char *d = strdup(run_id);
    if (!d)
        return -1;
    c->subs[c->n_subs++] = d;
    return 0;
}

/* ---------------------------------------------------------------- streams */

/* Send event `name` whose payload is `p` (consumed). */
static void send_owned_event(ws_conn *c, const char *name, cJSON *p, int64_t sv)
{
    char *prefix = NULL;
    cJSON *o = cJSON_CreateObject();
    if (o && p && cJSON_AddStringToObject(o, "type", "event") && cJSON_AddStringToObject(o, "event", name) &&
        cJSON_AddItemToObject(o, "payload", p)) {
        p = NULL;
        prefix = anvil_json_print(o);
        size_t n = prefix ? strlen(prefix) : 0;
        if (n && prefix[n - 1] == '}')
            prefix[n - 1] = '\0';
    }
    cJSON_Delete(p);
    cJSON_Delete(o);
    if (!prefix) {
        send_text(c, NULL);
        return;
    }
    send_event_prefix(c, prefix, sv);
    free(prefix);
}

static void on_stream_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ws_conn *c = arg;
    int64_t now = anvil_now_ms();
    for (unsigned k = 0; k < WS_STREAM__SLOTS; k++)
        for (ws_stream *st = c->streams[k]; st && !c->closing; st = st->next)
            if (!st->pending && st->kind->heartbeat)
                st->kind->heartbeat(c, st, now);
}

/* Register a pending stream of `kind` on run_id for the call in progress
 * and write its id; the caller fills in the kind's part. NULL with err
 * set when the connection is closing or out of memory. */
static ws_stream *stream_register(void *conn, const ws_stream_kind *kind, const char *run_id,
                                  char stream_id[37], anvil_error *err)
{
    ws_conn *c = conn;
    if (!c || c->closing) {
        anvil_error_set(err, ANVIL_ERR_INTERNAL, "the connection is closing");
        return NULL;
    }
    if (kind->heartbeat && !c->stream_hb) {
        c->stream_hb = event_new(c->w->base, -1, EV_PERSIST, on_stream_heartbeat, c);
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

/* After a call: start the streams it registered when it succeeded, drop
 * them when it did not (the client never learned their ids). */
static void streams_after_call(ws_conn *c, bool ok)
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

/* A live engine event: to every started stream on its run. */
static void streams_deliver(ws_conn *c, const anvil_event *ev, char **ptext)
{
    if (!ev->run_id)
        return;
    for (unsigned k = 0; k < WS_STREAM__SLOTS; k++)
        for (ws_stream *st = c->streams[k]; st && !c->closing; st = st->next)
            if (!st->pending && strcmp(st->run_id, ev->run_id) == 0)
                st->kind->deliver(c, st, ev, ptext);
}

/* ---------------------------------------------------------------- run event streams */

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
        send_text(c, NULL);
        return;
    }
    send_owned_event(c, "run.event", p, sv);
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
        conn_close(c, 1011, "Internal");
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
            send_text(c, NULL);
            return;
        }
        send_owned_event(c, "run.gap_resync", p, state_version(c->w));
    }
    stream_replay(c, rs, -1);
}

/* Exactly once, in seq order: an event at or below the delivered seq is
 * dropped, one past a gap first pulls the missing ones from the log. */
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
        send_text(c, NULL);
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
        send_text(c, NULL);
        return;
    }
    send_owned_event(c, "run.heartbeat", p, state_version(c->w));
}

static void run_release(ws_stream *st)
{
    cJSON_Delete(as_run(st)->gap_snapshot);
}

static const ws_stream_kind run_kind = {
    .size = sizeof(run_stream), .slot = WS_STREAM_RUN_EVENTS,
    .start = run_start, .deliver = run_deliver, .heartbeat = run_heartbeat, .release = run_release,
};

static int stream_run_events(void *conn, const anvil_run_stream *rs, char stream_id[37],
                             anvil_error *err)
{
    ws_stream *st = stream_register(conn, &run_kind, rs->run_id, stream_id, err);
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

/* ---------------------------------------------------------------- devtools streams */

static dt_stream *as_dt(ws_stream *st)
{
    return ANVIL_CONTAINER_OF(st, dt_stream, base);
}

typedef struct dt_ctx {
    ws_conn *c;
    dt_stream *dt;
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
    cJSON *p = frame ? anvil_devtools_next(&dt->state, frame) : NULL;
    cJSON_Delete(frame);
    dt->sent_frame = fr->frame_no;
    if (!p) {
        /* Unreadable frame (or out of memory): skip it; the next one is a
         * snapshot so the client's tree stays right. */
        anvil_log(ANVIL_LOG_ERROR, "ws %llu: devtools stream %s: frame %lld of run %s is not usable",
                  (unsigned long long)c->id, dt->base.id, (long long)fr->frame_no, dt->base.run_id);
        anvil_devtools_request_rebaseline(&dt->state);
        return 0;
    }
    /* Which stream (a connection may hold several) and run it belongs to. */
    if (!cJSON_AddStringToObject(p, "streamId", dt->base.id) ||
        !cJSON_AddStringToObject(p, "runId", dt->base.run_id)) {
        cJSON_Delete(p);
        send_text(c, NULL);
        return 1;
    }
    send_owned_event(c, "devtools.event", p, state_version(c->w));
    return c->closing ? 1 : 0;
}

/* Send the run's frames after sent_frame, straight from the store. */
static void dt_pull(ws_conn *c, ws_stream *st)
{
    dt_stream *dt = as_dt(st);
    anvil_store *s = c->w->svc->store;
    dt_ctx x = { c, dt };
    if (!c->closing && anvil_store_frames_range(s, st->run_id, dt->sent_frame, -1, 0, dt_frame, &x) < 0) {
        anvil_log(ANVIL_LOG_ERROR, "ws %llu: devtools stream %s: reading frames: %s",
                  (unsigned long long)c->id, st->id, anvil_store_errmsg(s));
        conn_close(c, 1011, "Internal");
    }
}

/* A live engine event of the run: the frames it recorded (if any). The
 * engine publishes only after committing, so the store already holds
 * them; reading "after the last delivered frameNo" keeps each stream
 * exactly-once and in order whatever events carry the frames. */
static void dt_deliver(ws_conn *c, ws_stream *st, const anvil_event *ev, char **ptext)
{
    (void)ptext;
    dt_stream *dt = as_dt(st);
    if (strcmp(ev->event, "run.time_travel_jumped") == 0) {
        /* Rewind hook (rewindRun is not implemented yet): frames after
         * toFrameNo were truncated and are recorded again; re-read from
         * the target and send it as a snapshot. */
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
}

static const ws_stream_kind dt_kind = {
    .size = sizeof(dt_stream), .slot = WS_STREAM_DEVTOOLS,
    .start = dt_pull, .deliver = dt_deliver, .heartbeat = NULL, .release = dt_release,
};

static int stream_devtools(void *conn, const char *run_id, int64_t start_after, char stream_id[37],
                           anvil_error *err)
{
    ws_stream *st = stream_register(conn, &dt_kind, run_id, stream_id, err);
    if (!st)
        return -1;
    as_dt(st)->sent_frame = start_after;
    return 0;
}

const anvil_stream_ops anvil_ws_stream_ops = {
    .run_events = stream_run_events,
    .devtools = stream_devtools,
};

/* ---------------------------------------------------------------- events */

static void on_bus_event(void *ctx, const anvil_event *ev)
{
    anvil_ws_gateway *w = ctx;
    char *prefix = NULL, *ptext = NULL;
    for (ws_conn *c = w->head; c; c = c->next) {
        if (!c->authenticated || c->closing)
            continue;
        bool deliver = subscribed_to(c, ev->run_id);
        if (!deliver && !c->holding) {
            streams_deliver(c, ev, &ptext);
            continue;
        }
        if (!prefix && !(prefix = event_prefix(ev->event, ev->payload))) {
            anvil_log(ANVIL_LOG_ERROR, "ws: out of memory rendering %s", ev->event);
            break;
        }
        if (deliver) {
            send_event_prefix(c, prefix, ev->state_version);
            streams_deliver(c, ev, &ptext);
            continue;
        }
        held_event *h = calloc(1, sizeof *h);
        if (h && (h->run_id = strdup(ev->run_id ? ev->run_id : "")) && (h->prefix = strdup(prefix))) {
            h->state_version = ev->state_version;
            *c->held_tail = h;
            c->held_tail = &h->next;
        } else if (h) {
            free(h->run_id);
            free(h);
        }
        streams_deliver(c, ev, &ptext);
    }
    free(prefix);
    free(ptext);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    anvil_ws_gateway *w = arg;
    char *prefix = NULL;
    int64_t sv = state_version(w);
    for (ws_conn *c = w->head; c; c = c->next) {
        if (!c->authenticated || c->closing)
            continue;
        if (!prefix) {
            cJSON *p = cJSON_CreateObject();
            if (p && cJSON_AddNumberToObject(p, "ts", (double)anvil_now_ms()))
                prefix = event_prefix("tick", p);
            cJSON_Delete(p);
            if (!prefix)
                return;
        }
        send_event_prefix(c, prefix, sv);
    }
    free(prefix);
}

/* ---------------------------------------------------------------- auth headers */

static const char *conn_header(void *ctx, const char *name)
{
    ws_conn *c = ctx;
    for (size_t i = 0; i < c->n_hdrs; i++)
        if (strcasecmp(c->hdr_names[i], name) == 0)
            return c->hdr_values[i];
    return NULL;
}

static int copy_headers(ws_conn *c, const anvil_http_head *h)
{
    if (!h || h->n_headers == 0)
        return 0;
    c->hdr_names = calloc(h->n_headers, sizeof *c->hdr_names);
    c->hdr_values = calloc(h->n_headers, sizeof *c->hdr_values);
    if (!c->hdr_names || !c->hdr_values)
        return -1;
    for (size_t i = 0; i < h->n_headers; i++) {
        c->hdr_names[i] = strdup(h->headers[i].name ? h->headers[i].name : "");
        c->hdr_values[i] = strdup(h->headers[i].value ? h->headers[i].value : "");
        c->n_hdrs = i + 1;
        if (!c->hdr_names[i] || !c->hdr_values[i])
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- bridge callbacks */

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ws_conn *c = arg;
    if (!c->authenticated)
        conn_close(c, 1008, "connect timeout");
}

static void on_open(void *ctx, uint64_t conn_id, const anvil_http_request *req)
{
    anvil_ws_gateway *w = ctx;
    ws_conn *c = calloc(1, sizeof *c);
    if (c) {
        c->id = conn_id;
        c->w = w;
        c->held_tail = &c->held;
    }
    if (!c || conn_insert(w, c) != 0) {
        free(c);
        anvil_ws_close(w->bridge, conn_id, 1011, "Internal");
        return;
    }
    if (copy_headers(c, req->head) != 0) {
        conn_close(c, 1011, "Internal");
        return;
    }
    int64_t ms = CONNECT_TIMEOUT_MS;
    if (w->svc->config->headers_timeout_ms > 0 && w->svc->config->headers_timeout_ms < ms)
        ms = w->svc->config->headers_timeout_ms;
    c->deadline = evtimer_new(w->base, on_deadline, c);
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    if (!c->deadline || evtimer_add(c->deadline, &tv) != 0) {
        conn_close(c, 1011, "Internal");
        return;
    }
    char nonce[37];
    if (anvil_uuid4(nonce) != 0) {
        conn_close(c, 1011, "Internal");
        return;
    }
    cJSON *p = cJSON_CreateObject();
    if (!p || !cJSON_AddStringToObject(p, "nonce", nonce) ||
        !cJSON_AddNumberToObject(p, "ts", (double)anvil_now_ms())) {
        cJSON_Delete(p);
        conn_close(c, 1011, "Internal");
        return;
    }
    send_event(c, "connect.challenge", p, state_version(w));
    cJSON_Delete(p);
}

static void on_close(void *ctx, uint64_t conn_id, int code, const char *reason)
{
    (void)code;
    (void)reason;
    anvil_ws_gateway *w = ctx;
    ws_conn *c = conn_find(w, conn_id);
    if (!c)
        return;
    conn_unlink(w, c);
    conn_free(c);
}

/* ---------------------------------------------------------------- connect */

static int invalid_at(anvil_error *e, const char *path, const char *msg)
{
    anvil_error_set(e, ANVIL_ERR_INVALID_REQUEST, "%s: %s", path, msg);
    anvil_error_detail_str(e, "path", path);
    return -1;
}

static bool integral(const cJSON *v)
{
    return anvil_json_exact_int(v, NULL);
}

static int add_strings(cJSON *o, const char *key, char *const *v, size_t n)
{
    cJSON *a = cJSON_AddArrayToObject(o, key);
    if (!a)
        return -1;
    for (size_t i = 0; i < n; i++) {
        cJSON *s = cJSON_CreateString(v[i]);
        if (!s || !cJSON_AddItemToArray(a, s)) {
            cJSON_Delete(s);
            return -1;
        }
    }
    return 0;
}

static int add_opt_string(cJSON *o, const char *key, const char *v)
{
    return (v ? cJSON_AddStringToObject(o, key, v) : cJSON_AddNullToObject(o, key)) ? 0 : -1;
}

typedef struct snap_ctx {
    cJSON *arr;
    bool oom;
} snap_ctx;

static int snap_run(void *ctx, const anvil_run_record *r)
{
    snap_ctx *s = ctx;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "runId", r->run_id ? r->run_id : "") ||
        !cJSON_AddStringToObject(o, "workflowKey", r->workflow ? r->workflow : "") ||
        !cJSON_AddStringToObject(o, "status", r->status ? r->status : "") ||
        !cJSON_AddNumberToObject(o, "createdAtMs", (double)r->created_at_ms) ||
        !cJSON_AddItemToArray(s->arr, o)) {
        cJSON_Delete(o);
        s->oom = true;
        return -1;
    }
    return 0;
}

static int snap_approval(void *ctx, const anvil_approval_record *a)
{
    snap_ctx *s = ctx;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "runId", a->run_id ? a->run_id : "") ||
        !cJSON_AddStringToObject(o, "workflowKey", a->workflow ? a->workflow : "") ||
        !cJSON_AddStringToObject(o, "nodeId", a->node_id ? a->node_id : "") ||
        !cJSON_AddNumberToObject(o, "iteration", (double)a->iteration) ||
        add_opt_string(o, "requestTitle", a->title) != 0 ||
        !cJSON_AddNumberToObject(o, "requestedAtMs", (double)a->requested_at_ms) ||
        !cJSON_AddItemToArray(s->arr, o)) {
        cJSON_Delete(o);
        s->oom = true;
        return -1;
    }
    return 0;
}

static cJSON *build_snapshot(anvil_ws_gateway *w, anvil_error *e)
{
    anvil_store *store = w->svc->store;
    cJSON *snap = cJSON_CreateObject();
    snap_ctx runs = { snap ? cJSON_AddArrayToObject(snap, "runs") : NULL, false };
    snap_ctx appr = { snap ? cJSON_AddArrayToObject(snap, "approvals") : NULL, false };
    if (!snap || !runs.arr || !appr.arr) {
        cJSON_Delete(snap);
        anvil_error_set(e, ANVIL_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    /* The state version first: the snapshot is at least this new. */
    int64_t sv = state_version(w);
    if (anvil_store_runs_unfinished(store, snap_run, &runs) < 0 || runs.oom ||
        anvil_store_approvals_pending(store, NULL, NULL, 0, snap_approval, &appr) < 0 || appr.oom) {
        cJSON_Delete(snap);
        anvil_error_set(e, ANVIL_ERR_INTERNAL, "Cannot read the snapshot: %s", anvil_store_errmsg(store));
        return NULL;
    }
    if (!cJSON_AddNumberToObject(snap, "stateVersion", (double)sv)) {
        cJSON_Delete(snap);
        anvil_error_set(e, ANVIL_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    return snap;
}

static cJSON *build_hello(anvil_ws_gateway *w, ws_conn *c, anvil_error *e)
{
    const anvil_config *cfg = w->svc->config;
    char session[37];
    cJSON *h = cJSON_CreateObject();
    bool ok = h && cJSON_AddNumberToObject(h, "protocol", cfg->protocol) &&
              add_strings(h, "features", cfg->features, cfg->n_features) == 0;
    cJSON *policy = ok ? cJSON_AddObjectToObject(h, "policy") : NULL;
    cJSON *auth = policy ? cJSON_AddObjectToObject(h, "auth") : NULL;
    if (anvil_uuid4(session) != 0 || !h || !policy || !auth ||
        !cJSON_AddNumberToObject(policy, "heartbeatMs", (double)cfg->heartbeat_ms) ||
        !cJSON_AddStringToObject(auth, "sessionToken", session) ||
        add_opt_string(auth, "role", c->principal.role) != 0 ||
        add_strings(auth, "scopes", c->principal.scopes, c->principal.n_scopes) != 0 ||
        add_opt_string(auth, "userId", c->principal.user_id) != 0 ||
        add_opt_string(auth, "tokenId", c->principal.token_id) != 0) {
        cJSON_Delete(h);
        anvil_error_set(e, ANVIL_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    cJSON *snap = build_snapshot(w, e);
    if (!snap) {
        cJSON_Delete(h);
        return NULL;
    }
    cJSON_AddItemToObject(h, "snapshot", snap);
    return h;
}

static const char *const connect_members[] = { "minProtocol", "maxProtocol", "client", "auth", "subscribe" };

static void handle_connect(ws_conn *c, const char *id, const cJSON *params)
{
    anvil_ws_gateway *w = c->w;
    anvil_error e = { 0 };
    char where[96];
    if (c->authenticated) {
        anvil_error_set(&e, ANVIL_ERR_INVALID_REQUEST, "already connected");
        return send_error(c, id, &e);
    }
    if (!cJSON_IsObject(params)) {
        invalid_at(&e, "$.params", params ? "expected object" : "required property \"params\" is missing");
        return send_error(c, id, &e);
    }
    for (const cJSON *m = params->child; m; m = m->next) {
        bool known = false;
        for (size_t i = 0; i < sizeof connect_members / sizeof *connect_members; i++)
            known = known || strcmp(m->string, connect_members[i]) == 0;
        if (!known) {
            snprintf(where, sizeof where, "$.params.%.64s", m->string);
            invalid_at(&e, where, "unknown property");
            return send_error(c, id, &e);
        }
    }
    const cJSON *minp = cJSON_GetObjectItemCaseSensitive(params, "minProtocol");
    const cJSON *maxp = cJSON_GetObjectItemCaseSensitive(params, "maxProtocol");
    const cJSON *client = cJSON_GetObjectItemCaseSensitive(params, "client");
    const cJSON *auth = cJSON_GetObjectItemCaseSensitive(params, "auth");
    const cJSON *subs = cJSON_GetObjectItemCaseSensitive(params, "subscribe");
    const cJSON *token = NULL;
    if (!minp) {
        invalid_at(&e, "$.params.minProtocol", "required property \"minProtocol\" is missing");
        return send_error(c, id, &e);
    }
    if (!integral(minp) || minp->valuedouble < 0) {
        invalid_at(&e, "$.params.minProtocol", "expected non-negative integer");
        return send_error(c, id, &e);
    }
    if (!maxp) {
        invalid_at(&e, "$.params.maxProtocol", "required property \"maxProtocol\" is missing");
        return send_error(c, id, &e);
    }
    if (!integral(maxp) || maxp->valuedouble < 0) {
        invalid_at(&e, "$.params.maxProtocol", "expected non-negative integer");
        return send_error(c, id, &e);
    }
    if (client && !cJSON_IsObject(client) && !cJSON_IsNull(client)) {
        invalid_at(&e, "$.params.client", "expected object");
        return send_error(c, id, &e);
    }
    if (auth && !cJSON_IsNull(auth)) {
        if (!cJSON_IsObject(auth)) {
            invalid_at(&e, "$.params.auth", "expected object");
            return send_error(c, id, &e);
        }
        for (const cJSON *m = auth->child; m; m = m->next) {
            if (strcmp(m->string, "token") != 0) {
                snprintf(where, sizeof where, "$.params.auth.%.64s", m->string);
                invalid_at(&e, where, "unknown property");
                return send_error(c, id, &e);
            }
        }
        token = cJSON_GetObjectItemCaseSensitive(auth, "token");
        if (token && !cJSON_IsString(token) && !cJSON_IsNull(token)) {
            invalid_at(&e, "$.params.auth.token", "expected string");
            return send_error(c, id, &e);
        }
    }
    if (subs && !cJSON_IsNull(subs)) {
        if (!cJSON_IsArray(subs)) {
            invalid_at(&e, "$.params.subscribe", "expected array");
            return send_error(c, id, &e);
        }
        int i = 0;
        for (const cJSON *s = subs->child; s; s = s->next, i++) {
            if (!cJSON_IsString(s)) {
                snprintf(where, sizeof where, "$.params.subscribe[%d]", i);
                invalid_at(&e, where, "expected string");
                return send_error(c, id, &e);
            }
        }
    }
    int proto = w->svc->config->protocol;
    if (minp->valuedouble > maxp->valuedouble || proto < minp->valuedouble || proto > maxp->valuedouble) {
        anvil_error_set(&e, ANVIL_ERR_PROTOCOL_UNSUPPORTED,
                        "Protocol %d is not in the requested range [%lld, %lld]", proto,
                        (long long)minp->valuedouble, (long long)maxp->valuedouble);
        anvil_error_detail_int(&e, "protocol", proto);
        return send_error(c, id, &e);
    }

    anvil_auth_request ar = {
        .header = conn_header, .header_ctx = c,
        .token = cJSON_IsString(token) ? token->valuestring : NULL,
    };
    anvil_auth_failure why = { 0 };
    anvil_principal p = { 0 };
    anvil_auth_status st = anvil_auth_authenticate(&w->svc->config->auth, w->tokens,
                                                   &ar, anvil_now_ms(), &p, &why);
    if (st != ANVIL_AUTH_OK) {
        if (st == ANVIL_AUTH_UNAUTHORIZED) {
            anvil_error_set(&e, ANVIL_ERR_UNAUTHORIZED, "%s", why.message[0] ? why.message : "Unauthorized");
            if (why.refresh_hint)
                anvil_error_detail_str(&e, "refresh",
                                       w->svc->config->auth.mode == ANVIL_AUTH_JWT
                                           ? "request a new JWT from your identity provider"
                                           : "anvil token issue");
        } else {
            anvil_error_set(&e, ANVIL_ERR_INTERNAL, "Authentication failed: %s",
                            why.message[0] ? why.message : "internal error");
        }
        anvil_log(ANVIL_LOG_INFO, "ws %llu: auth rejected: %s", (unsigned long long)c->id, why.message);
        send_error(c, id, &e);
        conn_close(c, st == ANVIL_AUTH_UNAUTHORIZED ? 1008 : 1011,
                   st == ANVIL_AUTH_UNAUTHORIZED ? "Unauthorized" : "Internal");
        return;
    }
    c->principal = p;
    if (subs && cJSON_IsArray(subs)) {
        c->has_subs = true;
        for (const cJSON *s = subs->child; s; s = s->next) {
            if (subscribe(c, s->valuestring) != 0) {
                anvil_error_set(&e, ANVIL_ERR_INTERNAL, "out of memory");
                anvil_principal_clear(&c->principal);
                anvil_strv_free(c->subs, c->n_subs);
                c->subs = NULL;
                c->n_subs = c->cap_subs = 0;
                c->has_subs = false;
                return send_error(c, id, &e);
            }
        }
    }
    cJSON *hello = build_hello(w, c, &e);
    if (!hello) {
        anvil_principal_clear(&c->principal);
        anvil_strv_free(c->subs, c->n_subs);
        c->subs = NULL;
        c->n_subs = c->cap_subs = 0;
        c->has_subs = false;
        return send_error(c, id, &e);
    }
    c->authenticated = true;
    free_headers(c);
    if (c->deadline) {
        event_free(c->deadline);
        c->deadline = NULL;
    }
    send_text(c, anvil_rpc_ok_frame(id, hello));
}

/* ---------------------------------------------------------------- requests */

static bool subscribing_method(const char *name)
{
    const anvil_method *m = name ? anvil_method_find(name) : NULL;
    if (!m)
        return false;
    return strcmp(m->name, "launchRun") == 0 || strcmp(m->name, "submitApproval") == 0 ||
           strcmp(m->name, "submitSignal") == 0 || strcmp(m->name, "cronRun") == 0;
}

/* The run a successful subscribing call is about: payload.runId, else
 * params.runId. NULL when the call failed. Returns a malloc'd string. */
static char *call_run_id(const char *response, const cJSON *params)
{
    cJSON *r = cJSON_Parse(response);
    char *out = NULL;
    if (r && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok"))) {
        const cJSON *payload = cJSON_GetObjectItemCaseSensitive(r, "payload");
        const cJSON *rid = cJSON_GetObjectItemCaseSensitive(payload, "runId");
        if (!cJSON_IsString(rid))
            rid = cJSON_GetObjectItemCaseSensitive(params, "runId");
        if (cJSON_IsString(rid))
            out = strdup(rid->valuestring);
    }
    cJSON_Delete(r);
    return out;
}

static void handle_rpc(ws_conn *c, const anvil_request_frame *f)
{
    anvil_ws_gateway *w = c->w;
    bool sub = subscribing_method(f->method);
    bool hold = sub && c->has_subs;
    if (hold) {
        c->holding = true;
        c->held_tail = &c->held;
    }
    anvil_rpc_input in = {
        .frame = f, .transport = ANVIL_TRANSPORT_WEBSOCKET, .streams = &anvil_ws_stream_ops, .conn = c,
    };
    int status = 0;
    char *text = anvil_rpc_handle(w->svc, &c->principal, &in, &status);
    c->holding = false;
    bool ok = text && status == 200;
    char *run_id = NULL;
    if (sub && text)
        run_id = call_run_id(text, f->params);
    send_text(c, text);
    if (run_id && c->has_subs && subscribe(c, run_id) != 0)
        anvil_log(ANVIL_LOG_ERROR, "ws %llu: out of memory subscribing to %s",
                  (unsigned long long)c->id, run_id);
    for (held_event *h = c->held; h; h = h->next)
        if (run_id && strcmp(h->run_id, run_id) == 0)
            send_event_prefix(c, h->prefix, h->state_version);
    free_held(c);
    free(run_id);
    streams_after_call(c, ok);
}

/* Every frame gets HTTP's checks (contract/frame.c), except that it must
 * carry its own id: nothing else can correlate the answer. */
static const anvil_frame_rules frame_rules = { .noun = "Frame", .id_required = true };

static void on_message(void *ctx, uint64_t conn_id, const char *data, size_t len)
{
    anvil_ws_gateway *w = ctx;
    ws_conn *c = conn_find(w, conn_id);
    if (!c || c->closing)
        return;
    anvil_request_frame f;
    anvil_error e = { 0 };
    if (anvil_frame_read(data, len, &frame_rules, &f, &e) != 0) {
        send_error(c, f.id, &e);
    } else if (strcmp(f.method, "connect") == 0) {
        handle_connect(c, f.id, f.params);
    } else if (!c->authenticated) {
        anvil_error_set(&e, ANVIL_ERR_UNAUTHORIZED, "The first request must be connect");
        send_error(c, f.id, &e);
    } else {
        handle_rpc(c, &f);
    }
    cJSON_Delete(f.root);
}

/* ---------------------------------------------------------------- lifecycle */

/* The bridge's refusal callback carries the protocol's ctx; hand the
 * rendering to the server's own. */
static void refuse_upgrade(void *ctx, const anvil_http_head *head, anvil_error_code code,
                           int http_status, const char *message, int64_t max_bytes,
                           anvil_http_response *res)
{
    anvil_ws_gateway *w = ctx;
    w->refuse(w->refuse_ctx, head, code, http_status, message, max_bytes, res);
}

anvil_ws_gateway *anvil_ws_gateway_new(const anvil_ws_gateway_deps *deps, char *err, size_t errlen)
{
    anvil_ws_gateway *w = calloc(1, sizeof *w);
    if (!w || !(w->buckets = calloc(64, sizeof *w->buckets))) {
        free(w);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->n_buckets = 64;
    w->base = deps->base;
    w->svc = deps->svc;
    w->tokens = deps->tokens;
    w->refuse = deps->refuse;
    w->refuse_ctx = deps->refuse_ctx;
    const anvil_config *cfg = w->svc->config;
    if (anvil_events_subscribe(anvil_engine_bus(w->svc->engine), on_bus_event, w) != 0) {
        anvil_ws_gateway_free(w);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->subscribed = true;
    if (cfg->heartbeat_ms > 0) {
        w->tick = event_new(w->base, -1, EV_PERSIST, on_tick, w);
        struct timeval tv = { (time_t)(cfg->heartbeat_ms / 1000),
                              (suseconds_t)((cfg->heartbeat_ms % 1000) * 1000) };
        if (!w->tick || event_add(w->tick, &tv) != 0) {
            anvil_ws_gateway_free(w);
            snprintf(err, errlen, "cannot start the heartbeat timer");
            return NULL;
        }
    }
    /* Per-connection outbound queue: max(4 * maxPayload, 1 MiB). */
    size_t max_payload = cfg->max_payload > 0 ? (size_t)cfg->max_payload : 1024 * 1024;
    w->queue_limit = max_payload > SIZE_MAX / 4 ? SIZE_MAX : 4 * max_payload;
    if (w->queue_limit < 1024 * 1024)
        w->queue_limit = 1024 * 1024;
    anvil_ws_options opt = {
        .max_payload = max_payload,
        .max_queued_bytes_per_conn = w->queue_limit,
        .max_connections = cfg->max_connections > 0 ? (size_t)cfg->max_connections : 0,
        .ping_interval_s = PING_INTERVAL_S,
        .path = "/",
    };
    anvil_ws_callbacks cb = {
        .on_open = on_open, .on_message = on_message, .on_close = on_close,
        .refuse = refuse_upgrade, .ctx = w,
    };
    w->bridge = anvil_ws_bridge_new(w->base, &opt, &cb, err, errlen);
    if (!w->bridge) {
        anvil_ws_gateway_free(w);
        return NULL;
    }
    return w;
}

anvil_ws_bridge *anvil_ws_gateway_bridge(anvil_ws_gateway *w)
{
    return w ? w->bridge : NULL;
}

void anvil_ws_gateway_shutdown(anvil_ws_gateway *w)
{
    if (!w || w->stopping)
        return;
    /* Answers to requests already received are queued inside this call,
     * ahead of the close frames. */
    anvil_ws_bridge_shutdown(w->bridge);
    w->stopping = true;
    if (w->tick)
        event_del(w->tick);
    for (ws_conn *c = w->head; c; c = c->next) {
        if (c->closing)
            continue;
        c->closing = true;        /* the bridge sends 1001 after the queue */
        if (c->deadline)
            event_del(c->deadline);
        if (c->stream_hb)
            event_del(c->stream_hb);
    }
}

size_t anvil_ws_gateway_connections(const anvil_ws_gateway *w)
{
    return w ? anvil_ws_connections(w->bridge) : 0;
}

void anvil_ws_gateway_free(anvil_ws_gateway *w)
{
    if (!w)
        return;
    anvil_ws_bridge_free(w->bridge);   /* no callback runs after this */
    if (w->subscribed)
        anvil_events_unsubscribe(anvil_engine_bus(w->svc->engine), on_bus_event, w);
    if (w->tick)
        event_free(w->tick);
    ws_conn *c = w->head;
    while (c) {
        ws_conn *n = c->next;
        conn_free(c);
        c = n;
    }
    free(w->buckets);
    free(w);
}
