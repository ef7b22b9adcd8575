/*
 * runtime/ws/ws_gateway.c — the WebSocket protocol's public face (see
 * ws_gateway.h): create and free, shutdown, the connection table, and the
 * bridge's callbacks.
 *
 * Owns every ws_conn: created when the bridge reports a completed
 * handshake, freed when it reports the close. What happens on a
 * connection is in the other files (ws_gateway_internal.h lists them).
 * Must not handle a frame or an event itself.
 */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "engine.h"
#include "ws_gateway_internal.h"

#define PING_INTERVAL_S 30

/* ---------------------------------------------------------------- table */

static bool conn_has_id(const anvil_hnode *node, const void *key)
{
    return ANVIL_CONTAINER_OF(node, ws_conn, node)->id == *(const uint64_t *)key;
}

static ws_conn *conn_find(anvil_ws_gateway *w, uint64_t id)
{
    anvil_hnode *n = anvil_htab_find(&w->conns, anvil_hash_u64(id), conn_has_id, &id);
    return n ? ANVIL_CONTAINER_OF(n, ws_conn, node) : NULL;
}

static int conn_insert(anvil_ws_gateway *w, ws_conn *c)
{
    if (anvil_htab_insert(&w->conns, &c->node, anvil_hash_u64(c->id)) != 0)
        return -1;
    c->next = w->head;
    c->prev = NULL;
    if (w->head)
        w->head->prev = c;
    w->head = c;
    return 0;
}

static void conn_unlink(anvil_ws_gateway *w, ws_conn *c)
{
    anvil_htab_remove(&w->conns, &c->node);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

static void conn_free(ws_conn *c)
{
    if (c->deadline)
        event_free(c->deadline);
    ws_streams_free(c);
    anvil_principal_clear(&c->principal);
    anvil_strv_free(c->subs, c->n_subs);
    ws_free_headers(c);
    ws_free_held(c);
    ws_detach_replies(c);
    free(c);
}

/* ---------------------------------------------------------------- metrics */

/* docs/metrics.md. The frames out and the backpressure disconnects are
 * counted where they happen (ws_send.c). */
static anvil_gauge m_open;
static anvil_counter m_opened, m_frames_in;

void anvil_ws_metrics_render(anvil_metrics_out *o)
{
    const anvil_metric_value values[] = {
        { "anvil_ws_connections_open", "gauge",
          "WebSocket connections open now.",
          (double)anvil_gauge_get(&m_open) },
        { "anvil_ws_connections_accepted_total", "counter",
          "WebSocket connections opened since the start.",
          (double)anvil_counter_get(&m_opened) },
        { "anvil_ws_frames_received_total", "counter",
          "WebSocket text frames received.",
          (double)anvil_counter_get(&m_frames_in) },
    };
    anvil_metrics_values(o, values, sizeof values / sizeof values[0]);
    ws_send_metrics_render(o);
    anvil_metrics_single(o, "anvil_ws_outbound_queued_bytes", "gauge",
                         "Bytes of frames waiting to be sent, over all WebSocket connections " "(the event fan-out's queue).",
                         (double)anvil_ws_bridge_queued_bytes());
}

/* ---------------------------------------------------------------- bridge callbacks */

static void on_open(void *ctx, uint64_t conn_id, const anvil_http_request *req)
{
    anvil_ws_gateway *w = ctx;
    WS_ASSERT_CORE(w);
    ws_conn *c = calloc(1, sizeof *c);
    if (c) {
        c->id = conn_id;
        snprintf(c->log_id, sizeof c->log_id, "ws-%llu", (unsigned long long)conn_id);
        c->w = w;
        c->held_tail = &c->held;
    }
    if (!c || conn_insert(w, c) != 0) {
        free(c);
        anvil_ws_close(w->bridge, conn_id, 1011, "Internal");
        return;
    }
    anvil_gauge_add(&m_open, 1);
    anvil_counter_inc(&m_opened);
    ws_conn_open(c, req);
}

static void on_message(void *ctx, uint64_t conn_id, const char *data, size_t len)
{
    anvil_ws_gateway *w = ctx;
    WS_ASSERT_CORE(w);
    ws_conn *c = conn_find(w, conn_id);
    if (!c || c->closing)
        return;
    anvil_counter_inc(&m_frames_in);
    ws_handle_frame(c, data, len);
}

static void on_close(void *ctx, uint64_t conn_id, int code, const char *reason)
{
    (void)code;
    (void)reason;
    anvil_ws_gateway *w = ctx;
    WS_ASSERT_CORE(w);
    ws_conn *c = conn_find(w, conn_id);
    if (!c)
        return;
    anvil_gauge_add(&m_open, -1);
    conn_unlink(w, c);
    conn_free(c);
}

/* ---------------------------------------------------------------- lifecycle */

/* The bridge's refusal callback carries the protocol's ctx; hand the
 * rendering to the server's own. */
static void refuse_upgrade(void *ctx, const anvil_http_head *head, anvil_error_code code,
                           int http_status, const char *message, int64_t max_bytes,
                           anvil_http_response *res)
{
    anvil_ws_gateway *w = ctx;
    WS_ASSERT_CORE(w);
    w->refuse(w->refuse_ctx, head, code, http_status, message, max_bytes, res);
}

anvil_ws_gateway *anvil_ws_gateway_new(const anvil_ws_gateway_deps *deps, char *err, size_t errlen)
{
    anvil_ws_gateway *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->base = deps->base;
    w->core = pthread_self();
    w->svc = deps->svc;
    w->tokens = deps->tokens;
    w->refuse = deps->refuse;
    w->refuse_ctx = deps->refuse_ctx;
    const anvil_config *cfg = w->svc->config;
    if (anvil_events_subscribe(anvil_engine_bus(w->svc->engine), ws_on_bus_event, w) != 0) {
        anvil_ws_gateway_free(w);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->subscribed = true;
    if (cfg->heartbeat_ms > 0) {
        w->tick = event_new(w->base, -1, EV_PERSIST, ws_on_tick, w);
        struct timeval tv = { (time_t)(cfg->heartbeat_ms / 1000),
                              (suseconds_t)((cfg->heartbeat_ms % 1000) * 1000) };
        if (!w->tick || event_add(w->tick, &tv) != 0) {
            anvil_ws_gateway_free(w);
            snprintf(err, errlen, "cannot start the heartbeat timer");
            return NULL;
        }
    }
    /* Per-connection outbound queue: max(4 * maxPayload, 1 MiB). */
    size_t max_payload = cfg->max_payload > 0 ? (size_t)cfg->max_payload : 1024 * 1024;
    w->queue_limit = max_payload > SIZE_MAX / 4 ? SIZE_MAX : 4 * max_payload;
    if (w->queue_limit < 1024 * 1024)
        w->queue_limit = 1024 * 1024;
    anvil_ws_options opt = {
        .max_payload = max_payload,
        .max_queued_bytes_per_conn = w->queue_limit,
        .max_connections = cfg->max_connections > 0 ? (size_t)cfg->max_connections : 0,
        .ping_interval_s = PING_INTERVAL_S,
        .path = ANVIL_WS_PATH,
    };
    anvil_ws_callbacks cb = {
        .on_open = on_open, .on_message = on_message, .on_close = on_close,
        .refuse = refuse_upgrade, .ctx = w,
    };
    w->bridge = anvil_ws_bridge_new(w->base, &opt, &cb, err, errlen);
    if (!w->bridge) {
        anvil_ws_gateway_free(w);
        return NULL;
    }
    return w;
}

anvil_ws_bridge *anvil_ws_gateway_bridge(anvil_ws_gateway *w)
{
    if (!w)
        return NULL;
    WS_ASSERT_CORE(w);
    return w->bridge;
}

void anvil_ws_gateway_shutdown(anvil_ws_gateway *w)
{
    if (!w)
        return;
    WS_ASSERT_CORE(w);
    if (w->stopping)
        return;
    /* Answers to requests already received are queued inside this call,
     * ahead of the close frames. */
    anvil_ws_bridge_shutdown(w->bridge);
    w->stopping = true;
    if (w->tick)
        event_del(w->tick);
    for (ws_conn *c = w->head; c; c = c->next) {
        if (c->closing)
            continue;
        ws_conn_mark_closing(c);  /* the bridge sends 1001 after the queue */
    }
}

size_t anvil_ws_gateway_connections(const anvil_ws_gateway *w)
{
    if (!w)
        return 0;
    WS_ASSERT_CORE(w);
    return anvil_ws_connections(w->bridge);
}

void anvil_ws_gateway_free(anvil_ws_gateway *w)
{
    if (!w)
        return;
    WS_ASSERT_CORE(w);
    anvil_ws_bridge_free(w->bridge);   /* no callback runs after this */
    if (w->subscribed)
        anvil_events_unsubscribe(anvil_engine_bus(w->svc->engine), ws_on_bus_event, w);
    if (w->tick)
        event_free(w->tick);
    ws_conn *c = w->head;
    while (c) {
        ws_conn *n = c->next;
        conn_free(c);
        c = n;
    }
    anvil_htab_clear(&w->conns);
    free(w);
}
