/*
 * handlers/payload_bound.h — the configured maxPayload as the bound on what
 * a read answers (a recorded frame, a DevTools snapshot, an attempt's
 * captured output), so that no answer is larger than a WebSocket client
 * accepts and none makes the server build an unbounded response.
 *
 * Ownership: nothing is allocated; `what` is only read.
 */
#ifndef ANVIL_PAYLOAD_BOUND_H
#define ANVIL_PAYLOAD_BOUND_H

#include <stddef.h>
#include <stdint.h>

#include "call.h"

/* The config's maxPayload (1 MiB when unset). */
int64_t anvil_handler_max_payload(const anvil_call *call);

/* 0 when `bytes` is within maxPayload; else -1 with PayloadTooLarge set on
 * the call: "<what> is N bytes, over the M-byte limit (maxPayload)", with
 * the detail maxBytes. */
int anvil_handler_check_payload(anvil_call *call, size_t bytes, const char *what);

#endif
