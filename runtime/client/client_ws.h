/*
 * runtime/client/client_ws.h — the client's WebSocket: one connection to
 * the gateway's socket at "/", over libwebsockets' client.
 *
 * Opening answers the server's connect.challenge with `connect` (the
 * client's token in auth.token, an optional subscribe list) and returns
 * once `hello` is in. After that, calls (typed with the generated
 * descriptors, or raw) and events share the socket: a call waits for the
 * response with its id, and events that arrive meanwhile are queued for
 * anvil_client_ws_next_event() in arrival order.
 *
 * Threads: Debian's libwebsockets has no libevent integration, so a
 * connection has its own lws context and is serviced only while the owner
 * waits in one of these functions (no thread of its own). A connection
 * belongs to one thread at a time.
 *
 * The resumable run stream on top (anvil_client_run_stream_*) follows one
 * run's event log, reconnecting and resuming after the last seq it
 * delivered when the socket drops, and hands GapResync through as such.
 *
 * Ownership: events and hello documents are the caller's once returned
 * (anvil_client_event_clear, cJSON_Delete); a connection is released with
 * anvil_client_ws_close, a stream with anvil_client_run_stream_close.
 */
#ifndef ANVIL_CLIENT_WS_H
#define ANVIL_CLIENT_WS_H

#include <stdint.h>

struct event_base;

#include "client.h"

typedef struct anvil_client_ws anvil_client_ws;

/* One `event` frame. */
typedef struct anvil_client_event {
    char *event;            /* "run.event", "node.started", "tick", ... */
    cJSON *payload;         /* NULL when the frame had none */
    int64_t seq;            /* per connection */
    int64_t state_version;
} anvil_client_event;

void anvil_client_event_clear(anvil_client_event *ev);

/*
 * Open the socket of c's server, authenticate with c's token, subscribe to
 * `subscribe` (n run ids; n == 0: every run). *hello (optional) gets the
 * hello payload. Waits at most the client's timeout. Returns 0 with *out,
 * or -1 with *err (SERVER for a refused connect: Unauthorized,
 * ProtocolUnsupported, ...).
 */
int anvil_client_ws_open(anvil_client *c, const char *const *subscribe, size_t n,
                         cJSON **hello, anvil_client_ws **out, anvil_client_error *err);
void anvil_client_ws_close(anvil_client_ws *ws);

/* Untyped call: returns 0 with *payload (caller deletes; may be NULL for
 * none), or -1 with *err. */
int anvil_client_ws_call_raw(anvil_client_ws *ws, const char *method, const cJSON *params,
                             cJSON **payload, anvil_client_error *err);

/* Typed call (see anvil_client_call); the per-method wrappers are
 * anvil_client_ws_<method> in anvil_client_methods.h. */
int anvil_client_ws_call(anvil_client_ws *ws, const anvil_method *m, const void *req, void *res,
                         anvil_client_error *err);

/* The next event: 1 with *ev, 0 when timeout_ms (< 0: no limit) passed
 * first, -1 with *err (TRANSPORT) once the connection is gone and no
 * queued event is left. */
int anvil_client_ws_next_event(anvil_client_ws *ws, int timeout_ms, anvil_client_event *ev,
                               anvil_client_error *err);

/* --- the event-loop API -------------------------------------------------- */

/*
 * Attach an open connection to the caller's libevent base. From then on a
 * service thread of the library's own drives the socket (Debian's
 * libwebsockets cannot run on libevent) and hands every frame to `base`
 * through a pipe: events to on_event, answers to the call's `done`, and
 * the end of the connection once to on_closed (err says why). All
 * callbacks run on the base's thread; the connection must not be used
 * with the blocking functions while attached. Returns 0 with *out, or -1
 * with *err.
 */
typedef struct anvil_client_ws_loop anvil_client_ws_loop;
typedef void (*anvil_client_event_fn)(const anvil_client_event *ev, void *arg);
typedef void (*anvil_client_closed_fn)(const anvil_client_error *err, void *arg);

int anvil_client_ws_loop_start(anvil_client_ws *ws, struct event_base *base,
                               anvil_client_event_fn on_event, anvil_client_closed_fn on_closed,
                               void *arg, anvil_client_ws_loop **out, anvil_client_error *err);

/* A typed call over an attached connection (see anvil_client_call_async;
 * the per-method wrappers are anvil_client_ws_<method>_async). Returns 0
 * once queued, or -1 with *err (done is then never called). */
int anvil_client_ws_loop_call(anvil_client_ws_loop *l, const anvil_method *m, const void *req,
                              anvil_client_done_fn done, void *arg, anvil_client_error *err);

/* Detach: stop the service thread; calls still waiting get a TRANSPORT
 * error through their done. The connection can then be used blocking
 * again, or closed. Call on the base's thread, not from a callback. */
void anvil_client_ws_loop_stop(anvil_client_ws_loop *l);

/* --- the resumable run stream ------------------------------------------- */

typedef struct anvil_client_run_stream anvil_client_run_stream;

typedef enum anvil_client_run_item_kind {
    ANVIL_RUN_ITEM_EVENT = 1,   /* a RunEvent: event, payload, seq */
    ANVIL_RUN_ITEM_GAP           /* a GapResync: from_seq..to_seq are gone; snapshot is the run now */
} anvil_client_run_item_kind;

typedef struct anvil_client_run_item {
    anvil_client_run_item_kind kind;
    char *event;            /* EVENT: the run event's name ("node.started") */
    cJSON *payload;         /* EVENT: its payload */
    int64_t seq;            /* EVENT: the run's seq */
    int64_t from_seq, to_seq;
    cJSON *snapshot;        /* GAP: the run's getRun view */
} anvil_client_run_item;

void anvil_client_run_item_clear(anvil_client_run_item *item);

/* Follow run_id's events after after_seq (< 0: only new ones). Returns 0
 * with *out, or -1 with *err (RunNotFound, SeqOutOfRange, transport). */
int anvil_client_run_stream_open(anvil_client *c, const char *run_id, int64_t after_seq,
                                 anvil_client_run_stream **out, anvil_client_error *err);

/* The next item: 1 with *item, 0 on timeout, -1 with *err when the stream
 * cannot go on (the run was deleted, or reconnecting failed). A dropped
 * socket is reopened and the stream resumed after the last delivered seq,
 * so no event is lost or repeated. */
int anvil_client_run_stream_next(anvil_client_run_stream *s, int timeout_ms,
                                 anvil_client_run_item *item, anvil_client_error *err);

/* The last run seq delivered (or the resume point before any). */
int64_t anvil_client_run_stream_last_seq(const anvil_client_run_stream *s);
/* How many times the stream reopened its socket. */
int anvil_client_run_stream_reconnects(const anvil_client_run_stream *s);
/* For tests and tools: drop the socket as if the network had (the next
 * anvil_client_run_stream_next reconnects). */
void anvil_client_run_stream_drop(anvil_client_run_stream *s);
void anvil_client_run_stream_close(anvil_client_run_stream *s);

#endif
