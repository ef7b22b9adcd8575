/*
 * runtime/contract/rpc_metrics.c — see rpc_metrics.h. One counter per
 * method and outcome (the contract's codes, plus ok), one histogram per
 * method; the last row is for names the contract does not know.
 */
#include "rpc_metrics.h"

#include "anvil_contract.h"
#include "anvil_errors.h"

#define UNKNOWN ANVIL_METHOD__COUNT
#define OK ANVIL_ERR__COUNT

static anvil_counter calls[ANVIL_METHOD__COUNT + 1][ANVIL_ERR__COUNT + 1];
static anvil_histogram durations[ANVIL_METHOD__COUNT + 1];

void anvil_rpc_metrics_count(const anvil_method *m, int code, int64_t started_us)
{
    unsigned row = m ? m->id : UNKNOWN;
    unsigned col = code < 0 || code >= ANVIL_ERR__COUNT ? OK : (unsigned)code;
    if (code >= ANVIL_ERR__COUNT)
        col = ANVIL_ERR_INTERNAL;
    anvil_counter_inc(&calls[row][col]);
    anvil_histogram_observe(&durations[row], anvil_metrics_now_us() - started_us);
}

static const char *method_name(unsigned row)
{
    return row == UNKNOWN ? "(unknown)" : anvil_methods[row].name;
}

void anvil_rpc_metrics_render(anvil_metrics_out *o)
{
    anvil_metrics_family(o, "anvil_rpc_calls_total", "counter",
                         "RPC calls answered, by method and outcome (ok or the error code).");
    for (unsigned r = 0; r <= UNKNOWN; r++)
        for (unsigned c = 0; c <= OK; c++) {
            uint64_t n = anvil_counter_get(&calls[r][c]);
            if (!n)
                continue;
            const char *labels[] = { "method", method_name(r), "outcome",
                                     c == OK ? "ok" : anvil_error_info_of((anvil_error_code)c)->code,
                                     NULL };
            anvil_metrics_sample(o, "anvil_rpc_calls_total", labels, (double)n);
        }
    anvil_metrics_family(o, "anvil_rpc_duration_seconds", "histogram",
                         "Time from a call's frame being read to its answer, by method.");
    for (unsigned r = 0; r <= UNKNOWN; r++) {
        if (!atomic_load_explicit(&durations[r].count, memory_order_relaxed))
            continue;
        const char *labels[] = { "method", method_name(r), NULL };
        anvil_metrics_histogram(o, "anvil_rpc_duration_seconds", labels, &durations[r]);
    }
}
