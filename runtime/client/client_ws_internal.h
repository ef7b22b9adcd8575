/*
 * runtime/client/client_ws_internal.h — the WebSocket connection's layout,
 * shared by client_ws.c (the connection, blocking use) and
 * client_ws_loop.c (an event loop attached to it). Included only from this
 * folder.
 *
 * Threads: everything here is touched by one thread at a time: the owner
 * while it is used blocking, the loop's service thread while a loop is
 * attached. on_wake runs on the service thread, from lws_service, when
 * another thread called lws_cancel_service.
 */
#ifndef ANVIL_CLIENT_WS_INTERNAL_H
#define ANVIL_CLIENT_WS_INTERNAL_H

#include <stddef.h>

#include "client_ws.h"

struct lws_context;
struct lws;

typedef struct anvil_client_ws_msg {
    struct anvil_client_ws_msg *next;
    cJSON *frame;          /* incoming */
    char *text;            /* outgoing, with LWS_PRE bytes in front */
    size_t len;
} anvil_client_ws_msg;

typedef enum anvil_client_ws_state { WS_CONNECTING, WS_OPEN, WS_CLOSED } anvil_client_ws_state;

struct anvil_client_ws {
    anvil_client *c;
    struct lws_context *ctx;
    struct lws *wsi;
    anvil_client_ws_state state;
    char close_reason[256];
    char *rx;                                  /* a message being reassembled */
    size_t rx_len, rx_cap;
    anvil_client_ws_msg *in_head, *in_tail;    /* frames received, not yet taken */
    anvil_client_ws_msg *out_head, *out_tail;  /* frames to write */
    unsigned long next_id;
    void (*on_wake)(anvil_client_ws *ws);      /* set while a loop is attached */
    void *loop;                                /* that loop */
};

/* Queue a text frame and ask for a writable callback. Returns 0 or -1
 * (out of memory). */
int anvil_client_ws_queue_text(anvil_client_ws *ws, const char *text);

#endif
