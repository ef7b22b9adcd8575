/*
 * runtime/contract/rpc.h — one request frame in, one response frame out.
 *
 * Transport-neutral: HTTP hands over the raw body, the WebSocket the frame
 * it has already read with anvil_frame_read (frame.h), and both the
 * authenticated principal; this module runs the frame checks (for a raw
 * body), the method table, the scope check, generated decoding, the
 * handler and generated encoding, and renders the ResponseFrame.
 *
 * Ownership: returned strings are malloc'd and owned by the caller.
 */
#ifndef ANVIL_RPC_H
#define ANVIL_RPC_H

#include <stddef.h>

#include "auth.h"
#include "call.h"
#include "error.h"
#include "frame.h"
#include "method.h"

typedef struct anvil_rpc_input {
    const char *forced_method;   /* from /v1/rpc/{method}; NULL for /rpc */
    const char *body;
    size_t body_len;
    const anvil_request_frame *frame; /* already read (WebSocket): body is unused;
                                       * NULL: body is read here */
    const char *request_id;      /* x-request-id, used when the frame has no id */
    anvil_transport transport;
    const anvil_stream_ops *streams; /* NULL when the transport cannot stream */
    void *conn;                  /* the transport's connection, for streams */
    const anvil_reply_ops *replies; /* NULL when the transport cannot answer later */
    void *reply_conn;            /* given to replies->hold */
} anvil_rpc_input;

/* Run one call. Returns the ResponseFrame JSON and sets *http_status, or
 * NULL when out of memory (*http_status 500). A call its handler deferred
 * returns NULL with *http_status 0: its answer comes through
 * in->replies->answer, on the loop thread, once the work is done. */
char *anvil_rpc_handle(const anvil_services *svc, const anvil_principal *principal,
                       const anvil_rpc_input *in, int *http_status);

/* Render {type:"res", id, ok:false, apiVersion, error} for an error found
 * outside dispatch (auth, framing). NULL id means a fresh UUID. */
char *anvil_rpc_error_frame(const char *id, const anvil_error *e);

/* The error frame that replaces an answer already rendered (`frame`,
 * consumed) when what it reported could not be made durable: same id,
 * ok false, error e; *http_status is set to e's. NULL when out of
 * memory. */
char *anvil_rpc_error_instead(char *frame, const anvil_error *e, int *http_status);

/* Render a successful frame around `payload` (consumed). */
char *anvil_rpc_ok_frame(const char *id, cJSON *payload);

#endif
