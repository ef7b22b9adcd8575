/*
 * handlers/health.c — `health`: the gateway is up; protocol, features,
 * state version and uptime. GET /health answers the same payload without
 * auth (runtime/server/http_routes.c).
 */
#include <stdlib.h>
#include <string.h>

#include "anvil_contract.h"
#include "anvil_handlers.h"
#include "call.h"
#include "config.h"
#include "engine.h"
#include "clock.h"

int anvil_handle_health(anvil_call *call, const anvil_health_request *req, anvil_health_response *res)
{
    (void)req;
    const anvil_config *cfg = call->svc->config;
    res->ok = true;
    res->api_version = strdup(ANVIL_API_VERSION);
    res->protocol = cfg->protocol;
    res->state_version = call->svc->engine ? anvil_engine_state_version(call->svc->engine) : 0;
    res->uptime_ms = anvil_mono_ms() - call->svc->started_mono_ms;
    if (!res->api_version)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
    if (cfg->n_features) {
        res->features.items = calloc(cfg->n_features, sizeof *res->features.items);
        if (!res->features.items)
            return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
        for (size_t i = 0; i < cfg->n_features; i++) {
            res->features.items[i] = strdup(cfg->features[i]);
            res->features.count = i + 1;
            if (!res->features.items[i])
                return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
        }
    }
    return 0;
}
