/*
 * runtime/store/store_compact.h — the stored form of frames and event
 * payloads.
 *
 * Every frame the engine records opens with "frameNo" and "runId", and
 * almost every event payload with "runId": values the row's own key
 * already holds. They are stored without them (some 400 bytes of a
 * one-task run's 2.7 KB) and put back, byte for byte, when read. A frame
 * is stored compact when, and only when, it does not open with
 * "frameNo"; an event's row says so in its `compact` column (a payload
 * whose runId is not its first member, like a cron trigger's, is stored
 * as given).
 *
 * Every function returns a malloc'd string the caller frees. Run ids are
 * [a-z0-9_-] (the contract's pattern), so they need no JSON escaping.
 */
#ifndef ANVIL_STORE_COMPACT_H
#define ANVIL_STORE_COMPACT_H

#include <stdint.h>

/* The stored form of frame `json`, or NULL when it does not open with
 * this frame's "frameNo" and "runId" (then store it as given) or out of
 * memory. */
char *anvil_frame_compact(const char *json, const char *run_id, int64_t frame_no);

/* The frame as recorded, from its stored form (either). NULL when out of
 * memory. */
char *anvil_frame_expand(const char *stored, const char *run_id, int64_t frame_no);

/* The stored form of payload `json`, or NULL when its first member is not
 * this run's "runId" (then store it as given) or out of memory. */
char *anvil_payload_compact(const char *json, const char *run_id);

/* The payload as recorded, from a stored form that is compact. NULL when
 * out of memory. */
char *anvil_payload_expand(const char *stored, const char *run_id);

#endif
