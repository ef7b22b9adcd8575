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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "gateway.h"
#include "ws_bridge.h"

typedef struct anvil_ws_gateway anvil_ws_gateway;

/* Create the bridge (options from gw->cfg), subscribe to the engine's event
 * bus and start the tick timer. gw->engine must exist. NULL with err. */
anvil_ws_gateway *anvil_ws_gateway_new(anvil_gateway *gw, char *err, size_t errlen);

/* The bridge, for anvil_ws_bridge_upgrade. */
anvil_ws_bridge *anvil_ws_gateway_bridge(anvil_ws_gateway *w);

/* Interval of the per-stream `run.heartbeat`. */
#define ANVIL_RUN_EVENT_HEARTBEAT_MS 1000

/* A streamRunEvents subscription, as worked out by its handler. */
typedef struct anvil_ws_run_stream {
    const char *run_id;
    int64_t replay_after;         /* replay the log's events with seq > this */
    cJSON *gap_snapshot;          /* non-NULL: send run.gap_resync first; consumed */
    int64_t gap_from, gap_to;     /* its fromSeq / toSeq */
} anvil_ws_run_stream;

/* Register a run event stream on `conn` (anvil_call.conn of a WebSocket
 * call) and write its id into stream_id. Once the call's response has been
 * sent (and only if it succeeded), the stream sends run.gap_resync when
 * asked, then every logged event with seq > replay_after as run.event, then
 * each new event of the run live — exactly once, in seq order — and a
 * run.heartbeat every ANVIL_RUN_EVENT_HEARTBEAT_MS, until the connection
 * closes. 0, or -1 with err set; gap_snapshot is consumed either way. */
int anvil_ws_stream_run_events(void *conn, const anvil_ws_run_stream *rs, char stream_id[37],
                               anvil_error *err);

/* Register a DevTools stream (streamDevTools) on `conn` and write its id
 * into stream_id. Once the call's response has been sent (and only if it
 * succeeded), the stream sends the run's recorded frames with frameNo >
 * start_after as `devtools.event` — the first as a snapshot, each later
 * one as a delta against the previous (or a re-baseline snapshot, see
 * runtime/devtools.h) — then every new frame of the run live, exactly once
 * and in frameNo order, until the connection closes. 0, or -1 with err. */
int anvil_ws_stream_devtools(void *conn, const char *run_id, int64_t start_after, char stream_id[37],
                             anvil_error *err);

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

#endif
