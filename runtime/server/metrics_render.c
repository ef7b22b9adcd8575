/*
 * runtime/server/metrics_render.c — see metrics_render.h. The order is
 * the request's path through the server: connections, authentication,
 * calls, runs, schedules, storage.
 */
#include "metrics_render.h"

#include <time.h>

#include "auth.h"
#include "cron_sched.h"
#include "engine_metrics.h"
#include "http_server.h"
#include "rpc_metrics.h"
#include "store_txn.h"
#include "webhooks.h"
#include "ws_gateway.h"

static time_t started;

__attribute__((constructor)) static void note_start(void)
{
    started = time(NULL);
}

void anvil_gateway_metrics_render(const anvil_services *svc, anvil_metrics_out *o)
{
    (void)svc;
    anvil_metrics_single(o, "anvil_start_time_seconds", "gauge",
                         "When the server process started, in seconds since the epoch.",
                         (double)started);
    anvil_http_metrics_render(o);
    anvil_ws_metrics_render(o);
    anvil_auth_metrics_render(o);
    anvil_rpc_metrics_render(o);
    anvil_engine_metrics_render(o);
    anvil_cron_metrics_render(o);
    anvil_webhook_metrics_render(o);
    anvil_store_metrics_render(o);
}
