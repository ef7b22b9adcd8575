/*
 * runtime/http_routes.h — which path does what: the gateway's HTTP surface.
 */
#ifndef ANVIL_HTTP_ROUTES_H
#define ANVIL_HTTP_ROUTES_H

#include "http_server.h"

/* anvil_http_handler_fn; ctx is the anvil_gateway. */
void anvil_routes_handle(void *ctx, const anvil_http_request *req, anvil_http_response *res);

/* anvil_http_reject_fn; ctx is the anvil_gateway. */
void anvil_routes_reject(void *ctx, const anvil_http_head *head, anvil_error_code code,
                         int http_status, const char *message, int64_t max_bytes,
                         anvil_http_response *res);

#endif
