/*
 * runtime/gateway.c — start and stop the server: store, listener, signals.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "gateway.h"
#include "http_routes.h"
#include "log.h"

static const anvil_token_store *token_store_of(anvil_gateway *gw);

static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    anvil_gateway *gw = arg;
    static int ticks;
    /* Connections finish the response they are writing; after ~2 s the
     * rest are dropped so a stuck client cannot hold shutdown. */
    if (anvil_http_server_connections(gw->http) == 0 || ++ticks > 40) {
        event_base_loopexit(gw->base, NULL);
        return;
    }
    struct timeval tv = { 0, 50000 };
    evtimer_add(gw->drain_timer, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    anvil_gateway *gw = arg;
    anvil_log(ANVIL_LOG_INFO, "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    anvil_http_server_stop_accepting(gw->http);
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
    gw->started_ms = anvil_now_ms();
    gw->started_mono_ms = anvil_mono_ms();

    char serr[256];
    if (anvil_store_open(gw->cfg.database, &gw->store, serr, sizeof serr) != 0) {
        snprintf(err, errlen, "%s", serr);   /* the store's message names the file */
        anvil_gateway_free(gw);
        return NULL;
    }
    if (anvil_engine_new(base, gw->store, &gw->cfg, &gw->engine, diags, err, errlen) != 0) {
        anvil_gateway_free(gw);
        return NULL;
    }
    anvil_http_options opt = {
        .max_body_bytes = (uint64_t)gw->cfg.max_body_bytes,
        .headers_timeout_ms = gw->cfg.headers_timeout_ms,
        .request_timeout_ms = gw->cfg.request_timeout_ms,
        .handler = anvil_routes_handle,
        .reject = anvil_routes_reject,
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
    (void)token_store_of;
    return gw;
}

static const anvil_token_store *token_store_of(anvil_gateway *gw)
{
    static anvil_token_store ts;
    ts.lookup = anvil_store_token_lookup;
    ts.revoked = anvil_store_token_revoked;
    ts.ctx = gw->store;
    return &ts;
}

const anvil_token_store *anvil_gateway_token_store(anvil_gateway *gw)
{
    return token_store_of(gw);
}

void anvil_gateway_free(anvil_gateway *gw)
{
    if (!gw)
        return;
    anvil_http_server_free(gw->http);
    anvil_engine_free(gw->engine);
    if (gw->sigint)
        event_free(gw->sigint);
    if (gw->sigterm)
        event_free(gw->sigterm);
    if (gw->drain_timer)
        event_free(gw->drain_timer);
    anvil_store_close(gw->store);
    anvil_config_clear(&gw->cfg);
    free(gw);
}
