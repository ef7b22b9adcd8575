/*
 * runtime/webhooks.c — POST /webhooks/{workflow}: signed deliveries from
 * outside (GitHub-style) that signal waiting runs or start a run.
 *
 * The signature is the authentication: an HMAC-SHA256 of the raw body with
 * the workflow's `webhook.secret`, lowercase hex after a prefix ("sha256="
 * by default) in a configurable header ("x-hub-signature-256" by default),
 * compared in constant time. See docs/webhooks.md.
 *
 * Ownership: returned trees and strings are malloc'd for the caller.
 */
#ifndef ANVIL_WEBHOOKS_H
#define ANVIL_WEBHOOKS_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "call.h"
#include "http_parse.h"

/* Handle one delivery for `workflow`. Returns the reply object
 * {ok, workflow, verified, delivered, startedRunId?}, or NULL with err set
 * (NotFound, Unauthorized, InvalidRequest, InvalidInput, RunNotFound,
 * Internal). */
cJSON *anvil_webhook_handle(const anvil_services *svc, const char *workflow, const anvil_http_head *head,
                            const char *body, size_t body_len, anvil_error *err);

/* True when `header_value` is `prefix` followed by the hex HMAC-SHA256 of
 * body under `secret` (hex digits in either case). Constant-time compare. */
bool anvil_webhook_signature_ok(const char *secret, const char *prefix, const char *header_value,
                                const char *body, size_t body_len);

/* The value at a dot-separated path ("issue.number", "items.0.id"; digits
 * also index arrays) inside root, or NULL when any part is missing. An empty
 * or NULL path is root itself. */
const cJSON *anvil_webhook_path_get(const cJSON *root, const char *path);

#endif
