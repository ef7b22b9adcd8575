/*
 * runtime/contract/ws_contract.h — lookups over the WebSocket part of the
 * contract (generated/anvil_websocket.h, from x-anvil-websocket): events by
 * name with their payload descriptors, and the run a subscribing method's
 * call is about.
 *
 * The WebSocket layer asks these instead of keeping its own lists, so a
 * method flagged x-anvil-subscribes-run or an event added to the spec takes
 * effect at `make regen` without a hand edit.
 *
 * Ownership: every pointer returned points into the caller's cJSON trees
 * or the static tables; nothing is allocated.
 */
#ifndef ANVIL_WS_CONTRACT_H
#define ANVIL_WS_CONTRACT_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "anvil_websocket.h"
#include "method.h"
#include "schema.h"

/* The event named `name`, or NULL when the contract declares none. */
const anvil_ws_event_desc *anvil_ws_event_find(const char *name);

/* Check an event the server is about to send against the contract: the
 * name is declared and the payload matches its schema. 0, or -1 with err
 * filled (an undeclared name has the path "$.event"). */
int anvil_ws_event_check(const char *name, const cJSON *payload, anvil_schema_error *err);

/* Does a call of m subscribe its connection to a run? */
bool anvil_ws_subscribes_run(const anvil_method *m);

/* The run a successful call of m is about: the string member its
 * x-anvil-subscribes-run names, in `params` or in the answer's `payload`.
 * NULL when m subscribes nothing or the member is not a string. */
const char *anvil_ws_subscribed_run(const anvil_method *m, const cJSON *params, const cJSON *payload);

#endif
