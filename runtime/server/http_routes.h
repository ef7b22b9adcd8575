/*
 * runtime/server/http_routes.h — which path does what: the gateway's HTTP surface.
 */
#ifndef ANVIL_HTTP_ROUTES_H
#define ANVIL_HTTP_ROUTES_H

#include "auth.h"
#include "call.h"
#include "http_server.h"

/* What the routes answer with; owned by the server, outliving every
 * request. */
typedef struct anvil_routes {
    const anvil_services *svc;          /* config, store, engine; dispatch */
    const anvil_token_store *tokens;    /* database tokens for auth */
} anvil_routes;

/* anvil_http_handler_fn; ctx is an anvil_routes. */
void anvil_routes_handle(void *ctx, const anvil_http_request *req, anvil_http_response *res);

/* anvil_http_reject_fn; ctx is unused. */
void anvil_routes_reject(void *ctx, const anvil_http_head *head, anvil_error_code code,
                         int http_status, const char *message, int64_t max_bytes,
                         anvil_http_response *res);

#endif
