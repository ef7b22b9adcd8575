/*
 * runtime/base/clock.h — wall-clock milliseconds (the wire's time unit) and
 * random identifiers.
 */
#ifndef ANVIL_CLOCK_H
#define ANVIL_CLOCK_H

#include <stdint.h>

/* Milliseconds since the Unix epoch. */
int64_t anvil_now_ms(void);

/* Monotonic milliseconds, for durations. */
int64_t anvil_mono_ms(void);

/* A random RFC 4122 version-4 UUID from OpenSSL's RAND. Returns 0 or -1. */
int anvil_uuid4(char out[37]);

#endif
