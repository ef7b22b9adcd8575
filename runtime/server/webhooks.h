/*
 * runtime/webhooks.c — POST /webhooks/{workflow}: signed deliveries from
 * outside (GitHub-style) that signal waiting runs or start a run.
 *
 * The signature is the authentication: an HMAC-SHA256 of the raw body with
 * the workflow's `webhook.secret`, lowercase hex after a prefix ("sha256="
 * by default) in a configurable header ("x-hub-signature-256" by default),
 * compared in constant time. See docs/webhooks.md.
 *
 * A signed delivery that carries a delivery id (the webhook's
 * deliveryIdHeader, X-GitHub-Delivery by default) is idempotent: its first
 * answer is recorded (store_webhooks.h) and a repeat gets it back without
 * acting again. See docs/webhooks.md#redeliveries.
 *
 * Ownership: returned trees, answers and strings are malloc'd for the
 * caller.
 */
#ifndef ANVIL_WEBHOOKS_H
#define ANVIL_WEBHOOKS_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "call.h"
#include "http_parse.h"

/* How long the first answer to a delivery id is kept: longer than any
 * sender's redelivery window we know (GitHub lets a delivery be redelivered
 * for 3 days on github.com, 7 on GitHub Enterprise Server). Past it the id
 * is answered from what the delivery did (its run, its signals), which is
 * kept with the runs: a repeat still never acts twice. */
#define ANVIL_WEBHOOK_DELIVERY_RETENTION_MS (7LL * 24 * 60 * 60 * 1000)
/* Rows past the window deleted per recorded answer: more than one, so the
 * table shrinks back whenever deliveries arrive; bounded, so no request
 * pays for a long quiet spell. */
#define ANVIL_WEBHOOK_PRUNE_BATCH 64
/* Longest delivery id accepted (GitHub's are 36-character GUIDs). */
#define ANVIL_WEBHOOK_DELIVERY_ID_MAX 128

/* An answer to one delivery. */
typedef struct anvil_webhook_answer {
    int status;                  /* HTTP status */
    char *body;                  /* JSON text, malloc'd */
    bool replayed;               /* the first answer to this delivery id, read back */
} anvil_webhook_answer;

void anvil_webhook_answer_clear(anvil_webhook_answer *a);

/* Handle one delivery for `workflow`. Returns 0 with *out filled (owned by
 * the caller: anvil_webhook_answer_clear): 200 {ok, workflow, verified,
 * delivered, startedRunId?}, or, for a signed delivery whose id (the
 * webhook's deliveryIdHeader) was answered before, that first answer.
 * Returns -1 with err set: NotFound, Unauthorized, InvalidRequest (body, or
 * a malformed delivery id, with `path`), InvalidInput, RunNotFound,
 * StorageUnavailable, Internal. An error records nothing. */
int anvil_webhook_handle(const anvil_services *svc, const char *workflow,
                         const anvil_http_head *head, const char *body, size_t body_len,
                         anvil_webhook_answer *out, anvil_error *err);

/* A delivery id we record: 1 to ANVIL_WEBHOOK_DELIVERY_ID_MAX bytes, each
 * printable ASCII other than space. */
bool anvil_webhook_delivery_id_ok(const char *id);

/* True when `header_value` is `prefix` followed by the hex HMAC-SHA256 of
 * body under `secret` (hex digits in either case). Constant-time compare. */
bool anvil_webhook_signature_ok(const char *secret, const char *prefix, const char *header_value,
                                const char *body, size_t body_len);

/* The value at a dot-separated path ("issue.number", "items.0.id"; digits
 * also index arrays) inside root, or NULL when any part is missing. An empty
 * or NULL path is root itself. */
const cJSON *anvil_webhook_path_get(const cJSON *root, const char *path);

/* anvil_webhook_deliveries_total (docs/metrics.md). */
struct anvil_metrics_out;
void anvil_webhook_metrics_render(struct anvil_metrics_out *o);

#endif
