/*
 * runtime/base/metrics.h — counters, gauges and histograms for GET /metrics,
 * and the Prometheus text they are written as.
 *
 * Each layer keeps its own metrics as static storage next to the code that
 * counts them and writes them with the helpers below when the server
 * renders /metrics (docs/metrics.md). Updates are relaxed atomics: any
 * thread may count, nothing waits, and a reader sees each value whole
 * (not a snapshot of all of them together).
 */
#ifndef ANVIL_METRICS_H
#define ANVIL_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct anvil_counter {
    _Atomic uint64_t v;
} anvil_counter;

typedef struct anvil_gauge {
    _Atomic int64_t v;
} anvil_gauge;

/* Upper bounds of the duration buckets, in microseconds (le="..." in
 * seconds): 100 µs to 10 s, roughly 1-2.5-5 per decade. */
#define ANVIL_HISTOGRAM_BUCKETS 15
extern const int64_t anvil_histogram_bounds_us[ANVIL_HISTOGRAM_BUCKETS];

typedef struct anvil_histogram {
    _Atomic uint64_t buckets[ANVIL_HISTOGRAM_BUCKETS]; /* not cumulative */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
} anvil_histogram;

static inline void anvil_counter_add(anvil_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

static inline void anvil_counter_inc(anvil_counter *c)
{
    anvil_counter_add(c, 1);
}

static inline void anvil_gauge_add(anvil_gauge *g, int64_t delta)
{
    atomic_fetch_add_explicit(&g->v, delta, memory_order_relaxed);
}

static inline void anvil_gauge_set(anvil_gauge *g, int64_t v)
{
    atomic_store_explicit(&g->v, v, memory_order_relaxed);
}

void anvil_histogram_observe(anvil_histogram *h, int64_t us);

/* Microseconds on the monotonic clock, for durations. */
int64_t anvil_metrics_now_us(void);

/* The text being written: grows as needed. On out of memory it stops
 * growing and `failed` is set; the caller answers 500. Owned by the
 * caller: anvil_metrics_out_free releases `text`. */
typedef struct anvil_metrics_out {
    char *text;
    size_t len, cap;
    int failed;
} anvil_metrics_out;

void anvil_metrics_out_free(anvil_metrics_out *o);

/* `# HELP` and `# TYPE` lines (type: counter, gauge or histogram). */
void anvil_metrics_family(anvil_metrics_out *o, const char *name, const char *type,
                          const char *help);
/* One sample. `labels` is NULL or key, value, key, value, ..., NULL;
 * values are escaped as the format requires. */
void anvil_metrics_sample(anvil_metrics_out *o, const char *name, const char *const *labels,
                          double value);
/* A family with one unlabelled sample: its HELP, TYPE and value. */
void anvil_metrics_single(anvil_metrics_out *o, const char *name, const char *type,
                          const char *help, double value);

/* Several such families, from a table. */
typedef struct anvil_metric_value {
    const char *name, *type, *help;
    double value;
} anvil_metric_value;
void anvil_metrics_values(anvil_metrics_out *o, const anvil_metric_value *v, size_t n);
/* A histogram's _bucket lines (cumulative, with +Inf), _sum and _count. */
void anvil_metrics_histogram(anvil_metrics_out *o, const char *name, const char *const *labels,
                             const anvil_histogram *h);

static inline uint64_t anvil_counter_get(const anvil_counter *c)
{
    return atomic_load_explicit(&c->v, memory_order_relaxed);
}

static inline int64_t anvil_gauge_get(const anvil_gauge *g)
{
    return atomic_load_explicit(&g->v, memory_order_relaxed);
}

#endif
