/*
 * runtime/base/clock.h — wall-clock milliseconds (the wire's time unit), their
 * ISO 8601 spelling, and random identifiers.
 */
#ifndef ANVIL_CLOCK_H
#define ANVIL_CLOCK_H

#include <stdint.h>

/* Milliseconds since the Unix epoch. */
int64_t anvil_now_ms(void);

/* Room for anvil_time_iso8601's text and its NUL. */
#define ANVIL_ISO8601_SIZE 32

/* ms since the epoch as JavaScript's Date.toISOString() spells it, UTC with
 * milliseconds: "2026-01-01T00:00:00.000Z" (where the upstream protocol has
 * a time as a string). Writes into out; returns 0, or -1 for a time gmtime
 * cannot represent (out is then ""). */
int anvil_time_iso8601(int64_t ms, char out[ANVIL_ISO8601_SIZE]);

/* Parse a duration like "500ms", "30s", "15m", "24h", "7d" (a bare number
 * is ms) into ms. 0 / -1 (not a duration, or out of range). */
int anvil_parse_duration_ms(const char *s, int64_t *out_ms);

/* Monotonic milliseconds, for durations. */
int64_t anvil_mono_ms(void);

/* A random RFC 4122 version-4 UUID from OpenSSL's RAND. Returns 0 or -1. */
int anvil_uuid4(char out[37]);

/* An RFC 9562 version-7 UUID: the first 48 bits are ms (big-endian), the
 * rest random, so ids made later sort after earlier ones as text and as
 * bytes, and a B-tree keyed by them grows at its right edge. Ids made by
 * one thread are strictly increasing even within one millisecond or when
 * ms goes back (the last one's time is kept and its random part counted
 * up). ms outside 0..2^48-1 is clamped. Returns 0 or -1 (no randomness). */
int anvil_uuid7(int64_t ms, char out[37]);

#endif
