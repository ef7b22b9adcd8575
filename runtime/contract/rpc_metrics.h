/*
 * runtime/contract/rpc_metrics.h — RPC calls by method and outcome, and
 * their durations (docs/metrics.md).
 */
#ifndef ANVIL_RPC_METRICS_H
#define ANVIL_RPC_METRICS_H

#include <stdint.h>

#include "metrics.h"
#include "method.h"

/* One answered call: m NULL for a name the contract does not know, code -1
 * for a success, started_us from anvil_metrics_now_us. Any thread. */
void anvil_rpc_metrics_count(const anvil_method *m, int code, int64_t started_us);

/* anvil_rpc_calls_total and anvil_rpc_duration_seconds. */
void anvil_rpc_metrics_render(anvil_metrics_out *o);

#endif
