/*
 * runtime/ws/ws_bridge.c — the libwebsockets service thread and the two
 * message queues between it and the libevent (core) thread.
 *
 * Owns: the lws context, vhost and service thread; every WebSocket socket
 * from the moment anvil_ws_bridge_upgrade accepts it; the per-connection
 * reassembly buffers and outbound queues; the wake pipe the core watches.
 *
 * Threads and data: a ws_conn is created by the core thread (upgrade),
 * published in the id table under b->mu, and destroyed only by the lws
 * thread (finish_conn), which first removes it from the table under b->mu.
 * The core thread therefore touches a ws_conn only while holding b->mu and
 * only after a table lookup. Fields are grouped below by who may use them.
 * Events to the core (open, message, closed) are queued in order under
 * b->mu and carry their own copies of the data. These rules are asserted
 * (Debug builds): ASSERT_LOCKED where b->mu must be held, ASSERT_CORE and
 * ASSERT_LWS where only one thread may be.
 *
 * Memory per idle connection is dominated by lws (the wsi and the
 * protocol's rx buffer, rx_buffer_size bytes), so that buffer is kept
 * small; fragmented and chunked messages are reassembled here, up to
 * max_payload, in a buffer that exists only while a message is incoming.
 */
#include "ws_bridge.h"
#include "metrics.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "htab.h"
#include "log.h"

#define WS_RX_BUFFER 512          /* lws per-connection rx buffer (see file comment) */
#define WS_TX_CHUNK 16384         /* outbound messages are written in frames this big */
#define WS_REASON_MAX 123         /* close frame payload is at most 125 bytes */
#define WS_SHUTDOWN_GRACE_MS 2000
#define WS_FINAL_GRACE_S 30       /* a final message + close must be written by then */
#define WS_KEY_MAX 64

enum { WS_EV_OPEN, WS_EV_MESSAGE, WS_EV_CLOSED };

typedef struct ws_msg {
    struct ws_msg *next;
    size_t len;
    unsigned char buf[];          /* LWS_PRE bytes of headroom, then len bytes */
} ws_msg;

typedef struct ws_event {
    struct ws_event *next;
    int kind;
    uint64_t id;
    int code;
    bool opened;
    char *data;                   /* message text, or the open info */
    size_t len;
    char reason[WS_REASON_MAX + 1];
} ws_event;

typedef struct ws_conn {
    uint64_t id;
    /* --- under b->mu --- */
    anvil_hnode node;             /* in b->table, by id */
    struct ws_conn *pnext;        /* pending list for the lws thread */
    bool pending;
    ws_msg *out_head, *out_tail;
    size_t out_bytes;
    size_t in_bytes;              /* delivered to the core queue, not consumed yet */
    bool paused;                  /* lws stopped reading; core asks to resume */
    bool resume_req;
    bool close_req;
    bool final_req;               /* anvil_ws_send_final: arm the kill timeout */
    int close_code;
    char close_reason[WS_REASON_MAX + 1];
    /* Hand-off, written by the core before publishing; then lws-thread only
     * (open_info is moved into the open event under b->mu). */
    struct ws_conn *cnext;        /* core-only list of conns not published yet */
    evutil_socket_t fd;
    char *lws_head;               /* what lws parses: a minimal upgrade head + extra bytes */
    size_t lws_head_len;
    char *open_info;              /* full original head, NUL, peer, NUL */
    size_t open_head_len;
    /* --- lws thread only --- */
    struct lws *wsi;
    bool adopted, opened, closing;
    int end_code;
    char end_reason[WS_REASON_MAX + 1];
    char *rx;
    size_t rx_len, rx_cap;
    size_t tx_off;                /* bytes of out_head already written */
} ws_conn;

struct anvil_ws_bridge {
    struct event_base *base;
    anvil_ws_options opt;
    anvil_ws_callbacks cb;
    char *path;

    /* core thread only */
    pthread_t core;               /* the thread that created the bridge and runs base */
    bool stopping;                /* anvil_ws_bridge_shutdown was called */
    size_t count;
    uint64_t next_id;
    struct event *wake_ev;
    int wake_rd;
    struct event *handoff_ev;
    ws_conn *handoff_head;        /* taken sockets the server has not detached yet */

    /* lws objects: created before the thread starts, destroyed after join */
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct lws_protocols protocols[2];
    lws_retry_bo_t retry;
    pthread_t thread;
    bool thread_started;
    bool thread_gone;             /* joined (or never started): lws runs on the core now */

    /* lws thread only */
    ws_conn *adopting;
    bool adopting_finished;
    bool shutdown_seen;

    /* under mu */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    anvil_htab table;             /* every published ws_conn, by id */
    ws_conn *pend_head, *pend_tail;
    ws_event *ev_head, *ev_tail;
    bool core_signaled;           /* a wake byte is in the pipe */
    bool lws_signaled;            /* lws_cancel_service pending */
    bool shutdown;
    bool thread_done;
    int wake_wr;
};

/* ------------------------------------------------------------------ */
/* Threads and the lock                                                 */

/* Which bridge's lws thread this is (NULL on every other thread), and
 * which bridge mutex this thread holds: thread-local, so the asserts read
 * no shared state. */
static _Thread_local const anvil_ws_bridge *tls_lws_of;
static _Thread_local const pthread_mutex_t *tls_mu_held;

/* The core thread: the one that created the bridge and runs its base. */
#define ASSERT_CORE(b) assert(pthread_equal(pthread_self(), (b)->core))
/* The lws thread; after it was joined, lws_context_destroy runs the same
 * callbacks on the core thread, alone. */
#define ASSERT_LWS(b) assert(tls_lws_of == (b) || (b)->thread_gone)
#define ASSERT_LOCKED(b) assert(tls_mu_held == &(b)->mu)

static void lock(anvil_ws_bridge *b)
{
    /* Never nested: the mutex is not recursive, and no thread needs two
     * bridges' locks. */
    assert(tls_mu_held == NULL);
    pthread_mutex_lock(&b->mu);
    tls_mu_held = &b->mu;
}

static void unlock(anvil_ws_bridge *b)
{
    ASSERT_LOCKED(b);
    tls_mu_held = NULL;
    pthread_mutex_unlock(&b->mu);
}

/* ------------------------------------------------------------------ */
/* Shared helpers (callers hold b->mu where noted)                      */

static bool conn_has_id(const anvil_hnode *node, const void *key)
{
    return ANVIL_CONTAINER_OF(node, ws_conn, node)->id == *(const uint64_t *)key;
}

/* b->mu held. */
static ws_conn *table_find(const anvil_ws_bridge *b, uint64_t id)
{
    ASSERT_LOCKED(b);
    anvil_hnode *n = anvil_htab_find(&b->table, anvil_hash_u64(id), conn_has_id, &id);
    return n ? ANVIL_CONTAINER_OF(n, ws_conn, node) : NULL;
}

/* b->mu held. -1 when out of memory. */
static int table_insert(anvil_ws_bridge *b, ws_conn *c)
{
    ASSERT_LOCKED(b);
    return anvil_htab_insert(&b->table, &c->node, anvil_hash_u64(c->id));
}

/* b->mu held. */
static void table_remove(anvil_ws_bridge *b, ws_conn *c)
{
    ASSERT_LOCKED(b);
    anvil_htab_remove(&b->table, &c->node);
}

/* b->mu held. Queue c for the lws thread; true when the caller must call
 * lws_cancel_service (after unlocking). */
static bool mark_pending(anvil_ws_bridge *b, ws_conn *c)
{
    ASSERT_LOCKED(b);
    if (!c->pending) {
        c->pending = true;
        c->pnext = NULL;
        if (b->pend_tail)
            b->pend_tail->pnext = c;
        else
            b->pend_head = c;
        b->pend_tail = c;
    }
    if (b->lws_signaled)
        return false;
    b->lws_signaled = true;
    return true;
}

/* b->mu held. */
static void unlink_pending(anvil_ws_bridge *b, ws_conn *c)
{
    ASSERT_LOCKED(b);
    if (!c->pending)
        return;
    ws_conn *prev = NULL;
    for (ws_conn *e = b->pend_head; e; prev = e, e = e->pnext) {
        if (e == c) {
            if (prev)
                prev->pnext = e->pnext;
            else
                b->pend_head = e->pnext;
            if (b->pend_tail == e)
                b->pend_tail = prev;
            break;
        }
    }
    c->pending = false;
    c->pnext = NULL;
}

static void copy_reason(char *dst, const char *src, size_t len)
{
    if (len > WS_REASON_MAX)
        len = WS_REASON_MAX;
    /* Keep it printable ASCII: reasons end up in logs. */
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)src[i];
        dst[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    dst[len] = '\0';
}

/* Bytes waiting in every connection's outbound queue (docs/metrics.md);
 * both threads move it, hence the atomic. */
static anvil_gauge m_queued;

int64_t anvil_ws_bridge_queued_bytes(void)
{
    return anvil_gauge_get(&m_queued);
}

static void free_conn(ws_conn *c)
{
    for (ws_msg *m = c->out_head, *next; m; m = next) {
        next = m->next;
        anvil_gauge_add(&m_queued, -(int64_t)m->len);
        free(m);
    }
    free(c->lws_head);
    free(c->open_info);
    free(c->rx);
    free(c);
}

static void free_event(ws_event *e)
{
    free(e->data);
    free(e);
}

/* ------------------------------------------------------------------ */
/* lws thread                                                           */

/* b->mu held. Queue an event for the core and, unless one is already
 * pending, write the wake byte (non-blocking, so fine under the lock). */
static void push_event_locked(anvil_ws_bridge *b, ws_event *e)
{
    ASSERT_LOCKED(b);
    e->next = NULL;
    if (b->ev_tail)
        b->ev_tail->next = e;
    else
        b->ev_head = e;
    b->ev_tail = e;
    if (!b->core_signaled && b->wake_wr >= 0) {
        b->core_signaled = true;
        char one = 1;
        ssize_t w = write(b->wake_wr, &one, 1);
        (void)w; /* non-blocking; a full pipe already wakes the core */
    }
}

/* The wsi is gone (or was never created): unpublish c, tell the core, free. */
static void finish_conn(anvil_ws_bridge *b, ws_conn *c)
{
    ASSERT_LWS(b);
    ws_event *e = calloc(1, sizeof *e);
    lock(b);
    table_remove(b, c);
    unlink_pending(b, c);
    if (e) {
        e->kind = WS_EV_CLOSED;
        e->id = c->id;
        e->opened = c->opened;
        e->code = c->end_code ? c->end_code : LWS_CLOSE_STATUS_ABNORMAL_CLOSE;
        snprintf(e->reason, sizeof e->reason, "%s",
                 c->end_code ? c->end_reason : "connection lost");
        push_event_locked(b, e);
    }
    unlock(b);
    /* Without the event the core would never release the slot; there is no
     * way to report that, so the count stays high (logged by nobody). */
    if (c == b->adopting)
        b->adopting_finished = true;
    if (c->wsi)
        lws_set_opaque_user_data(c->wsi, NULL);
    free_conn(c);
}

static void adopt(anvil_ws_bridge *b, ws_conn *c)
{
    ASSERT_LWS(b);
    c->adopted = true;
    b->adopting = c;
    b->adopting_finished = false;
    /* lws may run the whole handshake (and callbacks) before returning; the
     * callback binds the new wsi to b->adopting by its fd. */
    struct lws *wsi = lws_adopt_socket_vhost_readbuf(b->vh, c->fd, c->lws_head, c->lws_head_len);
    bool finished = b->adopting_finished;
    b->adopting = NULL;
    if (finished)
        return;
    free(c->lws_head);
    c->lws_head = NULL;
    if (!wsi) {
        /* lws closed the fd. */
        c->end_code = LWS_CLOSE_STATUS_ABNORMAL_CLOSE;
        snprintf(c->end_reason, sizeof c->end_reason, "handshake failed");
        finish_conn(b, c);
        return;
    }
    if (!c->wsi) {
        c->wsi = wsi;
        lws_set_opaque_user_data(wsi, c);
    }
}

static void shutdown_conn_locked(anvil_hnode *node, void *ctx)
{
    anvil_ws_bridge *b = ctx;
    ws_conn *c = ANVIL_CONTAINER_OF(node, ws_conn, node);
    if (!c->close_req) {
        c->close_req = true;
        c->close_code = LWS_CLOSE_STATUS_GOINGAWAY;
        snprintf(c->close_reason, sizeof c->close_reason, "server shutting down");
    }
    /* No lws_cancel_service: we are the lws thread and drain the queue
     * right away. */
    (void)mark_pending(b, c);
}

/* b->mu held. */
static void begin_shutdown_locked(anvil_ws_bridge *b)
{
    ASSERT_LWS(b);
    ASSERT_LOCKED(b);
    anvil_htab_each(&b->table, shutdown_conn_locked, b);
}

static void drain_pending(anvil_ws_bridge *b)
{
    ASSERT_LWS(b);
    lock(b);
    b->lws_signaled = false;
    if (b->shutdown && !b->shutdown_seen) {
        b->shutdown_seen = true;
        begin_shutdown_locked(b);
        b->lws_signaled = false;
    }
    unlock(b);

    for (;;) {
        lock(b);
        ws_conn *c = b->pend_head;
        if (c) {
            b->pend_head = c->pnext;
            if (!b->pend_head)
                b->pend_tail = NULL;
            c->pending = false;
            c->pnext = NULL;
        }
        bool resume = c && c->resume_req;
        bool final = c && c->final_req;
        bool shutdown = b->shutdown;
        int final_code = c ? c->close_code : 0;
        char final_reason[WS_REASON_MAX + 1] = "";
        if (c) {
            c->resume_req = false;
            c->final_req = false;
            if (final)
                memcpy(final_reason, c->close_reason, sizeof final_reason);
        }
        unlock(b);
        if (!c)
            break;
        if (!c->adopted) {
            if (shutdown) {
                close(c->fd);
                c->adopted = true;
                c->end_code = LWS_CLOSE_STATUS_GOINGAWAY;
                snprintf(c->end_reason, sizeof c->end_reason, "server shutting down");
                finish_conn(b, c);
            } else {
                adopt(b, c);
            }
            continue;
        }
        if (!c->wsi)
            continue;
        if (resume)
            lws_rx_flow_control(c->wsi, 1);
        if (final && c->opened) {
            /* The peer may have stopped reading altogether: if the final
             * message and the close frame cannot be written in time, drop
             * the socket (on_close still reports the code we chose). */
            c->end_code = final_code;
            snprintf(c->end_reason, sizeof c->end_reason, "%s", final_reason);
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, WS_FINAL_GRACE_S);
        }
        if (c->opened)
            lws_callback_on_writable(c->wsi);
        else if (shutdown)
            /* Still in the HTTP handshake: no close frame to send. */
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
}

/* Close from inside a callback: record, set the close frame, return -1. */
static int close_with(ws_conn *c, struct lws *wsi, int code, const char *reason)
{
    c->closing = true;
    c->end_code = code;
    copy_reason(c->end_reason, reason, strlen(reason));
    lws_close_reason(wsi, (enum lws_close_status)code, (unsigned char *)c->end_reason,
                     strlen(c->end_reason));
    return -1;
}

static int on_writeable(anvil_ws_bridge *b, ws_conn *c, struct lws *wsi)
{
    ASSERT_LWS(b);
    lock(b);
    ws_msg *m = c->out_head;
    bool close_req = c->close_req;
    int code = c->close_code;
    char reason[WS_REASON_MAX + 1];
    memcpy(reason, c->close_reason, sizeof reason);
    unlock(b);

    if (!m) {
        if (close_req)
            return close_with(c, wsi, code, reason);
        return 0;
    }
    size_t off = c->tx_off;
    size_t chunk = m->len - off;
    if (chunk > WS_TX_CHUNK)
        chunk = WS_TX_CHUNK;
    bool last = off + chunk == m->len;
    int flags = lws_write_ws_flags(LWS_WRITE_TEXT, off == 0, last);
    if (lws_write(wsi, m->buf + LWS_PRE + off, chunk, (enum lws_write_protocol)flags) < (int)chunk) {
        c->end_code = LWS_CLOSE_STATUS_ABNORMAL_CLOSE;
        snprintf(c->end_reason, sizeof c->end_reason, "write failed");
        return -1;
    }
    bool more = true;
    if (last) {
        c->tx_off = 0;
        lock(b);
        c->out_head = m->next;
        if (!c->out_head)
            c->out_tail = NULL;
        c->out_bytes -= m->len;
        anvil_gauge_add(&m_queued, -(int64_t)m->len);
        more = c->out_head != NULL || c->close_req;
        unlock(b);
        free(m);
    } else {
        c->tx_off = off + chunk;
    }
    if (more)
        lws_callback_on_writable(wsi);
    return 0;
}

static int on_receive(anvil_ws_bridge *b, ws_conn *c, struct lws *wsi, const char *in, size_t len)
{
    ASSERT_LWS(b);
    if (c->closing)
        return 0;
    if (lws_is_first_fragment(wsi))
        c->rx_len = 0;
    if (lws_frame_is_binary(wsi))
        return close_with(c, wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
                          "binary messages are not supported");
    size_t max = b->opt.max_payload;
    size_t remaining = lws_remaining_packet_payload(wsi);
    if (len > max || remaining > max || c->rx_len > max - len ||
        c->rx_len + len > max - remaining) {
        char why[WS_REASON_MAX + 1];
        snprintf(why, sizeof why, "message exceeds maxPayload (%zu bytes)", max);
        return close_with(c, wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, why);
    }
    size_t need = c->rx_len + len + remaining + 1;
    if (need > c->rx_cap) {
        size_t ncap = c->rx_cap ? c->rx_cap : 256;
        while (ncap < need)
            ncap *= 2;
        if (ncap > max + 1)
            ncap = max + 1;
        char *nb = realloc(c->rx, ncap);
        if (!nb)
            return close_with(c, wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        c->rx = nb;
        c->rx_cap = ncap;
    }
    if (len)
        memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (!lws_is_final_fragment(wsi))
        return 0;

    ws_event *e = calloc(1, sizeof *e);
    if (!e)
        return close_with(c, wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
    c->rx[c->rx_len] = '\0';
    e->kind = WS_EV_MESSAGE;
    e->id = c->id;
    e->data = c->rx;
    e->len = c->rx_len;
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
    lock(b);
    c->in_bytes += e->len + 1;
    /* A slow core must not let one client queue unbounded input: stop
     * reading until the core has consumed what it has. */
    bool pause = c->in_bytes > max && !c->paused;
    if (pause)
        c->paused = true;
    push_event_locked(b, e);
    unlock(b);
    if (pause)
        lws_rx_flow_control(wsi, 0);
    return 0;
}

static int on_established(anvil_ws_bridge *b, ws_conn *c, struct lws *wsi)
{
    ASSERT_LWS(b);
    ws_event *e = calloc(1, sizeof *e);
    if (!e)
        return close_with(c, wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
    c->opened = true;
    lock(b);
    e->kind = WS_EV_OPEN;
    e->id = c->id;
    e->data = c->open_info;
    e->len = c->open_head_len;
    c->open_info = NULL;
    bool writable = c->out_head || c->close_req;
    push_event_locked(b, e);
    unlock(b);
    if (writable)
        lws_callback_on_writable(wsi);
    return 0;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    struct lws_context *ctx = wsi ? lws_get_context(wsi) : NULL;
    anvil_ws_bridge *b = ctx ? lws_context_user(ctx) : NULL;
    if (!b)
        return lws_callback_http_dummy(wsi, reason, user, in, len);

    if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
        drain_pending(b);
        return 0;
    }

    ws_conn *c = lws_get_opaque_user_data(wsi);
    if (!c && b->adopting && !b->adopting->wsi && lws_get_socket_fd(wsi) == b->adopting->fd) {
        c = b->adopting;
        c->wsi = wsi;
        lws_set_opaque_user_data(wsi, c);
    }

    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        /* Only WebSocket upgrades reach us; refuse anything else (h2c). */
        return (in && strcmp((const char *)in, "websocket") == 0) ? 0 : 1;
    case LWS_CALLBACK_HTTP:
        /* A plain request: never handed over by the bridge. */
        return -1;
    case LWS_CALLBACK_ADD_HEADERS: {
        struct lws_process_html_args *args = in;
        if (args && lws_add_http_header_by_name(wsi, (const unsigned char *)"X-Smithers-API-Version:",
                                                (const unsigned char *)"v1", 2,
                                                (unsigned char **)&args->p,
                                                (unsigned char *)args->p + args->max_len))
            return 1;
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED:
        return c ? on_established(b, c, wsi) : -1;
    case LWS_CALLBACK_RECEIVE:
        return c ? on_receive(b, c, wsi, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return c ? on_writeable(b, c, wsi) : 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c && !c->closing) {
            const unsigned char *p = in;
            c->closing = true;
            if (p && len >= 2) {
                c->end_code = p[0] << 8 | p[1];
                copy_reason(c->end_reason, (const char *)p + 2, len - 2);
            } else {
                c->end_code = LWS_CLOSE_STATUS_NO_STATUS;
                c->end_reason[0] = '\0';
            }
        }
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (c)
            finish_conn(b, c);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static void *lws_thread_main(void *arg)
{
    anvil_ws_bridge *b = arg;
    tls_lws_of = b;
    struct timespec start = { 0, 0 };
    bool stopping = false;
    for (;;) {
        if (lws_service(b->ctx, 0) < 0)
            break;
        lock(b);
        bool shutdown = b->shutdown;
        size_t live = b->table.count;
        unlock(b);
        if (!shutdown)
            continue;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!stopping) {
            stopping = true;
            start = now;
        }
        long ms = (long)(now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (live == 0 || ms >= WS_SHUTDOWN_GRACE_MS)
            break;
    }
    lock(b);
    b->thread_done = true;
    pthread_cond_signal(&b->cond);
    unlock(b);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Core thread                                                          */

static void deliver_open(anvil_ws_bridge *b, ws_event *e)
{
    char *buf = e->data;
    const char *peer = buf ? buf + e->len + 1 : "";
    anvil_http_head head;
    memset(&head, 0, sizeof head);
    const char *why = NULL;
    char fallback_method[] = "GET", fallback_target[] = "/";
    if (!buf || anvil_http_parse_head(buf, e->len, &head, &why) != ANVIL_HTTP_PARSE_OK) {
        memset(&head, 0, sizeof head);
        head.method = fallback_method;
        head.target = fallback_target;
        head.version_minor = 1;
    }
    const char *q = strchr(head.target, '?');
    size_t plen = q ? (size_t)(q - head.target) : strlen(head.target);
    char *path = malloc(plen + 1);
    if (path) {
        memcpy(path, head.target, plen);
        path[plen] = '\0';
    }
    anvil_http_request req = {
        .head = &head, .method = head.method, .path = path ? path : "/",
        .query = q ? q + 1 : NULL, .body = "", .body_len = 0, .peer = peer,
    };
    if (b->cb.on_open)
        b->cb.on_open(b->cb.ctx, e->id, &req);
    free(path);
}

/* Deliver every event the lws thread has queued so far. */
static void deliver_events(anvil_ws_bridge *b)
{
    ASSERT_CORE(b);
    lock(b);
    b->core_signaled = false;
    ws_event *list = b->ev_head;
    b->ev_head = b->ev_tail = NULL;
    unlock(b);

    while (list) {
        ws_event *e = list;
        list = e->next;
        switch (e->kind) {
        case WS_EV_OPEN:
            deliver_open(b, e);
            break;
        case WS_EV_MESSAGE: {
            bool wake = false;
            lock(b);
            ws_conn *c = table_find(b, e->id);
            if (c) {
                c->in_bytes -= e->len + 1;
                if (c->paused && c->in_bytes <= b->opt.max_payload / 2) {
                    c->paused = false;
                    c->resume_req = true;
                    wake = mark_pending(b, c);
                }
            }
            unlock(b);
            if (wake)
                lws_cancel_service(b->ctx);
            if (b->cb.on_message)
                b->cb.on_message(b->cb.ctx, e->id, e->data ? e->data : "", e->len);
            break;
        }
        case WS_EV_CLOSED:
            if (b->count)
                b->count--;
            if (e->opened && b->cb.on_close)
                b->cb.on_close(b->cb.ctx, e->id, e->code, e->reason);
            break;
        default:
            break;
        }
        free_event(e);
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    anvil_ws_bridge *b = arg;
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    deliver_events(b);
}

static void refuse(anvil_ws_bridge *b, const anvil_http_request *req, anvil_http_response *res,
                   int status, anvil_error_code code, const char *name, const char *message)
{
    res->status = status;
    if (b->cb.refuse) {
        b->cb.refuse(b->cb.ctx, req->head, code, status, message, 0, res);
    } else {
        evbuffer_add_printf(res->body, "{\"ok\":false,\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
                            name, message);
    }
    res->status = status;
    res->close = true;
}

/* Append "Name: value\r\n" to a growing buffer. */
typedef struct strbuf {
    char *p;
    size_t len, cap;
    bool failed;
} strbuf;

static void sb_add(strbuf *s, const char *data, size_t len)
{
    if (s->failed)
        return;
    if (s->len + len + 1 > s->cap) {
        size_t ncap = s->cap ? s->cap : 512;
        while (ncap < s->len + len + 1)
            ncap *= 2;
        char *np = realloc(s->p, ncap);
        if (!np) {
            s->failed = true;
            return;
        }
        s->p = np;
        s->cap = ncap;
    }
    memcpy(s->p + s->len, data, len);
    s->len += len;
    s->p[s->len] = '\0';
}

static void sb_str(strbuf *s, const char *str)
{
    sb_add(s, str, strlen(str));
}

static bool valid_key(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > WS_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)key[i];
        if (!(ch >= 'A' && ch <= 'Z') && !(ch >= 'a' && ch <= 'z') && !(ch >= '0' && ch <= '9') &&
            ch != '+' && ch != '/' && ch != '=')
            return false;
    }
    return true;
}

int anvil_ws_bridge_upgrade(void *bridge, evutil_socket_t fd, const anvil_http_request *req,
                            const char *extra, size_t extra_len, anvil_http_response *res)
{
    anvil_ws_bridge *b = bridge;
    ASSERT_CORE(b);
    const anvil_http_head *h = req->head;
    const char *key = anvil_http_header_get(h, "Sec-WebSocket-Key");
    const char *version = anvil_http_header_get(h, "Sec-WebSocket-Version");

    if (!h->method || strcmp(h->method, "GET") != 0 || h->version_minor < 1 ||
        !anvil_http_header_has_token(h, "Upgrade", "websocket") || !key ||
        anvil_http_header_count(h, "Sec-WebSocket-Key") != 1 || !valid_key(key)) {
        refuse(b, req, res, 400, ANVIL_ERR_INVALID_REQUEST, "InvalidRequest",
               "Not a valid WebSocket upgrade request");
        return -1;
    }
    if (!version || strcmp(version, "13") != 0) {
        refuse(b, req, res, 400, ANVIL_ERR_INVALID_REQUEST, "InvalidRequest",
               "Unsupported Sec-WebSocket-Version (13 is supported)");
        anvil_http_response_header(res, "Sec-WebSocket-Version", "13");
        return -1;
    }
    if (b->path && strcmp(req->path, b->path) != 0) {
        refuse(b, req, res, 404, ANVIL_ERR_NOT_FOUND, "NotFound",
               "No WebSocket endpoint at this path");
        return -1;
    }
    if (b->stopping) {
        refuse(b, req, res, 503, ANVIL_ERR_BUSY, "Busy", "The server is shutting down");
        return -1;
    }
    if (b->count >= b->opt.max_connections) {
        refuse(b, req, res, 503, ANVIL_ERR_BUSY, "Busy",
               "Too many WebSocket connections; retry later");
        anvil_http_response_header(res, "Retry-After", "1");
        return -1;
    }

    /* What lws parses: only what the handshake needs, so its small header
     * buffer always fits. The application gets the full head at on_open.
     * lws 4.1 fails the handshake without a Host header ("handshake_04
     * missing pieces") but does not otherwise use it. */
    strbuf lh = { 0 };
    sb_str(&lh, "GET / HTTP/1.1\r\nHost: anvil\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ");
    sb_str(&lh, key);
    sb_str(&lh, "\r\n\r\n");
    if (extra_len)
        sb_add(&lh, extra, extra_len);

    strbuf oh = { 0 };
    sb_str(&oh, h->method);
    sb_str(&oh, " ");
    sb_str(&oh, h->target);
    sb_str(&oh, h->version_minor ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n");
    for (size_t i = 0; i < h->n_headers; i++) {
        sb_str(&oh, h->headers[i].name);
        sb_str(&oh, ": ");
        sb_str(&oh, h->headers[i].value);
        sb_str(&oh, "\r\n");
    }
    sb_str(&oh, "\r\n");
    size_t open_head_len = oh.len;
    sb_add(&oh, "", 1); /* NUL after the head, then the peer */
    sb_str(&oh, req->peer ? req->peer : "");

    ws_conn *c = calloc(1, sizeof *c);
    if (!c || lh.failed || oh.failed || !b->handoff_ev) {
        free(c);
        free(lh.p);
        free(oh.p);
        refuse(b, req, res, 503, ANVIL_ERR_INTERNAL, "Internal", "Out of memory");
        return -1;
    }
    c->id = ++b->next_id;
    c->fd = fd;
    c->lws_head = lh.p;
    c->lws_head_len = lh.len;
    c->open_info = oh.p;
    c->open_head_len = open_head_len;

    /* The HTTP server still has the fd registered with libevent until this
     * callback returns (it detaches it right after). Publishing it to the
     * lws thread now would let lws close it, and the number be reused,
     * before that detach (seen under TSan). So hand it over from the loop,
     * once the current callback chain has finished. */
    c->cnext = b->handoff_head;
    b->handoff_head = c;
    event_active(b->handoff_ev, EV_TIMEOUT, 0);
    b->count++;
    return 0;
}

static void on_handoff(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    anvil_ws_bridge *b = arg;
    ASSERT_CORE(b);
    ws_conn *list = b->handoff_head;
    b->handoff_head = NULL;
    bool wake = false;
    while (list) {
        ws_conn *c = list;
        list = c->cnext;
        c->cnext = NULL;
        lock(b);
        int rc = table_insert(b, c);
        if (rc == 0)
            wake |= mark_pending(b, c);
        unlock(b);
        if (rc != 0) {
            close(c->fd);
            free_conn(c);
            b->count--;
        }
    }
    if (wake)
        lws_cancel_service(b->ctx);
}

/* A queued outbound message with LWS_PRE bytes of headroom, as lws_write
 * wants; NULL when out of memory or absurdly large. */
static ws_msg *msg_new(const char *text, size_t len)
{
    if (len > SIZE_MAX - sizeof(ws_msg) - LWS_PRE)
        return NULL;
    ws_msg *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m)
        return NULL;
    m->next = NULL;
    m->len = len;
    if (len)
        memcpy(m->buf + LWS_PRE, text, len);
    return m;
}

/* Append to a connection's outbound queue; the caller holds b->mu. */
static void queue_append(ws_conn *c, ws_msg *m)
{
    if (c->out_tail)
        c->out_tail->next = m;
    else
        c->out_head = m;
    c->out_tail = m;
    c->out_bytes += m->len;
    anvil_gauge_add(&m_queued, (int64_t)m->len);
}

int anvil_ws_send(anvil_ws_bridge *b, uint64_t conn_id, const char *text, size_t len)
{
    if (!b)
        return -1;
    ASSERT_CORE(b);
    ws_msg *m = msg_new(text, len);
    if (!m)
        return -1;

    lock(b);
    ws_conn *c = table_find(b, conn_id);
    if (!c || c->close_req || b->shutdown || c->out_bytes + len > b->opt.max_queued_bytes_per_conn) {
        unlock(b);
        free(m);
        return -1;
    }
    queue_append(c, m);
    bool wake = mark_pending(b, c);
    unlock(b);
    if (wake)
        lws_cancel_service(b->ctx);
    return 0;
}

int anvil_ws_send_final(anvil_ws_bridge *b, uint64_t conn_id, const char *text, size_t len,
                       int code, const char *reason)
{
    if (!b)
        return -1;
    ASSERT_CORE(b);
    if (code < 1000 || code > 4999 || code == 1005 || code == 1006 || code == 1015)
        code = LWS_CLOSE_STATUS_NORMAL;
    ws_msg *m = msg_new(text, len);
    if (!m)
        return -1;

    lock(b);
    ws_conn *c = table_find(b, conn_id);
    if (!c || c->close_req || b->shutdown) {
        unlock(b);
        free(m);
        return -1;
    }
    queue_append(c, m);
    c->close_req = true;
    c->final_req = true;
    c->close_code = code;
    copy_reason(c->close_reason, reason ? reason : "", reason ? strlen(reason) : 0);
    bool wake = mark_pending(b, c);
    unlock(b);
    if (wake)
        lws_cancel_service(b->ctx);
    return 0;
}

void anvil_ws_bridge_shutdown(anvil_ws_bridge *b)
{
    if (!b)
        return;
    ASSERT_CORE(b);
    if (b->stopping)
        return;
    b->stopping = true;
    /* Messages already received are handled first, so their answers are
     * queued ahead of the close frames. */
    deliver_events(b);
    if (!b->thread_started)
        return;
    lock(b);
    b->shutdown = true;
    b->lws_signaled = true;
    unlock(b);
    lws_cancel_service(b->ctx);
}

void anvil_ws_close(anvil_ws_bridge *b, uint64_t conn_id, int code, const char *reason)
{
    if (!b)
        return;
    ASSERT_CORE(b);
    if (code < 1000 || code > 4999 || code == 1005 || code == 1006 || code == 1015)
        code = LWS_CLOSE_STATUS_NORMAL;
    lock(b);
    ws_conn *c = table_find(b, conn_id);
    bool wake = false;
    if (c && !c->close_req) {
        c->close_req = true;
        c->close_code = code;
        copy_reason(c->close_reason, reason ? reason : "", reason ? strlen(reason) : 0);
        wake = mark_pending(b, c);
    }
    unlock(b);
    if (wake)
        lws_cancel_service(b->ctx);
}

size_t anvil_ws_connections(const anvil_ws_bridge *b)
{
    if (!b)
        return 0;
    ASSERT_CORE(b);
    return b->count;
}

/* Route lws's own errors and warnings to our log. lws 4.1.6 logs
 * "adopt_socket_readbuf: calling service" at error level on every adoption
 * (a leftover debug line); that one is dropped. */
static void lws_log_emit(int level, const char *line)
{
    if (strstr(line, "adopt_socket_readbuf: calling service"))
        return;
    const char *msg = strstr(line, "] ");
    msg = msg ? msg + 2 : line;
    int len = (int)strcspn(msg, "\r\n");
    anvil_log(level & LLL_ERR ? ANVIL_LOG_ERROR : ANVIL_LOG_WARN, "lws: %.*s", len, msg);
}

static int set_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    int fdfl = fcntl(fd, F_GETFD);
    if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0)
        return -1;
    return 0;
}

anvil_ws_bridge *anvil_ws_bridge_new(struct event_base *base, const anvil_ws_options *o,
                                     const anvil_ws_callbacks *cb, char *err, size_t errlen)
{
    anvil_ws_bridge *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->base = base;
    b->core = pthread_self();
    if (o)
        b->opt = *o;
    if (cb)
        b->cb = *cb;
    if (!b->opt.max_payload)
        b->opt.max_payload = 1024 * 1024;
    if (!b->opt.max_connections)
        b->opt.max_connections = 1024;
    if (!b->opt.max_queued_bytes_per_conn)
        b->opt.max_queued_bytes_per_conn = 4 * 1024 * 1024;
    if (!b->opt.ping_interval_s)
        b->opt.ping_interval_s = 30;
    if (b->opt.ping_interval_s > 30000)
        b->opt.ping_interval_s = 30000;
    b->wake_rd = b->wake_wr = -1;
    b->opt.path = NULL;
    if (o && o->path && !(b->path = strdup(o->path))) {
        snprintf(err, errlen, "out of memory");
        free(b);
        return NULL;
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cond, NULL);

    int p[2];
    if (pipe(p) != 0) {
        snprintf(err, errlen, "ws bridge: %s", strerror(errno));
        anvil_ws_bridge_free(b);
        return NULL;
    }
    b->wake_rd = p[0];
    b->wake_wr = p[1];
    if (set_nonblock_cloexec(p[0]) != 0 || set_nonblock_cloexec(p[1]) != 0 ||
        !(b->wake_ev = event_new(base, b->wake_rd, EV_READ | EV_PERSIST, on_wake, b)) ||
        event_add(b->wake_ev, NULL) != 0 ||
        !(b->handoff_ev = event_new(base, -1, 0, on_handoff, b))) {
        snprintf(err, errlen, "ws bridge: cannot watch the wake pipe");
        anvil_ws_bridge_free(b);
        return NULL;
    }

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);

    b->protocols[0].name = "anvil";
    b->protocols[0].callback = ws_callback;
    b->protocols[0].rx_buffer_size = WS_RX_BUFFER;
    b->protocols[0].tx_packet_size = WS_TX_CHUNK;

    if (b->opt.ping_interval_s > 0) {
        b->retry.secs_since_valid_ping = (uint16_t)b->opt.ping_interval_s;
        b->retry.secs_since_valid_hangup = (uint16_t)(b->opt.ping_interval_s * 2 + 1);
    }

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.user = b;
    info.gid = -1;
    info.uid = -1;
    /* Bound lws's fd tables (by default sized to the process fd limit). */
    info.fd_limit_per_thread = (unsigned int)(b->opt.max_connections + 32);
    b->ctx = lws_create_context(&info);
    if (!b->ctx) {
        snprintf(err, errlen, "ws bridge: lws_create_context failed");
        anvil_ws_bridge_free(b);
        return NULL;
    }
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.protocols = b->protocols;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.vhost_name = "anvil";
    info.timeout_secs = 10;
    info.retry_and_idle_policy = b->opt.ping_interval_s > 0 ? &b->retry : NULL;
    b->vh = lws_create_vhost(b->ctx, &info);
    if (!b->vh) {
        snprintf(err, errlen, "ws bridge: lws_create_vhost failed");
        anvil_ws_bridge_free(b);
        return NULL;
    }
    if (pthread_create(&b->thread, NULL, lws_thread_main, b) != 0) {
        snprintf(err, errlen, "ws bridge: cannot start the lws thread");
        anvil_ws_bridge_free(b);
        return NULL;
    }
    b->thread_started = true;
    return b;
}

/* At free, single-threaded: what lws_context_destroy left in the table. */
static void free_table_conn(anvil_hnode *node, void *ctx)
{
    (void)ctx;
    ws_conn *c = ANVIL_CONTAINER_OF(node, ws_conn, node);
    if (!c->adopted)
        close(c->fd);
    free_conn(c);
}

void anvil_ws_bridge_free(anvil_ws_bridge *b)
{
    if (!b)
        return;
    ASSERT_CORE(b);
    if (b->thread_started) {
        lock(b);
        b->shutdown = true;
        b->lws_signaled = true;
        unlock(b);
        lws_cancel_service(b->ctx);
        /* The lws thread sleeps until an event; keep poking it so it can
         * notice the grace period ending. */
        lock(b);
        while (!b->thread_done) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&b->cond, &b->mu, &ts);
            if (!b->thread_done) {
                unlock(b);
                lws_cancel_service(b->ctx);
                lock(b);
            }
        }
        unlock(b);
        pthread_join(b->thread, NULL);
    }
    b->thread_gone = true;
    /* Single-threaded from here on. lws_context_destroy closes what is left
     * and runs WSI_DESTROY (finish_conn) for it here. */
    if (b->ctx)
        lws_context_destroy(b->ctx);
    anvil_htab_each(&b->table, free_table_conn, NULL);
    anvil_htab_clear(&b->table);
    for (ws_event *e = b->ev_head, *next; e; e = next) {
        next = e->next;
        free_event(e);
    }
    for (ws_conn *c = b->handoff_head, *next; c; c = next) {
        next = c->cnext;
        close(c->fd);
        free_conn(c);
    }
    if (b->handoff_ev)
        event_free(b->handoff_ev);
    if (b->wake_ev)
        event_free(b->wake_ev);
    if (b->wake_rd >= 0)
        close(b->wake_rd);
    if (b->wake_wr >= 0)
        close(b->wake_wr);
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->mu);
    free(b->path);
    free(b);
}
