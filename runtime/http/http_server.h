/*
 * runtime/http/http_server.h — HTTP/1.1 on libevent bufferevents.
 *
 * Owns sockets, request framing, bounds and deadlines; knows nothing about
 * RPC. Each complete request is handed to one synchronous handler that fills
 * the response, or defers it (anvil_http_defer) and answers later, while
 * the connection reads nothing more. Why not evhttp: libevent 2.1's evhttp answers an oversize
 * or over-long chunked body with its own HTML 413 (no error callback before
 * 2.2) and offers only idle timeouts, so a slow client trickling a header
 * byte at a time is never cut off. Both are contract requirements here
 * (docs/architecture.md).
 *
 * Ownership: anvil_http_server_new returns a server the caller frees with
 * anvil_http_server_free; request data is valid only during the handler call.
 */
#ifndef ANVIL_HTTP_SERVER_H
#define ANVIL_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/buffer.h>

#include "anvil_errors.h"
#include "http_parse.h"
#include "metrics.h"

typedef struct anvil_http_request {
    const anvil_http_head *head;
    const char *method;
    const char *path;          /* target up to '?' */
    const char *query;         /* after '?', or NULL */
    const char *body;          /* NUL-terminated; "" when there is none */
    size_t body_len;
    const char *peer;          /* "ip:port" */
} anvil_http_request;

#define ANVIL_HTTP_MAX_EXTRA_HEADERS 8

typedef struct anvil_http_response {
    int status;
    const char *content_type;  /* default "application/json" */
    struct evbuffer *body;     /* append here; owned by the server */
    struct { char name[48]; char value[208]; } headers[ANVIL_HTTP_MAX_EXTRA_HEADERS];
    size_t n_headers;
    /* Static strings, never freed: Cache-Control (NULL: "no-store", right
     * for every API answer), and further header lines ("Name: value\r\n"
     * each) too long for `headers`, such as a page's security policy. */
    const char *cache_control;
    const char *static_headers;
    bool close;                /* close the connection after this response */
    /* Set by the server; only anvil_http_defer uses them. */
    struct anvil_http_conn *conn;
    struct anvil_http_pending *deferred;
} anvil_http_response;

/* A request answered later. */
typedef struct anvil_http_pending anvil_http_pending;

/* In a handler: answer this request later, with anvil_http_pending_answer;
 * the handler leaves res alone. Until then nothing more is read from the
 * connection (pipelined requests wait their turn) and no deadline runs:
 * the work is bounded by whoever answers. NULL when out of memory (answer
 * now). */
anvil_http_pending *anvil_http_defer(anvil_http_response *res);

/* On the loop thread: send `res` (filled as a handler fills it; its body
 * stays the caller's) if the connection is still open, then read the next
 * request; res NULL (no answer could be made) closes the connection. Frees
 * p either way; exactly once per deferred request. */
void anvil_http_pending_answer(anvil_http_pending *p, anvil_http_response *res);

/* Add a header (ignored past ANVIL_HTTP_MAX_EXTRA_HEADERS or if too long;
 * returns -1 then so callers can notice). */
int anvil_http_response_header(anvil_http_response *res, const char *name, const char *value);

typedef void (*anvil_http_handler_fn)(void *ctx, const anvil_http_request *req,
                                      anvil_http_response *res);

/* Render an error the HTTP layer itself detected (bad framing, oversize body,
 * timeout). `head` is NULL when the head itself could not be parsed. */
typedef void (*anvil_http_reject_fn)(void *ctx, const anvil_http_head *head,
                                     anvil_error_code code, int http_status,
                                     const char *message, int64_t max_bytes,
                                     anvil_http_response *res);

/* Take over a socket after a WebSocket upgrade request (only those: see
 * anvil_http_wants_websocket and upgrade_path): the server forgets the fd
 * and passes the head and any bytes already read past it. It is called
 * only once the answers to every request pipelined before the upgrade have
 * been written to the socket, so none is lost. Return 0 if taken; -1 lets
 * the server answer `res` (filled by the callback) instead, and close. */
typedef int (*anvil_http_upgrade_fn)(void *ctx, evutil_socket_t fd,
                                     const anvil_http_request *req,
                                     const char *extra, size_t extra_len,
                                     anvil_http_response *res);

typedef struct anvil_http_options {
    uint64_t max_body_bytes;
    size_t max_head_bytes;          /* default 16 KiB */
    int64_t headers_timeout_ms;
    int64_t request_timeout_ms;
    int64_t keep_alive_timeout_ms;  /* idle time between requests */
    size_t max_connections;         /* open HTTP connections; 0 = no limit */
    anvil_http_handler_fn handler;
    anvil_http_reject_fn reject;
    anvil_http_upgrade_fn upgrade;  /* may be NULL: no upgrades */
    const char *upgrade_path;       /* the WebSocket's path; NULL = any path */
    bool access_log;                /* log a line per answered request */
    void *ctx;
} anvil_http_options;

typedef struct anvil_http_server anvil_http_server;

/* Bind host:port and start accepting on `base`. port 0 picks a free port
 * (see anvil_http_server_port). host NULL: no listener, connections come
 * only from anvil_http_server_adopt. Returns NULL with a message in err. */
anvil_http_server *anvil_http_server_new(struct event_base *base, const char *host, int port,
                                         const anvil_http_options *opt, char *err, size_t errlen);

/* Serve an already connected stream socket (made non-blocking here) as if
 * it had just been accepted, cap included. The server owns fd from here,
 * also when this fails (-1). Tests and the fuzzer drive the server over
 * socketpairs with it. */
int anvil_http_server_adopt(anvil_http_server *s, evutil_socket_t fd, const char *peer);

int anvil_http_server_port(const anvil_http_server *s);

/* Stop accepting; open connections finish their current response. */
void anvil_http_server_stop_accepting(anvil_http_server *s);

/* Number of open connections. */
size_t anvil_http_server_connections(const anvil_http_server *s);

void anvil_http_server_free(anvil_http_server *s);

/* The HTTP metrics (docs/metrics.md). */
void anvil_http_metrics_render(anvil_metrics_out *o);

#endif
