/*
 * runtime/contract/call.h — what a handler gets: who is calling, over what,
 * the server's parts it may use, and where to put an error.
 *
 * Handlers see the narrow anvil_services below, never the gateway: the
 * config, the store, the engine and the start time. The types are
 * declared, not included, because they live in layers above this one
 * (config, store, engine); handlers include those headers themselves.
 * Streaming methods reach the transport only through anvil_stream_ops, so
 * no handler knows what a WebSocket is.
 *
 * A handler whose work must not block the loop answers later: it calls
 * anvil_call_defer, returns ANVIL_CALL_DEFERRED, and finishes the deferred
 * answer on the loop thread once the work is done. Only the transport's
 * connection may be gone by then; the answer is dropped in that case.
 *
 * Ownership: the dispatcher owns the call and everything it points at; a
 * handler may read them during the call only (a deferred handler copies
 * what it needs later). The services and stream ops are owned by the
 * server and outlive every call. A deferred answer owns the response
 * struct it was given until anvil_deferred_finish frees both.
 */
#ifndef ANVIL_CALL_H
#define ANVIL_CALL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "auth.h"
#include "error.h"
#include "method.h"

struct anvil_config;
struct anvil_store;
struct anvil_engine;

/* The parts of the running server a call may use. */
typedef struct anvil_services {
    const struct anvil_config *config;
    struct anvil_store *store;
    struct anvil_engine *engine;        /* NULL when none is running */
    int64_t started_ms;                 /* wall clock */
    int64_t started_mono_ms;
    const anvil_handler_fn *handlers;   /* by anvil_method.id: anvil_handler_table */
} anvil_services;

/* A streamRunEvents subscription, as its handler worked it out. */
typedef struct anvil_run_stream {
    const char *run_id;
    int64_t replay_after;         /* replay the log's events with seq > this */
    cJSON *gap_snapshot;          /* non-NULL: send run.gap_resync first; consumed */
    int64_t gap_from, gap_to;     /* its fromSeq / toSeq */
} anvil_run_stream;

/* What a transport that can push frames offers the streaming methods. Each
 * registers a stream on `conn` (anvil_call.conn), writes its id and
 * returns 0, or -1 with err set. The stream starts once the call's
 * response has been sent, and only if the call succeeded. */
typedef struct anvil_stream_ops {
    /* Run events: run.gap_resync when asked, then every logged event with
     * seq > replay_after, then each new event live, exactly once and in
     * seq order. gap_snapshot is consumed either way. */
    int (*run_events)(void *conn, const anvil_run_stream *rs, char stream_id[37],
                      anvil_error *err);
    /* DevTools: the recorded frames with frameNo > start_after (a snapshot,
     * then deltas), then each new frame live. */
    int (*devtools)(void *conn, const char *run_id, int64_t start_after, char stream_id[37],
                    anvil_error *err);
} anvil_stream_ops;

/* What a transport that can answer a call later offers. */
typedef struct anvil_reply_ops {
    /* A call on `conn` (anvil_rpc_input.reply_conn) will be answered later:
     * return the transport's handle for it, or NULL when out of memory.
     * Called during the call. */
    void *(*hold)(void *conn);
    /* The answer, on the loop thread, exactly once per held handle: the
     * ResponseFrame (malloc'd, the transport takes it; NULL when out of
     * memory) and its HTTP status. A transport whose connection closed in
     * between drops it; either way the handle is not used again. */
    void (*answer)(void *handle, char *frame, int http_status);
} anvil_reply_ops;

/* One call answered later (rpc.c). */
typedef struct anvil_deferred anvil_deferred;

typedef struct anvil_call {
    const anvil_services *svc;
    const anvil_principal *principal;
    const char *called_as;        /* method name as sent (may be an alias) */
    const anvil_method *method;
    anvil_transport transport;    /* ANVIL_TRANSPORT_HTTP or _WEBSOCKET */
    const anvil_stream_ops *streams;  /* NULL when the transport cannot stream */
    void *conn;                   /* the transport's connection, for streams */
    anvil_error err;
    /* Set by the dispatcher, for anvil_call_defer only. */
    const anvil_reply_ops *replies;   /* NULL when the transport cannot wait */
    void *reply_conn;
    const char *reply_id;             /* the id the answer will carry */
    int64_t started_us;               /* when its frame was read (metrics) */
    anvil_deferred *deferred;         /* set by anvil_call_defer */
} anvil_call;

/* What a handler returns after anvil_call_defer. */
#define ANVIL_CALL_DEFERRED 1

/* Answer this call later. `res` is the response struct the handler was
 * given: the deferred answer owns it from now on (fill it before
 * finishing). Returns NULL when the transport cannot wait or out of
 * memory: the handler must then answer now. At most once per call. */
anvil_deferred *anvil_call_defer(anvil_call *call, void *res);

/* Where a deferred handler writes its response and its error. */
void *anvil_deferred_response(anvil_deferred *d);
anvil_error *anvil_deferred_error(anvil_deferred *d);

/* Loop thread: send the answer (rc 0: the response is filled; otherwise
 * the error is set, or Internal is used) and free d with its response.
 * Must be called exactly once for every deferred call. */
void anvil_deferred_finish(anvil_deferred *d, int rc);


/* Room for one more element in a response array of `count` elements of
 * `elem` bytes: when count == *cap the array doubles (new slots zeroed) and
 * *cap grows. Returns the (possibly moved) array, or NULL when out of
 * memory, in which case `items` is unchanged and still owned by the
 * caller. */
void *anvil_grow(void *items, size_t count, size_t *cap, size_t elem);

#endif
