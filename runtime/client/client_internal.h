/*
 * runtime/client/client_internal.h — what the client's files share: the
 * handle's layout, error setters, and the one HTTP exchange the blocking and
 * the event-loop calls are both built on. Included only from this folder.
 */
#ifndef ANVIL_CLIENT_INTERNAL_H
#define ANVIL_CLIENT_INTERNAL_H

#include <stddef.h>

#include "client.h"

struct anvil_client {
    char *url;                  /* as given, for messages */
    char *host;                 /* without brackets for IPv6 literals */
    int port;
    char *token;                /* NULL: no Authorization header */
    struct event_base *base;    /* the caller's loop for *_async, or NULL */
    int timeout_s;
};

/* Set *err (replacing what it held) and return -1. */
int anvil_client_err_set(anvil_client_error *err, anvil_client_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fill *err from a response frame's `error` object (kind SERVER): code,
 * message, requiredScope, refresh, path; http_status is the transport's
 * status when nonzero, else the error map's. Returns -1. */
int anvil_client_err_from_json(anvil_client_error *err, const cJSON *error, int http_status);

/* Parse a "http://HOST[:PORT]" URL. Returns 0, or -1 with *err (USAGE). */
int anvil_client_parse_url(const char *url, char **host, int *port, anvil_client_error *err);

/* One POST /v1/rpc/{method} with `body` on `base`. `fn` runs on that loop
 * exactly once: with the parsed frame (owned by the callee for the call
 * only) and status, or with frame NULL and err set. Returns 0 once queued,
 * or -1 with *err (fn is then not called). */
typedef void (*anvil_client_http_fn)(const cJSON *frame, int status, const anvil_client_error *err,
                                     void *arg);
int anvil_client_http_post(anvil_client *c, struct event_base *base, const char *method,
                           const char *body, size_t len, anvil_client_http_fn fn, void *arg,
                           anvil_client_error *err);

#endif
