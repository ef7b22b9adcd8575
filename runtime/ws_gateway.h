/*
 * runtime/ws_gateway.h — the WebSocket protocol on top of runtime/ws_bridge.
 *
 * One instance per gateway. It owns the bridge (the lws thread and its
 * sockets) and the per-connection protocol state: the connect handshake
 * (connect.challenge, connect -> hello), authentication, RPC dispatch
 * through anvil_rpc_handle (transport WEBSOCKET), the per-connection run
 * subscription set, the engine-event fan-out with a per-connection seq,
 * and the `tick` heartbeat.
 *
 * Threading: everything runs on the core (libevent) thread.
 * Ownership: created and freed by runtime/gateway.c. Free the HTTP server
 * first (no more upgrades), then this, then the engine.
 */
#ifndef ANVIL_WS_GATEWAY_H
#define ANVIL_WS_GATEWAY_H

#include <stddef.h>

#include "gateway.h"
#include "ws_bridge.h"

typedef struct anvil_ws_gateway anvil_ws_gateway;

/* Create the bridge (options from gw->cfg), subscribe to the engine's event
 * bus and start the tick timer. gw->engine must exist. NULL with err. */
anvil_ws_gateway *anvil_ws_gateway_new(anvil_gateway *gw, char *err, size_t errlen);

/* The bridge, for anvil_ws_bridge_upgrade. */
anvil_ws_bridge *anvil_ws_gateway_bridge(anvil_ws_gateway *w);

/* Close every connection (1001), stop the bridge thread, unsubscribe from
 * the bus and free everything. NULL is ignored. */
void anvil_ws_gateway_free(anvil_ws_gateway *w);

#endif
