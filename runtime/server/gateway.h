/*
 * runtime/server/gateway.h — the running server's shared state.
 *
 * Everything lives on the one libevent loop, so handlers read and write this
 * without locks. Ownership: anvil_gateway_start creates it from a loaded
 * config (which it takes over) and anvil_gateway_free releases it all.
 */
#ifndef ANVIL_GATEWAY_H
#define ANVIL_GATEWAY_H

#include <stdint.h>

#include <event2/event.h>

#include "call.h"
#include "config.h"
#include "cron_sched.h"
#include "diag.h"
#include "engine.h"
#include "http_routes.h"
#include "http_server.h"
#include "store.h"

typedef struct anvil_gateway {
    struct event_base *base;
    anvil_config cfg;
    anvil_store *store;
    anvil_engine *engine;
    anvil_http_server *http;
    struct anvil_ws_gateway *ws;   /* the WebSocket protocol and its bridge */
    anvil_services svc;            /* what handlers see: config, store, engine */
    anvil_token_store tokens;      /* database tokens, for auth */
    anvil_cron_sched cron;
    anvil_routes routes;           /* the HTTP surface's view of the above */
    struct event *sigint, *sigterm;
    struct event *drain_timer;
    struct event *flush_ev;        /* commits the store's batch at the end of a loop turn */
    bool draining;                 /* SIGTERM/SIGINT arrived */
    int64_t drain_started_ms;      /* monotonic; when it did */
    int64_t drain_grace_ms;        /* shutdownGraceMs; 0 after a second signal */
    bool tasks_interrupted;        /* the grace period ran out */
} anvil_gateway;

/* Open the store, load the workflows and recover runs (problems in workflow
 * files go to *diags), bind the listener and install signal handlers. On
 * failure returns NULL with a message in err; *cfg is consumed either way. */
anvil_gateway *anvil_gateway_start(struct event_base *base, anvil_config *cfg,
                                   anvil_diags *diags, char *err, size_t errlen);

void anvil_gateway_free(anvil_gateway *gw);

#endif
