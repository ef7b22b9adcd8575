/*
 * runtime/ws/ws_gateway.h — the WebSocket protocol on top of ws_bridge.h.
 *
 * One instance per gateway. It owns the bridge (the lws thread and its
 * sockets) and the per-connection protocol state: the connect handshake
 * (connect.challenge, connect -> hello), authentication, RPC dispatch
 * through anvil_rpc_handle (transport WEBSOCKET), the per-connection run
 * subscription set, the engine-event fan-out with a per-connection seq,
 * and the `tick` heartbeat. The implementation is split by job across
 * runtime/ws/ (ws_gateway_internal.h lists the files).
 *
 * Threading: everything runs on the core (libevent) thread, the one that
 * calls anvil_ws_gateway_new (asserted in Debug builds).
 * Ownership: created and freed by runtime/server/gateway.c. Free the HTTP
 * server first (no more upgrades), then this, then the engine.
 */
#ifndef ANVIL_WS_GATEWAY_H
#define ANVIL_WS_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include <event2/event.h>

#include "auth.h"
#include "call.h"
#include "error.h"
#include "http_server.h"
#include "ws_bridge.h"

typedef struct anvil_ws_gateway anvil_ws_gateway;

/* What the protocol needs from the server; everything it points at must
 * outlive the protocol. svc->engine must exist. */
typedef struct anvil_ws_gateway_deps {
    struct event_base *base;
    const anvil_services *svc;          /* config, store, engine; dispatch */
    const anvil_token_store *tokens;    /* database tokens for auth */
    anvil_http_reject_fn refuse;        /* renders a refused upgrade's body */
    void *refuse_ctx;
} anvil_ws_gateway_deps;

/* Create the bridge (options from svc->config), subscribe to the engine's
 * event bus and start the tick timer. NULL with err. */
anvil_ws_gateway *anvil_ws_gateway_new(const anvil_ws_gateway_deps *deps, char *err, size_t errlen);

/* The bridge, for anvil_ws_bridge_upgrade. */
anvil_ws_bridge *anvil_ws_gateway_bridge(anvil_ws_gateway *w);

/* The WebSocket's one path. The HTTP server hands over only upgrades on it
 * (anvil_http_options.upgrade_path); a websocket upgrade elsewhere is an
 * ordinary HTTP request. */
#define ANVIL_WS_PATH "/"

/* Interval of the per-stream `run.heartbeat`. */
#define ANVIL_RUN_EVENT_HEARTBEAT_MS 1000

/* The stream ops of WebSocket calls (anvil_call.streams): run events and
 * DevTools streams registered on the calling connection. */
extern const anvil_stream_ops anvil_ws_stream_ops;

/* SIGTERM/SIGINT: refuse further upgrades, answer the requests already
 * received, then close every connection with 1001 "server shutting down"
 * once its queued frames are out. Keep the loop running until
 * anvil_ws_gateway_connections is 0 (or a bounded wait), then free. */
void anvil_ws_gateway_shutdown(anvil_ws_gateway *w);

/* Connections still counted by the bridge (open, handshaking, or closed
 * with on_close not yet delivered). */
size_t anvil_ws_gateway_connections(const anvil_ws_gateway *w);

/* Close every connection (1001), stop the bridge thread, unsubscribe from
 * the bus and free everything. NULL is ignored. */
void anvil_ws_gateway_free(anvil_ws_gateway *w);

/* The WebSocket metrics (docs/metrics.md); any thread. */
struct anvil_metrics_out;
void anvil_ws_metrics_render(struct anvil_metrics_out *o);

#endif
