/*
 * runtime/engine/engine_metrics.h — runs, approvals and signals as the
 * engine records them (docs/metrics.md).
 */
#ifndef ANVIL_ENGINE_METRICS_H
#define ANVIL_ENGINE_METRICS_H

#include <cjson/cJSON.h>

#include "metrics.h"

/* A run event that is durable and being published (loop thread). */
void anvil_engine_metrics_event(const char *event, const cJSON *payload);
/* A signal the engine accepted for a run. */
void anvil_engine_metrics_signal(void);

void anvil_engine_metrics_render(anvil_metrics_out *o);

#endif
