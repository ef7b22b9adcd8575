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
 * Ownership: the dispatcher owns the call and everything it points at; a
 * handler may read them during the call only. The services and stream ops
 * are owned by the server and outlive every call.
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

typedef struct anvil_call {
    const anvil_services *svc;
    const anvil_principal *principal;
    const char *called_as;        /* method name as sent (may be an alias) */
    const anvil_method *method;
    anvil_transport transport;    /* ANVIL_TRANSPORT_HTTP or _WEBSOCKET */
    const anvil_stream_ops *streams;  /* NULL when the transport cannot stream */
    void *conn;                   /* the transport's connection, for streams */
    anvil_error err;
} anvil_call;


/* Room for one more element in a response array of `count` elements of
 * `elem` bytes: when count == *cap the array doubles (new slots zeroed) and
 * *cap grows. Returns the (possibly moved) array, or NULL when out of
 * memory, in which case `items` is unchanged and still owned by the
 * caller. */
void *anvil_grow(void *items, size_t count, size_t *cap, size_t elem);

#endif
