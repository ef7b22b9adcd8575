/*
 * runtime/server/metrics_render.h — the whole GET /metrics text: every
 * layer's metrics in one Prometheus exposition (docs/metrics.md).
 */
#ifndef ANVIL_METRICS_RENDER_H
#define ANVIL_METRICS_RENDER_H

#include "call.h"
#include "metrics.h"

/* Appends to *o (the caller frees it; o->failed on out of memory). */
void anvil_gateway_metrics_render(const anvil_services *svc, anvil_metrics_out *o);

#endif
