/*
 * runtime/ws/ws_bridge.h — WebSocket connections served by one libwebsockets
 * thread, exchanged with the libevent (core) thread as whole text messages.
 *
 * Debian's libwebsockets 4.1 is built without libevent and without external
 * poll support, so the bridge owns one lws context and the single thread
 * that services it. anvil_ws_bridge_upgrade (an anvil_http_upgrade_fn) takes
 * a socket from runtime/http_server.c after an Upgrade request; the lws
 * thread adopts it and performs the WebSocket handshake. From then on the
 * threads exchange whole messages through two mutex-guarded queues:
 * lws -> core wakes the event loop through a pipe the core watches (so the
 * bridge works whether or not libevent threading is enabled), core -> lws
 * wakes the service with lws_cancel_service().
 *
 * Threading: every function here and every callback runs on the core
 * thread, the one running the event_base given to anvil_ws_bridge_new.
 * Nothing here may be called from another thread, and anvil_ws_bridge_free
 * must not be called from inside a callback.
 *
 * Ownership: the bridge owns its sockets, the lws context and thread, and
 * every queued message (anvil_ws_send copies). Data passed to a callback is
 * valid only during the call.
 */
#ifndef ANVIL_WS_BRIDGE_H
#define ANVIL_WS_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "http_server.h"

typedef struct anvil_ws_bridge anvil_ws_bridge;

typedef struct anvil_ws_callbacks {
    /* After the handshake completed. req (head, path, query, peer) is valid
     * during the call; req->body is "". */
    void (*on_open)(void *ctx, uint64_t conn_id, const anvil_http_request *req);
    /* One whole, reassembled, UTF-8-validated text message (NUL-terminated
     * for convenience; len excludes the NUL). */
    void (*on_message)(void *ctx, uint64_t conn_id, const char *data, size_t len);
    /* The connection is gone; called once for every connection that got
     * on_open. code is the peer's close code, the one we sent, or 1006 when
     * the socket died without a close handshake. reason is never NULL. */
    void (*on_close)(void *ctx, uint64_t conn_id, int code, const char *reason);
    /* Optional: render the body of a refused upgrade (same contract as the
     * HTTP server's reject callback; head is never NULL). NULL = a small
     * built-in JSON body. */
    anvil_http_reject_fn refuse;
    void *ctx;
} anvil_ws_callbacks;

typedef struct anvil_ws_options {
    size_t max_payload;               /* largest inbound message; 0 = 1 MiB. Larger -> close 1009 */
    size_t max_connections;           /* open + handshaking; 0 = 1024. Beyond -> HTTP 503 */
    size_t max_queued_bytes_per_conn; /* outbound backlog; 0 = 4 MiB. Beyond -> anvil_ws_send fails */
    int ping_interval_s;              /* idle seconds before a PING; 0 = 30; < 0 = never.
                                       * No valid traffic for 2 * interval + 1 s hangs up. */
    const char *path;                 /* only this request path is upgraded (404 otherwise);
                                       * NULL = any path */
} anvil_ws_options;

/* Create the bridge on `base` and start the lws thread. Returns NULL with a
 * message in err. */
anvil_ws_bridge *anvil_ws_bridge_new(struct event_base *base, const anvil_ws_options *o,
                                     const anvil_ws_callbacks *cb, char *err, size_t errlen);

/* An anvil_http_upgrade_fn (pass the bridge as the server's ctx, or call it
 * from your own upgrade callback). Returns 0 when the socket was taken (it
 * belongs to the bridge even if the handshake later fails); -1 with res
 * filled when refused: 400 for a request that is not a valid WebSocket
 * upgrade, 404 outside options.path, 503 when max_connections are open or
 * handshaking. */
int anvil_ws_bridge_upgrade(void *bridge, evutil_socket_t fd, const anvil_http_request *req,
                            const char *extra, size_t extra_len, anvil_http_response *res);

/* Queue one text message (copied). Returns -1 when the connection is gone,
 * closing, or its outbound backlog would exceed max_queued_bytes_per_conn
 * (nothing is queued then; the caller decides, typically anvil_ws_close). */
int anvil_ws_send(anvil_ws_bridge *b, uint64_t conn_id, const char *text, size_t len);

/* The last message of a connection: queue it after the queued messages,
 * past max_queued_bytes_per_conn (keep it small), then close with code and
 * reason (as anvil_ws_close). A peer that has not taken the backlog, this
 * message and the close frame within ~30 s is dropped; on_close then reports this code and reason.
 * Used when anvil_ws_send failed for backlog, to tell the peer why.
 * Returns -1 when the connection is gone or already closing. */
int anvil_ws_send_final(anvil_ws_bridge *b, uint64_t conn_id, const char *text, size_t len,
                        int code, const char *reason);

/* Send a close frame with code (1000..4999; others become 1000) and reason
 * (truncated to 123 bytes, non-printable-ASCII bytes become '?') after the
 * messages already queued, then drop the connection. on_close still
 * follows. Unknown ids are ignored. */
void anvil_ws_close(anvil_ws_bridge *b, uint64_t conn_id, int code, const char *reason);

/* Connections counted against max_connections: handshaking, open, and
 * closed ones whose on_close has not been delivered yet. */
size_t anvil_ws_connections(const anvil_ws_bridge *b);

/* Begin a graceful shutdown (idempotent): refuse further upgrades (503),
 * deliver the messages already received (callbacks run during this call,
 * so their answers are queued first), then have every connection send what
 * it has queued and a close frame 1001 "server shutting down". Sends fail
 * from here on. Keep running the event loop for on_close (watch
 * anvil_ws_connections); the lws thread gives peers ~2 s. Not from inside
 * a callback. */
void anvil_ws_bridge_shutdown(anvil_ws_bridge *b);

/* Send close frames (1001) to every open connection, wait up to ~2 s for
 * them to finish, join the thread and free everything. No callback runs
 * during or after this call. Free the HTTP server (or otherwise stop
 * upgrade calls) first: the bridge pointer is dangling afterwards. NULL is
 * ignored. */
void anvil_ws_bridge_free(anvil_ws_bridge *b);

/* Bytes waiting in all connections' outbound queues now (any thread). */
int64_t anvil_ws_bridge_queued_bytes(void);

#endif
