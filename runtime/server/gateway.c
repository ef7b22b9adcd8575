/*
 * runtime/server/gateway.c — start and stop the server: store, listener, signals.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "anvil_handlers.h"
#include "clock.h"
#include "cron_sched.h"
#include "gateway.h"
#include "http_routes.h"
#include "log.h"
#include "store_txn.h"
#include "ws_gateway.h"

/* Is this browser Origin allowed to open the WebSocket? Same origin as the
 * Host (http or https), or listed in allowedOrigins ("*" = any; in
 * trusted-proxy mode the proxy's allowedOrigins count too). */
static bool origin_allowed(const anvil_gateway *gw, const char *origin, const char *host)
{
    if (host && *host) {
        static const char *const schemes[] = { "http://", "https://" };
        for (size_t i = 0; i < 2; i++) {
            size_t n = strlen(schemes[i]);
            if (strncasecmp(origin, schemes[i], n) == 0 && strcasecmp(origin + n, host) == 0)
                return true;
        }
    }
    for (size_t i = 0; i < gw->cfg.n_allowed_origins; i++)
        if (strcmp(gw->cfg.allowed_origins[i], "*") == 0 ||
            strcasecmp(gw->cfg.allowed_origins[i], origin) == 0)
            return true;
    if (gw->cfg.auth.mode == ANVIL_AUTH_TRUSTED_PROXY) {
        const anvil_proxy_config *p = &gw->cfg.auth.proxy;
        for (size_t i = 0; i < p->n_allowed_origins; i++)
            if (strcmp(p->allowed_origins[i], "*") == 0 || strcasecmp(p->allowed_origins[i], origin) == 0)
                return true;
    }
    return false;
}

/* The HTTP server's upgrade callback: the server has one ctx (the
 * gateway), so this forwards to the bridge after the Origin check. Only
 * websocket upgrades on ANVIL_WS_PATH get here (upgrade_path below). */
static int gateway_upgrade(void *ctx, evutil_socket_t fd, const anvil_http_request *req,
                           const char *extra, size_t extra_len, anvil_http_response *res)
{
    anvil_gateway *gw = ctx;
    anvil_ws_bridge *b = anvil_ws_gateway_bridge(gw->ws);
    const char *origin = anvil_http_header_get(req->head, "Origin");
    if (b && origin &&
        !origin_allowed(gw, origin, anvil_http_header_get(req->head, "Host"))) {
        anvil_log(ANVIL_LOG_INFO, "WebSocket upgrade from %s refused: Origin %.200s not allowed",
                  req->peer, origin);
        anvil_routes_reject(gw, req->head, ANVIL_ERR_FORBIDDEN, 403,
                            "Origin not allowed for the WebSocket", 0, res);
        res->status = 403;
        res->close = true;
        return -1;
    }
    if (!b) {
        anvil_routes_reject(gw, req->head, ANVIL_ERR_INTERNAL, 503, "WebSocket unavailable", 0, res);
        res->status = 503;
        res->close = true;
        return -1;
    }
    return anvil_ws_bridge_upgrade(b, fd, req, extra, extra_len, res);
}

/* Group commit (store_txn.h): the changes made while this turn's ready
 * events ran share one commit, made once they have all run (an event made
 * active now is queued behind them). */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    anvil_gateway *gw = arg;
    anvil_store_flush(gw->store);
}

static void batch_opened(void *ctx)
{
    anvil_gateway *gw = ctx;
    event_active(gw->flush_ev, 0, 0);
}

/* The HTTP server has one ctx (the gateway); requests go to the routes. */
static void on_request(void *ctx, const anvil_http_request *req, anvil_http_response *res)
{
    anvil_gateway *gw = ctx;
    anvil_routes_handle(&gw->routes, req, res);
}

/* How long closing connections may take (HTTP answers being written,
 * WebSocket close handshakes) before the rest are dropped, and how long
 * interrupted tasks get to exit after the kill. */
#define CONN_DRAIN_MS 2000
#define KILL_WAIT_MS 2000
#define DRAIN_TICK_MS 50

/* The shutdown sequence (docs/runs.md#shutdown): connections finish what
 * they were doing; running tasks get shutdownGraceMs to finish; what
 * still runs then is killed and recorded as interrupted, so the next
 * start runs it again without using a retry. */
static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    anvil_gateway *gw = arg;
    int64_t waited = anvil_mono_ms() - gw->drain_started_ms;
    int64_t grace = gw->drain_grace_ms;
    size_t tasks = gw->engine ? anvil_engine_running_tasks(gw->engine) : 0;
    if (tasks && waited >= grace && !gw->tasks_interrupted) {
        anvil_log(ANVIL_LOG_INFO, "shutdown: %zu task(s) still running after %lld ms; "
                  "interrupting them (they run again at the next start)", tasks, (long long)grace);
        anvil_engine_interrupt_tasks(gw->engine);
        gw->tasks_interrupted = true;
    }
    bool conns_done = (anvil_http_server_connections(gw->http) == 0 &&
                       anvil_ws_gateway_connections(gw->ws) == 0) || waited >= CONN_DRAIN_MS;
    bool tasks_done = tasks == 0 || waited >= grace + KILL_WAIT_MS;
    if (conns_done && tasks_done) {
        event_base_loopexit(gw->base, NULL);
        return;
    }
    struct timeval tv = { 0, DRAIN_TICK_MS * 1000 };
    evtimer_add(gw->drain_timer, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    anvil_gateway *gw = arg;
    if (gw->draining) {
        /* A second signal: stop waiting for tasks. */
        anvil_log(ANVIL_LOG_INFO, "received %s again: interrupting running tasks now",
                  sig == SIGINT ? "SIGINT" : "SIGTERM");
        gw->drain_grace_ms = 0;
        return;
    }
    gw->draining = true;
    gw->drain_grace_ms = gw->cfg.shutdown_grace_ms;
    anvil_log(ANVIL_LOG_INFO, "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    anvil_http_server_stop_accepting(gw->http);
    /* Upgrades are refused from now on; answers already due go out, then
     * every WebSocket gets a close frame 1001. No task attempt starts. */
    anvil_ws_gateway_shutdown(gw->ws);
    if (gw->engine)
        anvil_engine_drain(gw->engine);
    /* No schedule fires into a stopping server; a missed one fires once at
     * the next start (docs/cron.md). */
    anvil_cron_sched_stop(&gw->cron);
    gw->drain_started_ms = anvil_mono_ms();
    if (!gw->drain_timer)
        gw->drain_timer = evtimer_new(gw->base, on_drain, gw);
    if (gw->drain_timer) {
        on_drain(-1, 0, gw);
    } else {
        event_base_loopexit(gw->base, NULL);
    }
}

anvil_gateway *anvil_gateway_start(struct event_base *base, anvil_config *cfg,
                                   anvil_diags *diags, char *err, size_t errlen)
{
    anvil_gateway *gw = calloc(1, sizeof *gw);
    if (!gw) {
        snprintf(err, errlen, "out of memory");
        anvil_config_clear(cfg);
        return NULL;
    }
    gw->base = base;
    gw->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);

    char serr[256];
    if (anvil_store_open(gw->cfg.database, &gw->store, serr, sizeof serr) != 0) {
        snprintf(err, errlen, "%s", serr);   /* the store's message names the file */
        anvil_gateway_free(gw);
        return NULL;
    }
    gw->flush_ev = event_new(base, -1, 0, on_flush, gw);
    if (!gw->flush_ev) {
        snprintf(err, errlen, "out of memory");
        anvil_gateway_free(gw);
        return NULL;
    }
    anvil_store_group_commit(gw->store, batch_opened, gw);
    if (anvil_engine_new(base, gw->store, &gw->cfg, &gw->engine, diags, err, errlen) != 0) {
        anvil_gateway_free(gw);
        return NULL;
    }
    gw->svc = (anvil_services){
        .config = &gw->cfg, .store = gw->store, .engine = gw->engine,
        .started_ms = anvil_now_ms(), .started_mono_ms = anvil_mono_ms(),
        .handlers = anvil_handler_table,
    };
    gw->tokens = (anvil_token_store){
        .lookup = anvil_store_token_lookup, .revoked = anvil_store_token_revoked, .ctx = gw->store,
    };
    /* Config schedules become rows gateway:<name>; the poll timer starts. */
    gw->cron = (anvil_cron_sched){
        .base = base, .cfg = &gw->cfg, .store = gw->store, .engine = gw->engine,
    };
    if (anvil_cron_sched_start(&gw->cron, err, errlen) != 0) {
        anvil_gateway_free(gw);
        return NULL;
    }
    anvil_ws_gateway_deps deps = {
        .base = base, .svc = &gw->svc, .tokens = &gw->tokens,
        .refuse = anvil_routes_reject, .refuse_ctx = gw,
    };
    gw->ws = anvil_ws_gateway_new(&deps, err, errlen);
    if (!gw->ws) {
        anvil_gateway_free(gw);
        return NULL;
    }
    gw->routes = (anvil_routes){ .svc = &gw->svc, .tokens = &gw->tokens };
    anvil_http_options opt = {
        .max_body_bytes = (uint64_t)gw->cfg.max_body_bytes,
        .headers_timeout_ms = gw->cfg.headers_timeout_ms,
        .request_timeout_ms = gw->cfg.request_timeout_ms,
        .max_connections = gw->cfg.max_http_connections > 0 ? (size_t)gw->cfg.max_http_connections : 0,
        .handler = on_request,
        .reject = anvil_routes_reject,
        .upgrade = gateway_upgrade,
        .upgrade_path = ANVIL_WS_PATH,
        .access_log = gw->cfg.access_log,
        .ctx = gw,
    };
    gw->http = anvil_http_server_new(base, gw->cfg.listen_host, gw->cfg.listen_port, &opt, err, errlen);
    if (!gw->http) {
        anvil_gateway_free(gw);
        return NULL;
    }
    gw->sigint = evsignal_new(base, SIGINT, on_signal, gw);
    gw->sigterm = evsignal_new(base, SIGTERM, on_signal, gw);
    if (!gw->sigint || !gw->sigterm || evsignal_add(gw->sigint, NULL) != 0 ||
        evsignal_add(gw->sigterm, NULL) != 0) {
        snprintf(err, errlen, "cannot install signal handlers");
        anvil_gateway_free(gw);
        return NULL;
    }
    return gw;
}

void anvil_gateway_free(anvil_gateway *gw)
{
    if (!gw)
        return;
    /* What the last turn changed is committed while those waiting for it
     * (answers, event streams) are all still there. */
    if (gw->store)
        anvil_store_flush(gw->store);
    anvil_http_server_free(gw->http);
    anvil_ws_gateway_free(gw->ws);     /* after the server: no more upgrades */
    anvil_cron_sched_stop(&gw->cron);
    anvil_engine_free(gw->engine);
    if (gw->sigint)
        event_free(gw->sigint);
    if (gw->sigterm)
        event_free(gw->sigterm);
    if (gw->drain_timer)
        event_free(gw->drain_timer);
    anvil_store_close(gw->store);
    if (gw->flush_ev)
        event_free(gw->flush_ev);
    anvil_config_clear(&gw->cfg);
    free(gw);
}
