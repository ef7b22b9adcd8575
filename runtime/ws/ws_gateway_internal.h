/*
 * runtime/ws/ws_gateway_internal.h — what the files of the WebSocket
 * protocol share: the gateway and connection structs, the stream base, and
 * each file's entry points. Private to runtime/ws/.
 *
 * The files, from the bottom up; each calls only files listed before it,
 * so none calls back into its caller:
 *   ws_send.c            frames out on one connection; close; backpressure
 *   ws_stream.c          the lifecycle every stream kind shares
 *   ws_stream_run.c      streamRunEvents streams
 *   ws_stream_devtools.c streamDevTools streams
 *   ws_fanout.c          engine events to connections: subscriptions, held
 *                        events, seq, tick
 *   ws_connect.c         connect.challenge, connect, auth, hello, deadline
 *   ws_rpc.c             one inbound frame: connect, or a call through
 *                        anvil_rpc_handle; anvil_ws_stream_ops
 *   ws_gateway.c         the public API, the connection table, the bridge's
 *                        callbacks
 *
 * Threading: everything runs on the core (libevent) thread, the one that
 * created the gateway; every entry point from outside (the public API, the
 * bridge's and the bus's callbacks, timers, the stream ops) asserts it
 * with WS_ASSERT_CORE (Debug builds).
 *
 * Ownership: the gateway owns every ws_conn (ws_gateway.c frees it on the
 * bridge's on_close, or at free); a connection owns its streams, held
 * events, subscriptions, header copies and timers.
 */
#ifndef ANVIL_WS_GATEWAY_INTERNAL_H
#define ANVIL_WS_GATEWAY_INTERNAL_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "metrics.h"

#include "auth.h"
#include "call.h"
#include "error.h"
#include "events.h"
#include "frame.h"
#include "htab.h"
#include "http_server.h"
#include "ws_bridge.h"
#include "ws_gateway.h"

typedef struct ws_conn ws_conn;
typedef struct ws_stream ws_stream;

/* A call of the connection answered later (call.h anvil_reply_ops). */
typedef struct ws_reply {
    ws_conn *c;                   /* NULL once the connection is gone */
    struct ws_reply *next;
} ws_reply;

/* An engine event held during the connection's own subscribing call. */
typedef struct held_event {
    char *run_id;
    char *prefix;                 /* {"type":"event","event":..,"payload":.. (no closing brace) */
    int64_t state_version;
    struct held_event *next;
} held_event;

/* What one kind of stream does at each step of the shared lifecycle
 * (ws_stream.c). */
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
    /* The event that tells the client its stream ended on an error
     * ("run.error", "devtools.error"): {streamId, runId, error}. */
    const char *error_event;
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

struct ws_conn {
    uint64_t id;
    char log_id[32];              /* "ws-<id>", what its log lines carry */
    anvil_ws_gateway *w;
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
    ws_reply *replies;            /* calls whose answers are still to come */
    struct event *stream_hb;      /* heartbeat timer, once a kind with heartbeats opened */
    struct ws_conn *next, *prev;  /* all connections, newest first */
    anvil_hnode node;             /* in anvil_ws_gateway.conns, by id */
};

struct anvil_ws_gateway {
    struct event_base *base;
    pthread_t core;                     /* created the gateway, runs base */
    const anvil_services *svc;          /* config, store, engine, handlers */
    const anvil_token_store *tokens;
    anvil_http_reject_fn refuse;        /* renders refused upgrades */
    void *refuse_ctx;
    anvil_ws_bridge *bridge;
    ws_conn *head;                /* every connection, for the fan-out */
    anvil_htab conns;             /* the same, by id, for the bridge's callbacks */
    struct event *tick;
    bool subscribed;
    bool stopping;                /* anvil_ws_gateway_shutdown was called */
    size_t queue_limit;           /* the bridge's max_queued_bytes_per_conn */
};

#define WS_ASSERT_CORE(w) assert(pthread_equal(pthread_self(), (w)->core))

/* ---- ws_send.c */

/* Send text (malloc'd, freed here); true when queued. NULL (out of memory)
 * closes the connection 1011; a full queue gets BackpressureDisconnect. */
bool ws_send_text(ws_conn *c, char *text);
/* Frames out, event frames, backpressure disconnects (docs/metrics.md). */
void ws_send_metrics_render(anvil_metrics_out *o);
/* The error frame for request id (NULL: a fresh one); clears e. */
void ws_send_error(ws_conn *c, const char *id, anvil_error *e);
/* {"type":"event","event":name,"payload":payload (copied; NULL is {}) —
 * without the closing brace, so the per-connection members can be
 * appended. NULL when out of memory. */
char *ws_event_prefix(const char *name, const cJSON *payload);
/* Complete a prefix with the connection's next seq, sv and apiVersion and
 * send it; the seq is taken only when the frame is queued. */
void ws_send_event_prefix(ws_conn *c, const char *prefix, int64_t sv);
/* Send event `name` with payload p (consumed). */
void ws_send_owned_event(ws_conn *c, const char *name, cJSON *p, int64_t sv);
/* The engine's state version (0 without an engine). */
int64_t ws_state_version(const anvil_ws_gateway *w);
/* Stop the connection's timers and ignore it from now on (no frame). */
void ws_conn_mark_closing(ws_conn *c);
/* Close with code and reason after the queued frames (once). */
void ws_conn_close(ws_conn *c, int code, const char *reason);

/* ---- ws_stream.c */

/* Register a pending stream of `kind` on run_id for the call in progress
 * (conn is anvil_call.conn) and write its id; the caller fills in the
 * kind's part. NULL with err set when the connection is closing or out of
 * memory. */
ws_stream *ws_stream_register(void *conn, const ws_stream_kind *kind, const char *run_id,
                              char stream_id[37], anvil_error *err);
/* After a call: start the streams it registered when it succeeded (ok),
 * drop them when it did not. */
void ws_streams_after_call(ws_conn *c, bool ok);
/* A live engine event: to every started stream on its run; run.deleted
 * ends each of them with its kind's error event (RunNotFound). */
void ws_streams_deliver(ws_conn *c, const anvil_event *ev, char **ptext);
/* Free every stream and the heartbeat timer. */
void ws_streams_free(ws_conn *c);

/* ---- ws_stream_run.c, ws_stream_devtools.c: anvil_stream_ops entries */

int ws_run_stream_open(void *conn, const anvil_run_stream *rs, char stream_id[37], anvil_error *err);
int ws_devtools_stream_open(void *conn, const char *run_id, int64_t start_after, char stream_id[37],
                            anvil_error *err);

/* ---- ws_fanout.c */

/* Add run_id to the connection's subscription set. 0, or -1 when out of
 * memory. */
int ws_subscribe(ws_conn *c, const char *run_id);
/* Around the connection's own subscribing call: hold the events published
 * meanwhile; after it, subscribe to the run it was about (run_id; NULL when
 * the call failed), deliver what was held for that run and drop the rest. */
void ws_hold_events(ws_conn *c);
void ws_release_held(ws_conn *c, const char *run_id);
void ws_free_held(ws_conn *c);
/* The engine bus subscriber and the `tick` timer (ctx/arg: the gateway). */
void ws_on_bus_event(void *ctx, const anvil_event *ev);
void ws_on_tick(evutil_socket_t fd, short what, void *arg);

/* ---- ws_connect.c */

/* A new connection: keep the upgrade request's headers, arm the connect
 * deadline, send connect.challenge. Closes the connection on failure. */
void ws_conn_open(ws_conn *c, const anvil_http_request *req);
/* The connect request `id` with params (an object or NULL). */
void ws_handle_connect(ws_conn *c, const char *id, const cJSON *params);
void ws_free_headers(ws_conn *c);

/* ---- ws_rpc.c */

/* One inbound frame of an open connection. */
void ws_handle_frame(ws_conn *c, const char *data, size_t len);
/* The connection is going: answers still to come are dropped. */
void ws_detach_replies(ws_conn *c);

#endif
