/*
 * runtime/client/client.h — libanvil-client: the C client of a Smithers
 * Gateway v1 server (Anvil or another), over HTTP.
 *
 * A client is a long-lived handle (URL, token, an optional libevent base);
 * each call is one POST /v1/rpc/{method} on libevent's evhttp client. Calls
 * come in two shapes:
 *   - blocking: anvil_client_call() runs a private event base until the
 *     answer is in; usable from any thread that owns the handle;
 *   - event loop: anvil_client_call_async() queues the request on the base
 *     given to anvil_client_new() and calls back on that loop.
 * The typed per-method wrappers (anvil_client_launch_run, ...) are generated
 * into generated/clients/c/anvil_client_methods.h; requests are encoded and
 * answers decoded with the server's own descriptors and codec
 * (contract/schema.h), so a client and the server cannot disagree on a
 * shape. The WebSocket side is client_ws.h.
 *
 * Ownership: the handle copies url and token. Every anvil_client_error is
 * filled by the library and owned by the caller, who releases it with
 * anvil_client_error_clear(). Responses decoded into caller storage are
 * released with anvil_schema_free().
 */
#ifndef ANVIL_CLIENT_H
#define ANVIL_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "method.h"

struct event_base;

/* Where a failure came from. */
typedef enum anvil_client_error_kind {
    ANVIL_CLIENT_OK = 0,
    ANVIL_CLIENT_ERR_USAGE,      /* the caller's request could not be encoded (path says where) */
    ANVIL_CLIENT_ERR_TRANSPORT,  /* no answer: connect, send, timeout, connection closed */
    ANVIL_CLIENT_ERR_PROTOCOL,   /* an answer that is not a v1 frame, or a payload the contract refuses */
    ANVIL_CLIENT_ERR_SERVER      /* the server answered ok:false with a contract error */
} anvil_client_error_kind;

/* A typed error. For ANVIL_CLIENT_ERR_SERVER: code is the contract's v1
 * name ("RunNotFound"), code_id its entry in the generated error map (-1
 * when this client's contract does not know it), http_status the status
 * the map gives it (or the one the HTTP answer carried), and
 * required_scope/refresh/path the details the server sent. */
typedef struct anvil_client_error {
    anvil_client_error_kind kind;
    char code[64];
    int code_id;
    int http_status;             /* 0 when nothing was answered */
    char *message;               /* never NULL once set */
    char *required_scope;        /* Forbidden: the scope the method needs */
    bool refresh;                /* Unauthorized: the token expired or was revoked */
    char *path;                  /* InvalidRequest and usage errors: the JSON path */
    cJSON *error;                /* the server's whole error object, or NULL */
} anvil_client_error;

void anvil_client_error_clear(anvil_client_error *err);

/* "RunNotFound: Run not found: r1" (or the transport message) into buf. */
const char *anvil_client_error_text(const anvil_client_error *err, char *buf, size_t len);

typedef struct anvil_client anvil_client;

/* Fill *err (kind SERVER) from a response frame whose ok is false, e.g.
 * one anvil_client_call_raw returned; http_status 0 takes the error map's.
 * Returns -1. */
int anvil_client_err_from_frame(anvil_client_error *err, const cJSON *frame, int http_status);

/* The HTTP status of a contract error code by its v1 name, from the
 * generated error map; 0 when the name is unknown. */
int anvil_client_error_status_of(const char *code);

/*
 * A client for `url` ("http://HOST[:PORT]", no path) with bearer `token`
 * (may be NULL: unauthenticated). `base` (may be NULL) is the event loop
 * the *_async calls run on; the client never runs it. Returns 0 and *out,
 * or -1 with *err (USAGE: the URL is malformed).
 */
int anvil_client_new(const char *url, const char *token, struct event_base *base,
                     anvil_client **out, anvil_client_error *err);
void anvil_client_free(anvil_client *c);

/* Per-call timeout in seconds (default 30); 0 restores the default. */
void anvil_client_set_timeout(anvil_client *c, int seconds);

const char *anvil_client_host(const anvil_client *c);
int anvil_client_port(const anvil_client *c);
const char *anvil_client_token(const anvil_client *c);

/*
 * Untyped call: `params` (borrowed; NULL sends {}) as the body of POST
 * /v1/rpc/{method}. Returns 0 with *frame the whole response frame (caller
 * deletes) whatever `ok` says; -1 with *err only when no frame came back.
 * For `anvil rpc` and other callers that print answers as they are.
 */
int anvil_client_call_raw(anvil_client *c, const char *method, const cJSON *params,
                          cJSON **frame, int *http_status, anvil_client_error *err);

/*
 * Typed blocking call: encode *req with the method's request descriptor,
 * post it, decode an ok payload into *res (zeroed storage of the method's
 * response type). Returns 0, or -1 with *err (res left zeroed).
 */
int anvil_client_call(anvil_client *c, const anvil_method *m, const void *req, void *res,
                      anvil_client_error *err);

/* Completion of an event-loop call: exactly one of err and res is non-NULL;
 * both are valid only during the callback. */
typedef void (*anvil_client_done_fn)(const anvil_client_error *err, const void *res, void *arg);

/* Typed event-loop call on the client's base (the client must have one).
 * Returns 0 once queued, or -1 with *err (done is then never called). */
int anvil_client_call_async(anvil_client *c, const anvil_method *m, const void *req,
                            anvil_client_done_fn done, void *arg, anvil_client_error *err);

#endif
