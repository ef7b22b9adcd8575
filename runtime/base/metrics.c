/*
 * runtime/base/metrics.c — metric storage updates and the Prometheus text
 * exposition format (version 0.0.4), see metrics.h.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const int64_t anvil_histogram_bounds_us[ANVIL_HISTOGRAM_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,
    100000, 250000, 500000, 1000000, 2500000, 10000000,
};

void anvil_histogram_observe(anvil_histogram *h, int64_t us)
{
    if (us < 0)
        us = 0;
    size_t i = 0;
    while (i < ANVIL_HISTOGRAM_BUCKETS && us > anvil_histogram_bounds_us[i])
        i++;
    /* Past the last bound only +Inf (the count) holds it. */
    if (i < ANVIL_HISTOGRAM_BUCKETS)
        atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)us, memory_order_relaxed);
}

int64_t anvil_metrics_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void anvil_metrics_out_free(anvil_metrics_out *o)
{
    free(o->text);
    *o = (anvil_metrics_out){ 0 };
}

static void put(anvil_metrics_out *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 8192;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *grown = realloc(o->text, cap);
        if (!grown) {
            o->failed = 1;
            return;
        }
        o->text = grown;
        o->cap = cap;
    }
    memcpy(o->text + o->len, s, n);
    o->len += n;
    o->text[o->len] = '\0';
}

static void puts_(anvil_metrics_out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void printf_(anvil_metrics_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void printf_(anvil_metrics_out *o, const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n >= 0)
        put(o, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

void anvil_metrics_family(anvil_metrics_out *o, const char *name, const char *type,
                          const char *help)
{
    puts_(o, "# HELP ");
    puts_(o, name);
    put(o, " ", 1);
    puts_(o, help);   /* our own text: no backslash or newline in it */
    puts_(o, "\n# TYPE ");
    puts_(o, name);
    put(o, " ", 1);
    puts_(o, type);
    put(o, "\n", 1);
}

/* `{k="v",...}` with the format's escapes (\\, \", \n); `extra` is one
 * more pair (le for buckets) or NULL. */
static void put_labels(anvil_metrics_out *o, const char *const *labels, const char *extra_key,
                       const char *extra_value)
{
    if (!(labels && labels[0]) && !extra_key)
        return;
    put(o, "{", 1);
    int first = 1;
    for (size_t i = 0; labels && labels[i]; i += 2) {
        if (!first)
            put(o, ",", 1);
        first = 0;
        puts_(o, labels[i]);
        puts_(o, "=\"");
        for (const char *p = labels[i + 1] ? labels[i + 1] : ""; *p; p++) {
            if (*p == '\\' || *p == '"')
                put(o, "\\", 1);
            if (*p == '\n')
                puts_(o, "\\n");
            else
                put(o, p, 1);
        }
        put(o, "\"", 1);
    }
    if (extra_key) {
        if (!first)
            put(o, ",", 1);
        puts_(o, extra_key);
        puts_(o, "=\"");
        puts_(o, extra_value);
        put(o, "\"", 1);
    }
    put(o, "}", 1);
}

void anvil_metrics_sample(anvil_metrics_out *o, const char *name, const char *const *labels,
                          double value)
{
    puts_(o, name);
    put_labels(o, labels, NULL, NULL);
    /* Counts as integers; other values (sums in seconds) to the microsecond
     * they were measured in. */
    if (value >= 0 && value < 9007199254740992.0 && value == (double)(uint64_t)value)
        printf_(o, " %llu\n", (unsigned long long)value);
    else
        printf_(o, " %.6f\n", value);
}

void anvil_metrics_single(anvil_metrics_out *o, const char *name, const char *type,
                          const char *help, double value)
{
    anvil_metrics_family(o, name, type, help);
    anvil_metrics_sample(o, name, NULL, value);
}

void anvil_metrics_values(anvil_metrics_out *o, const anvil_metric_value *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        anvil_metrics_single(o, v[i].name, v[i].type, v[i].help, v[i].value);
}

void anvil_metrics_histogram(anvil_metrics_out *o, const char *name, const char *const *labels,
                             const anvil_histogram *h)
{
    char bucket[160], le[32];
    snprintf(bucket, sizeof bucket, "%s_bucket", name);
    uint64_t cumulative = 0;
    /* The count first: a bucket read later may have grown, and a bucket
     * above the count would break the format's monotonicity. */
    uint64_t count = atomic_load_explicit(&h->count, memory_order_relaxed);
    for (size_t i = 0; i < ANVIL_HISTOGRAM_BUCKETS; i++) {
        cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (cumulative > count)
            cumulative = count;
        snprintf(le, sizeof le, "%g", (double)anvil_histogram_bounds_us[i] / 1e6);
        puts_(o, bucket);
        put_labels(o, labels, "le", le);
        printf_(o, " %llu\n", (unsigned long long)cumulative);
    }
    puts_(o, bucket);
    put_labels(o, labels, "le", "+Inf");
    printf_(o, " %llu\n", (unsigned long long)count);
    char sub[160];
    snprintf(sub, sizeof sub, "%s_sum", name);
    anvil_metrics_sample(o, sub, labels,
                         (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6);
    snprintf(sub, sizeof sub, "%s_count", name);
    anvil_metrics_sample(o, sub, labels, (double)count);
}
