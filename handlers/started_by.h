/*
 * handlers/started_by.h — a run's launch provenance (the contract's
 * RunStartedBy): from launchRun's options.startedBy to the JSON recorded
 * with the run (runs.started_by_json), and from that JSON back to the
 * startedBy getRun and listRuns show.
 *
 * The provenance is self-reported by the launching client and never
 * replaces the authenticated identity (ownerId, role, tokenId); the rules
 * are in docs/runs.md#started-by.
 *
 * Ownership: every output is the caller's (a cJSON tree to delete, or
 * strings inside a generated struct that anvil_schema_free releases).
 */
#ifndef ANVIL_STARTED_BY_H
#define ANVIL_STARTED_BY_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "anvil_types.h"
#include "call.h"

/* At most this many code points of a prompt are kept; a longer one keeps
 * one fewer and ends in U+2026, so the clip shows. */
#define ANVIL_STARTED_BY_PROMPT_MAX 8192

/* The provenance to record for a launch that sent `in` (validated against
 * the contract already): harness and sessionId without surrounding
 * whitespace (as JavaScript's String.prototype.trim removes it), each
 * dropped when nothing is left; prompt clipped to
 * ANVIL_STARTED_BY_PROMPT_MAX code points; detected kept. *out is a new
 * JSON object, or NULL when nothing is left to record. Returns 0, or -1
 * with call->err set: InvalidRequest at $.params.options.startedBy.detected
 * when detected is given without a harness or sessionId, Internal when
 * memory runs out. */
int anvil_started_by_normalize(anvil_call *call, const anvil_run_started_by *in, cJSON **out);

/* Fill *out (zeroed storage) from the JSON `json` that a launch recorded
 * (NULL: none, and *has stays false). Returns 0, or -1 with Internal set
 * on the call when the recorded text is not a RunStartedBy (a damaged
 * row). */
int anvil_started_by_view(anvil_call *call, const char *run_id, const char *json,
                          anvil_run_started_by *out, bool *has);

#endif
