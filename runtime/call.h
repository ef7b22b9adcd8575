/*
 * runtime/call.h — what a handler gets: who is calling, over what, and where
 * to put an error.
 *
 * Ownership: the dispatcher owns the call and everything it points at; a
 * handler may read them during the call only.
 */
#ifndef ANVIL_CALL_H
#define ANVIL_CALL_H

#include "auth.h"
#include "error.h"
#include "gateway.h"
#include "method.h"
#include "store_runs.h"

typedef struct anvil_call {
    anvil_gateway *gw;
    const anvil_principal *principal;
    const char *called_as;        /* method name as sent (may be an alias) */
    const anvil_method *method;
    anvil_transport transport;    /* ANVIL_TRANSPORT_HTTP or _WEBSOCKET */
    void *conn;                   /* opaque transport connection (ws_gateway's
                                     for WebSocket calls); NULL over HTTP */
    anvil_error err;
} anvil_call;

/* For methods whose business logic has not landed yet: Internal with
 * "<method> is not available yet". Returns -1. */
int anvil_call_not_available(anvil_call *call);

/* Room for one more element in a response array of `count` elements of
 * `elem` bytes: when count == *cap the array doubles (new slots zeroed) and
 * *cap grows. Returns the (possibly moved) array, or NULL when out of
 * memory, in which case `items` is unchanged and still owned by the
 * caller. */
void *anvil_grow(void *items, size_t count, size_t *cap, size_t elem);

/* Load a run's record into *out (caller clears it with
 * anvil_run_record_clear). 0, or -1 with RunNotFound / Internal set. */
int anvil_call_load_run(anvil_call *call, const char *run_id, anvil_run_record *out);

#endif
