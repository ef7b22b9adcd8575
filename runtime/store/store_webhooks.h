/*
 * runtime/store/store_webhooks.h — webhook deliveries (migration 7).
 *
 * A signed webhook delivery that carries a delivery id gets its first
 * answer recorded here, keyed by (workflow, delivery id), so a redelivery
 * is answered from the record instead of being acted on again. What a
 * delivery did is keyed too, in the rows that did it (a started run's
 * idempotency_key, a signal's delivery_key), so a delivery whose answer was
 * never recorded (a crash, a failed write) is recognised from its effects;
 * anvil_store_signals_by_delivery reads those. See docs/webhooks.md.
 *
 * Rows live for a retention window chosen by the caller: lookups ignore
 * older rows, and anvil_store_webhook_deliveries_prune deletes them a
 * bounded batch at a time. Records filled by lookups are caller-owned
 * (anvil_webhook_delivery_clear); callback records are valid during the
 * callback only.
 */
#ifndef ANVIL_STORE_WEBHOOKS_H
#define ANVIL_STORE_WEBHOOKS_H

#include <stdint.h>

#include "store.h"

/* The recorded answer to one delivery. */
typedef struct anvil_webhook_delivery {
    int64_t received_at_ms;
    char *body_sha256;          /* hex SHA-256 of the body it answered */
    int status;                 /* HTTP status of the answer */
    char *reply_json;           /* the answer's body, byte for byte */
} anvil_webhook_delivery;

void anvil_webhook_delivery_clear(anvil_webhook_delivery *d);

/* The answer recorded for (workflow, delivery_id) at or after since_ms
 * (older rows are past the retention window and count as absent): 1 (and
 * *out filled), 0, -1. One primary-key probe. */
int anvil_store_webhook_delivery_get(anvil_store *s, const char *workflow,
                                     const char *delivery_id, int64_t since_ms,
                                     anvil_webhook_delivery *out);

/* Record the answer to (workflow, delivery_id), replacing a row past the
 * window that was not pruned yet. 0 / -1. */
int anvil_store_webhook_delivery_put(anvil_store *s, const char *workflow,
                                     const char *delivery_id, const anvil_webhook_delivery *d);

/* Delete at most `limit` rows received before before_ms, oldest first: a
 * walk of the age index that stops at the window, so its cost is the rows
 * it deletes, never the table's size. Rows deleted, or -1. */
int anvil_store_webhook_deliveries_prune(anvil_store *s, int64_t before_ms, int64_t limit);

/* A signal recorded for a delivery key (anvil_store_signal_insert). */
typedef struct anvil_delivery_signal {
    const char *run_id;
    int64_t seq;
    const char *signal_name;    /* may be NULL */
    const char *correlation_id; /* may be NULL */
    int64_t received_at_ms;
} anvil_delivery_signal;

typedef int (*anvil_delivery_signal_fn)(void *ctx, const anvil_delivery_signal *sig);

/* The signals recorded with delivery_key for runs of `workflow`, oldest
 * first (then by run id). fn may return non-zero to stop. Rows seen, or
 * -1. A search of the signals_delivery index: the cost is the rows found. */
int anvil_store_signals_by_delivery(anvil_store *s, const char *workflow,
                                    const char *delivery_key, anvil_delivery_signal_fn fn,
                                    void *ctx);

#endif
